// Package load is a small HTTP load driver on net/http for the benchmark
// harness: open-loop constant-rate load, closed-loop load on a fixed
// number of connections, and holding many streams open at once.
//
// Open-loop latencies are measured from each request's scheduled send
// time, not from when it was actually sent, so a stalled server or a late
// dispatcher shows up in the figures instead of silently lowering the
// offered rate (coordinated omission). For streams it also records the
// time to the first body byte, from the same origin.
package load

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Request is the request a run sends over and over.
type Request struct {
	// URL is where the request goes.
	URL string
	// Body is the JSON body, sent with Content-Type application/json.
	Body []byte
	// Stream says the answer is an event stream: it is read as it comes,
	// the time to its first byte is recorded, and it must end with
	// "data: [DONE]".
	Stream bool
	// WantEvents, if not zero, is the number of events (chunks plus
	// [DONE]) a streamed answer must carry.
	WantEvents int
}

// Sample is the outcome of one request.
type Sample struct {
	// Latency runs from the scheduled send time to the last body byte.
	Latency time.Duration
	// FirstByte runs from the scheduled send time to the first body byte.
	FirstByte time.Duration
	// Err is why the request failed, nil if it succeeded.
	Err error
}

// Result summarises a run.
type Result struct {
	// Sent is how many requests were started, OK how many succeeded.
	Sent, OK int
	// Errors counts the failures by message (at most 8 distinct ones).
	Errors map[string]int
	// Latency and FirstByte are the successful requests' figures, sorted;
	// AfterFirst is, per request, Latency minus FirstByte (the time from
	// the first body byte to the last), sorted.
	Latency, FirstByte, AfterFirst []time.Duration
	// Elapsed is the run's duration, from the first scheduled send to the
	// last answer.
	Elapsed time.Duration
	// MaxLate is the most any send started after its scheduled time
	// (open-loop runs only): how far the dispatcher fell behind; MeanLate
	// is the average.
	MaxLate, MeanLate time.Duration
}

// Failed is the number of failed requests.
func (r *Result) Failed() int { return r.Sent - r.OK }

// Throughput is successful requests per second over the run.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.OK) / r.Elapsed.Seconds()
}

// FirstError returns one error message, or "".
func (r *Result) FirstError() string {
	keys := make([]string, 0, len(r.Errors))
	for k := range r.Errors {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return ""
	}
	return keys[0]
}

func newResult(samples []Sample) *Result {
	r := &Result{Sent: len(samples), Errors: map[string]int{}}
	for _, s := range samples {
		if s.Err != nil {
			msg := s.Err.Error()
			if _, ok := r.Errors[msg]; ok || len(r.Errors) < 8 {
				r.Errors[msg]++
			}
			continue
		}
		r.OK++
		r.Latency = append(r.Latency, s.Latency)
		r.FirstByte = append(r.FirstByte, s.FirstByte)
		r.AfterFirst = append(r.AfterFirst, s.Latency-s.FirstByte)
	}
	slices.Sort(r.Latency)
	slices.Sort(r.FirstByte)
	slices.Sort(r.AfterFirst)
	return r
}

// Merge combines the results of runs of the same kind: their requests,
// errors and durations add up.
func Merge(rs ...*Result) *Result {
	out := &Result{Errors: map[string]int{}}
	var late time.Duration
	for _, r := range rs {
		out.Sent += r.Sent
		out.OK += r.OK
		for k, v := range r.Errors {
			if _, ok := out.Errors[k]; ok || len(out.Errors) < 8 {
				out.Errors[k] += v
			}
		}
		out.Latency = append(out.Latency, r.Latency...)
		out.FirstByte = append(out.FirstByte, r.FirstByte...)
		out.AfterFirst = append(out.AfterFirst, r.AfterFirst...)
		out.Elapsed += r.Elapsed
		out.MaxLate = max(out.MaxLate, r.MaxLate)
		late += r.MeanLate * time.Duration(r.Sent)
	}
	if out.Sent > 0 {
		out.MeanLate = late / time.Duration(out.Sent)
	}
	slices.Sort(out.Latency)
	slices.Sort(out.FirstByte)
	slices.Sort(out.AfterFirst)
	return out
}

// Percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method, or 0 for an empty slice.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(p/100*float64(len(sorted)) + 0.999999)
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}

// NewClient returns an HTTP/1.1 client for load: no proxy, no compression,
// keep-alive with room for many idle connections, and at most maxConns
// connections per host (0: no limit).
func NewClient(maxConns int) *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 8192,
		MaxConnsPerHost:     maxConns,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}}
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

var (
	doneTail   = []byte("data: [DONE]\n\n")
	completion = []byte(`"chat.completion"`)
)

// Do sends one request as if scheduled at sched and reads the whole
// answer. first, if not nil, is called when the first body byte arrives.
func Do(ctx context.Context, c *http.Client, req *Request, sched time.Time, first func()) Sample {
	var s Sample
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, req.URL, bytes.NewReader(req.Body))
	if err != nil {
		s.Err = err
		return s
	}
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.Do(hr)
	if err != nil {
		s.Err = trimErr(err)
		return s
	}
	defer resp.Body.Close()
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	buf := *bp
	if resp.StatusCode != http.StatusOK {
		n, _ := io.ReadFull(resp.Body, buf[:256])
		s.Err = fmt.Errorf("status %d: %s", resp.StatusCode, bytes.TrimSpace(buf[:n]))
		return s
	}
	var (
		total, events int
		prev          byte
		tail          []byte
		body          []byte // the non-streamed body, for the check
	)
	for {
		n, rerr := resp.Body.Read(buf)
		if n > 0 {
			if total == 0 {
				s.FirstByte = time.Since(sched)
				if first != nil {
					first()
				}
			}
			chunk := buf[:n]
			total += n
			if req.Stream {
				if prev == '\n' && chunk[0] == '\n' {
					events++
				}
				events += bytes.Count(chunk, []byte("\n\n"))
				prev = chunk[n-1]
				tail = append(tail, chunk...)
				if len(tail) > len(doneTail) {
					tail = tail[len(tail)-len(doneTail):]
				}
			} else if len(body) < 64<<10 {
				body = append(body, chunk...)
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			s.Err = trimErr(rerr)
			return s
		}
	}
	s.Latency = time.Since(sched)
	switch {
	case req.Stream && !bytes.Equal(tail, doneTail):
		s.Err = fmt.Errorf("stream did not end with [DONE] (%d bytes, %d events)", total, events)
	case req.Stream && req.WantEvents > 0 && events != req.WantEvents:
		s.Err = fmt.Errorf("stream carried %d events, want %d", events, req.WantEvents)
	case !req.Stream && !bytes.Contains(body, completion):
		s.Err = fmt.Errorf("answer is not a chat completion (%d bytes)", total)
	}
	return s
}

// trimErr drops the request URL from client errors so that equal failures
// count as one.
func trimErr(err error) error {
	var ue interface{ Unwrap() error }
	if errors.As(err, &ue) {
		if inner := ue.Unwrap(); inner != nil {
			return inner
		}
	}
	return err
}

// Constant sends rate requests per second for dur, open loop: request i is
// due at start + i/rate whatever happened to the ones before it, and its
// latency counts from that moment. At most maxInFlight requests run at
// once (0: 10,000); a send that waits for a slot still counts from its
// due time. Each request may take up to timeout beyond the end of the run.
func Constant(ctx context.Context, c *http.Client, req *Request, rate float64, dur, timeout time.Duration, maxInFlight int) *Result {
	if maxInFlight <= 0 {
		maxInFlight = 10000
	}
	n := int(rate * dur.Seconds())
	samples := make([]Sample, n)
	rctx, cancel := context.WithTimeout(ctx, dur+timeout)
	defer cancel()
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	interval := time.Duration(float64(time.Second) / rate)
	pc, err := newPacer(interval)
	if err != nil {
		pc = newSleepPacer(interval)
	}
	defer pc.close()
	start := time.Now()
	var maxLate, sumLate time.Duration
	sent, ticks := 0, 0
loop:
	for sent < n {
		// Send everything due by now: request i is due at start+i*interval.
		for ; sent < n && sent <= ticks; sent++ {
			due := start.Add(time.Duration(sent) * interval)
			select {
			case sem <- struct{}{}:
			case <-rctx.Done():
				break loop
			}
			late := max(time.Since(due), 0)
			sumLate += late
			maxLate = max(maxLate, late)
			wg.Add(1)
			go func(i int, due time.Time) {
				defer wg.Done()
				samples[i] = Do(rctx, c, req, due, nil)
				<-sem
			}(sent, due)
		}
		if sent == n || rctx.Err() != nil {
			break
		}
		k, err := pc.wait()
		if err != nil {
			break
		}
		ticks += k
	}
	wg.Wait()
	r := newResult(samples[:sent])
	r.Elapsed = time.Since(start)
	r.MaxLate = maxLate
	if sent > 0 {
		r.MeanLate = sumLate / time.Duration(sent)
	}
	return r
}

