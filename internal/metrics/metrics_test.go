package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestNilIsNoOp(t *testing.T) {
	var m *Metrics
	m.ObserveRequest("/v1/chat/completions", "POST", 200, "m", "p", time.Second)
	m.ObserveTimeToFirstToken("m", "p", time.Second)
	m.AddTokens("m", "p", 1, 2)
	m.UpstreamError("p", "throttled")
	m.UpstreamRetry("p")
	m.StreamOpened("p")
	m.StreamClosed("p")
	m.SetCircuitState("p", CircuitOpen)
	m.SetStoreQueueDepth(3)
	m.StoreDropped(1)
	m.StoreWriteError()
	m.QuotaRejected("tokens")
}

func TestRecords(t *testing.T) {
	reg := prometheus.NewPedanticRegistry()
	m := New(reg)
	m.ObserveRequest("/v1/chat/completions", "POST", 200, "bedrock/gpt", "bedrock", 1500*time.Millisecond)
	m.ObserveRequest("/v1/chat/completions", "POST", 200, "bedrock/gpt", "bedrock", 20*time.Millisecond)
	m.ObserveRequest("/v1/chat/completions", "POST", 429, "bedrock/gpt", "bedrock", 3*time.Millisecond)
	m.ObserveRequest("/v1/models", "GET", 0, "", "", time.Millisecond)
	m.ObserveRequest("/v1/models", "GET", 1000, "", "", time.Millisecond)
	m.ObserveTimeToFirstToken("bedrock/gpt", "bedrock", 400*time.Millisecond)
	m.AddTokens("bedrock/gpt", "bedrock", 10, 32)
	m.AddTokens("bedrock/gpt", "bedrock", 5, 0)
	m.AddTokens("bedrock/gpt", "bedrock", -1, -1)
	m.UpstreamError("bedrock", "throttled")
	m.UpstreamError("bedrock", "throttled")
	m.UpstreamError("bedrock", "timeout")
	m.UpstreamRetry("bedrock")
	m.StreamOpened("bedrock")
	m.StreamOpened("bedrock")
	m.StreamClosed("bedrock")
	m.SetCircuitState("bedrock", CircuitHalfOpen)
	m.SetStoreQueueDepth(7)
	m.StoreDropped(3)
	m.StoreDropped(0)
	m.StoreWriteError()
	m.QuotaRejected("requests")

	want := `
# HELP llama_stack_requests_total HTTP requests served, by route pattern, method, status, model and provider.
# TYPE llama_stack_requests_total counter
llama_stack_requests_total{method="GET",model="",provider="",route="/v1/models",status="0"} 1
llama_stack_requests_total{method="GET",model="",provider="",route="/v1/models",status="other"} 1
llama_stack_requests_total{method="POST",model="bedrock/gpt",provider="bedrock",route="/v1/chat/completions",status="200"} 2
llama_stack_requests_total{method="POST",model="bedrock/gpt",provider="bedrock",route="/v1/chat/completions",status="429"} 1
# HELP llama_stack_tokens_total Tokens the upstreams reported, by model, provider and direction (prompt or completion).
# TYPE llama_stack_tokens_total counter
llama_stack_tokens_total{direction="completion",model="bedrock/gpt",provider="bedrock"} 32
llama_stack_tokens_total{direction="prompt",model="bedrock/gpt",provider="bedrock"} 15
# HELP llama_stack_upstream_errors_total Failed upstream calls (every attempt), by provider and error type.
# TYPE llama_stack_upstream_errors_total counter
llama_stack_upstream_errors_total{provider="bedrock",type="throttled"} 2
llama_stack_upstream_errors_total{provider="bedrock",type="timeout"} 1
# HELP llama_stack_upstream_retries_total Upstream calls retried, by provider.
# TYPE llama_stack_upstream_retries_total counter
llama_stack_upstream_retries_total{provider="bedrock"} 1
# HELP llama_stack_inflight_streams Streams open to each provider.
# TYPE llama_stack_inflight_streams gauge
llama_stack_inflight_streams{provider="bedrock"} 1
# HELP llama_stack_circuit_state State of each provider's circuit breaker: 0 closed, 1 half-open, 2 open.
# TYPE llama_stack_circuit_state gauge
llama_stack_circuit_state{provider="bedrock"} 1
# HELP llama_stack_store_queue_depth Records waiting to be written to the store.
# TYPE llama_stack_store_queue_depth gauge
llama_stack_store_queue_depth 7
# HELP llama_stack_store_dropped_total Records dropped because the store's queue was full.
# TYPE llama_stack_store_dropped_total counter
llama_stack_store_dropped_total 3
# HELP llama_stack_store_write_errors_total Failed store writes.
# TYPE llama_stack_store_write_errors_total counter
llama_stack_store_write_errors_total 1
# HELP llama_stack_quota_rejections_total Requests rejected by a quota, by kind of limit.
# TYPE llama_stack_quota_rejections_total counter
llama_stack_quota_rejections_total{kind="requests"} 1
`
	names := []string{
		"llama_stack_requests_total", "llama_stack_tokens_total", "llama_stack_upstream_errors_total",
		"llama_stack_upstream_retries_total", "llama_stack_inflight_streams", "llama_stack_circuit_state",
		"llama_stack_store_queue_depth", "llama_stack_store_dropped_total", "llama_stack_store_write_errors_total",
		"llama_stack_quota_rejections_total",
	}
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}

	// Histograms: counts per series, and a sum that proves the unit is seconds.
	tests := []struct {
		name   string
		labels map[string]string
		count  uint64
		sum    float64
	}{
		{"llama_stack_request_duration_seconds", map[string]string{"route": "/v1/chat/completions", "status": "200"}, 2, 1.52},
		{"llama_stack_request_duration_seconds", map[string]string{"route": "/v1/chat/completions", "status": "429"}, 1, 0.003},
		{"llama_stack_time_to_first_token_seconds", map[string]string{"model": "bedrock/gpt", "provider": "bedrock"}, 1, 0.4},
	}
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range tests {
		found := false
		for _, mf := range mfs {
			if mf.GetName() != tt.name {
				continue
			}
			for _, mt := range mf.GetMetric() {
				match := true
				for _, lp := range mt.GetLabel() {
					if v, ok := tt.labels[lp.GetName()]; ok && v != lp.GetValue() {
						match = false
					}
				}
				if !match {
					continue
				}
				found = true
				h := mt.GetHistogram()
				if got := h.GetSampleCount(); got != tt.count {
					t.Errorf("%s%v count = %d, want %d", tt.name, tt.labels, got, tt.count)
				}
				if got := h.GetSampleSum(); got < tt.sum-1e-9 || got > tt.sum+1e-9 {
					t.Errorf("%s%v sum = %v, want %v", tt.name, tt.labels, got, tt.sum)
				}
			}
		}
		if !found {
			t.Errorf("no %s%v series", tt.name, tt.labels)
		}
	}
}

