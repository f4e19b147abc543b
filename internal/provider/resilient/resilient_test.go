package resilient

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/metrics"
	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// settings returns the defaults with the breaker off, changed by mod.
func settings(mod func(*config.Resilience)) config.Resilience {
	r := config.DefaultResilience
	r.CircuitBreaker.FailureThreshold = 0
	if mod != nil {
		mod(&r)
	}
	return r
}

// harness is a wrapped fake with metrics, for use inside a synctest bubble.
type harness struct {
	f   *fake
	w   *Provider
	reg *prometheus.Registry
}

func newHarness(cfg config.Resilience, script ...step) *harness {
	reg := prometheus.NewRegistry()
	f := newFake(script...)
	w := Wrap(f, cfg, Options{
		ProviderID: "p",
		Metrics:    metrics.New(reg),
		Jitter:     func(d time.Duration) time.Duration { return d }, // the whole backoff
	})
	return &harness{f: f, w: w, reg: reg}
}

// metric returns the value of a counter or gauge series, 0 if absent.
func (h *harness) metric(t *testing.T, name string, labels ...string) float64 {
	t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	series:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue series
				}
			}
			switch {
			case m.GetCounter() != nil:
				return m.GetCounter().GetValue()
			case m.GetGauge() != nil:
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

var req = &provider.Request{Model: "up-model", ClientModel: "client-model"}

func status(code int) *provider.Error {
	return &provider.Error{Provider: "p", StatusCode: code, Type: "api_error", Message: fmt.Sprintf("upstream said %d", code)}
}

func throttled(retryAfter time.Duration) *provider.Error {
	e := status(http.StatusTooManyRequests)
	e.RetryAfter = retryAfter
	return e
}

func fails(err error) step { return step{err: err} }

var ok = step{}

// wantStatus checks that err is a *provider.Error with the status, or nil
// for status 0.
func wantStatus(t *testing.T, err error, code int) *provider.Error {
	t.Helper()
	if code == 0 {
		if err != nil {
			t.Fatalf("err = %v, want success", err)
		}
		return nil
	}
	var pe *provider.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want a *provider.Error with status %d", err, err, code)
	}
	if pe.StatusCode != code {
		t.Fatalf("status = %d, want %d (%v)", pe.StatusCode, code, err)
	}
	return pe
}

