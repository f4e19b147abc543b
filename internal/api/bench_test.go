package api

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/llama-stack-go/llama-stack-go/internal/metrics"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// memUpstream answers every request from memory, so the benchmarks measure
// the gateway's own work: decode, validate, route, rewrite, relay.
type memUpstream struct {
	contentType string
	body        []byte
}

func (m *memUpstream) RoundTrip(r *http.Request) (*http.Response, error) {
	_, _ = io.Copy(io.Discard, r.Body)
	_ = r.Body.Close()
	return &http.Response{
		StatusCode: 200,
		Header:     http.Header{"Content-Type": {m.contentType}},
		Body:       io.NopCloser(bytes.NewReader(m.body)),
		Request:    r,
	}, nil
}

func benchHandler(b *testing.B, up *memUpstream) http.Handler {
	reg := registry.New(map[string]provider.Provider{
		"bedrock": openaicompat.New(openaicompat.Options{ProviderID: "bedrock", BaseURL: "http://upstream/openai/v1", HTTPClient: &http.Client{Transport: up}}),
	})
	if err := reg.Register(registry.Model{Identifier: "bedrock/openai.gpt-oss-20b-1:0", ProviderID: "bedrock", ProviderResourceID: "openai.gpt-oss-20b-1:0"}); err != nil {
		b.Fatal(err)
	}
	return NewHandler(Options{Registry: reg})
}

const benchRequest = `{"model":"bedrock/openai.gpt-oss-20b-1:0","messages":[{"role":"system","content":"You are a concise Python expert. Give brief, code-focused answers."},{"role":"user","content":"How do I read a JSON file?"}],"temperature":0.7,"max_tokens":400,"stream":%s}`

func BenchmarkChatCompletion(b *testing.B) {
	h := benchHandler(b, &memUpstream{contentType: "application/json", body: []byte(completionJSON("openai.gpt-oss-20b-1:0"))})
	body := strings.Replace(benchRequest, "%s", "false", 1)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body)))
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkChatCompletionStream(b *testing.B) {
	var sb strings.Builder
	const chunks = 20
	for i := range chunks {
		finish := ""
		if i == chunks-1 {
			finish = "stop"
		}
		sb.WriteString("data: " + chunkJSON("openai.gpt-oss-20b-1:0", "word ", finish) + "\n\n")
	}
	sb.WriteString("data: [DONE]\n\n")
	h := benchHandler(b, &memUpstream{contentType: "text/event-stream", body: []byte(sb.String())})
	body := strings.Replace(benchRequest, "%s", "true", 1)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body)))
		if rec.Code != 200 {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
	b.ReportMetric(chunks, "chunks/op")
}

// countRecorder takes records and only counts them: the benchmarks measure
// what recording costs the request, not the store behind it.
type countRecorder struct{ n atomic.Int64 }

func (c *countRecorder) Enqueue(store.Record) bool { c.n.Add(1); return true }

// benchFixture reads one of the recorded Bedrock fixtures, or skips.
func benchFixture(b *testing.B, name string) []byte {
	b.Helper()
	dir, err := bedrocktest.Fixtures()
	if err != nil {
		b.Skip(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		b.Skip(err)
	}
	return bytes.TrimSpace(data)
}

// observedHandler is benchHandler with what the server switches on by
// default: metrics, a JSON access-log line per request (to io.Discard) and
// the inference store's recorder.
func observedHandler(b *testing.B, up *memUpstream) (http.Handler, *countRecorder) {
	reg := registry.New(map[string]provider.Provider{
		"bedrock": openaicompat.New(openaicompat.Options{ProviderID: "bedrock", BaseURL: "http://upstream/openai/v1", HTTPClient: &http.Client{Transport: up}}),
	})
	if err := reg.Register(registry.Model{Identifier: "bedrock/openai.gpt-oss-20b-1:0", ProviderID: "bedrock", ProviderResourceID: "openai.gpt-oss-20b-1:0"}); err != nil {
		b.Fatal(err)
	}
	rec := &countRecorder{}
	return NewHandler(Options{
		Registry:  reg,
		Logger:    slog.New(slog.NewJSONHandler(io.Discard, &slog.HandlerOptions{Level: slog.LevelInfo})),
		Metrics:   metrics.New(prometheus.NewRegistry()),
		Inference: InferenceStore{Recorder: rec},
	}), rec
}

// BenchmarkChatCompletionObserved is the notebook's request answered with
// the recorded gpt-oss-20b completion (1 KB), with metrics, the access log
// and completion recording on.
func BenchmarkChatCompletionObserved(b *testing.B) {
	h, rec := observedHandler(b, &memUpstream{contentType: "application/json", body: benchFixture(b, "runtime-chat-completion-gpt-oss-20b.response.json")})
	body := strings.Replace(benchRequest, "%s", "false", 1)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body)))
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	if rec.n.Load() == 0 {
		b.Fatal("nothing recorded")
	}
}

// BenchmarkChatCompletionStreamObserved relays the recorded gpt-oss-20b
// stream (20 chunks + [DONE]) with metrics, the access log and completion
// recording (the chunks accumulated into one completion) on.
func BenchmarkChatCompletionStreamObserved(b *testing.B) {
	var sb strings.Builder
	chunks := bytes.Split(benchFixture(b, "runtime-chat-completion-gpt-oss-20b.stream.chunks.jsonl"), []byte("\n"))
	for _, c := range chunks {
		sb.WriteString("data: " + string(bytes.TrimSpace(c)) + "\n\n")
	}
	sb.WriteString("data: [DONE]\n\n")
	h, rec := observedHandler(b, &memUpstream{contentType: "text/event-stream", body: []byte(sb.String())})
	body := strings.Replace(benchRequest, "%s", "true", 1)
	b.ReportAllocs()
	for b.Loop() {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest("POST", "/v1/chat/completions", strings.NewReader(body)))
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	if rec.n.Load() == 0 {
		b.Fatal("nothing recorded")
	}
	b.ReportMetric(float64(len(chunks)), "chunks/op")
}
