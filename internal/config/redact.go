package config

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// RedactedConfig returns the provider's config as a map keyed by YAML field
// names, for logging and inspection: Settings when set (Secret fields show
// "********"), else the config block as written. As in OGX's
// redact_sensitive_fields, any non-empty value under a key that looks
// sensitive (api_key, token, password, secret, authorization, ...) is
// replaced by "********" too; empty values stay empty. It returns nil when
// there is nothing to show.
func (p *Provider) RedactedConfig() map[string]any {
	var m map[string]any
	switch {
	case p.Settings != nil:
		data, err := yaml.Marshal(p.Settings)
		if err != nil || yaml.Unmarshal(data, &m) != nil {
			return nil
		}
	case p.Config.Kind != 0:
		if p.Config.Decode(&m) != nil {
			return nil
		}
	}
	redactMap(m)
	return m
}

var (
	sensitiveKeys = []string{"api_key", "api-key", "apikey", "api_token", "password", "secret", "token", "authorization", "cookie", "credential"}
	// Keys that contain a sensitive word but are not secrets.
	safeKeys = []string{"chunk_size_tokens", "max_tokens", "default_chunk_overlap_tokens", "max_document_tokens"}
)

func sensitive(key string) bool {
	k := strings.ToLower(key)
	if strings.HasSuffix(k, "_file") {
		return false // a path, such as aws_web_identity_token_file
	}
	for _, s := range safeKeys {
		if strings.Contains(k, s) {
			return false
		}
	}
	for _, s := range sensitiveKeys {
		if strings.Contains(k, s) {
			return true
		}
	}
	return false
}

func redactMap(m map[string]any) {
	for k, v := range m {
		if sensitive(k) {
			if v != nil && v != "" {
				m[k] = redacted
			}
			continue
		}
		redactValue(v)
	}
}

func redactValue(v any) {
	switch v := v.(type) {
	case map[string]any:
		redactMap(v)
	case []any:
		for _, x := range v {
			redactValue(x)
		}
	}
}
