// Command benchrun is the gateway benchmark: one command that builds the
// server from the tree, starts a mock Bedrock upstream, a bare
// httputil.ReverseProxy and the server, loads the three side by side and
// prints a Markdown table of latency, throughput, streaming and memory
// figures against the targets of issue #6.
//
//	go run ./bench/cmd/benchrun            # full run, about 2.5 minutes
//	go run ./bench/cmd/benchrun -quick     # smoke run, a few seconds
//	go run ./bench/cmd/benchrun -profile bench/out   # also save CPU and allocation profiles
//
// With two CPUs or more it re-executes itself under `taskset -c <load CPU>`
// and runs the proxy and the server under `taskset -c <server CPU>` with
// GOMAXPROCS=1. The subcommands "mock" and "proxy" are the child processes
// it starts; they are not meant to be run by hand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/llama-stack-go/llama-stack-go/bench/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "mock":
			return harness.MockMain(ctx, args[1:], stdin, stdout, stderr)
		case "proxy":
			return harness.ProxyMain(ctx, args[1:], stdin, stdout, stderr)
		}
	}
	if err := bench(ctx, args, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "benchrun: %v\n", err)
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 1
	}
	return 0
}

// flags are benchrun's command line.
type flags struct {
	quick                                        bool
	rates                                        string
	rateDur, tputDur, streamDur, warmup, timeout time.Duration
	conns, chunks, openStreams                   int
	streamRate                                   float64
	chunkDelay, slowDelay                        time.Duration
	profile                                      string
	profileDur, quietWait                        time.Duration
	retries, slices                              int
	out                                          string
	noPin, keep, mockProcess                     bool
	// Set by benchrun itself when it re-executes under taskset.
	serverBin, profBin, work, config, command string
	baselineBin                               string
	serverCPU, loadCPU                        int
}

