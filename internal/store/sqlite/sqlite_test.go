package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
	"github.com/llama-stack-go/llama-stack-go/internal/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Backend {
		return openTemp(t, filepath.Join(t.TempDir(), "state.db"))
	})
}

// openTemp opens path, failing the test on error. The caller closes it.
func openTemp(t *testing.T, path string) *DB {
	t.Helper()
	d, err := Open(t.Context(), path, Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return d
}

func TestOpenCreatesDirectories(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a", "b")
	path := filepath.Join(dir, "state.db")
	d := openTemp(t, path)
	defer d.Close()
	st, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if perm := st.Mode().Perm(); perm != 0o700 {
		t.Errorf("created directory mode = %v, want 0700", perm)
	}
	if _, err := os.Stat(path); err != nil {
		t.Errorf("database file: %v", err)
	}
	if got := d.Path(); got != path {
		t.Errorf("Path() = %q, want %q", got, path)
	}
}

func TestOpenOddPath(t *testing.T) {
	// Characters that mean something in a URI are part of the file name.
	path := filepath.Join(t.TempDir(), "we?ird #name%20 ünï.db")
	d := openTemp(t, path)
	must(t, d.Set(t.Context(), "k", []byte("v")))
	must(t, d.Close())
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database not at the given path: %v", err)
	}
	d = openTemp(t, path)
	defer d.Close()
	if v, err := d.Get(t.Context(), "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get after reopen = %q, %v", v, err)
	}
}

func TestPragmas(t *testing.T) {
	d := openTemp(t, filepath.Join(t.TempDir(), "state.db"))
	defer d.Close()
	ctx := t.Context()
	tests := []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{d.w, "journal_mode", "wal"},
		{d.w, "synchronous", "1"}, // NORMAL
		{d.w, "foreign_keys", "1"},
		{d.w, "busy_timeout", "5000"},
		{d.r, "query_only", "1"},
		{d.r, "busy_timeout", "5000"},
		{d.r, "journal_mode", "wal"},
	}
	for _, tt := range tests {
		var got string
		if err := tt.db.QueryRowContext(ctx, "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
		}
		if got != tt.want {
			t.Errorf("PRAGMA %s = %q, want %q", tt.pragma, got, tt.want)
		}
	}
	// The read pool refuses writes.
	if _, err := d.r.ExecContext(ctx, `INSERT INTO kv (key, value) VALUES ('k', x'00')`); err == nil {
		t.Error("a write on the read pool succeeded")
	}
}

func TestReadersDoNotWaitForWriter(t *testing.T) {
	d := openTemp(t, filepath.Join(t.TempDir(), "state.db"))
	defer d.Close()
	ctx := t.Context()
	must(t, d.Set(ctx, "k", []byte("old")))
	tx, err := d.w.BeginTx(ctx, nil)
	must(t, err)
	defer tx.Rollback()
	if _, err := tx.ExecContext(ctx, `UPDATE kv SET value = CAST('new' AS BLOB) WHERE key = 'k'`); err != nil {
		t.Fatal(err)
	}
	// The write transaction holds the write lock; reads go on, seeing the
	// last committed value.
	v, err := d.Get(ctx, "k")
	if err != nil || string(v) != "old" {
		t.Fatalf("Get during an open write = %q, %v; want old", v, err)
	}
	must(t, tx.Commit())
	v, err = d.Get(ctx, "k")
	if err != nil || string(v) != "new" {
		t.Fatalf("Get after commit = %q, %v; want new", v, err)
	}
}

