package telemetry

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"sync"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// Attribute keys, from the OpenTelemetry semantic conventions (HTTP and
// GenAI), plus the request id.
const (
	AttrHTTPMethod    = attribute.Key("http.request.method")
	AttrHTTPRoute     = attribute.Key("http.route")
	AttrHTTPStatus    = attribute.Key("http.response.status_code")
	AttrURLPath       = attribute.Key("url.path")
	AttrURLScheme     = attribute.Key("url.scheme")
	AttrURLFull       = attribute.Key("url.full")
	AttrServerAddress = attribute.Key("server.address")
	AttrUserAgent     = attribute.Key("user_agent.original")
	AttrErrorType     = attribute.Key("error.type")
	AttrModel         = attribute.Key("gen_ai.request.model")
	AttrProvider      = attribute.Key("gen_ai.provider.name")
	AttrInputTokens   = attribute.Key("gen_ai.usage.input_tokens")
	AttrOutputTokens  = attribute.Key("gen_ai.usage.output_tokens")
	AttrRequestID     = attribute.Key("llama_stack.request_id")
)

// RequestIDHeader carries the request id to the client and upstream.
const RequestIDHeader = "X-Request-Id"

// serverSpanFallback names a server span whose request has no method.
const serverSpanFallback = "HTTP"

type requestIDKey struct{}

// WithRequestID returns ctx carrying the request id, for logs, spans and
// the X-Request-Id header of upstream calls (see Transport).
func WithRequestID(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, requestIDKey{}, id)
}

// RequestID returns the request id ctx carries, or "".
func RequestID(ctx context.Context) string {
	id, _ := ctx.Value(requestIDKey{}).(string)
	return id
}

// StartServerSpan starts the span of an incoming request, continuing the
// caller's trace when r carries a traceparent header. It is named after
// the method until SetRoute names it after the route. End it with
// EndServerSpan. tp nil means no tracing.
func StartServerSpan(ctx context.Context, tp trace.TracerProvider, r *http.Request) (context.Context, trace.Span) {
	ctx = propagator.Extract(ctx, propagation.HeaderCarrier(r.Header))
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	name := r.Method
	if name == "" {
		name = serverSpanFallback
	}
	ctx, span := tp.Tracer(ScopeName).Start(ctx, name, trace.WithSpanKind(trace.SpanKindServer))
	if span.IsRecording() {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		span.SetAttributes(
			AttrHTTPMethod.String(r.Method),
			AttrURLPath.String(r.URL.Path),
			AttrURLScheme.String(scheme),
		)
		if ua := r.UserAgent(); ua != "" {
			span.SetAttributes(AttrUserAgent.String(ua))
		}
		if id := RequestID(ctx); id != "" {
			span.SetAttributes(AttrRequestID.String(id))
		}
	}
	return ctx, span
}

// SetRoute names the span in ctx after the matched route, as
// "POST /v1/chat/completions" (an http.ServeMux pattern, r.Pattern, is
// exactly that), and records http.route.
func SetRoute(ctx context.Context, pattern string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() || pattern == "" {
		return
	}
	span.SetName(pattern)
	route := pattern
	for i := 0; i < len(pattern); i++ {
		if pattern[i] == ' ' {
			route = pattern[i+1:]
			break
		}
	}
	span.SetAttributes(AttrHTTPRoute.String(route))
}

// SetModel records on the span in ctx the model the request names and
// the provider that serves it.
func SetModel(ctx context.Context, model, provider string) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(AttrModel.String(model), AttrProvider.String(provider))
}

// SetUsage records on the span in ctx the tokens the upstream reported.
func SetUsage(ctx context.Context, input, output int) {
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return
	}
	span.SetAttributes(AttrInputTokens.Int(input), AttrOutputTokens.Int(output))
}

