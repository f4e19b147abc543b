// Package openaitest is a test double of an OpenAI-compatible upstream
// (OpenAI, vLLM, Ollama's /v1, Together, Azure, ...): model listing, chat
// completions, legacy completions and embeddings, streaming and not, with
// the auth header and path prefix each provider uses. It records every
// request so tests can assert on what the gateway sent.
package openaitest

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

// Options configure the double.
type Options struct {
	// Prefix is the path the OpenAI routes live under; default "/v1".
	Prefix string
	// AuthHeader is the header the key arrives in; default "Authorization".
	AuthHeader string
	// Scheme prefixes the key in AuthHeader ("Bearer"); "" sends it raw.
	// Ignored when AuthHeader is empty and Key is "".
	Scheme string
	// Key is the accepted key; "" accepts requests without one.
	Key string
	// Query lists query parameters every request must carry (Azure's
	// api-version).
	Query map[string]string
	// Models are listed by GET /models; default {"test-chat", "test-embed"}.
	Models []string
	// NoEmbeddings and NoCompletions make those routes 404, as upstreams
	// that lack them answer.
	NoEmbeddings, NoCompletions bool
	// EmbeddingDim is the length of each vector; default 4.
	EmbeddingDim int
}

// Recorded is one request the double received.
type Recorded struct {
	Method, Path, RawQuery string
	Header                 http.Header
	Body                   []byte
}

// Server is a running double.
type Server struct {
	o    Options
	srv  *httptest.Server
	mu   sync.Mutex
	reqs []Recorded
}

// New starts a double on 127.0.0.1, closed by tb.Cleanup.
func New(tb testing.TB, o Options) *Server {
	tb.Helper()
	s, err := Start(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start starts a double on 127.0.0.1; the caller closes it.
func Start(o Options) (*Server, error) {
	if o.Prefix == "" {
		o.Prefix = "/v1"
	}
	if o.AuthHeader == "" {
		o.AuthHeader = "Authorization"
	}
	if len(o.Models) == 0 {
		o.Models = []string{"test-chat", "test-embed"}
	}
	if o.EmbeddingDim == 0 {
		o.EmbeddingDim = 4
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Server{o: o}
	s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(s.serve)}}
	s.srv.Start()
	return s, nil
}

// URL is the server root, e.g. http://127.0.0.1:port (routes are under
// URL()+Prefix).
func (s *Server) URL() string { return s.srv.URL }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Requests returns what the double received, in order.
func (s *Server) Requests() []Recorded {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Recorded(nil), s.reqs...)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.reqs = append(s.reqs, Recorded{Method: r.Method, Path: r.URL.Path, RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body})
	s.mu.Unlock()
	if s.o.Key != "" {
		want := s.o.Key
		if s.o.Scheme != "" {
			want = s.o.Scheme + " " + want
		}
		if r.Header.Get(s.o.AuthHeader) != want {
			writeError(w, http.StatusUnauthorized, "invalid_api_key", "Incorrect API key provided.")
			return
		}
	}
	for k, v := range s.o.Query {
		if r.URL.Query().Get(k) != v {
			writeError(w, http.StatusBadRequest, "missing_query", fmt.Sprintf("query parameter %s=%s is required", k, v))
			return
		}
	}
	route, ok := strings.CutPrefix(r.URL.Path, s.o.Prefix)
	switch {
	case !ok:
		writeError(w, http.StatusNotFound, "not_found", "no such route")
	case r.Method == http.MethodGet && route == "/models":
		s.models(w)
	case r.Method == http.MethodPost && route == "/chat/completions":
		s.chat(w, body)
	case r.Method == http.MethodPost && route == "/completions" && !s.o.NoCompletions:
		s.completion(w, body)
	case r.Method == http.MethodPost && route == "/embeddings" && !s.o.NoEmbeddings:
		s.embed(w, body)
	default:
		writeError(w, http.StatusNotFound, "not_found", "no such route")
	}
}

func (s *Server) models(w http.ResponseWriter) {
	data := make([]map[string]any, 0, len(s.o.Models))
	for _, m := range s.o.Models {
		data = append(data, map[string]any{"id": m, "object": "model", "created": 1700000000, "owned_by": "test"})
	}
	writeJSON(w, map[string]any{"object": "list", "data": data})
}

type request struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string          `json:"role"`
		Content json.RawMessage `json:"content"`
	} `json:"messages"`
	Prompt        json.RawMessage `json:"prompt"`
	Input         json.RawMessage `json:"input"`
	StreamOptions *struct {
		IncludeUsage bool `json:"include_usage"`
	} `json:"stream_options"`
}

