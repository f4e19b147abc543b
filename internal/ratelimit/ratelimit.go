// Package ratelimit enforces server.quota: a number of requests per
// period for each caller (authenticated callers by principal, anonymous
// ones by client address), and, as this server's extension, a number of
// tokens per minute, counted from the usage of the responses. Counts live
// in a Counter, normally the configured store's key-value space, so that
// replicas share them; an in-memory Counter serves a single replica.
//
// A caller over a limit gets an *Error (errors.Is ErrLimited) carrying when
// to retry. If the Counter fails (the store is down), requests are let
// through: quotas fail open, and each failure is logged (at most every
// few seconds) and counted.
package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/auth"
	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// ErrLimited is matched (errors.Is) by every *Error.
var ErrLimited = errors.New("quota exceeded")

// An Error reports a caller over one of its limits.
type Error struct {
	// RetryAfter is how long until the limit's window ends.
	RetryAfter time.Duration
	// Limit describes the limit, such as "1000 requests per day"; it
	// names no caller and is safe to show.
	Limit string
	// Kind is "requests" or "tokens": which limit was hit (OpenAI's error
	// type for rate limits).
	Kind string
}

// Kinds of limits.
const (
	KindRequests = "requests"
	KindTokens   = "tokens"
)

// Error returns "Quota exceeded: <limit>", fit for the client.
func (e *Error) Error() string { return "Quota exceeded: " + e.Limit }

// Is reports whether target is ErrLimited.
func (e *Error) Is(target error) bool { return target == ErrLimited }

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, at least 1:
// the value of the Retry-After header.
func (e *Error) RetryAfterSeconds() int {
	s := math.Ceil(e.RetryAfter.Seconds())
	if s < 1 {
		return 1
	}
	if s > math.MaxInt32 {
		return math.MaxInt32
	}
	return int(s)
}

// A Counter counts in fixed windows. Incr adds by to the counter key and
// returns the new count and when its window ends; the first Incr of a key,
// or the first after its window ended, starts a new window of length
// window at now with the count set to by. It must be atomic across the
// replicas that share it. internal/store's KV implements it.
type Counter interface {
	Incr(ctx context.Context, key string, by int64, window time.Duration, now time.Time) (count int64, resetAt time.Time, err error)
}

// A Key identifies whom a request is counted against.
type Key struct {
	// ID is the principal's id, or the client address when anonymous.
	ID string
	// Authenticated selects the authenticated limits.
	Authenticated bool
}

// A Limiter decides whether requests may proceed.
type Limiter interface {
	// Allow counts one request of k and returns an *Error if k is over its
	// request quota or has used up its tokens for the current minute.
	Allow(ctx context.Context, k Key) error
	// AddTokens records n tokens used by a request of k.
	AddTokens(ctx context.Context, k Key, n int64)
}

// Options are the dependencies of a Quota.
type Options struct {
	// Counter holds the counts; nil means a new in-memory Counter (counts
	// are then per replica).
	Counter Counter
	// Namespace prefixes every counter key; "" means "quota" (the quota
	// config's kvstore.namespace is the natural value).
	Namespace string
	// Logger receives counter failures; nil discards.
	Logger *slog.Logger
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// OnCounterError is called for every failed counter call, for a
	// metric; nil means none.
	OnCounterError func(error)
	// ClientAddr returns the address anonymous callers are counted by;
	// nil means the host of r.RemoteAddr. Behind a proxy, give one that
	// reads the proxy's header, trusting only the proxy.
	ClientAddr func(r *http.Request) string
	// Exempt reports requests that are not counted; nil means
	// auth.IsPublic (health and version, so probes never run out).
	Exempt func(r *http.Request) bool
}

// A Quota is the Limiter of a server.quota section.
type Quota struct {
	cfg        config.QuotaConfig
	period     time.Duration
	counter    Counter
	ns         string
	log        *slog.Logger
	now        func() time.Time
	onErr      func(error)
	clientAddr func(r *http.Request) string
	exempt     func(r *http.Request) bool

	errors  atomic.Int64
	logMu   sync.Mutex
	lastLog time.Time
}

// New returns the Quota that cfg describes; cfg must have passed config
// validation.
func New(cfg *config.QuotaConfig, opts Options) *Quota {
	q := &Quota{
		cfg:        *cfg,
		period:     cfg.PeriodDuration(),
		counter:    opts.Counter,
		ns:         opts.Namespace,
		log:        opts.Logger,
		now:        opts.Now,
		onErr:      opts.OnCounterError,
		clientAddr: opts.ClientAddr,
		exempt:     opts.Exempt,
	}
	if q.counter == nil {
		q.counter = NewMemoryCounter()
	}
	if q.ns == "" {
		q.ns = "quota"
	}
	if q.log == nil {
		q.log = slog.New(slog.DiscardHandler)
	}
	if q.now == nil {
		q.now = time.Now
	}
	if q.clientAddr == nil {
		q.clientAddr = remoteHost
	}
	if q.exempt == nil {
		q.exempt = auth.IsPublic
	}
	return q
}

