package config

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

const (
	secretKey    = "bedrock-api-key-SECRET1"
	secretAccess = "AKIASECRET2"
	secretSecret = "wJalrSECRET3"
	secretToken  = "FwoGSECRET4"
)

func secretConfig() BedrockConfig {
	b := *newBedrockConfig()
	b.APIKey = secretKey
	b.AWSAccessKeyID = secretAccess
	b.AWSSecretAccessKey = secretSecret
	b.AWSSessionToken = secretToken
	b.RegionName = "us-west-2"
	return b
}

func assertNoSecrets(t *testing.T, what, out string) {
	t.Helper()
	assertNoSecretValues(t, what, out)
	if !strings.Contains(out, redacted) {
		t.Errorf("%s shows no %q: %s", what, redacted, out)
	}
}

func assertNoSecretValues(t *testing.T, what, out string) {
	t.Helper()
	for _, s := range []string{secretKey, secretAccess, secretSecret, secretToken, "SECRET"} {
		if strings.Contains(out, s) {
			t.Errorf("%s leaks %q: %s", what, s, out)
		}
	}
}

func TestSecretRedaction(t *testing.T) {
	b := secretConfig()
	s := b.APIKey
	for _, format := range []string{"%v", "%+v", "%#v", "%s", "%q", "%d", "%10s", "%-12v", "%x", "%X", "% x", "%t", "%c", "%U"} {
		assert := assertNoSecrets
		if strings.ContainsAny(format, "xXcU") {
			assert = assertNoSecretValues // not readable text either way
		}
		assert(t, "fmt "+format+" of Secret", fmt.Sprintf(format, s))
		assert(t, "fmt "+format+" of BedrockConfig", fmt.Sprintf(format, b))
		assert(t, "fmt "+format+" of *BedrockConfig", fmt.Sprintf(format, &b))
	}
	if got := fmt.Sprintf("%q|%#v|%12s", s, s, s); got != `"********"|config.Secret("********")|    ********` {
		t.Errorf("formatting = %s", got)
	}
	assertNoSecrets(t, "fmt.Sprint", fmt.Sprint(s, b, &b))
	assertNoSecrets(t, "fmt.Sprintln", fmt.Sprintln(s, b))

	for _, h := range []func(*bytes.Buffer) slog.Handler{
		func(w *bytes.Buffer) slog.Handler { return slog.NewJSONHandler(w, nil) },
		func(w *bytes.Buffer) slog.Handler { return slog.NewTextHandler(w, nil) },
	} {
		var buf bytes.Buffer
		log := slog.New(h(&buf))
		log.Info("config", "key", s, "cfg", b, "ptr", &b, slog.Group("g", "secret", b.AWSSecretAccessKey))
		log.Info("any", slog.Any("key", s))
		assertNoSecrets(t, "slog", buf.String())
	}

	y, err := yaml.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "yaml.Marshal", string(y))
	j, err := json.Marshal(b)
	if err != nil {
		t.Fatal(err)
	}
	assertNoSecrets(t, "json.Marshal", string(j))
	if !strings.Contains(string(j), `"api_key":"********"`) || !strings.Contains(string(j), `"region_name":"us-west-2"`) {
		t.Errorf("json field names: %s", j)
	}

	if s.Value() != secretKey {
		t.Errorf("Value() = %q", s.Value())
	}
}

func TestEmptySecret(t *testing.T) {
	var s Secret
	if s.String() != "" || fmt.Sprint(s) != "" || s.LogValue().String() != "" {
		t.Errorf("empty secret prints as %q", s.String())
	}
	if j, _ := json.Marshal(s); string(j) != `""` {
		t.Errorf("json = %s", j)
	}
	if y, _ := yaml.Marshal(s); strings.TrimSpace(string(y)) != `""` {
		t.Errorf("yaml = %s", y)
	}
}

func TestRedactedConfig(t *testing.T) {
	cfg := fmt.Sprintf(`
version: 2
providers:
  inference:
  - provider_id: bedrock
    provider_type: remote::bedrock
    config:
      api_key: %s
      aws_access_key_id: %s
      aws_secret_access_key: %s
      aws_web_identity_token_file: /var/run/token
      network:
        headers:
          Authorization: Bearer SECRET5
          X-Api-Key: SECRET6
          X-Team: llama
`, secretKey, secretAccess, secretSecret)
	c, err := Parse([]byte(cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	m := c.Providers["inference"][0].RedactedConfig()
	out, _ := json.Marshal(m)
	assertNoSecrets(t, "RedactedConfig", string(out))
	for key, want := range map[string]any{
		"api_key":                     redacted,
		"aws_access_key_id":           redacted,
		"aws_session_token":           "",
		"region_name":                 "",
		"aws_web_identity_token_file": "/var/run/token",
		"connect_timeout":             60,
	} {
		if got := m[key]; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s = %#v, want %#v", key, got, want)
		}
	}
	headers := m["network"].(map[string]any)["headers"].(map[string]any)
	if headers["X-Team"] != "llama" || headers["Authorization"] != redacted || headers["X-Api-Key"] != redacted {
		t.Errorf("headers = %v", headers)
	}
	if (&Provider{}).RedactedConfig() != nil {
		t.Errorf("RedactedConfig of an empty provider is not nil")
	}
}
