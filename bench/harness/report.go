package harness

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/llama-stack-go/llama-stack-go/bench/load"
	"github.com/llama-stack-go/llama-stack-go/bench/mockup"
)

func mockCompletion() []byte {
	m, err := mockup.New(mockup.Options{})
	if err != nil {
		return nil
	}
	return m.Completion()
}

func mockRequest() []byte { return mockup.ChatRequest(mockup.ClientModel) }

// ms formats a duration in milliseconds.
func ms(d time.Duration) string { return fmt.Sprintf("%.3f", float64(d)/float64(time.Millisecond)) }

// msSigned formats a difference in milliseconds with its sign.
func msSigned(d time.Duration) string {
	return fmt.Sprintf("%+.3f", float64(d)/float64(time.Millisecond))
}

// mib converts KiB to MiB.
func mib(kib int64) float64 { return float64(kib) / 1024 }

// us formats a duration per item in microseconds.
func us(d time.Duration, n int) string {
	if n == 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f", float64(d)/float64(time.Microsecond)/float64(n))
}

// perCPUSecond is the requests served per second of the server's CPU
// time: the throughput one fully busy CPU would give.
func perCPUSecond(s *sample) string {
	if s.serverCPU <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f", float64(s.res.OK)/s.serverCPU.Seconds())
}

// pct formats a share of one CPU.
func pct(d, over time.Duration) string {
	if over <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.0f%%", 100*float64(d)/float64(over))
}

// Check is one of the targets and whether the run met it.
type Check struct {
	// Name says what is measured.
	Name string
	// Value is the measured figure, with context.
	Value string
	// Limit is the target.
	Limit string
	// Met reports whether Value is within Limit.
	Met bool
}

// Checks evaluates the targets on the run's figures.
func (r *Report) Checks() []Check {
	var out []Check
	p50 := func(s *sample) time.Duration { return load.Percentile(s.res.Latency, 50) }
	p99 := func(s *sample) time.Duration { return load.Percentile(s.res.Latency, 99) }
	if px, gw := r.tput["proxy"], r.tput["gateway"]; px != nil && gw != nil && px.res.Throughput() > 0 {
		ratio := gw.res.Throughput() / px.res.Throughput()
		norm := ""
		if gw.serverCPU > 0 && px.serverCPU > 0 {
			norm = fmt.Sprintf("; per server CPU-second %.0f%%", 100*(float64(gw.res.OK)/gw.serverCPU.Seconds())/(float64(px.res.OK)/px.serverCPU.Seconds()))
		}
		out = append(out, Check{fmt.Sprintf("throughput at %d connections vs bare proxy", r.cfg.Conns),
			fmt.Sprintf("%.0f%% (%.0f vs %.0f req/s%s)", 100*ratio, gw.res.Throughput(), px.res.Throughput(), norm), "≥ 70%", ratio >= 0.70})
	}
	if m := r.rate[2000]; m != nil && m["direct"] != nil {
		d, px, gw := m["direct"], m["proxy"], m["gateway"]
		gwAdd, pxAdd := p50(gw)-p50(d), p50(px)-p50(d)
		out = append(out, Check{"added median at 2,000 req/s, minus the bare proxy's",
			fmt.Sprintf("%s ms (gateway %s, proxy %s)", msSigned(gwAdd-pxAdd), msSigned(gwAdd), msSigned(pxAdd)), "≤ 0.100 ms", gwAdd-pxAdd <= 100*time.Microsecond})
		add99 := p99(gw) - p99(d)
		out = append(out, Check{"added p99 at 2,000 req/s", fmt.Sprintf("%s ms (bare proxy %s)", msSigned(add99), msSigned(p99(px)-p99(d))), "< 1.000 ms", add99 < time.Millisecond})
	}
	if d, px, gw := r.stream["direct"], r.stream["proxy"], r.stream["gateway"]; d != nil && px != nil && gw != nil {
		first := func(s *sample) time.Duration {
			return load.Percentile(s.res.FirstByte, 50) - load.Percentile(d.res.FirstByte, 50)
		}
		out = append(out, Check{"streaming time to first chunk vs direct (p50)", fmt.Sprintf("%s ms (bare proxy %s)", msSigned(first(gw)), msSigned(first(px))), "≤ 0.300 ms", first(gw) <= 300*time.Microsecond})
		perChunk := func(s *sample) time.Duration {
			return (load.Percentile(s.res.AfterFirst, 50) - load.Percentile(d.res.AfterFirst, 50)) / time.Duration(r.cfg.Chunks)
		}
		out = append(out, Check{"added delay per chunk vs direct (p50 of first→last chunk / chunks)", fmt.Sprintf("%s ms (bare proxy %s)", msSigned(perChunk(gw)), msSigned(perChunk(px))), "≈ 0 (≤ 0.050 ms)", perChunk(gw) <= 50*time.Microsecond})
	}
	if hwm, ok := r.peak["gateway"]; ok {
		out = append(out, Check{"peak RSS under the benchmark (VmHWM)", fmt.Sprintf("%.1f MiB", mib(hwm)), "< 60 MiB", mib(hwm) < 60})
	}
	if hs := r.hold["gateway"]; hs != nil {
		out = append(out, Check{fmt.Sprintf("RSS with %d concurrent open streams", r.cfg.OpenStreams),
			fmt.Sprintf("%.1f MiB (peak %.1f)", mib(hs.rss), mib(hs.hwm)), "< 150 MiB", mib(hs.rss) < 150 && mib(hs.hwm) < 150})
	}
	return out
}

