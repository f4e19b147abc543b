package openaicompat

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// fixture reads one of the recorded Bedrock fixtures, or skips.
func fixture(b *testing.B, name string) []byte {
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

// memTransport answers every request from memory with a fixed body, so
// the benchmarks measure the adapter: request rewrite, send, body read,
// chunk parsing and model restore.
type memTransport struct {
	contentType string
	body        []byte
}

func (m *memTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	return &http.Response{
		StatusCode: http.StatusOK,
		Header:     http.Header{"Content-Type": {m.contentType}},
		Body:       io.NopCloser(bytes.NewReader(m.body)),
		Request:    r,
	}, nil
}

const benchRequest = `{"model":"bedrock/openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"Which planet has rings around it with a name starting with letter S?"}],"stream":%s}`

func benchClient(t *memTransport) *Client {
	return New(Options{
		ProviderID: "bedrock",
		BaseURL:    "http://bedrock.invalid/openai/v1",
		HTTPClient: &http.Client{Transport: t},
	})
}

func benchProviderRequest(b *testing.B, stream bool) *provider.Request {
	s := "false"
	if stream {
		s = "true"
	}
	raw := []byte(strings.Replace(benchRequest, "%s", s, 1))
	var chat openai.ChatCompletionRequest
	if err := json.Unmarshal(raw, &chat); err != nil {
		b.Fatal(err)
	}
	return &provider.Request{Model: "openai.gpt-oss-20b-1:0", ClientModel: "bedrock/openai.gpt-oss-20b-1:0", Chat: &chat, Raw: raw}
}

// BenchmarkChat forwards a request and reads the recorded completion
// (1 KB): model rewrite, send, read, decode, model restore.
func BenchmarkChat(b *testing.B) {
	c := benchClient(&memTransport{contentType: "application/json", body: fixture(b, "runtime-chat-completion-gpt-oss-20b.response.json")})
	req := benchProviderRequest(b, false)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		resp, err := c.Chat(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := resp.Body(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkChatStream opens a stream and reads the recorded 20 chunks
// through Next until [DONE], as the handler's relay loop does.
func BenchmarkChatStream(b *testing.B) {
	var sb bytes.Buffer
	chunks := 0
	for _, line := range bytes.Split(fixture(b, "runtime-chat-completion-gpt-oss-20b.stream.chunks.jsonl"), []byte("\n")) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			sb.WriteString("data: ")
			sb.Write(line)
			sb.WriteString("\n\n")
			chunks++
		}
	}
	sb.WriteString("data: [DONE]\n\n")
	c := benchClient(&memTransport{contentType: "text/event-stream", body: sb.Bytes()})
	req := benchProviderRequest(b, true)
	ctx := context.Background()
	b.ReportAllocs()
	b.SetBytes(int64(sb.Len()))
	for b.Loop() {
		st, err := c.ChatStream(ctx, req)
		if err != nil {
			b.Fatal(err)
		}
		n := 0
		for {
			ch, err := st.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
			if _, err := ch.Body(); err != nil {
				b.Fatal(err)
			}
			n++
		}
		_ = st.Close()
		if n != chunks {
			b.Fatalf("got %d chunks, want %d", n, chunks)
		}
	}
	b.ReportMetric(float64(chunks), "chunks/op")
}
