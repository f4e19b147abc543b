package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// fakeRecords records PutRecords calls; fail makes them fail, gate makes
// them wait.
type fakeRecords struct {
	Records
	mu      sync.Mutex
	got     []Record
	batches int
	fail    error
	gate    chan struct{}
}

func (f *fakeRecords) PutRecords(ctx context.Context, recs ...Record) error {
	if f.gate != nil {
		select {
		case <-f.gate:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.fail != nil {
		return f.fail
	}
	f.batches++
	f.got = append(f.got, recs...)
	return nil
}

func (f *fakeRecords) setFail(err error) {
	f.mu.Lock()
	f.fail = err
	f.mu.Unlock()
}

func (f *fakeRecords) ids() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]string, len(f.got))
	for i, r := range f.got {
		out[i] = r.ID
	}
	return out
}

func rec(i int) Record {
	return Record{Kind: KindChatCompletion, ID: fmt.Sprintf("r%04d", i), Body: []byte("{}")}
}

func TestWriterWritesAllInOrderAndCloseFlushes(t *testing.T) {
	f := &fakeRecords{}
	w := NewWriter(f, WriterOptions{BatchSize: 7, FlushInterval: time.Hour})
	const n = 100
	for i := range n {
		if !w.Enqueue(rec(i)) {
			t.Fatalf("Enqueue %d refused", i)
		}
	}
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	ids := f.ids()
	if len(ids) != n {
		t.Fatalf("stored %d records, want %d", len(ids), n)
	}
	for i, id := range ids {
		if id != rec(i).ID {
			t.Fatalf("record %d is %s, want %s (order lost)", i, id, rec(i).ID)
		}
	}
	if f.batches < n/7 {
		t.Errorf("%d batches for %d records of batch size 7", f.batches, n)
	}
	if w.Written() != n || w.Dropped() != 0 {
		t.Errorf("written %d dropped %d", w.Written(), w.Dropped())
	}
	if w.Enqueue(rec(0)) {
		t.Error("Enqueue after Close accepted a record")
	}
}