// machine describes the host: CPU count and model, kernel, Go version.
func machine() string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				model = strings.TrimSpace(v)
				break
			}
		}
	}
	kernel := ""
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = ", Linux " + strings.TrimSpace(string(b))
	}
	return fmt.Sprintf("%d CPUs online (`nproc --all`), %s%s, %s %s/%s", onlineCPUs(), model, kernel, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	n := 0
	for _, part := range strings.Split(strings.TrimSpace(string(b)), ",") {
		var lo, hi int
		if c, _ := fmt.Sscanf(part, "%d-%d", &lo, &hi); c == 2 {
			n += hi - lo + 1
		} else {
			n++
		}
	}
	return n
}

// Render writes the report as Markdown.
func (r *Report) Render(w io.Writer) {
	cfg := r.cfg
	pf := func(format string, args ...any) { fmt.Fprintf(w, format, args...) }
	pf("### Gateway benchmark, %s\n\n", r.started.Format("2006-01-02 15:04 MST"))
	pf("- Command: `%s` (finished in %s)\n", cfg.Command, r.finished.Sub(r.started).Round(time.Second))
	pf("- Machine: %s\n", machine())
	if cfg.Pin {
		pf("- Pinning: bare proxy and gateway on CPU %d (`taskset -c %d`, GOMAXPROCS=1, one at a time); load driver and mock upstream on CPU %d (`taskset -c %d`)\n",
			cfg.ServerCPU, cfg.ServerCPU, cfg.LoadCPU, cfg.LoadCPU)
	} else {
		pf("- Pinning: none (one CPU or no taskset): everything shares the CPUs; bare proxy and gateway still run with GOMAXPROCS=1\n")
	}
	cfgName, what := "bench/"+filepath.Base(cfg.ConfigPath), "the notebook's config, its defaults otherwise"
	if filepath.Base(cfg.ConfigPath) != "config.yaml" {
		cfgName, what = cfg.ConfigPath, "not the notebook's config"
	}
	pf("- Gateway: `llama stack run %s --log-format json --log-level info` (%s) in front of the mock; %s\n",
		cfgName, what, r.feat.describe(r.logLines, r.gwServed))
	where := "inside the load driver's process"
	if cfg.MockProcess {
		where = "as a process of its own on the load CPU"
	}
	pf("- Mock upstream (%s): recorded gpt-oss-20b completion (%d B) and stream (%d chunks, %s apart), each answer with an id of its own; requests: the recorded request (%d B, model `%s`)\n",
		where, len(mockCompletion()), cfg.Chunks, cfg.ChunkDelay, len(mockRequest()), "bedrock/openai.gpt-oss-20b-1:0")
	pf("- Interference: the machine may be shared with workloads this process cannot see; each phase started on a quiet machine, and a measurement during which something else took more than 10%% of a CPU was repeated after the machine was quiet again (%s waited in all, %d repeats); the \"other CPU\" columns show what remained\n",
		r.waited.Round(100*time.Millisecond), r.retries)
	pf("- Rounds per phase: %d; in each round every target gets its share of the phase's time, in rotating order\n", max(1, cfg.Slices))
	pf("- Latency is measured from each request's scheduled send time (open loop, paced by a timerfd; coordinated omission avoided; at most %d requests outstanding per target, later ones wait in the client with their clock running)\n", maxInFlight)
	pf("- \"added\" is the target's figure minus direct's; CPU/req is the proxy's or gateway's user+system CPU over the phase divided by the requests served (from /proc/<pid>/stat, 10 ms ticks); \"other CPU\" is what the rest of the machine (other processes, interrupts) used during the phase, as a share of one CPU: above a few percent, the row was disturbed\n\n")

	pf("**Non-streamed, fixed rate** (%s per rate and target; ms)\n\n", cfg.RateDuration)
	pf("| rate | target | ok/sent | p50 | p90 | p99 | max | added p50 | added p99 | CPU/req (µs) | send lateness mean / max | other CPU |\n")
	pf("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, rate := range cfg.Rates {
		m := r.rate[rate]
		d := m["direct"]
		for _, name := range r.targets {
			s := m[name]
			added50, added99 := "–", "–"
			cpu := "–"
			if name != "direct" {
				added50 = msSigned(load.Percentile(s.res.Latency, 50) - load.Percentile(d.res.Latency, 50))
				added99 = msSigned(load.Percentile(s.res.Latency, 99) - load.Percentile(d.res.Latency, 99))
				cpu = us(s.serverCPU, s.res.OK)
			}
			pf("| %.0f/s | %s | %d/%d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", rate, name, s.res.OK, s.res.Sent,
				ms(load.Percentile(s.res.Latency, 50)), ms(load.Percentile(s.res.Latency, 90)), ms(load.Percentile(s.res.Latency, 99)),
				ms(load.Percentile(s.res.Latency, 100)), added50, added99, cpu, ms(s.res.MeanLate)+" / "+ms(s.res.MaxLate), pct(s.otherCPU, s.res.Elapsed))
		}
	}
	pf("\n**Maximum throughput, %d connections, closed loop** (%s per target)\n\n", cfg.Conns, cfg.TputDuration)
	pf("| target | req/s | vs proxy | p50 (ms) | p99 (ms) | CPU/req (µs) | req/s per CPU-second | server CPU busy | load CPU busy (driver + mock) | other CPU |\n")
	pf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, name := range r.targets {
		s := r.tput[name]
		vs, cpu, perCPU, busy := "–", "–", "–", "–"
		if name != "direct" {
			vs = fmt.Sprintf("%.0f%%", 100*s.res.Throughput()/r.tput["proxy"].res.Throughput())
			cpu = us(s.serverCPU, s.res.OK)
			perCPU = perCPUSecond(s)
			busy = pct(s.serverCPU, s.res.Elapsed)
		}
		pf("| %s | %.0f | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, s.res.Throughput(), vs,
			ms(load.Percentile(s.res.Latency, 50)), ms(load.Percentile(s.res.Latency, 99)), cpu, perCPU, busy, pct(s.loadCPU+s.mockCPU, s.res.Elapsed), pct(s.otherCPU, s.res.Elapsed))
	}
	pf("\n**Streaming** (%.0f streams/s for %s; %d chunks + [DONE], %s apart; ms)\n\n", cfg.StreamRate, cfg.StreamDuration, cfg.Chunks, cfg.ChunkDelay)
	pf("| target | ok/sent | first chunk p50 | p99 | total p50 | p99 | added first chunk p50 | added total p50 | added per chunk | CPU/stream (µs) | other CPU |\n")
	pf("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, name := range r.targets {
		s := r.stream[name]
		d := r.stream["direct"]
		addF, addT, addC, cpu := "–", "–", "–", "–"
		if name != "direct" {
			addF = msSigned(load.Percentile(s.res.FirstByte, 50) - load.Percentile(d.res.FirstByte, 50))
			addT = msSigned(load.Percentile(s.res.Latency, 50) - load.Percentile(d.res.Latency, 50))
			addC = msSigned((load.Percentile(s.res.AfterFirst, 50) - load.Percentile(d.res.AfterFirst, 50)) / time.Duration(cfg.Chunks))
			cpu = us(s.serverCPU, s.res.OK)
		}
		pf("| %s | %d/%d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", name, s.res.OK, s.res.Sent,
			ms(load.Percentile(s.res.FirstByte, 50)), ms(load.Percentile(s.res.FirstByte, 99)),
			ms(load.Percentile(s.res.Latency, 50)), ms(load.Percentile(s.res.Latency, 99)), addF, addT, addC, cpu, pct(s.otherCPU, s.res.Elapsed))
	}
	pf("\n**Memory** (MiB)\n\n")
	pf("| target | peak RSS, phases above | idle RSS, fresh process | RSS with %d open streams | peak RSS of that run | open time (s) |\n", cfg.OpenStreams)
	pf("|---|---:|---:|---:|---:|---:|\n")
	for _, name := range r.targets[1:] {
		hs := r.hold[name]
		if hs == nil {
			if p, ok := r.peak[name]; ok {
				pf("| %s | %.1f | – | – | – | – |\n", name, mib(p))
			}
			continue
		}
		pf("| %s | %.1f | %.1f | %.1f | %.1f | %.2f |\n", name, mib(r.peak[name]), mib(hs.idleRSS), mib(hs.rss), mib(hs.hwm), hs.res.OpenTime.Seconds())
	}
	pf("\n**Targets** (issue #6)\n\n| target | measured | limit | met |\n|---|---|---|---|\n")
	for _, c := range r.Checks() {
		met := "**no**"
		if c.Met {
			met = "yes"
		}
		pf("| %s | %s | %s | %s |\n", c.Name, c.Value, c.Limit, met)
	}
	var errs []string
	add := func(phase, name string, res *load.Result) {
		if res != nil && res.Failed() > 0 {
			errs = append(errs, fmt.Sprintf("%s %s: %d failed, e.g. %s", phase, name, res.Failed(), res.FirstError()))
		}
	}
	for _, rate := range cfg.Rates {
		for n, s := range r.rate[rate] {
			add(fmt.Sprintf("%.0f/s", rate), n, s.res)
		}
	}
	for n, s := range r.tput {
		add("throughput", n, s.res)
	}
	for n, s := range r.stream {
		add("streaming", n, s.res)
	}
	if len(errs) > 0 {
		pf("\nFailures:\n")
		for _, e := range errs {
			pf("- %s\n", e)
		}
	}
	if len(r.profFiles) > 0 {
		pf("\nProfiles: %s\n", strings.Join(r.profFiles, ", "))
	}
}
