package api

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat/openaitest"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
)

// inferenceGateway fronts an OpenAI-compatible double that serves
// everything ("full") and one that serves chat only ("chatonly").
func inferenceGateway(t *testing.T) (string, *openaitest.Server) {
	t.Helper()
	up := openaitest.New(t, openaitest.Options{Key: "k", Scheme: "Bearer"})
	auth := func(r *http.Request, d provider.Data) error {
		key := "k"
		if v := d["full_api_key"]; v != "" {
			key = v
		}
		r.Header.Set("Authorization", "Bearer "+key)
		return nil
	}
	reg := registry.New(map[string]provider.Provider{
		"full":     openaicompat.New(openaicompat.Options{ProviderID: "full", BaseURL: up.URL() + "/v1", Authorize: auth, Completions: true, Embeddings: true}),
		"chatonly": openaicompat.New(openaicompat.Options{ProviderID: "chatonly", BaseURL: up.URL() + "/v1", Authorize: auth}),
	})
	for _, m := range []registry.Model{
		{Identifier: "full/chat", ProviderID: "full", ProviderResourceID: "test-chat"},
		{Identifier: "full/embed", ProviderID: "full", ProviderResourceID: "test-embed", ModelType: registry.TypeEmbedding},
		{Identifier: "chatonly/chat", ProviderID: "chatonly", ProviderResourceID: "test-chat"},
		{Identifier: "chatonly/embed", ProviderID: "chatonly", ProviderResourceID: "test-embed", ModelType: registry.TypeEmbedding},
	} {
		if err := reg.Register(m); err != nil {
			t.Fatal(err)
		}
	}
	gw := httptest.NewServer(NewHandler(Options{Registry: reg}))
	t.Cleanup(gw.Close)
	return gw.URL, up
}

func do(t *testing.T, method, url, body string, header map[string]string) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func TestCompletionsAndEmbeddings(t *testing.T) {
	url, up := inferenceGateway(t)
	tests := []struct {
		name, path, body string
		header           map[string]string
		status           int
		want             string // substring of the body
	}{
		{"completion", "/v1/completions", `{"model":"full/chat","prompt":"hello"}`, nil, 200, `"text":"echo: hello"`},
		{"completion model restored", "/v1/completions", `{"model":"full/chat","prompt":"hello"}`, nil, 200, `"model":"full/chat"`},
		{"completion stream", "/v1/completions", `{"model":"full/chat","prompt":"a b","stream":true}`, nil, 200, "data: [DONE]"},
		{"completion unsupported", "/v1/completions", `{"model":"chatonly/chat","prompt":"x"}`, nil, 400, "model 'chatonly/chat' is served by provider 'chatonly', which does not support /v1/completions"},
		{"completion missing prompt", "/v1/completions", `{"model":"full/chat"}`, nil, 400, "'prompt' is required"},
		{"completion on embedding model", "/v1/completions", `{"model":"full/embed","prompt":"x"}`, nil, 400, "model_type 'embedding'"},
		{"embeddings", "/v1/embeddings", `{"model":"full/embed","input":["a","b"]}`, nil, 200, `"index":1`},
		{"embeddings unsupported", "/v1/embeddings", `{"model":"chatonly/embed","input":"x"}`, nil, 400, "does not support /v1/embeddings"},
		{"embeddings on chat model", "/v1/embeddings", `{"model":"full/chat","input":"x"}`, nil, 400, "cannot serve embeddings"},
		{"embeddings missing input", "/v1/embeddings", `{"model":"full/embed"}`, nil, 400, "'input' is required"},
		{"embeddings empty input", "/v1/embeddings", `{"model":"full/embed","input":[]}`, nil, 400, "must not be empty"},
		{"embeddings bad format", "/v1/embeddings", `{"model":"full/embed","input":"x","encoding_format":"int8"}`, nil, 400, "encoding_format"},
		{"embeddings unknown model", "/v1/embeddings", `{"model":"nope","input":"x"}`, nil, 404, "not found"},
		{"provider data key", "/v1/chat/completions", `{"model":"full/chat","messages":[{"role":"user","content":"x"}]}`, map[string]string{"X-LlamaStack-Provider-Data": `{"full_api_key":"bad"}`}, 401, "Incorrect API key"},
		{"provider data malformed", "/v1/chat/completions", `{"model":"full/chat","messages":[{"role":"user","content":"x"}]}`, map[string]string{"X-LlamaStack-Provider-Data": `not json`}, 400, "X-LlamaStack-Provider-Data"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := do(t, "POST", url+tt.path, tt.body, tt.header)
			if status != tt.status || !strings.Contains(string(body), tt.want) {
				t.Errorf("status %d body %s; want %d and %q", status, body, tt.status, tt.want)
			}
			if status >= 400 && !json.Valid(body) {
				t.Errorf("error body is not JSON: %s", body)
			}
		})
	}
	for _, r := range up.Requests() {
		if strings.Contains(string(r.Body), "chatonly/") || strings.Contains(string(r.Body), `"full/`) {
			t.Errorf("client model id leaked upstream: %s", r.Body)
		}
	}
}
