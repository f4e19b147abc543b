// Package resilient wraps a provider.Provider with what keeps the server up
// when an upstream throttles, fails or stalls: a bound on the time to the
// response headers, an idle watchdog on streams, retries with exponential
// backoff and full jitter (honouring Retry-After) before anything reached
// the client, a per-provider concurrency cap with a bounded queue, and a
// circuit breaker. Its Transport sets the connect and response-header
// timeouts on the HTTP transport the adapters use.
//
// Everything happens on the caller's goroutine; the only other goroutines
// are the timer callbacks that cancel a stalled or late upstream call.
package resilient

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/metrics"
	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

// Sentinels found (with errors.Is) in the errors the wrapper makes; each
// is the Err of a *provider.Error that carries the status for the client.
var (
	// ErrOverloaded: the provider's concurrency cap was reached and no
	// slot freed up within queue_timeout (503, type "overloaded").
	ErrOverloaded = errors.New("provider at its concurrency limit")
	// ErrCircuitOpen: the provider's circuit breaker is open (503, with
	// RetryAfter the time until it lets a probe through).
	ErrCircuitOpen = errors.New("provider circuit open")
	// ErrStreamIdle: a stream sent nothing for stream_idle_timeout and was
	// cut (504, type "timeout").
	ErrStreamIdle = errors.New("upstream stream idle")
	// ErrFirstByteTimeout: the upstream sent no response headers within
	// first_byte_timeout (504, type "timeout").
	ErrFirstByteTimeout = errors.New("upstream response headers timed out")
)

// Options are the non-config inputs of Wrap.
type Options struct {
	// ProviderID names the provider in errors, logs and metric labels.
	ProviderID string
	// Logger receives retries and circuit changes; nil discards them.
	Logger *slog.Logger
	// Metrics records errors, retries, open streams and circuit state;
	// nil records nothing.
	Metrics *metrics.Metrics
	// Now tells the time for the retry budget and the breaker's open
	// period; nil means time.Now. Waits use the time package's timers,
	// so tests run the wrapper inside a testing/synctest bubble.
	Now func() time.Time
	// Jitter picks the wait before a retry in [0, max]; nil means
	// uniformly at random ("full jitter").
	Jitter func(max time.Duration) time.Duration
}

// Provider is a provider.Provider with the resilience of its config. It
// always offers the optional capabilities; those the wrapped provider lacks
// fail with an error wrapping provider.ErrUnsupported.
type Provider struct {
	inner  provider.Provider
	comp   provider.Completer
	emb    provider.Embedder
	lister provider.ModelLister

	id     string
	log    *slog.Logger
	m      *metrics.Metrics
	now    func() time.Time
	jitter func(time.Duration) time.Duration

	firstByte, idle                time.Duration
	maxRetries                     int
	budget, initial, maxBackoff    time.Duration
	slots                          chan struct{} // nil: no cap
	queueTimeout                   time.Duration
	br                             *breaker // nil: off
	firstByteText, idleText, limit string
}

// Interface guards.
var (
	_ provider.Provider         = (*Provider)(nil)
	_ provider.Completer        = (*Provider)(nil)
	_ provider.Embedder         = (*Provider)(nil)
	_ provider.ModelLister      = (*Provider)(nil)
	_ provider.Stream           = (*stream[*openai.ChatCompletionChunk])(nil)
	_ provider.CompletionStream = (*stream[*openai.Completion])(nil)
)

// Wrap returns p with the resilience cfg describes (see config.Resilience;
// cfg is expected to be valid, as Config.ResilienceFor returns it).
func Wrap(p provider.Provider, cfg config.Resilience, o Options) *Provider {
	w := &Provider{
		inner:        p,
		id:           o.ProviderID,
		log:          o.Logger,
		m:            o.Metrics,
		now:          o.Now,
		jitter:       o.Jitter,
		firstByte:    seconds(cfg.FirstByteTimeout),
		idle:         seconds(cfg.StreamIdleTimeout),
		maxRetries:   max(cfg.MaxRetries, 0),
		budget:       seconds(cfg.RetryBudget),
		initial:      seconds(cfg.InitialBackoff),
		maxBackoff:   seconds(cfg.MaxBackoff),
		queueTimeout: seconds(cfg.QueueTimeout),
	}
	w.comp, _ = p.(provider.Completer)
	w.emb, _ = p.(provider.Embedder)
	w.lister, _ = p.(provider.ModelLister)
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	w.log = w.log.With(slog.String("provider_id", w.id))
	if w.now == nil {
		w.now = time.Now
	}
	if w.jitter == nil {
		w.jitter = func(d time.Duration) time.Duration { return rand.N(d + 1) }
	}
	w.maxBackoff = max(w.maxBackoff, w.initial)
	if cfg.MaxConcurrency > 0 {
		w.slots = make(chan struct{}, cfg.MaxConcurrency)
		w.limit = strconv.Itoa(cfg.MaxConcurrency)
	}
	cb := cfg.CircuitBreaker
	if cb.FailureThreshold > 0 {
		w.br = &breaker{
			threshold: cb.FailureThreshold,
			cooldown:  max(seconds(cb.OpenDuration), time.Millisecond),
			probes:    max(cb.HalfOpenProbes, 1),
			onChange:  w.circuitChanged,
		}
		w.m.SetCircuitState(w.id, metrics.CircuitClosed)
	}
	w.firstByteText = fmtSeconds(w.firstByte)
	w.idleText = fmtSeconds(w.idle)
	return w
}

