package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
	"github.com/llama-stack-go/llama-stack-go/internal/store/storetest"
)

// dsnEnv names the variable that points the tests at a PostgreSQL server
// (.ci/postgres.sh prints it).
const dsnEnv = "LLAMA_TEST_POSTGRES_DSN"

// testDSN returns the server's DSN, or skips the test.
func testDSN(t *testing.T) string {
	t.Helper()
	dsn := os.Getenv(dsnEnv)
	if dsn == "" {
		t.Skipf("%s is not set; start a server with `export $(.ci/postgres.sh)`", dsnEnv)
	}
	return dsn
}

// freshSchema creates an empty schema for one test and drops it when the
// test ends, returning the DSN that makes it the connection's schema.
func freshSchema(t *testing.T) (dsn, schema string) {
	t.Helper()
	base := testDSN(t)
	b := make([]byte, 8)
	rand.Read(b)
	schema = "storetest_" + hex.EncodeToString(b)
	admin := func(sql string) {
		t.Helper()
		ctx := context.WithoutCancel(t.Context())
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			t.Fatalf("connect to %s: %v", dsnEnv, err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	admin(`CREATE SCHEMA ` + schema)
	t.Cleanup(func() { admin(`DROP SCHEMA ` + schema + ` CASCADE`) })
	return withParam(t, base, "search_path", schema), schema
}

// withParam adds a parameter to a URL or keyword=value DSN.
func withParam(t *testing.T, dsn, key, value string) string {
	t.Helper()
	if strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse %s: %v", dsnEnv, err)
		}
		q := u.Query()
		q.Set(key, value)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " " + key + "=" + value
}

// openFresh opens a backend on a fresh schema. The caller closes it.
func openFresh(t *testing.T) (*DB, string, string) {
	t.Helper()
	dsn, schema := freshSchema(t)
	d, err := OpenDSN(t.Context(), dsn, Options{})
	if err != nil {
		t.Fatalf("OpenDSN: %v", err)
	}
	return d, dsn, schema
}

func TestConformance(t *testing.T) {
	testDSN(t)
	storetest.Run(t, func(t *testing.T) store.Backend {
		d, _, _ := openFresh(t)
		return d
	})
}

func TestSchemaTooNew(t *testing.T) {
	d, dsn, schema := openFresh(t)
	ctx := t.Context()
	must(t, d.Set(ctx, "k", []byte("v")))
	_, err := d.pool.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES (99, '0099_future.sql')`)
	must(t, err)
	must(t, d.Close())

	_, err = OpenDSN(ctx, dsn, Options{})
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Fatalf("OpenDSN of a newer schema: error = %v, want ErrSchemaTooNew", err)
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a newer schema is reported as unavailable: %v", err)
	}
	known := len(mustMigrations(t))
	for _, want := range []string{schema, "version 99", fmt.Sprintf("up to %d", known)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestReopenKeepsData(t *testing.T) {
	d, dsn, _ := openFresh(t)
	ctx := t.Context()
	must(t, d.Set(ctx, "models/a", []byte(`{"a":1}`)))
	must(t, d.Close())
	d, err := OpenDSN(ctx, dsn, Options{})
	must(t, err)
	defer d.Close()
	if v, err := d.Get(ctx, "models/a"); err != nil || string(v) != `{"a":1}` {
		t.Fatalf("Get after reopen = %q, %v", v, err)
	}
	var n int
	must(t, d.pool.QueryRow(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
	if want := len(mustMigrations(t)); n != want {
		t.Errorf("schema_migrations has %d rows after two opens, want %d", n, want)
	}
}

func TestConcurrentMigrations(t *testing.T) {
	// Replicas starting at once on an empty schema: one migrates, the
	// others wait for it and find nothing to do.
	dsn, _ := freshSchema(t)
	const n = 6
	dbs := make([]*DB, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			dbs[i], errs[i] = OpenDSN(t.Context(), dsn, Options{})
		})
	}
	close(start)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("OpenDSN %d: %v", i, err)
		}
	}
	for i, d := range dbs {
		if d == nil {
			continue
		}
		must(t, d.Set(t.Context(), fmt.Sprintf("k%d", i), []byte("v")))
		defer d.Close()
	}
	if dbs[0] == nil {
		t.FailNow()
	}
	var rows, distinct int
	must(t, dbs[0].pool.QueryRow(t.Context(), `SELECT COUNT(*), COUNT(DISTINCT version) FROM schema_migrations`).Scan(&rows, &distinct))
	if want := len(mustMigrations(t)); rows != want || distinct != want {
		t.Errorf("schema_migrations has %d rows (%d versions), want %d", rows, distinct, want)
	}
}

func TestColumnsCollateC(t *testing.T) {
	d, _, schema := openFresh(t)
	defer d.Close()
	rows, err := d.pool.Query(t.Context(), `SELECT table_name, column_name, COALESCE(collation_name, '')
		FROM information_schema.columns
		WHERE table_schema = $1 AND data_type = 'text' AND table_name IN ('kv', 'counters', 'records')`, schema)
	must(t, err)
	cols, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) ([3]string, error) {
		var c [3]string
		err := r.Scan(&c[0], &c[1], &c[2])
		return c, err
	})
	must(t, err)
	if len(cols) != 7 {
		t.Errorf("%d text columns, want 7: %v", len(cols), cols)
	}
	for _, c := range cols {
		if c[2] != "C" {
			t.Errorf("%s.%s collates %q, want C (byte order whatever the locale)", c[0], c[1], c[2])
		}
	}
}

func TestQueryPlansUseIndexes(t *testing.T) {
	d, _, _ := openFresh(t)
	defer d.Close()
	ctx := t.Context()
	// Enough rows, spread over kinds, owners and models, for the planner
	// to prefer the indexes on its own statistics.
	var recs []store.Record
	for i := range 5000 {
		recs = append(recs, store.Record{
			Kind: []string{store.KindResponse, store.KindChatCompletion, store.KindConversationItem}[i%3], ID: fmt.Sprintf("r%05d", i),
			Parent: []string{"", "", "", "conv_1", "conv_2"}[i%5], SortKey: int64(i),
			Model: fmt.Sprintf("m%d", i%7), Owner: fmt.Sprintf("o%d", i%11), Body: []byte(`{"pad":"` + strings.Repeat("x", 200) + `"}`),
		})
	}
	must(t, d.PutRecords(ctx, recs...))
	_, err := d.pool.Exec(ctx, `ANALYZE records`)
	must(t, err)

	plan := func(query string, args ...any) string {
		t.Helper()
		rows, err := d.pool.Query(ctx, "EXPLAIN "+query, args...)
		must(t, err)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		must(t, err)
		return strings.Join(lines, "\n")
	}
	for _, q := range []store.ListQuery{
		{}, {Parent: "conv_1"}, {Model: "m1"}, {Owner: "o1"}, {Model: "m1", Owner: "o1"},
	} {
		for _, cur := range []struct{ after, before string }{{"", ""}, {"r00001", ""}, {"", "r04000"}, {"r00001", "r04000"}} {
			for _, desc := range []bool{false, true} {
				lq := q
				lq.Kind, lq.Limit, lq.Desc, lq.After, lq.Before = store.KindResponse, 20, desc, cur.after, cur.before
				query, args, _, _ := listSQL(lq, 1, 4000)
				p := plan(query, args...)
				// Every predicate must be a condition of the index scan
				// (no Filter line), so it reads matching rows only. The
				// planner may sort a few matching rows rather than walk
				// an index in order; with many it must not.
				many := lq.Model == "" && lq.Owner == ""
				if !strings.Contains(p, "Index") || strings.Contains(p, "Seq Scan") || strings.Contains(p, "Filter:") ||
					(many && strings.Contains(p, "Sort")) {
					t.Errorf("plan of %+v:\n%s\nwant an index scan with every predicate in its condition (and no sort of %v)", lq, p, many)
				}
			}
		}
	}
	for _, tt := range []struct {
		query string
		args  []any
		want  string
	}{
		{`SELECT key, value FROM kv WHERE key >= $1 AND key < $2 ORDER BY key`, []any{"a", "b"}, "Index"},
		{`DELETE FROM records WHERE parent = $1 AND parent <> ''`, []any{"conv_1"}, "records_by_parent"},
	} {
		if p := plan(tt.query, tt.args...); !strings.Contains(p, tt.want) {
			t.Errorf("plan of %s:\n%s\nwant %s", tt.query, p, tt.want)
		}
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
	must(t, err)
	return migs
}

// closedPort returns a loopback port that nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	must(t, l.Close())
	return port
}

func TestUnreachable(t *testing.T) {
	const secret = "hunter2-Sup3rSecret"
	port := closedPort(t)
	t.Run("Config", func(t *testing.T) {
		_, err := Open(t.Context(), Config{Host: "127.0.0.1", Port: port, DB: "db", User: "u", Password: secret, SSLMode: "disable"}, Options{})
		t.Logf("Open: %v", err)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Fatalf("Open of a closed port: error = %v, want ErrUnavailable", err)
		}
		if strings.Contains(err.Error(), secret) {
			t.Fatalf("error shows the password: %v", err)
		}
	})
	t.Run("DSN", func(t *testing.T) {
		_, err := OpenDSN(t.Context(), fmt.Sprintf("postgres://u:%s@127.0.0.1:%d/db?sslmode=disable", secret, port), Options{})
		if !errors.Is(err, store.ErrUnavailable) || strings.Contains(err.Error(), secret) {
			t.Fatalf("OpenDSN of a closed port: error = %v, want ErrUnavailable without the password", err)
		}
	})
}

func TestBadDSNHidesPassword(t *testing.T) {
	const secret = "hunter2-Sup3rSecret"
	for _, dsn := range []string{
		"postgres://u:" + secret + "@127.0.0.1:notaport/db",
		"postgres://u:" + secret + "@[::1/db",
		"host=127.0.0.1 password='" + secret + `\' port=x`,
		"host=127.0.0.1 password=" + secret + " sslmode=bogus",
		"host=127.0.0.1 password=" + secret + " port=99999999",
	} {
		_, err := OpenDSN(t.Context(), dsn, Options{})
		if err == nil {
			t.Errorf("OpenDSN(%q) succeeded, want an error", dsn)
			continue
		}
		if strings.Contains(err.Error(), secret) || strings.Contains(err.Error(), "Sup3r") {
			t.Errorf("OpenDSN error shows the password: %v", err)
		}
	}
}

