// Package api is the HTTP surface of the server: the Llama Stack and OpenAI
// routes on an http.ServeMux, their handlers, the middleware around them,
// and the single mapping from error to HTTP status (errors.go).
package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/llama-stack-go/llama-stack-go/internal/auth"
	"github.com/llama-stack-go/llama-stack-go/internal/cors"
	"github.com/llama-stack-go/llama-stack-go/internal/metrics"
	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/ratelimit"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
	"github.com/llama-stack-go/llama-stack-go/internal/responses"
	"github.com/llama-stack-go/llama-stack-go/internal/store"
	"github.com/llama-stack-go/llama-stack-go/internal/telemetry"
)

// DefaultMaxBodyBytes bounds a request body when Options leave it zero.
const DefaultMaxBodyBytes = 16 << 20

// ProviderInfo describes a configured provider for /v1/providers.
type ProviderInfo struct {
	API          string         `json:"api"`
	ProviderID   string         `json:"provider_id"`
	ProviderType string         `json:"provider_type"`
	Config       map[string]any `json:"config"`
	Health       map[string]any `json:"health"`
	// Check, when set, reports the provider's health at the time of the
	// request and replaces Health.
	Check func() map[string]any `json:"-"`
}

// Options are what the handlers need.
type Options struct {
	Registry     *registry.Registry
	Providers    []ProviderInfo
	Logger       *slog.Logger
	Version      string
	MaxBodyBytes int64
	// Records holds stored responses and conversations; nil when storage
	// is switched off.
	Records store.Records
	// Models registers models for every replica; nil when the metadata
	// store is switched off.
	Models ModelRegistrar
	// Inference records and reads chat completions; zero when the
	// inference store is switched off.
	Inference InferenceStore
	// Stores are checked by /v1/health, by name.
	Stores map[string]StoreHealth

	// Responses runs the Responses API; nil builds one on Records (its
	// background responses are then not ended at shutdown).
	Responses *responses.Engine
	// Auth authenticates callers; nil lets everyone in anonymously.
	Auth auth.Authenticator
	// Routes restricts routes by principal; nil allows all.
	Routes *auth.RoutePolicy
	// Policy says which models a caller may list and use; nil allows all.
	Policy *auth.Policy
	// Quota limits requests and tokens per caller; nil means no limits.
	Quota *ratelimit.Quota
	// CORS answers browsers' cross-origin requests; nil means none.
	CORS *cors.CORS
	// Metrics observes every request; nil observes nothing.
	Metrics *metrics.Metrics
	// MetricsHandler serves GET /metrics when set (open, like health).
	MetricsHandler http.Handler
	// TracerProvider makes a span per request; nil makes none.
	TracerProvider trace.TracerProvider
	// WriteTimeout bounds each write to a client; a client that does not
	// read (a stalled stream reader) is cut after it. 0 means 60 s.
	WriteTimeout time.Duration
}

// Server holds the handlers' dependencies.
type Server struct {
	reg       *registry.Registry
	providers []ProviderInfo
	log       *slog.Logger
	version   string
	maxBody   int64
	records   store.Records
	models    ModelRegistrar
	inference InferenceStore
	stores    map[string]StoreHealth
	responses *responses.Engine
	policy    *auth.Policy
	quota     *ratelimit.Quota
	metrics   *metrics.Metrics
	tp        trace.TracerProvider
	writeTO   time.Duration
	mux       *http.ServeMux
	routes    []route
}

type route struct {
	method, path string
	apiName      string // the Llama Stack API the route belongs to
	h            http.Handler
}