func TestQueryPlansUseIndexes(t *testing.T) {
	d := openTemp(t, filepath.Join(t.TempDir(), "state.db"))
	defer d.Close()
	ctx := t.Context()
	plan := func(query string, args ...any) string {
		t.Helper()
		rows, err := d.r.QueryContext(ctx, "EXPLAIN QUERY PLAN "+query, args...)
		must(t, err)
		defer rows.Close()
		var lines []string
		for rows.Next() {
			var id, parent, notused int
			var detail string
			must(t, rows.Scan(&id, &parent, &notused, &detail))
			lines = append(lines, detail)
		}
		must(t, rows.Err())
		return strings.Join(lines, "; ")
	}
	for _, q := range []struct {
		q     store.ListQuery
		index string
	}{
		{store.ListQuery{}, "records_list "},
		{store.ListQuery{Parent: "conv_1"}, "records_list "},
		{store.ListQuery{Model: "m"}, "records_list_model "},
		{store.ListQuery{Owner: "o"}, "records_list_owner "},
		{store.ListQuery{Model: "m", Owner: "o"}, "records_list_owner_model "},
	} {
		for _, cur := range []struct{ after, before string }{{"", ""}, {"a", ""}, {"", "b"}, {"a", "b"}} {
			for _, desc := range []bool{false, true} {
				lq := q.q
				lq.Kind, lq.Limit, lq.Desc, lq.After, lq.Before = store.KindResponse, 20, desc, cur.after, cur.before
				query, args, _, _ := listSQL(lq, 1, 2)
				p := plan(query, args...)
				if !strings.Contains(p, "SEARCH records USING INDEX "+q.index) || strings.Contains(p, "TEMP B-TREE") {
					t.Errorf("plan of %+v: %s; want a search of index %s and no sort", lq, p, q.index)
				}
				if cur.after != "" || cur.before != "" {
					if !strings.Contains(p, "(sort_key,id)") {
						t.Errorf("plan of %+v: %s; want the cursor as a range of the index", lq, p)
					}
				}
			}
		}
	}
	for _, tt := range []struct {
		query string
		args  []any
		want  string
	}{
		{`SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key`, []any{"a", "b"}, "SEARCH kv USING INDEX sqlite_autoindex_kv_1 (key>? AND key<?)"},
		{`DELETE FROM records WHERE parent = ? AND parent <> ''`, []any{"p"}, "SEARCH records USING INDEX records_by_parent (parent=?)"},
		{`SELECT sort_key FROM records WHERE kind = ? AND id = ? AND parent = ? AND (? = '' OR owner = ?)`, []any{"k", "i", "", "", ""}, "SEARCH records USING INDEX sqlite_autoindex_records_1 (kind=? AND id=?)"},
	} {
		if p := plan(tt.query, tt.args...); !strings.Contains(p, tt.want) {
			t.Errorf("plan of %s: %s; want %s", tt.query, p, tt.want)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	ctx := t.Context()
	d := openTemp(t, path)
	must(t, d.Set(ctx, "models/a", []byte(`{"a":1}`)))
	must(t, d.PutRecords(ctx, store.Record{Kind: store.KindResponse, ID: "resp_1", SortKey: 7, Model: "m", Owner: "o", Body: []byte(`{"x":"ü"}`)}))
	now := time.Unix(1_800_000_000, 0)
	if _, _, err := d.Incr(ctx, "quota/a", 5, time.Hour, now); err != nil {
		t.Fatal(err)
	}
	must(t, d.Close())

	d = openTemp(t, path)
	defer d.Close()
	if v, err := d.Get(ctx, "models/a"); err != nil || string(v) != `{"a":1}` {
		t.Errorf("Get after reopen = %q, %v", v, err)
	}
	r, err := d.GetRecord(ctx, store.KindResponse, "resp_1")
	if err != nil || r.SortKey != 7 || r.Model != "m" || r.Owner != "o" || string(r.Body) != `{"x":"ü"}` {
		t.Errorf("GetRecord after reopen = %+v, %v", r, err)
	}
	if c, _, err := d.Incr(ctx, "quota/a", 1, time.Hour, now.Add(time.Minute)); err != nil || c != 6 {
		t.Errorf("Incr after reopen = %d, %v; want 6", c, err)
	}
	var n int
	must(t, d.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
	if want := len(mustMigrations(t)); n != want {
		t.Errorf("schema_migrations has %d rows after two opens, want %d", n, want)
	}
}

func TestConcurrentOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	const n = 4
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { dbs[i], errs[i] = Open(t.Context(), path, Options{}) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("Open %d: %v", i, errs[i])
			continue
		}
		must(t, dbs[i].Set(t.Context(), fmt.Sprintf("k%d", i), []byte("v")))
	}
	for _, d := range dbs {
		if d != nil {
			must(t, d.Close())
		}
	}
	d := openTemp(t, path)
	defer d.Close()
	entries, err := d.List(t.Context(), "k")
	if err != nil || len(entries) != n {
		t.Fatalf("List after concurrent opens: %d entries, %v; want %d", len(entries), err, n)
	}
}

func TestMigrationsAreNumbered(t *testing.T) {
	migs := mustMigrations(t)
	if len(migs) == 0 {
		t.Fatal("no migrations embedded")
	}
	for i, m := range migs {
		if m.Version != i+1 || !strings.HasPrefix(m.Name, fmt.Sprintf("%04d_", i+1)) || strings.TrimSpace(m.SQL) == "" {
			t.Errorf("migration %d = {%d %q, %d bytes}", i, m.Version, m.Name, len(m.SQL))
		}
	}
}

func mustMigrations(t *testing.T) []store.Migration {
	t.Helper()
	migs, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	return migs
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.db")
	d := openTemp(t, path)
	must(t, d.Set(t.Context(), "k", []byte("v")))
	_, err := d.w.ExecContext(t.Context(), `INSERT INTO schema_migrations (version, name, applied_at) VALUES (99, '0099_future.sql', 0)`)
	must(t, err)
	must(t, d.Close())

	_, err = Open(t.Context(), path, Options{})
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("Open of a newer schema: error = %v, want ErrSchemaTooNew", err)
	}
	known := len(mustMigrations(t))
	for _, want := range []string{path, "version 99", fmt.Sprintf("up to %d", known)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	// The refused open changed nothing.
	raw, err := sql.Open("sqlite", path)
	must(t, err)
	defer raw.Close()
	var v string
	must(t, raw.QueryRowContext(t.Context(), `SELECT value FROM kv WHERE key = 'k'`).Scan(&v))
	if v != "v" {
		t.Errorf("value after a refused open = %q", v)
	}
}

func TestOpenBadFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	random := make([]byte, 8192)
	for i := range random {
		random[i] = byte(rng.UintN(256))
	}
	tests := []struct {
		name    string
		setup   func(t *testing.T, path string)
		wantMsg string
	}{
		{"random bytes", func(t *testing.T, path string) {
			must(t, os.WriteFile(path, random, 0o600))
		}, "not a SQLite database"},
		{"short text", func(t *testing.T, path string) {
			must(t, os.WriteFile(path, []byte("hello"), 0o600))
		}, "not a SQLite database"},
		{"header then garbage", func(t *testing.T, path string) {
			b := append([]byte(sqliteMagic), random...)
			must(t, os.WriteFile(path, b, 0o600))
		}, "corrupt or not a SQLite database"},
		{"corrupted pages", func(t *testing.T, path string) {
			d := openTemp(t, path)
			for i := range 200 {
				must(t, d.Set(t.Context(), fmt.Sprintf("key-%03d", i), random[:200]))
			}
			must(t, d.Close())
			b, err := os.ReadFile(path)
			must(t, err)
			copy(b[100:], random) // page 1 after the header, the schema, and more
			must(t, os.WriteFile(path, b, 0o600))
		}, "corrupt or not a SQLite database"},
		{"a directory", func(t *testing.T, path string) {
			must(t, os.Mkdir(path, 0o700))
		}, "is a directory"},
		{"parent is a file", func(t *testing.T, path string) {
			must(t, os.WriteFile(filepath.Dir(path), nil, 0o600))
		}, "create its directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "state.db")
			must(t, os.MkdirAll(filepath.Dir(filepath.Dir(path)), 0o700))
			if tt.name != "parent is a file" {
				must(t, os.MkdirAll(filepath.Dir(path), 0o700))
			}
			tt.setup(t, path)
			d, err := Open(t.Context(), path, Options{})
			if err == nil {
				d.Close()
				t.Fatal("Open succeeded, want an error")
			}
			t.Logf("Open: %v", err)
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q: want the path and %q", err, tt.wantMsg)
			}
		})
	}
}

