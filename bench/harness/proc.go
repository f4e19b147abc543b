package harness

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is a child process the harness started: the mock, the bare proxy or
// the gateway.
type proc struct {
	name     string
	cmd      *exec.Cmd
	stdin    io.WriteCloser
	logPath  string
	url      string // base URL it serves
	storeDir string // the gateway's SQLITE_STORE_DIR; "" for others
	done     chan struct{}
	waitErr  error
}

// procs tracks the children so every one of them is stopped on the way
// out, whatever happens.
type procs struct {
	mu  sync.Mutex
	all []*proc
}

func (ps *procs) add(p *proc) {
	ps.mu.Lock()
	ps.all = append(ps.all, p)
	ps.mu.Unlock()
}

// stopAll stops every child still running.
func (ps *procs) stopAll() {
	ps.mu.Lock()
	all := ps.all
	ps.all = nil
	ps.mu.Unlock()
	for _, p := range all {
		p.stop()
	}
}

// spec says how to start a child.
type spec struct {
	name       string
	cpu        int  // CPU to pin to, -1 for none
	gomaxprocs int  // GOMAXPROCS to set, 0 to leave unset
	printsURL  bool // the child prints its base URL as its first stdout line
	env        []string
	argv       []string
}

// start starts a child under taskset when pinning, with its stderr in a
// file in dir. The child gets SIGKILL if the harness dies (Pdeathsig), and
// the harness's own children also exit when their stdin closes.
func (h *harness) start(ctx context.Context, s spec) (*proc, error) {
	argv := s.argv
	if h.pin && s.cpu >= 0 {
		argv = append([]string{h.taskset, "-c", strconv.Itoa(s.cpu)}, argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	env := make([]string, 0, len(os.Environ())+len(s.env)+1)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOMAXPROCS=") && !strings.HasPrefix(kv, PinnedEnv+"=") {
			env = append(env, kv)
		}
	}
	if s.gomaxprocs > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(s.gomaxprocs))
	}
	cmd.Env = append(env, s.env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	p := &proc{name: s.name, cmd: cmd, done: make(chan struct{})}
	p.logPath = filepath.Join(h.work, fmt.Sprintf("%s-%d.log", s.name, h.seq.Add(1)))
	logf, err := os.Create(p.logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close()
	cmd.Stderr = logf
	if p.stdin, err = cmd.StdinPipe(); err != nil {
		return nil, err
	}
	var stdout io.ReadCloser
	if s.printsURL {
		if stdout, err = cmd.StdoutPipe(); err != nil {
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", s.name, err)
	}
	h.procs.add(p)
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	if !s.printsURL {
		return p, nil
	}
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- strings.TrimSpace(sc.Text())
		}
		close(line)
		_, _ = io.Copy(io.Discard, stdout)
	}()
	t := time.NewTimer(15 * time.Second)
	defer t.Stop()
	select {
	case u, ok := <-line:
		if !ok || !strings.HasPrefix(u, "http://") {
			return nil, fmt.Errorf("%s did not print its address: %s", s.name, p.logTail())
		}
		p.url = u
		return p, nil
	case <-t.C:
		return nil, fmt.Errorf("%s did not start within 15s: %s", s.name, p.logTail())
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// stop asks the child to end (SIGTERM, and its stdin closed), then kills it
// after 5 s.
func (p *proc) stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.stdin.Close()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-p.done:
	case <-t.C:
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited reports whether the child has ended.
func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// logTail returns the end of the child's stderr, for error messages.
func (p *proc) logTail() string {
	b, _ := os.ReadFile(p.logPath)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(bytes.TrimSpace(b))
}

// pid is the child's process id (taskset execs the program, so it is the
// program's).
func (p *proc) pid() int { return p.cmd.Process.Pid }

// waitHealthy polls url until it answers 200.
func waitHealthy(ctx context.Context, p *proc, url string, limit time.Duration) error {
	c := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	defer c.CloseIdleConnections()
	deadline := time.Now().Add(limit)
	for {
		if p.exited() {
			return fmt.Errorf("%s exited: %v: %s", p.name, p.waitErr, p.logTail())
		}
		resp, err := c.Get(url)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy within %s (last error: %v): %s", p.name, limit, err, p.logTail())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// freePort returns a loopback port nobody listens on right now.
func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// cpuTicks returns a process's user+system CPU time from /proc/<pid>/stat
// (pid 0: this process), all threads included.
func cpuTicks(pid int) (time.Duration, error) {
	path := "/proc/self/stat"
	if pid > 0 {
		path = fmt.Sprintf("/proc/%d/stat", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which is in parentheses and may
	// contain spaces: state is field 3, utime 14, stime 15.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, errors.New("malformed " + path)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, errors.New("malformed " + path)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; it is 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// memKiB returns VmRSS and VmHWM (peak RSS) of a process in KiB.
func memKiB(pid int) (rss, hwm int64, err error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0, err
	}
	for _, l := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(l, ":")
		if !ok {
			continue
		}
		v = strings.TrimSuffix(strings.TrimSpace(v), " kB")
		switch k {
		case "VmRSS":
			rss, _ = strconv.ParseInt(v, 10, 64)
		case "VmHWM":
			hwm, _ = strconv.ParseInt(v, 10, 64)
		}
	}
	return rss, hwm, nil
}

// AllowedCPUs returns the CPUs this process may run on, from
// /proc/self/status (Cpus_allowed_list, e.g. "0-1" or "0,2-3").
func AllowedCPUs() []int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return nil
	}
	for _, l := range strings.Split(string(b), "\n") {
		v, ok := strings.CutPrefix(l, "Cpus_allowed_list:")
		if !ok {
			continue
		}
		var out []int
		for _, part := range strings.Split(strings.TrimSpace(v), ",") {
			lo, hi, isRange := strings.Cut(part, "-")
			a, err := strconv.Atoi(lo)
			if err != nil {
				return nil
			}
			b := a
			if isRange {
				if b, err = strconv.Atoi(hi); err != nil {
					return nil
				}
			}
			for c := a; c <= b; c++ {
				out = append(out, c)
			}
		}
		return out
	}
	return nil
}

// machineBusy returns the CPU time all CPUs spent outside idle and iowait,
// from the first line of /proc/stat.
func machineBusy() (time.Duration, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 8 || f[0] != "cpu" {
		return 0, errors.New("malformed /proc/stat")
	}
	var busy int64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return 0, err
		}
		busy += n
	}
	return time.Duration(busy) * time.Second / clockTicks, nil
}