func TestAuthFailure(t *testing.T) {
	base := testDSN(t)
	u, err := url.Parse(base)
	if err != nil || u.User == nil {
		t.Skipf("%s is not a postgres:// URL with a user", dsnEnv)
	}
	const wrong = "wrong-Passw0rd-for-test"
	u.User = url.UserPassword(u.User.Username(), wrong)
	_, err = OpenDSN(t.Context(), u.String(), Options{})
	t.Logf("OpenDSN: %v", err)
	if err == nil {
		t.Skip("the server accepted a wrong password (trust authentication?)")
	}
	if errors.Is(err, store.ErrUnavailable) {
		t.Errorf("an authentication failure is reported as unavailable: %v", err)
	}
	if strings.Contains(err.Error(), wrong) {
		t.Errorf("error shows the password: %v", err)
	}
	if !strings.Contains(err.Error(), "authentication failed") {
		t.Errorf("error %q does not say that authentication failed", err)
	}
}

func TestConfigConnects(t *testing.T) {
	base := testDSN(t)
	pc, err := pgxpool.ParseConfig(base)
	must(t, err)
	cc := pc.ConnConfig
	d, err := Open(t.Context(), Config{
		Host: cc.Host, Port: int(cc.Port), DB: cc.Database, User: cc.User, Password: cc.Password,
		SSLMode: "disable", PoolSize: 3,
	}, Options{})
	if err != nil {
		t.Fatalf("Open with the DSN's settings as a Config: %v", err)
	}
	defer d.Close()
	must(t, d.Ping(t.Context()))
	if got := d.pool.Config().MaxConns; got != 3 {
		t.Errorf("pool size = %d, want 3", got)
	}
}

