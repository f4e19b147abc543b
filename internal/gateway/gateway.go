// Package gateway is the composition root: it turns a run config into
// providers, a model registry and the HTTP handler, and runs the HTTP
// server until its context ends, then drains it.
package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/llama-stack-go/llama-stack-go/internal/api"
	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/metrics"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/resilient"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
	"github.com/llama-stack-go/llama-stack-go/internal/responses"
	"github.com/llama-stack-go/llama-stack-go/internal/store"
	"github.com/llama-stack-go/llama-stack-go/internal/telemetry"
	"github.com/llama-stack-go/llama-stack-go/internal/version"
)

// DefaultShutdownTimeout is how long Serve lets in-flight requests finish
// after its context ends before it cuts them.
const DefaultShutdownTimeout = 30 * time.Second

// DefaultReadTimeout bounds reading a request, headers and body, so that a
// client that trickles or withholds its body cannot hold a handler
// forever. It does not limit the answer: net/http lifts the deadline once
// the body has been read, so streams may last as long as they need.
const DefaultReadTimeout = 2 * time.Minute

// providerDescriptions describe each provider type for
// `llama stack list-providers`.
var providerDescriptions = map[string]string{
	config.ProviderTypeBedrock:     "Amazon Bedrock (OpenAI-compatible endpoint, bearer API key)",
	config.ProviderTypeOpenAI:      "OpenAI",
	config.ProviderTypeVLLM:        "vLLM server (OpenAI-compatible)",
	config.ProviderTypeOllama:      "Ollama (its OpenAI-compatible /v1)",
	config.ProviderTypeTogether:    "Together AI",
	config.ProviderTypeFireworks:   "Fireworks AI",
	config.ProviderTypeGroq:        "Groq",
	config.ProviderTypeGemini:      "Google Gemini (OpenAI-compatible endpoint)",
	config.ProviderTypeAzure:       "Azure OpenAI",
	config.ProviderTypeNVIDIA:      "NVIDIA NIM / API catalog",
	config.ProviderTypeSambaNova:   "SambaNova Cloud",
	config.ProviderTypeCerebras:    "Cerebras",
	config.ProviderTypeRunpod:      "RunPod serverless vLLM",
	config.ProviderTypeDatabricks:  "Databricks model serving",
	config.ProviderTypePassthrough: "any OpenAI-compatible base URL",
}

// ProviderType describes one provider type this build runs.
type ProviderType struct{ API, Type, Description string }

