package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// Fault injection: the built binary in front of the Bedrock double, whose
// faults (throttling, 5xx, stalls, dropped connections, gates) make the
// upstream misbehave. Every test asserts the client's outcome, how many
// times the double was asked, and what /metrics counted, and checks that
// the server's goroutines (go_goroutines) and open streams
// (llama_stack_inflight_streams) return to where they were.

// faultClient sends the tests' requests. Keep-alives are off, so that no
// idle client connection holds a server goroutine between measurements.
var faultClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true, MaxConnsPerHost: 0}}

// faultServer starts the double and the binary with the notebook's config
// plus the given server.resilience block (YAML, unindented).
func faultServer(t *testing.T, opts bedrocktest.Options, resilience string) (*bedrocktest.Server, *server) {
	t.Helper()
	double := bedrocktest.New(t, opts)
	cfg := notebookConfig + "server:\n  resilience:\n" + indentLines(resilience, "    ")
	env := []string{
		"AWS_BEARER_TOKEN_BEDROCK=" + bedrocktest.DefaultKey,
		"AWS_DEFAULT_REGION=us-west-2",
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL(),
	}
	return double, startServer(t, env, writeFile(t, "config.yaml", cfg))
}

// indentLines prefixes every non-empty line of s.
func indentLines(s, prefix string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(strings.TrimSpace(s), "\n") {
		if strings.TrimSpace(line) != "" {
			b.WriteString(prefix + line)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// chatResult is a chat completion as the client saw it.
type chatResult struct {
	status int
	header http.Header
	body   []byte
	events []string // the data payloads of a stream, in order
}

// lastEvent is the last data payload of a stream, "" for none.
func (c chatResult) lastEvent() string {
	if len(c.events) == 0 {
		return ""
	}
	return c.events[len(c.events)-1]
}

// errorEvents returns the in-band error events of a stream.
func (c chatResult) errorEvents() []errorShape {
	var out []errorShape
	for _, ev := range c.events {
		var e errorShape
		if json.Unmarshal([]byte(ev), &e) == nil && e.Error.Message != "" {
			out = append(out, e)
		}
	}
	return out
}

// errorShape is OpenAI's error body.
type errorShape struct {
	Error struct {
		Message string  `json:"message"`
		Type    string  `json:"type"`
		Code    *string `json:"code"`
	} `json:"error"`
}

func (e errorShape) code() string {
	if e.Error.Code == nil {
		return ""
	}
	return *e.Error.Code
}

// chatBody is a chat completion request for the notebook's model.
func chatBody(prompt string, stream bool) string {
	return fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":%q}],"stream":%t}`, modelID, prompt, stream)
}

// chatCall sends a chat completion with the given extra headers (name,
// value pairs) and reads the whole answer.
func chatCall(t *testing.T, base string, stream bool, prompt string, hdr ...string) chatResult {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), "POST", base+"/v1/chat/completions", strings.NewReader(chatBody(prompt, stream)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := faultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("read answer: %v", err)
	}
	res := chatResult{status: resp.StatusCode, header: resp.Header, body: b}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		res.events = dataEvents(string(b))
	}
	return res
}

// dataEvents returns the data payloads of an SSE body.
func dataEvents(body string) []string {
	var out []string
	for line := range strings.SplitSeq(body, "\n") {
		if d, ok := strings.CutPrefix(strings.TrimRight(line, "\r"), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

// decodeErrorBody decodes an OpenAI error body or fails the test.
func decodeErrorBody(t *testing.T, b []byte) errorShape {
	t.Helper()
	var e errorShape
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" || e.Error.Type == "" {
		t.Fatalf("not an OpenAI error body: %s", b)
	}
	return e
}

// chatAttempts counts the chat requests the double received.
func chatAttempts(d *bedrocktest.Server) int {
	n := 0
	for _, r := range d.Requests() {
		if r.Path == bedrocktest.ChatPath {
			n++
		}
	}
	return n
}

// metricSample is one sample of the Prometheus text format.
type metricSample struct {
	labels map[string]string
	value  float64
}

// metricSet is a scrape of /metrics, by metric name.
type metricSet map[string][]metricSample

// get sums the samples of name whose labels include the given name, value
// pairs; 0 when there is none.
func (m metricSet) get(name string, kv ...string) float64 {
	sum := 0.0
next:
	for _, s := range m[name] {
		for i := 0; i+1 < len(kv); i += 2 {
			if s.labels[kv[i]] != kv[i+1] {
				continue next
			}
		}
		sum += s.value
	}
	return sum
}

// scrape reads the server's /metrics, which must be open (no credentials).
func scrape(t *testing.T, base string) metricSet {
	t.Helper()
	resp, err := faultClient.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET /metrics: %d %s", resp.StatusCode, b)
	}
	m, err := parseMetrics(string(b))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return m
}

// parseMetrics parses the Prometheus text exposition format (samples
// only; comments skipped).
func parseMetrics(text string) (metricSet, error) {
	m := metricSet{}
	for line := range strings.SplitSeq(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		s := metricSample{labels: map[string]string{}}
		name, rest := line, ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name, rest = line[:i], line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			rest = rest[1:]
			for {
				rest = strings.TrimLeft(rest, ", ")
				if strings.HasPrefix(rest, "}") {
					rest = rest[1:]
					break
				}
				eq := strings.Index(rest, `="`)
				if eq < 0 {
					return nil, fmt.Errorf("bad labels in %q", line)
				}
				key := rest[:eq]
				rest = rest[eq+2:]
				var val strings.Builder
				i := 0
				for ; i < len(rest) && rest[i] != '"'; i++ {
					if rest[i] == '\\' && i+1 < len(rest) {
						i++
						switch rest[i] {
						case 'n':
							val.WriteByte('\n')
						default:
							val.WriteByte(rest[i])
						}
						continue
					}
					val.WriteByte(rest[i])
				}
				if i >= len(rest) {
					return nil, fmt.Errorf("unterminated label in %q", line)
				}
				s.labels[key] = val.String()
				rest = rest[i+1:]
			}
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("no value in %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("value in %q: %w", line, err)
		}
		s.value = v
		m[name] = append(m[name], s)
	}
	return m, nil
}

// settle polls /metrics until cond holds, for up to 20 s, and returns the
// last scrape; it fails the test with what did not settle.
func settle(t *testing.T, base, what string, cond func(metricSet) bool) metricSet {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		m := scrape(t, base)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20s (go_goroutines %v, inflight_streams %v)", what,
				m.get("go_goroutines"), m.get("llama_stack_inflight_streams"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goroutineSlack allows for the idle upstream connections the server's
// transport pools (two goroutines each) differing from the baseline by
// one: a broken connection is replaced by a fresh one only on the next
// request.
const goroutineSlack = 2

// settleBaseline waits until the server has no open stream and no more
// goroutines than at the baseline (plus goroutineSlack).
func settleBaseline(t *testing.T, base string, baseline float64) metricSet {
	t.Helper()
	return settle(t, base, fmt.Sprintf("goroutines back to the baseline of %v and no open stream", baseline), func(m metricSet) bool {
		return m.get("llama_stack_inflight_streams") == 0 && m.get("go_goroutines") <= baseline+goroutineSlack
	})
}

// warmBaseline sends one request of each kind, so that pools and lazily
// started goroutines exist, and returns the server's goroutine count.
func warmBaseline(t *testing.T, base string) float64 {
	t.Helper()
	for _, stream := range []bool{false, true} {
		if r := chatCall(t, base, stream, "warm up"); r.status != 200 {
			t.Fatalf("warm-up: %d %s", r.status, r.body)
		}
	}
	// Let the connections of the warm-up requests close.
	return warmSteady(t, base)
}

const retryFast = `
initial_backoff: 0.01
max_backoff: 0.02
`

// TestFaultThrottlingStorm: an upstream that answers every call with 429
// ThrottlingException is asked max_retries+1 times (each retry waits the
// upstream's Retry-After of 1 s), then the client gets 429 with
// Retry-After, before any stream has started.
func TestFaultThrottlingStorm(t *testing.T) {
	tests := []struct {
		name       string
		resilience string
		stream     bool
		attempts   int
	}{
		{"default max_retries 2", "max_retries: 2\ncircuit_breaker: {failure_threshold: 0}" + retryFast, false, 3},
		{"default max_retries 2, stream", "max_retries: 2\ncircuit_breaker: {failure_threshold: 0}" + retryFast, true, 3},
		{"max_retries 0", "max_retries: 0\ncircuit_breaker: {failure_threshold: 0}", false, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			double, srv := faultServer(t, bedrocktest.Options{}, tc.resilience)
			baseline := warmBaseline(t, srv.URL)
			before := chatAttempts(double)
			double.Throttle(-1)
			r := chatCall(t, srv.URL, tc.stream, "storm")
			double.Throttle(0)
			if r.status != http.StatusTooManyRequests {
				t.Fatalf("status %d, want 429: %s", r.status, r.body)
			}
			if got := r.header.Get("Retry-After"); got != "1" {
				t.Errorf("Retry-After = %q, want 1 (the upstream's)", got)
			}
			if ct := r.header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q: the refusal must be a plain HTTP error, not a stream", ct)
			}
			e := decodeErrorBody(t, r.body)
			if e.Error.Type != "rate_limit_error" {
				t.Errorf("error type = %q, want rate_limit_error", e.Error.Type)
			}
			if got := chatAttempts(double) - before; got != tc.attempts {
				t.Errorf("upstream attempts = %d, want %d", got, tc.attempts)
			}
			m := settleBaseline(t, srv.URL, baseline)
			if got := m.get("llama_stack_upstream_retries_total", "provider", "bedrock"); got != float64(tc.attempts-1) {
				t.Errorf("upstream_retries_total = %v, want %d", got, tc.attempts-1)
			}
			if got := m.get("llama_stack_upstream_errors_total", "provider", "bedrock", "type", "throttled"); got != float64(tc.attempts) {
				t.Errorf("upstream_errors_total{type=throttled} = %v, want %d", got, tc.attempts)
			}
			if got := m.get("llama_stack_requests_total", "route", "/v1/chat/completions", "status", "429"); got != 1 {
				t.Errorf("requests_total{status=429} = %v, want 1", got)
			}
		})
	}
}

// TestFault5xxBurstAndCircuit: a short 5xx burst is retried away; a
// persistent one fails each request with 502 after its retries, opens the
// circuit after failure_threshold such requests, and then requests get 503
// circuit_open without reaching the upstream; after open_duration one
// probe goes through (without retries): a failing probe opens the circuit
// again, a succeeding one closes it.
func TestFault5xxBurstAndCircuit(t *testing.T) {
	double, srv := faultServer(t, bedrocktest.Options{}, `
max_retries: 2
circuit_breaker: {failure_threshold: 2, open_duration: 3, half_open_probes: 1}
`+retryFast)
	baseline := warmBaseline(t, srv.URL)
	circuit := func(m metricSet) float64 { return m.get("llama_stack_circuit_state", "provider", "bedrock") }

	type step struct {
		name     string
		arm      func()
		status   int
		code     string // error code of the body; "" for a 200
		attempts int    // upstream calls this request made
		retries  int    // retries counted for it
		circuit  float64
	}
	steps := []step{
		{"burst of two 503s is retried away", func() { double.FailWith(2, 503) }, 200, "", 3, 2, 0},
		{"persistent 503: first failure", func() { double.FailWith(-1, 503) }, 502, "", 3, 2, 0},
		{"persistent 503: second failure opens the circuit", func() {}, 502, "", 3, 2, 2},
		{"open circuit refuses without calling upstream", func() {}, 503, "circuit_open", 0, 0, 2},
	}
	run := func(s step) {
		t.Helper()
		s.arm()
		m0 := scrape(t, srv.URL)
		before := chatAttempts(double)
		r := chatCall(t, srv.URL, false, "burst")
		if r.status != s.status {
			t.Fatalf("%s: status %d, want %d: %s", s.name, r.status, s.status, r.body)
		}
		if s.status != 200 {
			e := decodeErrorBody(t, r.body)
			if s.code != "" && e.code() != s.code {
				t.Errorf("%s: code %q, want %q", s.name, e.code(), s.code)
			}
		}
		if s.status == 503 {
			// The rest of open_duration (3 s), in whole seconds.
			if got, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || got < 1 || got > 3 {
				t.Errorf("%s: Retry-After = %q, want 1 to 3", s.name, r.header.Get("Retry-After"))
			}
		}
		if got := chatAttempts(double) - before; got != s.attempts {
			t.Errorf("%s: upstream attempts = %d, want %d", s.name, got, s.attempts)
		}
		m := scrape(t, srv.URL)
		if got := m.get("llama_stack_upstream_retries_total") - m0.get("llama_stack_upstream_retries_total"); got != float64(s.retries) {
			t.Errorf("%s: retries counted = %v, want %d", s.name, got, s.retries)
		}
		if got := circuit(m); got != s.circuit {
			t.Errorf("%s: circuit_state = %v, want %v", s.name, got, s.circuit)
		}
	}
	for _, s := range steps {
		run(s)
	}
	m := scrape(t, srv.URL)
	if got := m.get("llama_stack_upstream_errors_total", "type", "circuit_open"); got != 1 {
		t.Errorf("upstream_errors_total{type=circuit_open} = %v, want 1", got)
	}
	if got := m.get("llama_stack_upstream_errors_total", "type", "server_error"); got != 2+3+3 {
		t.Errorf("upstream_errors_total{type=server_error} = %v, want 8", got)
	}
	// open_duration passes: half-open.
	settle(t, srv.URL, "circuit half-open after open_duration", func(m metricSet) bool { return circuit(m) == 1 })
	run(step{"failing probe (no retries) opens the circuit again", func() {}, 502, "", 1, 0, 2})
	settle(t, srv.URL, "circuit half-open again", func(m metricSet) bool { return circuit(m) == 1 })
	run(step{"succeeding probe closes the circuit", func() { double.FailWith(0, 503) }, 200, "", 1, 0, 0})
	run(step{"closed circuit serves", func() {}, 200, "", 1, 0, 0})
	settleBaseline(t, srv.URL, baseline)
}

// TestFaultMidStream: faults of an open upstream stream. Before the first
// chunk they are retried invisibly; after it the client gets the chunks
// so far, one in-band error event and no [DONE], and the stream ends. A
// stall is cut after stream_idle_timeout and its upstream call cancelled.
func TestFaultMidStream(t *testing.T) {
	double, srv := faultServer(t, bedrocktest.Options{}, "max_retries: 2\nstream_idle_timeout: 0.5\ncircuit_breaker: {failure_threshold: 0}"+retryFast)
	baseline := warmBaseline(t, srv.URL)
	tests := []struct {
		name      string
		arm       func()
		errCode   string // the in-band error's code; "" for a clean stream
		errType   string // the upstream_errors_total type counted
		attempts  int
		canceled  bool // the double sees the upstream request cancelled
		minChunks int  // chunks before the error
	}{
		{"stall after 2 events", func() { double.StallStreamAfter(1, 2) }, "upstream_stream_stalled", "stalled", 1, true, 1},
		{"connection reset after 2 events", func() { double.DropStreamAfter(1, 2) }, "upstream_stream_broken", "connection", 1, false, 1},
		{"stall before the first event is retried", func() { double.StallStreamAfter(1, 0) }, "", "stalled", 2, true, 0},
		{"reset before the first event is retried", func() { double.DropStreamAfter(1, 0) }, "", "connection", 2, false, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			drainCanceled(double)
			m0 := scrape(t, srv.URL)
			before := chatAttempts(double)
			tc.arm()
			r := chatCall(t, srv.URL, true, "Explain quantum computing")
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.body)
			}
			errs := r.errorEvents()
			if tc.errCode == "" {
				if len(errs) != 0 || r.lastEvent() != "[DONE]" {
					t.Fatalf("want a clean stream, got errors %v, last event %q", errs, r.lastEvent())
				}
			} else {
				if len(errs) != 1 || errs[0].code() != tc.errCode {
					t.Fatalf("want one error event with code %s, got %+v", tc.errCode, errs)
				}
				if r.lastEvent() == "[DONE]" || !strings.Contains(r.lastEvent(), `"error"`) {
					t.Errorf("the error must be the last event, without [DONE]; last = %q", r.lastEvent())
				}
				if n := len(r.events) - 1; n < tc.minChunks {
					t.Errorf("%d chunks before the error, want at least %d", n, tc.minChunks)
				}
			}
			if got := chatAttempts(double) - before; got != tc.attempts {
				t.Errorf("upstream attempts = %d, want %d", got, tc.attempts)
			}
			if tc.canceled {
				select {
				case <-double.Canceled():
				case <-time.After(10 * time.Second):
					t.Error("the stalled upstream request was not cancelled")
				}
			}
			m := settleBaseline(t, srv.URL, baseline)
			if got := m.get("llama_stack_upstream_retries_total") - m0.get("llama_stack_upstream_retries_total"); got != float64(tc.attempts-1) {
				t.Errorf("retries counted = %v, want %d", got, tc.attempts-1)
			}
			key := []string{"provider", "bedrock", "type", tc.errType}
			if got := m.get("llama_stack_upstream_errors_total", key...) - m0.get("llama_stack_upstream_errors_total", key...); got != 1 {
				t.Errorf("upstream_errors_total{type=%s} grew by %v, want 1", tc.errType, got)
			}
		})
	}
}