func TestChatRetries(t *testing.T) {
	unreachable := &provider.Error{Provider: "p", StatusCode: http.StatusBadGateway, Code: "upstream_unreachable", Message: "no"}
	tests := []struct {
		name        string
		mod         func(*config.Resilience)
		script      []step
		wantCalls   int
		wantStatus  int    // 0: success
		wantMsg     string // when set, the text of the (non-provider) error
		wantElapsed time.Duration
		wantRetries float64
	}{
		{name: "429 then success", script: []step{fails(throttled(0)), ok}, wantCalls: 2, wantElapsed: 500 * time.Millisecond, wantRetries: 1},
		{name: "5xx until success", script: []step{fails(status(503)), fails(status(502)), ok}, wantCalls: 3, wantElapsed: 1500 * time.Millisecond, wantRetries: 2},
		{name: "retries spent", script: []step{fails(status(500)), fails(status(504)), fails(status(503))}, wantCalls: 3, wantStatus: 503, wantElapsed: 1500 * time.Millisecond, wantRetries: 2},
		{name: "400 not retried", script: []step{fails(status(400)), ok}, wantCalls: 1, wantStatus: 400},
		{name: "401 not retried", script: []step{fails(status(401)), ok}, wantCalls: 1, wantStatus: 401},
		{name: "424 not retried", script: []step{fails(status(424)), ok}, wantCalls: 1, wantStatus: 424},
		{name: "501 not retried", script: []step{fails(status(501)), ok}, wantCalls: 1, wantStatus: 501},
		{name: "408 retried", script: []step{fails(status(408)), ok}, wantCalls: 2, wantElapsed: 500 * time.Millisecond, wantRetries: 1},
		{name: "unreachable retried", script: []step{fails(unreachable), ok}, wantCalls: 2, wantElapsed: 500 * time.Millisecond, wantRetries: 1},
		{name: "not reached retried", script: []step{fails(status(0)), ok}, wantCalls: 2, wantElapsed: 500 * time.Millisecond, wantRetries: 1},
		{name: "connection refused retried", script: []step{fails(&net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}), ok}, wantCalls: 2, wantElapsed: 500 * time.Millisecond, wantRetries: 1},
		{name: "other error not retried", script: []step{fails(errors.New("build request: bad url")), ok}, wantCalls: 1, wantMsg: "build request: bad url"},
		{name: "Retry-After honoured", script: []step{fails(throttled(5 * time.Second)), ok}, wantCalls: 2, wantElapsed: 5 * time.Second, wantRetries: 1},
		{name: "Retry-After shorter than the backoff", mod: func(r *config.Resilience) { r.InitialBackoff = 2 }, script: []step{fails(throttled(time.Second)), ok}, wantCalls: 2, wantElapsed: 2 * time.Second, wantRetries: 1},
		{name: "max_retries 0", mod: func(r *config.Resilience) { r.MaxRetries = 0 }, script: []step{fails(status(503)), ok}, wantCalls: 1, wantStatus: 503},
		{
			name: "budget ends the exponential backoff",
			mod: func(r *config.Resilience) {
				r.MaxRetries, r.InitialBackoff, r.MaxBackoff, r.RetryBudget = 10, 1, 8, 5
			},
			script:    []step{fails(status(503)), fails(status(503)), fails(status(503)), ok},
			wantCalls: 3, wantStatus: 503, wantElapsed: 3 * time.Second, wantRetries: 2, // waits 1s, 2s; 4s more would pass 5s
		},
		{
			name: "max_backoff caps the backoff",
			mod: func(r *config.Resilience) {
				r.MaxRetries, r.InitialBackoff, r.MaxBackoff, r.RetryBudget = 4, 1, 2, 100
			},
			script:    []step{fails(status(503)), fails(status(503)), fails(status(503)), fails(status(503)), ok},
			wantCalls: 5, wantElapsed: 7 * time.Second, wantRetries: 4, // 1+2+2+2
		},
		{
			name:      "slow retried attempts count against the budget",
			mod:       func(r *config.Resilience) { r.RetryBudget = 5 },
			script:    []step{fails(status(503)), {delay: 4 * time.Second, err: status(503)}, ok},
			wantCalls: 2, wantStatus: 503, wantElapsed: 4500 * time.Millisecond, wantRetries: 1,
		},
		{
			name:      "a slow first attempt does not",
			mod:       func(r *config.Resilience) { r.RetryBudget = 5 },
			script:    []step{{delay: 20 * time.Second, err: status(503)}, ok},
			wantCalls: 2, wantElapsed: 20500 * time.Millisecond, wantRetries: 1,
		},
		{
			name:      "first-byte timeout retried",
			mod:       func(r *config.Resilience) { r.FirstByteTimeout = 10 },
			script:    []step{{block: true}, ok},
			wantCalls: 2, wantElapsed: 10500 * time.Millisecond, wantRetries: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(settings(tt.mod), tt.script...)
				start := time.Now()
				resp, err := h.w.Chat(t.Context(), req)
				elapsed := time.Since(start)
				if tt.wantMsg != "" {
					if err == nil || err.Error() != tt.wantMsg {
						t.Fatalf("err = %v, want the upstream's error as is", err)
					}
				} else {
					wantStatus(t, err, tt.wantStatus)
				}
				if err == nil && resp.Model != "client-model" {
					t.Errorf("response model = %q", resp.Model)
				}
				calls, inflight, _, _ := h.f.snapshot()
				if calls != tt.wantCalls {
					t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
				}
				if inflight != 0 {
					t.Errorf("%d upstream calls still in flight", inflight)
				}
				if elapsed != tt.wantElapsed {
					t.Errorf("took %v, want %v", elapsed, tt.wantElapsed)
				}
				if got := h.metric(t, "llama_stack_upstream_retries_total", "provider", "p"); got != tt.wantRetries {
					t.Errorf("retries counted = %v, want %v", got, tt.wantRetries)
				}
			})
		})
	}
}

func TestRetryAfterBeyondBudgetPassesThe429Through(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		first := throttled(4 * time.Second)
		second := throttled(7 * time.Second)
		h := newHarness(settings(func(r *config.Resilience) { r.RetryBudget = 10 }), fails(first), fails(second), ok)
		start := time.Now()
		_, err := h.w.Chat(t.Context(), req)
		// Waited 4s; the second 7s would end at 11s, past the 10s budget.
		if err != error(second) {
			t.Fatalf("err = %v, want the upstream's second 429 itself", err)
		}
		if got := time.Since(start); got != 4*time.Second {
			t.Errorf("took %v, want 4s", got)
		}
		if calls, _, _, _ := h.f.snapshot(); calls != 2 {
			t.Errorf("calls = %d, want 2", calls)
		}
		if got := h.metric(t, "llama_stack_upstream_errors_total", "provider", "p", "type", ErrorThrottled); got != 2 {
			t.Errorf("throttled errors counted = %v, want 2", got)
		}

		h = newHarness(settings(nil), fails(throttled(time.Minute)), ok)
		start = time.Now()
		_, err = h.w.Chat(t.Context(), req)
		if pe := wantStatus(t, err, 429); pe.RetryAfter != time.Minute {
			t.Errorf("RetryAfter = %v, want the upstream's 1m", pe.RetryAfter)
		}
		if got := time.Since(start); got != 0 {
			t.Errorf("took %v, want no wait", got)
		}
	})
}

func TestFirstByteTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(settings(func(r *config.Resilience) { r.FirstByteTimeout, r.MaxRetries = 10, 0 }), step{block: true})
		start := time.Now()
		_, err := h.w.Chat(t.Context(), req)
		pe := wantStatus(t, err, http.StatusGatewayTimeout)
		if pe.Type != "timeout" || pe.Message != "upstream sent no response within 10s" || !errors.Is(err, ErrFirstByteTimeout) {
			t.Errorf("error = %+v", pe)
		}
		if got := time.Since(start); got != 10*time.Second {
			t.Errorf("took %v, want 10s", got)
		}
		if len(h.f.causes) != 1 || !errors.Is(h.f.causes[0], ErrFirstByteTimeout) {
			t.Errorf("upstream call ended with %v, want its context cancelled by the timer", h.f.causes)
		}
		if got := h.metric(t, "llama_stack_upstream_errors_total", "type", ErrorTimeout); got != 1 {
			t.Errorf("timeouts counted = %v", got)
		}
	})
}

func TestFirstByteTimeoutDoesNotCoverTheStreamBody(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		slow := chunk{delay: 4 * time.Second}
		h := newHarness(settings(func(r *config.Resilience) { r.FirstByteTimeout, r.StreamIdleTimeout = 5, 0 }),
			step{delay: 4 * time.Second, chunks: []chunk{slow, slow, slow, slow, {eof: true}}})
		start := time.Now()
		st, err := h.w.ChatStream(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		n := 0
		for {
			_, err := st.Next()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("chunk %d: %v", n+1, err)
			}
			n++
		}
		if n != 4 {
			t.Errorf("got %d chunks, want 4", n)
		}
		if got := time.Since(start); got != 20*time.Second {
			t.Errorf("stream took %v, want 20s", got)
		}

		h = newHarness(settings(func(r *config.Resilience) { r.FirstByteTimeout, r.MaxRetries = 5, 0 }), step{block: true})
		start = time.Now()
		_, err = h.w.ChatStream(t.Context(), req)
		if pe := wantStatus(t, err, http.StatusGatewayTimeout); !errors.Is(pe, ErrFirstByteTimeout) {
			t.Errorf("err = %v", err)
		}
		if got := time.Since(start); got != 5*time.Second {
			t.Errorf("open took %v, want 5s", got)
		}
	})
}

func TestCancelDuringBackoffReturnsPromptly(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(settings(func(r *config.Resilience) { r.MaxConcurrency, r.QueueTimeout = 1, 0 }),
			fails(throttled(20*time.Second)), ok, ok)
		ctx, cancel := context.WithCancel(t.Context())
		time.AfterFunc(time.Second, cancel)
		start := time.Now()
		_, err := h.w.Chat(ctx, req)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v, want context.Canceled", err)
		}
		if got := time.Since(start); got != time.Second {
			t.Errorf("returned after %v, want 1s", got)
		}
		// The slot was given back: the next request needs no queue.
		if _, err := h.w.Chat(t.Context(), req); err != nil {
			t.Fatalf("next request: %v", err)
		}
		if calls, _, _, _ := h.f.snapshot(); calls != 2 {
			t.Errorf("calls = %d, want 2", calls)
		}
	})
}

