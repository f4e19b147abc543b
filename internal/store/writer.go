package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"
)

// WriterOptions tune a Writer.
type WriterOptions struct {
	// QueueSize bounds the records waiting to be written; when it is full,
	// Enqueue drops the record and says so. Default 10000.
	QueueSize int
	// BatchSize is the most records written in one transaction. Default 256.
	BatchSize int
	// FlushInterval is the longest a record waits in the queue before a
	// write starts. Default 100 ms.
	FlushInterval time.Duration
	// MaxBackoff caps the wait between attempts to write a failed batch.
	// Default 5 s.
	MaxBackoff time.Duration
	// Logger receives drops and write failures; nil discards them.
	Logger *slog.Logger
	// Observe, when set, is told the queue depth after each change and each
	// drop and write error, for metrics.
	Observe func(WriterEvent)
}

// WriterEvent is what a Writer reports to WriterOptions.Observe.
type WriterEvent struct {
	// Depth is the number of records waiting.
	Depth int
	// Dropped is set when a record was refused because the queue was full.
	Dropped bool
	// WriteError is set when a batch failed to be written (it is retried).
	WriteError error
}

// ErrWriterClosed is returned by Enqueue after Close.
var ErrWriterClosed = errors.New("writer closed")

// A Writer stores records off the request path: Enqueue never blocks, a
// background loop writes what is queued in batches, retrying a failed
// batch with backoff, and Close writes everything enqueued before it
// returns. Records are written in the order they were enqueued.
type Writer struct {
	dst  Records
	o    WriterOptions
	log  *slog.Logger
	q    chan Record
	done chan struct{}

	mu      sync.RWMutex // guards closed against Enqueue's send
	closed  bool
	dropped atomic.Int64
	written atomic.Int64
	stop    chan struct{} // closed by Close: flush what is queued and exit
	abort   chan struct{} // closed when Close's context ends: give up
}

// NewWriter starts a writer into dst.
func NewWriter(dst Records, o WriterOptions) *Writer {
	if o.QueueSize <= 0 {
		o.QueueSize = 10000
	}
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.FlushInterval <= 0 {
		o.FlushInterval = 100 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 5 * time.Second
	}
	w := &Writer{dst: dst, o: o, log: o.Logger, q: make(chan Record, o.QueueSize),
		done: make(chan struct{}), stop: make(chan struct{}), abort: make(chan struct{})}
	if w.log == nil {
		w.log = slog.New(slog.DiscardHandler)
	}
	go w.loop()
	return w
}

// Enqueue queues rec for writing without blocking. It returns false when
// the queue is full or the writer is closed; the record is then dropped,
// counted and logged.
func (w *Writer) Enqueue(rec Record) bool {
	w.mu.RLock()
	defer w.mu.RUnlock()
	if w.closed {
		w.drop(rec, "the store writer is closed")
		return false
	}
	select {
	case w.q <- rec:
		w.observe(WriterEvent{Depth: len(w.q)})
		return true
	default:
		w.drop(rec, "the store write queue is full")
		return false
	}
}

func (w *Writer) drop(rec Record, why string) {
	n := w.dropped.Add(1)
	w.observe(WriterEvent{Depth: len(w.q), Dropped: true})
	// Log the first drop and then every 1000th, so a long outage does not
	// flood the log.
	if n == 1 || n%1000 == 0 {
		w.log.LogAttrs(context.Background(), slog.LevelWarn, "record not stored: "+why,
			slog.String("kind", rec.Kind), slog.String("id", rec.ID), slog.Int64("dropped_total", n), slog.Int("queue_size", w.o.QueueSize))
	}
}

func (w *Writer) observe(e WriterEvent) {
	if w.o.Observe != nil {
		w.o.Observe(e)
	}
}

// Dropped returns how many records were refused.
func (w *Writer) Dropped() int64 { return w.dropped.Load() }

// Written returns how many records were stored.
func (w *Writer) Written() int64 { return w.written.Load() }

