// Package metrics holds the server's Prometheus collectors: one struct built
// from an injected prometheus.Registerer (never the global registry), with
// methods that take plain values, and the /metrics handler.
//
// Every method is safe on a nil *Metrics, which records nothing, so callers
// need no checks. Label values are taken as given: callers keep them
// bounded (a route pattern, not a path; a registered model id, not the
// client's string). The hot-path methods cache the label-bound child
// collectors, so a repeated observation does not allocate.
package metrics

import (
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Namespace prefixes every metric name.
const Namespace = "llama_stack"

// CircuitState is the state of a provider's circuit breaker, as the
// circuit_state gauge reports it.
type CircuitState int

// Circuit breaker states.
const (
	CircuitClosed   CircuitState = 0 // requests flow
	CircuitHalfOpen CircuitState = 1 // a few probes are let through
	CircuitOpen     CircuitState = 2 // requests are rejected at once
)

// String returns "closed", "half-open" or "open".
func (s CircuitState) String() string {
	switch s {
	case CircuitClosed:
		return "closed"
	case CircuitHalfOpen:
		return "half-open"
	case CircuitOpen:
		return "open"
	}
	return "unknown(" + strconv.Itoa(int(s)) + ")"
}

// Token directions, the values of the direction label of tokens_total.
const (
	DirectionPrompt     = "prompt"
	DirectionCompletion = "completion"
)

// Buckets of the histograms.
var (
	// DurationBuckets spans 1ms to 60s: quick errors and model listings at
	// the low end, whole non-streamed answers at the high end.
	DurationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 20, 30, 60}
	// TTFTBuckets spans 10ms to 60s, finer around the usual 0.2-3s.
	TTFTBuckets = []float64{.01, .025, .05, .1, .2, .3, .5, .75, 1, 1.5, 2, 3, 5, 7.5, 10, 15, 20, 30, 60}
)

// Metrics holds the server's collectors.
type Metrics struct {
	requests       *prometheus.CounterVec
	duration       *prometheus.HistogramVec
	ttft           *prometheus.HistogramVec
	tokens         *prometheus.CounterVec
	upstreamErrors *prometheus.CounterVec
	retries        *prometheus.CounterVec
	inflight       *prometheus.GaugeVec
	circuit        *prometheus.GaugeVec
	storeQueue     prometheus.Gauge
	storeDropped   prometheus.Counter
	storeWriteErrs prometheus.Counter
	quota          *prometheus.CounterVec

	requestKids  children[requestKey, requestKid]
	ttftKids     children[modelKey, prometheus.Observer]
	tokenKids    children[modelKey, tokenKid]
	errorKids    children[errorKey, prometheus.Counter]
	retryKids    children[string, prometheus.Counter]
	inflightKids children[string, prometheus.Gauge]
}

type requestKey struct {
	route, method, model, provider string
	status                         int
}

type requestKid struct {
	count    prometheus.Counter
	duration prometheus.Observer
}

type modelKey struct{ model, provider string }

type tokenKid struct{ prompt, completion prometheus.Counter }

type errorKey struct{ provider, typ string }

// New builds the collectors and registers them with reg; it panics if one
// is already registered there (use a fresh registry per server).
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "requests_total",
			Help: "HTTP requests served, by route pattern, method, status, model and provider.",
		}, []string{"route", "method", "status", "model", "provider"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "request_duration_seconds",
			Help:    "Time from the request's arrival to the end of its answer (the last chunk of a stream).",
			Buckets: DurationBuckets,
		}, []string{"route", "status"}),
		ttft: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: Namespace, Name: "time_to_first_token_seconds",
			Help:    "Time from the request's arrival to the first chunk of a streamed answer.",
			Buckets: TTFTBuckets,
		}, []string{"model", "provider"}),
		tokens: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "tokens_total",
			Help: "Tokens the upstreams reported, by model, provider and direction (prompt or completion).",
		}, []string{"model", "provider", "direction"}),
		upstreamErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "upstream_errors_total",
			Help: "Failed upstream calls (every attempt), by provider and error type.",
		}, []string{"provider", "type"}),
		retries: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "upstream_retries_total",
			Help: "Upstream calls retried, by provider.",
		}, []string{"provider"}),
		inflight: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "inflight_streams",
			Help: "Streams open to each provider.",
		}, []string{"provider"}),
		circuit: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "circuit_state",
			Help: "State of each provider's circuit breaker: 0 closed, 1 half-open, 2 open.",
		}, []string{"provider"}),
		storeQueue: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: Namespace, Name: "store_queue_depth",
			Help: "Records waiting to be written to the store.",
		}),
		storeDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "store_dropped_total",
			Help: "Records dropped because the store's queue was full.",
		}),
		storeWriteErrs: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: Namespace, Name: "store_write_errors_total",
			Help: "Failed store writes.",
		}),
		quota: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: Namespace, Name: "quota_rejections_total",
			Help: "Requests rejected by a quota, by kind of limit.",
		}, []string{"kind"}),
	}
	reg.MustRegister(m.requests, m.duration, m.ttft, m.tokens, m.upstreamErrors, m.retries,
		m.inflight, m.circuit, m.storeQueue, m.storeDropped, m.storeWriteErrs, m.quota)
	m.requestKids.make = func(k requestKey) requestKid {
		st := statusLabel(k.status)
		return requestKid{
			count:    m.requests.WithLabelValues(k.route, k.method, st, k.model, k.provider),
			duration: m.duration.WithLabelValues(k.route, st),
		}
	}
	m.ttftKids.make = func(k modelKey) prometheus.Observer { return m.ttft.WithLabelValues(k.model, k.provider) }
	m.tokenKids.make = func(k modelKey) tokenKid {
		return tokenKid{
			prompt:     m.tokens.WithLabelValues(k.model, k.provider, DirectionPrompt),
			completion: m.tokens.WithLabelValues(k.model, k.provider, DirectionCompletion),
		}
	}
	m.errorKids.make = func(k errorKey) prometheus.Counter { return m.upstreamErrors.WithLabelValues(k.provider, k.typ) }
	m.retryKids.make = func(p string) prometheus.Counter { return m.retries.WithLabelValues(p) }
	m.inflightKids.make = func(p string) prometheus.Gauge { return m.inflight.WithLabelValues(p) }
	return m
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors, for New and Handler.
func NewRegistry() *prometheus.Registry {
	r := prometheus.NewRegistry()
	r.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return r
}