// ProviderTypes lists the provider types this build can run, sorted, for
// `llama stack list-providers`.
func ProviderTypes() []ProviderType {
	out := make([]ProviderType, 0, len(config.ProviderTypes))
	for t := range config.ProviderTypes {
		out = append(out, ProviderType{API: "inference", Type: t, Description: providerDescriptions[t]})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// Options are the process-level inputs of New.
type Options struct {
	// Logger receives the gateway's logs; nil discards them.
	Logger *slog.Logger
	// LookupEnv reads the environment; nil means no variables.
	LookupEnv config.LookupEnv
	// HTTPClient sends upstream requests; nil means each provider's default.
	HTTPClient *http.Client
	// ShutdownTimeout bounds the drain in Serve; 0 means the default.
	ShutdownTimeout time.Duration
	// ReadTimeout bounds reading each request (headers and body) in
	// Serve; 0 means DefaultReadTimeout.
	ReadTimeout time.Duration
	// RegistrySync is how often models registered through the API by
	// other replicas are read; 0 means DefaultRegistrySync.
	RegistrySync time.Duration
	// TracerProvider traces requests and upstream calls; nil traces
	// nothing (telemetry.Setup builds one from the OTEL_* variables).
	TracerProvider trace.TracerProvider
	// Registry, when set, receives the metrics instead of a registry of
	// the gateway's own (served at /metrics either way).
	Registry *prometheus.Registry
}

// Gateway is a configured server, ready to serve.
type Gateway struct {
	cfg       *config.Config
	log       *slog.Logger
	reg       *registry.Registry
	handler   http.Handler
	providers []api.ProviderInfo
	drain     time.Duration
	readTO    time.Duration

	discoverers  []discoverer
	refreshEvery time.Duration

	store     *storage
	syncEvery time.Duration
	responses *responses.Engine
	metrics   *metrics.Metrics
}

// New builds the providers, registers the config's models, opens the
// storage backends (retrying in the background those that cannot be opened
// yet) and assembles the handler. It listens on nothing; Serve does. Call
// Close when not calling Serve.
func New(cfg *config.Config, o Options) (*Gateway, error) {
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	env := o.LookupEnv
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	g := &Gateway{cfg: cfg, log: log, drain: o.ShutdownTimeout, refreshEvery: time.Duration(cfg.Server.RegistryRefreshIntervalSeconds) * time.Second}
	if g.drain <= 0 {
		g.drain = DefaultShutdownTimeout
	}
	if g.readTO = o.ReadTimeout; g.readTO <= 0 {
		g.readTO = DefaultReadTimeout
	}
	if g.refreshEvery <= 0 {
		g.refreshEvery = 5 * time.Minute
	}
	tp := o.TracerProvider
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	promReg := o.Registry
	if promReg == nil {
		promReg = metrics.NewRegistry()
	}
	g.metrics = metrics.New(promReg)
	impls := map[string]provider.Provider{}
	apis := make([]string, 0, len(cfg.Providers))
	for a := range cfg.Providers {
		apis = append(apis, a)
	}
	sort.Strings(apis)
	for _, a := range apis {
		for _, p := range cfg.EnabledProviders(a) {
			res, err := cfg.ResilienceFor(p)
			if err != nil {
				return nil, err
			}
			// Each provider's own transport: its connect and first-byte
			// timeouts, traced.
			wrap := func(tr *http.Transport) http.RoundTripper {
				return telemetry.Transport(resilient.Transport(res, tr), tp)
			}
			impl, attrs, disc, err := newProvider(p, env, o.HTTPClient, wrap, log)
			if err != nil {
				return nil, err
			}
			guarded := resilient.Wrap(impl, res, resilient.Options{ProviderID: p.ProviderID, Logger: log.With(slog.String("provider_id", p.ProviderID)), Metrics: g.metrics})
			impls[p.ProviderID] = guarded
			if disc != nil {
				g.discoverers = append(g.discoverers, *disc)
			}
			g.providers = append(g.providers, api.ProviderInfo{
				API: p.API, ProviderID: p.ProviderID, ProviderType: p.ProviderType,
				Config: p.RedactedConfig(), Check: func() map[string]any { return circuitHealth(guarded) },
			})
			log.LogAttrs(context.Background(), slog.LevelInfo, "provider enabled", append([]slog.Attr{
				slog.String("api", p.API), slog.String("provider_id", p.ProviderID), slog.String("provider_type", p.ProviderType)}, attrs...)...)
		}
	}
	g.reg = registry.New(impls)
	for _, m := range cfg.RegisteredResources.Models {
		err := g.reg.Register(registry.Model{
			Identifier: m.Identifier(), ProviderID: m.ProviderID, ProviderResourceID: m.ProviderModelID,
			ModelType: m.ModelType, Metadata: m.Metadata,
		})
		if err != nil {
			return nil, fmt.Errorf("%s: %w", m.Path, err)
		}
		log.LogAttrs(context.Background(), slog.LevelInfo, "model registered",
			slog.String("model_id", m.Identifier()), slog.String("provider_id", m.ProviderID),
			slog.String("provider_model_id", m.ProviderModelID), slog.String("model_type", m.ModelType))
	}
	for _, m := range cfg.DroppedModels() {
		log.LogAttrs(context.Background(), slog.LevelInfo, "model skipped: its provider is disabled",
			slog.String("model_id", m.ModelID), slog.String("provider_id", m.ProviderID))
	}
	if len(impls) == 0 {
		log.Warn("no inference provider is enabled; for Bedrock set AWS_BEARER_TOKEN_BEDROCK or name a config file")
	}
	g.syncEvery = o.RegistrySync
	if g.syncEvery <= 0 {
		g.syncEvery = DefaultRegistrySync
	}
	g.store = openStorage(cfg.Store, g.reg, log, func(e store.WriterEvent) {
		g.metrics.SetStoreQueueDepth(e.Depth)
		if e.Dropped {
			g.metrics.StoreDropped(1)
		}
		if e.WriteError != nil {
			g.metrics.StoreWriteError()
		}
	})
	g.responses = responses.New(responses.Options{Records: g.store.records, Logger: log.With(slog.String("component", "responses")), Version: version.String()})
	access, err := newAccessControl(cfg, g.store, log)
	if err != nil {
		_ = g.Close()
		return nil, err
	}
	opts := api.Options{
		Registry:     g.reg,
		Providers:    g.providers,
		Logger:       log,
		Version:      version.String(),
		MaxBodyBytes: cfg.Server.MaxRequestBodyBytes,
		Records:      g.store.records,
		Inference:    g.store.inferenceStore(),
		Stores:       g.store.health,

		Responses:      g.responses,
		Auth:           access.auth,
		Routes:         access.routes,
		Policy:         access.policy,
		Quota:          access.quota,
		CORS:           access.cors,
		Metrics:        g.metrics,
		MetricsHandler: metrics.Handler(promReg),
		TracerProvider: tp,
	}
	if g.store.persist != nil {
		opts.Models = g.store.persist
	}
	g.handler = api.NewHandler(opts)
	return g, nil
}

// Close flushes what waits to be stored and closes the storage. Serve
// calls it when it returns.
func (g *Gateway) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), g.drain)
	defer cancel()
	if g.responses != nil {
		// Background responses still running end as failed, stored.
		g.responses.Close()
	}
	return g.store.close(ctx)
}