// drainCanceled empties the double's Canceled channel.
func drainCanceled(d *bedrocktest.Server) {
	for {
		select {
		case <-d.Canceled():
		default:
			return
		}
	}
}

// TestFaultClientDisconnect: a client that goes away mid-stream cancels
// the upstream request, and nothing of the stream stays behind.
func TestFaultClientDisconnect(t *testing.T) {
	double, srv := faultServer(t, bedrocktest.Options{}, "max_retries: 2")
	baseline := warmBaseline(t, srv.URL)
	gate := double.Gate() // every stream sends its first event, then waits
	defer gate.Open()
	for _, stream := range []string{"first", "second"} {
		ctx, cancel := context.WithCancel(t.Context())
		req, _ := http.NewRequestWithContext(ctx, "POST", srv.URL+"/v1/chat/completions", strings.NewReader(chatBody("disconnect "+stream, true)))
		resp, err := faultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
			t.Fatal(err)
		}
		if got := scrape(t, srv.URL).get("llama_stack_inflight_streams", "provider", "bedrock"); got != 1 {
			t.Errorf("inflight_streams = %v while the stream is open, want 1", got)
		}
		cancel()
		resp.Body.Close()
		select {
		case <-double.Canceled():
		case <-time.After(10 * time.Second):
			t.Fatal("the upstream request was not cancelled after the client left")
		}
		settleBaseline(t, srv.URL, baseline)
	}
}

