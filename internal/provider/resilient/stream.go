package resilient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

// upstream is a stream of an inner provider: provider.Stream or
// provider.CompletionStream.
type upstream[T any] interface {
	Next() (T, error)
	Close() error
}

// stream relays an upstream stream under the idle watchdog. Its first
// chunk was read when it was opened (so that a failure there could still
// be retried); Next hands that one out first.
type stream[T any] struct {
	w      *Provider
	inner  upstream[T]
	parent context.Context // the caller's
	ctx    context.Context // the upstream call's; cancelled on stall and at Close
	cancel context.CancelCauseFunc
	timer  *time.Timer // the idle watchdog; nil until armed

	first    T
	hasFirst bool
	eof      bool // the upstream ended before its first chunk
	release  func()
	close    sync.Once
	closeErr error
}

// streamCall opens a stream with the wrapper's admission and retries (the
// open and the first chunk are one attempt), and hands the stream the
// concurrency slot.
func streamCall[T any, S upstream[T]](ctx context.Context, w *Provider, open func(context.Context) (S, error)) (*stream[T], error) {
	s, release, err := run(ctx, w, func(ctx context.Context) (*stream[T], error) {
		return openStream[T](ctx, w, func(ctx context.Context) (upstream[T], error) {
			st, err := open(ctx)
			if err != nil {
				return nil, err
			}
			return st, nil
		})
	})
	if err != nil {
		return nil, err
	}
	s.release = release
	w.m.StreamOpened(w.id)
	return s, nil
}

// openStream is one attempt: open the upstream stream within
// first_byte_timeout, then read its first chunk under the idle watchdog.
// The stream's context outlives the call; the first-byte timer does not
// cover the body.
func openStream[T any](ctx context.Context, w *Provider, open func(context.Context) (upstream[T], error)) (*stream[T], error) {
	actx, cancel := context.WithCancelCause(ctx)
	var t *time.Timer
	if w.firstByte > 0 {
		t = time.AfterFunc(w.firstByte, func() { cancel(ErrFirstByteTimeout) })
	}
	st, err := open(actx)
	if t != nil {
		t.Stop()
	}
	if w.firstByteFired(ctx, actx) {
		// Also when open returned a stream: its context is gone.
		if err == nil {
			_ = st.Close()
		}
		cancel(nil)
		if err == nil {
			err = context.Cause(actx)
		}
		return nil, w.firstByteError(err)
	}
	if err != nil {
		cancel(nil)
		return nil, err
	}
	s := &stream[T]{w: w, inner: st, parent: ctx, ctx: actx, cancel: cancel}
	first, err := s.next()
	switch {
	case errors.Is(err, io.EOF):
		s.eof = true
	case err != nil:
		s.shut()
		return nil, err
	default:
		s.first, s.hasFirst = first, true
	}
	return s, nil
}

// Next returns the next chunk; io.EOF at the end. A stream that sends
// nothing for stream_idle_timeout is cut: its upstream call is cancelled
// and Next returns a 504 *provider.Error wrapping ErrStreamIdle.
func (s *stream[T]) Next() (T, error) {
	var zero T
	if s.hasFirst {
		v := s.first
		s.first, s.hasFirst = zero, false
		return v, nil
	}
	if s.eof {
		return zero, io.EOF
	}
	v, err := s.next()
	if err != nil && !errors.Is(err, io.EOF) && s.parent.Err() == nil {
		s.w.m.UpstreamError(s.w.id, ErrorType(err))
	}
	return v, err
}

// next reads from the upstream under the idle watchdog, which runs only
// while the upstream is awaited: a client slow to take chunks is not the
// upstream's stall.
func (s *stream[T]) next() (T, error) {
	if s.w.idle > 0 {
		if s.timer == nil {
			s.timer = time.AfterFunc(s.w.idle, func() { s.cancel(ErrStreamIdle) })
		} else {
			s.timer.Reset(s.w.idle)
		}
	}
	v, err := s.inner.Next()
	if s.timer != nil {
		s.timer.Stop()
	}
	if err != nil && !errors.Is(err, io.EOF) && s.parent.Err() == nil && errors.Is(context.Cause(s.ctx), ErrStreamIdle) {
		var zero T
		return zero, &provider.Error{
			Provider: s.w.id, StatusCode: http.StatusGatewayTimeout, Type: "timeout", Code: "upstream_stream_stalled",
			Message: "upstream stream stalled for " + s.w.idleText,
			Err:     ErrStreamIdle,
		}
	}
	return v, err
}

// Close closes the upstream stream and frees the concurrency slot. It may
// be called at any time and more than once.
func (s *stream[T]) Close() error {
	s.close.Do(func() {
		s.closeErr = s.shut()
		if s.release != nil {
			s.release()
			s.w.m.StreamClosed(s.w.id)
		}
	})
	return s.closeErr
}

// shut stops the watchdog, closes the upstream and ends its context.
func (s *stream[T]) shut() error {
	if s.timer != nil {
		s.timer.Stop()
	}
	err := s.inner.Close()
	s.cancel(nil)
	return err
}
