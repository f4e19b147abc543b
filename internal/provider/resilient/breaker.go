package resilient

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/metrics"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

// breaker is a consecutive-failure circuit breaker. Closed, it counts
// requests that fail in a row; at threshold it opens and rejects every
// request for cooldown; then it is half-open and admits up to probes
// requests, the first of which to finish decides: a success closes it, a
// failure opens it again. A nil *breaker is switched off and admits all.
type breaker struct {
	threshold int
	cooldown  time.Duration
	probes    int
	onChange  func(from, to metrics.CircuitState, failures int)

	mu       sync.Mutex
	state    metrics.CircuitState
	gen      uint64      // changes with every state change; tickets of another generation are stale
	failures int         // consecutive failures, while closed
	until    time.Time   // end of the open period
	inflight int         // probes admitted and not yet done, while half-open
	timer    *time.Timer // makes an open circuit half-open
}

// ticket is a request's admission; done returns it.
type ticket struct {
	gen   uint64
	probe bool
}

// admit lets a request through or returns the 503 that rejects it.
func (b *breaker) admit(w *Provider) (ticket, error) {
	if b == nil {
		return ticket{}, nil
	}
	now := w.now()
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == metrics.CircuitOpen {
		if now.Before(b.until) {
			return ticket{}, w.circuitError(b.until.Sub(now))
		}
		b.set(metrics.CircuitHalfOpen)
	}
	if b.state == metrics.CircuitHalfOpen {
		if b.inflight >= b.probes {
			return ticket{}, w.circuitError(time.Second)
		}
		b.inflight++
		return ticket{gen: b.gen, probe: true}, nil
	}
	return ticket{gen: b.gen}, nil
}

// done records how an admitted request ended.
func (b *breaker) done(t ticket, o outcome, now time.Time) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if t.gen != b.gen {
		return // admitted before the last change of state; says nothing now
	}
	if t.probe {
		b.inflight--
		switch o {
		case success:
			b.set(metrics.CircuitClosed)
		case failure:
			b.open(now)
		}
		return
	}
	switch o {
	case success:
		b.failures = 0
	case failure:
		b.failures++
		if b.failures >= b.threshold {
			b.open(now)
		}
	}
}

// current returns the state, as admit would see it at now.
func (b *breaker) current(now time.Time) metrics.CircuitState {
	if b == nil {
		return metrics.CircuitClosed
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.state == metrics.CircuitOpen && !now.Before(b.until) {
		return metrics.CircuitHalfOpen
	}
	return b.state
}

// open opens the circuit until cooldown has passed. A timer then makes it
// half-open, so that the state gauge shows it without traffic; admit does
// the same if it comes first.
func (b *breaker) open(now time.Time) {
	b.until = now.Add(b.cooldown)
	b.set(metrics.CircuitOpen)
	gen := b.gen
	if b.timer != nil {
		b.timer.Stop()
	}
	b.timer = time.AfterFunc(b.cooldown, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		if b.gen == gen {
			b.set(metrics.CircuitHalfOpen)
		}
	})
}

// set changes the state; b.mu is held.
func (b *breaker) set(s metrics.CircuitState) {
	from, failures := b.state, b.failures
	b.state = s
	b.gen++
	b.failures = 0
	b.inflight = 0
	if b.onChange != nil {
		b.onChange(from, s, failures)
	}
}

// circuitError is the rejection of a request while the circuit is open.
func (w *Provider) circuitError(retryAfter time.Duration) error {
	secs := max(1, int((retryAfter+time.Second-1)/time.Second))
	return &provider.Error{
		Provider: w.id, StatusCode: http.StatusServiceUnavailable, Type: "api_error", Code: "circuit_open",
		Message: "provider " + w.id + " is failing repeatedly, so requests to it are paused; try again in " +
			strconv.Itoa(secs) + "s",
		RetryAfter: retryAfter,
		Err:        ErrCircuitOpen,
	}
}
