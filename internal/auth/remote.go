package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// maxRemoteBytes bounds the answer of a remote validator.
const maxRemoteBytes = 1 << 20

// remote holds what the validators that ask another service share: the
// client, the per-call timeout, the logger and the optional cache.
type remote struct {
	client  *http.Client
	timeout time.Duration
	log     *slog.Logger
	cache   *cache
}

func newRemote(opts Options, client *http.Client, log *slog.Logger) remote {
	r := remote{client: client, timeout: opts.Timeout, log: log}
	if opts.CacheTTL > 0 {
		r.cache = newCache(opts.CacheTTL, opts.Now)
	}
	return r
}

// do sends req with the timeout and returns the status and at most
// maxRemoteBytes of the body. Transport failures and timeouts come back
// as ErrUnavailable errors whose message is timeoutMsg or errorMsg.
func (rm *remote) do(ctx context.Context, req *http.Request, timeoutMsg, errorMsg string) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(ctx, rm.timeout)
	defer cancel()
	resp, err := rm.client.Do(req.WithContext(ctx))
	if err != nil {
		err = redactURLError(err)
		if parent := req.Context().Err(); parent != nil {
			// The client went away; nothing is wrong with the service.
			return 0, nil, fmt.Errorf("authenticate: %w", parent)
		}
		rm.log.LogAttrs(ctx, slog.LevelWarn, "authentication service call failed", slog.String("host", req.URL.Host), slog.String("error", err.Error()))
		if isTimeout(err) {
			return 0, nil, unavailable(timeoutMsg, err)
		}
		return 0, nil, unavailable(errorMsg, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteBytes))
	if err != nil {
		rm.log.LogAttrs(ctx, slog.LevelWarn, "authentication service answer unreadable", slog.String("host", req.URL.Host), slog.String("error", err.Error()))
		if isTimeout(err) {
			return 0, nil, unavailable(timeoutMsg, err)
		}
		return 0, nil, unavailable(errorMsg, err)
	}
	return resp.StatusCode, body, nil
}

// isTimeout reports whether err is a deadline or network timeout.
func isTimeout(err error) bool {
	var te interface{ Timeout() bool }
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &te) && te.Timeout()
}

// redactURLError returns err with the URL it names (a *url.Error's)
// stripped of query and user info, which could, for a misconfigured
// endpoint, hold a secret; the inner error is still wrapped.
func redactURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery, u.User, u.Fragment = "", nil, ""
			return fmt.Errorf("%s %s: %w", ue.Op, u.String(), ue.Err)
		}
		return fmt.Errorf("%s: %w", ue.Op, ue.Err)
	}
	return err
}

// serviceFailure is the error for an answer with a 5xx status or a body
// that cannot be read as the expected JSON: the service is broken, not the
// caller's token.
func (rm *remote) serviceFailure(ctx context.Context, host, msg string, cause error) error {
	rm.log.LogAttrs(ctx, slog.LevelWarn, "authentication service answered badly", slog.String("host", host), slog.String("error", cause.Error()))
	return unavailable(msg, cause)
}

// cached returns the principal cached under key, if any.
func (rm *remote) cached(key [sha256.Size]byte) (*Principal, bool) {
	if rm.cache == nil {
		return nil, false
	}
	p, ok := rm.cache.get(key)
	if !ok {
		return nil, false
	}
	return clonePrincipal(p), true
}

// remember caches p under key.
func (rm *remote) remember(key [sha256.Size]byte, p *Principal) {
	if rm.cache != nil {
		rm.cache.put(key, clonePrincipal(p))
	}
}

// maxCacheEntries bounds the cache; when full, expired entries are
// dropped, and if none are, the whole cache is.
const maxCacheEntries = 10000

// cache maps token digests to principals for a fixed time.
type cache struct {
	ttl time.Duration
	now func() time.Time

	mu      sync.Mutex
	entries map[[sha256.Size]byte]cacheEntry
}

type cacheEntry struct {
	p       *Principal
	expires time.Time
}

func newCache(ttl time.Duration, now func() time.Time) *cache {
	return &cache{ttl: ttl, now: now, entries: map[[sha256.Size]byte]cacheEntry{}}
}

func (c *cache) get(key [sha256.Size]byte) (*Principal, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok {
		return nil, false
	}
	if !c.now().Before(e.expires) {
		delete(c.entries, key)
		return nil, false
	}
	return e.p, true
}

func (c *cache) put(key [sha256.Size]byte, p *Principal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	if len(c.entries) >= maxCacheEntries {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= maxCacheEntries {
			clear(c.entries)
		}
	}
	c.entries[key] = cacheEntry{p: p, expires: now.Add(c.ttl)}
}
