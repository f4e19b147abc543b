package sqlite

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// crashChildEnv, when set to a database path, makes the test binary the
// writer that TestCrashConsistency kills (see TestMain).
const crashChildEnv = "LLAMA_SQLITE_CRASH_CHILD"

// crashNow is the fixed clock of the crash test's counter.
var crashNow = time.Unix(1_900_000_000, 0)

// crashBody is the body of the crash test's record id.
func crashBody(id string) []byte {
	return []byte(fmt.Sprintf(`{"id":%q,"text":"données ✓ %s"}`, id, strings.Repeat("x", len(id)*37)))
}

// crashChild writes to the database at path from several goroutines until
// it is killed, printing a line to stdout for each write that returned:
// "rec ID" for a record, "incr N" for a counter increment. It returns the
// process exit code.
func crashChild(path string) int {
	ctx := context.Background()
	d, err := Open(ctx, path, Options{})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	var out sync.Mutex
	ack := func(line string) {
		out.Lock()
		defer out.Unlock()
		os.Stdout.WriteString(line + "\n") // one write: a line is whole or absent
	}
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 1_000_000 {
				conv := fmt.Sprintf("conv-%d-%06d", g, i)
				item := conv + "-item"
				err := d.PutRecords(ctx,
					store.Record{Kind: store.KindConversation, ID: conv, SortKey: int64(i), Body: crashBody(conv)},
					store.Record{Kind: store.KindConversationItem, ID: item, Parent: conv, Body: crashBody(item)},
				)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				ack("rec " + conv)
				ack("rec " + item)
				n, _, err := d.Incr(ctx, "quota/crash", 1, time.Hour, crashNow)
				if err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(3)
				}
				ack("incr " + strconv.FormatInt(n, 10))
			}
		})
	}
	wg.Wait()
	return 4 // not killed in time
}

func TestCrashConsistency(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a child process")
	}
	path := t.TempDir() + "/state.db"
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())

	const killAfter = 600 // acknowledged lines, mid-burst
	var records []string
	var maxCount int64
	lines := 0
	r := bufio.NewReader(stdout)
	killed := false
	for {
		line, err := r.ReadString('\n')
		if err == io.EOF {
			break // a final line without its newline was not acknowledged
		}
		must(t, err)
		lines++
		kind, val, _ := strings.Cut(strings.TrimSuffix(line, "\n"), " ")
		switch kind {
		case "rec":
			records = append(records, val)
		case "incr":
			n, err := strconv.ParseInt(val, 10, 64)
			must(t, err)
			maxCount = max(maxCount, n)
		default:
			t.Fatalf("child printed %q", line)
		}
		if lines == killAfter && !killed {
			must(t, cmd.Process.Signal(syscall.SIGKILL))
			killed = true
		}
	}
	err = cmd.Wait()
	if !killed {
		t.Fatalf("child ended after %d lines before it was killed: %v\n%s", lines, err, stderr.String())
	}
	ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus)
	if !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("child was not killed by SIGKILL: %v\n%s", err, stderr.String())
	}
	t.Logf("child acknowledged %d records and count %d before the kill", len(records), maxCount)

	d := openTemp(t, path)
	defer d.Close()
	var integrity string
	must(t, d.w.QueryRowContext(t.Context(), `PRAGMA integrity_check`).Scan(&integrity))
	if integrity != "ok" {
		t.Fatalf("integrity_check after kill -9: %s", integrity)
	}
	for _, id := range records {
		kind := store.KindConversation
		if strings.HasSuffix(id, "-item") {
			kind = store.KindConversationItem
		}
		rec, err := d.GetRecord(t.Context(), kind, id)
		if err != nil {
			t.Fatalf("acknowledged record %s after kill -9: %v", id, err)
		}
		if !json.Valid(rec.Body) || !bytes.Equal(rec.Body, crashBody(id)) {
			t.Fatalf("acknowledged record %s after kill -9 has body %q", id, rec.Body)
		}
	}
	count, _, err := d.Incr(t.Context(), "quota/crash", 0, time.Hour, crashNow)
	must(t, err)
	if count < maxCount {
		t.Fatalf("counter after kill -9 = %d, want at least the acknowledged %d", count, maxCount)
	}
}
