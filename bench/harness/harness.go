// Package harness runs the gateway benchmark: the mock upstream directly,
// a bare httputil.ReverseProxy (the floor) and the llama server built from
// the tree, side by side in one run, under the same open-loop and
// closed-loop load, and renders the comparison as a Markdown report.
//
// Where the machine has two CPUs or more, the proxy and the gateway run
// pinned to one CPU with GOMAXPROCS=1 and the load driver and the mock
// share another (taskset). Every child is stopped when the run ends, and
// gets SIGKILL if the harness dies.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/llama-stack-go/llama-stack-go/bench/load"
	"github.com/llama-stack-go/llama-stack-go/bench/mockup"
)

// PinnedEnv is the environment variable benchrun sets when it re-executes
// itself under taskset on the load CPU.
const PinnedEnv = "BENCHRUN_PINNED"

// Config is one benchmark run.
type Config struct {
	// ServerBin is the llama binary built from the tree.
	ServerBin string
	// BaselineBin, if set, is another llama binary (an older build, say)
	// measured side by side with ServerBin as the target "baseline", in
	// the same rounds, so that two builds are compared under the same
	// conditions. It takes no part in the memory phase or the targets.
	BaselineBin string
	// ProfBin, if set with ProfileDir, is the profiling variant of the
	// server (bench/cmd/gwprof).
	ProfBin string
	// Self is the benchrun binary; the harness runs its "proxy"
	// subcommand (and, with MockProcess, its "mock" subcommand) as child
	// processes.
	Self string
	// ConfigPath is the run config the gateway serves (bench/config.yaml).
	ConfigPath string
	// Work is a scratch directory for logs.
	Work string
	// Pin pins processes to CPUs with taskset.
	Pin bool
	// ServerCPU is the CPU of the bare proxy and the gateway when pinned.
	ServerCPU int
	// LoadCPU is the CPU of the load driver (and the mock) when pinned.
	LoadCPU int
	// Taskset is the path of taskset.
	Taskset string
	// MockProcess runs the mock upstream as a process of its own (pinned
	// to LoadCPU) instead of inside the load driver's process. In-process
	// is the default: one Go scheduler then shares the load CPU between
	// driver and mock, instead of the kernel time-slicing two processes,
	// which shows up as milliseconds of latency tail on every target.
	MockProcess bool

	// Rates are the fixed rates of the non-streamed latency phases, in
	// requests per second.
	Rates []float64
	// RateDuration is how long each fixed-rate phase measures each target.
	RateDuration time.Duration
	// Conns is the connection count of the throughput phase.
	Conns int
	// TputDuration is how long the throughput phase measures each target.
	TputDuration time.Duration
	// StreamRate is the streams per second of the streaming phase.
	StreamRate float64
	// StreamDuration is how long the streaming phase measures each target.
	StreamDuration time.Duration
	// Chunks is the number of chunks of each stream, before [DONE].
	Chunks int
	// ChunkDelay is the pause between two chunks of a stream.
	ChunkDelay time.Duration
	// OpenStreams is how many streams are held open at once, against a
	// slow mock, while the server's memory is read.
	OpenStreams int
	// OpenRate is how many of the OpenStreams are opened per second.
	OpenRate float64
	// SlowChunkDelay is the pause between chunks of the slow mock.
	SlowChunkDelay time.Duration
	// Slices is how many rounds each phase is split into; each round
	// measures every target for its share of the phase's duration.
	Slices int
	// Warmup is the load each target gets before it is measured.
	Warmup time.Duration
	// QuietWait is the most the run spends, in all, waiting for the
	// machine to be quiet (less than 10% of a CPU used by anything but the
	// benchmark) and repeating measurements that were disturbed. The
	// machine may be shared with workloads this process cannot see (other
	// containers); each row of the report says how much CPU they took.
	QuietWait time.Duration
	// Retries is how often one disturbed measurement may be repeated.
	Retries int
	// ProfileDir, when set, adds a profiling phase that writes CPU,
	// allocation and heap profiles of the server under load there.
	ProfileDir string
	// ProfileDuration is the length of each CPU profile.
	ProfileDuration time.Duration

	// Command is the command line, for the report.
	Command string
	// Progress receives one line per phase.
	Progress io.Writer
}

