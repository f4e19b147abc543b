package mockup

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestIsStream(t *testing.T) {
	tests := []struct {
		body string
		want bool
	}{
		{`{"model":"m","stream":true}`, true},
		{`{"model":"m", "stream" : true }`, true},
		{`{"model":"m","stream":false}`, false},
		{`{"model":"m"}`, false},
		{`{"stream_options":{"include_usage":true},"stream":true}`, true},
		{`{"messages":[{"content":"stream"}],"stream":true}`, true},
	}
	for _, tt := range tests {
		if got := IsStream([]byte(tt.body)); got != tt.want {
			t.Errorf("IsStream(%s) = %v, want %v", tt.body, got, tt.want)
		}
	}
}

func TestRequests(t *testing.T) {
	for _, body := range [][]byte{ChatRequest(ClientModel), StreamRequest(ClientModel)} {
		var req struct {
			Model  string `json:"model"`
			Stream bool   `json:"stream"`
		}
		if err := json.Unmarshal(body, &req); err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		if req.Model != ClientModel {
			t.Errorf("model = %q, want %q", req.Model, ClientModel)
		}
		if req.Stream != IsStream(body) {
			t.Errorf("stream = %v, IsStream = %v", req.Stream, IsStream(body))
		}
	}
}

func TestStreamChunks(t *testing.T) {
	for _, n := range []int{MinChunks, 5, RecordedChunks, 45} {
		chunks := StreamChunks(n)
		if len(chunks) != n {
			t.Fatalf("StreamChunks(%d) has %d chunks", n, len(chunks))
		}
		for i, c := range chunks {
			if !json.Valid(c) {
				t.Fatalf("chunk %d of %d is not JSON: %s", i, n, c)
			}
		}
		if !bytes.Contains(chunks[n-2], []byte(`"finish_reason":"stop"`)) || !bytes.Contains(chunks[n-1], []byte(`"usage":{`)) {
			t.Errorf("StreamChunks(%d) does not end with the finish and usage chunks", n)
		}
	}
}

func TestServe(t *testing.T) {
	m, err := New(Options{Chunks: 5, ChunkDelay: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m)
	defer srv.Close()
	post := func(path string, body []byte) (*http.Response, []byte) {
		t.Helper()
		resp, err := http.Post(srv.URL+path, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	resp, body := post("/v1/chat/completions", ChatRequest("any-model"))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" || !bytes.Equal(body, m.Completion()) {
		t.Errorf("completion: %d %s %s", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = post("/openai/v1/chat/completions", StreamRequest(UpstreamModel))
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Errorf("stream: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	if !bytes.Equal(body, m.StreamBody()) {
		t.Errorf("stream body differs:\n%s", body)
	}
	if got := strings.Count(string(body), "\n\n"); got != m.Chunks()+1 || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Errorf("stream has %d events, want %d + [DONE]", got, m.Chunks())
	}
	if resp, _ := post("/v1/models", nil); resp.StatusCode != http.StatusNotFound {
		t.Errorf("POST /v1/models: %d, want 404", resp.StatusCode)
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(Options{Chunks: 2}); err == nil {
		t.Error("2 chunks: no error")
	}
	if _, err := New(Options{ChunkDelay: -time.Second}); err == nil {
		t.Error("negative delay: no error")
	}
}
