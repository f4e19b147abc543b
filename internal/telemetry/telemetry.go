// Package telemetry sets up OpenTelemetry tracing from the standard OTEL_*
// environment variables and provides the spans the server makes: one
// server span per request and a client span per upstream call (an
// http.RoundTripper that also propagates the W3C trace context and the
// request id upstream).
//
// Tracing is off, and costs next to nothing, unless an OTLP endpoint is
// configured (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT); spans then go out over OTLP/HTTP
// through a batch span processor. Nothing here sets the OpenTelemetry
// global tracer provider or propagator: the provider is passed explicitly.
package telemetry

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/llama-stack-go/llama-stack-go/internal/version"
)

// ScopeName is the instrumentation scope of the server's spans.
const ScopeName = "github.com/llama-stack-go/llama-stack-go"

// DefaultServiceName is service.name when OTEL_SERVICE_NAME (or
// service.name in OTEL_RESOURCE_ATTRIBUTES) does not set one.
const DefaultServiceName = "llama-stack"

// ErrConfig is wrapped by the errors Setup returns for a bad OTEL_*
// variable.
var ErrConfig = errors.New("invalid OpenTelemetry configuration")

// Setup returns the tracer provider the environment asks for and the
// function that flushes and stops it (call it at shutdown, with a deadline).
//
// It reads OTEL_SDK_DISABLED, OTEL_TRACES_EXPORTER (otlp or none),
// OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT, _PROTOCOL (http/protobuf or
// http/json; grpc is not supported), _HEADERS, _TIMEOUT, _COMPRESSION,
// _CERTIFICATE, _CLIENT_CERTIFICATE and _CLIENT_KEY, OTEL_SERVICE_NAME,
// OTEL_RESOURCE_ATTRIBUTES, OTEL_TRACES_SAMPLER and _ARG, and OTEL_BSP_*,
// all through lookupEnv. Without an endpoint, or when disabled, it returns
// a no-op provider. A malformed variable is an error wrapping ErrConfig
// that names it (never its value, which may hold credentials).
//
// When tracing is on, Setup routes OpenTelemetry's internal errors (failed
// exports) to logger at warn level, through otel.SetErrorHandler, which is
// process-wide.
func Setup(ctx context.Context, lookupEnv func(string) (string, bool), logger *slog.Logger) (trace.TracerProvider, func(context.Context) error, error) {
	if lookupEnv == nil {
		lookupEnv = func(string) (string, bool) { return "", false }
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	env := func(name string) string {
		v, _ := lookupEnv(name)
		return strings.TrimSpace(v)
	}
	off := func(why string) (trace.TracerProvider, func(context.Context) error, error) {
		logger.LogAttrs(ctx, slog.LevelDebug, "tracing off", slog.String("reason", why))
		return noop.NewTracerProvider(), func(context.Context) error { return nil }, nil
	}
	if strings.EqualFold(env("OTEL_SDK_DISABLED"), "true") {
		return off("OTEL_SDK_DISABLED is true")
	}
	if exp := env("OTEL_TRACES_EXPORTER"); exp != "" {
		otlp := false
		for e := range strings.SplitSeq(exp, ",") {
			switch e = strings.TrimSpace(e); e {
			case "otlp":
				otlp = true
			case "none":
			default:
				logger.LogAttrs(ctx, slog.LevelWarn, "OTEL_TRACES_EXPORTER names an exporter this server does not have; only otlp is supported", slog.String("exporter", e))
			}
		}
		if !otlp {
			return off("OTEL_TRACES_EXPORTER does not include otlp")
		}
	}
	endpoint, err := tracesEndpoint(env)
	if err != nil {
		return nil, nil, err
	}
	if endpoint == "" {
		return off("no OTLP endpoint (OTEL_EXPORTER_OTLP_ENDPOINT) is set")
	}

	opts, client, err := exporterOptions(env, endpoint)
	if err != nil {
		return nil, nil, err
	}
	sampler, err := samplerFromEnv(env)
	if err != nil {
		return nil, nil, err
	}
	res, err := resourceFromEnv(env)
	if err != nil {
		return nil, nil, err
	}
	bsp, err := batchOptions(env)
	if err != nil {
		return nil, nil, err
	}
	exporter, err := otlptracehttp.New(ctx, opts...)
	if err != nil {
		return nil, nil, fmt.Errorf("create OTLP trace exporter: %w", err)
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exporter, bsp...),
		sdktrace.WithSampler(sampler),
		sdktrace.WithResource(res),
	)
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.LogAttrs(context.Background(), slog.LevelWarn, "opentelemetry", slog.String("error", err.Error()))
	}))
	u, _ := url.Parse(endpoint)
	logger.LogAttrs(ctx, slog.LevelInfo, "tracing on", slog.String("otlp_endpoint", u.Scheme+"://"+u.Host+u.Path))
	shutdown := func(ctx context.Context) error {
		defer client.CloseIdleConnections()
		if err := tp.Shutdown(ctx); err != nil {
			return fmt.Errorf("shut down tracing: %w", err)
		}
		return nil
	}
	return tp, shutdown, nil
}

