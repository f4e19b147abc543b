// Package sqlite is the SQLite backend of store: one database file that holds
// the key-value space, the fixed-window counters and the records of a server
// that runs as one process (several processes on one host work too, as the
// file locks of SQLite serialise them).
//
// The file is in WAL mode with synchronous=NORMAL. A transaction is written
// to the WAL before its call returns, so killing the process (kill -9, a
// panic, an OOM kill) loses nothing that was committed; an operating-system
// crash or power loss may lose the last transactions before a checkpoint,
// but never leaves the database corrupt.
//
// Writes go through a pool of one connection, so writers of one process
// queue in Go instead of failing with SQLITE_BUSY; reads use a separate pool
// of read-only connections that run concurrently with the writer and with
// each other.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	msqlite "modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// Interface guard.
var _ store.Backend = (*DB)(nil)

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// Logger receives migration and lifecycle messages; nil discards them.
	Logger *slog.Logger
	// BusyTimeout is how long a statement waits for a lock held by another
	// process before it fails; 0 means 5s.
	BusyTimeout time.Duration
	// MaxReaders caps the concurrent read connections; 0 means
	// max(4, GOMAXPROCS).
	MaxReaders int
}

// DB is an open SQLite database. It is safe for concurrent use.
type DB struct {
	path string
	log  *slog.Logger
	w    *sql.DB // one connection: every write of this process, in turn
	r    *sql.DB // read-only connections

	closeOnce sync.Once
	closeErr  error
}

// sqliteMagic starts every SQLite 3 database file.
const sqliteMagic = "SQLite format 3\x00"

// Open opens the database file at path, creating it and its parent
// directories (mode 0700) if they do not exist, and brings its schema up to
// date. path is a file system path; Open does not expand "~". A file that is
// not a SQLite database, a path that cannot be written, and a schema newer
// than this server (store.ErrSchemaTooNew) are errors that name the path.
func Open(ctx context.Context, path string, opts Options) (*DB, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("open sqlite database %q: need a file system path", path)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	if err := precheck(abs); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("store", "sqlite", "path", abs)
	busy := opts.BusyTimeout
	if busy <= 0 {
		busy = 5 * time.Second
	}
	readers := opts.MaxReaders
	if readers <= 0 {
		readers = max(4, runtime.GOMAXPROCS(0))
	}

	w, err := sql.Open("sqlite", dsn(abs, busy, false))
	if err != nil {
		return nil, openError(abs, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, w, log); err != nil {
		return nil, errors.Join(openError(abs, err), w.Close())
	}

	r, err := sql.Open("sqlite", dsn(abs, busy, true))
	if err != nil {
		return nil, errors.Join(openError(abs, err), w.Close())
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	r.SetConnMaxLifetime(0)
	r.SetConnMaxIdleTime(0)
	if err := r.PingContext(ctx); err != nil {
		return nil, errors.Join(openError(abs, err), r.Close(), w.Close())
	}
	log.Debug("opened database")
	return &DB{path: abs, log: log, w: w, r: r}, nil
}

// precheck gives clear errors for the paths SQLite would reject with a
// terse code: a directory, a parent that cannot be made, a file that does
// not start like a SQLite database.
func precheck(path string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("open sqlite database %s: create its directory: %w", path, err)
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("open sqlite database %s: %w", path, err)
	}
	if st.IsDir() {
		return fmt.Errorf("open sqlite database %s: is a directory", path)
	}
	if st.Size() == 0 {
		return nil // an empty file is an empty database
	}
	head := make([]byte, len(sqliteMagic))
	if _, err := io.ReadFull(f, head); err != nil || string(head) != sqliteMagic {
		return fmt.Errorf("open sqlite database %s: the file is not a SQLite database (it does not start with the SQLite header)", path)
	}
	return nil
}

// dsn is the modernc.org/sqlite data source name for path. Pragmas are set
// on every new connection; the writer's transactions take the write lock at
// BEGIN (so they never fail upgrading a read lock), and readers refuse
// writes.
func dsn(path string, busy time.Duration, readOnly bool) string {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout("+strconv.FormatInt(busy.Milliseconds(), 10)+")")
	if readOnly {
		q.Add("_pragma", "query_only(1)")
	} else {
		q.Add("_pragma", "journal_mode(WAL)")
		q.Add("_pragma", "synchronous(NORMAL)")
		q.Add("_pragma", "foreign_keys(1)")
		q.Add("_pragma", "journal_size_limit(67108864)") // truncate the WAL to 64 MiB after a checkpoint
		q.Set("_txlock", "immediate")
	}
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: q.Encode()}
	// url.URL writes file:///abs/path; SQLite reads it as the local file
	// /abs/path, with %-escapes in the path decoded.
	return u.String()
}

