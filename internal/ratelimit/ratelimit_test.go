package ratelimit

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/llama-stack-go/llama-stack-go/internal/auth"
	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// The store's key-value space is a Counter.
var _ Counter = store.KV(nil)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func quota(period string, anon, authed, anonTPM, authTPM int64) *config.QuotaConfig {
	return &config.QuotaConfig{Period: period, AnonymousMaxRequests: anon, AuthenticatedMaxRequests: authed, AnonymousTokensPerMinute: anonTPM, AuthenticatedTokensPerMinute: authTPM}
}

func wantLimited(t *testing.T, err error, retry time.Duration, limit string) {
	t.Helper()
	var le *Error
	if !errors.As(err, &le) || !errors.Is(err, ErrLimited) {
		t.Fatalf("error = %v, want *Error", err)
	}
	kind := KindRequests
	if strings.Contains(limit, "tokens") {
		kind = KindTokens
	}
	if le.RetryAfter != retry || le.Limit != limit || le.Kind != kind {
		t.Fatalf("error = %+v, want retry %v, limit %q", le, retry, limit)
	}
}

func TestRequestQuota(t *testing.T) {
	clk := newClock()
	q := New(quota(config.PeriodHour, 2, 3, 0, 0), Options{Now: clk.Now})
	ctx := t.Context()
	anon := Key{ID: "10.0.0.1"}
	user := Key{ID: "alice", Authenticated: true}
	// The anonymous and authenticated spaces are separate even for equal ids.
	userNamedLikeIP := Key{ID: "10.0.0.1", Authenticated: true}

	for i := range 2 {
		if err := q.Allow(ctx, anon); err != nil {
			t.Fatalf("anonymous request %d: %v", i+1, err)
		}
	}
	clk.Advance(15 * time.Minute)
	wantLimited(t, q.Allow(ctx, anon), 45*time.Minute, "2 requests per hour")
	if err := q.Allow(ctx, Key{ID: "10.0.0.2"}); err != nil {
		t.Errorf("another address: %v", err)
	}
	for i := range 3 {
		if err := q.Allow(ctx, user); err != nil {
			t.Fatalf("authenticated request %d: %v", i+1, err)
		}
		if err := q.Allow(ctx, userNamedLikeIP); err != nil {
			t.Fatalf("authenticated 10.0.0.1 request %d: %v", i+1, err)
		}
	}
	wantLimited(t, q.Allow(ctx, user), time.Hour, "3 requests per hour")
	// A window ends an hour after its first request: the anonymous one
	// started at 0, alice's at 15 minutes.
	clk.Advance(45 * time.Minute)
	if err := q.Allow(ctx, anon); err != nil {
		t.Errorf("after the window: %v", err)
	}
	wantLimited(t, q.Allow(ctx, user), 15*time.Minute, "3 requests per hour")
	clk.Advance(15 * time.Minute)
	if err := q.Allow(ctx, user); err != nil {
		t.Errorf("after the window: %v", err)
	}
}

func TestZeroRequestsBlocks(t *testing.T) {
	q := New(quota(config.PeriodDay, 0, 10, 0, 0), Options{Now: newClock().Now})
	wantLimited(t, q.Allow(t.Context(), Key{ID: "1.2.3.4"}), 24*time.Hour, "0 requests per day")
}

func TestTokenQuota(t *testing.T) {
	clk := newClock()
	q := New(quota(config.PeriodDay, 100, 100, 0, 1000), Options{Now: clk.Now})
	ctx := t.Context()
	user := Key{ID: "alice", Authenticated: true}
	if err := q.Allow(ctx, user); err != nil {
		t.Fatal(err)
	}
	q.AddTokens(ctx, user, 600)
	clk.Advance(10 * time.Second)
	if err := q.Allow(ctx, user); err != nil {
		t.Fatalf("600 of 1000 tokens used: %v", err)
	}
	q.AddTokens(ctx, user, 500) // the response that crosses the limit is not cut short
	clk.Advance(20 * time.Second)
	wantLimited(t, q.Allow(ctx, user), 30*time.Second, "1000 tokens per minute")
	// A request refused for tokens does not count against the request quota.
	for range 5 {
		_ = q.Allow(ctx, user)
	}
	clk.Advance(30 * time.Second)
	if err := q.Allow(ctx, user); err != nil {
		t.Fatalf("new minute: %v", err)
	}
	// 1 + 1 + 1 allowed requests so far; the refused ones were not counted.
	q2 := New(quota(config.PeriodDay, 3, 3, 0, 1000), Options{Now: clk.Now, Counter: q.counter})
	wantLimited(t, q2.Allow(ctx, user), 24*time.Hour-time.Minute, "3 requests per day")

	// Anonymous callers have no token limit here.
	anon := Key{ID: "1.2.3.4"}
	q.AddTokens(ctx, anon, 1<<40)
	if err := q.Allow(ctx, anon); err != nil {
		t.Errorf("anonymous without a token limit: %v", err)
	}
}