// configError reports a malformed variable.
func configError(name, problem string) error {
	return fmt.Errorf("%w: %s %s", ErrConfig, name, problem)
}

// signalEnv returns the traces-specific variable, else the general one,
// and the name of the one that was set.
func signalEnv(env func(string) string, suffix string) (value, name string) {
	if v := env("OTEL_EXPORTER_OTLP_TRACES_" + suffix); v != "" {
		return v, "OTEL_EXPORTER_OTLP_TRACES_" + suffix
	}
	return env("OTEL_EXPORTER_OTLP_" + suffix), "OTEL_EXPORTER_OTLP_" + suffix
}

// tracesEndpoint returns the URL spans are sent to: the traces endpoint as
// is, or the general endpoint with /v1/traces appended; "" when neither is
// set.
func tracesEndpoint(env func(string) string) (string, error) {
	raw, name := env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
	signal := raw != ""
	if !signal {
		raw, name = env("OTEL_EXPORTER_OTLP_ENDPOINT"), "OTEL_EXPORTER_OTLP_ENDPOINT"
	}
	if raw == "" {
		return "", nil
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", configError(name, "must be an http or https URL such as http://collector:4318")
	}
	if !signal {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/v1/traces"
	}
	return u.String(), nil
}

// exporterOptions turns the OTLP variables into exporter options, with an
// HTTP client of our own so that shutdown can close its connections.
func exporterOptions(env func(string) string, endpoint string) ([]otlptracehttp.Option, *http.Client, error) {
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(endpoint)}
	switch p, name := signalEnv(env, "PROTOCOL"); p {
	case "", "http/protobuf":
		opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingProtobuf))
	case "http/json":
		opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
	default:
		return nil, nil, configError(name, fmt.Sprintf("%q is not supported: use http/protobuf or http/json (OTLP over gRPC is not built in)", p))
	}
	headers := map[string]string{}
	for _, suffix := range []string{"HEADERS", "TRACES_HEADERS"} {
		name := "OTEL_EXPORTER_OTLP_" + suffix
		kv, err := parseKeyValues(env(name))
		if err != nil {
			return nil, nil, configError(name, err.Error())
		}
		for k, v := range kv {
			headers[k] = v
		}
	}
	if len(headers) > 0 {
		opts = append(opts, otlptracehttp.WithHeaders(headers))
	}
	switch c, name := signalEnv(env, "COMPRESSION"); c {
	case "", "none":
	case "gzip":
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	default:
		return nil, nil, configError(name, fmt.Sprintf("%q is not supported: use gzip or none", c))
	}
	timeout := 10 * time.Second
	if v, name := signalEnv(env, "TIMEOUT"); v != "" {
		ms, err := strconv.ParseUint(v, 10, 31)
		if err != nil {
			return nil, nil, configError(name, "must be a whole number of milliseconds")
		}
		timeout = time.Duration(ms) * time.Millisecond
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tlsConf, err := tlsFromEnv(env)
	if err != nil {
		return nil, nil, err
	}
	tr.TLSClientConfig = tlsConf
	client := &http.Client{Transport: tr, Timeout: timeout}
	opts = append(opts, otlptracehttp.WithHTTPClient(client), otlptracehttp.WithTimeout(timeout))
	return opts, client, nil
}

// tlsFromEnv builds the TLS settings of the exporter's client.
func tlsFromEnv(env func(string) string) (*tls.Config, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if path, name := signalEnv(env, "CERTIFICATE"); path != "" {
		pem, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("%w: %s: %w", ErrConfig, name, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, configError(name, "names a file with no PEM certificate")
		}
		conf.RootCAs = pool
	}
	cert, certName := signalEnv(env, "CLIENT_CERTIFICATE")
	key, keyName := signalEnv(env, "CLIENT_KEY")
	switch {
	case cert != "" && key != "":
		pair, err := tls.LoadX509KeyPair(cert, key)
		if err != nil {
			return nil, fmt.Errorf("%w: %s and %s: %w", ErrConfig, certName, keyName, err)
		}
		conf.Certificates = []tls.Certificate{pair}
	case cert != "":
		return nil, configError(certName, "needs "+keyName+" too")
	case key != "":
		return nil, configError(keyName, "needs "+certName+" too")
	}
	return conf, nil
}

