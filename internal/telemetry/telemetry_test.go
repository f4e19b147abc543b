package telemetry

import (
	"compress/gzip"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"go.uber.org/goleak"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestSetupOff(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
	}{
		{"no endpoint", nil},
		{"disabled", map[string]string{"OTEL_SDK_DISABLED": "TRUE", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}},
		{"exporter none", map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}},
		{"unsupported exporter only", map[string]string{"OTEL_TRACES_EXPORTER": "zipkin", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tp, shutdown, err := Setup(t.Context(), envOf(tt.env), slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			_, span := tp.Tracer("x").Start(t.Context(), "s")
			if span.IsRecording() {
				t.Error("a span records with tracing off")
			}
			span.End()
			if err := shutdown(t.Context()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}

func TestSetupErrors(t *testing.T) {
	base := map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}
	tests := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "127.0.0.1:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT must be an http or https URL"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "ftp://x/v1/traces"}, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT must be an http or https URL"},
		{map[string]string{"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, `OTEL_EXPORTER_OTLP_PROTOCOL "grpc" is not supported`},
		{map[string]string{"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "thrift"}, `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL "thrift" is not supported`},
		{map[string]string{"OTEL_EXPORTER_OTLP_HEADERS": "authorization"}, "OTEL_EXPORTER_OTLP_HEADERS item 1 has no '='"},
		{map[string]string{"OTEL_EXPORTER_OTLP_TIMEOUT": "5s"}, "OTEL_EXPORTER_OTLP_TIMEOUT must be a whole number of milliseconds"},
		{map[string]string{"OTEL_EXPORTER_OTLP_COMPRESSION": "zstd"}, `OTEL_EXPORTER_OTLP_COMPRESSION "zstd" is not supported`},
		{map[string]string{"OTEL_EXPORTER_OTLP_CERTIFICATE": "/nonexistent/ca.pem"}, "OTEL_EXPORTER_OTLP_CERTIFICATE"},
		{map[string]string{"OTEL_EXPORTER_OTLP_CLIENT_KEY": "/k.pem"}, "OTEL_EXPORTER_OTLP_CLIENT_KEY needs OTEL_EXPORTER_OTLP_CLIENT_CERTIFICATE too"},
		{map[string]string{"OTEL_TRACES_SAMPLER": "sometimes"}, `OTEL_TRACES_SAMPLER "sometimes" is not a known sampler`},
		{map[string]string{"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG must be a number between 0 and 1"},
		{map[string]string{"OTEL_RESOURCE_ATTRIBUTES": "=x"}, "OTEL_RESOURCE_ATTRIBUTES item 1 has an empty or malformed key"},
		{map[string]string{"OTEL_BSP_MAX_QUEUE_SIZE": "-1"}, "OTEL_BSP_MAX_QUEUE_SIZE must be a positive whole number"},
		{map[string]string{"OTEL_BSP_SCHEDULE_DELAY": "0"}, "OTEL_BSP_SCHEDULE_DELAY must be a positive whole number of milliseconds"},
	}
	for _, tt := range tests {
		env := map[string]string{}
		for k, v := range base {
			env[k] = v
		}
		for k, v := range tt.env {
			env[k] = v
		}
		_, _, err := Setup(t.Context(), envOf(env), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) || !errors.Is(err, ErrConfig) {
			t.Errorf("env %v: err = %v, want ErrConfig with %q", tt.env, err, tt.want)
		}
	}
	// A header value is never echoed.
	_, _, err := Setup(t.Context(), envOf(map[string]string{
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
		"OTEL_EXPORTER_OTLP_HEADERS":  "x=1,authorization=Bearer%ZZsecret",
	}), nil)
	if err == nil || strings.Contains(err.Error(), "secret") {
		t.Errorf("err = %v", err)
	}
}

// receiver is an OTLP/HTTP trace receiver.
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	paths   []string
	headers []http.Header
	spans   []*tracepb.ResourceSpans
	errs    []error
}

func newReceiver(t *testing.T) *receiver {
	rc := &receiver{}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := rc.take(r)
		rc.mu.Lock()
		rc.paths = append(rc.paths, r.URL.Path)
		rc.headers = append(rc.headers, r.Header.Clone())
		if err != nil {
			rc.errs = append(rc.errs, err)
		}
		rc.mu.Unlock()
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if r.Header.Get("Content-Type") == "application/json" {
			w.Header().Set("Content-Type", "application/json")
			_, _ = io.WriteString(w, "{}")
			return
		}
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) take(r *http.Request) error {
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			return err
		}
		body = zr
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	// TracesData has the wire form of ExportTraceServiceRequest (field 1,
	// resource_spans) without the collector package's gRPC dependencies.
	var td tracepb.TracesData
	switch ct := r.Header.Get("Content-Type"); ct {
	case "application/x-protobuf":
		err = proto.Unmarshal(data, &td)
	case "application/json":
		err = protojson.Unmarshal(data, &td)
	default:
		err = errors.New("unexpected content type " + ct)
	}
	if err != nil {
		return err
	}
	rc.mu.Lock()
	rc.spans = append(rc.spans, td.ResourceSpans...)
	rc.mu.Unlock()
	return nil
}

func TestSpansReachAnOTLPReceiver(t *testing.T) {
	tests := []struct {
		name     string
		env      func(url string) map[string]string
		wantPath string
		wantCT   string
		wantGzip bool
	}{
		{
			name: "endpoint, protobuf, gzip",
			env: func(u string) map[string]string {
				return map[string]string{
					"OTEL_EXPORTER_OTLP_ENDPOINT":    u + "/otlp/",
					"OTEL_EXPORTER_OTLP_HEADERS":     "authorization=Bearer%20abc, x-tenant = t1",
					"OTEL_EXPORTER_OTLP_COMPRESSION": "gzip",
					"OTEL_SERVICE_NAME":              "gateway-test",
					"OTEL_RESOURCE_ATTRIBUTES":       "deployment.environment=ci,service.name=ignored",
				}
			},
			wantPath: "/otlp/v1/traces", wantCT: "application/x-protobuf", wantGzip: true,
		},
		{
			name: "traces endpoint, json",
			env: func(u string) map[string]string {
				return map[string]string{
					"OTEL_EXPORTER_OTLP_ENDPOINT":        "http://127.0.0.1:1", // overridden
					"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": u + "/custom/traces",
					"OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "http/json",
					"OTEL_EXPORTER_OTLP_TRACES_HEADERS":  "authorization=Bearer%20abc,x-tenant=t1",
					"OTEL_RESOURCE_ATTRIBUTES":           "service.name=gateway-test,deployment.environment=ci",
					"OTEL_TRACES_SAMPLER":                "always_on",
				}
			},
			wantPath: "/custom/traces", wantCT: "application/json",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t)
			tp, shutdown, err := Setup(t.Context(), envOf(tt.env(rc.srv.URL)), nil)
			if err != nil {
				t.Fatal(err)
			}
			ctx := WithRequestID(t.Context(), "req-1")
			r := httptest.NewRequest("POST", "/v1/chat/completions", nil)
			ctx, span := StartServerSpan(ctx, tp, r)
			SetRoute(ctx, "POST /v1/chat/completions")
			SetModel(ctx, "bedrock/gpt", "bedrock")
			SetUsage(ctx, 12, 34)
			EndServerSpan(span, 200)
			if err := shutdown(t.Context()); err != nil {
				t.Fatalf("shutdown: %v", err)
			}

			rc.mu.Lock()
			defer rc.mu.Unlock()
			if len(rc.errs) > 0 {
				t.Fatalf("receiver: %v", rc.errs)
			}
			if len(rc.paths) == 0 {
				t.Fatal("no export reached the receiver")
			}
			h := rc.headers[0]
			if rc.paths[0] != tt.wantPath || h.Get("Content-Type") != tt.wantCT || (h.Get("Content-Encoding") == "gzip") != tt.wantGzip {
				t.Errorf("export to %s, %s, encoding %q", rc.paths[0], h.Get("Content-Type"), h.Get("Content-Encoding"))
			}
			if h.Get("Authorization") != "Bearer abc" || h.Get("X-Tenant") != "t1" {
				t.Errorf("headers %v", h)
			}
			var got []*tracepb.Span
			res := map[string]string{}
			for _, rs := range rc.spans {
				for _, kv := range rs.GetResource().GetAttributes() {
					res[kv.GetKey()] = kv.GetValue().GetStringValue()
				}
				for _, ss := range rs.GetScopeSpans() {
					got = append(got, ss.GetSpans()...)
				}
			}
			if res["service.name"] != "gateway-test" || res["deployment.environment"] != "ci" || res["service.version"] == "" {
				t.Errorf("resource %v", res)
			}
			if len(got) != 1 {
				t.Fatalf("got %d spans, want 1", len(got))
			}
			s := got[0]
			if s.GetName() != "POST /v1/chat/completions" || s.GetKind() != tracepb.Span_SPAN_KIND_SERVER {
				t.Errorf("span %q kind %v", s.GetName(), s.GetKind())
			}
			attrs := map[string]string{}
			for _, kv := range s.GetAttributes() {
				v := kv.GetValue()
				if v.GetStringValue() != "" {
					attrs[kv.GetKey()] = v.GetStringValue()
				} else {
					attrs[kv.GetKey()] = strings.TrimSpace(strings.Trim(protojson.Format(v), "{}\n"))
				}
			}
			for k, want := range map[string]string{
				"http.request.method": "POST", "url.path": "/v1/chat/completions", "http.route": "/v1/chat/completions",
				"gen_ai.request.model": "bedrock/gpt", "gen_ai.provider.name": "bedrock", "llama_stack.request_id": "req-1",
			} {
				if attrs[k] != want {
					t.Errorf("attribute %s = %q, want %q", k, attrs[k], want)
				}
			}
			for _, k := range []string{"http.response.status_code", "gen_ai.usage.input_tokens", "gen_ai.usage.output_tokens"} {
				if attrs[k] == "" {
					t.Errorf("attribute %s missing (%v)", k, attrs)
				}
			}
		})
	}
}

// recorder returns a tracer provider that keeps ended spans in memory.
func recorder(t *testing.T) (*sdktrace.TracerProvider, *tracetest.SpanRecorder) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr), sdktrace.WithSampler(sdktrace.AlwaysSample()))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	return tp, sr
}