func decode(w http.ResponseWriter, body []byte) (*request, bool) {
	var req request
	if err := json.Unmarshal(body, &req); err != nil || req.Model == "" {
		writeError(w, http.StatusBadRequest, "invalid_request", "body must be JSON with a model")
		return nil, false
	}
	return &req, true
}

// answer is "echo: " and the last user message's text.
func (req *request) answer() string {
	for i := len(req.Messages) - 1; i >= 0; i-- {
		if req.Messages[i].Role == "user" {
			var s string
			if json.Unmarshal(req.Messages[i].Content, &s) == nil {
				return "echo: " + s
			}
			return "echo: " + string(req.Messages[i].Content)
		}
	}
	var p string
	_ = json.Unmarshal(req.Prompt, &p)
	return "echo: " + p
}

func (s *Server) chat(w http.ResponseWriter, body []byte) {
	req, ok := decode(w, body)
	if !ok {
		return
	}
	id, text := "chatcmpl-"+randomHex(8), req.answer()
	if !req.Stream {
		writeJSON(w, map[string]any{"id": id, "object": "chat.completion", "created": 1700000000, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "message": map[string]any{"role": "assistant", "content": text}, "finish_reason": "stop"}},
			"usage":   usage(text)})
		return
	}
	words := strings.SplitAfter(text, " ")
	stream(w, func(emit func(any)) {
		emit(map[string]any{"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"role": "assistant", "content": ""}, "finish_reason": nil}}})
		for i, wd := range words {
			var finish any
			if i == len(words)-1 {
				finish = "stop"
			}
			emit(map[string]any{"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": req.Model,
				"choices": []any{map[string]any{"index": 0, "delta": map[string]any{"content": wd}, "finish_reason": finish}}})
		}
		if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
			emit(map[string]any{"id": id, "object": "chat.completion.chunk", "created": 1700000000, "model": req.Model, "choices": []any{}, "usage": usage(text)})
		}
	})
}

func (s *Server) completion(w http.ResponseWriter, body []byte) {
	req, ok := decode(w, body)
	if !ok {
		return
	}
	id, text := "cmpl-"+randomHex(8), req.answer()
	if !req.Stream {
		writeJSON(w, map[string]any{"id": id, "object": "text_completion", "created": 1700000000, "model": req.Model,
			"choices": []any{map[string]any{"index": 0, "text": text, "finish_reason": "stop", "logprobs": nil}}, "usage": usage(text)})
		return
	}
	words := strings.SplitAfter(text, " ")
	stream(w, func(emit func(any)) {
		for i, wd := range words {
			var finish any
			if i == len(words)-1 {
				finish = "stop"
			}
			emit(map[string]any{"id": id, "object": "text_completion", "created": 1700000000, "model": req.Model,
				"choices": []any{map[string]any{"index": 0, "text": wd, "finish_reason": finish, "logprobs": nil}}})
		}
	})
}

func (s *Server) embed(w http.ResponseWriter, body []byte) {
	req, ok := decode(w, body)
	if !ok {
		return
	}
	var inputs []json.RawMessage
	if json.Unmarshal(req.Input, &inputs) != nil {
		inputs = []json.RawMessage{req.Input}
	}
	data := make([]any, 0, len(inputs))
	for i := range inputs {
		vec := make([]float64, s.o.EmbeddingDim)
		for j := range vec {
			vec[j] = float64(i+1) / float64(j+2)
		}
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": vec})
	}
	writeJSON(w, map[string]any{"object": "list", "data": data, "model": req.Model,
		"usage": map[string]any{"prompt_tokens": len(inputs) * 3, "total_tokens": len(inputs) * 3}})
}

func usage(text string) map[string]any {
	n := len(strings.Fields(text))
	return map[string]any{"prompt_tokens": 5, "completion_tokens": n, "total_tokens": 5 + n}
}

func stream(w http.ResponseWriter, fn func(emit func(any))) {
	w.Header().Set("Content-Type", "text/event-stream")
	fl, _ := w.(http.Flusher)
	fn(func(v any) {
		b, _ := json.Marshal(v)
		fmt.Fprintf(w, "data: %s\n\n", b)
		if fl != nil {
			fl.Flush()
		}
	})
	io.WriteString(w, "data: [DONE]\n\n")
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": msg, "type": "invalid_request_error", "param": nil, "code": code}})
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