// failingCounter fails every call.
type failingCounter struct{ calls int }

func (f *failingCounter) Incr(context.Context, string, int64, time.Duration, time.Time) (int64, time.Time, error) {
	f.calls++
	return 0, time.Time{}, store.ErrUnavailable
}

func TestCounterFailureFailsOpen(t *testing.T) {
	clk := newClock()
	var logs bytes.Buffer
	var hooked []error
	fc := &failingCounter{}
	q := New(quota(config.PeriodDay, 0, 0, 10, 10), Options{
		Counter: fc, Now: clk.Now,
		Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
		OnCounterError: func(err error) { hooked = append(hooked, err) },
	})
	ctx := t.Context()
	for range 3 {
		if err := q.Allow(ctx, Key{ID: "alice", Authenticated: true}); err != nil {
			t.Fatalf("Allow with a failing counter: %v", err)
		}
	}
	q.AddTokens(ctx, Key{ID: "alice", Authenticated: true}, 5)
	if got := q.CounterErrors(); got != 7 || len(hooked) != 7 || fc.calls != 7 {
		t.Errorf("counter errors = %d, hook calls %d, counter calls %d; want 7", got, len(hooked), fc.calls)
	}
	if !errors.Is(hooked[0], store.ErrUnavailable) {
		t.Errorf("hook got %v", hooked[0])
	}
	// Logged once, not once per failure.
	if n := strings.Count(logs.String(), "quota counter failed"); n != 1 {
		t.Errorf("logged %d times:\n%s", n, logs.String())
	}
	clk.Advance(logEvery)
	_ = q.Allow(ctx, Key{ID: "bob"})
	if n := strings.Count(logs.String(), "quota counter failed"); n != 2 {
		t.Errorf("logged %d times after %v", n, logEvery)
	}
	if strings.Contains(logs.String(), "alice") || strings.Contains(logs.String(), "bob") {
		t.Errorf("log names a caller:\n%s", logs.String())
	}
}

func TestRetryAfterSeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{
		0:                       1,
		-time.Second:            1,
		time.Millisecond:        1,
		time.Second:             1,
		1500 * time.Millisecond: 2,
		24 * time.Hour:          86400,
	} {
		if got := (&Error{RetryAfter: d}).RetryAfterSeconds(); got != want {
			t.Errorf("RetryAfterSeconds(%v) = %d, want %d", d, got, want)
		}
	}
	h := http.Header{}
	SetRetryAfter(h, errors.Join(errors.New("x"), &Error{RetryAfter: 90 * time.Second}))
	if got := h.Get("Retry-After"); got != "90" {
		t.Errorf("Retry-After = %q", got)
	}
}

func TestCounterKeys(t *testing.T) {
	q := New(quota(config.PeriodDay, 1, 1, 0, 0), Options{Namespace: "q1"})
	if got, want := q.counterKey("requests", Key{ID: "alice", Authenticated: true}), "q1/requests/user/alice"; got != want {
		t.Errorf("key = %q, want %q", got, want)
	}
	if got, want := q.counterKey("tokens", Key{ID: "::1"}), "q1/tokens/anon/::1"; got != want {
		t.Errorf("key = %q, want %q", got, want)
	}
	long := q.counterKey("requests", Key{ID: strings.Repeat("x", 500), Authenticated: true})
	if len(long) > 100 || !strings.HasPrefix(long, "q1/requests/user/sha256:") {
		t.Errorf("long id key = %q", long)
	}
}