// samplerFromEnv reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG;
// the default is parentbased_always_on.
func samplerFromEnv(env func(string) string) (sdktrace.Sampler, error) {
	ratio := func() (float64, error) {
		v := env("OTEL_TRACES_SAMPLER_ARG")
		if v == "" {
			return 1, nil
		}
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || !(f >= 0 && f <= 1) {
			return 0, configError("OTEL_TRACES_SAMPLER_ARG", "must be a number between 0 and 1")
		}
		return f, nil
	}
	switch s := strings.ToLower(env("OTEL_TRACES_SAMPLER")); s {
	case "", "parentbased_always_on":
		return sdktrace.ParentBased(sdktrace.AlwaysSample()), nil
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample()), nil
	case "always_on":
		return sdktrace.AlwaysSample(), nil
	case "always_off":
		return sdktrace.NeverSample(), nil
	case "traceidratio", "parentbased_traceidratio":
		r, err := ratio()
		if err != nil {
			return nil, err
		}
		if s == "traceidratio" {
			return sdktrace.TraceIDRatioBased(r), nil
		}
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(r)), nil
	default:
		return nil, configError("OTEL_TRACES_SAMPLER", fmt.Sprintf("%q is not a known sampler (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, parentbased_traceidratio)", s))
	}
}

// resourceFromEnv describes the service: OTEL_RESOURCE_ATTRIBUTES, then
// OTEL_SERVICE_NAME, with service.name defaulting to DefaultServiceName
// and service.version the build's.
func resourceFromEnv(env func(string) string) (*resource.Resource, error) {
	kv, err := parseKeyValues(env("OTEL_RESOURCE_ATTRIBUTES"))
	if err != nil {
		return nil, configError("OTEL_RESOURCE_ATTRIBUTES", err.Error())
	}
	if n := env("OTEL_SERVICE_NAME"); n != "" {
		kv["service.name"] = n
	}
	if kv["service.name"] == "" {
		kv["service.name"] = DefaultServiceName
	}
	if kv["service.version"] == "" {
		kv["service.version"] = version.String()
	}
	attrs := make([]attribute.KeyValue, 0, len(kv))
	for k, v := range kv {
		attrs = append(attrs, attribute.String(k, v))
	}
	return resource.NewSchemaless(attrs...), nil
}

// batchOptions reads OTEL_BSP_SCHEDULE_DELAY and OTEL_BSP_EXPORT_TIMEOUT
// (milliseconds), OTEL_BSP_MAX_QUEUE_SIZE and
// OTEL_BSP_MAX_EXPORT_BATCH_SIZE.
func batchOptions(env func(string) string) ([]sdktrace.BatchSpanProcessorOption, error) {
	var opts []sdktrace.BatchSpanProcessorOption
	for _, v := range []struct {
		name  string
		ms    bool
		apply func(n int) sdktrace.BatchSpanProcessorOption
	}{
		{"OTEL_BSP_SCHEDULE_DELAY", true, func(n int) sdktrace.BatchSpanProcessorOption {
			return sdktrace.WithBatchTimeout(time.Duration(n) * time.Millisecond)
		}},
		{"OTEL_BSP_EXPORT_TIMEOUT", true, func(n int) sdktrace.BatchSpanProcessorOption {
			return sdktrace.WithExportTimeout(time.Duration(n) * time.Millisecond)
		}},
		{"OTEL_BSP_MAX_QUEUE_SIZE", false, sdktrace.WithMaxQueueSize},
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", false, sdktrace.WithMaxExportBatchSize},
	} {
		s := env(v.name)
		if s == "" {
			continue
		}
		n, err := strconv.ParseUint(s, 10, 31)
		if err != nil || n == 0 {
			unit := "a positive whole number"
			if v.ms {
				unit += " of milliseconds"
			}
			return nil, configError(v.name, "must be "+unit)
		}
		opts = append(opts, v.apply(int(n)))
	}
	return opts, nil
}

// parseKeyValues parses the key=value,key=value lists of
// OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES: keys and values
// are trimmed and percent-decoded; empty items are skipped. Errors name the
// item by position, never by content.
func parseKeyValues(s string) (map[string]string, error) {
	out := map[string]string{}
	if strings.TrimSpace(s) == "" {
		return out, nil
	}
	i := 0
	for item := range strings.SplitSeq(s, ",") {
		i++
		if strings.TrimSpace(item) == "" {
			continue
		}
		k, v, found := strings.Cut(item, "=")
		if !found {
			return nil, fmt.Errorf("item %d has no '='", i)
		}
		key, err := url.PathUnescape(strings.TrimSpace(k))
		if err != nil || key == "" {
			return nil, fmt.Errorf("item %d has an empty or malformed key", i)
		}
		val, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, fmt.Errorf("item %d has a malformed percent-encoded value", i)
		}
		out[key] = val
	}
	return out, nil
}

// propagator carries the W3C trace context and baggage.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{})

// Propagator returns the propagator the server uses: W3C trace context
// and baggage.
func Propagator() propagation.TextMapPropagator { return propagator }
