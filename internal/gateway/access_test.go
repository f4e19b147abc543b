package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// lockedBuffer is a log sink safe for concurrent handlers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// replica is one in-process gateway of a test.
type replica struct {
	url  string
	logs *lockedBuffer
}

// startReplica builds a gateway from cfg (the config text) with the given
// SQLITE_STORE_DIR, in front of the double, and serves it.
func startReplica(t *testing.T, cfgText, storeDir string, double *bedrocktest.Server) replica {
	t.Helper()
	env := map[string]string{"AWS_BEARER_TOKEN_BEDROCK": bedrocktest.DefaultKey, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": double.URL(),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "HOME": "/nonexistent",
		"SQLITE_STORE_DIR": storeDir}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := config.Parse([]byte(cfgText), lookup)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	g, err := newTestGateway(t, cfg, Options{LookupEnv: lookup, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	return replica{url: srv.URL, logs: logs}
}

// doRequest sends a request and returns the status, headers and body.
func doRequest(t *testing.T, method, url, body string) (int, http.Header, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestQuotaCountersInStore: quota counters live in the store's key-value
// space, so replicas on the same database share them (the metadata store's
// backend by default, or the one server.quota.kvstore names, within its
// namespace); without a key-value store they are per replica, in memory.
func TestQuotaCountersInStore(t *testing.T) {
	const quota = `
server:
  quota:
    anonymous_max_requests: 3
    period: hour
`
	tests := []struct {
		name     string
		a, b     string // the two replicas' configs
		shared   bool
		inMemory bool // the replicas warn that counters are not shared
	}{
		{name: "metadata store's backend", a: runConfig + quota, b: runConfig + quota, shared: true},
		{name: "kvstore named, same namespace",
			a: runConfig + quota + "    kvstore: {backend: kv_default, namespace: limits}\n",
			b: runConfig + quota + "    kvstore: {backend: kv_default, namespace: limits}\n", shared: true},
		{name: "kvstore named, other namespaces",
			a: runConfig + quota + "    kvstore: {backend: kv_default, namespace: limits-a}\n",
			b: runConfig + quota + "    kvstore: {backend: kv_default, namespace: limits-b}\n", shared: false},
		{name: "no key-value store",
			a: runConfig + "storage:\n  stores: {metadata: null}\n" + quota,
			b: runConfig + "storage:\n  stores: {metadata: null}\n" + quota, shared: false, inMemory: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			double := bedrocktest.New(t, bedrocktest.Options{})
			dir := t.TempDir()
			a, b := startReplica(t, tc.a, dir, double), startReplica(t, tc.b, dir, double)
			// Three requests between the two replicas, then a fourth on each.
			for i, url := range []string{a.url, b.url, a.url} {
				if code, _, body := doRequest(t, "GET", url+"/v1/models", ""); code != 200 {
					t.Fatalf("request %d: %d %s", i+1, code, body)
				}
			}
			want := 200
			if tc.shared {
				want = 429
			}
			code, h, body := doRequest(t, "GET", b.url+"/v1/models", "")
			if code != want {
				t.Fatalf("fourth request, on the second replica: %d, want %d: %s", code, want, body)
			}
			if want == 429 && (h.Get("Retry-After") == "" || !strings.Contains(body, "Quota exceeded: 3 requests per hour")) {
				t.Errorf("429 without Retry-After or message: %v %s", h, body)
			}
			// The first replica has served two; on its own it allows one
			// more.
			wantA := []int{429}
			if !tc.shared {
				wantA = []int{200, 429}
			}
			for i, want := range wantA {
				if code, _, _ := doRequest(t, "GET", a.url+"/v1/models", ""); code != want {
					t.Errorf("the first replica's request %d: %d, want %d", i+3, code, want)
				}
			}
			// Health and metrics are never counted.
			for _, p := range []string{"/v1/health", "/metrics"} {
				if code, _, _ := doRequest(t, "GET", a.url+p, ""); code != 200 {
					t.Errorf("%s over quota: %d", p, code)
				}
			}
			warned := strings.Contains(a.logs.String(), "counters are kept in memory")
			if warned != tc.inMemory {
				t.Errorf("in-memory warning logged = %v, want %v", warned, tc.inMemory)
			}
		})
	}
}

// TestResilienceLayers: server.resilience applies to every provider and a
// provider's own resilience block overrides it key by key.
func TestResilienceLayers(t *testing.T) {
	withProviderBlock := strings.Replace(runConfig, "        region_name: ${env.AWS_DEFAULT_REGION:=us-west-2}\n",
		"        region_name: ${env.AWS_DEFAULT_REGION:=us-west-2}\n      resilience:\n        max_retries: 1\n", 1)
	if withProviderBlock == runConfig {
		t.Fatal("provider block not inserted")
	}
	const server = `
server:
  resilience:
    max_retries: 0
    initial_backoff: 0.001
    max_backoff: 0.002
    circuit_breaker: {failure_threshold: 0}
`
	tests := []struct {
		name     string
		cfg      string
		attempts int
	}{
		{"defaults: 2 retries", runConfig + "server:\n  resilience:\n    initial_backoff: 0.001\n    max_backoff: 0.002\n", 3},
		{"server-wide max_retries 0", runConfig + server, 1},
		{"provider's max_retries 1 over the server's 0", withProviderBlock + server, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			double := bedrocktest.New(t, bedrocktest.Options{})
			r := startReplica(t, tc.cfg, t.TempDir(), double)
			double.FailWith(-1, http.StatusServiceUnavailable)
			code, _, body := doRequest(t, "POST", r.url+"/v1/chat/completions", `{"model":"`+modelID+`","messages":[{"role":"user","content":"hi"}]}`)
			if code != http.StatusBadGateway {
				t.Fatalf("status %d, want 502: %s", code, body)
			}
			n := 0
			for _, req := range double.Requests() {
				if req.Path == bedrocktest.ChatPath {
					n++
				}
			}
			if n != tc.attempts {
				t.Errorf("upstream attempts = %d, want %d", n, tc.attempts)
			}
			_, _, metrics := doRequest(t, "GET", r.url+"/metrics", "")
			want := fmt.Sprintf(`llama_stack_upstream_errors_total{provider="bedrock",type="server_error"} %d`, tc.attempts)
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		})
	}
}

// TestMetricsEndpoint: the gateway serves /metrics with the runtime and
// process collectors next to its own series.
func TestMetricsEndpoint(t *testing.T) {
	double := bedrocktest.New(t, bedrocktest.Options{})
	r := startReplica(t, runConfig, t.TempDir(), double)
	if code, _, body := doRequest(t, "POST", r.url+"/v1/chat/completions", `{"model":"`+modelID+`","messages":[{"role":"user","content":"hi"}]}`); code != 200 {
		t.Fatalf("chat: %d %s", code, body)
	}
	code, h, body := doRequest(t, "GET", r.url+"/metrics", "")
	if code != 200 || !strings.HasPrefix(h.Get("Content-Type"), "text/plain") {
		t.Fatalf("/metrics: %d %s", code, h.Get("Content-Type"))
	}
	for _, want := range []string{
		"\ngo_goroutines ",
		"\nprocess_resident_memory_bytes ",
		`llama_stack_circuit_state{provider="bedrock"} 0`,
		`llama_stack_requests_total{method="POST",model="` + modelID + `",provider="bedrock",route="/v1/chat/completions",status="200"} 1`,
		`llama_stack_tokens_total{direction="prompt",model="` + modelID + `",provider="bedrock"} `,
		`llama_stack_request_duration_seconds_count{route="/v1/chat/completions",status="200"} 1`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

// TestServeReadTimeout: a client that sends its headers but withholds its
// body is answered 400 once the read timeout passes, while a stream that
// lasts longer than the read timeout is not cut by it.
func TestServeReadTimeout(t *testing.T) {
	double := bedrocktest.New(t, bedrocktest.Options{ChunkDelay: 100 * time.Millisecond})
	env := map[string]string{"AWS_BEARER_TOKEN_BEDROCK": bedrocktest.DefaultKey, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": double.URL(),
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "HOME": "/nonexistent",
		"SQLITE_STORE_DIR": t.TempDir()}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := config.Parse([]byte(runConfig), lookup)
	if err != nil {
		t.Fatal(err)
	}
	g, err := New(cfg, Options{LookupEnv: lookup, ReadTimeout: 300 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	served := make(chan error, 1)
	go func() { served <- g.Serve(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			t.Errorf("serve: %v", err)
		}
	}()
	base := "http://" + ln.Addr().String()

	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprintf(c, "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"model\":")
	_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
	b, err := io.ReadAll(c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("a withheld body held the request for 20s")
	}
	if !strings.HasPrefix(string(b), "HTTP/1.1 400 ") || !strings.Contains(string(b), "could not read the request body") {
		t.Errorf("withheld body: %q", b)
	}

	resp, err := http.Post(base+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"`+modelID+`","messages":[{"role":"user","content":"Which planet do humans live on?"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	start := time.Now()
	body, err := io.ReadAll(resp.Body)
	if err != nil || !strings.HasSuffix(string(body), "data: [DONE]\n\n") {
		t.Fatalf("stream: %v %q", err, body)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatalf("the stream took less than the read timeout, so it proves nothing; raise ChunkDelay")
	}
}

// TestStreamReusesUpstreamConnection: a finished stream leaves its
// upstream connection to the pool for the next request. Upstreams send
// the end of the chunked body after data: [DONE] (Bedrock does: it flushes
// each event); a stream closed before reading that end costs its
// connection, and the next stream a new TCP and TLS handshake.
func TestStreamReusesUpstreamConnection(t *testing.T) {
	var conns atomic.Int64
	up := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		for _, ev := range []string{
			`{"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}`,
			"[DONE]",
		} {
			_, _ = io.WriteString(w, "data: "+ev+"\n\n")
			w.(http.Flusher).Flush()
		}
		// The end of the body follows a network delay later, unless the
		// gateway hangs up first.
		select {
		case <-r.Context().Done():
		case <-time.After(200 * time.Millisecond):
		}
	}))
	up.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	up.Start()
	defer up.Close()
	env := map[string]string{"AWS_BEARER_TOKEN_BEDROCK": "k", "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": up.URL, "SQLITE_STORE_DIR": t.TempDir(), "HOME": "/nonexistent"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := config.Parse([]byte(runConfig), lookup)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newTestGateway(t, cfg, Options{LookupEnv: lookup})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	defer srv.Close()
	for i := range 10 {
		code, _, body := doRequest(t, "POST", srv.URL+"/v1/chat/completions", `{"model":"`+modelID+`","messages":[{"role":"user","content":"hi"}],"stream":true}`)
		if code != 200 || !strings.HasSuffix(body, "data: [DONE]\n\n") {
			t.Fatalf("stream %d: %d %q", i, code, body)
		}
	}
	if got := conns.Load(); got != 1 {
		t.Errorf("10 streams one after the other opened %d upstream connections, want 1", got)
	}
}