func attrsOf(kvs []attribute.KeyValue) map[attribute.Key]attribute.Value {
	m := map[attribute.Key]attribute.Value{}
	for _, kv := range kvs {
		m[kv.Key] = kv.Value
	}
	return m
}

func TestServerAndUpstreamSpans(t *testing.T) {
	tp, sr := recorder(t)
	var upstreamHeaders http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		upstreamHeaders = r.Header.Clone()
		w.Header().Set("Content-Type", "text/event-stream")
		_, _ = io.WriteString(w, "data: {}\n\ndata: [DONE]\n\n")
	}))
	defer upstream.Close()

	// An incoming request that continues a caller's trace.
	const callerTrace = "4bf92f3577b34da6a3ce929d0e0e4736"
	in := httptest.NewRequest("POST", "/v1/chat/completions", nil)
	in.Header.Set("traceparent", "00-"+callerTrace+"-00f067aa0ba902b7-01")
	in.Header.Set("User-Agent", "openai-python")
	ctx := WithRequestID(t.Context(), "req-42")
	ctx, server := StartServerSpan(ctx, tp, in)
	SetRoute(ctx, "POST /v1/chat/completions")

	client := &http.Client{Transport: Transport(nil, tp)}
	out, err := http.NewRequestWithContext(ctx, "POST", upstream.URL+"/openai/v1/chat/completions?key=secret", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Do(out)
	if err != nil {
		t.Fatal(err)
	}
	if len(sr.Ended()) != 0 {
		t.Error("the client span ended before the body was read")
	}
	_, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	EndServerSpan(server, 502)

	if out.Header.Get("traceparent") != "" || out.Header.Get(RequestIDHeader) != "" {
		t.Error("Transport modified the caller's request")
	}
	spans := sr.Ended()
	if len(spans) != 2 {
		t.Fatalf("got %d spans, want 2", len(spans))
	}
	cs, ss := spans[0], spans[1]
	if cs.SpanKind() != trace.SpanKindClient || ss.SpanKind() != trace.SpanKindServer {
		t.Fatalf("kinds %v, %v", cs.SpanKind(), ss.SpanKind())
	}
	if got := ss.SpanContext().TraceID().String(); got != callerTrace {
		t.Errorf("server span trace %s, want the caller's %s", got, callerTrace)
	}
	if ss.Parent().SpanID().String() != "00f067aa0ba902b7" || !ss.Parent().IsRemote() {
		t.Errorf("server span parent %v", ss.Parent())
	}
	if cs.Parent().SpanID() != ss.SpanContext().SpanID() || cs.SpanContext().TraceID() != ss.SpanContext().TraceID() {
		t.Error("the upstream span is not a child of the server span")
	}
	want := "00-" + callerTrace + "-" + cs.SpanContext().SpanID().String() + "-01"
	if got := upstreamHeaders.Get("traceparent"); got != want {
		t.Errorf("upstream traceparent %q, want %q", got, want)
	}
	if got := upstreamHeaders.Get(RequestIDHeader); got != "req-42" {
		t.Errorf("upstream X-Request-Id %q", got)
	}

	if ss.Name() != "POST /v1/chat/completions" || ss.Status().Code != codes.Error {
		t.Errorf("server span %q status %v", ss.Name(), ss.Status())
	}
	sa := attrsOf(ss.Attributes())
	if sa[AttrHTTPStatus].AsInt64() != 502 || sa[AttrHTTPRoute].AsString() != "/v1/chat/completions" ||
		sa[AttrUserAgent].AsString() != "openai-python" || sa[AttrRequestID].AsString() != "req-42" {
		t.Errorf("server span attributes %v", sa)
	}
	ca := attrsOf(cs.Attributes())
	if cs.Name() != "POST" || ca[AttrHTTPStatus].AsInt64() != 200 || cs.Status().Code == codes.Error {
		t.Errorf("client span %q status %v attrs %v", cs.Name(), cs.Status(), ca)
	}
	if full := ca[AttrURLFull].AsString(); full != upstream.URL+"/openai/v1/chat/completions" {
		t.Errorf("url.full %q: the query must not be recorded", full)
	}
}