func TestStreamRetries(t *testing.T) {
	tests := []struct {
		name       string
		mod        func(*config.Resilience)
		script     []step
		wantStatus int      // of ChatStream; 0: opened
		wantIDs    []string // chunk ids read until EOF or error
		wantErr    int      // status of the error that ends the stream; 0: EOF
		wantCalls  int
		wantOpen   time.Duration // time ChatStream took
	}{
		{
			name:      "first Next error retried",
			script:    []step{{chunks: []chunk{{err: status(503)}}}, {chunks: []chunk{{}, {}, {eof: true}}}},
			wantIDs:   []string{chunkID(2, 1), chunkID(2, 2)},
			wantCalls: 2, wantOpen: 500 * time.Millisecond,
		},
		{
			name:      "open error retried",
			script:    []step{fails(throttled(time.Second)), {chunks: []chunk{{}, {eof: true}}}},
			wantIDs:   []string{chunkID(2, 1)},
			wantCalls: 2, wantOpen: time.Second,
		},
		{
			name:      "no retry after a chunk",
			script:    []step{{chunks: []chunk{{}, {err: status(502)}}}, {chunks: []chunk{{}, {eof: true}}}},
			wantIDs:   []string{chunkID(1, 1)},
			wantErr:   502,
			wantCalls: 1,
		},
		{
			name:      "first chunk stall retried",
			mod:       func(r *config.Resilience) { r.StreamIdleTimeout = 5 },
			script:    []step{{chunks: []chunk{{block: true}}}, {chunks: []chunk{{}, {eof: true}}}},
			wantIDs:   []string{chunkID(2, 1)},
			wantCalls: 2, wantOpen: 5500 * time.Millisecond,
		},
		{
			name:      "empty stream",
			script:    []step{{chunks: []chunk{{eof: true}}}},
			wantCalls: 1,
		},
		{
			name:       "client error in the first chunk",
			script:     []step{{chunks: []chunk{{err: status(400)}}}, {chunks: []chunk{{}, {eof: true}}}},
			wantStatus: 400,
			wantCalls:  1,
		},
		{
			name:       "retries spent",
			mod:        func(r *config.Resilience) { r.MaxRetries = 1 },
			script:     []step{{chunks: []chunk{{err: status(503)}}}, fails(status(500)), {chunks: []chunk{{}, {eof: true}}}},
			wantStatus: 500,
			wantCalls:  2, wantOpen: 500 * time.Millisecond,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(settings(tt.mod), tt.script...)
				start := time.Now()
				st, err := h.w.ChatStream(t.Context(), req)
				if got := time.Since(start); got != tt.wantOpen {
					t.Errorf("ChatStream took %v, want %v", got, tt.wantOpen)
				}
				wantStatus(t, err, tt.wantStatus)
				if err == nil {
					if st == nil {
						t.Fatal("nil stream without error")
					}
					var ids []string
					var end error
					for {
						c, err := st.Next()
						if err != nil {
							end = err
							break
						}
						ids = append(ids, c.ID)
					}
					if strings.Join(ids, ",") != strings.Join(tt.wantIDs, ",") {
						t.Errorf("chunks %v, want %v", ids, tt.wantIDs)
					}
					if tt.wantErr == 0 {
						if end != io.EOF {
							t.Errorf("stream ended with %v, want io.EOF", end)
						}
					} else {
						wantStatus(t, end, tt.wantErr)
					}
					if _, inflight, opened, closed := h.f.snapshot(); closed != opened-1 || inflight != 1 {
						t.Errorf("before Close: %d streams opened, %d closed, %d in flight; want all but the last closed", opened, closed, inflight)
					}
					if err := st.Close(); err != nil {
						t.Errorf("Close: %v", err)
					}
				} else if st != nil {
					t.Errorf("ChatStream returned a stream with its error")
				}
				calls, inflight, opened, closed := h.f.snapshot()
				if calls != tt.wantCalls {
					t.Errorf("calls = %d, want %d", calls, tt.wantCalls)
				}
				if opened != closed || inflight != 0 {
					t.Errorf("%d streams opened, %d closed, %d calls in flight", opened, closed, inflight)
				}
				if got := h.metric(t, "llama_stack_inflight_streams", "provider", "p"); got != 0 {
					t.Errorf("inflight_streams = %v after Close", got)
				}
			})
		})
	}
}

func TestIdleWatchdog(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(settings(func(r *config.Resilience) { r.StreamIdleTimeout = 5 }),
			step{chunks: []chunk{{}, {delay: 3 * time.Second}, {block: true}, {}}})
		st, err := h.w.ChatStream(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if got := h.metric(t, "llama_stack_inflight_streams", "provider", "p"); got != 1 {
			t.Errorf("inflight_streams = %v, want 1", got)
		}
		start := time.Now()
		for i := range 2 {
			if _, err := st.Next(); err != nil {
				t.Fatalf("chunk %d: %v", i+1, err)
			}
		}
		_, err = st.Next()
		pe := wantStatus(t, err, http.StatusGatewayTimeout)
		if pe.Type != "timeout" || pe.Message != "upstream stream stalled for 5s" || !errors.Is(err, ErrStreamIdle) {
			t.Errorf("error = %+v", pe)
		}
		if got := time.Since(start); got != 8*time.Second {
			t.Errorf("stall reported after %v, want 8s (3s chunk + 5s idle)", got)
		}
		if len(h.f.causes) != 1 || !errors.Is(h.f.causes[0], ErrStreamIdle) {
			t.Errorf("upstream ended with %v, want its context cancelled with ErrStreamIdle", h.f.causes)
		}
		if calls, _, _, _ := h.f.snapshot(); calls != 1 {
			t.Errorf("calls = %d: a stream that sent a chunk must not be retried", calls)
		}
		if got := h.metric(t, "llama_stack_upstream_errors_total", "type", ErrorStalled); got != 1 {
			t.Errorf("stalls counted = %v, want 1", got)
		}
	})
}

func TestIdleWatchdogIgnoresASlowClient(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(settings(func(r *config.Resilience) { r.StreamIdleTimeout = 5 }),
			step{chunks: []chunk{{}, {}, {eof: true}}})
		st, err := h.w.ChatStream(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		if _, err := st.Next(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(time.Minute) // the client takes its time; fake time
		if _, err := st.Next(); err != nil {
			t.Fatalf("after a slow client: %v", err)
		}
		if _, err := st.Next(); err != io.EOF {
			t.Fatalf("end: %v", err)
		}
	})
}

func TestStreamWithoutIdleTimeout(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(settings(func(r *config.Resilience) { r.StreamIdleTimeout = 0 }),
			step{chunks: []chunk{{}, {delay: time.Hour}, {eof: true}}})
		st, err := h.w.ChatStream(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		for i := range 2 {
			if _, err := st.Next(); err != nil {
				t.Fatalf("chunk %d: %v", i+1, err)
			}
		}
	})
}

