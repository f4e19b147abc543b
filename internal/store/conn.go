package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// Opener opens a backend: connects, checks and migrates its schema.
type Opener func(ctx context.Context) (Backend, error)

// Conn is a Backend that may not be open yet. Connect tries to open it at
// once and, if that fails, keeps trying in the background with backoff;
// until it opens, every operation fails with an error wrapping
// ErrUnavailable that says why, so requests that do not need the store
// are served meanwhile. A schema newer than the server is not retried.
type Conn struct {
	name string
	log  *slog.Logger

	mu      sync.RWMutex
	b       Backend
	lastErr error
	cancel  context.CancelFunc
	done    chan struct{}
}

var _ Backend = (*Conn)(nil)

// ConnectOptions tune Connect.
type ConnectOptions struct {
	// FirstTry bounds the first attempt, made before Connect returns.
	// Default 5 s.
	FirstTry time.Duration
	// MinBackoff and MaxBackoff bound the wait between later attempts.
	// Defaults 250 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// Logger receives the attempts' outcomes; nil discards them.
	Logger *slog.Logger
}

// Connect opens a backend named name (for messages) with open, as
// described on Conn.
func Connect(name string, open Opener, o ConnectOptions) *Conn {
	if o.FirstTry <= 0 {
		o.FirstTry = 5 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	c := &Conn{name: name, log: o.Logger, done: make(chan struct{})}
	if c.log == nil {
		c.log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	first, firstCancel := context.WithTimeout(ctx, o.FirstTry)
	b, err := open(first)
	firstCancel()
	if err == nil {
		c.b = b
		close(c.done)
		return c
	}
	c.lastErr = err
	c.log.LogAttrs(context.Background(), slog.LevelError, "storage unavailable; retrying in the background",
		slog.String("backend", name), slog.String("error", err.Error()))
	if errors.Is(err, ErrSchemaTooNew) {
		close(c.done)
		return c
	}
	go c.retry(ctx, open, o)
	return c
}

func (c *Conn) retry(ctx context.Context, open Opener, o ConnectOptions) {
	defer close(c.done)
	backoff := o.MinBackoff
	for attempt := 2; ; attempt++ {
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		actx, cancel := context.WithTimeout(ctx, max(o.FirstTry, 5*time.Second))
		b, err := open(actx)
		cancel()
		if err == nil {
			c.mu.Lock()
			c.b, c.lastErr = b, nil
			c.mu.Unlock()
			c.log.LogAttrs(context.Background(), slog.LevelInfo, "storage available", slog.String("backend", c.name), slog.Int("attempts", attempt))
			return
		}
		c.mu.Lock()
		c.lastErr = err
		c.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
		if errors.Is(err, ErrSchemaTooNew) {
			c.log.LogAttrs(context.Background(), slog.LevelError, "storage unusable", slog.String("backend", c.name), slog.String("error", err.Error()))
			return
		}
		if attempt%10 == 0 {
			c.log.LogAttrs(context.Background(), slog.LevelWarn, "storage still unavailable", slog.String("backend", c.name), slog.Int("attempts", attempt), slog.String("error", err.Error()))
		}
		backoff = min(backoff*2, o.MaxBackoff)
	}
}

// backend returns the open backend, or an error saying why there is none.
func (c *Conn) backend() (Backend, error) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.b != nil {
		return c.b, nil
	}
	if errors.Is(c.lastErr, ErrUnavailable) {
		return nil, fmt.Errorf("storage %s: %w", c.name, c.lastErr)
	}
	return nil, fmt.Errorf("storage %s: %w: %w", c.name, ErrUnavailable, c.lastErr)
}

// Ready reports whether the backend is open.
func (c *Conn) Ready() bool {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.b != nil
}

// Get implements KV.
func (c *Conn) Get(ctx context.Context, key string) ([]byte, error) {
	b, err := c.backend()
	if err != nil {
		return nil, err
	}
	return b.Get(ctx, key)
}

// Set implements KV.
func (c *Conn) Set(ctx context.Context, key string, value []byte) error {
	b, err := c.backend()
	if err != nil {
		return err
	}
	return b.Set(ctx, key, value)
}

// Create implements KV.
func (c *Conn) Create(ctx context.Context, key string, value []byte) error {
	b, err := c.backend()
	if err != nil {
		return err
	}
	return b.Create(ctx, key, value)
}

// Delete implements KV.
func (c *Conn) Delete(ctx context.Context, key string) error {
	b, err := c.backend()
	if err != nil {
		return err
	}
	return b.Delete(ctx, key)
}

// List implements KV.
func (c *Conn) List(ctx context.Context, prefix string) ([]Entry, error) {
	b, err := c.backend()
	if err != nil {
		return nil, err
	}
	return b.List(ctx, prefix)
}

// Incr implements KV.
func (c *Conn) Incr(ctx context.Context, key string, by int64, window time.Duration, now time.Time) (int64, time.Time, error) {
	b, err := c.backend()
	if err != nil {
		return 0, time.Time{}, err
	}
	return b.Incr(ctx, key, by, window, now)
}

// PutRecords implements Records.
func (c *Conn) PutRecords(ctx context.Context, recs ...Record) error {
	b, err := c.backend()
	if err != nil {
		return err
	}
	return b.PutRecords(ctx, recs...)
}

// GetRecord implements Records.
func (c *Conn) GetRecord(ctx context.Context, kind, id string) (Record, error) {
	b, err := c.backend()
	if err != nil {
		return Record{}, err
	}
	return b.GetRecord(ctx, kind, id)
}

// DeleteRecord implements Records.
func (c *Conn) DeleteRecord(ctx context.Context, kind, id string) error {
	b, err := c.backend()
	if err != nil {
		return err
	}
	return b.DeleteRecord(ctx, kind, id)
}

// ListRecords implements Records.
func (c *Conn) ListRecords(ctx context.Context, q ListQuery) ([]Record, bool, error) {
	b, err := c.backend()
	if err != nil {
		return nil, false, err
	}
	return b.ListRecords(ctx, q)
}

// Ping implements Backend: it fails while the backend is not open.
func (c *Conn) Ping(ctx context.Context) error {
	b, err := c.backend()
	if err != nil {
		return err
	}
	return b.Ping(ctx)
}

// Close stops retrying and closes the backend if it opened.
func (c *Conn) Close() error {
	c.cancel()
	<-c.done
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.b == nil {
		return nil
	}
	err := c.b.Close()
	c.b = nil
	c.lastErr = errors.New("closed")
	return err
}