// Handler serves the metrics g gathers in the Prometheus text format (or
// OpenMetrics, when asked), for GET /metrics.
func Handler(g prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:     promhttp.ContinueOnError,
		EnableOpenMetrics: true,
	})
}

// ObserveRequest records a finished request: route is the mux pattern's
// path ("/v1/chat/completions"), method the HTTP method, status the status
// sent (499 when the client went away), model and provider the registered
// model id and provider id ("" when the request named none or an unknown
// one), d the time from arrival to the end of the answer.
func (m *Metrics) ObserveRequest(route, method string, status int, model, provider string, d time.Duration) {
	if m == nil {
		return
	}
	k := m.requestKids.get(requestKey{route: route, method: method, model: model, provider: provider, status: status})
	k.count.Inc()
	k.duration.Observe(d.Seconds())
}

// ObserveTimeToFirstToken records the time from a streamed request's
// arrival to its first chunk.
func (m *Metrics) ObserveTimeToFirstToken(model, provider string, d time.Duration) {
	if m == nil {
		return
	}
	m.ttftKids.get(modelKey{model, provider}).Observe(d.Seconds())
}

// AddTokens counts the tokens an upstream reported for one answer.
// Negative counts are ignored.
func (m *Metrics) AddTokens(model, provider string, prompt, completion int) {
	if m == nil || prompt <= 0 && completion <= 0 {
		return
	}
	k := m.tokenKids.get(modelKey{model, provider})
	if prompt > 0 {
		k.prompt.Add(float64(prompt))
	}
	if completion > 0 {
		k.completion.Add(float64(completion))
	}
}

// UpstreamError counts one failed upstream call of provider; typ is one of
// a small fixed set (see package resilient's ErrorType).
func (m *Metrics) UpstreamError(provider, typ string) {
	if m == nil {
		return
	}
	m.errorKids.get(errorKey{provider, typ}).Inc()
}

// UpstreamRetry counts one retried upstream call of provider.
func (m *Metrics) UpstreamRetry(provider string) {
	if m == nil {
		return
	}
	m.retryKids.get(provider).Inc()
}

// StreamOpened counts a stream to provider as in flight until StreamClosed.
func (m *Metrics) StreamOpened(provider string) {
	if m == nil {
		return
	}
	m.inflightKids.get(provider).Inc()
}

// StreamClosed ends what StreamOpened started.
func (m *Metrics) StreamClosed(provider string) {
	if m == nil {
		return
	}
	m.inflightKids.get(provider).Dec()
}

// SetCircuitState records the state of provider's circuit breaker.
func (m *Metrics) SetCircuitState(provider string, s CircuitState) {
	if m == nil {
		return
	}
	m.circuit.WithLabelValues(provider).Set(float64(s))
}

// SetStoreQueueDepth records how many records wait to be written.
func (m *Metrics) SetStoreQueueDepth(n int) {
	if m == nil {
		return
	}
	m.storeQueue.Set(float64(n))
}

// StoreDropped counts n records dropped because the store's queue was full.
func (m *Metrics) StoreDropped(n int) {
	if m == nil || n <= 0 {
		return
	}
	m.storeDropped.Add(float64(n))
}

// StoreWriteError counts one failed store write.
func (m *Metrics) StoreWriteError() {
	if m == nil {
		return
	}
	m.storeWriteErrs.Inc()
}

// QuotaRejected counts one request rejected by a quota; kind names the
// limit (for example "requests" or "tokens").
func (m *Metrics) QuotaRejected(kind string) {
	if m == nil {
		return
	}
	m.quota.WithLabelValues(kind).Inc()
}

// statusLabels holds the label text of the statuses 100-599, so that
// recording one does not allocate.
var statusLabels = func() []string {
	s := make([]string, 600)
	for i := 100; i < len(s); i++ {
		s[i] = strconv.Itoa(i)
	}
	return s
}()

// statusLabel returns the label text of an HTTP status; "0" for none
// recorded and "other" for a number no HTTP status has.
func statusLabel(code int) string {
	switch {
	case code == 0:
		return "0"
	case code >= 100 && code < len(statusLabels):
		return statusLabels[code]
	}
	return "other"
}

// children caches the child collectors of a vector by their label values,
// so that the hot path neither hashes label strings nor allocates.
type children[K comparable, V any] struct {
	m    sync.Map // K → V
	make func(K) V
}

func (c *children[K, V]) get(k K) V {
	if v, ok := c.m.Load(k); ok {
		return v.(V)
	}
	v, _ := c.m.LoadOrStore(k, c.make(k))
	return v.(V)
}
