package api

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
	"github.com/llama-stack-go/llama-stack-go/internal/ratelimit"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
)

// TestStreamUsageForTokenQuota: under a token quota, a stream whose client
// did not ask for usage is still charged: the upstream is asked for usage,
// and the usage chunk stays out of the client's stream.
func TestStreamUsageForTokenQuota(t *testing.T) {
	var askedUsage atomic.Bool
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			StreamOptions *struct {
				IncludeUsage bool `json:"include_usage"`
			} `json:"stream_options"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		askedUsage.Store(body.StreamOptions != nil && body.StreamOptions.IncludeUsage)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", chunkJSON("m-1:0", "hi", "stop"))
		if askedUsage.Load() {
			io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m-1:0","choices":[],"usage":{"prompt_tokens":600,"completion_tokens":500,"total_tokens":1100}}`+"\n\n")
		}
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	defer up.Close()
	reg := registry.New(map[string]provider.Provider{
		"up": openaicompat.New(openaicompat.Options{ProviderID: "up", BaseURL: up.URL + "/v1", HTTPClient: up.Client()}),
	})
	if err := reg.Register(registry.Model{Identifier: modelID, ProviderID: "up", ProviderResourceID: "m-1:0"}); err != nil {
		t.Fatal(err)
	}
	q := ratelimit.New(&config.QuotaConfig{AnonymousMaxRequests: 100, AuthenticatedMaxRequests: 100, Period: config.PeriodDay, AnonymousTokensPerMinute: 1000},
		ratelimit.Options{Counter: ratelimit.NewMemoryCounter()})
	gw := httptest.NewServer(NewHandler(Options{Registry: reg, Quota: q}))
	defer gw.Close()

	for i, tc := range []struct {
		includeUsage bool
		wantUsage    bool
		wantStatus   int
	}{
		{includeUsage: false, wantUsage: false, wantStatus: 200}, // charged 1100 tokens, sees no usage chunk
		{includeUsage: true, wantStatus: 429},                    // the minute's 1000 tokens are spent
	} {
		opts := ""
		if tc.includeUsage {
			opts = `,"stream_options":{"include_usage":true}`
		}
		resp, b := post(t, gw.URL, `{"model":"`+modelID+`","messages":[{"role":"user","content":"hi"}],"stream":true`+opts+`}`)
		if resp.StatusCode != tc.wantStatus {
			t.Fatalf("request %d: status %d, want %d: %s", i, resp.StatusCode, tc.wantStatus, b)
		}
		if tc.wantStatus != 200 {
			if resp.Header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
			continue
		}
		if !askedUsage.Load() {
			t.Error("the upstream was not asked for usage")
		}
		if got := strings.Contains(string(b), `"usage":{`); got != tc.wantUsage {
			t.Errorf("client saw a usage chunk: %v, want %v:\n%s", got, tc.wantUsage, b)
		}
		if !strings.HasSuffix(string(b), "data: [DONE]\n\n") {
			t.Errorf("stream did not end with [DONE]: %s", b)
		}
	}
}
