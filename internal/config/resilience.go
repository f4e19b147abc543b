package config

import (
	"fmt"
	"math"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Resilience configures how the server treats one upstream provider: how
// long it waits, how it retries, how many requests it lets through at once
// and when it stops calling an upstream that keeps failing. Durations are
// numbers of seconds (fractions allowed), like the rest of the config.
//
// It is written as server.resilience (for every provider) and as
// providers.<api>[i].resilience (for one provider); each overrides only the
// keys it sets, over DefaultResilience. Config.ResilienceFor returns the
// result. There is deliberately no total deadline on streams: a stream may
// run as long as chunks keep arriving.
//
//	server:
//	  resilience:
//	    max_retries: 3
//	providers:
//	  inference:
//	  - provider_id: bedrock
//	    provider_type: remote::bedrock
//	    resilience:
//	      max_concurrency: 64
//	      circuit_breaker: {failure_threshold: 10}
type Resilience struct {
	// ConnectTimeout bounds establishing a connection (TCP and TLS); 0
	// means no limit of our own.
	ConnectTimeout float64 `yaml:"connect_timeout" json:"connect_timeout"`
	// FirstByteTimeout bounds the wait for the upstream's response
	// headers: for a stream, until it opens; for a non-streamed answer,
	// which arrives with its headers, the whole answer. 0 means no limit.
	FirstByteTimeout float64 `yaml:"first_byte_timeout" json:"first_byte_timeout"`
	// StreamIdleTimeout is the longest wait for the next chunk of an open
	// stream (and for its first chunk); a stream that stalls longer is cut
	// and the client told. 0 means no limit.
	StreamIdleTimeout float64 `yaml:"stream_idle_timeout" json:"stream_idle_timeout"`

	// MaxRetries is how many times a failed call is tried again (so at
	// most MaxRetries+1 attempts); 0 switches retries off. Only throttling,
	// upstream 5xx, timeouts and connection failures are retried, and only
	// before anything was sent to the client.
	MaxRetries int `yaml:"max_retries" json:"max_retries"`
	// RetryBudget bounds the time spent retrying, counted from the first
	// failure: no retry starts (nor a wait for one) that would end later.
	// An upstream Retry-After beyond it ends the retries. Must be positive
	// when MaxRetries is.
	RetryBudget float64 `yaml:"retry_budget" json:"retry_budget"`
	// InitialBackoff is the first retry's backoff; each further retry
	// doubles it, up to MaxBackoff. The wait is drawn at random between 0
	// and the backoff ("full jitter"), and is at least the upstream's
	// Retry-After.
	InitialBackoff float64 `yaml:"initial_backoff" json:"initial_backoff"`
	// MaxBackoff caps the backoff; at least InitialBackoff.
	MaxBackoff float64 `yaml:"max_backoff" json:"max_backoff"`

	// MaxConcurrency caps the requests in flight to the provider (a
	// stream counts until it is closed); 0 means no cap.
	MaxConcurrency int `yaml:"max_concurrency" json:"max_concurrency"`
	// QueueTimeout is how long a request may wait for a free slot when
	// MaxConcurrency requests are in flight; after it the request fails
	// with 503. 0 means it does not wait.
	QueueTimeout float64 `yaml:"queue_timeout" json:"queue_timeout"`

	// CircuitBreaker stops calling an upstream that keeps failing.
	CircuitBreaker CircuitBreaker `yaml:"circuit_breaker" json:"circuit_breaker"`
}

// CircuitBreaker configures a provider's circuit breaker. After
// FailureThreshold requests in a row fail with a retryable upstream error
// (after their retries), the circuit opens: requests fail at once with 503
// for OpenDuration seconds. Then up to HalfOpenProbes requests are let
// through: a success closes the circuit, a failure opens it again.
type CircuitBreaker struct {
	// FailureThreshold is the number of consecutive failed requests that
	// opens the circuit; 0 switches the breaker off.
	FailureThreshold int `yaml:"failure_threshold" json:"failure_threshold"`
	// OpenDuration is how long, in seconds, the circuit stays open before
	// it lets probes through; positive when the breaker is on.
	OpenDuration float64 `yaml:"open_duration" json:"open_duration"`
	// HalfOpenProbes is how many requests may probe the upstream at once
	// when the open time is over; at least 1 when the breaker is on.
	HalfOpenProbes int `yaml:"half_open_probes" json:"half_open_probes"`
}

// DefaultResilience holds the defaults: connect within 10s; response
// headers within 600s (they come with a whole non-streamed answer, which
// for long reasoning takes minutes; the OpenAI SDKs wait as long); at most
// 60s between stream chunks; 2 retries within 30s, backing off from 0.5s
// up to 8s (the OpenAI SDKs' policy); no concurrency cap (a request would
// queue up to 10s when one is set); the circuit opens after 5 consecutive
// failures, for 30s, then lets 1 probe through.
var DefaultResilience = Resilience{
	ConnectTimeout:    10,
	FirstByteTimeout:  600,
	StreamIdleTimeout: 60,
	MaxRetries:        2,
	RetryBudget:       30,
	InitialBackoff:    0.5,
	MaxBackoff:        8,
	MaxConcurrency:    0,
	QueueTimeout:      10,
	CircuitBreaker: CircuitBreaker{
		FailureThreshold: 5,
		OpenDuration:     30,
		HalfOpenProbes:   1,
	},
}

// maxRetries bounds max_retries: more would only hide an outage.
const maxRetries = 100

// ResilienceFor returns the resilience settings of provider p:
// DefaultResilience, overridden by the keys set in server.resilience, then
// by those set in p's resilience block. p may be nil for the server-wide
// settings. The error lists the problems of either block, with their YAML
// paths; Validate reports the same ones.
func (c *Config) ResilienceFor(p *Provider) (Resilience, error) {
	r := DefaultResilience
	var probs problems
	if !overlayResilience(&r, &c.Server.Resilience, "server.resilience", &probs) {
		return DefaultResilience, probs.err("")
	}
	if p != nil && !overlayResilience(&r, &p.Resilience, providerPath(p)+".resilience", &probs) {
		return DefaultResilience, probs.err("")
	}
	return r, nil
}

// providerPath returns p's YAML path, or a stand-in for one built in Go.
func providerPath(p *Provider) string {
	if p.Path != "" {
		return p.Path
	}
	return "providers." + p.API + "[" + p.ProviderID + "]"
}

// resilienceBlock returns the node of a resilience block, or nil when it is
// absent or null.
func resilienceBlock(n *yaml.Node) *yaml.Node {
	b := deref(n)
	if b == nil || b.Kind == 0 || b.Kind == yaml.ScalarNode && b.ShortTag() == tagNull {
		return nil
	}
	return b
}

// overlayResilience decodes the keys of block over r. It reports type
// errors and unknown keys and then leaves r as it was.
func overlayResilience(r *Resilience, n *yaml.Node, path string, probs *problems) bool {
	block := resilienceBlock(n)
	if block == nil {
		return true
	}
	before := len(probs.list)
	newSchema(probs).check(block, reflect.TypeFor[Resilience](), path)
	if len(probs.list) > before {
		return false
	}
	next := *r
	if err := strictDecode(block, &next); err != nil {
		probs.add(block, path, fmt.Errorf("decode: %w", err))
		return false
	}
	*r = next
	return true
}

// validateResilience checks server.resilience and the resilience block of
// every enabled provider: types and keys, then values. A provider's block
// is judged together with the server's settings it inherits, but only the
// keys it sets are blamed on it. Config.validate calls it.
func (c *Config) validateResilience(p *problems) {
	base := DefaultResilience
	serverOK := overlayResilience(&base, &c.Server.Resilience, "server.resilience", p)
	if serverOK {
		if block := resilienceBlock(&c.Server.Resilience); block != nil {
			base.check(p, "server.resilience", block)
		}
	}
	for _, api := range sortedKeys(c.Providers) {
		for _, pr := range c.EnabledProviders(api) {
			block := resilienceBlock(&pr.Resilience)
			if block == nil {
				continue
			}
			path := providerPath(pr) + ".resilience"
			r := base
			if overlayResilience(&r, block, path, p) && serverOK {
				r.check(p, path, block)
			}
		}
	}
}

// resilienceKey is one numeric key of a resilience block, for validation.
type resilienceKey struct {
	key string // YAML path below the block, e.g. "circuit_breaker.open_duration"
	sec *float64
	num *int
}

func (r *Resilience) keys() []resilienceKey {
	return []resilienceKey{
		{key: "connect_timeout", sec: &r.ConnectTimeout},
		{key: "first_byte_timeout", sec: &r.FirstByteTimeout},
		{key: "stream_idle_timeout", sec: &r.StreamIdleTimeout},
		{key: "max_retries", num: &r.MaxRetries},
		{key: "retry_budget", sec: &r.RetryBudget},
		{key: "initial_backoff", sec: &r.InitialBackoff},
		{key: "max_backoff", sec: &r.MaxBackoff},
		{key: "max_concurrency", num: &r.MaxConcurrency},
		{key: "queue_timeout", sec: &r.QueueTimeout},
		{key: "circuit_breaker.failure_threshold", num: &r.CircuitBreaker.FailureThreshold},
		{key: "circuit_breaker.open_duration", sec: &r.CircuitBreaker.OpenDuration},
		{key: "circuit_breaker.half_open_probes", num: &r.CircuitBreaker.HalfOpenProbes},
	}
}

// maxSeconds bounds durations so that they convert to a time.Duration.
const maxSeconds = float64(math.MaxInt64/int64(1e9)) - 1

// check validates the settings r that result from block (at path). A
// problem that involves a key block does not set is left to the block that
// set it (server.resilience), unless block is nil.
func (r *Resilience) check(p *problems, path string, block *yaml.Node) {
	sets := func(key string) bool {
		if block == nil {
			return true
		}
		n := block
		for k := range strings.SplitSeq(key, ".") {
			if n = lookup(n, k); n == nil {
				return false
			}
		}
		return true
	}
	at := func(key string) (*yaml.Node, string) {
		n := block
		for k := range strings.SplitSeq(key, ".") {
			n = lineNode(n, k)
		}
		return n, path + "." + key
	}
	bad := map[string]bool{}
	for _, k := range r.keys() {
		if !sets(k.key) {
			continue
		}
		n, kp := at(k.key)
		switch {
		case k.sec != nil && (math.IsNaN(*k.sec) || *k.sec < 0 || *k.sec > maxSeconds):
			p.addf(n, kp, "must be a non-negative number of seconds, got %v", *k.sec)
			bad[k.key] = true
		case k.num != nil && *k.num < 0:
			p.addf(n, kp, "must not be negative, got %d", *k.num)
			bad[k.key] = true
		}
	}
	if sets("max_retries") && !bad["max_retries"] && r.MaxRetries > maxRetries {
		n, kp := at("max_retries")
		p.addf(n, kp, "must be at most %d, got %d", maxRetries, r.MaxRetries)
	}
	// Rules between keys: blamed on the first key of the pair this block
	// sets, so a server-wide mistake is not repeated for every provider.
	pair := func(a, b string, broken bool, format string, args ...any) {
		if !broken || bad[a] || bad[b] {
			return
		}
		key := a
		if !sets(a) {
			if !sets(b) {
				return
			}
			key = b
		}
		n, kp := at(key)
		p.add(n, kp, fmt.Errorf(format, args...))
	}
	pair("retry_budget", "max_retries", r.MaxRetries > 0 && r.RetryBudget == 0,
		"retry_budget must be positive when max_retries is %d (set max_retries: 0 to switch retries off)", r.MaxRetries)
	pair("max_backoff", "initial_backoff", r.MaxBackoff < r.InitialBackoff,
		"max_backoff (%v) must be at least initial_backoff (%v)", r.MaxBackoff, r.InitialBackoff)
	cb := r.CircuitBreaker
	pair("circuit_breaker.open_duration", "circuit_breaker.failure_threshold", cb.FailureThreshold > 0 && cb.OpenDuration == 0,
		"open_duration must be positive when failure_threshold is %d (set failure_threshold: 0 to switch the breaker off)", cb.FailureThreshold)
	pair("circuit_breaker.half_open_probes", "circuit_breaker.failure_threshold", cb.FailureThreshold > 0 && cb.HalfOpenProbes < 1,
		"half_open_probes must be at least 1 when failure_threshold is %d", cb.FailureThreshold)
}