// NewHandler returns the server's root handler.
func NewHandler(o Options) http.Handler {
	s := &Server{reg: o.Registry, providers: o.Providers, log: o.Logger, version: o.Version, maxBody: o.MaxBodyBytes, records: o.Records,
		models: o.Models, inference: o.Inference, stores: o.Stores, responses: o.Responses, policy: o.Policy, quota: o.Quota,
		metrics: o.Metrics, tp: o.TracerProvider, writeTO: o.WriteTimeout, mux: http.NewServeMux()}
	if s.tp == nil {
		s.tp = noop.NewTracerProvider()
	}
	if s.writeTO <= 0 {
		s.writeTO = 60 * time.Second
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.maxBody <= 0 {
		s.maxBody = DefaultMaxBodyBytes
	}
	s.add("GET", "/v1/models", "models", s.handle(s.listModels))
	s.add("GET", "/v1/models/{model_id...}", "models", s.handle(s.getModel))
	s.add("POST", "/v1/models", "models", s.handle(s.registerModel))
	s.add("DELETE", "/v1/models/{model_id...}", "models", s.handle(s.unregisterModel))
	s.add("POST", "/v1/chat/completions", "inference", s.handle(s.chat))
	s.add("GET", "/v1/chat/completions", "inference", s.handle(s.listCompletions))
	s.add("GET", "/v1/chat/completions/{completion_id}", "inference", s.handle(s.getCompletion))
	s.add("DELETE", "/v1/chat/completions/{completion_id}", "inference", s.handle(s.deleteCompletion))
	s.add("POST", "/v1/completions", "inference", s.handle(s.completions))
	s.add("POST", "/v1/embeddings", "inference", s.handle(s.embeddings))
	s.add("GET", "/v1/health", "inspect", s.handle(s.health))
	s.add("GET", "/v1/version", "inspect", s.handle(s.getVersion))
	s.add("GET", "/v1/providers", "providers", s.handle(s.listProviders))
	s.add("GET", "/v1/providers/{provider_id}", "providers", s.handle(s.getProvider))
	s.add("GET", "/v1/inspect/routes", "inspect", s.handle(s.listRoutes))
	// Older Llama Stack clients prefix the OpenAI routes with /v1/openai.
	s.alias("POST", "/v1/openai/v1/chat/completions", "/v1/chat/completions")
	s.alias("POST", "/v1/openai/v1/completions", "/v1/completions")
	s.alias("POST", "/v1/openai/v1/embeddings", "/v1/embeddings")
	s.alias("GET", "/v1/openai/v1/models", "/v1/models")
	s.alias("GET", "/v1/openai/v1/chat/completions", "/v1/chat/completions")
	s.alias("GET", "/v1/openai/v1/chat/completions/{completion_id}", "/v1/chat/completions/{completion_id}")
	s.addResponsesRoutes()
	if o.MetricsHandler != nil {
		s.mux.Handle("GET /metrics", o.MetricsHandler)
	}
	s.mux.Handle("/", s.handle(s.notFound))

	// recover, request id, span, metrics, access log → CORS → auth →
	// quota → routes. CORS is outside auth so that preflights (sent without
	// credentials) are answered and refusals carry CORS headers.
	we := func(w http.ResponseWriter, r *http.Request, err error) {
		if le := (*ratelimit.Error)(nil); errors.As(err, &le) {
			s.metrics.QuotaRejected(le.Kind)
		}
		// A caller refused by the route policy or a quota is known: the
		// access log names it.
		if p, ok := auth.FromContext(r.Context()); ok {
			infoOf(r.Context()).principal = p.ID
		}
		writeError(w, r, s.log, err)
	}
	var h http.Handler = s.mux
	if o.Quota != nil {
		// The routes open to anyone are not counted either: a monitoring
		// system scraping /metrics or probing health must never run out.
		open, limited := h, o.Quota.Wrap(h, we)
		h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if public(r) {
				open.ServeHTTP(w, r)
				return
			}
			limited.ServeHTTP(w, r)
		})
	}
	if o.Auth != nil {
		h = (&auth.Guard{Authenticator: o.Auth, Routes: o.Routes, WriteError: we, Logger: s.log, Public: public}).Wrap(h)
	}
	h = o.CORS.Wrap(h)
	return s.middleware(h)
}

// public reports the routes served to anyone: health, version, metrics.
func public(r *http.Request) bool {
	return auth.IsPublic(r) || r.URL.Path == "/metrics"
}

func (s *Server) add(method, path, apiName string, h http.Handler) {
	s.routes = append(s.routes, route{method: method, path: path, apiName: apiName, h: h})
	s.mux.Handle(method+" "+path, h)
}

func (s *Server) alias(method, path, target string) {
	for _, rt := range s.routes {
		if rt.method == method && rt.path == target {
			s.mux.Handle(method+" "+path, rt.h)
		}
	}
}

// handle adapts a handler that returns an error: the error becomes the
// response through writeError, the one mapping.
func (s *Server) handle(fn func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ri := infoOf(r.Context())
		ri.route = r.Pattern
		if p, ok := auth.FromContext(r.Context()); ok && p != nil {
			ri.principal = p.ID
		}
		if err := fn(w, r); err != nil {
			writeError(w, r, s.log, err)
		}
	})
}

// notFound answers paths no route matches, and methods a path does not
// allow, in OpenAI's error shape.
func (s *Server) notFound(w http.ResponseWriter, r *http.Request) error {
	var allowed []string
	for _, rt := range s.routes {
		if rt.method == r.Method {
			continue
		}
		// A trailing wildcard matches its parent path only through a
		// redirect ("/v1/models" → "/v1/models/"); that is no route.
		if i := strings.Index(rt.path, "{"); i > 0 && strings.HasSuffix(rt.path, "...}") && r.URL.Path+"/" == rt.path[:i] {
			continue
		}
		probe := r.Clone(r.Context())
		probe.Method = rt.method
		if _, pat := s.mux.Handler(probe); pat == rt.method+" "+rt.path {
			allowed = append(allowed, rt.method)
		}
	}
	if len(allowed) > 0 {
		sort.Strings(allowed)
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		return &Error{Status: http.StatusMethodNotAllowed, Type: "invalid_request_error", Code: "method_not_allowed",
			Message: "method " + r.Method + " is not allowed on " + r.URL.Path + " (allowed: " + strings.Join(allowed, ", ") + ")"}
	}
	return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found",
		Message: "no route for " + r.Method + " " + r.URL.Path + "; GET /v1/inspect/routes lists the routes"}
}