func parse(args []string, stderr io.Writer) (*flags, *flag.FlagSet, error) {
	f := &flags{}
	full := harness.Full()
	fs := flag.NewFlagSet("benchrun", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&f.quick, "quick", false, "smoke run of a few seconds (figures mean nothing)")
	fs.StringVar(&f.rates, "rates", "500,2000", "fixed rates of the non-streamed phases, req/s")
	fs.DurationVar(&f.rateDur, "rate-duration", full.RateDuration, "duration of each fixed-rate phase per target")
	fs.DurationVar(&f.tputDur, "tput-duration", full.TputDuration, "duration of the throughput phase per target")
	fs.DurationVar(&f.streamDur, "stream-duration", full.StreamDuration, "duration of the streaming phase per target")
	fs.DurationVar(&f.warmup, "warmup", full.Warmup, "warm-up load per target")
	fs.IntVar(&f.conns, "conns", full.Conns, "connections of the throughput phase")
	fs.Float64Var(&f.streamRate, "stream-rate", full.StreamRate, "streams per second in the streaming phase")
	fs.IntVar(&f.chunks, "chunks", full.Chunks, "chunks per streamed answer")
	fs.DurationVar(&f.chunkDelay, "chunk-delay", full.ChunkDelay, "pause between chunks in the streaming phase")
	fs.IntVar(&f.openStreams, "open-streams", full.OpenStreams, "streams held open at once in the memory phase")
	fs.DurationVar(&f.slowDelay, "slow-chunk-delay", full.SlowChunkDelay, "pause between chunks in the memory phase")
	fs.StringVar(&f.profile, "profile", "", "directory to write CPU and allocation profiles of the server to (adds a phase)")
	fs.DurationVar(&f.profileDur, "profile-duration", full.ProfileDuration, "length of each CPU profile")
	fs.StringVar(&f.out, "out", "", "also write the report to this file")
	fs.DurationVar(&f.quietWait, "quiet-wait", full.QuietWait, "most to spend, in all, waiting for a quiet machine and repeating disturbed measurements")
	fs.IntVar(&f.retries, "retries", full.Retries, "repeats of a measurement other processes disturbed")
	fs.IntVar(&f.slices, "slices", full.Slices, "rounds each phase is split into, the targets taking turns")
	fs.BoolVar(&f.noPin, "no-pin", false, "do not pin processes to CPUs")
	fs.BoolVar(&f.keep, "keep", false, "keep the scratch directory (server logs)")
	fs.BoolVar(&f.mockProcess, "mock-process", false, "run the mock upstream as a process of its own on the load CPU (default: inside the load driver)")
	fs.DurationVar(&f.timeout, "timeout", 6*time.Minute, "give up after this long")
	fs.StringVar(&f.serverBin, "server-bin", "", "use this llama binary instead of building one")
	fs.StringVar(&f.baselineBin, "baseline-bin", "", "also measure this llama binary (an older build), side by side, as the target \"baseline\"")
	fs.StringVar(&f.profBin, "prof-bin", "", "internal: the built profiling server")
	fs.StringVar(&f.work, "work", "", "internal: scratch directory")
	fs.StringVar(&f.config, "config", "", "run config for the server (default: bench/config.yaml of the module)")
	fs.StringVar(&f.command, "command", "", "internal: the command line, for the report")
	fs.IntVar(&f.serverCPU, "server-cpu", -1, "internal: CPU of the proxy and the server")
	fs.IntVar(&f.loadCPU, "load-cpu", -1, "internal: CPU of the load driver and the mock")
	if err := fs.Parse(args); err != nil {
		return nil, nil, err
	}
	if fs.NArg() > 0 {
		return nil, nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return f, fs, nil
}

func bench(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, fs, err := parse(args, stderr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	start := time.Now()
	if f.command == "" {
		f.command = strings.TrimSpace("go run ./bench/cmd/benchrun " + strings.Join(args, " "))
	}
	pinned := os.Getenv(harness.PinnedEnv) != ""
	if !pinned {
		if err := prepare(ctx, f, stderr); err != nil {
			return err
		}
		if f.serverCPU >= 0 {
			// Re-execute on the load CPU; the exec'd process owns f.work.
			return reexec(f, args, time.Until(start.Add(f.timeout)))
		}
	}
	if !f.keep && f.work != "" {
		defer os.RemoveAll(f.work)
	}
	cfg := harness.Full()
	if f.quick {
		cfg = harness.Quick()
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if set["rates"] || !f.quick {
		cfg.Rates = nil
		for _, s := range strings.Split(f.rates, ",") {
			r, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || r <= 0 {
				return fmt.Errorf("-rates: %q is not a positive rate", s)
			}
			cfg.Rates = append(cfg.Rates, r)
		}
	}
	override := func(name string, apply func()) {
		if set[name] || !f.quick {
			apply()
		}
	}
	override("rate-duration", func() { cfg.RateDuration = f.rateDur })
	override("tput-duration", func() { cfg.TputDuration = f.tputDur })
	override("stream-duration", func() { cfg.StreamDuration = f.streamDur })
	override("warmup", func() { cfg.Warmup = f.warmup })
	override("conns", func() { cfg.Conns = f.conns })
	override("stream-rate", func() { cfg.StreamRate = f.streamRate })
	override("chunks", func() { cfg.Chunks = f.chunks })
	override("chunk-delay", func() { cfg.ChunkDelay = f.chunkDelay })
	override("open-streams", func() { cfg.OpenStreams = f.openStreams })
	override("slow-chunk-delay", func() { cfg.SlowChunkDelay = f.slowDelay })
	override("profile-duration", func() { cfg.ProfileDuration = f.profileDur })
	override("quiet-wait", func() { cfg.QuietWait = f.quietWait })
	override("retries", func() { cfg.Retries = f.retries })
	override("slices", func() { cfg.Slices = f.slices })
	self, err := os.Executable()
	if err != nil {
		return err
	}
	cfg.ServerBin, cfg.ProfBin, cfg.Self, cfg.ConfigPath, cfg.Work = f.serverBin, f.profBin, self, f.config, f.work
	if f.baselineBin != "" {
		if cfg.BaselineBin, err = filepath.Abs(f.baselineBin); err != nil {
			return err
		}
	}
	cfg.ProfileDir, cfg.Command, cfg.Progress = f.profile, f.command, stderr
	cfg.Pin, cfg.ServerCPU, cfg.LoadCPU, cfg.MockProcess = pinned, f.serverCPU, f.loadCPU, f.mockProcess
	if pinned {
		if cfg.Taskset, err = exec.LookPath("taskset"); err != nil {
			return err
		}
	}
	rep, err := harness.Run(ctx, cfg)
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%w (after %s)", err, time.Since(start).Round(time.Second))
		}
		return err
	}
	rep.Render(stdout)
	if f.out != "" {
		o, err := os.Create(f.out)
		if err != nil {
			return err
		}
		rep.Render(o)
		if err := o.Close(); err != nil {
			return err
		}
	}
	return nil
}

// prepare builds what the run needs, finds the config, and decides the
// CPUs: with two allowed CPUs or more and taskset present, the first
// serves and the second loads.
func prepare(ctx context.Context, f *flags, stderr io.Writer) error {
	root, err := moduleRoot(ctx)
	if err != nil {
		return err
	}
	if f.config == "" {
		f.config = filepath.Join(root, "bench", "config.yaml")
	}
	if f.config, err = filepath.Abs(f.config); err != nil {
		return err
	}
	if f.work == "" {
		if f.work, err = os.MkdirTemp("", "benchrun-"); err != nil {
			return err
		}
	}
	if f.profile != "" {
		if f.profile, err = filepath.Abs(f.profile); err != nil {
			return err
		}
	}
	build := func(out, pkg string) error {
		fmt.Fprintf(stderr, "benchrun: go build -o %s %s\n", out, pkg)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
		cmd.Dir, cmd.Stdout, cmd.Stderr = root, stderr, stderr
		return cmd.Run()
	}
	if f.serverBin == "" {
		f.serverBin = filepath.Join(f.work, "llama")
		if err := build(f.serverBin, "./cmd/llama"); err != nil {
			return fmt.Errorf("build the server: %w", err)
		}
	}
	if f.profile != "" && f.profBin == "" {
		f.profBin = filepath.Join(f.work, "gwprof")
		if err := build(f.profBin, "./bench/cmd/gwprof"); err != nil {
			return fmt.Errorf("build the profiling server: %w", err)
		}
	}
	cpus := harness.AllowedCPUs()
	_, terr := exec.LookPath("taskset")
	switch {
	case f.noPin:
		fmt.Fprintln(stderr, "benchrun: -no-pin: running unpinned")
	case len(cpus) < 2:
		fmt.Fprintln(stderr, "benchrun: one CPU: running unpinned")
	case terr != nil:
		fmt.Fprintln(stderr, "benchrun: taskset not found: running unpinned")
	default:
		f.serverCPU, f.loadCPU = cpus[0], cpus[1]
	}
	return nil
}

// moduleRoot returns the directory of the main module's go.mod.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %w", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run benchrun inside the llama-stack-go module")
	}
	return filepath.Dir(gomod), nil
}

// reexec replaces this process with itself under taskset on the load CPU,
// passing on what prepare found.
func reexec(f *flags, args []string, left time.Duration) error {
	taskset, err := exec.LookPath("taskset")
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	argv := append([]string{"taskset", "-c", strconv.Itoa(f.loadCPU), self}, args...)
	argv = append(argv,
		"-server-bin", f.serverBin, "-work", f.work, "-config", f.config, "-command", f.command,
		"-server-cpu", strconv.Itoa(f.serverCPU), "-load-cpu", strconv.Itoa(f.loadCPU),
		"-timeout", max(left, time.Second).String())
	if f.profBin != "" {
		argv = append(argv, "-prof-bin", f.profBin, "-profile", f.profile)
	}
	env := append(os.Environ(), harness.PinnedEnv+"=1")
	return syscall.Exec(taskset, argv, env)
}
