package ratelimit

import (
	"context"
	"errors"
	"sync"
	"time"
)

// sweepEvery is how many Incr calls pass between sweeps of ended windows.
const sweepEvery = 1024

// A MemoryCounter is a Counter in process memory, for a single replica or
// tests. Ended windows are dropped as it goes; it starts no goroutines.
type MemoryCounter struct {
	mu      sync.Mutex
	windows map[string]*window
	calls   int
}

type window struct {
	count   int64
	resetAt time.Time
}

// NewMemoryCounter returns an empty MemoryCounter.
func NewMemoryCounter() *MemoryCounter {
	return &MemoryCounter{windows: map[string]*window{}}
}

// Incr implements Counter.
func (c *MemoryCounter) Incr(_ context.Context, key string, by int64, length time.Duration, now time.Time) (int64, time.Time, error) {
	if length <= 0 {
		return 0, time.Time{}, errors.New("window must be positive")
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	if c.calls%sweepEvery == 0 {
		for k, w := range c.windows {
			if !now.Before(w.resetAt) {
				delete(c.windows, k)
			}
		}
	}
	w, ok := c.windows[key]
	if !ok || !now.Before(w.resetAt) {
		w = &window{resetAt: now.Add(length)}
		c.windows[key] = w
	}
	w.count += by
	return w.count, w.resetAt, nil
}

// Len returns the number of windows held, ended or not.
func (c *MemoryCounter) Len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.windows)
}

var _ Counter = (*MemoryCounter)(nil)