// newProvider builds one provider from its config; the set of types is
// small and known, so this is a switch (Litestream's NewReplicaFromConfig).
// It also returns the provider's model discovery, if it has one.
func newProvider(p *config.Provider, env config.LookupEnv, hc *http.Client, wrap func(*http.Transport) http.RoundTripper, log *slog.Logger) (provider.Provider, []slog.Attr, *discoverer, error) {
	if s, ok := p.Settings.(*config.BedrockConfig); ok {
		if hc == nil {
			hc = &http.Client{Transport: wrap(openaicompat.NewTransport())}
		}
		b, err := bedrock.New(p.ProviderID, s, bedrock.Options{LookupEnv: env, HTTPClient: hc, Logger: log})
		if err != nil {
			return nil, nil, nil, fmt.Errorf("%s: %w", p.Path, err)
		}
		var disc *discoverer
		if s.RefreshModels {
			// Bedrock discovers only when asked: its account may reach
			// hundreds of models.
			disc = &discoverer{providerID: p.ProviderID, lister: b, allowed: s.AllowedModels, refresh: true}
		}
		return b, []slog.Attr{slog.String("region", b.Region()), slog.String("endpoint", b.Endpoint()), slog.String("auth", b.AuthMode())}, disc, nil
	}
	oc, ok := p.OpenAICompat()
	if !ok {
		return nil, nil, nil, fmt.Errorf("%s: provider type %q cannot be run by this build", p.Path, p.ProviderType)
	}
	c, err := newOpenAICompat(p.ProviderID, p.ProviderType, oc, hc, wrap)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", p.Path, err)
	}
	attrs := []slog.Attr{slog.String("base_url", oc.BaseURL), slog.Bool("api_key_set", oc.APIKey != "")}
	var disc *discoverer
	if oc.ListsModels {
		disc = &discoverer{providerID: p.ProviderID, lister: c, allowed: oc.AllowedModels, refresh: oc.RefreshModels}
	}
	return c, attrs, disc, nil
}

// Handler returns the root HTTP handler.
func (g *Gateway) Handler() http.Handler { return g.handler }

// Registry returns the model registry.
func (g *Gateway) Registry() *registry.Registry { return g.reg }

// Serve serves HTTP on ln until ctx ends, then stops accepting, lets
// in-flight requests finish for up to the shutdown timeout, and cuts what
// is left. It returns nil after a clean drain.
func (g *Gateway) Serve(ctx context.Context, ln net.Listener) error {
	srv := &http.Server{
		Handler:           g.handler,
		ReadHeaderTimeout: min(10*time.Second, g.readTO),
		ReadTimeout:       g.readTO,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    1 << 20,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	bg, stopBackground := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { g.runDiscovery(bg) })
	if g.store.persist != nil {
		wg.Go(func() { g.store.persist.Run(bg, g.syncEvery) })
	}
	// finish stops the background work, then flushes and closes the
	// storage: every request has ended by then, so all they queued is
	// written.
	finish := func(err error) error {
		stopBackground()
		wg.Wait()
		if cerr := g.Close(); cerr != nil {
			g.log.Error("storage did not close cleanly", slog.String("error", cerr.Error()))
			err = errors.Join(err, cerr)
		}
		return err
	}
	g.log.Info("listening", slog.String("addr", ln.Addr().String()), slog.String("version", version.String()))
	select {
	case err := <-errc:
		return finish(fmt.Errorf("serve: %w", err))
	case <-ctx.Done():
	}
	g.log.Info("shutting down", slog.Duration("drain", g.drain))
	sctx, cancel := context.WithTimeout(context.Background(), g.drain)
	defer cancel()
	err := srv.Shutdown(sctx)
	if errors.Is(err, context.DeadlineExceeded) {
		g.log.Warn("drain deadline passed; closing the remaining connections")
		_ = srv.Close()
		err = nil
	}
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("serve: %w", serr))
	}
	return finish(err)
}

// circuitHealth reports a provider's health as its circuit breaker sees
// it: the outcome of the last requests, without calling the upstream.
func circuitHealth(p *resilient.Provider) map[string]any {
	switch p.CircuitState() {
	case metrics.CircuitOpen:
		return map[string]any{"status": "Error", "message": "recent requests failed; the circuit is open and requests are refused until a probe succeeds"}
	case metrics.CircuitHalfOpen:
		return map[string]any{"status": "Degraded", "message": "recovering: probing the upstream after failures"}
	default:
		return map[string]any{"status": "OK"}
	}
}
