// Package cli implements the llama command: `llama stack run`,
// `llama stack list-providers` and `llama version`. Everything takes its
// context, arguments, environment and writers, so it runs in tests as it
// runs in the binary.
package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/gateway"
	"github.com/llama-stack-go/llama-stack-go/internal/telemetry"
	"github.com/llama-stack-go/llama-stack-go/internal/version"
)

// Exit codes.
const (
	ExitOK    = 0
	ExitError = 1
	ExitUsage = 2
)

// DefaultPort is the Llama Stack server's port.
const DefaultPort = 8321

const usage = `llama: the Llama Stack server, one static binary.

Usage:
  llama stack run [CONFIG] [flags]   start the server (CONFIG: a run config file,
                                     or "starter"; default: the built-in starter)
  llama stack list-providers         list the provider types this build runs
  llama version                      print the version
  llama --help                       show this help

Flags of "stack run":
  --port N            port to listen on (default: $LLAMA_STACK_PORT, else the
                      config's server.port, else 8321)
  --host HOST         address to listen on (default: the config's server.host,
                      else all interfaces)
  --env NAME=VALUE    set an environment variable for config substitution
                      (repeatable)
  --log-level LEVEL   debug, info, warn or error (default info)
  --log-format FMT    text or json (default text)
`

// Env is how the CLI reads the environment.
type Env = config.LookupEnv

// Run runs the command line args (without the program name) and returns
// the exit code.
func Run(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	if env == nil {
		env = os.LookupEnv
	}
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return ExitUsage
	}
	switch args[0] {
	case "-h", "--help", "-help", "help":
		fmt.Fprint(stdout, usage)
		return ExitOK
	case "version", "--version":
		if len(args) > 1 {
			return usageError(stderr, "version takes no arguments")
		}
		fmt.Fprintf(stdout, "llama %s\n", version.String())
		return ExitOK
	case "stack":
		if len(args) < 2 {
			return usageError(stderr, "stack needs a subcommand: run or list-providers")
		}
		switch args[1] {
		case "run":
			return stackRun(ctx, args[2:], env, stdout, stderr)
		case "list-providers":
			if len(args) > 2 && args[2] != "inference" {
				return usageError(stderr, fmt.Sprintf("unknown API %q (this build serves: inference)", args[2]))
			}
			tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "API\tPROVIDER TYPE\tDESCRIPTION")
			for _, p := range gateway.ProviderTypes() {
				fmt.Fprintf(tw, "%s\t%s\t%s\n", p.API, p.Type, p.Description)
			}
			_ = tw.Flush()
			return ExitOK
		case "-h", "--help":
			fmt.Fprint(stdout, usage)
			return ExitOK
		default:
			return usageError(stderr, fmt.Sprintf("unknown stack subcommand %q", args[1]))
		}
	default:
		return usageError(stderr, fmt.Sprintf("unknown command %q", args[0]))
	}
}

func usageError(stderr io.Writer, msg string) int {
	fmt.Fprintf(stderr, "llama: %s\n\n%s", msg, usage)
	return ExitUsage
}

// envFlag collects --env NAME=VALUE pairs.
type envFlag map[string]string

func (e envFlag) String() string { return "" }

func (e envFlag) Set(v string) error {
	name, val, ok := strings.Cut(v, "=")
	if !ok || name == "" {
		return fmt.Errorf("want NAME=VALUE, got %q", v)
	}
	e[name] = val
	return nil
}