func TestHandler(t *testing.T) {
	reg := NewRegistry()
	m := New(reg)
	m.UpstreamRetry("bedrock")
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d: %s", resp.StatusCode, body)
	}
	for _, want := range []string{`llama_stack_upstream_retries_total{provider="bedrock"} 1`, "go_goroutines", "process_"} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %q", want)
		}
	}
}

func TestNewTwiceOnOneRegistryPanics(t *testing.T) {
	reg := prometheus.NewRegistry()
	New(reg)
	defer func() {
		if recover() == nil {
			t.Error("registering the collectors twice did not panic")
		}
	}()
	New(reg)
}

func TestConcurrentUse(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				p := []string{"a", "b"}[j%2]
				m.ObserveRequest("/v1/chat/completions", "POST", 200+i%2, "m", p, time.Millisecond)
				m.StreamOpened(p)
				m.StreamClosed(p)
				m.UpstreamError(p, "server_error")
			}
		})
	}
	wg.Wait()
	if got := testutil.ToFloat64(m.upstreamErrors.WithLabelValues("a", "server_error")); got != 800 {
		t.Errorf("errors for a = %v, want 800", got)
	}
	if got := testutil.ToFloat64(m.inflight.WithLabelValues("b")); got != 0 {
		t.Errorf("in-flight streams of b = %v, want 0", got)
	}
}

// TestHotPathDoesNotAllocate checks the cached paths: once a label set was
// seen, recording it again allocates nothing.
func TestHotPathDoesNotAllocate(t *testing.T) {
	m := New(prometheus.NewRegistry())
	calls := map[string]func(){
		"ObserveRequest": func() {
			m.ObserveRequest("/v1/chat/completions", "POST", 200, "bedrock/gpt", "bedrock", time.Millisecond)
		},
		"ObserveTimeToFirstToken": func() { m.ObserveTimeToFirstToken("bedrock/gpt", "bedrock", time.Millisecond) },
		"AddTokens":               func() { m.AddTokens("bedrock/gpt", "bedrock", 3, 4) },
		"UpstreamError":           func() { m.UpstreamError("bedrock", "throttled") },
		"UpstreamRetry":           func() { m.UpstreamRetry("bedrock") },
		"StreamOpenedClosed":      func() { m.StreamOpened("bedrock"); m.StreamClosed("bedrock") },
	}
	for name, f := range calls {
		f() // create the child
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s allocates %v times per call", name, n)
		}
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest("/v1/chat/completions", "POST", 200, "bedrock/openai.gpt-oss-20b-1:0", "bedrock", 120*time.Millisecond)
		}
	})
}

func BenchmarkObserveTimeToFirstToken(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveTimeToFirstToken("bedrock/openai.gpt-oss-20b-1:0", "bedrock", 300*time.Millisecond)
	}
}

func BenchmarkAddTokens(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.AddTokens("bedrock/openai.gpt-oss-20b-1:0", "bedrock", 120, 480)
	}
}

func BenchmarkUpstreamError(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.UpstreamError("bedrock", "throttled")
	}
}

func BenchmarkStreamOpenedClosed(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.StreamOpened("bedrock")
		m.StreamClosed("bedrock")
	}
}

// BenchmarkWithLabelValues is the uncached baseline ObserveRequest avoids.
func BenchmarkWithLabelValues(b *testing.B) {
	m := New(prometheus.NewRegistry())
	b.ReportAllocs()
	for b.Loop() {
		m.requests.WithLabelValues("/v1/chat/completions", "POST", "200", "bedrock/openai.gpt-oss-20b-1:0", "bedrock").Inc()
		m.duration.WithLabelValues("/v1/chat/completions", "200").Observe(0.12)
	}
}
