package resilient

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"syscall"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/metrics"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

// Values of the type label of upstream_errors_total: what ErrorType
// returns.
const (
	ErrorThrottled   = "throttled"    // 429
	ErrorTimeout     = "timeout"      // 408, 504, no response headers in time
	ErrorStalled     = "stalled"      // a stream sent nothing for stream_idle_timeout
	ErrorServer      = "server_error" // other 5xx
	ErrorConnection  = "connection"   // not reached, connection refused or reset
	ErrorClient      = "client_error" // 4xx other than 408 and 429
	ErrorOverloaded  = "overloaded"   // rejected by the concurrency cap
	ErrorCircuitOpen = "circuit_open" // rejected by the open circuit
	ErrorOther       = "other"        // anything else
)

// ErrorType classifies a failed upstream call into one of a fixed set of
// types (the Error* constants), for metrics.
func ErrorType(err error) string {
	switch {
	case errors.Is(err, ErrOverloaded):
		return ErrorOverloaded
	case errors.Is(err, ErrCircuitOpen):
		return ErrorCircuitOpen
	case errors.Is(err, ErrStreamIdle):
		return ErrorStalled
	case errors.Is(err, ErrFirstByteTimeout):
		return ErrorTimeout
	}
	var pe *provider.Error
	if errors.As(err, &pe) {
		switch s := pe.StatusCode; {
		case s == http.StatusTooManyRequests:
			return ErrorThrottled
		case s == http.StatusRequestTimeout || s == http.StatusGatewayTimeout:
			return ErrorTimeout
		case s == 0 || pe.Code == "upstream_unreachable" || pe.Code == "upstream_stream_broken" || connectionError(pe.Err):
			// Not reached, or the connection broke mid-answer (the
			// adapters report that as a 502 of their own).
			return ErrorConnection
		case s >= 500:
			return ErrorServer
		case s >= 400:
			return ErrorClient
		}
		return ErrorOther
	}
	var ne net.Error
	switch {
	case errors.As(err, &ne) && ne.Timeout():
		return ErrorTimeout
	case connectionError(err):
		return ErrorConnection
	}
	return ErrorOther
}

// Retryable reports whether a failed upstream call is worth another
// attempt: throttling (429), a request timeout (408), an upstream 5xx other
// than 501 and 505, an upstream that was not reached (status 0), timeouts
// (the wrapper's own and those of the transport) and connection failures.
// Client errors, the wrapper's own rejections (ErrOverloaded,
// ErrCircuitOpen) and context.Canceled are not. It cannot tell whose
// deadline passed: a caller checks its own context first.
func Retryable(err error) bool {
	if err == nil || errors.Is(err, ErrOverloaded) || errors.Is(err, ErrCircuitOpen) {
		return false
	}
	var pe *provider.Error
	if errors.As(err, &pe) {
		switch s := pe.StatusCode; {
		case s == 0, s == http.StatusRequestTimeout, s == http.StatusTooManyRequests:
			return true
		case s == http.StatusNotImplemented, s == http.StatusHTTPVersionNotSupported:
			return false
		default:
			return s >= 500
		}
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	// Timeouts (net.Error), context.DeadlineExceeded included: the wrapper
	// checks its caller's context before asking.
	var ne net.Error
	return errors.As(err, &ne) || connectionError(err)
}

// connectionError reports a connection that failed or broke.
func connectionError(err error) bool {
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE)
}

// outcome is what a finished request tells the circuit breaker.
type outcome int

const (
	neutral outcome = iota // says nothing about the upstream (cancelled, rejected locally)
	success                // the upstream answered (also with a client error)
	failure                // a retryable failure, after the retries
)

func outcomeOf(err error) outcome {
	if err == nil {
		return success
	}
	if Retryable(err) {
		return failure
	}
	var pe *provider.Error
	if errors.As(err, &pe) && pe.StatusCode >= 400 && pe.StatusCode < 500 {
		return success
	}
	return neutral
}

