package config

import (
	"reflect"
	"strings"
	"testing"
)

func TestExpandString(t *testing.T) {
	env := mapEnv(map[string]string{
		"A":     "a",
		"B":     "b",
		"EMPTY": "",
		"REF":   "${env.A}",
		"HOME":  "/home/u",
		"PATHV": "~/data",
	})
	noHome := mapEnv(map[string]string{"A": "a"})
	tests := []struct {
		in      string
		env     LookupEnv
		want    string
		missing []string
	}{
		// ${env.NAME}
		{in: "${env.A}", want: "a"},
		{in: "${env.UNSET}", want: "", missing: []string{"UNSET"}},
		{in: "${env.EMPTY}", want: "", missing: []string{"EMPTY"}},
		// ${env.NAME:=default}
		{in: "${env.A:=d}", want: "a"},
		{in: "${env.UNSET:=d}", want: "d"},
		{in: "${env.EMPTY:=d}", want: "d"},
		{in: "${env.UNSET:=}", want: ""},
		{in: "${env.A:=}", want: "a"},
		{in: "${env.UNSET:=a b:c}", want: "a b:c"},
		// ${env.NAME:+value}
		{in: "${env.A:+v}", want: "v"},
		{in: "${env.UNSET:+v}", want: ""},
		{in: "${env.EMPTY:+v}", want: ""},
		{in: "${env.A:+}", want: ""},
		// several, with text around
		{in: "pre ${env.A} mid ${env.B:=x}/${env.UNSET:=y}${env.A:+z} post", want: "pre a mid b/yz post"},
		{in: "${env.UNSET}-${env.A}-${env.OTHER}-${env.UNSET}", want: "-a--", missing: []string{"UNSET", "OTHER"}},
		// not references: left as written
		{in: "${env.lower}", want: "${env.lower}"},
		{in: "${env.A:-d}", want: "${env.A:-d}"},
		{in: "$env.A", want: "$env.A"},
		{in: "${ env.A }", want: "${ env.A }"},
		{in: "${env.A", want: "${env.A"},
		{in: "$${env.A}", want: "$a"},
		// no nesting: the default stops at the first "}"
		{in: "${env.UNSET:=${env.B:=x}}", want: "${env.B:=x}"},
		{in: "${env.UNSET:=a}b}", want: "ab}"},
		// substituted text is not scanned again
		{in: "${env.REF}", want: "${env.A}"},
		// ~ in substituted values
		{in: "${env.UNSET:=~/x}/y", want: "/home/u/x/y"},
		{in: "${env.UNSET:=~}", want: "/home/u"},
		{in: "${env.PATHV}", want: "/home/u/data"},
		{in: "${env.A:+~/v}", want: "/home/u/v"},
		{in: "${env.UNSET:=~bob/x}", want: "~bob/x"},
		{in: "~/${env.A}", want: "~/a"},
		{in: "${env.UNSET:=~/x}", env: noHome, want: "~/x"},
		{in: "${env.UNSET:=~}", env: mapEnv(map[string]string{"HOME": "/"}), want: "/"},
	}
	for _, tt := range tests {
		e := env
		if tt.env != nil {
			e = tt.env
		}
		got, missing := expandString(tt.in, e)
		if got != tt.want && len(tt.missing) == 0 || !reflect.DeepEqual(missing, tt.missing) {
			t.Errorf("expandString(%q) = %q, %v; want %q, %v", tt.in, got, missing, tt.want, tt.missing)
		}
	}
}

