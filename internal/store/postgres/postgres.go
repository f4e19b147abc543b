// Package postgres is the PostgreSQL backend of store, for gateways that run
// as many replicas sharing one database. It holds the key-value space, the
// fixed-window counters and the records in three tables of the connection's
// schema (the first of its search_path), created and upgraded by embedded,
// numbered migrations that replicas starting together apply once, in turn.
//
// Every operation that must be atomic across replicas is one statement or
// one transaction: Create is an INSERT ... ON CONFLICT DO NOTHING, Incr an
// INSERT ... ON CONFLICT DO UPDATE ... RETURNING, PutRecords and
// DeleteRecord transactions.
//
// Errors that mean the server cannot be reached (refused or timed-out
// connections, a server shutting down or out of connections) wrap
// store.ErrUnavailable; an authentication failure does not, as retrying
// will not help. No error message contains the password.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// Interface guard.
var _ store.Backend = (*DB)(nil)

// Config says which server and database to use.
type Config struct {
	// Host is a host name, an IP address or a unix socket directory;
	// "" means the libpq default (PGHOST, else the local socket).
	Host string
	// Port is the server's port; 0 means 5432 (or PGPORT).
	Port int
	// DB is the database name; "" means the user name.
	DB string
	// User is the role to log in as.
	User string
	// Password is the role's password; "" means none (or PGPASSWORD,
	// ~/.pgpass).
	Password string
	// SSLMode is libpq's sslmode: disable, allow, prefer (the default),
	// require, verify-ca or verify-full.
	SSLMode string
	// CACertPath is a PEM file of the certificate authorities that
	// verify-ca and verify-full check the server against; "" means the
	// system's.
	CACertPath string
	// PoolSize caps the open connections of this process; 0 means
	// max(4, number of CPUs).
	PoolSize int
}

// Options tunes Open. The zero value is ready to use.
type Options struct {
	// Logger receives migration and lifecycle messages; nil discards them.
	Logger *slog.Logger
	// ConnectTimeout bounds each attempt to connect; 0 means 10s.
	ConnectTimeout time.Duration
}

// DB is a pool of connections to one PostgreSQL database. It is safe for
// concurrent use.
type DB struct {
	pool     *pgxpool.Pool
	log      *slog.Logger
	password string // to scrub from error messages

	closeOnce sync.Once
}

// sslModes are the values of Config.SSLMode that libpq knows.
var sslModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}

// Open connects to the database cfg names and brings its schema up to date.
// It fails with an error wrapping store.ErrUnavailable if the server cannot
// be reached, and store.ErrSchemaTooNew if the schema was written by a newer
// version of this server.
func Open(ctx context.Context, cfg Config, opts Options) (*DB, error) {
	pcfg, err := poolConfig(cfg)
	if err != nil {
		return nil, err
	}
	return open(ctx, pcfg, opts)
}

// OpenDSN is Open with a libpq connection string, a URL
// (postgres://user:password@host:port/db?sslmode=verify-full) or
// keyword=value pairs, including pgxpool's pool_max_conns and run-time
// parameters such as search_path. A string that does not parse is an error
// that does not repeat it, as it may hold the password.
func OpenDSN(ctx context.Context, dsn string, opts Options) (*DB, error) {
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		var perr *pgconn.ParseConfigError
		if errors.As(err, &perr) {
			return nil, errors.New("postgres: parse connection string: it is not a valid URL or keyword=value string (details withheld: they could contain the password)")
		}
		return nil, errors.New("postgres: parse connection string: invalid")
	}
	return open(ctx, pcfg, opts)
}

// poolConfig turns cfg into a pool configuration. The password is set
// after parsing so that no connection string (nor a parse error quoting
// one) ever holds it.
func poolConfig(cfg Config) (*pgxpool.Config, error) {
	if cfg.Port < 0 || cfg.Port > 65535 {
		return nil, fmt.Errorf("postgres: port %d: out of range", cfg.Port)
	}
	if cfg.SSLMode != "" && !slices.Contains(sslModes, cfg.SSLMode) {
		return nil, fmt.Errorf("postgres: sslmode %q: want one of %s", cfg.SSLMode, strings.Join(sslModes, ", "))
	}
	if cfg.PoolSize < 0 || cfg.PoolSize > 1<<20 {
		return nil, fmt.Errorf("postgres: pool size %d: out of range", cfg.PoolSize)
	}
	for _, f := range []struct{ name, value string }{
		{"host", cfg.Host}, {"database", cfg.DB}, {"user", cfg.User}, {"password", cfg.Password}, {"CA certificate path", cfg.CACertPath},
	} {
		if strings.IndexByte(f.value, 0) >= 0 {
			return nil, fmt.Errorf("postgres: %s contains a NUL byte", f.name)
		}
	}
	pcfg, err := pgxpool.ParseConfig(connString(cfg))
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	if cfg.Password != "" {
		pcfg.ConnConfig.Password = cfg.Password
	}
	if cfg.PoolSize > 0 {
		pcfg.MaxConns = int32(cfg.PoolSize)
	}
	return pcfg, nil
}

