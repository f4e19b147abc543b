package api

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
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
