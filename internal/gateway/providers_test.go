package gateway

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat/openaitest"
)

// TestOpenAICompatibleProviders runs one chat through each provider type
// against a double of its API and checks what arrived: the path, the auth
// header in the type's style, the quirks (Azure's api-version, Gemini's
// project header, vLLM's default max_tokens), and discovery.
func TestOpenAICompatibleProviders(t *testing.T) {
	tests := []struct {
		typ       string
		config    string // %s is the double's URL
		double    openaitest.Options
		wantQuery string
		wantHdr   map[string]string
		wantBody  string // substring of the upstream body
		lists     bool
	}{
		{typ: "remote::openai", config: "api_key: sk-1\n        base_url: %s/v1", double: openaitest.Options{Key: "sk-1", Scheme: "Bearer"}, lists: true},
		{typ: "remote::vllm", config: "api_token: vt\n        base_url: %s/v1", double: openaitest.Options{Key: "vt", Scheme: "Bearer"}, wantBody: `"max_tokens":4096`, lists: true},
		{typ: "remote::ollama", config: "base_url: %s/v1", double: openaitest.Options{}, lists: true},
		{typ: "remote::together", config: "api_key: tg\n        base_url: %s/v1", double: openaitest.Options{Key: "tg", Scheme: "Bearer"}},
		{typ: "remote::fireworks", config: "api_key: fw\n        base_url: %s/inference/v1", double: openaitest.Options{Prefix: "/inference/v1", Key: "fw", Scheme: "Bearer"}, lists: true},
		{typ: "remote::groq", config: "api_key: gq\n        base_url: %s/openai/v1", double: openaitest.Options{Prefix: "/openai/v1", Key: "gq", Scheme: "Bearer"}, lists: true},
		{typ: "remote::gemini", config: "access_token: gm\n        project: my-proj\n        base_url: %s/v1beta/openai", double: openaitest.Options{Prefix: "/v1beta/openai", Key: "gm", Scheme: "Bearer"}, wantHdr: map[string]string{"X-Goog-User-Project": "my-proj"}, lists: true},
		{typ: "remote::azure", config: "api_key: az\n        api_version: 2024-10-21\n        base_url: %s/openai", double: openaitest.Options{Prefix: "/openai", AuthHeader: "api-key", Key: "az", Query: map[string]string{"api-version": "2024-10-21"}}, wantQuery: "api-version=2024-10-21", lists: true},
		{typ: "remote::nvidia", config: "api_key: nv\n        base_url: %s/v1", double: openaitest.Options{Key: "nv", Scheme: "Bearer"}, lists: true},
		{typ: "remote::sambanova", config: "api_key: sn\n        base_url: %s/v1", double: openaitest.Options{Key: "sn", Scheme: "Bearer"}, lists: true},
		{typ: "remote::cerebras", config: "api_key: cb\n        base_url: %s/v1", double: openaitest.Options{Key: "cb", Scheme: "Bearer"}, lists: true},
		{typ: "remote::runpod", config: "api_token: rp\n        base_url: %s/v2/abc/openai/v1", double: openaitest.Options{Prefix: "/v2/abc/openai/v1", Key: "rp", Scheme: "Bearer"}, lists: true},
		{typ: "remote::databricks", config: "api_token: db\n        base_url: %s/serving-endpoints", double: openaitest.Options{Prefix: "/serving-endpoints", Key: "db", Scheme: "Bearer"}},
		{typ: "remote::passthrough", config: "api_key: pt\n        base_url: %s", double: openaitest.Options{Key: "pt", Scheme: "Bearer"}, lists: true},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			up := openaitest.New(t, tt.double)
			id := strings.TrimPrefix(tt.typ, "remote::")
			yml := fmt.Sprintf(`version: 2
providers:
  inference:
    - provider_id: %s
      provider_type: %s
      config:
        %s
registered_resources:
  models:
    - model_id: chat
      provider_id: %s
      provider_model_id: test-chat
`, id, tt.typ, fmt.Sprintf(tt.config, up.URL()), id)
			cfg, err := config.Parse([]byte(yml), storeEnv(t))
			if err != nil {
				t.Fatal(err)
			}
			g, err := newTestGateway(t, cfg, Options{})
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(g.Handler())
			defer srv.Close()
			model := id + "/chat"
			resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json",
				strings.NewReader(`{"model":"`+model+`","messages":[{"role":"user","content":"hi"}]}`))
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			var out struct {
				Model   string `json:"model"`
				Choices []struct {
					Message struct{ Content string } `json:"message"`
				} `json:"choices"`
			}
			if resp.StatusCode != 200 || json.Unmarshal(body, &out) != nil || out.Model != model || out.Choices[0].Message.Content != "echo: hi" {
				t.Fatalf("status %d: %s", resp.StatusCode, body)
			}
			got := up.Requests()[0]
			if got.RawQuery != tt.wantQuery {
				t.Errorf("query = %q, want %q", got.RawQuery, tt.wantQuery)
			}
			for k, v := range tt.wantHdr {
				if got.Header.Get(k) != v {
					t.Errorf("header %s = %q, want %q", k, got.Header.Get(k), v)
				}
			}
			if !strings.Contains(string(got.Body), `"model":"test-chat"`) || !strings.Contains(string(got.Body), tt.wantBody) {
				t.Errorf("upstream body %s", got.Body)
			}

			g.Discover(t.Context())
			_, discovered := g.Registry().Get(id + "/test-embed")
			if discovered != tt.lists {
				t.Errorf("discovered = %v, want %v", discovered, tt.lists)
			}
			if m, ok := g.Registry().Get(id + "/test-embed"); ok && m.ModelType != "embedding" {
				t.Errorf("discovered embedding model typed %q", m.ModelType)
			}
		})
	}
}