// counterKey is the counter of kind ("requests", "tokens") for k. Long ids
// are replaced by their digest so keys stay short.
func (q *Quota) counterKey(kind string, k Key) string {
	who := "anon"
	if k.Authenticated {
		who = "user"
	}
	id := k.ID
	if len(id) > 128 {
		sum := sha256.Sum256([]byte(id))
		id = "sha256:" + hex.EncodeToString(sum[:])
	}
	return q.ns + "/" + kind + "/" + who + "/" + id
}

// limits returns k's request and token limits.
func (q *Quota) limits(k Key) (requests, tokens int64) {
	if k.Authenticated {
		return q.cfg.AuthenticatedMaxRequests, q.cfg.AuthenticatedTokensPerMinute
	}
	return q.cfg.AnonymousMaxRequests, q.cfg.AnonymousTokensPerMinute
}

// Allow implements Limiter. The token budget is checked first, so a
// request refused for tokens does not use up request quota.
func (q *Quota) Allow(ctx context.Context, k Key) error {
	now := q.now()
	maxReq, maxTok := q.limits(k)
	if maxTok > 0 {
		used, reset, err := q.counter.Incr(ctx, q.counterKey(KindTokens, k), 0, time.Minute, now)
		switch {
		case err != nil:
			q.failed(ctx, err)
		case used >= maxTok:
			return &Error{RetryAfter: reset.Sub(now), Limit: fmt.Sprintf("%d tokens per minute", maxTok), Kind: KindTokens}
		}
	}
	n, reset, err := q.counter.Incr(ctx, q.counterKey(KindRequests, k), 1, q.period, now)
	if err != nil {
		q.failed(ctx, err)
		return nil
	}
	if n > maxReq {
		return &Error{RetryAfter: reset.Sub(now), Limit: fmt.Sprintf("%d requests per %s", maxReq, q.cfg.Period), Kind: KindRequests}
	}
	return nil
}

// AddTokens implements Limiter.
func (q *Quota) AddTokens(ctx context.Context, k Key, n int64) {
	if _, maxTok := q.limits(k); maxTok <= 0 || n <= 0 {
		return
	}
	if _, _, err := q.counter.Incr(ctx, q.counterKey(KindTokens, k), n, time.Minute, q.now()); err != nil {
		q.failed(ctx, err)
	}
}

// CountsTokens reports whether k has a token limit, so that the usage of
// its answers must be known: a stream whose client did not ask for usage
// (stream_options.include_usage) must then ask the upstream for it. A nil
// Quota counts nothing.
func (q *Quota) CountsTokens(k Key) bool {
	if q == nil {
		return false
	}
	_, tokens := q.limits(k)
	return tokens > 0
}

// CounterErrors returns how many counter calls have failed.
func (q *Quota) CounterErrors() int64 { return q.errors.Load() }

// logEvery is the least time between two logged counter failures.
const logEvery = 10 * time.Second

// failed records a counter failure; the request goes on.
func (q *Quota) failed(ctx context.Context, err error) {
	n := q.errors.Add(1)
	if q.onErr != nil {
		q.onErr(err)
	}
	now := q.now()
	q.logMu.Lock()
	log := q.lastLog.IsZero() || now.Sub(q.lastLog) >= logEvery
	if log {
		q.lastLog = now
	}
	q.logMu.Unlock()
	if log && !errors.Is(err, context.Canceled) {
		q.log.LogAttrs(ctx, slog.LevelWarn, "quota counter failed; letting requests through",
			slog.String("error", err.Error()), slog.Int64("failures", n))
	}
}

// KeyOf returns whom r is counted against: the principal the auth
// middleware put in its context, else the client address.
func (q *Quota) KeyOf(r *http.Request) Key {
	if p, ok := auth.FromContext(r.Context()); ok {
		return Key{ID: p.ID, Authenticated: true}
	}
	return Key{ID: q.clientAddr(r)}
}

// Wrap returns next behind the quota: requests over a limit are answered
// by writeError with the *Error (the caller sets Retry-After from
// RetryAfterSeconds and answers 429). It must run after the auth
// middleware, which supplies the principal.
func (q *Quota) Wrap(next http.Handler, writeError func(w http.ResponseWriter, r *http.Request, err error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !q.exempt(r) {
			if err := q.Allow(r.Context(), q.KeyOf(r)); err != nil {
				writeError(w, r, err)
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// remoteHost is the host part of r.RemoteAddr.
func remoteHost(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// SetRetryAfter sets the Retry-After header for err when it is an *Error.
func SetRetryAfter(h http.Header, err error) {
	var le *Error
	if errors.As(err, &le) {
		h.Set("Retry-After", strconv.Itoa(le.RetryAfterSeconds()))
	}
}

var _ Limiter = (*Quota)(nil)
