package harness

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"time"

	"github.com/llama-stack-go/llama-stack-go/bench/mockup"
)

// MockMain runs the mock upstream as a process of its own: it listens on
// -addr, prints its base URL as the first line of stdout and serves until
// ctx ends or stdin closes (the harness closing it, or dying). It returns
// the exit code.
func MockMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mock", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	chunks := fs.Int("chunks", mockup.RecordedChunks, "chunks per streamed answer")
	delay := fs.Duration("chunk-delay", 0, "pause between chunks")
	first := fs.Duration("first-delay", 0, "pause before the first chunk")
	latency := fs.Duration("latency", 0, "pause before a non-streamed answer")
	unique := fs.Bool("unique-ids", false, "give every answer an id of its own")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	m, err := mockup.New(mockup.Options{Chunks: *chunks, ChunkDelay: *delay, FirstChunkDelay: *first, Latency: *latency, UniqueIDs: *unique})
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return serve(ctx, *addr, m, stdin, stdout, stderr)
}

// ProxyMain runs the floor: a bare httputil.ReverseProxy to -upstream,
// with the same connection pool sizes as the gateway's upstream client and
// nothing else. It serves like MockMain.
func ProxyMain(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("proxy", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	upstream := fs.String("upstream", "", "base URL of the upstream")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	u, err := url.Parse(*upstream)
	if err != nil || u.Host == "" {
		fmt.Fprintf(stderr, "proxy: -upstream %q is not a URL\n", *upstream)
		return 2
	}
	return serve(ctx, *addr, NewFloorProxy(u), stdin, stdout, stderr)
}

// NewFloorProxy returns the bare reverse proxy the gateway is compared
// with: httputil.ReverseProxy with SetURL and a Transport whose pool sizes
// match the gateway's upstream client (1024 idle, 256 per host), so that
// neither side churns connections.
func NewFloorProxy(upstream *url.URL) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(upstream) },
		Transport: &http.Transport{
			Proxy:               nil,
			DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
			MaxIdleConns:        1024,
			MaxIdleConnsPerHost: 256,
			IdleConnTimeout:     90 * time.Second,
		},
	}
}

// serve serves h on addr with the gateway's server timeouts until ctx ends
// or stdin reaches EOF.
func serve(ctx context.Context, addr string, h http.Handler, stdin io.Reader, stdout, stderr io.Writer) int {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if stdin != nil {
		go func() {
			_, _ = io.Copy(io.Discard, stdin)
			cancel()
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	fmt.Fprintf(stdout, "http://%s\n", ln.Addr())
	select {
	case err := <-errc:
		fmt.Fprintln(stderr, err)
		return 1
	case <-ctx.Done():
	}
	sctx, scancel := context.WithTimeout(context.Background(), time.Second)
	defer scancel()
	if err := srv.Shutdown(sctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
		fmt.Fprintln(stderr, err)
	}
	_ = srv.Close()
	return 0
}