func TestClientCancelMidStream(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(settings(nil), step{chunks: []chunk{{}, {block: true}}})
		ctx, cancel := context.WithCancel(t.Context())
		st, err := h.w.ChatStream(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Next(); err != nil {
			t.Fatal(err)
		}
		time.AfterFunc(time.Second, cancel)
		if _, err := st.Next(); !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want the client's cancellation", err)
		}
		st.Close()
		if got := h.metric(t, "llama_stack_upstream_errors_total", "provider", "p", "type", ErrorOther); got != 0 {
			t.Errorf("a client's cancellation was counted as an upstream error")
		}
	})
}

func TestConcurrencyLimit(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(settings(func(r *config.Resilience) { r.MaxConcurrency, r.QueueTimeout = 1, 2 }))
		st, err := h.w.ChatStream(t.Context(), req)
		if err != nil {
			t.Fatal(err)
		}
		// The stream holds the only slot until Close.
		start := time.Now()
		_, err = h.w.Chat(t.Context(), req)
		pe := wantStatus(t, err, http.StatusServiceUnavailable)
		if pe.Type != "overloaded" || !errors.Is(err, ErrOverloaded) || !strings.Contains(pe.Message, "provider p ") {
			t.Errorf("error = %+v", pe)
		}
		if got := time.Since(start); got != 2*time.Second {
			t.Errorf("rejected after %v, want the 2s queue timeout", got)
		}
		if got := h.metric(t, "llama_stack_upstream_errors_total", "type", ErrorOverloaded); got != 1 {
			t.Errorf("overloads counted = %v", got)
		}

		// A queued request gets the slot when the stream closes.
		done := make(chan error)
		go func() {
			_, err := h.w.Chat(t.Context(), req)
			done <- err
		}()
		time.Sleep(time.Second)
		synctest.Wait()
		if calls, _, _, _ := h.f.snapshot(); calls != 1 {
			t.Fatalf("a queued request reached the upstream")
		}
		st.Close()
		st.Close() // twice: the slot is given back once
		if err := <-done; err != nil {
			t.Fatalf("queued request: %v", err)
		}
	})
}

func TestConcurrencyLimitHoldsUnderLoad(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var script []step
		for range 6 {
			script = append(script, step{delay: time.Second})
		}
		h := newHarness(settings(func(r *config.Resilience) { r.MaxConcurrency, r.QueueTimeout = 2, 10 }), script...)
		start := time.Now()
		errs := make(chan error, 6)
		for range 6 {
			go func() {
				_, err := h.w.Chat(t.Context(), req)
				errs <- err
			}()
		}
		for range 6 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
		if h.f.peak != 2 {
			t.Errorf("peak concurrency %d, want 2", h.f.peak)
		}
		if got := time.Since(start); got != 3*time.Second {
			t.Errorf("took %v, want 3s (three rounds of two)", got)
		}
	})
}

func TestSlotReleasedOnFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(settings(func(r *config.Resilience) { r.MaxConcurrency, r.QueueTimeout, r.MaxRetries = 1, 0, 1 }),
			fails(status(400)),
			fails(status(503)), fails(status(503)),
			step{chunks: []chunk{{err: status(503)}}}, step{chunks: []chunk{{err: status(503)}}},
			fails(errors.New("boom")),
			ok)
		for i, call := range []func() error{
			func() error { _, err := h.w.Chat(t.Context(), req); return err },
			func() error { _, err := h.w.Chat(t.Context(), req); return err },
			func() error { _, err := h.w.ChatStream(t.Context(), req); return err },
			func() error { _, err := h.w.ChatStream(t.Context(), req); return err },
		} {
			if err := call(); err == nil || errors.Is(err, ErrOverloaded) {
				t.Fatalf("call %d: err = %v, want the upstream's failure", i+1, err)
			}
		}
		if _, err := h.w.Chat(t.Context(), req); err != nil {
			t.Fatalf("after failures the slot is still taken: %v", err)
		}
	})
}

// panicky panics in Chat, as a buggy adapter might.
type panicky struct{ *fake }

func (panicky) Chat(context.Context, *provider.Request) (*openai.ChatCompletion, error) {
	panic("adapter bug")
}

func TestSlotReleasedOnPanic(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := settings(func(r *config.Resilience) {
			r.MaxConcurrency, r.QueueTimeout = 1, 0
			r.CircuitBreaker = config.CircuitBreaker{FailureThreshold: 1, OpenDuration: 10, HalfOpenProbes: 1}
		})
		w := Wrap(panicky{newFake()}, cfg, Options{ProviderID: "p"})
		for range 2 {
			func() {
				defer func() {
					if recover() == nil {
						t.Fatal("the panic was swallowed")
					}
				}()
				_, _ = w.Chat(t.Context(), req)
			}()
		}
		// Neither the slot nor the breaker was left taken.
		st, err := w.ChatStream(t.Context(), req)
		if err != nil {
			t.Fatalf("after panics: %v", err)
		}
		st.Close()
	})
}

func TestCircuitBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(settings(func(r *config.Resilience) {
			r.MaxRetries = 0
			r.CircuitBreaker = config.CircuitBreaker{FailureThreshold: 2, OpenDuration: 10, HalfOpenProbes: 1}
		}),
			fails(status(503)), fails(status(503)), // trip
			step{delay: 2 * time.Second, err: status(503)}, // failed probe
			ok, ok, ok) // good probe, then traffic
		chat := func() error { _, err := h.w.Chat(t.Context(), req); return err }
		state := func(want metrics.CircuitState) {
			t.Helper()
			if got := h.w.CircuitState(); got != want {
				t.Errorf("state %v, want %v", got, want)
			}
			if got := h.metric(t, "llama_stack_circuit_state", "provider", "p"); got != float64(want) {
				t.Errorf("circuit_state gauge %v, want %v", got, float64(want))
			}
		}
		rejected := func(retryAfter time.Duration) {
			t.Helper()
			err := chat()
			pe := wantStatus(t, err, http.StatusServiceUnavailable)
			if !errors.Is(err, ErrCircuitOpen) || pe.Code != "circuit_open" || pe.RetryAfter != retryAfter {
				t.Errorf("rejection = %+v, want circuit_open with RetryAfter %v", pe, retryAfter)
			}
		}
		state(metrics.CircuitClosed)
		wantStatus(t, chat(), 503)
		state(metrics.CircuitClosed)
		wantStatus(t, chat(), 503)
		state(metrics.CircuitOpen)

		rejected(10 * time.Second)
		time.Sleep(4 * time.Second)
		rejected(6 * time.Second)
		if calls, _, _, _ := h.f.snapshot(); calls != 2 {
			t.Fatalf("calls = %d: an open circuit let a request through", calls)
		}

		time.Sleep(6 * time.Second)
		synctest.Wait() // the breaker's timer has run
		state(metrics.CircuitHalfOpen)
		probe := make(chan error)
		go func() { probe <- chat() }()
		synctest.Wait() // the probe is with the upstream
		rejected(time.Second)
		wantStatus(t, <-probe, 503)
		state(metrics.CircuitOpen)
		rejected(10 * time.Second)

		time.Sleep(10 * time.Second)
		if err := chat(); err != nil {
			t.Fatalf("probe: %v", err)
		}
		state(metrics.CircuitClosed)
		for range 2 {
			if err := chat(); err != nil {
				t.Fatal(err)
			}
		}
		if calls, _, _, _ := h.f.snapshot(); calls != 6 {
			t.Errorf("calls = %d, want 6", calls)
		}
		if got := h.metric(t, "llama_stack_upstream_errors_total", "type", ErrorCircuitOpen); got != 4 {
			t.Errorf("rejections counted = %v, want 4", got)
		}
	})
}

func TestCircuitBreakerCounts(t *testing.T) {
	cb := config.CircuitBreaker{FailureThreshold: 2, OpenDuration: 10, HalfOpenProbes: 1}
	tests := []struct {
		name    string
		retries int
		script  []step
		calls   int // requests made
		want    metrics.CircuitState
	}{
		{name: "client errors reset the count", script: []step{fails(status(503)), fails(status(400)), fails(status(503))}, calls: 3, want: metrics.CircuitClosed},
		{name: "successes reset the count", script: []step{fails(status(503)), ok, fails(status(503))}, calls: 3, want: metrics.CircuitClosed},
		{name: "throttling counts", script: []step{fails(throttled(0)), fails(throttled(0))}, calls: 2, want: metrics.CircuitOpen},
		{name: "requests count, not attempts", retries: 2, script: []step{fails(status(503)), fails(status(503)), ok, fails(status(503))}, calls: 2, want: metrics.CircuitClosed},
		{name: "failed after retries", retries: 1, script: []step{fails(status(503)), fails(status(503)), fails(status(503)), fails(status(503))}, calls: 2, want: metrics.CircuitOpen},
		{name: "stream failures before the first chunk count", script: []step{{chunks: []chunk{{err: status(502)}}}, fails(status(503))}, calls: 2, want: metrics.CircuitOpen},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := newHarness(settings(func(r *config.Resilience) { r.MaxRetries, r.CircuitBreaker = tt.retries, cb }), tt.script...)
				for i := range tt.calls {
					if strings.HasPrefix(tt.name, "stream") && i == 0 {
						if st, err := h.w.ChatStream(t.Context(), req); err == nil {
							st.Close()
						}
						continue
					}
					_, _ = h.w.Chat(t.Context(), req)
				}
				if got := h.w.CircuitState(); got != tt.want {
					t.Errorf("state %v, want %v", got, tt.want)
				}
			})
		})
	}
}

