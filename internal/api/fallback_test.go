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

	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
)

func TestFallbackModels(t *testing.T) {
	var primaryStatus atomic.Int64
	var primaryCalls, backupCalls atomic.Int64
	var backupModel atomic.Value
	primary := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		primaryCalls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(int(primaryStatus.Load()))
		io.WriteString(w, `{"error":{"message":"primary says no","type":"x"}}`)
	}))
	defer primary.Close()
	backup := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		backupCalls.Add(1)
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		backupModel.Store(body["model"])
		if body["stream"] == true {
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "data: %s\n\n", chunkJSON(body["model"].(string), "from backup", "stop"))
			io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, completionJSON(body["model"].(string)))
	}))
	defer backup.Close()
	reg := registry.New(map[string]provider.Provider{
		"a": openaicompat.New(openaicompat.Options{ProviderID: "a", BaseURL: primary.URL + "/v1", HTTPClient: primary.Client()}),
		"b": openaicompat.New(openaicompat.Options{ProviderID: "b", BaseURL: backup.URL + "/v1", HTTPClient: backup.Client()}),
	})
	for _, m := range []registry.Model{
		{Identifier: "main", ProviderID: "a", ProviderResourceID: "a-model", Metadata: map[string]any{FallbacksKey: []any{"missing", "spare"}}},
		{Identifier: "spare", ProviderID: "b", ProviderResourceID: "b-model"},
	} {
		if err := reg.Register(m); err != nil {
			t.Fatal(err)
		}
	}
	gw := httptest.NewServer(NewHandler(Options{Registry: reg}))
	defer gw.Close()

	tests := []struct {
		name       string
		status     int
		stream     bool
		wantStatus int
		wantBackup bool
	}{
		{"503 falls back", 503, false, 200, true},
		{"429 falls back, streamed", 429, true, 200, true},
		{"400 is the caller's fault: no fallback", 400, false, 400, false},
		{"401 is not curable by another model", 401, true, 401, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			primaryStatus.Store(int64(tt.status))
			primaryCalls.Store(0)
			backupCalls.Store(0)
			resp, b := post(t, gw.URL, fmt.Sprintf(`{"model":"main","messages":[{"role":"user","content":"hi"}],"stream":%v}`, tt.stream))
			if resp.StatusCode != tt.wantStatus {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.wantStatus, b)
			}
			if primaryCalls.Load() != 1 {
				t.Errorf("primary called %d times", primaryCalls.Load())
			}
			if got := backupCalls.Load() == 1; got != tt.wantBackup {
				t.Fatalf("backup called: %v, want %v", got, tt.wantBackup)
			}
			if !tt.wantBackup {
				return
			}
			if backupModel.Load() != "b-model" {
				t.Errorf("backup got model %v, want its provider_model_id", backupModel.Load())
			}
			if !strings.Contains(string(b), `"model":"main"`) {
				t.Errorf("answer does not carry the model the client asked for: %s", b)
			}
		})
	}
}
