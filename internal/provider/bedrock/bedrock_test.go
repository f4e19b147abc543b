package bedrock

import (
	"encoding/base64"
	"net/http"
	"strings"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

func envOf(kv ...string) config.LookupEnv {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestRegionAndEndpoint(t *testing.T) {
	tests := []struct {
		name         string
		cfg          config.BedrockConfig
		env          config.LookupEnv
		wantRegion   string
		wantEndpoint string
		wantErr      string
	}{
		{"defaults", config.BedrockConfig{}, envOf(), "us-west-2", "https://bedrock-runtime.us-west-2.amazonaws.com", ""},
		{"config region wins", config.BedrockConfig{RegionName: "eu-north-1"}, envOf("AWS_DEFAULT_REGION", "us-east-1"), "eu-north-1", "https://bedrock-runtime.eu-north-1.amazonaws.com", ""},
		{"AWS_DEFAULT_REGION before AWS_REGION", config.BedrockConfig{}, envOf("AWS_DEFAULT_REGION", "us-east-1", "AWS_REGION", "us-east-2"), "us-east-1", "https://bedrock-runtime.us-east-1.amazonaws.com", ""},
		{"AWS_REGION", config.BedrockConfig{}, envOf("AWS_REGION", "ap-south-1"), "ap-south-1", "https://bedrock-runtime.ap-south-1.amazonaws.com", ""},
		{"china", config.BedrockConfig{RegionName: "cn-north-1"}, envOf(), "cn-north-1", "https://bedrock-runtime.cn-north-1.amazonaws.com.cn", ""},
		{"service endpoint env", config.BedrockConfig{}, envOf("AWS_ENDPOINT_URL_BEDROCK_RUNTIME", "http://127.0.0.1:9000/", "AWS_ENDPOINT_URL", "http://127.0.0.1:9001"), "us-west-2", "http://127.0.0.1:9000", ""},
		{"global endpoint env", config.BedrockConfig{}, envOf("AWS_ENDPOINT_URL", "http://127.0.0.1:9001"), "us-west-2", "http://127.0.0.1:9001", ""},
		{"ignore configured endpoints", config.BedrockConfig{}, envOf("AWS_ENDPOINT_URL", "http://127.0.0.1:9001", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"), "us-west-2", "https://bedrock-runtime.us-west-2.amazonaws.com", ""},
		{"config base_url wins", config.BedrockConfig{BaseURL: "https://proxy.internal/openai/v1"}, envOf("AWS_ENDPOINT_URL", "http://127.0.0.1:9001"), "us-west-2", "https://proxy.internal", ""},
		{"bad region", config.BedrockConfig{RegionName: "evil.com/x"}, envOf(), "", "", "not an AWS region"},
		{"bad endpoint", config.BedrockConfig{BaseURL: "ftp://x"}, envOf(), "", "", "not an http(s) URL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New("bedrock", &tt.cfg, Options{LookupEnv: tt.env})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.Region() != tt.wantRegion || p.Endpoint() != tt.wantEndpoint {
				t.Errorf("region, endpoint = %q, %q; want %q, %q", p.Region(), p.Endpoint(), tt.wantRegion, tt.wantEndpoint)
			}
		})
	}
}

// isolatedEnv has no AWS credentials anywhere and no instance metadata,
// so the default chain finds nothing and touches no network.
func isolatedEnv(kv ...string) config.LookupEnv {
	return envOf(append([]string{"AWS_EC2_METADATA_DISABLED", "true", "AWS_CONFIG_FILE", "/nonexistent/config",
		"AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", "HOME", "/nonexistent"}, kv...)...)
}

func authorizeHeader(t *testing.T, p *Provider, data provider.Data) (string, error) {
	t.Helper()
	r, _ := http.NewRequestWithContext(t.Context(), "POST", "https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1/chat/completions", strings.NewReader(`{"model":"m"}`))
	err := p.authorize(r, data)
	return r.Header.Get("Authorization"), err
}

func TestAuthModes(t *testing.T) {
	iam := config.BedrockConfig{AWSAccessKeyID: "AKIAIOSFODNN7EXAMPLE", AWSSecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	sigv4 := iam
	sigv4.AuthMode = "sigv4"
	tests := []struct {
		name     string
		cfg      config.BedrockConfig
		env      config.LookupEnv
		mode     string
		wantAuth func(string) bool
	}{
		{"config key", config.BedrockConfig{APIKey: "cfg"}, isolatedEnv("AWS_BEARER_TOKEN_BEDROCK", "env"), "api_key", func(h string) bool { return h == "Bearer cfg" }},
		{"env key", config.BedrockConfig{}, isolatedEnv("AWS_BEARER_TOKEN_BEDROCK", "env"), "api_key", func(h string) bool { return h == "Bearer env" }},
		{"IAM keys mint a short-term key", iam, isolatedEnv(), "iam", func(h string) bool {
			tok, ok := strings.CutPrefix(h, "Bearer bedrock-api-key-")
			if !ok {
				return false
			}
			raw, err := base64.StdEncoding.DecodeString(tok)
			return err == nil && strings.HasPrefix(string(raw), "bedrock.amazonaws.com/?Action=CallWithBearerToken") &&
				strings.Contains(string(raw), "AKIAIOSFODNN7EXAMPLE%2F") && strings.Contains(string(raw), "%2Fus-west-2%2Fbedrock%2Faws4_request")
		}},
		{"IAM keys from the environment", config.BedrockConfig{}, isolatedEnv("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE", "AWS_SECRET_ACCESS_KEY", "x"), "iam", func(h string) bool {
			return strings.HasPrefix(h, "Bearer bedrock-api-key-")
		}},
		{"sigv4", sigv4, isolatedEnv(), "sigv4", func(h string) bool {
			return strings.HasPrefix(h, "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/") && strings.Contains(h, "/us-west-2/bedrock/aws4_request")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := New("bedrock", &tt.cfg, Options{LookupEnv: tt.env})
			if err != nil {
				t.Fatal(err)
			}
			if p.AuthMode() != tt.mode {
				t.Errorf("AuthMode = %q, want %q", p.AuthMode(), tt.mode)
			}
			h, err := authorizeHeader(t, p, nil)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.wantAuth(h) {
				t.Errorf("Authorization = %q", h)
			}
			if strings.Contains(h, "wJalrXUtnFEMI") {
				t.Errorf("secret in the header")
			}
		})
	}
}

func TestNoCredentials(t *testing.T) {
	p, err := New("bedrock", &config.BedrockConfig{}, Options{LookupEnv: isolatedEnv()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = authorizeHeader(t, p, nil)
	var pe *provider.Error
	if !asProviderError(err, &pe) || pe.StatusCode != 401 || pe.Code != "missing_credentials" || !strings.Contains(pe.Message, "AWS_BEARER_TOKEN_BEDROCK") {
		t.Fatalf("err = %v, want a 401 naming AWS_BEARER_TOKEN_BEDROCK", err)
	}
}

func TestPerRequestKey(t *testing.T) {
	for _, cfg := range []config.BedrockConfig{{APIKey: "server-key"}, {}} {
		p, err := New("bedrock", &cfg, Options{LookupEnv: isolatedEnv()})
		if err != nil {
			t.Fatal(err)
		}
		h, err := authorizeHeader(t, p, provider.Data{ProviderDataKey: "caller-key"})
		if err != nil || h != "Bearer caller-key" {
			t.Errorf("server key %q: Authorization = %q, %v", cfg.APIKey, h, err)
		}
	}
}

func asProviderError(err error, pe **provider.Error) bool {
	e, ok := err.(*provider.Error)
	*pe = e
	return ok
}

func TestTranslateError(t *testing.T) {
	const secret = "bedrock-api-key-SECRETSECRET"
	p, err := New("bedrock", &config.BedrockConfig{APIKey: secret}, Options{LookupEnv: envOf()})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		in         provider.Error
		wantStatus int
		wantCode   string
		wantMsg    []string
	}{
		{"expired", provider.Error{StatusCode: 403, Code: "AccessDeniedException", Message: "Bearer Token has expired"}, 401, "expired_api_key", []string{"expired", "api_key", "Bearer Token has expired"}},
		{"invalid", provider.Error{StatusCode: 403, Code: "AccessDeniedException", Message: "Authentication failed: Please make sure your API Key is valid."}, 401, "invalid_api_key", []string{"invalid", "api_key"}},
		{"bad format", provider.Error{StatusCode: 403, Message: "Invalid API Key format: Must start with pre-defined prefix"}, 401, "invalid_api_key", []string{"invalid"}},
		{"sigv4 unrecognized", provider.Error{StatusCode: 403, Code: "UnrecognizedClientException", Message: "The security token included in the request is invalid."}, 401, "invalid_api_key", []string{"invalid"}},
		{"no model access", provider.Error{StatusCode: 403, Code: "AccessDeniedException", Message: "You don't have access to the model with the specified model ID."}, 403, "model_access_denied", []string{"no access", "us-west-2"}},
		{"iam deny", provider.Error{StatusCode: 403, Code: "AccessDeniedException", Message: "User: arn:aws:iam::123456789012:user/x is not authorized to perform: bedrock:InvokeModel"}, 403, "iam_access_denied", []string{"bedrock:InvokeModel"}},
		{"throttling untouched", provider.Error{StatusCode: 429, Code: "ThrottlingException", Message: "Too many requests"}, 429, "ThrottlingException", []string{"Too many requests"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.in
			p.translateError(&e)
			if e.StatusCode != tt.wantStatus || e.Code != tt.wantCode {
				t.Errorf("status, code = %d, %q; want %d, %q", e.StatusCode, e.Code, tt.wantStatus, tt.wantCode)
			}
			for _, w := range tt.wantMsg {
				if !strings.Contains(e.Message, w) {
					t.Errorf("message %q lacks %q", e.Message, w)
				}
			}
			if strings.Contains(e.Message, secret) || strings.Contains(e.Message, "123456789012") {
				t.Errorf("message leaks a secret or account: %q", e.Message)
			}
		})
	}
}