func TestWrap(t *testing.T) {
	clk := newClock()
	q := New(quota(config.PeriodMinute, 1, 2, 0, 0), Options{Now: clk.Now})
	h := q.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	}), func(w http.ResponseWriter, r *http.Request, err error) {
		SetRetryAfter(w.Header(), err)
		http.Error(w, err.Error(), http.StatusTooManyRequests)
	})
	do := func(path, remote string, p *auth.Principal) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodGet, path, nil)
		r.RemoteAddr = remote
		if p != nil {
			r = r.WithContext(auth.WithPrincipal(r.Context(), p))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do("/v1/models", "192.0.2.1:5000", nil); w.Code != http.StatusNoContent {
		t.Fatalf("first anonymous request: %d", w.Code)
	}
	clk.Advance(20 * time.Second)
	w := do("/v1/models", "192.0.2.1:6000", nil) // same address, other port
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "40" || !strings.Contains(w.Body.String(), "Quota exceeded: 1 requests per minute") {
		t.Fatalf("second anonymous request: %d %q %q", w.Code, w.Header().Get("Retry-After"), w.Body)
	}
	// Health is never counted.
	for range 5 {
		if w := do("/v1/health", "192.0.2.1:5000", nil); w.Code != http.StatusNoContent {
			t.Fatalf("health: %d", w.Code)
		}
	}
	// An authenticated caller is counted by principal, wherever it calls
	// from.
	alice := &auth.Principal{ID: "alice"}
	for i, remote := range []string{"192.0.2.1:1", "198.51.100.7:2"} {
		if w := do("/v1/models", remote, alice); w.Code != http.StatusNoContent {
			t.Fatalf("alice request %d: %d", i+1, w.Code)
		}
	}
	if w := do("/v1/models", "203.0.113.9:3", alice); w.Code != http.StatusTooManyRequests {
		t.Fatalf("alice's third request: %d", w.Code)
	}
}

func TestMemoryCounter(t *testing.T) {
	c := NewMemoryCounter()
	ctx := t.Context()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	steps := []struct {
		key   string
		by    int64
		at    time.Duration
		count int64
		reset time.Duration
	}{
		{"a", 1, 0, 1, time.Minute},
		{"a", 2, 10 * time.Second, 3, time.Minute},
		{"b", 0, 10 * time.Second, 0, 70 * time.Second},
		{"a", 1, time.Minute, 1, 2 * time.Minute}, // the window ended: a new one starts now
		{"b", 5, 69 * time.Second, 5, 70 * time.Second},
	}
	for i, s := range steps {
		n, reset, err := c.Incr(ctx, s.key, s.by, time.Minute, t0.Add(s.at))
		if err != nil || n != s.count || !reset.Equal(t0.Add(s.reset)) {
			t.Errorf("step %d: Incr = %d, %v, %v; want %d, %v", i, n, reset.Sub(t0), err, s.count, s.reset)
		}
	}
	if _, _, err := c.Incr(ctx, "a", 1, 0, t0); err == nil {
		t.Error("zero window accepted")
	}
	// Ended windows are swept.
	for i := range sweepEvery * 2 {
		_, _, _ = c.Incr(ctx, string(rune('A'+i%50))+"-"+time.Duration(i).String(), 1, time.Second, t0.Add(time.Duration(i)*time.Second))
	}
	if n := c.Len(); n > sweepEvery+2 {
		t.Errorf("counter holds %d windows", n)
	}
}

func TestMemoryCounterConcurrent(t *testing.T) {
	c := NewMemoryCounter()
	now := time.Now()
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 1000 {
				_, _, _ = c.Incr(t.Context(), "k", 1, time.Hour, now)
			}
		})
	}
	wg.Wait()
	if n, _, _ := c.Incr(t.Context(), "k", 0, time.Hour, now); n != 8000 {
		t.Errorf("count = %d, want 8000", n)
	}
}

func TestCountsTokens(t *testing.T) {
	tests := []struct {
		anon, authn int64
		k           Key
		want        bool
	}{
		{0, 0, Key{ID: "1.2.3.4"}, false},
		{10, 0, Key{ID: "1.2.3.4"}, true},
		{10, 0, Key{ID: "alice", Authenticated: true}, false},
		{0, 10, Key{ID: "alice", Authenticated: true}, true},
		{0, 10, Key{ID: "1.2.3.4"}, false},
	}
	for _, tt := range tests {
		q := New(&config.QuotaConfig{AnonymousMaxRequests: 1, AuthenticatedMaxRequests: 1, Period: config.PeriodDay,
			AnonymousTokensPerMinute: tt.anon, AuthenticatedTokensPerMinute: tt.authn}, Options{})
		if got := q.CountsTokens(tt.k); got != tt.want {
			t.Errorf("anon %d authn %d, %+v: CountsTokens = %v, want %v", tt.anon, tt.authn, tt.k, got, tt.want)
		}
	}
	if (*Quota)(nil).CountsTokens(Key{}) {
		t.Error("a nil Quota counts tokens")
	}
}