// openError wraps an error of opening path, saying what is wrong in words
// for the SQLite codes an operator can act on.
func openError(path string, err error) error {
	var serr *msqlite.Error
	if errors.As(err, &serr) {
		switch serr.Code() & 0xff {
		case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
			return fmt.Errorf("open sqlite database %s: the file is corrupt or not a SQLite database: %w", path, err)
		case sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_PERM, sqlite3.SQLITE_AUTH:
			return fmt.Errorf("open sqlite database %s: cannot open it for writing (check the permissions of the file, its -wal and -shm files and its directory): %w", path, err)
		case sqlite3.SQLITE_BUSY:
			return fmt.Errorf("open sqlite database %s: %w: locked by another process: %w", path, store.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("open sqlite database %s: %w", path, err)
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations in version order.
func migrations() ([]store.Migration, error) {
	return store.LoadMigrations(migrationFiles, "migrations")
}

// migrate brings the schema of w up to date in one transaction, which
// BEGIN IMMEDIATE makes exclusive among writers of every process.
func migrate(ctx context.Context, w *sql.DB, log *slog.Logger) (err error) {
	migs, err := migrations()
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	tx, err := w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version    INTEGER PRIMARY KEY,
		name       TEXT NOT NULL,
		applied_at INTEGER NOT NULL
	) STRICT`); err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: read schema version: %w", err)
	}
	if known := len(migs); current > known {
		return fmt.Errorf("%w: the database has schema version %d, this server knows versions up to %d", store.ErrSchemaTooNew, current, known)
	}
	for _, m := range migs[current:] {
		if _, err := tx.ExecContext(ctx, m.SQL); err != nil {
			return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`,
			m.Version, m.Name, time.Now().Unix()); err != nil {
			return fmt.Errorf("migrate: record %s: %w", m.Name, err)
		}
		log.Info("applied schema migration", "version", m.Version, "name", m.Name)
	}
	// The schema version in the file header mirrors schema_migrations for
	// tools such as the sqlite3 shell. Writing it every time also proves
	// that the file is writable: SQLite opens a read-only file read-only
	// without a word, and only the first write would tell.
	if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, len(migs))); err != nil {
		return fmt.Errorf("migrate: write schema version: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}

// ignoreDone drops the error of rolling back a transaction that already
// ended.
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}

// Path returns the absolute path of the database file.
func (d *DB) Path() string { return d.path }

// Ping checks that the database answers, on both pools.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.r.PingContext(ctx); err != nil {
		return fail("ping", err)
	}
	if err := d.w.PingContext(ctx); err != nil {
		return fail("ping", err)
	}
	return nil
}

// Close waits for the statements in flight to finish and closes the
// database. Calls after the first return the first's result.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		d.closeErr = errors.Join(d.r.Close(), d.w.Close())
		if d.closeErr != nil {
			d.closeErr = fmt.Errorf("close sqlite database %s: %w", d.path, d.closeErr)
		}
		d.log.Debug("closed database")
	})
	return d.closeErr
}

// fail wraps err of operation op, with store.ErrUnavailable as well when
// SQLite says the database is busy (locked by another process for longer
// than the busy timeout) or full: a later try may succeed.
func fail(op string, err error) error {
	var serr *msqlite.Error
	if errors.As(err, &serr) {
		switch serr.Code() & 0xff {
		case sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED, sqlite3.SQLITE_FULL:
			return fmt.Errorf("sqlite %s: %w: %w", op, store.ErrUnavailable, err)
		}
	}
	return fmt.Errorf("sqlite %s: %w", op, err)
}
