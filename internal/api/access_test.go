package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/llama-stack-go/llama-stack-go/internal/auth"
	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/cors"
	"github.com/llama-stack-go/llama-stack-go/internal/metrics"
	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
	"github.com/llama-stack-go/llama-stack-go/internal/ratelimit"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
)

// The access tests run the whole middleware chain in process (request id,
// span, metrics and access log → CORS → auth → quota → routes) as the
// gateway assembles it from a run config's server section.

const (
	aliceKey   = "alice-key-5f0c2a9e7b1d4c3a8e6f0b2d4a6c8e0f"
	bobKey     = "bob-key-9d8c7b6a5f4e3d2c1b0a9f8e7d6c5b4a"
	corsOrigin = "https://app.example.com"
)

// accessServer is the server section the access tests start from; quota is
// appended by each test.
const accessServer = `
  auth:
    provider_config:
      type: api_keys
      keys:
        - key: ` + aliceKey + `
          principal: alice
          attributes: {teams: [a]}
        - key: ` + bobKey + `
          principal: bob
          attributes: {teams: [b]}
    access_policy:
      - permit: {actions: [read], resource: "model::` + modelID + `"}
        when: user with a in teams
      - forbid: {actions: [read], resource: "model::` + modelID + `"}
      - permit: {actions: [read]}
  cors:
    allow_origins: ["` + corsOrigin + `"]
    allow_methods: [GET, POST, OPTIONS]
    allow_headers: [Content-Type, Authorization]
    expose_headers: [X-Request-Id]
`

// syncBuffer is a log sink safe for the handlers' goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// lines returns the JSON log records so far.
func (b *syncBuffer) lines(t *testing.T) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.SplitSeq(strings.TrimSpace(b.String()), "\n") {
		if line == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line is not JSON: %s", line)
		}
		out = append(out, m)
	}
	return out
}

