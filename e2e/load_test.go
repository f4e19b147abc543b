package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// loadConcurrency is the number of clients sending at once.
const loadConcurrency = 64

// loadRound is the number of requests of each measured round; two rounds
// make the 10,000 requests of the load test.
const loadRound = 5000

// TestLoad sends 10,000 chat completions, streamed and not, half and half,
// from 64 concurrent clients on loopback to the built binary in front of
// the double, in two rounds. No request may fail; after each round the
// server's goroutines are back within what its pool of idle upstream
// connections explains, and once those connections are gone (the double
// closes them) exactly where they were before the first request; its
// resident memory does not keep growing from one round to the next.
func TestLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("load test skipped with -short")
	}
	double, srv := notebookServer(t, bedrocktest.Options{})
	tr := &http.Transport{MaxIdleConnsPerHost: loadConcurrency, MaxConnsPerHost: loadConcurrency, IdleConnTimeout: time.Minute}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}

	// Before any upstream call: the goroutines the server always has.
	idle := warmSteady(t, srv.URL)
	// The server keeps up to one idle upstream connection (two
	// goroutines) per request it had in flight at once: at most 64.
	poolBound := idle + 2*loadConcurrency + goroutineSlack

	// Warm-up: 64 streams held open together, then a short round.
	gate := double.Gate()
	var wg sync.WaitGroup
	for i := range loadConcurrency {
		wg.Go(func() {
			if err := loadRequest(client, srv.URL, true, i); err != nil {
				t.Errorf("warm-up stream %d: %v", i, err)
			}
		})
	}
	settle(t, srv.URL, "64 warm-up streams open", func(m metricSet) bool {
		return m.get("llama_stack_inflight_streams") == loadConcurrency
	})
	gate.Open()
	wg.Wait()
	if r := loadRun(client, srv.URL, 640); r.failed > 0 {
		t.Fatalf("warm-up: %d of %d failed, e.g. %s", r.failed, r.total, r.firstErr)
	}
	tr.CloseIdleConnections()
	base := scrape(t, srv.URL)
	t.Logf("before the first request: %v goroutines; after the warm-up: %v, RSS %.1f MiB", idle, base.get("go_goroutines"), base.get("process_resident_memory_bytes")/(1<<20))

	type roundStats struct {
		dur        time.Duration
		goroutines float64
		rss        float64
		heap       float64
	}
	var rounds []roundStats
	for round := 1; round <= 2; round++ {
		start := time.Now()
		r := loadRun(client, srv.URL, loadRound)
		dur := time.Since(start)
		if r.failed > 0 {
			t.Fatalf("round %d: %d of %d requests failed, e.g. %s", round, r.failed, r.total, r.firstErr)
		}
		tr.CloseIdleConnections()
		m := settle(t, srv.URL, fmt.Sprintf("round %d: goroutines within %v (%v plus the idle upstream pool)", round, poolBound, idle), func(m metricSet) bool {
			return m.get("llama_stack_inflight_streams") == 0 && m.get("go_goroutines") <= poolBound
		})
		st := roundStats{dur: dur, goroutines: m.get("go_goroutines"), rss: m.get("process_resident_memory_bytes"), heap: m.get("go_memstats_heap_inuse_bytes")}
		rounds = append(rounds, st)
		t.Logf("round %d: %d requests (%d streamed) in %v (%.0f/s), 0 failed; goroutines %v; RSS %.1f MiB; heap in use %.1f MiB",
			round, r.total, r.streams, dur.Round(time.Millisecond), float64(r.total)/dur.Seconds(), st.goroutines, st.rss/(1<<20), st.heap/(1<<20))
	}
	m := scrape(t, srv.URL)
	if got, want := m.get("llama_stack_requests_total", "route", "/v1/chat/completions", "status", "200"), float64(loadConcurrency+640+2*loadRound); got != want {
		t.Errorf("requests_total{status=200} = %v, want %v", got, want)
	}
	if got := m.get("llama_stack_upstream_errors_total"); got != 0 {
		t.Errorf("upstream_errors_total = %v, want 0", got)
	}
	// Memory: the second round may not leave the process much larger than
	// the first did; a leak of even 1 KiB per request would add 5 MB.
	a, b := rounds[0].rss, rounds[1].rss
	if limit := a + max(a/4, 16<<20); b > limit {
		t.Errorf("RSS grew from %.1f MiB after round 1 to %.1f MiB after round 2 (limit %.1f MiB)", a/(1<<20), b/(1<<20), limit/(1<<20))
	}
	if ha, hb := rounds[0].heap, rounds[1].heap; hb > ha+max(ha/4, 8<<20) {
		t.Errorf("heap in use grew from %.1f MiB after round 1 to %.1f MiB after round 2", ha/(1<<20), hb/(1<<20))
	}
	// With the upstream's connections closed, nothing of the 10,704
	// requests may be left.
	double.Close()
	m = settle(t, srv.URL, fmt.Sprintf("goroutines back to %v once the upstream connections are closed", idle), func(m metricSet) bool {
		return m.get("go_goroutines") <= idle+goroutineSlack
	})
	t.Logf("after the upstream connections closed: %v goroutines (before the first request: %v)", m.get("go_goroutines"), idle)
}

// loadResult sums up a run.
type loadResult struct {
	total, streams, failed int
	firstErr               string
}

// loadRun sends n requests from loadConcurrency workers; even-numbered
// requests stream.
func loadRun(client *http.Client, base string, n int) loadResult {
	var next, failed, streams atomic.Int64
	var once sync.Once
	var first string
	var wg sync.WaitGroup
	for range loadConcurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				stream := i%2 == 0
				if stream {
					streams.Add(1)
				}
				if err := loadRequest(client, base, stream, i); err != nil {
					failed.Add(1)
					once.Do(func() { first = err.Error() })
				}
			}
		})
	}
	wg.Wait()
	return loadResult{total: n, streams: int(streams.Load()), failed: int(failed.Load()), firstErr: first}
}

// loadRequest sends one chat completion and checks its answer: a
// completion with content, or a stream of chunks ending in [DONE] without
// an error event.
func loadRequest(client *http.Client, base string, stream bool, i int) error {
	req, err := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(chatBody(fmt.Sprintf("load %d: Which planet do humans live on?", i), stream)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		b, _ := io.ReadAll(resp.Body)
		return fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	if !stream {
		var c struct {
			Choices []struct {
				Message struct {
					Content string `json:"content"`
				} `json:"message"`
			} `json:"choices"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		if len(c.Choices) != 1 || !strings.Contains(c.Choices[0].Message.Content, "Earth") {
			return fmt.Errorf("answer %+v", c)
		}
		return nil
	}
	sc := bufio.NewScanner(resp.Body)
	last, chunks := "", 0
	for sc.Scan() {
		d, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok {
			continue
		}
		if strings.HasPrefix(d, `{"error"`) {
			return fmt.Errorf("error event: %s", d)
		}
		last = d
		chunks++
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("read stream: %w", err)
	}
	if last != "[DONE]" || chunks < 3 {
		return fmt.Errorf("stream of %d events ended with %q", chunks, last)
	}
	return nil
}

// warmSteady waits until the server's goroutine count is the same on two
// scrapes in a row with no stream open, and returns it.
func warmSteady(t *testing.T, base string) float64 {
	t.Helper()
	prev := -1.0
	m := settle(t, base, "goroutines steady", func(m metricSet) bool {
		g := m.get("go_goroutines")
		steady := g == prev
		prev = g
		return steady && m.get("llama_stack_inflight_streams") == 0
	})
	return m.get("go_goroutines")
}