// Full returns the configuration of a full run (about two and a half
// minutes).
func Full() Config {
	return Config{
		Rates: []float64{500, 2000}, RateDuration: 10 * time.Second,
		Conns: 64, TputDuration: 8 * time.Second,
		StreamRate: 100, StreamDuration: 8 * time.Second, Chunks: mockup.RecordedChunks, ChunkDelay: 5 * time.Millisecond,
		OpenStreams: 1000, OpenRate: 1000, SlowChunkDelay: time.Second,
		Warmup: time.Second, ProfileDuration: 10 * time.Second,
		QuietWait: 45 * time.Second, Retries: 2, Slices: 4,
	}
}

// Quick returns the configuration of a smoke run of a few seconds: every
// phase, with little load. Its figures mean nothing.
func Quick() Config {
	return Config{
		Rates: []float64{500, 2000}, RateDuration: 300 * time.Millisecond,
		Conns: 64, TputDuration: 300 * time.Millisecond,
		StreamRate: 100, StreamDuration: 300 * time.Millisecond, Chunks: 5, ChunkDelay: time.Millisecond,
		OpenStreams: 100, OpenRate: 1000, SlowChunkDelay: time.Second,
		Warmup: 100 * time.Millisecond, ProfileDuration: time.Second, Slices: 1,
	}
}

// target is one of the three things measured.
type target struct {
	name string
	url  string // chat completions URL
	proc *proc  // the process in front of the mock; nil for direct
}

// sample is one phase against one target, with the CPU the processes
// spent meanwhile.
type sample struct {
	res       *load.Result
	serverCPU time.Duration // the target's own process (0 for direct)
	loadCPU   time.Duration // this process: the load driver (and the mock, in-process)
	mockCPU   time.Duration // the mock when it runs as a process
	otherCPU  time.Duration // CPU anything else on the machine used meanwhile
	attempts  int
}

// merge adds b's requests and CPU times to s; a nil s yields b.
func (s *sample) merge(b *sample) *sample {
	if s == nil {
		return b
	}
	return &sample{
		res:       load.Merge(s.res, b.res),
		serverCPU: s.serverCPU + b.serverCPU, loadCPU: s.loadCPU + b.loadCPU,
		mockCPU: s.mockCPU + b.mockCPU, otherCPU: s.otherCPU + b.otherCPU,
		attempts: s.attempts + b.attempts,
	}
}

// maxInFlight caps the requests an open-loop phase has outstanding. At
// the rates measured a healthy target has a handful; the cap matters only
// after a stall, where it keeps the client from opening thousands of
// connections (requests wait in the client instead, and their latency
// still counts from their scheduled time). It equals the idle-connection
// pool per host of the gateway and the proxy: beyond it both would churn
// upstream connections and could fail to recover from a stall at all.
const maxInFlight = 256

// disturbed reports whether something else used more than a tenth of a
// CPU during the sample.
func (s *sample) disturbed() bool {
	return s.res.Elapsed > 0 && float64(s.otherCPU) > 0.10*float64(s.res.Elapsed)
}

// holdSample is the open-streams phase against one target.
type holdSample struct {
	res               *load.HoldResult
	idleRSS, rss, hwm int64 // KiB
	serverCPU         time.Duration
	holdErr           error
}

// Report holds a run's figures.
type Report struct {
	cfg       Config
	started   time.Time
	finished  time.Time
	targets   []string
	rate      map[float64]map[string]*sample
	tput      map[string]*sample
	stream    map[string]*sample
	hold      map[string]*holdSample
	peak      map[string]int64 // VmHWM KiB after the main phases
	logLines  int
	gwServed  int64
	feat      features
	profFiles []string
	waited    time.Duration // waiting for the machine to be quiet
	retries   int
}

type harness struct {
	cfg     Config
	work    string
	pin     bool
	taskset string
	procs   procs
	seq     atomic.Int64
	gwReq   atomic.Int64  // requests sent to the gateway
	quiet   time.Duration // what is left of cfg.QuietWait
}

func (h *harness) logf(format string, args ...any) {
	if h.cfg.Progress != nil {
		fmt.Fprintf(h.cfg.Progress, "benchrun: "+format+"\n", args...)
	}
}

// Run runs the benchmark and returns its report. Every child process is
// stopped before it returns.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	h := &harness{cfg: cfg, work: cfg.Work, pin: cfg.Pin, taskset: cfg.Taskset, quiet: cfg.QuietWait}
	defer h.procs.stopAll()
	rep := &Report{cfg: cfg, started: time.Now(),
		rate: map[float64]map[string]*sample{}, tput: map[string]*sample{}, stream: map[string]*sample{},
		hold: map[string]*holdSample{}, peak: map[string]int64{}}
	if err := h.run(ctx, rep); err != nil {
		return nil, err
	}
	rep.finished = time.Now()
	return rep, nil
}

