package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"go.yaml.in/yaml/v3"
)

func TestResilienceDefaults(t *testing.T) {
	c, err := Load(filepath.Join("testdata", "notebook_minimal.good.yaml"), mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range append([]*Provider{nil}, c.EnabledProviders("inference")...) {
		got, err := c.ResilienceFor(p)
		if err != nil {
			t.Fatalf("ResilienceFor: %v", err)
		}
		if diff := cmp.Diff(DefaultResilience, got); diff != "" {
			t.Errorf("settings differ from the defaults (-want +got):\n%s", diff)
		}
	}
	var p problems
	d := DefaultResilience
	d.check(&p, "x", nil)
	if err := p.err(""); err != nil {
		t.Errorf("the defaults are invalid: %v", err)
	}
}

func TestResilienceLayering(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want map[string]Resilience // by provider id; "" is the server-wide value
	}{
		{
			name: "defaults from env",
			want: map[string]Resilience{
				"": func() Resilience {
					r := DefaultResilience
					r.MaxRetries, r.RetryBudget, r.CircuitBreaker.FailureThreshold = 5, 12.5, 3
					return r
				}(),
				"bedrock": func() Resilience {
					r := DefaultResilience
					r.RetryBudget, r.CircuitBreaker.FailureThreshold = 12.5, 3 // from the server
					r.MaxConcurrency, r.StreamIdleTimeout, r.MaxRetries = 64, 0.25, 0
					r.CircuitBreaker.OpenDuration = 5
					return r
				}(),
				"ollama": func() Resilience {
					r := DefaultResilience
					r.MaxRetries, r.RetryBudget, r.CircuitBreaker.FailureThreshold = 5, 12.5, 3
					return r
				}(),
			},
		},
		{
			name: "values from env",
			env:  map[string]string{"BEDROCK_MAX_CONCURRENCY": "8", "VLLM_URL": "http://127.0.0.1:8000/v1", "VLLM_MAX_CONCURRENCY": "2"},
			want: map[string]Resilience{
				"bedrock": func() Resilience {
					r := DefaultResilience
					r.RetryBudget, r.CircuitBreaker.FailureThreshold = 12.5, 3
					r.MaxConcurrency, r.StreamIdleTimeout, r.MaxRetries = 8, 0.25, 0
					r.CircuitBreaker.OpenDuration = 5
					return r
				}(),
				"vllm": func() Resilience {
					r := DefaultResilience
					r.MaxRetries, r.RetryBudget, r.CircuitBreaker.FailureThreshold = 5, 12.5, 3
					r.MaxConcurrency = 2
					return r
				}(),
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The vllm provider is disabled unless VLLM_URL is set; its
			// unexpanded ${env.VLLM_MAX_CONCURRENCY} must not matter then.
			c, err := Load(filepath.Join("testdata", "resilience_layered.yaml"), mapEnv(tt.env))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if err := c.Validate(); err != nil {
				t.Fatalf("Validate: %v", err)
			}
			var vp problems
			c.validateResilience(&vp)
			if err := vp.err(""); err != nil {
				t.Fatalf("validateResilience: %v", err)
			}
			byID := map[string]*Provider{"": nil}
			for _, p := range c.EnabledProviders("inference") {
				byID[p.ProviderID] = p
			}
			for id, want := range tt.want {
				p, ok := byID[id]
				if !ok {
					t.Fatalf("provider %q is not enabled", id)
				}
				got, err := c.ResilienceFor(p)
				if err != nil {
					t.Fatalf("ResilienceFor(%q): %v", id, err)
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("ResilienceFor(%q) (-want +got):\n%s", id, diff)
				}
			}
		})
	}
}

// loadResilience loads a config and returns its problems, validating the
// resilience blocks itself in case Validate does not do so.
func loadResilience(t *testing.T, path string) error {
	t.Helper()
	c, err := Load(path, mapEnv(nil))
	if err != nil {
		return err
	}
	var p problems
	c.validateResilience(&p)
	return p.err(path)
}