// Depth returns how many records wait to be written.
func (w *Writer) Depth() int { return len(w.q) }

// Close stops accepting records and writes everything queued, retrying
// failed batches until ctx ends; then it gives up and returns an error
// saying how many records were not stored.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		<-w.done
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	select {
	case <-w.done:
		return nil
	case <-ctx.Done():
		close(w.abort)
		<-w.done
		if n := len(w.q); n > 0 {
			return fmt.Errorf("store writer: %d records not stored: %w", n, ctx.Err())
		}
		return nil
	}
}

// loop gathers records into batches and writes them. A batch is written
// when it is full, when its first record has waited FlushInterval, or at
// Close.
func (w *Writer) loop() {
	defer close(w.done)
	batch := make([]Record, 0, w.o.BatchSize)
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		stopping := false
		if len(batch) == 0 {
			select {
			case rec := <-w.q:
				batch = append(batch, rec)
				timer.Reset(w.o.FlushInterval)
			case <-w.stop:
				stopping = true
			}
		}
		// Fill the batch until it is full or the flush time comes.
	fill:
		for !stopping && len(batch) < w.o.BatchSize {
			select {
			case rec := <-w.q:
				batch = append(batch, rec)
			case <-timer.C:
				break fill
			case <-w.stop:
				stopping = true
			}
		}
		if stopping {
			// Drain what is queued; nothing new arrives after Close.
			for len(w.q) > 0 && len(batch) < w.o.BatchSize {
				batch = append(batch, <-w.q)
			}
		}
		if len(batch) > 0 {
			timer.Stop()
			if !w.write(batch) {
				return // aborted
			}
			batch = batch[:0]
		}
		if stopping && len(w.q) == 0 {
			return
		}
	}
}

// write stores one batch, retrying with backoff until it succeeds or the
// writer is aborted. It reports whether the batch was stored.
func (w *Writer) write(batch []Record) bool {
	backoff := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := w.dst.PutRecords(ctx, batch...)
		cancel()
		if err == nil {
			w.written.Add(int64(len(batch)))
			w.observe(WriterEvent{Depth: len(w.q)})
			if attempt > 1 {
				w.log.LogAttrs(context.Background(), slog.LevelInfo, "store write recovered", slog.Int("attempts", attempt), slog.Int("records", len(batch)))
			}
			return true
		}
		if errors.Is(err, ErrInvalid) {
			// One bad record must not hold up the queue: store the batch
			// one by one and drop only what the store refuses.
			w.writeEach(batch)
			return true
		}
		w.observe(WriterEvent{Depth: len(w.q), WriteError: err})
		if attempt == 1 || attempt%20 == 0 {
			w.log.LogAttrs(context.Background(), slog.LevelError, "store write failed; retrying",
				slog.Int("attempt", attempt), slog.Int("records", len(batch)), slog.Int("queued", len(w.q)), slog.String("error", err.Error()))
		}
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-w.abort:
			t.Stop()
			w.log.LogAttrs(context.Background(), slog.LevelError, "store writer gave up at shutdown", slog.Int("records_lost", len(batch)+len(w.q)))
			return false
		}
		backoff = min(backoff*2, w.o.MaxBackoff)
	}
}

// writeEach stores a batch that held an invalid record one record at a
// time, dropping (counting and logging) the invalid ones and retrying the
// rest as write does.
func (w *Writer) writeEach(batch []Record) {
	for i := range batch {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := w.dst.PutRecords(ctx, batch[i])
		cancel()
		switch {
		case err == nil:
			w.written.Add(1)
		case errors.Is(err, ErrInvalid):
			w.dropped.Add(1)
			w.observe(WriterEvent{Depth: len(w.q), Dropped: true})
			w.log.LogAttrs(context.Background(), slog.LevelError, "record not stored: the store refuses it",
				slog.String("kind", batch[i].Kind), slog.String("id", batch[i].ID), slog.String("error", err.Error()))
		default:
			if !w.write(batch[i : i+1]) {
				return
			}
		}
	}
}