// EndServerSpan records the response status and ends the span. A 5xx
// marks it as an error (a 4xx is the client's, not the server's);
// status 0 means the handler wrote nothing.
func EndServerSpan(span trace.Span, status int) {
	if span.IsRecording() {
		if status != 0 {
			span.SetAttributes(AttrHTTPStatus.Int(status))
		}
		if status >= 500 {
			span.SetAttributes(AttrErrorType.String(strconv.Itoa(status)))
			span.SetStatus(codes.Error, http.StatusText(status))
		}
	}
	span.End()
}

// Transport returns a RoundTripper for upstream calls: it starts a client
// span (a child of the request's span; it ends when the response body is
// closed or fully read, so it covers a whole stream), injects the W3C
// traceparent, and sets X-Request-Id from the context's request id unless
// the request already has one. base nil means http.DefaultTransport; tp
// nil means no spans (the request id is still sent). The request is cloned,
// never modified. URLs are recorded without their query, which may hold
// keys.
func Transport(base http.RoundTripper, tp trace.TracerProvider) http.RoundTripper {
	if base == nil {
		base = http.DefaultTransport
	}
	if tp == nil {
		tp = noop.NewTracerProvider()
	}
	return &transport{base: base, tracer: tp.Tracer(ScopeName)}
}

type transport struct {
	base   http.RoundTripper
	tracer trace.Tracer
}

func (t *transport) RoundTrip(r *http.Request) (*http.Response, error) {
	ctx, span := t.tracer.Start(r.Context(), r.Method, trace.WithSpanKind(trace.SpanKindClient))
	id := RequestID(ctx)
	sc := span.SpanContext()
	if (id != "" && r.Header.Get(RequestIDHeader) == "") || sc.IsValid() {
		r = r.Clone(ctx)
		if id != "" && r.Header.Get(RequestIDHeader) == "" {
			r.Header.Set(RequestIDHeader, id)
		}
		if sc.IsValid() {
			propagator.Inject(ctx, propagation.HeaderCarrier(r.Header))
		}
	}
	if !span.IsRecording() {
		return t.base.RoundTrip(r)
	}
	u := *r.URL
	u.RawQuery, u.ForceQuery, u.Fragment, u.User = "", false, "", nil
	span.SetAttributes(
		AttrHTTPMethod.String(r.Method),
		AttrURLFull.String(u.String()),
		AttrServerAddress.String(r.URL.Hostname()),
	)
	if id != "" {
		span.SetAttributes(AttrRequestID.String(id))
	}
	resp, err := t.base.RoundTrip(r)
	if err != nil {
		span.RecordError(err)
		span.SetAttributes(AttrErrorType.String("transport"))
		span.SetStatus(codes.Error, "upstream request failed")
		span.End()
		return nil, err
	}
	span.SetAttributes(AttrHTTPStatus.Int(resp.StatusCode))
	if resp.StatusCode >= 400 {
		span.SetAttributes(AttrErrorType.String(strconv.Itoa(resp.StatusCode)))
		span.SetStatus(codes.Error, http.StatusText(resp.StatusCode))
	}
	if resp.Body == nil || resp.Body == http.NoBody || resp.StatusCode == http.StatusSwitchingProtocols {
		span.End()
		return resp, nil
	}
	resp.Body = &spanBody{ReadCloser: resp.Body, span: span}
	return resp, nil
}

// spanBody ends the client span when the body is done with.
type spanBody struct {
	io.ReadCloser
	span trace.Span
	once sync.Once
}

func (b *spanBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err != nil {
		b.end(err)
	}
	return n, err
}

func (b *spanBody) Close() error {
	err := b.ReadCloser.Close()
	b.end(nil)
	return err
}

func (b *spanBody) end(err error) {
	b.once.Do(func() {
		if err != nil && !errors.Is(err, io.EOF) {
			b.span.RecordError(err)
			b.span.SetStatus(codes.Error, "reading the upstream response failed")
		}
		b.span.End()
	})
}
