package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestUsageExitCodes(t *testing.T) {
	tests := []struct {
		args []string
		code int
	}{
		{[]string{"--help"}, ExitOK},
		{[]string{"version"}, ExitOK},
		{[]string{"version", "x"}, ExitUsage},
		{[]string{"stack", "list-providers"}, ExitOK},
		{[]string{"stack", "list-providers", "safety"}, ExitUsage},
		{nil, ExitUsage},
		{[]string{"stack"}, ExitUsage},
		{[]string{"stack", "run", "--port", "70000"}, ExitUsage},
		{[]string{"stack", "run", "--log-level", "loud"}, ExitUsage},
		{[]string{"stack", "run", "a.yaml", "b.yaml"}, ExitUsage},
		{[]string{"stack", "run", "--env", "novalue"}, ExitUsage},
	}
	for _, tt := range tests {
		var out, errOut bytes.Buffer
		if got := Run(t.Context(), tt.args, func(string) (string, bool) { return "", false }, &out, &errOut); got != tt.code {
			t.Errorf("%v: exit %d, want %d (%s)", tt.args, got, tt.code, errOut.String())
		}
	}
}

func TestParseInterspersed(t *testing.T) {
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	port := fs.Int("port", 0, "")
	pos, err := parseInterspersed(fs, []string{"./config.yaml", "--port", "9", "--", "--not-a-flag"})
	if err != nil || *port != 9 || strings.Join(pos, ",") != "./config.yaml,--not-a-flag" {
		t.Fatalf("pos=%v port=%d err=%v", pos, *port, err)
	}
}

// syncBuffer is a log sink the server goroutine writes while the test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// listenAddr runs `stack run` until it logs where it listens, then stops it.
func listenAddr(t *testing.T, env map[string]string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var logs syncBuffer
	done := make(chan int)
	go func() {
		done <- Run(ctx, append([]string{"stack", "run", "--log-format", "json", "--host", "127.0.0.1"}, args...),
			func(k string) (string, bool) { v, ok := env[k]; return v, ok }, io.Discard, &logs)
	}()
	exited := false
	defer func() {
		cancel()
		if !exited {
			<-done
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(logs.String(), "\n") {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal([]byte(line), &rec) == nil && rec.Msg == "listening" {
				return rec.Addr
			}
		}
		select {
		case code := <-done:
			exited = true
			t.Fatalf("exited %d: %s", code, logs.String())
		case <-time.After(10 * time.Millisecond):
		}
	}
	t.Fatalf("never listened: %s", logs.String())
	return ""
}

func TestPortPrecedence(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(cfg, []byte("version: 2\nproviders:\n  inference:\n    - provider_id: bedrock\n      provider_type: remote::bedrock\nserver:\n  port: 18931\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := listenAddr(t, nil, cfg); !strings.HasSuffix(got, ":18931") {
		t.Errorf("config port: %s", got)
	}
	if got := listenAddr(t, map[string]string{"LLAMA_STACK_PORT": "18932"}, cfg); !strings.HasSuffix(got, ":18932") {
		t.Errorf("LLAMA_STACK_PORT: %s", got)
	}
	if got := listenAddr(t, map[string]string{"LLAMA_STACK_PORT": "18932"}, cfg, "--port", "18933"); !strings.HasSuffix(got, ":18933") {
		t.Errorf("--port: %s", got)
	}
}