// Unwrap returns the wrapped provider.
func (w *Provider) Unwrap() provider.Provider { return w.inner }

// CircuitState returns the state of the circuit breaker (closed when it is
// switched off).
func (w *Provider) CircuitState() metrics.CircuitState {
	return w.br.current(w.now())
}

// Chat sends a non-streamed request, retrying retryable failures.
func (w *Provider) Chat(ctx context.Context, req *provider.Request) (*openai.ChatCompletion, error) {
	return unaryCall(ctx, w, func(ctx context.Context) (*openai.ChatCompletion, error) { return w.inner.Chat(ctx, req) })
}

// ChatStream opens a stream and waits for its first chunk, retrying
// retryable failures of either; so an error from it means nothing was sent
// to the client, and the stream it returns yields a chunk (or io.EOF)
// first. Later failures are not retried. The stream holds a concurrency
// slot until Close.
func (w *Provider) ChatStream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	s, err := streamCall[*openai.ChatCompletionChunk](ctx, w, func(ctx context.Context) (provider.Stream, error) { return w.inner.ChatStream(ctx, req) })
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Complete sends a legacy completion, like Chat.
func (w *Provider) Complete(ctx context.Context, req *provider.CompletionRequest) (*openai.Completion, error) {
	if w.comp == nil {
		return nil, w.unsupported("completions")
	}
	return unaryCall(ctx, w, func(ctx context.Context) (*openai.Completion, error) { return w.comp.Complete(ctx, req) })
}

// CompleteStream opens a legacy completion stream, like ChatStream.
func (w *Provider) CompleteStream(ctx context.Context, req *provider.CompletionRequest) (provider.CompletionStream, error) {
	if w.comp == nil {
		return nil, w.unsupported("completions")
	}
	s, err := streamCall[*openai.Completion](ctx, w, func(ctx context.Context) (provider.CompletionStream, error) {
		return w.comp.CompleteStream(ctx, req)
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// Embed computes embeddings, like Chat.
func (w *Provider) Embed(ctx context.Context, req *provider.EmbedRequest) (*openai.EmbeddingList, error) {
	if w.emb == nil {
		return nil, w.unsupported("embeddings")
	}
	return unaryCall(ctx, w, func(ctx context.Context) (*openai.EmbeddingList, error) { return w.emb.Embed(ctx, req) })
}

// ListModels asks the upstream for its models, within first_byte_timeout
// but without retries, queueing or the breaker: model discovery has its
// own schedule and must not trip the circuit for the requests.
func (w *Provider) ListModels(ctx context.Context) ([]openai.Model, error) {
	if w.lister == nil {
		return nil, w.unsupported("model listing")
	}
	return bounded(ctx, w, func(ctx context.Context) ([]openai.Model, error) { return w.lister.ListModels(ctx) })
}

func (w *Provider) unsupported(what string) error {
	return fmt.Errorf("provider %s: %s: %w", w.id, what, provider.ErrUnsupported)
}

// circuitChanged logs and records a change of the breaker's state.
func (w *Provider) circuitChanged(from, to metrics.CircuitState, failures int) {
	w.m.SetCircuitState(w.id, to)
	level := slog.LevelInfo
	if to == metrics.CircuitOpen {
		level = slog.LevelWarn
	}
	w.log.LogAttrs(context.Background(), level, "circuit breaker "+to.String(),
		slog.String("from", from.String()), slog.Int("consecutive_failures", failures))
}

// seconds converts config seconds to a Duration, saturating.
func seconds(s float64) time.Duration {
	switch {
	case !(s > 0):
		return 0
	case s >= float64(math.MaxInt64)/float64(time.Second):
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(s * float64(time.Second))
}

// fmtSeconds writes a duration as seconds for messages: "60s", "0.25s".
func fmtSeconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64) + "s"
}

// Transport returns a clone of base (nil: http.DefaultTransport) with the
// connect timeout (dial and TLS handshake) and the response-header timeout
// (first_byte_timeout) of cfg, for the HTTP clients of the provider
// adapters. A zero setting keeps base's value. Proxy settings are kept (the
// default transport's come from HTTPS_PROXY/NO_PROXY) and HTTP/2 is still
// attempted. There is deliberately no overall client timeout: it would cut
// long streams.
func Transport(cfg config.Resilience, base *http.Transport) *http.Transport {
	var t *http.Transport
	switch dt, ok := http.DefaultTransport.(*http.Transport); {
	case base != nil:
		t = base.Clone()
	case ok:
		t = dt.Clone()
	default:
		t = &http.Transport{Proxy: http.ProxyFromEnvironment, MaxIdleConns: 100, IdleConnTimeout: 90 * time.Second}
	}
	if d := seconds(cfg.ConnectTimeout); d > 0 {
		t.DialContext = (&net.Dialer{Timeout: d, KeepAlive: 30 * time.Second}).DialContext
		t.TLSHandshakeTimeout = d
	}
	if d := seconds(cfg.FirstByteTimeout); d > 0 {
		t.ResponseHeaderTimeout = d
	}
	// A custom DialContext switches HTTP/2 off unless this is set.
	t.ForceAttemptHTTP2 = true
	return t
}
