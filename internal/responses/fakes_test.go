package responses

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// memStore is an in-memory store.Records with the semantics the interface
// documents.
type memStore struct {
	mu   sync.Mutex
	recs map[[2]string]store.Record
	puts int
}

func newMemStore() *memStore { return &memStore{recs: map[[2]string]store.Record{}} }

func (m *memStore) PutRecords(_ context.Context, recs ...store.Record) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.puts++
	for _, r := range recs {
		r.Body = append([]byte(nil), r.Body...)
		m.recs[[2]string{r.Kind, r.ID}] = r
	}
	return nil
}

func (m *memStore) GetRecord(_ context.Context, kind, id string) (store.Record, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	r, ok := m.recs[[2]string{kind, id}]
	if !ok {
		return store.Record{}, store.ErrNotFound
	}
	return r, nil
}

func (m *memStore) DeleteRecord(_ context.Context, kind, id string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[[2]string{kind, id}]; !ok {
		return store.ErrNotFound
	}
	delete(m.recs, [2]string{kind, id})
	for k, r := range m.recs {
		if r.Parent == id {
			delete(m.recs, k)
		}
	}
	return nil
}

func (m *memStore) ListRecords(_ context.Context, q store.ListQuery) ([]store.Record, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var all []store.Record
	for _, r := range m.recs {
		if r.Kind != q.Kind || r.Parent != q.Parent || (q.Model != "" && r.Model != q.Model) || (q.Owner != "" && r.Owner != q.Owner) {
			continue
		}
		all = append(all, r)
	}
	slices.SortFunc(all, func(a, b store.Record) int {
		if c := cmp.Compare(a.SortKey, b.SortKey); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	if q.Desc {
		slices.Reverse(all)
	}
	start, end := 0, len(all)
	if q.After != "" {
		i := slices.IndexFunc(all, func(r store.Record) bool { return r.ID == q.After })
		if i < 0 {
			return nil, false, store.ErrNotFound
		}
		start = i + 1
	}
	if q.Before != "" {
		i := slices.IndexFunc(all, func(r store.Record) bool { return r.ID == q.Before })
		if i < 0 {
			return nil, false, store.ErrNotFound
		}
		end = i
	}
	page := all[start:max(start, end)]
	more := len(page) > q.Limit
	if more {
		page = page[:q.Limit]
	}
	return slices.Clone(page), more, nil
}

func (m *memStore) count(kind string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := 0
	for k := range m.recs {
		if k[0] == kind {
			n++
		}
	}
	return n
}

// reply is one scripted model answer.
type reply struct {
	reasoning string
	text      string
	calls     []openai.ToolCall
	finish    string // default: "tool_calls" with calls, else "stop"
	usage     *openai.Usage
	err       error // returned instead of an answer
	failAfter int   // streams: chunks before failing with err (0: fail at open)
}

// fakeProvider answers from a script and records what it was sent.
type fakeProvider struct {
	t      testing.TB
	mu     sync.Mutex
	reqs   []*openai.ChatCompletionRequest
	script func(n int, req *openai.ChatCompletionRequest) reply
}

func (p *fakeProvider) record(req *provider.Request) (int, *openai.ChatCompletionRequest) {
	// The passthrough body must be the request built, not the client's.
	var fromRaw openai.ChatCompletionRequest
	if err := json.Unmarshal(req.Raw, &fromRaw); err != nil {
		p.t.Errorf("Raw is not a chat request: %v", err)
	}
	if len(fromRaw.Messages) != len(req.Chat.Messages) || fromRaw.Stream != req.Chat.Stream {
		p.t.Errorf("Raw and Chat disagree: %s", req.Raw)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reqs = append(p.reqs, &fromRaw)
	return len(p.reqs) - 1, &fromRaw
}

func (p *fakeProvider) requests() []*openai.ChatCompletionRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.reqs)
}

func (r reply) finishReason() string {
	switch {
	case r.finish != "":
		return r.finish
	case len(r.calls) > 0:
		return "tool_calls"
	}
	return "stop"
}

func (r reply) usageOr() *openai.Usage {
	if r.usage != nil {
		return r.usage
	}
	n := int64(len(strings.Fields(r.text + " " + r.reasoning)))
	return &openai.Usage{PromptTokens: 10, CompletionTokens: n, TotalTokens: 10 + n}
}

func (p *fakeProvider) Chat(_ context.Context, req *provider.Request) (*openai.ChatCompletion, error) {
	n, c := p.record(req)
	rp := p.script(n, c)
	if rp.err != nil {
		return nil, rp.err
	}
	m := openai.ResponseMessage{Role: "assistant"}
	if rp.text != "" || len(rp.calls) == 0 {
		m.Content = new(rp.text)
	}
	if rp.reasoning != "" {
		m.ReasoningContent = new(rp.reasoning)
	}
	m.ToolCalls = rp.calls
	return &openai.ChatCompletion{ID: "chatcmpl-1", Object: "chat.completion", Model: req.ClientModel,
		Choices: []openai.Choice{{Message: m, FinishReason: rp.finishReason()}}, Usage: rp.usageOr()}, nil
}

func (p *fakeProvider) ChatStream(_ context.Context, req *provider.Request) (provider.Stream, error) {
	n, c := p.record(req)
	rp := p.script(n, c)
	if rp.err != nil && rp.failAfter == 0 {
		return nil, rp.err
	}
	var chunks []*openai.ChatCompletionChunk
	add := func(d openai.Delta) {
		chunks = append(chunks, &openai.ChatCompletionChunk{ID: "chatcmpl-1", Object: "chat.completion.chunk", Choices: []openai.ChunkChoice{{Delta: d}}})
	}
	for _, w := range pieces(rp.reasoning) {
		add(openai.Delta{ReasoningContent: new(w)})
	}
	for _, w := range pieces(rp.text) {
		add(openai.Delta{Content: new(w)})
	}
	for i, tc := range rp.calls {
		args := tc.Function.Arguments
		half := len(args) / 2
		add(openai.Delta{ToolCalls: []openai.ToolCall{{Index: new(i), ID: tc.ID, Type: "function", Function: openai.FunctionCall{Name: tc.Function.Name, Arguments: args[:half]}}}})
		add(openai.Delta{ToolCalls: []openai.ToolCall{{Index: new(i), Function: openai.FunctionCall{Arguments: args[half:]}}}})
	}
	fr := rp.finishReason()
	chunks = append(chunks, &openai.ChatCompletionChunk{Choices: []openai.ChunkChoice{{FinishReason: &fr}}})
	chunks = append(chunks, &openai.ChatCompletionChunk{Choices: []openai.ChunkChoice{}, Usage: rp.usageOr()})
	return &fakeStream{chunks: chunks, err: rp.err, failAfter: rp.failAfter}, nil
}

// pieces splits text into word-sized pieces that concatenate to it.
func pieces(s string) []string {
	var out []string
	for s != "" {
		i := strings.IndexByte(s[min(1, len(s)):], ' ')
		if i < 0 {
			out = append(out, s)
			break
		}
		out = append(out, s[:i+1])
		s = s[i+1:]
	}
	return out
}

type fakeStream struct {
	chunks    []*openai.ChatCompletionChunk
	i         int
	err       error
	failAfter int
}

func (s *fakeStream) Next() (*openai.ChatCompletionChunk, error) {
	if s.err != nil && s.i == s.failAfter {
		return nil, s.err
	}
	if s.i >= len(s.chunks) {
		return nil, io.EOF
	}
	s.i++
	return s.chunks[s.i-1], nil
}

func (s *fakeStream) Close() error { return nil }

var errScript = errors.New("script error")
