// Package e2e runs the built llama binary as a user does, against the
// Bedrock test double, with the official clients: openai-go here, and the
// openai and llama-stack-client npm packages and curl through the suites in
// e2e/js and e2e/curl.
package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// binary is the llama binary built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "llama-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "llama")
	build := exec.Command("go", "build", "-o", binary, "./cmd/llama")
	build.Dir = repoRoot()
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build llama:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// repoRoot is the module root (this package lives in e2e/).
func repoRoot() string {
	wd, _ := os.Getwd()
	return filepath.Dir(wd)
}

// server is a running llama process.
type server struct {
	URL    string
	cmd    *exec.Cmd
	mu     sync.Mutex
	logs   []string
	exited chan struct{}
	err    error
	killed bool // set by Kill: the exit is expected to be a crash
}

// Kill ends the server with SIGKILL, as a crash would, and waits for it.
func (s *server) Kill(t *testing.T) {
	t.Helper()
	s.mu.Lock()
	s.killed = true
	s.mu.Unlock()
	_ = s.cmd.Process.Kill()
	<-s.exited
}

// Stop sends SIGTERM and waits for a clean exit.
func (s *server) Stop(t *testing.T) {
	t.Helper()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.exited:
		if s.err != nil {
			t.Fatalf("server exit after SIGTERM: %v\n%s", s.err, strings.Join(s.Logs(), "\n"))
		}
	case <-time.After(60 * time.Second):
		_ = s.cmd.Process.Kill()
		t.Fatalf("server did not stop within 60s of SIGTERM")
	}
}

// Logs returns the server's stderr lines so far.
func (s *server) Logs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.logs...)
}

// runLlama runs the binary to completion and returns its exit code and
// output.
func runLlama(t *testing.T, env []string, args ...string) (int, string, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Env = append(baseEnv(), withStoreDir(t, env)...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return code, stdout.String(), stderr.String()
}

// withStoreDir gives the server its own SQLite directory unless env names
// one, so that no test writes under the user's home or sees another test's
// models and completions.
func withStoreDir(t *testing.T, env []string) []string {
	for _, kv := range env {
		if strings.HasPrefix(kv, "SQLITE_STORE_DIR=") {
			return env
		}
	}
	return append(env, "SQLITE_STORE_DIR="+t.TempDir())
}

// providerEnvPrefixes are the variables that switch providers on in the
// starter config or point them elsewhere.
var providerEnvPrefixes = []string{"AWS_", "LLAMA_STACK", "OPENAI_", "OLLAMA_", "VLLM_", "TOGETHER_", "FIREWORKS_", "GROQ_",
	"GEMINI_", "AZURE_", "NVIDIA_", "SAMBANOVA_", "CEREBRAS_", "RUNPOD_", "DATABRICKS_", "PASSTHROUGH_", "SQLITE_STORE_DIR", "POSTGRES_", "HTTPS_PROXY", "HTTP_PROXY", "https_proxy", "http_proxy"}

// baseEnv is a clean environment: no provider, AWS, proxy or Llama Stack
// variables from the machine running the tests leak into the server.
func baseEnv() []string {
	var env []string
next:
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		for _, p := range providerEnvPrefixes {
			if strings.HasPrefix(name, p) {
				continue next
			}
		}
		env = append(env, kv)
	}
	// No IAM credentials from the machine, and no instance metadata.
	return append(env, "AWS_EC2_METADATA_DISABLED=true", "AWS_CONFIG_FILE=/nonexistent", "AWS_SHARED_CREDENTIALS_FILE=/nonexistent")
}

// startServer runs `llama stack run args...` on a free loopback port and
// waits until it listens. Cleanup sends SIGTERM and checks the exit.
func startServer(t *testing.T, env []string, args ...string) *server {
	t.Helper()
	full := append([]string{"stack", "run"}, args...)
	full = append(full, "--host", "127.0.0.1", "--port", "0", "--log-format", "json")
	cmd := exec.Command(binary, full...)
	cmd.Env = append(baseEnv(), withStoreDir(t, env)...)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	s := &server{cmd: cmd, exited: make(chan struct{})}
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Text()
			s.mu.Lock()
			s.logs = append(s.logs, line)
			s.mu.Unlock()
			var rec struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				addr <- rec.Addr
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	go func() {
		s.err = cmd.Wait()
		close(s.exited)
	}()
	select {
	case a := <-addr:
		s.URL = "http://" + a
	case <-s.exited:
		t.Fatalf("server exited before listening: %v\n%s", s.err, strings.Join(s.Logs(), "\n"))
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("server did not listen within 20s:\n%s", strings.Join(s.Logs(), "\n"))
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
			s.mu.Lock()
			killed := s.killed
			s.mu.Unlock()
			if s.err != nil && !killed {
				t.Errorf("server exit after SIGTERM: %v\n%s", s.err, strings.Join(s.Logs(), "\n"))
			}
		case <-time.After(40 * time.Second):
			_ = cmd.Process.Kill()
			t.Errorf("server did not stop within 40s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("server log:\n%s", strings.Join(s.Logs(), "\n"))
		}
	})
	return s
}

// writeFile writes content to a file in a test temp dir.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