// run admits a request (circuit breaker, then a concurrency slot) and runs
// attempt until it succeeds, fails in a way not worth retrying, or the
// retries or their budget are spent. On success the caller owns release
// and calls it when done with the result (a stream: at Close). On failure
// it returns the last attempt's error as is (a 429 keeps its RetryAfter),
// or the cause of ctx when ctx ended during a wait.
func run[T any](ctx context.Context, w *Provider, attempt func(context.Context) (T, error)) (T, func(), error) {
	var zero T
	tk, err := w.br.admit(w)
	if err != nil {
		w.m.UpstreamError(w.id, ErrorCircuitOpen)
		return zero, nil, err
	}
	if err := w.acquire(ctx); err != nil {
		w.br.done(tk, neutral, w.now())
		if errors.Is(err, ErrOverloaded) {
			w.m.UpstreamError(w.id, ErrorOverloaded)
		}
		return zero, nil, err
	}
	released := false
	release := func() {
		if !released {
			released = true
			w.release()
		}
	}
	settled := false
	fail := func(o outcome, err error) (T, func(), error) {
		settled = true
		w.br.done(tk, o, w.now())
		release()
		return zero, nil, err
	}
	defer func() {
		if !settled {
			// The inner provider panicked: free the slot and the probe
			// before the panic goes on to the handler's recovery.
			w.br.done(tk, neutral, w.now())
			release()
		}
	}()
	retries := w.maxRetries
	if tk.probe {
		retries = 0 // a probe asks the upstream once
	}
	var firstFailure time.Time
	for try := 0; ; try++ {
		v, err := attempt(ctx)
		if err == nil {
			settled = true
			w.br.done(tk, success, w.now())
			return v, release, nil
		}
		if ctx.Err() != nil {
			return fail(neutral, err)
		}
		w.m.UpstreamError(w.id, ErrorType(err))
		if !Retryable(err) || try >= retries {
			return fail(outcomeOf(err), err)
		}
		now := w.now()
		if firstFailure.IsZero() {
			firstFailure = now
		}
		wait := w.backoff(try)
		var pe *provider.Error
		if errors.As(err, &pe) && pe.RetryAfter > wait {
			wait = pe.RetryAfter
		}
		if spent := now.Sub(firstFailure); spent+wait > w.budget {
			w.log.LogAttrs(ctx, slog.LevelDebug, "not retrying: retry budget spent",
				slog.Int("attempt", try+1), slog.Duration("wait", wait), slog.Duration("spent", spent), slog.String("error", err.Error()))
			return fail(failure, err)
		}
		if w.br.current(now) == metrics.CircuitOpen {
			return fail(failure, err) // other requests tripped the breaker
		}
		w.log.LogAttrs(ctx, slog.LevelDebug, "retrying upstream call",
			slog.Int("attempt", try+1), slog.Duration("wait", wait), slog.String("error_type", ErrorType(err)), slog.String("error", err.Error()))
		if err := sleep(ctx, wait); err != nil {
			return fail(neutral, err)
		}
		if w.br.current(w.now()) == metrics.CircuitOpen {
			return fail(failure, err) // tripped while this request waited
		}
		w.m.UpstreamRetry(w.id)
	}
}

// backoff returns the wait before retry number try+1: full jitter over an
// exponential backoff capped at max_backoff.
func (w *Provider) backoff(try int) time.Duration {
	d := w.initial
	for i := 0; i < try && d < w.maxBackoff; i++ {
		d *= 2
	}
	d = min(d, w.maxBackoff)
	if d <= 0 {
		return 0
	}
	return min(max(w.jitter(d), 0), d)
}

// sleep waits d or until ctx ends, and then returns its cause.
func sleep(ctx context.Context, d time.Duration) error {
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
		}
	}
	if ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return nil
}

// acquire takes a concurrency slot, waiting up to queue_timeout.
func (w *Provider) acquire(ctx context.Context) error {
	if w.slots == nil {
		return nil
	}
	select {
	case w.slots <- struct{}{}:
		return nil
	default:
	}
	if w.queueTimeout > 0 {
		t := time.NewTimer(w.queueTimeout)
		defer t.Stop()
		select {
		case w.slots <- struct{}{}:
			return nil
		case <-ctx.Done():
			return context.Cause(ctx)
		case <-t.C:
		}
	}
	return &provider.Error{
		Provider: w.id, StatusCode: http.StatusServiceUnavailable, Type: "overloaded", Code: "provider_overloaded",
		Message: "provider " + w.id + " is at its limit of " + w.limit + " concurrent requests and none finished within " +
			fmtSeconds(w.queueTimeout) + "; try again later",
		RetryAfter: time.Second,
		Err:        ErrOverloaded,
	}
}

// release gives back a concurrency slot.
func (w *Provider) release() {
	if w.slots != nil {
		<-w.slots
	}
}

// bounded runs f with a context that is cancelled when first_byte_timeout
// passes, and turns that into a 504. It suits calls whose answer is
// complete when f returns; streams use openStream.
func bounded[T any](ctx context.Context, w *Provider, f func(context.Context) (T, error)) (T, error) {
	if w.firstByte <= 0 {
		return f(ctx)
	}
	actx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	t := time.AfterFunc(w.firstByte, func() { cancel(ErrFirstByteTimeout) })
	v, err := f(actx)
	t.Stop()
	if err != nil && w.firstByteFired(ctx, actx) {
		var zero T
		return zero, w.firstByteError(err)
	}
	return v, err
}

// firstByteFired reports whether actx was cancelled by the first-byte
// timer rather than by the caller.
func (w *Provider) firstByteFired(ctx, actx context.Context) bool {
	return ctx.Err() == nil && errors.Is(context.Cause(actx), ErrFirstByteTimeout)
}

func (w *Provider) firstByteError(cause error) error {
	w.log.LogAttrs(context.Background(), slog.LevelDebug, "upstream response headers timed out",
		slog.Duration("first_byte_timeout", w.firstByte), slog.String("error", cause.Error()))
	return &provider.Error{
		Provider: w.id, StatusCode: http.StatusGatewayTimeout, Type: "timeout", Code: "upstream_timeout",
		Message: "upstream sent no response within " + w.firstByteText,
		Err:     ErrFirstByteTimeout,
	}
}

func unaryCall[T any](ctx context.Context, w *Provider, f func(context.Context) (T, error)) (T, error) {
	v, release, err := run(ctx, w, func(ctx context.Context) (T, error) { return bounded(ctx, w, f) })
	if err != nil {
		return v, err
	}
	release()
	return v, nil
}
