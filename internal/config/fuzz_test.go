package config

import (
	"os"
	"path/filepath"
	"testing"

	"go.yaml.in/yaml/v3"
)

var fuzzEnv = mapEnv(map[string]string{
	"AWS_BEARER_TOKEN_BEDROCK": "tok",
	"A":                        "a",
	"EMPTY":                    "",
	"NUM":                      "8321",
	"YAMLISH":                  "a: {b: [c]}",
	"HOME":                     "/home/u",
	"TILDE":                    "~/x",
})

func FuzzExpand(f *testing.F) {
	for _, s := range []string{
		"", "plain", "${env.A}", "${env.UNSET}", "${env.EMPTY:=d}", "${env.A:+v}",
		"x${env.A}y${env.NUM:=1}z", "${env.UNSET:=${env.A}}", "${env.TILDE}", "${env.UNSET:=~}",
		"${env.YAMLISH}", "${env.a}", "${env.A:-x}", "${env.", "$}{", "~", "\xff${env.A}",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out1, missing1 := expandString(s, fuzzEnv)
		out2, missing2 := expandString(s, fuzzEnv)
		if out1 != out2 || len(missing1) != len(missing2) {
			t.Fatalf("expandString(%q) is not deterministic: %q %v, %q %v", s, out1, missing1, out2, missing2)
		}
		if !envRef.MatchString(s) && out1 != s {
			t.Fatalf("expandString(%q) = %q without a reference", s, out1)
		}
		// The node keeps the text; only its type may change.
		n1 := &yaml.Node{Kind: yaml.ScalarNode, Tag: tagStr, Value: s}
		n2 := &yaml.Node{Kind: yaml.ScalarNode, Tag: tagStr, Value: s}
		retag(n1, s)
		retag(n2, s)
		if n1.Tag != n2.Tag || n1.Style != n2.Style || n1.Value != n2.Value {
			t.Fatalf("retag(%q) is not deterministic", s)
		}
		if n1.Value != s {
			t.Fatalf("retag(%q) changed the text to %q", s, n1.Value)
		}
		if n1.Kind != yaml.ScalarNode {
			t.Fatalf("retag(%q) changed the node kind", s)
		}
		pyValue(s)
	})
}

func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add(Starter())
	f.Add([]byte("a: &a [*a]"))
	f.Add([]byte("providers: {inference: [&p {provider_id: x, provider_type: remote::bedrock, config: {<<: *p}}]}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data, fuzzEnv)
		if err != nil {
			if c != nil {
				t.Fatalf("Parse returned a config and an error")
			}
			_, err2 := Parse(data, fuzzEnv)
			if err2 == nil || err.Error() != err2.Error() {
				t.Fatalf("Parse errors are not deterministic:\n%v\n---\n%v", err, err2)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v\n%s", err, data)
		}
		for api := range c.Providers {
			for _, p := range c.EnabledProviders(api) {
				if _, known := ProviderTypes[p.ProviderType]; !known || p.Settings == nil {
					t.Fatalf("enabled provider %s has type %q and settings %T", p.Path, p.ProviderType, p.Settings)
				}
				p.RedactedConfig()
			}
		}
	})
}