// requestID returns the id the middleware gave the request.
func requestID(ctx context.Context) string { return telemetry.RequestID(ctx) }

// newRequestID returns 16 random bytes in hex.
func newRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// validRequestID accepts a caller's id if it is short and printable.
func validRequestID(id string) bool {
	if id == "" || len(id) > 128 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// statusWriter records the status for the access log. It keeps Flush and
// the rest reachable through Unwrap for http.ResponseController.
type statusWriter struct {
	http.ResponseWriter
	status  int
	rc      *http.ResponseController
	writeTO time.Duration
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

// Write writes under a fresh write deadline: a client that stops reading
// the answer (a stalled stream reader) is cut after writeTO instead of
// holding the handler and its upstream forever. (Clients slow to send are
// bounded by the http.Server's read timeouts.)
func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	if w.rc != nil {
		_ = w.rc.SetWriteDeadline(time.Now().Add(w.writeTO))
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Flush() {
	if f, ok := w.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// middleware wraps every request: panic recovery, request id, the
// request's span, its metrics and its access-log line.
func (s *Server) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = newRequestID()
		}
		w.Header().Set("X-Request-Id", id)
		ri := &reqInfo{start: start}
		ctx := context.WithValue(telemetry.WithRequestID(r.Context(), id), infoKey, ri)
		ctx, span := telemetry.StartServerSpan(ctx, s.tp, r)
		r = r.WithContext(ctx)
		sw := &statusWriter{ResponseWriter: w, rc: http.NewResponseController(w), writeTO: s.writeTO}
		defer func() {
			var abort any // re-panicked after the request is logged
			if v := recover(); v != nil {
				abort = s.recovered(sw, r, id, v)
			}
			// No deadline outlives the request on a kept-alive connection.
			_ = sw.rc.SetWriteDeadline(time.Time{})
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			d := time.Since(start)
			if ri.route == "" {
				// Refused before routing (auth, quota): still counted
				// under the route it asked for. (A CORS preflight, which
				// no route takes, counts under "/", as unknown paths do.)
				_, ri.route = s.mux.Handler(r)
			}
			route := ri.route
			if route == "" {
				route = "unmatched"
			} else if _, p, ok := strings.Cut(route, " "); ok {
				route = p
			}
			s.metrics.ObserveRequest(route, r.Method, status, ri.model, ri.provider, d)
			telemetry.SetRoute(ctx, ri.route)
			telemetry.EndServerSpan(span, status)
			attrs := make([]slog.Attr, 0, 12)
			attrs = append(attrs,
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("path", r.URL.Path),
				slog.Int("status", status),
				slog.Duration("duration", d))
			if ri.principal != "" {
				attrs = append(attrs, slog.String("principal", ri.principal))
			}
			if ri.provider != "" {
				attrs = append(attrs, slog.String("model", ri.model), slog.String("provider", ri.provider))
			}
			if ri.ttft > 0 {
				attrs = append(attrs, slog.Duration("ttft", ri.ttft))
			}
			if ri.usage != nil {
				attrs = append(attrs, slog.Int64("tokens_in", ri.usage.PromptTokens), slog.Int64("tokens_out", ri.usage.CompletionTokens))
			}
			s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
			if abort != nil {
				panic(abort)
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// recovered answers a request whose handler panicked with v and logs the
// panic with the request id. Before anything was sent the answer is a 500;
// a stream that had started ends with an in-band error event (and no
// [DONE]), as other mid-stream failures do; any other half-sent answer is
// aborted (the returned value is re-panicked), so that the client cannot
// take it for a complete one.
func (s *Server) recovered(sw *statusWriter, r *http.Request, id string, v any) (abort any) {
	if v == http.ErrAbortHandler {
		return v
	}
	s.log.LogAttrs(r.Context(), slog.LevelError, "handler panic", slog.String("request_id", id), slog.Any("panic", v),
		slog.String("stack", string(debug.Stack())))
	internal := &Error{Status: http.StatusInternalServerError, Type: "api_error", Code: "internal_error", Message: "internal server error"}
	switch {
	case sw.status == 0:
		writeError(sw, r, s.log, internal)
		return nil
	case strings.HasPrefix(sw.Header().Get("Content-Type"), "text/event-stream"):
		b, _ := json.Marshal(openai.ErrorBody{Error: toProblem(internal).detail})
		if _, err := sw.Write(append(append([]byte("data: "), b...), '\n', '\n')); err == nil {
			sw.Flush()
		}
		return nil
	default:
		return http.ErrAbortHandler
	}
}

// writeJSON answers 200 with v as JSON.
func writeJSON(w http.ResponseWriter, v any) error {
	w.Header().Set("Content-Type", "application/json")
	return writeJSONBody(w, v)
}

func writeJSONBody(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}
