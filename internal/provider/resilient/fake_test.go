package resilient

import (
	"context"
	"errors"
	"io"
	"sync"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

// step scripts one upstream call of the fake: wait (or block until the
// call's context ends), then fail with err or succeed; a stream then
// yields its chunks.
type step struct {
	delay  time.Duration
	block  bool
	err    error
	chunks []chunk
}

// chunk scripts one Next of a fake stream: wait (or block), then fail with
// err, end (eof) or yield a chunk.
type chunk struct {
	delay time.Duration
	block bool
	err   error
	eof   bool
}

// fake is a scripted chat provider. Calls past the script succeed at once
// with one chunk.
type fake struct {
	mu       sync.Mutex
	script   []step
	calls    int
	at       []time.Time // when each call started
	inflight int         // calls and streams not finished
	peak     int
	closed   int // streams closed
	opened   int // streams opened
	causes   []error
}

func newFake(script ...step) *fake { return &fake{script: script} }

func (f *fake) next() step {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	f.at = append(f.at, time.Now())
	f.inflight++
	f.peak = max(f.peak, f.inflight)
	if len(f.script) == 0 {
		return step{chunks: []chunk{{}, {eof: true}}}
	}
	s := f.script[0]
	f.script = f.script[1:]
	return s
}

func (f *fake) finish() {
	f.mu.Lock()
	f.inflight--
	f.mu.Unlock()
}

func (f *fake) snapshot() (calls, inflight, opened, closed int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.inflight, f.opened, f.closed
}

// wait waits d, or until ctx ends (returning its cause, as the adapters
// do); block waits for ctx alone.
func wait(ctx context.Context, d time.Duration, block bool) error {
	if block {
		<-ctx.Done()
		return context.Cause(ctx)
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

func (f *fake) Chat(ctx context.Context, req *provider.Request) (*openai.ChatCompletion, error) {
	s := f.next()
	defer f.finish()
	if err := wait(ctx, s.delay, s.block); err != nil {
		f.record(err)
		return nil, err
	}
	if s.err != nil {
		return nil, s.err
	}
	return &openai.ChatCompletion{ID: "cmpl", Model: req.ClientModel}, nil
}

func (f *fake) record(err error) {
	f.mu.Lock()
	f.causes = append(f.causes, err)
	f.mu.Unlock()
}

func (f *fake) ChatStream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	s := f.next()
	if err := wait(ctx, s.delay, s.block); err != nil {
		f.record(err)
		f.finish()
		return nil, err
	}
	if s.err != nil {
		f.finish()
		return nil, s.err
	}
	f.mu.Lock()
	f.opened++
	n := f.calls
	f.mu.Unlock()
	return &fakeStream{f: f, ctx: ctx, chunks: s.chunks, call: n}, nil
}

type fakeStream struct {
	f      *fake
	ctx    context.Context
	chunks []chunk
	call   int // which call opened it
	seq    int
	closed bool
}

func (s *fakeStream) Next() (*openai.ChatCompletionChunk, error) {
	if len(s.chunks) == 0 {
		return nil, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	if err := wait(s.ctx, c.delay, c.block); err != nil {
		s.f.record(err)
		return nil, err
	}
	switch {
	case c.err != nil:
		return nil, c.err
	case c.eof:
		return nil, io.EOF
	}
	s.seq++
	return &openai.ChatCompletionChunk{ID: chunkID(s.call, s.seq)}, nil
}

func chunkID(call, seq int) string {
	return "call" + string(rune('0'+call)) + "-chunk" + string(rune('0'+seq))
}

func (s *fakeStream) Close() error {
	if s.closed {
		return errors.New("fake stream closed twice")
	}
	s.closed = true
	s.f.mu.Lock()
	s.f.closed++
	s.f.mu.Unlock()
	s.f.finish()
	return nil
}

// full is a fake with every optional capability.
type full struct{ *fake }

func (full) Complete(ctx context.Context, req *provider.CompletionRequest) (*openai.Completion, error) {
	return &openai.Completion{ID: "legacy"}, nil
}

func (full) CompleteStream(ctx context.Context, req *provider.CompletionRequest) (provider.CompletionStream, error) {
	return &completionStream{}, nil
}

func (full) Embed(ctx context.Context, req *provider.EmbedRequest) (*openai.EmbeddingList, error) {
	return &openai.EmbeddingList{Model: "emb"}, nil
}

func (full) ListModels(ctx context.Context) ([]openai.Model, error) {
	return []openai.Model{{ID: "m1"}}, nil
}

type completionStream struct{ n int }

func (s *completionStream) Next() (*openai.Completion, error) {
	if s.n > 0 {
		return nil, io.EOF
	}
	s.n++
	return &openai.Completion{ID: "legacy-chunk"}, nil
}

func (s *completionStream) Close() error { return nil }