func TestNoRetryOnceTheCircuitOpened(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(settings(func(r *config.Resilience) {
			r.InitialBackoff, r.MaxBackoff = 5, 5
			r.CircuitBreaker = config.CircuitBreaker{FailureThreshold: 1, OpenDuration: 30, HalfOpenProbes: 1}
		}), fails(status(503)), fails(throttled(time.Minute)), ok)
		first := make(chan error)
		start := time.Now()
		go func() {
			_, err := h.w.Chat(t.Context(), req)
			first <- err
		}()
		synctest.Wait() // waiting 5s to retry
		time.Sleep(time.Second)
		// This one gives up at once (Retry-After beyond the budget) and
		// trips the breaker.
		wantStatus(t, func() error { _, err := h.w.Chat(t.Context(), req); return err }(), 429)
		if got := h.w.CircuitState(); got != metrics.CircuitOpen {
			t.Fatalf("state %v", got)
		}
		wantStatus(t, <-first, 503)
		if got := time.Since(start); got != 5*time.Second {
			t.Errorf("first request ended after %v, want 5s", got)
		}
		if calls, _, _, _ := h.f.snapshot(); calls != 2 {
			t.Errorf("calls = %d: a retry went to an upstream whose circuit is open", calls)
		}
		if got := h.metric(t, "llama_stack_upstream_retries_total"); got != 0 {
			t.Errorf("retries counted = %v, want 0", got)
		}
	})
}

func TestCancelledRequestsDoNotTripTheBreaker(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		h := newHarness(settings(func(r *config.Resilience) {
			r.CircuitBreaker = config.CircuitBreaker{FailureThreshold: 1, OpenDuration: 10, HalfOpenProbes: 1}
		}), step{block: true}, step{block: true})
		for range 2 {
			ctx, cancel := context.WithCancel(t.Context())
			time.AfterFunc(time.Second, cancel)
			if _, err := h.w.Chat(ctx, req); !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v", err)
			}
		}
		if got := h.w.CircuitState(); got != metrics.CircuitClosed {
			t.Errorf("state %v after cancelled requests", got)
		}
	})
}

func TestCircuitBreakerOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var script []step
		for range 20 {
			script = append(script, fails(status(503)))
		}
		h := newHarness(settings(func(r *config.Resilience) { r.MaxRetries = 0 }), script...)
		for range 20 {
			if _, err := h.w.Chat(t.Context(), req); errors.Is(err, ErrCircuitOpen) {
				t.Fatal("a switched-off breaker opened")
			}
		}
	})
}

func TestCapabilities(t *testing.T) {
	ctx := t.Context()
	creq := &provider.CompletionRequest{Model: "m"}
	ereq := &provider.EmbedRequest{Model: "m"}

	var p provider.Provider = Wrap(newFake(), settings(nil), Options{ProviderID: "chat-only"})
	c, okC := p.(provider.Completer)
	e, okE := p.(provider.Embedder)
	l, okL := p.(provider.ModelLister)
	if !okC || !okE || !okL {
		t.Fatal("the wrapper must always offer every capability")
	}
	if _, err := c.Complete(ctx, creq); !errors.Is(err, provider.ErrUnsupported) {
		t.Errorf("Complete: %v", err)
	}
	if st, err := c.CompleteStream(ctx, creq); !errors.Is(err, provider.ErrUnsupported) || st != nil {
		t.Errorf("CompleteStream: %v, %v", st, err)
	}
	if _, err := e.Embed(ctx, ereq); !errors.Is(err, provider.ErrUnsupported) {
		t.Errorf("Embed: %v", err)
	}
	if _, err := l.ListModels(ctx); !errors.Is(err, provider.ErrUnsupported) || !strings.Contains(err.Error(), "chat-only") {
		t.Errorf("ListModels: %v", err)
	}

	w := Wrap(full{newFake()}, settings(nil), Options{ProviderID: "all"})
	if r, err := w.Complete(ctx, creq); err != nil || r.ID != "legacy" {
		t.Errorf("Complete: %v, %v", r, err)
	}
	st, err := w.CompleteStream(ctx, creq)
	if err != nil {
		t.Fatal(err)
	}
	if ch, err := st.Next(); err != nil || ch.ID != "legacy-chunk" {
		t.Errorf("CompleteStream chunk: %v, %v", ch, err)
	}
	if _, err := st.Next(); err != io.EOF {
		t.Errorf("CompleteStream end: %v", err)
	}
	st.Close()
	if r, err := w.Embed(ctx, ereq); err != nil || r.Model != "emb" {
		t.Errorf("Embed: %v, %v", r, err)
	}
	if ms, err := w.ListModels(ctx); err != nil || len(ms) != 1 {
		t.Errorf("ListModels: %v, %v", ms, err)
	}
	if _, ok := w.Unwrap().(full); !ok {
		t.Errorf("Unwrap = %T", w.Unwrap())
	}
}