// TestFaultSlowClient: a client that opens a stream and never reads it
// (with a small receive buffer) holds one handler blocked on its socket,
// not the server: other requests are served meanwhile, and once the
// client goes away the stream, its upstream call and its goroutines are
// gone.
func TestFaultSlowClient(t *testing.T) {
	// An answer of about 16 MB: far more than the socket buffers between
	// the server and a client that does not read (Linux lets a send
	// buffer grow to 4 MB by default).
	word := strings.Repeat("x", 511)
	big := strings.TrimSpace(strings.Repeat(word+" ", 32<<10))
	double, srv := faultServer(t, bedrocktest.Options{Responder: func(req *bedrocktest.ChatRequest) bedrocktest.Reply {
		if len(req.Messages) > 0 && strings.Contains(req.Messages[len(req.Messages)-1].Text, "flood") {
			return bedrocktest.Reply{Answer: big}
		}
		return bedrocktest.DefaultResponder(req)
	}}, "max_retries: 2")
	baseline := warmBaseline(t, srv.URL)
	drainCanceled(double)

	u, _ := url.Parse(srv.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if err := conn.(*net.TCPConn).SetReadBuffer(4096); err != nil {
		t.Fatal(err)
	}
	body := chatBody("flood", true)
	if _, err := fmt.Fprintf(conn, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", u.Host, len(body), body); err != nil {
		t.Fatal(err)
	}
	settle(t, srv.URL, "the slow client's stream is open", func(m metricSet) bool {
		return m.get("llama_stack_inflight_streams", "provider", "bedrock") == 1
	})

	// Meanwhile the server serves others. (One after the other, so that
	// the upstream connection pool, and with it the goroutine count, ends
	// as it was at the baseline.)
	for i := range 8 {
		r := chatCall(t, srv.URL, i%2 == 0, "Which planet do humans live on?")
		if r.status != 200 || (i%2 == 0 && r.lastEvent() != "[DONE]") {
			t.Errorf("request %d while a client stalls: %d, last event %q", i, r.status, r.lastEvent())
		}
	}
	// The slow stream cannot have finished: its answer does not fit in
	// the socket buffers.
	if got := scrape(t, srv.URL).get("llama_stack_inflight_streams", "provider", "bedrock"); got != 1 {
		t.Fatalf("inflight_streams = %v, want 1: the unread stream should still be open", got)
	}
	conn.Close()
	select {
	case <-double.Canceled():
	case <-time.After(20 * time.Second):
		t.Fatal("the upstream request of the abandoned stream was not cancelled")
	}
	settleBaseline(t, srv.URL, baseline)
}

// TestFaultSIGTERMDuring100Streams: SIGTERM while 100 streams are open:
// the server stops accepting connections at once, lets every stream
// finish with [DONE], and exits 0.
func TestFaultSIGTERMDuring100Streams(t *testing.T) {
	const n = 100
	double, srv := faultServer(t, bedrocktest.Options{}, "max_retries: 2")
	gate := double.Gate()
	defer gate.Open()

	type outcome struct {
		last   string
		errors int
		err    error
	}
	opened := make(chan struct{}, n)
	done := make(chan outcome, n)
	for i := range n {
		go func() {
			req, _ := http.NewRequest("POST", srv.URL+"/v1/chat/completions", strings.NewReader(chatBody(fmt.Sprintf("stream %d", i), true)))
			resp, err := faultClient.Do(req)
			if err != nil {
				opened <- struct{}{}
				done <- outcome{err: err}
				return
			}
			defer resp.Body.Close()
			sc := bufio.NewScanner(resp.Body)
			var o outcome
			first := true
			for sc.Scan() {
				d, ok := strings.CutPrefix(sc.Text(), "data: ")
				if !ok {
					continue
				}
				if first {
					opened <- struct{}{}
					first = false
				}
				o.last = d
				if strings.HasPrefix(d, `{"error"`) {
					o.errors++
				}
			}
			if first {
				opened <- struct{}{}
			}
			o.err = sc.Err()
			if resp.StatusCode != 200 {
				o.err = errors.Join(o.err, fmt.Errorf("status %d", resp.StatusCode))
			}
			done <- o
		}()
	}
	timeout := time.After(60 * time.Second)
	for range n {
		select {
		case <-opened:
		case <-timeout:
			t.Fatal("the 100 streams did not open within 60s")
		}
	}
	if got := scrape(t, srv.URL).get("llama_stack_inflight_streams", "provider", "bedrock"); got != n {
		t.Fatalf("inflight_streams = %v, want %d", got, n)
	}
	if err := srv.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// New connections are refused once the listener is closed, while the
	// streams are still held open by the gate.
	u, _ := url.Parse(srv.URL)
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", u.Host, time.Second)
		if err != nil {
			if !errors.Is(err, syscall.ECONNREFUSED) {
				t.Fatalf("dial after SIGTERM: %v, want connection refused", err)
			}
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the server still accepts connections 20s after SIGTERM")
		}
		time.Sleep(20 * time.Millisecond)
	}
	select {
	case <-srv.exited:
		t.Fatalf("the server exited before its streams finished: %v", srv.err)
	default:
	}
	gate.Open()
	var bad []string
	for range n {
		o := <-done
		if o.err != nil || o.errors != 0 || o.last != "[DONE]" {
			bad = append(bad, fmt.Sprintf("last %q errors %d err %v", o.last, o.errors, o.err))
		}
	}
	sort.Strings(bad)
	if len(bad) > 0 {
		t.Fatalf("%d of %d streams did not finish cleanly, e.g. %s", len(bad), n, bad[0])
	}
	select {
	case <-srv.exited:
		if srv.err != nil {
			t.Fatalf("exit after SIGTERM: %v", srv.err)
		}
	case <-time.After(40 * time.Second):
		t.Fatal("the server did not exit after its streams finished")
	}
	drained := false
	for _, l := range srv.Logs() {
		drained = drained || strings.Contains(l, `"msg":"shutting down"`)
	}
	if !drained {
		t.Error("no 'shutting down' log line")
	}
}