// Closed runs conns workers for dur, each sending its next request as soon
// as the previous answer is read: the server's maximum throughput at that
// concurrency. Latency counts from each actual send.
func Closed(ctx context.Context, c *http.Client, req *Request, conns int, dur, timeout time.Duration) *Result {
	rctx, cancel := context.WithTimeout(ctx, dur+timeout)
	defer cancel()
	per := make([][]Sample, conns)
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(dur)
	for w := range conns {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			out := make([]Sample, 0, 4096)
			for rctx.Err() == nil {
				now := time.Now()
				if !now.Before(end) {
					break
				}
				out = append(out, Do(rctx, c, req, now, nil))
			}
			per[w] = out
		}(w)
	}
	wg.Wait()
	r := newResult(slices.Concat(per...))
	r.Elapsed = time.Since(start)
	return r
}

// HoldResult is the outcome of Hold.
type HoldResult struct {
	// Wanted is how many streams were to be opened; Opened how many
	// delivered their first byte; Failed how many failed before that.
	Wanted, Opened, Failed int
	// OpenTime is how long it took until all were open (or the wait gave
	// up).
	OpenTime time.Duration
	// EndedEarly counts streams that ended before they were released.
	EndedEarly int
	// Err is the first failure, if any.
	Err error
}

// Hold opens n streams at rate opens per second, waits (at most wait)
// until every one has delivered its first byte, calls during with all of
// them open, then cancels them and waits for their goroutines to end.
func Hold(ctx context.Context, c *http.Client, req *Request, n int, rate float64, wait time.Duration, during func()) *HoldResult {
	hctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		opened, failed, early atomic.Int64
		wg                    sync.WaitGroup
		released              atomic.Bool
		mu                    sync.Mutex
		firstErr              error
	)
	setErr := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	allOpen := make(chan struct{})
	var closeOnce sync.Once
	check := func() {
		if opened.Load()+failed.Load() == int64(n) {
			closeOnce.Do(func() { close(allOpen) })
		}
	}
	start := time.Now()
	interval := float64(time.Second) / rate
	wg.Add(1) // the dispatcher, so that Wait cannot return before it is done adding
	go func() {
		defer wg.Done()
		for i := range n {
			due := start.Add(time.Duration(float64(i) * interval))
			if d := time.Until(due); d > 0 {
				select {
				case <-time.After(d):
				case <-hctx.Done():
					return
				}
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				got := false
				s := Do(hctx, c, req, due, func() { got = true; opened.Add(1); check() })
				if !got {
					failed.Add(1)
					if s.Err != nil {
						setErr(s.Err)
					}
					check()
					return
				}
				if !released.Load() {
					early.Add(1)
					if s.Err != nil {
						setErr(s.Err)
					}
				}
			}()
		}
	}()
	t := time.NewTimer(wait)
	select {
	case <-allOpen:
	case <-t.C:
	case <-ctx.Done():
	}
	t.Stop()
	res := &HoldResult{Wanted: n, OpenTime: time.Since(start)}
	if during != nil {
		during()
	}
	released.Store(true)
	res.Opened, res.Failed, res.EndedEarly = int(opened.Load()), int(failed.Load()), int(early.Load())
	cancel()
	wg.Wait()
	res.Err = firstErr
	return res
}