// TestEnvTypes checks the type a substituted scalar ends up with, through
// Parse: metadata values keep their YAML type, model_id is a string field.
func TestEnvTypes(t *testing.T) {
	const cfg = `
version: 2
providers:
  inference:
  - provider_id: p
    provider_type: remote::bedrock
registered_resources:
  models:
  - model_id: m${env.V:=}
    provider_id: p
    metadata:
      plain: ${env.V}
      quoted: "${env.V}"
      around: <${env.V}>
      literal: "8321"
      id: ${env.V}
`
	tests := []struct {
		v     string
		plain any // metadata.plain and metadata.quoted
	}{
		{"8321", 8321},
		{"-7", -7},
		{"+7", 7},
		{"1_000", 1000},
		{"true", true},
		{"TRUE", true},
		{"False", false},
		{"1.5", 1.5},
		{"1e3", 1000.0},
		// ints and floats for Python that YAML reads differently stay strings
		{"0123", "0123"},
		{" 42", " 42"},
		{"tRuE", "tRuE"},
		{"99999999999999999999", "99999999999999999999"},
		{"inf", "inf"},
		{"nan", "nan"},
		// strings for Python stay strings even where YAML would differ
		{"0x10", "0x10"},
		{"null", "null"},
		{"~", "~"},
		{".inf", ".inf"},
		{"2024-01-01", "2024-01-01"},
		// YAML syntax in a value never changes the document's structure
		{"a: b", "a: b"},
		{"- x", "- x"},
		{"{", "{"},
		{"[1, 2]", "[1, 2]"},
		{"{a: 1}", "{a: 1}"},
		{"#comment", "#comment"},
		{"*alias", "*alias"},
		{"&anchor x", "&anchor x"},
		{"!!int 5", "!!int 5"},
		{"a\nb: c", "a\nb: c"},
		{"---", "---"},
		{"'q'", "'q'"},
	}
	for _, tt := range tests {
		t.Run(tt.v, func(t *testing.T) {
			c, err := Parse([]byte(cfg), mapEnv(map[string]string{"V": tt.v}))
			if err != nil {
				t.Fatal(err)
			}
			m := c.RegisteredResources.Models[0]
			if got, want := m.ModelID, "m"+tt.v; got != want {
				t.Errorf("model_id = %q, want %q", got, want)
			}
			for _, key := range []string{"plain", "quoted"} {
				if got := m.Metadata[key]; !reflect.DeepEqual(got, tt.plain) {
					t.Errorf("metadata.%s = %#v (%T), want %#v (%T)", key, got, got, tt.plain, tt.plain)
				}
			}
			if got, want := m.Metadata["around"], "<"+tt.v+">"; got != want {
				t.Errorf("metadata.around = %#v, want %q", got, want)
			}
			if got := m.Metadata["literal"]; got != "8321" {
				t.Errorf("metadata.literal = %#v: scalars without references must keep their type", got)
			}
		})
	}

	// "" becomes null: the model_id default applies, metadata holds nil.
	c, err := Parse([]byte(strings.ReplaceAll(cfg, "${env.V}", "${env.V:=}")), nil)
	if err != nil {
		t.Fatal(err)
	}
	md := c.RegisteredResources.Models[0].Metadata
	if v, ok := md["plain"]; !ok || v != nil {
		t.Errorf("metadata.plain = %#v, want nil", v)
	}
}

func TestEnvPortAndErrors(t *testing.T) {
	const cfg = `
version: 2
providers: {}
server:
  port: ${env.PORT:=8321}
  host: ${env.HOST:=}
  disable_ipv6: ${env.NO_V6:=false}
  tls_certfile: ${env.CERT}
`
	c, err := Parse([]byte(cfg), mapEnv(map[string]string{"PORT": "9000", "NO_V6": "True", "CERT": "c"}))
	if err == nil {
		t.Fatal("want tls error")
	}
	if !strings.Contains(err.Error(), "server.tls_certfile: tls_certfile and tls_keyfile must be set together") {
		t.Errorf("err = %v", err)
	}
	c, err = Parse([]byte(strings.Replace(cfg, "${env.CERT}", "${env.CERT:=}", 1)), mapEnv(map[string]string{"PORT": "9000", "NO_V6": "True"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Server.Port != 9000 || c.Server.Host != "" || !c.Server.DisableIPv6 {
		t.Errorf("server = %+v", c.Server)
	}
	_, err = Parse([]byte(cfg), mapEnv(map[string]string{"PORT": "http"}))
	for _, want := range []string{
		"line 5: server.port: expected an integer, got \"http\"",
		"line 8: server.tls_certfile: environment variable CERT is not set",
	} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q: %v", want, err)
		}
	}
}
