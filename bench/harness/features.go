package harness

import (
	"bufio"
	"context"
	"database/sql"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "modernc.org/sqlite" // reads the gateway's SQLite files after the run
)

// features is what the gateway had switched on during a run, read from
// the gateway itself rather than assumed from its config: request logging
// (the access-log lines in its log), metrics (its /metrics answered with
// the request counter), and the inference store (GET /v1/chat/completions
// answered 200, and the records found in its SQLite files after it shut
// down and flushed them).
type features struct {
	metrics     bool
	requests    float64 // llama_stack_requests_total summed over its labels
	store       bool
	dropped     float64 // llama_stack_store_dropped_total
	writeErrors float64 // llama_stack_store_write_errors_total
	stored      int64   // chat completion records in the store after shutdown; -1 unknown
	storeErr    string  // why stored is unknown
}

// newStoreDir returns a fresh directory for one gateway's SQLite files
// (its SQLITE_STORE_DIR), inside the run's scratch directory.
func (h *harness) newStoreDir(name string) (string, error) {
	dir := filepath.Join(h.work, fmt.Sprintf("store-%s-%d", name, h.seq.Add(1)))
	return dir, os.MkdirAll(dir, 0o755)
}

// probeFeatures asks a running gateway at base which of metrics and the
// inference store answer, and reads the store's counters from /metrics.
func probeFeatures(ctx context.Context, base string) (features, error) {
	f := features{stored: -1}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	get := func(path string) (int, []byte, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		if err != nil {
			return 0, nil, err
		}
		resp, err := c.Do(req)
		if err != nil {
			return 0, nil, err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, b, err
	}
	status, body, err := get("/metrics")
	if err != nil {
		return f, fmt.Errorf("GET /metrics: %w", err)
	}
	if status == http.StatusOK {
		m := parseMetrics(string(body))
		_, f.metrics = m["llama_stack_requests_total"]
		f.requests = m["llama_stack_requests_total"]
		f.dropped = m["llama_stack_store_dropped_total"]
		f.writeErrors = m["llama_stack_store_write_errors_total"]
	}
	status, _, err = get("/v1/chat/completions?limit=1")
	if err != nil {
		return f, fmt.Errorf("GET /v1/chat/completions: %w", err)
	}
	f.store = status == http.StatusOK
	return f, nil
}

// parseMetrics sums the samples of each metric in the Prometheus text
// format over their labels.
func parseMetrics(text string) map[string]float64 {
	out := map[string]float64{}
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			name, rest, ok = line[:i], strings.TrimSpace(line[j+1:]), true
		}
		if !ok {
			continue
		}
		if sp := strings.IndexByte(rest, ' '); sp >= 0 {
			rest = rest[:sp] // a timestamp follows
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		out[name] += v
	}
	return out
}

// countStored counts the chat completion records in the SQLite files of
// dir, read-only, after the gateway that wrote them has exited.
func countStored(ctx context.Context, dir string) (int64, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.db"))
	if err != nil {
		return 0, err
	}
	var total int64
	found := false
	for _, path := range files {
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: "mode=ro"}
		db, err := sql.Open("sqlite", u.String())
		if err != nil {
			return 0, err
		}
		var n int64
		err = db.QueryRowContext(ctx, `SELECT COUNT(*) FROM records WHERE kind = 'chat_completion'`).Scan(&n)
		db.Close()
		if err != nil {
			continue // not the file that holds the records
		}
		total += n
		found = true
	}
	if !found {
		return 0, fmt.Errorf("no records table in %s", dir)
	}
	return total, nil
}

// describe says, for the report, what the gateway had switched on.
func (f features) describe(logLines int, served int64) string {
	onOff := func(b bool) string {
		if b {
			return "**on**"
		}
		return "**off**"
	}
	s := fmt.Sprintf("request logging %s (one JSON line per request to a file: %d lines for %d requests and the health probes); ", onOff(logLines > 0), logLines, served)
	s += fmt.Sprintf("metrics %s (GET /metrics counted %.0f requests); ", onOff(f.metrics), f.requests)
	// Tracing and auth are read from the environment the gateway inherits
	// and from what it answered: neither is switched on by the harness.
	tracing := "tracing off (no OTLP endpoint in the environment: the no-op tracer)"
	if os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != "" {
		tracing = "tracing **on** (an OTLP endpoint is set in the environment)"
	}
	s += tracing + "; "
	if !f.store {
		return s + "inference store **off**"
	}
	s += "inference store **on** (SQLite under a fresh `SQLITE_STORE_DIR`"
	if f.stored >= 0 {
		s += fmt.Sprintf(": %d chat completions stored", f.stored)
	} else if f.storeErr != "" {
		s += ": records not counted: " + f.storeErr
	}
	s += fmt.Sprintf(", %.0f dropped on a full queue, %.0f write errors)", f.dropped, f.writeErrors)
	return s
}