func TestResilienceInvalid(t *testing.T) {
	path := filepath.Join("testdata", "resilience_invalid.yaml")
	err := loadResilience(t, path)
	if err == nil {
		t.Fatal("no problems reported")
	}
	want := []string{
		`:4: server.resilience.connect_timeout: must be a non-negative number of seconds, got -1`,
		`:5: server.resilience.initial_backoff: max_backoff (8) must be at least initial_backoff (10)`,
		`:13: providers.inference[0].resilience.max_retries: must be at most 100, got 1000`,
		`:14: providers.inference[0].resilience.retry_budget: retry_budget must be positive when max_retries is 1000`,
		`:16: providers.inference[0].resilience.circuit_breaker.open_duration: open_duration must be positive when failure_threshold is 5`,
		`:17: providers.inference[0].resilience.circuit_breaker.half_open_probes: half_open_probes must be at least 1 when failure_threshold is 5`,
		`:23: providers.inference[1].resilience.max_retry: unknown field`,
		`:24: providers.inference[1].resilience.max_concurrency: expected an integer, got "lots"`,
		`:31: providers.inference[2].resilience.queue_timeout: must be a non-negative number of seconds, got -0.5`,
		`:32: providers.inference[2].resilience.max_concurrency: must not be negative, got -2`,
		`:37: providers.inference[3].resilience: expected a mapping, got "fast"`,
	}
	msg := err.Error()
	lines := strings.Split(msg, "\n")
	for _, w := range want {
		if !strings.Contains(msg, w) {
			t.Errorf("problems lack %q; got:\n%s", w, msg)
		}
	}
	if len(lines) != len(want) {
		t.Errorf("got %d problems, want %d (a server-wide mistake must not be repeated per provider):\n%s", len(lines), len(want), msg)
	}
	for _, l := range lines {
		if !strings.HasPrefix(l, path+":") {
			t.Errorf("problem does not start with the file name: %q", l)
		}
	}
	var fe *FieldError
	if !errors.As(err, &fe) {
		t.Errorf("error is not a *FieldError: %T", err)
	}
}

// TestResilienceForGoConfig covers a config built in Go: the blocks are
// nodes encoded from values, and ResilienceFor reports bad ones itself.
func TestResilienceForGoConfig(t *testing.T) {
	node := func(v any) yaml.Node {
		var n yaml.Node
		if err := n.Encode(v); err != nil {
			t.Fatal(err)
		}
		return n
	}
	c := &Config{Server: DefaultServer}
	c.Server.Resilience = node(map[string]any{"max_concurrency": 4, "queue_timeout": 0})
	p := &Provider{ProviderID: "x", API: "inference", Resilience: node(map[string]any{"circuit_breaker": map[string]any{"half_open_probes": 3}})}
	got, err := c.ResilienceFor(p)
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultResilience
	want.MaxConcurrency, want.QueueTimeout, want.CircuitBreaker.HalfOpenProbes = 4, 0, 3
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}

	p.Resilience = node(map[string]any{"max_retries": "many"})
	got, err = c.ResilienceFor(p)
	if err == nil || !strings.Contains(err.Error(), `providers.inference[x].resilience.max_retries: expected an integer, got "many"`) {
		t.Errorf("ResilienceFor with a bad block: err = %v", err)
	}
	if diff := cmp.Diff(DefaultResilience, got); diff != "" {
		t.Errorf("a bad block must yield the defaults (-want +got):\n%s", diff)
	}
}

func FuzzResilienceFor(f *testing.F) {
	for _, name := range []string{"resilience_layered.yaml", "resilience_invalid.yaml"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("max_retries: 3\ncircuit_breaker: {failure_threshold: 1, open_duration: .5}"))
	f.Add([]byte("connect_timeout: .inf\nretry_budget: .nan"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var n yaml.Node
		if yaml.Unmarshal(data, &n) != nil {
			return
		}
		c := &Config{Server: DefaultServer}
		c.Server.Resilience = n
		r, err := c.ResilienceFor(nil)
		if err != nil {
			if diff := cmp.Diff(DefaultResilience, r); diff != "" {
				t.Fatalf("error %v with non-default settings", err)
			}
			return
		}
		var p problems
		c.validateResilience(&p)
		if p.err("") == nil {
			// Valid settings convert to sane durations.
			for _, k := range r.keys() {
				if k.sec != nil && !(*k.sec >= 0 && *k.sec <= maxSeconds) {
					t.Fatalf("%s = %v passed validation", k.key, *k.sec)
				}
				if k.num != nil && *k.num < 0 {
					t.Fatalf("%s = %d passed validation", k.key, *k.num)
				}
			}
		}
	})
}