func TestWriterFlushesOnInterval(t *testing.T) {
	f := &fakeRecords{}
	w := NewWriter(f, WriterOptions{BatchSize: 1000, FlushInterval: time.Millisecond})
	defer w.Close(context.Background())
	w.Enqueue(rec(1))
	deadline := time.Now().Add(10 * time.Second)
	for len(f.ids()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("a lone record was never written")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestWriterFullQueueDropsWithoutBlocking(t *testing.T) {
	f := &fakeRecords{gate: make(chan struct{})}
	var mu sync.Mutex
	var drops int
	w := NewWriter(f, WriterOptions{QueueSize: 4, BatchSize: 1, FlushInterval: time.Millisecond, Observe: func(e WriterEvent) {
		if e.Dropped {
			mu.Lock()
			drops++
			mu.Unlock()
		}
	}})
	accepted := 0
	for i := range 50 {
		if w.Enqueue(rec(i)) {
			accepted++
		}
	}
	if accepted > 4+1 { // the queue, plus the one the loop may hold
		t.Errorf("accepted %d records with a queue of 4 and a blocked store", accepted)
	}
	if got := w.Dropped(); got != int64(50-accepted) {
		t.Errorf("Dropped() = %d, want %d", got, 50-accepted)
	}
	mu.Lock()
	if drops != 50-accepted {
		t.Errorf("observed %d drops, want %d", drops, 50-accepted)
	}
	mu.Unlock()
	close(f.gate)
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(f.ids()); got != accepted {
		t.Errorf("stored %d, want every accepted record (%d)", got, accepted)
	}
}

func TestWriterRetriesFailedBatch(t *testing.T) {
	f := &fakeRecords{}
	f.setFail(errors.New("disk on fire"))
	var mu sync.Mutex
	var errs int
	w := NewWriter(f, WriterOptions{BatchSize: 10, FlushInterval: time.Millisecond, MaxBackoff: time.Millisecond, Observe: func(e WriterEvent) {
		if e.WriteError != nil {
			mu.Lock()
			errs++
			mu.Unlock()
		}
	}})
	for i := range 5 {
		w.Enqueue(rec(i))
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := errs
		mu.Unlock()
		if n >= 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("failed writes were not retried")
		}
		time.Sleep(time.Millisecond)
	}
	f.setFail(nil)
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(f.ids()); got != 5 {
		t.Errorf("stored %d records after recovery, want 5", got)
	}
}

func TestWriterCloseGivesUpAtDeadline(t *testing.T) {
	f := &fakeRecords{}
	f.setFail(errors.New("down"))
	w := NewWriter(f, WriterOptions{BatchSize: 2, FlushInterval: time.Millisecond, MaxBackoff: time.Millisecond})
	for i := range 5 {
		w.Enqueue(rec(i))
	}
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := w.Close(ctx); err == nil {
		t.Error("Close reported success with the store down")
	}
}

func TestConnRetriesUntilOpen(t *testing.T) {
	var mu sync.Mutex
	attempts := 0
	open := func(ctx context.Context) (Backend, error) {
		mu.Lock()
		defer mu.Unlock()
		attempts++
		if attempts < 3 {
			return nil, fmt.Errorf("connect: %w", ErrUnavailable)
		}
		return &fakeBackend{}, nil
	}
	c := Connect("test", open, ConnectOptions{MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond})
	defer c.Close()
	if _, err := c.Get(t.Context(), "k"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get before open = %v, want ErrUnavailable", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !c.Ready() {
		if time.Now().After(deadline) {
			t.Fatal("Conn never opened")
		}
		time.Sleep(time.Millisecond)
	}
	if _, err := c.Get(t.Context(), "k"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get after open = %v, want the backend's ErrNotFound", err)
	}
}

func TestConnSchemaTooNewIsNotRetried(t *testing.T) {
	attempts := 0
	c := Connect("test", func(ctx context.Context) (Backend, error) {
		attempts++
		return nil, fmt.Errorf("schema version 9, this server knows 2: %w", ErrSchemaTooNew)
	}, ConnectOptions{MinBackoff: time.Millisecond})
	defer c.Close()
	err := c.Ping(t.Context())
	if !errors.Is(err, ErrSchemaTooNew) || !errors.Is(err, ErrUnavailable) {
		t.Errorf("Ping = %v, want ErrSchemaTooNew and ErrUnavailable", err)
	}
	if attempts != 1 {
		t.Errorf("%d attempts, want 1", attempts)
	}
}

type fakeBackend struct{ Backend }

func (*fakeBackend) Get(context.Context, string) ([]byte, error) { return nil, ErrNotFound }
func (*fakeBackend) Close() error                                { return nil }

// pickyRecords refuses records whose ID starts with "bad", as a backend
// refuses invalid text.
type pickyRecords struct{ fakeRecords }

func (p *pickyRecords) PutRecords(ctx context.Context, recs ...Record) error {
	for _, r := range recs {
		if strings.HasPrefix(r.ID, "bad") {
			return fmt.Errorf("id %q: %w", r.ID, ErrInvalid)
		}
	}
	return p.fakeRecords.PutRecords(ctx, recs...)
}

func TestWriterDropsOnlyInvalidRecords(t *testing.T) {
	p := &pickyRecords{}
	w := NewWriter(p, WriterOptions{BatchSize: 10, FlushInterval: time.Hour})
	for i := range 5 {
		w.Enqueue(rec(i))
	}
	w.Enqueue(Record{Kind: KindChatCompletion, ID: "bad\x00"})
	w.Enqueue(rec(5))
	if err := w.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := len(p.ids()); got != 6 {
		t.Errorf("stored %d valid records, want 6", got)
	}
	if w.Dropped() != 1 {
		t.Errorf("dropped %d, want 1", w.Dropped())
	}
}