// connString is the keyword=value connection string of cfg, without its
// password and pool size.
func connString(cfg Config) string {
	var b strings.Builder
	add := func(key, value string) {
		if value == "" {
			return
		}
		if b.Len() > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(key)
		b.WriteString("='")
		b.WriteString(strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(value))
		b.WriteByte('\'')
	}
	add("host", cfg.Host)
	if cfg.Port != 0 {
		add("port", strconv.Itoa(cfg.Port))
	}
	add("dbname", cfg.DB)
	add("user", cfg.User)
	add("sslmode", cfg.SSLMode)
	add("sslrootcert", cfg.CACertPath)
	return b.String()
}

// open makes the pool of pcfg and migrates the schema.
func open(ctx context.Context, pcfg *pgxpool.Config, opts Options) (*DB, error) {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cc := pcfg.ConnConfig
	log = log.With("store", "postgres", "host", cc.Host, "port", cc.Port, "database", cc.Database, "user", cc.User)
	if opts.ConnectTimeout > 0 {
		cc.ConnectTimeout = opts.ConnectTimeout
	} else if cc.ConnectTimeout == 0 {
		cc.ConnectTimeout = 10 * time.Second
	}
	if _, ok := cc.RuntimeParams["application_name"]; !ok {
		cc.RuntimeParams["application_name"] = "llama-stack-go"
	}
	pool, err := pgxpool.NewWithConfig(ctx, pcfg)
	if err != nil {
		return nil, scrub(fmt.Errorf("postgres: %w", err), cc.Password)
	}
	d := &DB{pool: pool, log: log, password: cc.Password}
	if err := d.migrate(ctx); err != nil {
		pool.Close()
		return nil, d.fail("open", err)
	}
	log.Debug("opened database")
	return d, nil
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations returns the embedded migrations in version order.
func migrations() ([]store.Migration, error) {
	return store.LoadMigrations(migrationFiles, "migrations")
}

// migrate brings the schema up to date in one transaction. A transaction
// advisory lock on the schema's name makes replicas that start together
// take turns: the first applies the migrations, the others then find
// nothing to do.
func (d *DB) migrate(ctx context.Context) error {
	migs, err := migrations()
	if err != nil {
		return fmt.Errorf("load migrations: %w", err)
	}
	return pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		var schema *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		if schema == nil {
			return errors.New("migrate: no schema to create tables in: the search_path names no existing schema")
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(hashtext('llama-stack-go/store'), hashtext($1))`, *schema); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer PRIMARY KEY,
			name       text NOT NULL,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return fmt.Errorf("migrate: read schema version: %w", err)
		}
		if known := len(migs); current > known {
			return fmt.Errorf("%w: schema %s has version %d, this server knows versions up to %d", store.ErrSchemaTooNew, *schema, current, known)
		}
		for _, m := range migs[current:] {
			if _, err := tx.Exec(ctx, m.SQL); err != nil {
				return fmt.Errorf("migrate: apply %s: %w", m.Name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version, name) VALUES ($1, $2)`, m.Version, m.Name); err != nil {
				return fmt.Errorf("migrate: record %s: %w", m.Name, err)
			}
			d.log.Info("applied schema migration", "schema", *schema, "version", m.Version, "name", m.Name)
		}
		return nil
	})
}

// Ping checks that the database answers.
func (d *DB) Ping(ctx context.Context) error {
	if err := d.pool.Ping(ctx); err != nil {
		return d.fail("ping", err)
	}
	return nil
}

// Close waits for the connections in use to be released and closes them
// all. Calls after the first do nothing.
func (d *DB) Close() error {
	d.closeOnce.Do(func() {
		d.pool.Close()
		d.log.Debug("closed database")
	})
	return nil
}

// fail wraps err of operation op: with store.ErrUnavailable as well when it
// means the server cannot be reached, and with the password scrubbed from
// its message.
func (d *DB) fail(op string, err error) error {
	if unavailable(err) {
		err = fmt.Errorf("postgres %s: %w: %w", op, store.ErrUnavailable, err)
	} else {
		err = fmt.Errorf("postgres %s: %w", op, err)
	}
	return scrub(err, d.password)
}

// unavailable reports whether err means that the server cannot be reached
// or cannot take the work right now, so that a later try may succeed.
func unavailable(err error) bool {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		// Class 08: connection exception; class 53: insufficient
		// resources (too many connections, disk full); 57P01-57P03: the
		// server is shutting down or starting up. Anything else is an
		// answer: a bad password, a missing database, an SQL error.
		class := pgErr.Code[:min(2, len(pgErr.Code))]
		return class == "08" || class == "53" || pgErr.Code == "57P01" || pgErr.Code == "57P02" || pgErr.Code == "57P03"
	}
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	return errors.As(err, &connectErr) || errors.As(err, &netErr) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || pgconn.SafeToRetry(err)
}

// scrubbed is an error whose message has a secret masked; it unwraps to
// the original.
type scrubbed struct {
	err    error
	secret string
}

func (e *scrubbed) Error() string { return strings.ReplaceAll(e.err.Error(), e.secret, "xxxxx") }
func (e *scrubbed) Unwrap() error { return e.err }

// scrub masks secret in err's message, in case a server or library ever
// quotes it.
func scrub(err error, secret string) error {
	if err == nil || secret == "" || !strings.Contains(err.Error(), secret) {
		return err
	}
	return &scrubbed{err: err, secret: secret}
}