// TestDiscoveryFailureIsNotFatal: an upstream that cannot list models
// leaves the registered models served.
func TestDiscoveryFailureIsNotFatal(t *testing.T) {
	cfg, err := config.Parse([]byte(`version: 2
providers:
  inference:
    - provider_id: ollama
      provider_type: remote::ollama
      config:
        base_url: http://127.0.0.1:1/v1
registered_resources:
  models:
    - model_id: llama3
      provider_id: ollama
`), storeEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	g, err := newTestGateway(t, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g.Discover(t.Context())
	if _, ok := g.Registry().Get("ollama/llama3"); !ok {
		t.Fatalf("registered model lost: %v", g.Registry().List())
	}
}

// TestAllowedModels: discovery keeps only the allowed models.
func TestAllowedModels(t *testing.T) {
	up := openaitest.New(t, openaitest.Options{Models: []string{"a", "b", "c"}})
	cfg, err := config.Parse([]byte(fmt.Sprintf(`version: 2
providers:
  inference:
    - provider_id: vllm
      provider_type: remote::vllm
      config:
        base_url: %s/v1
        allowed_models: [a, c]
`, up.URL())), storeEnv(t))
	if err != nil {
		t.Fatal(err)
	}
	g, err := newTestGateway(t, cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	g.Discover(t.Context())
	var ids []string
	for _, m := range g.Registry().List() {
		ids = append(ids, m.Identifier)
	}
	if strings.Join(ids, ",") != "vllm/a,vllm/c" {
		t.Errorf("models = %v", ids)
	}
}

// TestBedrockDiscovery: with refresh_models the Bedrock provider registers
// the account's on-demand models as bedrock/<model id>, filtered by
// allowed_models; a failing listing leaves the registered models served.
func TestBedrockDiscovery(t *testing.T) {
	double := bedrocktest.New(t, bedrocktest.Options{})
	for _, tt := range []struct {
		name, key string
		allowed   string
		want      []string
	}{
		{"all", bedrocktest.DefaultKey, "", []string{"bedrock/" + bedrocktest.ModelGptOss20B, "bedrock/" + bedrocktest.ModelTitanEmbedV2}},
		{"allowed", bedrocktest.DefaultKey, "\n        allowed_models: [" + bedrocktest.ModelGptOss120B + "]", []string{"bedrock/" + bedrocktest.ModelGptOss120B}},
		{"listing fails", "wrong", "", nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := map[string]string{"AWS_ENDPOINT_URL": double.URL(), "SQLITE_STORE_DIR": t.TempDir()}
			cfg, err := config.Parse([]byte(`version: 2
providers:
  inference:
    - provider_id: bedrock
      provider_type: remote::bedrock
      config:
        api_key: `+tt.key+`
        refresh_models: true`+tt.allowed+`
registered_resources:
  models:
    - model_id: bedrock/pinned
      provider_id: bedrock
      provider_model_id: openai.gpt-oss-20b-1:0
`), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
			if err != nil {
				t.Fatal(err)
			}
			g, err := newTestGateway(t, cfg, Options{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }})
			if err != nil {
				t.Fatal(err)
			}
			g.Discover(t.Context())
			var ids []string
			for _, m := range g.Registry().List() {
				ids = append(ids, m.Identifier)
			}
			if ids[0] != "bedrock/pinned" {
				t.Errorf("registered model lost: %v", ids)
			}
			if tt.want == nil && len(ids) != 1 {
				t.Errorf("models after a failed listing: %v", ids)
			}
			for _, w := range tt.want {
				if !slices.Contains(ids, w) {
					t.Errorf("%s not discovered: %v", w, ids)
				}
			}
			if tt.name == "allowed" && len(ids) != 2 {
				t.Errorf("allowed_models not applied: %v", ids)
			}
			if m, ok := g.Registry().Get("bedrock/" + bedrocktest.ModelTitanEmbedV2); ok && m.ModelType != "embedding" {
				t.Errorf("embedding model typed %q", m.ModelType)
			}
		})
	}
}
