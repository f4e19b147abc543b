// Command gwprof is the llama server with net/http/pprof on a second
// listener, for profiling under load. It serves exactly what
// `llama stack run CONFIG --log-format json --log-level info` serves: the
// config is loaded with config.Load and the environment, the handler is
// internal/gateway.New(cfg, opts).Handler() behind the gateway's own
// http.Server (Gateway.Serve), and request logging goes to stderr as JSON
// at info. The profiling endpoints (/debug/pprof/...) are only on -pprof,
// never on the served address.
//
// It prints the pprof base URL as the first line of stdout and exits on
// SIGINT/SIGTERM (or, with -watch-stdin, when stdin closes). benchrun -profile DIR runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // the profiling endpoints, on http.DefaultServeMux
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/gateway"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx); err != nil {
		fmt.Fprintf(os.Stderr, "gwprof: %v\n", err)
		stop()
		os.Exit(1)
	}
}

func run(ctx context.Context) error {
	cfgPath := flag.String("config", "bench/config.yaml", "run config")
	addr := flag.String("addr", "127.0.0.1:8321", "address to serve the API on")
	pprofAddr := flag.String("pprof", "127.0.0.1:0", "address to serve /debug/pprof on")
	watchStdin := flag.Bool("watch-stdin", false, "exit when stdin closes (how benchrun stops it)")
	flag.Parse()

	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg, err := config.Load(*cfgPath, os.LookupEnv)
	if err != nil {
		return fmt.Errorf("config %s: %w", *cfgPath, err)
	}
	gw, err := gateway.New(cfg, gateway.Options{Logger: log, LookupEnv: os.LookupEnv, ShutdownTimeout: 2 * time.Second})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	pln, err := net.Listen("tcp", *pprofAddr)
	if err != nil {
		return err
	}
	psrv := &http.Server{Handler: http.DefaultServeMux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = psrv.Serve(pln) }()
	defer psrv.Close()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if *watchStdin {
		go func() {
			_, _ = io.Copy(io.Discard, os.Stdin)
			cancel()
		}()
	}
	fmt.Printf("http://%s\n", pln.Addr())
	return gw.Serve(ctx, ln)
}