func (h *harness) serverCPUArg() int {
	if !h.pin {
		return -1
	}
	return h.cfg.ServerCPU
}

func (h *harness) loadCPUArg() int {
	if !h.pin {
		return -1
	}
	return h.cfg.LoadCPU
}

// upstream is a running mock upstream.
type upstream struct {
	url  string
	pid  int // 0 when it runs in this process
	stop func()
}

// startMock starts a mock upstream, in this process or, with
// MockProcess, as a child pinned to the load CPU.
func (h *harness) startMock(ctx context.Context, chunks int, delay time.Duration) (*upstream, error) {
	if h.cfg.MockProcess {
		p, err := h.start(ctx, spec{name: "mock", cpu: h.loadCPUArg(), printsURL: true, argv: []string{h.cfg.Self, "mock",
			"-chunks", strconv.Itoa(chunks), "-chunk-delay", delay.String(), "-unique-ids"}})
		if err != nil {
			return nil, err
		}
		return &upstream{url: p.url, pid: p.pid(), stop: p.stop}, nil
	}
	m, err := mockup.New(mockup.Options{Chunks: chunks, ChunkDelay: delay, UniqueIDs: true})
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	srv := &http.Server{Handler: m, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	return &upstream{url: "http://" + ln.Addr().String(), stop: func() { _ = srv.Close() }}, nil
}

func (h *harness) startProxy(ctx context.Context, upstream string) (*proc, error) {
	return h.start(ctx, spec{name: "proxy", cpu: h.serverCPUArg(), gomaxprocs: 1, printsURL: true,
		argv: []string{h.cfg.Self, "proxy", "-upstream", upstream}})
}

// gatewayEnv points the notebook's config at the mock and its default
// SQLite stores (the inference store among them) at storeDir.
func gatewayEnv(mockURL, storeDir string) []string {
	return []string{
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + mockURL,
		"AWS_BEARER_TOKEN_BEDROCK=bench-not-a-real-key",
		"AWS_DEFAULT_REGION=us-west-2",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=false",
		"SQLITE_STORE_DIR=" + storeDir,
	}
}

// startGateway starts the server built from the tree with the notebook's
// config and its defaults: request logging on (json, info) into its log
// file, metrics on, and the inference store on, in SQLite files under a
// fresh directory of its own.
func (h *harness) startGateway(ctx context.Context, mockURL string) (*proc, error) {
	return h.startServer(ctx, "gateway", h.cfg.ServerBin, mockURL)
}

// startServer starts a llama binary as startGateway describes, under name.
func (h *harness) startServer(ctx context.Context, name, bin, mockURL string) (*proc, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	storeDir, err := h.newStoreDir(name)
	if err != nil {
		return nil, err
	}
	p, err := h.start(ctx, spec{name: name, cpu: h.serverCPUArg(), gomaxprocs: 1, env: gatewayEnv(mockURL, storeDir),
		argv: []string{bin, "stack", "run", h.cfg.ConfigPath, "--host", "127.0.0.1", "--port", strconv.Itoa(port),
			"--log-format", "json", "--log-level", "info"}})
	if err != nil {
		return nil, err
	}
	p.url = "http://127.0.0.1:" + strconv.Itoa(port)
	p.storeDir = storeDir
	if err := waitHealthy(ctx, p, p.url+"/v1/health", 20*time.Second); err != nil {
		return nil, err
	}
	return p, nil
}

func chatURL(base string) string { return base + "/v1/chat/completions" }

func (h *harness) run(ctx context.Context, rep *Report) error {
	cfg := h.cfg
	mock, err := h.startMock(ctx, cfg.Chunks, cfg.ChunkDelay)
	if err != nil {
		return err
	}
	defer mock.stop()
	proxy, err := h.startProxy(ctx, mock.url)
	if err != nil {
		return err
	}
	gw, err := h.startGateway(ctx, mock.url)
	if err != nil {
		return err
	}
	targets := []*target{
		{name: "direct", url: chatURL(mock.url)},
		{name: "proxy", url: chatURL(proxy.url), proc: proxy},
		{name: "gateway", url: chatURL(gw.url), proc: gw},
	}
	var base *proc
	if cfg.BaselineBin != "" {
		if base, err = h.startServer(ctx, "baseline", cfg.BaselineBin, mock.url); err != nil {
			return err
		}
		targets = append(targets, &target{name: "baseline", url: chatURL(base.url), proc: base})
	}
	for _, t := range targets {
		rep.targets = append(rep.targets, t.name)
	}
	chat := func(t *target) *load.Request {
		return &load.Request{URL: t.url, Body: mockup.ChatRequest(mockup.ClientModel)}
	}
	stream := func(t *target) *load.Request {
		return &load.Request{URL: t.url, Body: mockup.StreamRequest(mockup.ClientModel), Stream: true, WantEvents: cfg.Chunks + 1}
	}
	const timeout = 10 * time.Second

	// Sanity and warm-up: every target answers both kinds correctly.
	for _, t := range targets {
		c := load.NewClient(0)
		for _, req := range []*load.Request{chat(t), stream(t)} {
			if s := load.Do(ctx, c, req, time.Now(), nil); s.Err != nil {
				return fmt.Errorf("%s does not answer correctly (stream=%v): %w%s", t.name, req.Stream, s.Err, procTail(t.proc))
			}
			h.count(t, 1)
		}
		w := load.Closed(ctx, load.NewClient(cfg.Conns), chat(t), cfg.Conns, cfg.Warmup, timeout)
		h.count(t, w.Sent)
		ws := load.Constant(ctx, c, stream(t), cfg.StreamRate, cfg.Warmup, timeout, 0)
		h.count(t, ws.Sent)
		if w.Failed()+ws.Failed() > 0 {
			return fmt.Errorf("%s fails under warm-up load: %s%s", t.name, firstNonEmpty(w.FirstError(), ws.FirstError()), procTail(t.proc))
		}
		c.CloseIdleConnections()
		h.logf("%s ready (%s)", t.name, t.url)
	}

	measureOnce := func(t *target, run func() *load.Result) (*sample, error) {
		h.settle(ctx, targets)
		before, err := h.cpu(t, mock)
		if err != nil {
			return nil, err
		}
		res := run()
		after, err := h.cpu(t, mock)
		if err != nil {
			return nil, err
		}
		h.count(t, res.Sent)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if t.proc != nil && t.proc.exited() {
			return nil, fmt.Errorf("%s died: %v%s", t.name, t.proc.waitErr, procTail(t.proc))
		}
		s := &sample{res: res, serverCPU: after[0] - before[0], loadCPU: after[1] - before[1], mockCPU: after[2] - before[2]}
		s.otherCPU = max(0, after[3]-before[3]-s.serverCPU-s.loadCPU-s.mockCPU)
		return s, nil
	}
	measure := func(t *target, run func() *load.Result) (*sample, error) {
		for attempt := 1; ; attempt++ {
			if attempt > 1 {
				rep.waited += h.waitQuiet(ctx)
			}
			s, err := measureOnce(t, run)
			if err != nil {
				return nil, err
			}
			s.attempts = attempt
			if !s.disturbed() || attempt > cfg.Retries || h.quiet <= 0 {
				return s, nil
			}
			// The repeat is paid from the same budget as the waiting.
			h.quiet -= s.res.Elapsed
			rep.retries++
			h.logf("%s: disturbed (other processes used %s of a CPU), measuring again", t.name, pct(s.otherCPU, s.res.Elapsed))
		}
	}

	// Each phase runs in Slices rounds; every round gives each target a
	// slice, in a rotating order, so that drift and disturbances spread
	// over all three instead of landing on one.
	phase := func(label string, total time.Duration, newClient func() *http.Client, run func(t *target, c *http.Client, d time.Duration) *load.Result) (map[string]*sample, error) {
		clients := map[string]*http.Client{}
		for _, t := range targets {
			clients[t.name] = newClient()
		}
		defer func() {
			for _, c := range clients {
				c.CloseIdleConnections()
			}
		}()
		rounds := max(1, cfg.Slices)
		slice := total / time.Duration(rounds)
		rep.waited += h.waitQuiet(ctx)
		agg := map[string]*sample{}
		for r := range rounds {
			for k := range targets {
				t := targets[(r+k)%len(targets)]
				s, err := measure(t, func() *load.Result { return run(t, clients[t.name], slice) })
				if err != nil {
					return nil, err
				}
				agg[t.name] = agg[t.name].merge(s)
			}
		}
		for _, t := range targets {
			s := agg[t.name]
			h.logf("%-22s %-7s p50 %s p99 %s, first byte p50 %s, %.0f req/s, %d/%d ok", label, t.name,
				ms(load.Percentile(s.res.Latency, 50)), ms(load.Percentile(s.res.Latency, 99)), ms(load.Percentile(s.res.FirstByte, 50)),
				s.res.Throughput(), s.res.OK, s.res.Sent)
		}
		return agg, nil
	}
	for _, rate := range cfg.Rates {
		rep.rate[rate], err = phase(fmt.Sprintf("%.0f req/s", rate), cfg.RateDuration, func() *http.Client { return load.NewClient(0) },
			func(t *target, c *http.Client, d time.Duration) *load.Result {
				return load.Constant(ctx, c, chat(t), rate, d, timeout, maxInFlight)
			})
		if err != nil {
			return err
		}
	}
	rep.tput, err = phase(fmt.Sprintf("%d connections", cfg.Conns), cfg.TputDuration, func() *http.Client { return load.NewClient(cfg.Conns) },
		func(t *target, c *http.Client, d time.Duration) *load.Result {
			return load.Closed(ctx, c, chat(t), cfg.Conns, d, timeout)
		})
	if err != nil {
		return err
	}
	rep.stream, err = phase(fmt.Sprintf("%.0f streams/s", cfg.StreamRate), cfg.StreamDuration, func() *http.Client { return load.NewClient(0) },
		func(t *target, c *http.Client, d time.Duration) *load.Result {
			return load.Constant(ctx, c, stream(t), cfg.StreamRate, d, timeout, maxInFlight)
		})
	if err != nil {
		return err
	}
	for _, t := range targets[1:] {
		_, hwm, err := memKiB(t.proc.pid())
		if err != nil {
			return err
		}
		rep.peak[t.name] = hwm
	}
	rep.gwServed = h.gwReq.Load()
	if rep.feat, err = probeFeatures(ctx, gw.url); err != nil {
		return fmt.Errorf("gateway features: %w", err)
	}
	proxy.stop()
	if base != nil {
		base.stop()
	}
	gw.stop() // SIGTERM: the gateway flushes its store queue before it exits
	rep.logLines = countRequestLines(gw.logPath)
	if rep.feat.store {
		if n, err := countStored(ctx, gw.storeDir); err != nil {
			rep.feat.storeErr = err.Error()
		} else {
			rep.feat.stored = n
		}
	}
	h.logf("gateway: %s", rep.feat.describe(rep.logLines, rep.gwServed))

	if cfg.ProfileDir != "" && cfg.ProfBin != "" {
		if err := h.profile(ctx, rep, mock); err != nil {
			return err
		}
	}
	mock.stop()

	// Many open streams, each on a fresh server in front of a slow mock.
	slow, err := h.startMock(ctx, 600, cfg.SlowChunkDelay)
	if err != nil {
		return err
	}
	defer slow.stop()
	for _, name := range []string{"proxy", "gateway"} {
		var p *proc
		if name == "proxy" {
			p, err = h.startProxy(ctx, slow.url)
		} else {
			p, err = h.startGateway(ctx, slow.url)
		}
		if err != nil {
			return err
		}
		hs, err := h.hold(ctx, p, &load.Request{URL: chatURL(p.url), Body: mockup.StreamRequest(mockup.ClientModel), Stream: true})
		p.stop()
		if err != nil {
			return err
		}
		rep.hold[name] = hs
		h.logf("%-7s %d open streams: RSS %.1f MiB (idle %.1f MiB), %d opened", name, cfg.OpenStreams, mib(hs.rss), mib(hs.idleRSS), hs.res.Opened)
	}
	return ctx.Err()
}

// hold opens cfg.OpenStreams streams through p and reads its memory while
// they are all open.
func (h *harness) hold(ctx context.Context, p *proc, req *load.Request) (*holdSample, error) {
	// Let the process settle, then read its idle footprint.
	time.Sleep(100 * time.Millisecond)
	idle, _, err := memKiB(p.pid())
	if err != nil {
		return nil, err
	}
	hs := &holdSample{idleRSS: idle}
	c := load.NewClient(0)
	defer c.CloseIdleConnections()
	before, _ := cpuTicks(p.pid())
	hs.res = load.Hold(ctx, c, req, h.cfg.OpenStreams, h.cfg.OpenRate, 30*time.Second, func() {
		time.Sleep(300 * time.Millisecond) // every stream has sent its first chunk; let the heap settle
		hs.rss, hs.hwm, hs.holdErr = memKiB(p.pid())
	})
	after, _ := cpuTicks(p.pid())
	hs.serverCPU = after - before
	if hs.holdErr != nil {
		return nil, hs.holdErr
	}
	if hs.res.Opened < hs.res.Wanted {
		return nil, fmt.Errorf("%s: only %d of %d streams opened (first error: %v)%s", p.name, hs.res.Opened, hs.res.Wanted, hs.res.Err, procTail(p))
	}
	return hs, ctx.Err()
}

// profile runs the profiling variant of the server under the throughput
// load, non-streamed then streamed, and saves its CPU and allocation
// profiles.
func (h *harness) profile(ctx context.Context, rep *Report, mock *upstream) error {
	cfg := h.cfg
	if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	storeDir, err := h.newStoreDir("gwprof")
	if err != nil {
		return err
	}
	p, err := h.start(ctx, spec{name: "gwprof", cpu: h.serverCPUArg(), gomaxprocs: 1, printsURL: true, env: gatewayEnv(mock.url, storeDir),
		argv: []string{cfg.ProfBin, "-config", cfg.ConfigPath, "-addr", "127.0.0.1:" + strconv.Itoa(port), "-pprof", "127.0.0.1:0", "-watch-stdin"}})
	if err != nil {
		return err
	}
	defer p.stop()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitHealthy(ctx, p, base+"/v1/health", 20*time.Second); err != nil {
		return err
	}
	reqs := []struct {
		name string
		req  *load.Request
	}{
		{"chat", &load.Request{URL: chatURL(base), Body: mockup.ChatRequest(mockup.ClientModel)}},
		{"stream", &load.Request{URL: chatURL(base), Body: mockup.StreamRequest(mockup.ClientModel), Stream: true, WantEvents: cfg.Chunks + 1}},
	}
	secs := max(1, int(cfg.ProfileDuration.Seconds()))
	for _, r := range reqs {
		c := load.NewClient(cfg.Conns)
		_ = load.Closed(ctx, c, r.req, cfg.Conns, cfg.Warmup, 10*time.Second)
		errc := make(chan error, 1)
		cpuPath := filepath.Join(cfg.ProfileDir, "cpu-"+r.name+".pprof")
		go func() { errc <- fetch(ctx, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", p.url, secs), cpuPath) }()
		res := load.Closed(ctx, c, r.req, cfg.Conns, time.Duration(secs)*time.Second+500*time.Millisecond, 10*time.Second)
		c.CloseIdleConnections()
		if err := <-errc; err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		allocPath := filepath.Join(cfg.ProfileDir, "allocs-after-"+r.name+".pprof")
		if err := fetch(ctx, p.url+"/debug/pprof/allocs", allocPath); err != nil {
			return fmt.Errorf("allocs profile: %w", err)
		}
		rep.profFiles = append(rep.profFiles, cpuPath, allocPath)
		h.logf("profiled %s: %.0f req/s under the profiler, %d failed", r.name, res.Throughput(), res.Failed())
	}
	p.stop()
	return h.profileOpenStreams(ctx, rep)
}

// profileOpenStreams saves a heap profile of a fresh profiling server
// while OpenStreams streams are open through it.
func (h *harness) profileOpenStreams(ctx context.Context, rep *Report) error {
	cfg := h.cfg
	slow, err := h.startMock(ctx, 600, cfg.SlowChunkDelay)
	if err != nil {
		return err
	}
	defer slow.stop()
	port, err := freePort()
	if err != nil {
		return err
	}
	storeDir, err := h.newStoreDir("gwprof")
	if err != nil {
		return err
	}
	p, err := h.start(ctx, spec{name: "gwprof", cpu: h.serverCPUArg(), gomaxprocs: 1, printsURL: true, env: gatewayEnv(slow.url, storeDir),
		argv: []string{cfg.ProfBin, "-config", cfg.ConfigPath, "-addr", "127.0.0.1:" + strconv.Itoa(port), "-pprof", "127.0.0.1:0", "-watch-stdin"}})
	if err != nil {
		return err
	}
	defer p.stop()
	base := "http://127.0.0.1:" + strconv.Itoa(port)
	if err := waitHealthy(ctx, p, base+"/v1/health", 20*time.Second); err != nil {
		return err
	}
	heapPath := filepath.Join(cfg.ProfileDir, fmt.Sprintf("heap-%d-open-streams.pprof", cfg.OpenStreams))
	var ferr error
	c := load.NewClient(0)
	defer c.CloseIdleConnections()
	res := load.Hold(ctx, c, &load.Request{URL: chatURL(base), Body: mockup.StreamRequest(mockup.ClientModel), Stream: true},
		cfg.OpenStreams, cfg.OpenRate, 30*time.Second, func() {
			time.Sleep(300 * time.Millisecond)
			ferr = fetch(ctx, p.url+"/debug/pprof/heap?gc=1", heapPath)
		})
	if ferr != nil {
		return fmt.Errorf("heap profile: %w", ferr)
	}
	rep.profFiles = append(rep.profFiles, heapPath)
	h.logf("profiled the heap with %d of %d streams open", res.Opened, res.Wanted)
	return nil
}

// fetch saves the body of GET url to path.
func fetch(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := (&http.Client{Transport: &http.Transport{Proxy: nil}}).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, resp.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// cpu reads the CPU time of the target's process, of this process, of
// the mock's process and of the whole machine.
func (h *harness) cpu(t *target, mock *upstream) ([4]time.Duration, error) {
	var out [4]time.Duration
	var errs []error
	var err error
	if t.proc != nil {
		out[0], err = cpuTicks(t.proc.pid())
		errs = append(errs, err)
	}
	out[1], err = cpuTicks(0)
	errs = append(errs, err)
	if mock.pid != 0 {
		out[2], err = cpuTicks(mock.pid)
		errs = append(errs, err)
	}
	out[3], err = machineBusy()
	errs = append(errs, err)
	return out, errors.Join(errs...)
}

func (h *harness) count(t *target, n int) {
	if t.name == "gateway" {
		h.gwReq.Add(int64(n))
	}
}

// countRequestLines counts the access-log lines in the gateway's log.
func countRequestLines(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	return strings.Count(string(b), `"msg":"request"`)
}

func procTail(p *proc) string {
	if p == nil {
		return ""
	}
	return "\n" + p.name + " log:\n" + p.logTail()
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// settle waits (at most 5 s) until no target process is busy: the
// gateway keeps working after its load stops (its store writer flushes
// the completions still queued, its GC finishes), and on the shared server
// CPU that work would land in the next target's measurement. A process is
// idle when it used at most one clock tick over 200 ms.
func (h *harness) settle(ctx context.Context, targets []*target) {
	deadline := time.Now().Add(5 * time.Second)
	for _, t := range targets {
		if t.proc == nil {
			continue
		}
		for time.Now().Before(deadline) && ctx.Err() == nil {
			a, err := cpuTicks(t.proc.pid())
			if err != nil {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			b, err := cpuTicks(t.proc.pid())
			if err != nil || b-a <= time.Second/clockTicks {
				break
			}
		}
	}
}

// waitQuiet waits, within what is left of the QuietWait budget, until the
// machine has been quiet for two half-second windows in a row, and
// returns how long it waited.
func (h *harness) waitQuiet(ctx context.Context) time.Duration {
	start := time.Now()
	quietWindows := 0
	for h.quiet > 0 && quietWindows < 2 && ctx.Err() == nil {
		const window = 500 * time.Millisecond
		m0, _ := machineBusy()
		o0 := h.ownCPU()
		t0 := time.Now()
		select {
		case <-ctx.Done():
		case <-time.After(window):
		}
		m1, _ := machineBusy()
		o1 := h.ownCPU()
		el := time.Since(t0)
		h.quiet -= el
		if other := (m1 - m0) - (o1 - o0); float64(other) <= 0.10*float64(el) {
			quietWindows++
		} else {
			quietWindows = 0
		}
	}
	waited := time.Since(start)
	if waited > 2*time.Second {
		h.logf("waited %s for the machine to be quiet", waited.Round(100*time.Millisecond))
	}
	return waited
}

// ownCPU is the CPU time of this process and its live children.
func (h *harness) ownCPU() time.Duration {
	total, _ := cpuTicks(0)
	h.procs.mu.Lock()
	defer h.procs.mu.Unlock()
	for _, p := range h.procs.all {
		if !p.exited() {
			t, _ := cpuTicks(p.pid())
			total += t
		}
	}
	return total
}