func TestOpenUnwritable(t *testing.T) {
	if os.Geteuid() == 0 {
		t.Skip("root ignores file permissions (TestOpenBadFiles covers a parent that cannot be made)")
	}
	t.Run("read-only directory", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "ro")
		must(t, os.Mkdir(dir, 0o500))
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		_, err := Open(t.Context(), filepath.Join(dir, "state.db"), Options{})
		t.Logf("Open: %v", err)
		if err == nil || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "cannot open it for writing") {
			t.Fatalf("Open in a read-only directory: error = %v", err)
		}
	})
	t.Run("read-only file", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "state.db")
		d := openTemp(t, path)
		must(t, d.Close())
		must(t, os.Chmod(path, 0o400))
		_, err := Open(t.Context(), path, Options{})
		t.Logf("Open: %v", err)
		if err == nil || !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), "cannot open it for writing") {
			t.Fatalf("Open of a read-only file: error = %v", err)
		}
	})
}

func TestOpenRejectsNonPaths(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db?mode=memory"} {
		if d, err := Open(t.Context(), p, Options{}); err == nil {
			d.Close()
			t.Errorf("Open(%q) succeeded, want an error", p)
		}
	}
}

func TestOpenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := Open(ctx, filepath.Join(t.TempDir(), "state.db"), Options{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Open with a cancelled context: error = %v, want context.Canceled", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestBusyIsUnavailable(t *testing.T) {
	// Another process (here: another DB on the same file) holds the write
	// lock for longer than the busy timeout.
	path := filepath.Join(t.TempDir(), "state.db")
	holder := openTemp(t, path)
	defer holder.Close()
	other, err := Open(t.Context(), path, Options{BusyTimeout: 10 * time.Millisecond})
	must(t, err)
	defer other.Close()
	tx, err := holder.w.BeginTx(t.Context(), nil) // BEGIN IMMEDIATE: the write lock
	must(t, err)
	err = other.Set(t.Context(), "k", []byte("v"))
	must(t, tx.Rollback())
	if !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Set while another process writes: error = %v, want ErrUnavailable", err)
	}
	// Reads are not blocked, and the write goes through once the lock is free.
	if _, err := other.Get(t.Context(), "k"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get: error = %v, want ErrNotFound", err)
	}
	must(t, other.Set(t.Context(), "k", []byte("v")))
}