func TestUnknownSchema(t *testing.T) {
	base := testDSN(t)
	_, err := OpenDSN(t.Context(), withParam(t, base, "search_path", "no_such_schema_here"), Options{})
	if err == nil || !strings.Contains(err.Error(), "no existing schema") {
		t.Fatalf("OpenDSN with a missing schema: error = %v", err)
	}
}

func TestPoolConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"plain", Config{Host: "db.example", Port: 6543, DB: "llama", User: "gw", Password: "p", SSLMode: "require", PoolSize: 7}, ""},
		{"quotes and spaces", Config{Host: "/var/run/postgresql", DB: `it's "db"`, User: `o'brien \x`, Password: `a' sslmode='disable`}, ""},
		{"unicode", Config{Host: "localhost", DB: "données", User: "ユーザー", Password: "pässwörd ✓"}, ""},
		{"bad sslmode", Config{SSLMode: "on"}, "sslmode"},
		{"bad port", Config{Port: 70000}, "port"},
		{"negative pool", Config{PoolSize: -1}, "pool size"},
		{"NUL", Config{Password: "a\x00b"}, "NUL"},
		{"missing CA file", Config{Host: "h", SSLMode: "verify-full", CACertPath: "/nonexistent/ca.pem"}, "ca.pem"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pc, err := poolConfig(tt.cfg)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("poolConfig error = %v, want one about %q", err, tt.wantErr)
				}
				if tt.cfg.Password != "" && strings.Contains(err.Error(), tt.cfg.Password) {
					t.Fatalf("error shows the password: %v", err)
				}
				return
			}
			must(t, err)
			cc := pc.ConnConfig
			wantPort := uint16(tt.cfg.Port)
			if wantPort == 0 {
				wantPort = cc.Port // the libpq default
			}
			if cc.Host != tt.cfg.Host || cc.Port != wantPort || cc.Database != tt.cfg.DB || cc.User != tt.cfg.User || cc.Password != tt.cfg.Password {
				t.Errorf("parsed {%q %d %q %q %q}, want {%q %d %q %q %q}", cc.Host, cc.Port, cc.Database, cc.User, cc.Password,
					tt.cfg.Host, wantPort, tt.cfg.DB, tt.cfg.User, tt.cfg.Password)
			}
			if tt.cfg.PoolSize > 0 && pc.MaxConns != int32(tt.cfg.PoolSize) {
				t.Errorf("MaxConns = %d, want %d", pc.MaxConns, tt.cfg.PoolSize)
			}
			if tt.cfg.SSLMode == "require" && cc.TLSConfig == nil {
				t.Error("sslmode=require without TLS")
			}
			if strings.Contains(connString(tt.cfg), "password") {
				t.Errorf("connString holds the password: %q", connString(tt.cfg))
			}
		})
	}
}