func stackRun(ctx context.Context, args []string, env Env, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("llama stack run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	port := fs.Int("port", DefaultPort, "")
	host := fs.String("host", "", "")
	level := fs.String("log-level", "info", "")
	format := fs.String("log-format", "text", "")
	extra := envFlag{}
	fs.Var(extra, "env", "")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, usage)
		return ExitOK
	}
	if err != nil {
		return usageError(stderr, err.Error())
	}
	if len(pos) > 1 {
		return usageError(stderr, fmt.Sprintf("stack run takes one config, got %d arguments", len(pos)))
	}
	log, err := newLogger(stderr, *level, *format)
	if err != nil {
		return usageError(stderr, err.Error())
	}
	lookup := func(name string) (string, bool) {
		if v, ok := extra[name]; ok {
			return v, true
		}
		return env(name)
	}

	cfg, source, err := loadConfig(pos, lookup)
	if err != nil {
		fmt.Fprintf(stderr, "llama: invalid config %s:\n%s\n", source, indent(err.Error()))
		return ExitError
	}
	log.Info("config loaded", slog.String("source", source), slog.String("distro", cfg.Name()))

	portSet := false
	fs.Visit(func(f *flag.Flag) { portSet = portSet || f.Name == "port" })
	listenPort := DefaultPort
	switch v, _ := lookup("LLAMA_STACK_PORT"); {
	case portSet:
		listenPort = *port
	case v != "":
		p, err := strconv.Atoi(v)
		if err != nil || p < 0 || p > 65535 {
			fmt.Fprintf(stderr, "llama: LLAMA_STACK_PORT=%q is not a port number\n", v)
			return ExitError
		}
		listenPort = p
	case cfg.Server.Port != 0:
		listenPort = cfg.Server.Port
	}
	if *port < 0 || *port > 65535 {
		return usageError(stderr, fmt.Sprintf("--port %d is not a port number", *port))
	}
	listenHost := *host
	if listenHost == "" {
		listenHost = cfg.Server.Host
	}

	tp, shutdownTracing, err := telemetry.Setup(ctx, lookup, log)
	if err != nil {
		fmt.Fprintf(stderr, "llama: tracing: %v\n", err)
		return ExitError
	}
	defer func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := shutdownTracing(sctx); err != nil {
			log.Warn("traces not flushed", slog.String("error", err.Error()))
		}
	}()
	tlsCfg, err := serverTLS(&cfg.Server)
	if err != nil {
		fmt.Fprintf(stderr, "llama: %v\n", err)
		return ExitError
	}
	gw, err := gateway.New(cfg, gateway.Options{Logger: log, LookupEnv: lookup, TracerProvider: tp})
	if err != nil {
		fmt.Fprintf(stderr, "llama: %v\n", err)
		return ExitError
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(listenHost, strconv.Itoa(listenPort)))
	if err != nil {
		_ = gw.Close()
		fmt.Fprintf(stderr, "llama: listen: %v\n", err)
		return ExitError
	}
	if tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	if err := gw.Serve(ctx, ln); err != nil {
		fmt.Fprintf(stderr, "llama: %v\n", err)
		return ExitError
	}
	return ExitOK
}

// loadConfig reads the named config, or the built-in starter.
func loadConfig(pos []string, env config.LookupEnv) (*config.Config, string, error) {
	if len(pos) == 0 || pos[0] == "starter" {
		if len(pos) == 1 {
			if _, err := os.Stat(pos[0]); err == nil {
				cfg, err := config.Load(pos[0], env)
				return cfg, pos[0], err
			}
		}
		cfg, err := config.Parse(config.Starter(), env)
		return cfg, "built-in starter", err
	}
	cfg, err := config.Load(pos[0], env)
	return cfg, pos[0], err
}

// parseInterspersed parses flags that may come before or after the
// positional arguments, as `llama stack run ./config.yaml --port 8322`.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		rest := fs.Args()
		if len(rest) == 0 {
			return pos, nil
		}
		if rest[0] == "--" {
			return append(pos, rest[1:]...), nil
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: want debug, info, warn or error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	default:
		return nil, fmt.Errorf("--log-format %q: want text or json", format)
	}
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}

// serverTLS loads server.tls_certfile and tls_keyfile (and, with
// tls_cafile, requires client certificates signed by that CA); nil when
// the server speaks plain HTTP.
func serverTLS(s *config.Server) (*tls.Config, error) {
	if s.TLSCertfile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(s.TLSCertfile, s.TLSKeyfile)
	if err != nil {
		return nil, fmt.Errorf("server.tls_certfile / tls_keyfile: %w", err)
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, NextProtos: []string{"http/1.1"}}
	if s.TLSCAFile != "" {
		pem, err := os.ReadFile(s.TLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("server.tls_cafile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("server.tls_cafile: %s holds no PEM certificate", s.TLSCAFile)
		}
		c.ClientCAs, c.ClientAuth = pool, tls.RequireAndVerifyClientCert
	}
	return c, nil
}
