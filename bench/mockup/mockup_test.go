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

func TestUniqueIDs(t *testing.T) {
	m, err := New(Options{Chunks: 5, UniqueIDs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(m)
	defer srv.Close()
	post := func(body []byte) []byte {
		t.Helper()
		resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	idOf := func(b []byte) string {
		t.Helper()
		var v struct {
			ID string `json:"id"`
		}
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%v: %s", err, b)
		}
		return v.ID
	}
	seen := map[string]bool{}
	for range 3 {
		b := post(ChatRequest(ClientModel))
		if len(b) != len(m.Completion()) {
			t.Fatalf("completion is %d bytes, the recorded one %d", len(b), len(m.Completion()))
		}
		id := idOf(b)
		if seen[id] || id == idOf(m.Completion()) {
			t.Errorf("id %q repeats", id)
		}
		seen[id] = true
		// Only the id differs from the recorded bytes.
		if want := bytes.Replace(m.Completion(), []byte(idOf(m.Completion())), []byte(id), 1); !bytes.Equal(b, want) {
			t.Errorf("completion differs beyond its id:\n%s", b)
		}
	}
	for range 2 {
		body := post(StreamRequest(ClientModel))
		if len(body) != len(m.StreamBody()) {
			t.Fatalf("stream is %d bytes, the recorded one %d", len(body), len(m.StreamBody()))
		}
		events := strings.Split(strings.TrimSuffix(string(body), "\n\n"), "\n\n")
		if len(events) != m.Chunks()+1 || events[len(events)-1] != "data: [DONE]" {
			t.Fatalf("stream has %d events: %q", len(events), body)
		}
		streamID := ""
		for i, ev := range events[:len(events)-1] {
			id := idOf([]byte(strings.TrimPrefix(ev, "data: ")))
			if i == 0 {
				streamID = id
			} else if id != streamID {
				t.Errorf("event %d has id %q, the stream %q", i, id, streamID)
			}
		}
		if seen[streamID] {
			t.Errorf("stream id %q repeats", streamID)
		}
		seen[streamID] = true
	}
}

func TestWithID(t *testing.T) {
	src := []byte(`{"id":"rec-000000000000","x":1}`)
	off := idOffset(src)
	if got := string(withID(nil, src, off, 0xabc)); got != `{"id":"rec-000000000abc","x":1}` {
		t.Errorf("withID = %s", got)
	}
	if off := idOffset([]byte(`{"id":"short"}`)); off != -1 {
		t.Errorf("short id: offset %d, want -1", off)
	}
	if got := string(withID(nil, []byte(`{"id":"short"}`), -1, 7)); got != `{"id":"short"}` {
		t.Errorf("withID without offset = %s", got)
	}
}