func TestClassification(t *testing.T) {
	tests := []struct {
		err       error
		retryable bool
		typ       string
	}{
		{status(429), true, ErrorThrottled},
		{status(408), true, ErrorTimeout},
		{status(504), true, ErrorTimeout},
		{status(500), true, ErrorServer},
		{status(502), true, ErrorServer},
		{status(503), true, ErrorServer},
		{status(529), true, ErrorServer},
		{status(501), false, ErrorServer},
		{status(505), false, ErrorServer},
		{status(0), true, ErrorConnection},
		{&provider.Error{StatusCode: 502, Code: "upstream_unreachable"}, true, ErrorConnection},
		{&provider.Error{StatusCode: 502, Code: "upstream_stream_broken", Err: io.ErrUnexpectedEOF}, true, ErrorConnection},
		{&provider.Error{StatusCode: 502, Code: "upstream_stream_broken"}, true, ErrorConnection},
		{status(400), false, ErrorClient},
		{status(403), false, ErrorClient},
		{status(404), false, ErrorClient},
		{status(424), false, ErrorClient},
		{fmt.Errorf("open stream: %w", status(503)), true, ErrorServer},
		{&provider.Error{StatusCode: 503, Err: ErrOverloaded}, false, ErrorOverloaded},
		{&provider.Error{StatusCode: 503, Err: ErrCircuitOpen}, false, ErrorCircuitOpen},
		{&provider.Error{StatusCode: 504, Err: ErrStreamIdle}, true, ErrorStalled},
		{&provider.Error{StatusCode: 504, Err: ErrFirstByteTimeout}, true, ErrorTimeout},
		{context.Canceled, false, ErrorOther},
		{fmt.Errorf("send: %w", context.DeadlineExceeded), true, ErrorTimeout},
		{&net.OpError{Op: "read", Err: syscall.ECONNRESET}, true, ErrorConnection},
		{fmt.Errorf("read body: %w", io.ErrUnexpectedEOF), true, ErrorConnection},
		{errors.New("something else"), false, ErrorOther},
		{nil, false, ErrorOther},
	}
	for _, tt := range tests {
		if got := Retryable(tt.err); got != tt.retryable {
			t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.retryable)
		}
		if tt.err == nil {
			continue
		}
		if got := ErrorType(tt.err); got != tt.typ {
			t.Errorf("ErrorType(%v) = %q, want %q", tt.err, got, tt.typ)
		}
	}
}

func TestBackoffJitterStaysInRange(t *testing.T) {
	w := Wrap(newFake(), settings(func(r *config.Resilience) { r.InitialBackoff, r.MaxBackoff = 1, 4 }), Options{})
	for try, cap := range []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second} {
		for range 200 {
			if d := w.backoff(try); d < 0 || d > cap {
				t.Fatalf("backoff(%d) = %v, want within [0, %v]", try, d, cap)
			}
		}
	}
	w = Wrap(newFake(), settings(func(r *config.Resilience) { r.InitialBackoff, r.MaxBackoff = 0, 0 }), Options{})
	if d := w.backoff(3); d != 0 {
		t.Errorf("zero backoff = %v", d)
	}
}

func TestTransport(t *testing.T) {
	cfg := settings(func(r *config.Resilience) { r.ConnectTimeout, r.FirstByteTimeout = 3, 45 })
	tr := Transport(cfg, nil)
	if tr == http.DefaultTransport {
		t.Fatal("Transport modified the default transport")
	}
	if tr.Proxy == nil || !tr.ForceAttemptHTTP2 || tr.DialContext == nil {
		t.Errorf("proxy %v, http2 %v, dial %v", tr.Proxy != nil, tr.ForceAttemptHTTP2, tr.DialContext != nil)
	}
	if tr.ResponseHeaderTimeout != 45*time.Second || tr.TLSHandshakeTimeout != 3*time.Second {
		t.Errorf("header timeout %v, TLS handshake timeout %v", tr.ResponseHeaderTimeout, tr.TLSHandshakeTimeout)
	}

	base := &http.Transport{MaxIdleConnsPerHost: 256, ResponseHeaderTimeout: 10 * time.Minute, TLSHandshakeTimeout: 7 * time.Second}
	tr = Transport(settings(func(r *config.Resilience) { r.ConnectTimeout, r.FirstByteTimeout = 0, 0 }), base)
	if tr == base || tr.MaxIdleConnsPerHost != 256 || tr.ResponseHeaderTimeout != 10*time.Minute || tr.TLSHandshakeTimeout != 7*time.Second || tr.DialContext != nil {
		t.Errorf("zero settings must keep the base's: %+v", tr)
	}
	tr = Transport(cfg, base)
	if base.ResponseHeaderTimeout != 10*time.Minute || base.DialContext != nil {
		t.Error("Transport changed its base")
	}
	if tr.ResponseHeaderTimeout != 45*time.Second {
		t.Errorf("header timeout %v", tr.ResponseHeaderTimeout)
	}
}

// TestTransportCutsSilentUpstream checks the response-header timeout on a
// real connection: an upstream that never answers fails the request.
func TestTransportCutsSilentUpstream(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	tr := Transport(settings(func(r *config.Resilience) { r.FirstByteTimeout = 0.05 }), nil)
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get(srv.URL)
	if err == nil {
		resp.Body.Close()
		t.Fatal("a silent upstream answered")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("err = %v, want a timeout", err)
	}
	if !Retryable(err) || ErrorType(err) != ErrorTimeout {
		t.Errorf("Retryable %v, ErrorType %q", Retryable(err), ErrorType(err))
	}
}

// Ensure the chunk type the fake yields is the one the api relays.
var _ provider.Stream = (*fakeStream)(nil)
var _ = openai.ChatCompletionChunk{}