// TestFaultConcurrencyCap: with max_concurrency streams open to a
// provider and queue_timeout 0, a further request is refused at once with
// 503 and Retry-After, without reaching the upstream; a slot freed by a
// finished stream serves the next one.
func TestFaultConcurrencyCap(t *testing.T) {
	double, srv := faultServer(t, bedrocktest.Options{}, "max_concurrency: 1\nqueue_timeout: 0")
	baseline := warmBaseline(t, srv.URL)
	gate := double.Gate()
	defer gate.Open()
	resp, err := faultClient.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(chatBody("hold the slot", true)))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	before := chatAttempts(double)
	for _, stream := range []bool{false, true} {
		r := chatCall(t, srv.URL, stream, "over the cap")
		if r.status != http.StatusServiceUnavailable || r.header.Get("Retry-After") != "1" {
			t.Fatalf("stream %v over the cap: %d Retry-After %q: %s", stream, r.status, r.header.Get("Retry-After"), r.body)
		}
		if e := decodeErrorBody(t, r.body); e.code() != "provider_overloaded" || e.Error.Type != "overloaded" {
			t.Errorf("error = %s", r.body)
		}
	}
	if got := chatAttempts(double) - before; got != 0 {
		t.Errorf("refused requests reached the upstream %d times", got)
	}
	gate.Open()
	rest, _ := io.ReadAll(br)
	if ev := dataEvents(string(rest)); len(ev) == 0 || ev[len(ev)-1] != "[DONE]" {
		t.Fatalf("the stream holding the slot did not finish: %q", rest)
	}
	if r := chatCall(t, srv.URL, true, "after the slot is free"); r.status != 200 || r.lastEvent() != "[DONE]" {
		t.Errorf("after the slot was freed: %d %q", r.status, r.lastEvent())
	}
	m := settleBaseline(t, srv.URL, baseline)
	if got := m.get("llama_stack_upstream_errors_total", "provider", "bedrock", "type", "overloaded"); got != 2 {
		t.Errorf("upstream_errors_total{type=overloaded} = %v, want 2", got)
	}
}