// record waits for the log record with the given msg and request_id.
func (b *syncBuffer) record(t *testing.T, msg, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, m := range b.lines(t) {
			if m["msg"] == msg && m["request_id"] == id {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q log record for request %s in:\n%s", msg, id, b.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// countingCounter counts the quota's counter calls.
type countingCounter struct {
	ratelimit.Counter
	calls atomic.Int64
}

func (c *countingCounter) Incr(ctx context.Context, key string, by int64, window time.Duration, now time.Time) (int64, time.Time, error) {
	c.calls.Add(1)
	return c.Counter.Incr(ctx, key, by, window, now)
}

// accessGateway is a handler built as the gateway builds it from server
// (a YAML server section), over an upstream double.
type accessGateway struct {
	url     string
	logs    *syncBuffer
	counter *countingCounter
	calls   *atomic.Int64
	reg     *prometheus.Registry
}

func newAccessGateway(t *testing.T, server string, upstream http.HandlerFunc) *accessGateway {
	t.Helper()
	cfg, err := config.Parse([]byte(`version: 2
providers:
  inference:
    - provider_id: bedrock
      provider_type: remote::bedrock
      config: {region_name: us-west-2}
server:`+server), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	g := &accessGateway{logs: &syncBuffer{}, counter: &countingCounter{Counter: ratelimit.NewMemoryCounter()}, calls: &atomic.Int64{}}
	log := slog.New(slog.NewJSONHandler(g.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.calls.Add(1)
		upstream(w, r)
	}))
	t.Cleanup(up.Close)
	reg := registry.New(map[string]provider.Provider{
		"up": openaicompat.New(openaicompat.Options{ProviderID: "up", BaseURL: up.URL + "/v1", HTTPClient: up.Client()}),
	})
	if err := reg.Register(registry.Model{Identifier: modelID, ProviderID: "up", ProviderResourceID: "m-1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(registry.Model{Identifier: "open-model", ProviderID: "up", ProviderResourceID: "m-2:0"}); err != nil {
		t.Fatal(err)
	}
	authn, err := auth.New(cfg.Server.Auth, auth.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := auth.NewPolicy(cfg.Server.Auth.AccessPolicy)
	if err != nil {
		t.Fatal(err)
	}
	routes, err := auth.NewRoutePolicy(cfg.Server.Auth.RoutePolicy)
	if err != nil {
		t.Fatal(err)
	}
	c, err := cors.New(cfg.Server.CORS)
	if err != nil {
		t.Fatal(err)
	}
	opts := Options{Registry: reg, Version: "test", Logger: log, Auth: authn, Routes: routes, Policy: policy, CORS: c}
	if cfg.Server.Quota != nil {
		opts.Quota = ratelimit.New(cfg.Server.Quota, ratelimit.Options{Counter: g.counter})
	}
	g.reg = metrics.NewRegistry()
	opts.Metrics = metrics.New(g.reg)
	opts.MetricsHandler = metrics.Handler(g.reg)
	srv := httptest.NewServer(NewHandler(opts))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

// do sends a request with the given headers (name, value pairs).
func (g *accessGateway) do(t *testing.T, method, path, body string, hdr ...string) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(t.Context(), method, g.url+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

// counterValue returns a counter's value from the gateway's registry.
func (g *accessGateway) counterValue(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	mfs, err := g.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	next:
		for _, m := range mf.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range labels {
				if got[k] != v {
					continue next
				}
			}
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

func chatReq(model string, stream bool) string {
	if stream {
		return `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`
	}
	return `{"model":"` + model + `","messages":[{"role":"user","content":"hi"}]}`
}

// usageUpstream answers chat completions with usage 3 in, 1 out: whole, or
// as a stream whose last chunk carries the usage.
func usageUpstream(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Model  string `json:"model"`
		Stream bool   `json:"stream"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	if !body.Stream {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, completionJSON(body.Model))
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	fmt.Fprintf(w, "data: %s\n\n", chunkJSON(body.Model, "hi", "stop"))
	fmt.Fprintf(w, "data: %s\n\n", `{"id":"c","object":"chat.completion.chunk","created":1,"model":"`+body.Model+`","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`)
	io.WriteString(w, "data: [DONE]\n\n")
}

func bearerHdr(key string) string { return "Bearer " + key }

// TestAccessMiddlewareOrder checks what each layer does to requests it
// refuses or lets through: preflights are answered by CORS without
// credentials, refusals carry CORS headers, the quota never counts a
// request that auth refused, and health, version and metrics are open.
func TestAccessMiddlewareOrder(t *testing.T) {
	g := newAccessGateway(t, accessServer+`
  quota:
    authenticated_max_requests: 1000
    anonymous_max_requests: 1000
    period: minute
`, usageUpstream)
	tests := []struct {
		name       string
		method     string
		path       string
		body       string
		hdr        []string
		status     int
		headers    map[string]string // exact values; "" means absent
		code       string            // error code of an OpenAI error body
		counted    bool              // the quota counter was consulted
		upstream   int64             // upstream calls made
		authHeader bool              // WWW-Authenticate: Bearer
	}{
		{name: "preflight without credentials", method: "OPTIONS", path: "/v1/chat/completions",
			hdr:    []string{"Origin", corsOrigin, "Access-Control-Request-Method", "POST", "Access-Control-Request-Headers", "authorization, content-type"},
			status: 204, headers: map[string]string{"Access-Control-Allow-Origin": corsOrigin, "Access-Control-Allow-Methods": "GET, POST, OPTIONS", "WWW-Authenticate": ""}},
		{name: "preflight from another corsOrigin", method: "OPTIONS", path: "/v1/chat/completions",
			hdr:    []string{"Origin", "https://evil.example.com", "Access-Control-Request-Method", "POST"},
			status: 400, headers: map[string]string{"Access-Control-Allow-Origin": ""}},
		{name: "no key", method: "POST", path: "/v1/chat/completions", body: chatReq(modelID, false),
			hdr:    []string{"Origin", corsOrigin},
			status: 401, code: "invalid_api_key", authHeader: true,
			headers: map[string]string{"Access-Control-Allow-Origin": corsOrigin, "Access-Control-Expose-Headers": "X-Request-Id"}},
		{name: "wrong key", method: "POST", path: "/v1/chat/completions", body: chatReq(modelID, false),
			hdr:    []string{"Origin", corsOrigin, "Authorization", bearerHdr("not-a-key")},
			status: 401, code: "invalid_api_key", authHeader: true, headers: map[string]string{"Access-Control-Allow-Origin": corsOrigin}},
		{name: "malformed authorization", method: "GET", path: "/v1/models",
			hdr:    []string{"Authorization", "Basic " + aliceKey},
			status: 401, code: "invalid_api_key", authHeader: true},
		{name: "health is open", method: "GET", path: "/v1/health", status: 200},
		{name: "version is open", method: "GET", path: "/v1/version", status: 200},
		{name: "metrics are open", method: "GET", path: "/metrics", status: 200},
		{name: "unknown route needs credentials", method: "GET", path: "/v2/nothing", status: 401, code: "invalid_api_key", authHeader: true},
		{name: "right key", method: "POST", path: "/v1/chat/completions", body: chatReq(modelID, false),
			hdr:    []string{"Origin", corsOrigin, "Authorization", bearerHdr(aliceKey)},
			status: 200, counted: true, upstream: 1,
			headers: map[string]string{"Access-Control-Allow-Origin": corsOrigin, "Access-Control-Expose-Headers": "X-Request-Id"}},
		{name: "forbidden model", method: "POST", path: "/v1/chat/completions", body: chatReq(modelID, false),
			hdr:    []string{"Authorization", bearerHdr(bobKey)},
			status: 403, code: "permission_denied", counted: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			calls, up := g.counter.calls.Load(), g.calls.Load()
			resp, b := g.do(t, tc.method, tc.path, tc.body, tc.hdr...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			for k, v := range tc.headers {
				if got := resp.Header.Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if got := resp.Header.Get("WWW-Authenticate") == "Bearer"; got != tc.authHeader {
				t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
			}
			if resp.Header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			if tc.code != "" {
				if got := errorDetail(t, b); got.Code == nil || *got.Code != tc.code {
					t.Errorf("error = %+v, want code %s", got, tc.code)
				}
			}
			if got := g.counter.calls.Load() > calls; got != tc.counted {
				t.Errorf("quota consulted = %v, want %v", got, tc.counted)
			}
			if got := g.calls.Load() - up; got != tc.upstream {
				t.Errorf("upstream calls = %d, want %d", got, tc.upstream)
			}
		})
	}
	if strings.Contains(g.logs.String(), aliceKey) || strings.Contains(g.logs.String(), "not-a-key") {
		t.Errorf("a key was logged:\n%s", g.logs.String())
	}
	// Requests refused before routing are counted under the route they
	// asked for.
	for _, c := range []struct {
		route, status string
		want          float64
	}{{"/v1/chat/completions", "401", 2}, {"/v1/models", "401", 1}, {"/v1/chat/completions", "403", 1}} {
		if got := g.counterValue(t, "llama_stack_requests_total", map[string]string{"route": c.route, "status": c.status}); got != c.want {
			t.Errorf("requests_total{route=%s,status=%s} = %v, want %v", c.route, c.status, got, c.want)
		}
	}
}

// TestAccessQuota: quotas are per principal, come after auth (so refused
// requests use none), answer 429 with Retry-After and CORS headers, and
// token limits count the usage the answers report.
func TestAccessQuota(t *testing.T) {
	t.Run("requests", func(t *testing.T) {
		g := newAccessGateway(t, accessServer+`
  quota:
    authenticated_max_requests: 2
    period: hour
`, usageUpstream)
		for range 5 {
			if resp, _ := g.do(t, "GET", "/v1/models", "", "Authorization", bearerHdr("wrong")); resp.StatusCode != 401 {
				t.Fatalf("wrong key: %d", resp.StatusCode)
			}
		}
		for i, want := range []int{200, 200, 429, 429} {
			resp, b := g.do(t, "GET", "/v1/models", "", "Authorization", bearerHdr(bobKey), "Origin", corsOrigin)
			if resp.StatusCode != want {
				t.Fatalf("bob's request %d: %d, want %d: %s", i+1, resp.StatusCode, want, b)
			}
			if want != 429 {
				continue
			}
			if ra := resp.Header.Get("Retry-After"); ra == "" || ra == "0" {
				t.Errorf("Retry-After = %q", ra)
			}
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != corsOrigin {
				t.Errorf("429 without CORS header: %q", got)
			}
			if e := errorDetail(t, b); e.Type != "rate_limit_exceeded" || e.Message != "Quota exceeded: 2 requests per hour" {
				t.Errorf("error = %+v", e)
			}
			if rec := g.logs.record(t, "request", resp.Header.Get("X-Request-Id")); rec["principal"] != "bob" || rec["status"] != float64(429) {
				t.Errorf("access record of the refusal = %v", rec)
			}
		}
		// Another principal has a quota of its own; health is never counted.
		if resp, _ := g.do(t, "GET", "/v1/models", "", "Authorization", bearerHdr(aliceKey)); resp.StatusCode != 200 {
			t.Errorf("alice: %d", resp.StatusCode)
		}
		for range 5 {
			if resp, _ := g.do(t, "GET", "/v1/health", ""); resp.StatusCode != 200 {
				t.Errorf("health under quota: %d", resp.StatusCode)
			}
		}
		if got := g.counterValue(t, "llama_stack_quota_rejections_total", map[string]string{"kind": "requests"}); got != 2 {
			t.Errorf("quota_rejections_total{kind=requests} = %v, want 2", got)
		}
	})
	t.Run("tokens", func(t *testing.T) {
		g := newAccessGateway(t, accessServer+`
  quota:
    authenticated_max_requests: 1000
    authenticated_tokens_per_minute: 6
`, usageUpstream)
		// Each answer uses 4 tokens: 0 and 4 used are under 6, 8 is not.
		for i, tc := range []struct {
			stream bool
			status int
		}{{false, 200}, {true, 200}, {false, 429}, {true, 429}} {
			resp, b := g.do(t, "POST", "/v1/chat/completions", chatReq(modelID, tc.stream), "Authorization", bearerHdr(aliceKey))
			if resp.StatusCode != tc.status {
				t.Fatalf("request %d: %d, want %d: %s", i+1, resp.StatusCode, tc.status, b)
			}
			if tc.status == 429 {
				if e := errorDetail(t, b); e.Message != "Quota exceeded: 6 tokens per minute" || resp.Header.Get("Retry-After") == "" {
					t.Errorf("error = %+v, Retry-After %q", e, resp.Header.Get("Retry-After"))
				}
			}
		}
		if got := g.calls.Load(); got != 2 {
			t.Errorf("upstream calls = %d, want 2", got)
		}
		if resp, _ := g.do(t, "POST", "/v1/chat/completions", chatReq(modelID, false), "Authorization", bearerHdr(bobKey)); resp.StatusCode != 403 {
			t.Errorf("bob (own token budget, but no access to the model): %d, want 403", resp.StatusCode)
		}
		if got := g.counterValue(t, "llama_stack_quota_rejections_total", map[string]string{"kind": "tokens"}); got != 2 {
			t.Errorf("quota_rejections_total{kind=tokens} = %v, want 2", got)
		}
	})
}

// TestAccessPolicyModels: the access policy decides which models a
// principal sees in the list and may use; a hidden model is a 404 to
// GET, a 403 to use, and never reaches the upstream.
func TestAccessPolicyModels(t *testing.T) {
	g := newAccessGateway(t, accessServer, usageUpstream)
	tests := []struct {
		key      string
		listed   string // model ids, sorted, comma-separated
		get      int
		chat     int
		upstream int64
	}{
		{aliceKey, "open-model," + modelID, 200, 200, 1}, // sorted
		{bobKey, "open-model", 404, 403, 0},
	}
	for _, tc := range tests {
		resp, b := g.do(t, "GET", "/v1/models", "", "Authorization", bearerHdr(tc.key))
		var list struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		if resp.StatusCode != 200 || json.Unmarshal(b, &list) != nil {
			t.Fatalf("list: %d %s", resp.StatusCode, b)
		}
		var ids []string
		for _, m := range list.Data {
			ids = append(ids, m.ID)
		}
		slices.Sort(ids)
		if got := strings.Join(ids, ","); got != tc.listed {
			t.Errorf("%.8s… lists %q, want %q", tc.key, got, tc.listed)
		}
		if resp, _ := g.do(t, "GET", "/v1/models/"+modelID, "", "Authorization", bearerHdr(tc.key)); resp.StatusCode != tc.get {
			t.Errorf("%.8s… GET model: %d, want %d", tc.key, resp.StatusCode, tc.get)
		}
		before := g.calls.Load()
		resp, b = g.do(t, "POST", "/v1/chat/completions", chatReq(modelID, true), "Authorization", bearerHdr(tc.key))
		if resp.StatusCode != tc.chat {
			t.Errorf("%.8s… chat: %d, want %d: %s", tc.key, resp.StatusCode, tc.chat, b)
		}
		if tc.chat == 403 {
			if e := errorDetail(t, b); e.Message != "User 'bob' cannot perform action 'read' on resource 'model::"+modelID+"'" {
				t.Errorf("403 message = %q", e.Message)
			}
		}
		if got := g.calls.Load() - before; got != tc.upstream {
			t.Errorf("%.8s… upstream calls = %d, want %d", tc.key, got, tc.upstream)
		}
	}
}

// TestAccessLogLine checks the one access-log record of each request: its
// id (the X-Request-Id sent back), the principal, the model and provider,
// the status, the time to first token of streams and the tokens used.
func TestAccessLogLine(t *testing.T) {
	g := newAccessGateway(t, accessServer, usageUpstream)
	tests := []struct {
		name      string
		method    string
		path      string
		body      string
		key       string
		status    int
		principal string
		model     bool // model and provider logged
		ttft      bool
		tokens    bool
	}{
		{"chat", "POST", "/v1/chat/completions", chatReq(modelID, false), aliceKey, 200, "alice", true, false, true},
		{"chat stream", "POST", "/v1/chat/completions", chatReq(modelID, true), aliceKey, 200, "alice", true, true, true},
		{"models", "GET", "/v1/models", "", bobKey, 200, "bob", false, false, false},
		{"forbidden model", "POST", "/v1/chat/completions", chatReq(modelID, false), bobKey, 403, "bob", false, false, false},
		{"unknown model", "POST", "/v1/chat/completions", chatReq("nope", false), aliceKey, 404, "alice", false, false, false},
		{"no key", "POST", "/v1/chat/completions", chatReq(modelID, false), "", 401, "", false, false, false},
		{"health", "GET", "/v1/health", "", "", 200, "", false, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var hdr []string
			if tc.key != "" {
				hdr = []string{"Authorization", bearerHdr(tc.key)}
			}
			resp, b := g.do(t, tc.method, tc.path, tc.body, hdr...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tc.status, b)
			}
			id := resp.Header.Get("X-Request-Id")
			rec := g.logs.record(t, "request", id)
			want := map[string]any{"method": tc.method, "path": tc.path, "status": float64(tc.status)}
			if tc.principal != "" {
				want["principal"] = tc.principal
			}
			if tc.model {
				want["model"], want["provider"] = modelID, "up"
			}
			if tc.tokens {
				want["tokens_in"], want["tokens_out"] = float64(3), float64(1)
			}
			for k, v := range want {
				if rec[k] != v {
					t.Errorf("%s = %v, want %v (record %v)", k, rec[k], v, rec)
				}
			}
			for _, k := range []string{"principal", "model", "provider", "tokens_in", "tokens_out", "ttft"} {
				if _, ok := want[k]; !ok && k != "ttft" && rec[k] != nil {
					t.Errorf("unexpected %s = %v", k, rec[k])
				}
			}
			if ttft, ok := rec["ttft"].(float64); ok != tc.ttft || tc.ttft && ttft <= 0 {
				t.Errorf("ttft = %v, want present: %v", rec["ttft"], tc.ttft)
			}
			if d, ok := rec["duration"].(float64); !ok || d <= 0 {
				t.Errorf("duration = %v", rec["duration"])
			}
			n := 0
			for _, m := range g.logs.lines(t) {
				if m["msg"] == "request" && m["request_id"] == id {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d access-log records for one request", n)
			}
		})
	}
	logs := g.logs.String()
	for _, secret := range []string{aliceKey, bobKey} {
		if strings.Contains(logs, secret) {
			t.Errorf("a key was logged:\n%s", logs)
		}
	}
	if strings.Contains(logs, `"content":"hi"`) || strings.Contains(logs, `"hi"`) {
		t.Errorf("a prompt or answer was logged:\n%s", logs)
	}
}

// panicky is a provider whose every call panics.
type panicky struct{}

func (panicky) Chat(context.Context, *provider.Request) (*openai.ChatCompletion, error) {
	panic("provider bug")
}

func (panicky) ChatStream(context.Context, *provider.Request) (provider.Stream, error) {
	panic("provider bug")
}

// TestPanicBecomes500: a panic in a handler is a 500 in OpenAI's shape,
// logged with the request id and its stack, and the server goes on.
func TestPanicBecomes500(t *testing.T) {
	logs := &syncBuffer{}
	reg := registry.New(map[string]provider.Provider{"p": panicky{}})
	if err := reg.Register(registry.Model{Identifier: "boom", ProviderID: "p", ProviderResourceID: "boom"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(Options{Registry: reg, Version: "test", Logger: slog.New(slog.NewJSONHandler(logs, nil))}))
	defer srv.Close()
	g := &accessGateway{url: srv.URL, logs: logs}
	for _, stream := range []bool{false, true} {
		resp, b := g.do(t, "POST", "/v1/chat/completions", chatReq("boom", stream), "X-Request-Id", fmt.Sprintf("panic-%t", stream))
		if resp.StatusCode != 500 {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		if e := errorDetail(t, b); e.Code == nil || *e.Code != "internal_error" || e.Message != "internal server error" {
			t.Errorf("error = %+v", e)
		}
		id := resp.Header.Get("X-Request-Id")
		if id != fmt.Sprintf("panic-%t", stream) {
			t.Errorf("X-Request-Id = %q", id)
		}
		p := logs.record(t, "handler panic", id)
		if p["level"] != "ERROR" || p["panic"] != "provider bug" || !strings.Contains(fmt.Sprint(p["stack"]), "panicky") {
			t.Errorf("panic record = %v", p)
		}
		if a := logs.record(t, "request", id); a["status"] != float64(500) {
			t.Errorf("access record = %v", a)
		}
	}
	if resp, _ := g.do(t, "GET", "/v1/health", ""); resp.StatusCode != 200 {
		t.Errorf("health after panics: %d", resp.StatusCode)
	}
}

// TestStreamAccessLogAfterClientLeaves: a client that leaves mid-stream
// still gets its one access-log record, with the time to first token.
func TestStreamAccessLogAfterClientLeaves(t *testing.T) {
	release := make(chan struct{})
	g := newAccessGateway(t, accessServer, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", chunkJSON("m", "a", ""))
		w.(http.Flusher).Flush()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	})
	defer close(release)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "POST", g.url+"/v1/chat/completions", strings.NewReader(chatReq(modelID, true)))
	req.Header.Set("Authorization", bearerHdr(aliceKey))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(resp.Body).ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	rec := g.logs.record(t, "request", resp.Header.Get("X-Request-Id"))
	if rec["principal"] != "alice" || rec["model"] != modelID || rec["ttft"] == nil {
		t.Errorf("record = %v", rec)
	}
}

// TestAccessRoutePolicy: a route the route policy denies is a 403 whose
// access record names the caller it refused.
func TestAccessRoutePolicy(t *testing.T) {
	g := newAccessGateway(t, strings.Replace(accessServer, "    access_policy:", `    route_policy:
      - permit: {paths: ["/v1/chat/completions", "/v1/models*"]}
        when: user with a in teams
      - permit: {paths: "/v1/models"}
    access_policy:`, 1), usageUpstream)
	tests := []struct {
		key, method, path string
		status            int
		principal         string
	}{
		{aliceKey, "POST", "/v1/chat/completions", 200, "alice"},
		{bobKey, "POST", "/v1/chat/completions", 403, "bob"},
		{bobKey, "GET", "/v1/models", 200, "bob"},
		{bobKey, "GET", "/v1/models/open-model", 403, "bob"},
	}
	for _, tc := range tests {
		resp, b := g.do(t, tc.method, tc.path, chatReq(modelID, false), "Authorization", bearerHdr(tc.key))
		if tc.method == "GET" {
			resp, b = g.do(t, tc.method, tc.path, "", "Authorization", bearerHdr(tc.key))
		}
		if resp.StatusCode != tc.status {
			t.Fatalf("%s %s as %s: %d, want %d: %s", tc.method, tc.path, tc.principal, resp.StatusCode, tc.status, b)
		}
		if tc.status == 403 {
			if e := errorDetail(t, b); e.Message != "Access denied: insufficient permissions for route "+tc.path {
				t.Errorf("403 = %+v", e)
			}
		}
		if rec := g.logs.record(t, "request", resp.Header.Get("X-Request-Id")); rec["principal"] != tc.principal {
			t.Errorf("%s %s: logged principal %v, want %s", tc.method, tc.path, rec["principal"], tc.principal)
		}
	}
}

// TestRecoverMidAnswer: the middleware's answer to a panic depends on what
// was already sent: nothing (a 500), part of a stream (an in-band error
// event, no [DONE]), or part of another body (the connection is aborted,
// so the client sees a broken answer, not a short one).
func TestRecoverMidAnswer(t *testing.T) {
	tests := []struct {
		name    string
		handler http.HandlerFunc
		status  int
		body    string // the answer the client reads; "" when reading fails
	}{
		{"before anything", func(http.ResponseWriter, *http.Request) { panic("early") }, 500,
			`{"error":{"message":"internal server error","type":"api_error","param":null,"code":"internal_error"}}` + "\n"},
		{"mid-stream", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "text/event-stream; charset=utf-8")
			io.WriteString(w, "data: {\"a\":1}\n\n")
			w.(http.Flusher).Flush()
			panic("mid-stream")
		}, 200, "data: {\"a\":1}\n\n" + `data: {"error":{"message":"internal server error","type":"api_error","param":null,"code":"internal_error"}}` + "\n\n"},
		{"mid-body", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"partial":`)
			w.(http.Flusher).Flush()
			panic("mid-body")
		}, 200, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			logs := &syncBuffer{}
			s := &Server{log: slog.New(slog.NewJSONHandler(logs, nil)), mux: http.NewServeMux(), tp: noop.NewTracerProvider(), writeTO: time.Minute}
			srv := httptest.NewServer(s.middleware(tc.handler))
			defer srv.Close()
			resp, err := http.Get(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			switch {
			case tc.body == "" && err == nil:
				t.Errorf("the half-sent body read as complete: %q", b)
			case tc.body != "" && (err != nil || string(b) != tc.body):
				t.Errorf("body %q (%v), want %q", b, err, tc.body)
			}
			id := resp.Header.Get("X-Request-Id")
			if rec := logs.record(t, "handler panic", id); rec["panic"] == nil || rec["stack"] == nil {
				t.Errorf("panic record = %v", rec)
			}
			if rec := logs.record(t, "request", id); rec["status"] != float64(tc.status) {
				t.Errorf("access record = %v", rec)
			}
		})
	}
}
