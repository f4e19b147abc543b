package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestQuick builds benchrun and runs it in -quick mode end to end: it
// builds the server from the tree, starts the mock, the bare proxy and the
// server, runs every phase briefly and prints the report. It checks that
// the harness works, never how fast anything is.
func TestQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server")
	}
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("no go command")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	bin := filepath.Join(t.TempDir(), "benchrun")
	build := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(t.TempDir(), "report.md")
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "-quick", "-timeout", "60s", "-out", out)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("benchrun -quick: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	t.Logf("benchrun -quick took %s", time.Since(start).Round(time.Millisecond))
	report := stdout.String()
	for _, want := range []string{
		"**Non-streamed, fixed rate**", "| 500/s | direct |", "| 2000/s | gateway |",
		"**Maximum throughput, 64 connections", "| proxy |",
		"**Streaming**", "**Memory**", "**Targets**", "request logging **on**",
	} {
		if !strings.Contains(report, want) {
			t.Errorf("report lacks %q:\n%s", want, report)
		}
	}
	if strings.Contains(report, "Failures:") {
		t.Errorf("requests failed:\n%s\nstderr:\n%s", report, stderr.String())
	}
	saved, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(saved, []byte("**Targets**")) {
		t.Errorf("-out file lacks the report:\n%s", saved)
	}
}