// FuzzConnString checks that no host, database or user name can break out
// of its value in the connection string poolConfig builds: each parses back
// to itself, and the TLS setting stays the one asked for.
func FuzzConnString(f *testing.F) {
	f.Add("db.example", "llama", "gw")
	f.Add("/var/run/postgresql", `it's "db"`, `o'brien \x`)
	f.Add("h", "d' sslmode='disable", `u\' host='evil`)
	f.Add("", "", "")
	f.Add("données", "ユーザー", " lead and trail ")
	f.Fuzz(func(t *testing.T, host, db, user string) {
		if strings.ContainsRune(host+db+user, 0) || strings.Contains(host, ",") {
			t.Skip() // NUL is refused; a comma in host is libpq's list of hosts
		}
		pc, err := poolConfig(Config{Host: host, DB: db, User: user, SSLMode: "verify-full"})
		if err != nil {
			return // refused is fine; misparsed is not
		}
		cc := pc.ConnConfig
		if host != "" && cc.Host != host {
			t.Errorf("host %q parsed as %q", host, cc.Host)
		}
		if db != "" && cc.Database != db {
			t.Errorf("database %q parsed as %q", db, cc.Database)
		}
		if user != "" && cc.User != user {
			t.Errorf("user %q parsed as %q", user, cc.User)
		}
		// pgx reads "/..." and Windows paths ("C:\\...") as unix sockets,
		// which take no TLS.
		drive := len(host) >= 3 && (host[0] >= 'a' && host[0] <= 'z' || host[0] >= 'A' && host[0] <= 'Z') && host[1] == ':' && host[2] == '\\'
		socket := strings.HasPrefix(host, "/") || drive
		if tcp := host != "" && !socket; tcp && (cc.TLSConfig == nil || len(cc.Fallbacks) != 0) {
			t.Errorf("sslmode=verify-full was overridden (TLS %v, %d fallbacks)", cc.TLSConfig != nil, len(cc.Fallbacks))
		}
	})
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestDroppedConnectionIsUnavailable(t *testing.T) {
	// The server ends the pool's connections (as a restart or failover
	// would): the call that meets a dead connection fails as unavailable,
	// and the pool reconnects for the next.
	dsn, schema := freshSchema(t)
	app := "storetest-" + schema
	d, err := OpenDSN(t.Context(), withParam(t, dsn, "application_name", app), Options{})
	must(t, err)
	defer d.Close()
	ctx := t.Context()
	must(t, d.Set(ctx, "k", []byte("v")))

	admin, err := pgx.Connect(ctx, testDSN(t))
	must(t, err)
	defer admin.Close(context.WithoutCancel(ctx))
	var killed int
	must(t, admin.QueryRow(ctx, `SELECT COUNT(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1) t`, app).Scan(&killed))
	if killed == 0 {
		t.Fatal("no connection of the pool to end")
	}
	_, err = d.Get(ctx, "k")
	t.Logf("Get on an ended connection: %v", err)
	if err != nil && !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Get on an ended connection: error = %v, want ErrUnavailable", err)
	}
	if v, err := d.Get(ctx, "k"); err != nil || string(v) != "v" {
		t.Fatalf("Get after reconnecting = %q, %v", v, err)
	}
}