// TestFaultSlowloris: clients that open connections and send their
// headers never finished hold no handler: the server keeps serving, and
// closes each such connection once the 10 s header timeout has passed.
func TestFaultSlowloris(t *testing.T) {
	_, srv := faultServer(t, bedrocktest.Options{}, "max_retries: 2")
	baseline := warmBaseline(t, srv.URL)
	u, _ := url.Parse(srv.URL)
	const n = 32
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for range n {
		c, err := net.Dial("tcp", u.Host)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		if _, err := fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nX-Slow: ", u.Host); err != nil {
			t.Fatal(err)
		}
	}
	for i := range 4 {
		if r := chatCall(t, srv.URL, i%2 == 0, "Which planet do humans live on?"); r.status != 200 {
			t.Fatalf("request while %d connections dawdle: %d %s", n, r.status, r.body)
		}
	}
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(40 * time.Second))
		b, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatalf("connection %d still open 40s after its headers began", i)
		}
		// The server hangs up, at most with a 408 (nothing else).
		if len(b) > 0 && !strings.HasPrefix(string(b), "HTTP/1.1 408 ") {
			t.Errorf("connection %d got %q", i, b)
		}
	}
	settleBaseline(t, srv.URL, baseline)
}

// TestTracesOTLP: with the standard OTEL_* variables the server exports,
// over OTLP/HTTP, a server span per request that continues the caller's
// trace and a child client span for the upstream call; the request id goes
// back to the client and upstream with the trace context.
func TestTracesOTLP(t *testing.T) {
	var mu sync.Mutex
	var exports [][]byte
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.URL.Path == "/v1/traces" {
			mu.Lock()
			exports = append(exports, b)
			mu.Unlock()
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, "{}")
	}))
	defer collector.Close()
	double := bedrocktest.New(t, bedrocktest.Options{})
	srv := startServer(t, []string{
		"AWS_BEARER_TOKEN_BEDROCK=" + bedrocktest.DefaultKey,
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL(),
		"OTEL_EXPORTER_OTLP_ENDPOINT=" + collector.URL,
		"OTEL_EXPORTER_OTLP_PROTOCOL=http/json",
		"OTEL_BSP_SCHEDULE_DELAY=50",
		"OTEL_SERVICE_NAME=llama-e2e",
	}, writeFile(t, "config.yaml", notebookConfig))

	const traceID, parentID, reqID = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7", "e2e-trace-1"
	r := chatCall(t, srv.URL, false, "Which planet do humans live on?", "traceparent", "00-"+traceID+"-"+parentID+"-01", "X-Request-Id", reqID)
	if r.status != 200 || r.header.Get("X-Request-Id") != reqID {
		t.Fatalf("chat: %d X-Request-Id %q", r.status, r.header.Get("X-Request-Id"))
	}
	reqs := double.Requests()
	up := reqs[len(reqs)-1]
	if up.Header.Get("X-Request-Id") != reqID || !strings.HasPrefix(up.Header.Get("Traceparent"), "00-"+traceID+"-") {
		t.Errorf("upstream got X-Request-Id %q traceparent %q", up.Header.Get("X-Request-Id"), up.Header.Get("Traceparent"))
	}

	type span struct {
		TraceID      string `json:"traceId"`
		SpanID       string `json:"spanId"`
		ParentSpanID string `json:"parentSpanId"`
		Name         string `json:"name"`
		Kind         any    `json:"kind"`
		Attributes   []struct {
			Key   string         `json:"key"`
			Value map[string]any `json:"value"`
		} `json:"attributes"`
	}
	attr := func(s span, key string) string {
		for _, a := range s.Attributes {
			if a.Key == key {
				for _, v := range a.Value {
					return fmt.Sprint(v)
				}
			}
		}
		return ""
	}
	kind := func(s span) string {
		switch k := fmt.Sprint(s.Kind); k {
		case "2", "SPAN_KIND_SERVER":
			return "server"
		case "3", "SPAN_KIND_CLIENT":
			return "client"
		default:
			return k
		}
	}
	var server, client span
	deadline := time.Now().Add(20 * time.Second)
	for server.SpanID == "" || client.SpanID == "" {
		if time.Now().After(deadline) {
			t.Fatalf("no server and client span exported within 20s (server %+v, client %+v)", server, client)
		}
		time.Sleep(50 * time.Millisecond)
		mu.Lock()
		bodies := slices.Clone(exports)
		mu.Unlock()
		for _, b := range bodies {
			var doc struct {
				ResourceSpans []struct {
					ScopeSpans []struct {
						Spans []span `json:"spans"`
					} `json:"scopeSpans"`
				} `json:"resourceSpans"`
			}
			if err := json.Unmarshal(b, &doc); err != nil {
				t.Fatalf("export is not OTLP/JSON: %v: %.200s", err, b)
			}
			for _, rs := range doc.ResourceSpans {
				for _, ss := range rs.ScopeSpans {
					for _, s := range ss.Spans {
						switch {
						case kind(s) == "server" && attr(s, "llama_stack.request_id") == reqID:
							server = s
						case kind(s) == "client":
							client = s
						}
					}
				}
			}
		}
		if client.SpanID != "" && client.ParentSpanID != server.SpanID {
			client = span{}
		}
	}
	if !strings.EqualFold(server.TraceID, traceID) || !strings.EqualFold(server.ParentSpanID, parentID) {
		t.Errorf("server span does not continue the caller's trace: trace %s parent %s", server.TraceID, server.ParentSpanID)
	}
	if client.TraceID != server.TraceID {
		t.Errorf("client span in trace %s, server span in %s", client.TraceID, server.TraceID)
	}
	for k, want := range map[string]string{"http.route": "/v1/chat/completions", "http.response.status_code": "200", "gen_ai.request.model": modelID, "gen_ai.provider.name": "bedrock"} {
		if got := attr(server, k); got != want {
			t.Errorf("server span %s = %q, want %q", k, got, want)
		}
	}
	if attr(server, "gen_ai.usage.input_tokens") == "" || attr(server, "gen_ai.usage.output_tokens") == "" {
		t.Errorf("server span without token usage: %+v", server.Attributes)
	}
}