func TestTransportWithoutTracing(t *testing.T) {
	var got http.Header
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = r.Header.Clone() }))
	defer upstream.Close()
	client := &http.Client{Transport: Transport(nil, nil)}

	for _, tc := range []struct {
		name, preset, want string
	}{
		{"request id sent", "", "req-7"},
		{"caller's header kept", "mine", "mine"},
	} {
		ctx := WithRequestID(t.Context(), "req-7")
		out, _ := http.NewRequestWithContext(ctx, "GET", upstream.URL, nil)
		if tc.preset != "" {
			out.Header.Set(RequestIDHeader, tc.preset)
		}
		resp, err := client.Do(out)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if got.Get(RequestIDHeader) != tc.want || got.Get("traceparent") != "" {
			t.Errorf("%s: upstream headers %v", tc.name, got)
		}
	}
	client.CloseIdleConnections()
}

func TestTransportError(t *testing.T) {
	tp, sr := recorder(t)
	failing := roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("connection refused") })
	ctx, server := StartServerSpan(t.Context(), tp, httptest.NewRequest("GET", "/v1/models", nil))
	out, _ := http.NewRequestWithContext(ctx, "GET", "http://127.0.0.1:1/v1/models", nil)
	if _, err := Transport(failing, tp).RoundTrip(out); err == nil {
		t.Fatal("no error")
	}
	EndServerSpan(server, 200)
	spans := sr.Ended()
	if len(spans) != 2 || spans[0].Status().Code != codes.Error || len(spans[0].Events()) == 0 {
		t.Fatalf("client span: %+v", spans)
	}
	if spans[1].Status().Code == codes.Error {
		t.Error("a 200 server span marked as an error")
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func TestHelpersWithoutASpan(t *testing.T) {
	ctx := t.Context()
	SetRoute(ctx, "GET /v1/models")
	SetModel(ctx, "m", "p")
	SetUsage(ctx, 1, 2)
	ctx, span := StartServerSpan(ctx, nil, httptest.NewRequest("GET", "/", nil))
	EndServerSpan(span, 500)
	if RequestID(ctx) != "" {
		t.Error("request id from nowhere")
	}
	if got := RequestID(WithRequestID(ctx, "x")); got != "x" {
		t.Errorf("RequestID = %q", got)
	}
}

func TestParseKeyValues(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr bool
	}{
		{"", map[string]string{}, false},
		{"a=1", map[string]string{"a": "1"}, false},
		{" a = 1 , b=two%20words ,, c=", map[string]string{"a": "1", "b": "two words", "c": ""}, false},
		{"k=v=w", map[string]string{"k": "v=w"}, false},
		{"novalue", nil, true},
		{"=v", nil, true},
		{"a=%zz", nil, true},
	}
	for _, tt := range tests {
		got, err := parseKeyValues(tt.in)
		if (err != nil) != tt.wantErr {
			t.Errorf("parseKeyValues(%q) err = %v", tt.in, err)
			continue
		}
		if tt.wantErr {
			continue
		}
		if len(got) != len(tt.want) {
			t.Errorf("parseKeyValues(%q) = %v, want %v", tt.in, got, tt.want)
		}
		for k, v := range tt.want {
			if got[k] != v {
				t.Errorf("parseKeyValues(%q)[%q] = %q, want %q", tt.in, k, got[k], v)
			}
		}
	}
}

var itemError = regexp.MustCompile(`^item [0-9]+ has (no '='|an empty or malformed key|a malformed percent-encoded value)$`)

func FuzzParseKeyValues(f *testing.F) {
	for _, s := range []string{"", "a=1", "authorization=Bearer%20x,x-tenant=t1", "k=v=w,,", "=", "a=%zz", "service.name=x,deployment.environment=prod"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := parseKeyValues(s)
		if err != nil {
			// Errors name the item by position only: values may be secrets.
			if !itemError.MatchString(err.Error()) {
				t.Fatalf("unexpected error text: %v", err)
			}
			return
		}
		for k := range m {
			if k == "" {
				t.Fatalf("empty key from %q", s)
			}
		}
	})
}
