package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// Get returns the value of key, or store.ErrNotFound.
func (d *DB) Get(ctx context.Context, key string) ([]byte, error) {
	if err := store.CheckText("key", key, true); err != nil {
		return nil, fmt.Errorf("postgres get: %w", err)
	}
	var v []byte
	err := d.pool.QueryRow(ctx, `SELECT value FROM kv WHERE key = $1`, key).Scan(&v)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("postgres get: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, d.fail("get", err)
	}
	return nonNil(v), nil
}

// Set writes key, replacing any value.
func (d *DB) Set(ctx context.Context, key string, value []byte) error {
	if err := store.CheckText("key", key, true); err != nil {
		return fmt.Errorf("postgres set: %w", err)
	}
	_, err := d.pool.Exec(ctx, `INSERT INTO kv (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value`, key, nonNil(value))
	if err != nil {
		return d.fail("set", err)
	}
	return nil
}

// Create writes key only if it is absent, else returns store.ErrExists. Of
// replicas creating the same key at once, exactly one succeeds.
func (d *DB) Create(ctx context.Context, key string, value []byte) error {
	if err := store.CheckText("key", key, true); err != nil {
		return fmt.Errorf("postgres create: %w", err)
	}
	tag, err := d.pool.Exec(ctx, `INSERT INTO kv (key, value) VALUES ($1, $2)
		ON CONFLICT (key) DO NOTHING`, key, nonNil(value))
	if err != nil {
		return d.fail("create", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres create: %w", store.ErrExists)
	}
	return nil
}

// Delete removes key, or returns store.ErrNotFound.
func (d *DB) Delete(ctx context.Context, key string) error {
	if err := store.CheckText("key", key, true); err != nil {
		return fmt.Errorf("postgres delete: %w", err)
	}
	tag, err := d.pool.Exec(ctx, `DELETE FROM kv WHERE key = $1`, key)
	if err != nil {
		return d.fail("delete", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres delete: %w", store.ErrNotFound)
	}
	return nil
}

// List returns the entries whose key starts with prefix, in byte order of
// the keys. The prefix is matched literally (no wildcards), as a range scan
// of the primary key.
func (d *DB) List(ctx context.Context, prefix string) ([]store.Entry, error) {
	if err := store.CheckText("prefix", prefix, false); err != nil {
		return nil, fmt.Errorf("postgres list: %w", err)
	}
	var rows pgx.Rows
	var err error
	if end, ok := store.PrefixEnd(prefix); ok {
		rows, err = d.pool.Query(ctx, `SELECT key, value FROM kv WHERE key >= $1 AND key < $2 ORDER BY key`, prefix, end)
	} else {
		rows, err = d.pool.Query(ctx, `SELECT key, value FROM kv WHERE key >= $1 ORDER BY key`, prefix)
	}
	if err != nil {
		return nil, d.fail("list", err)
	}
	defer rows.Close()
	var out []store.Entry
	for rows.Next() {
		var e store.Entry
		if err := rows.Scan(&e.Key, &e.Value); err != nil {
			return nil, d.fail("list", err)
		}
		e.Value = nonNil(e.Value)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, d.fail("list", err)
	}
	return out, nil
}

// Incr adds by to the counter key within a fixed window that starts at the
// first increment (or the first after the previous window ended) and lasts
// window; it returns the new count and when the window ends, in now's
// location. A window has ended once now reaches its end. One statement does
// the read and the write under the row's lock, so increments from any
// number of replicas add up exactly. The replicas' clocks are the callers'
// now: keep them in sync.
func (d *DB) Incr(ctx context.Context, key string, by int64, window time.Duration, now time.Time) (int64, time.Time, error) {
	if err := store.CheckText("key", key, true); err != nil {
		return 0, time.Time{}, fmt.Errorf("postgres incr: %w", err)
	}
	if window <= 0 {
		return 0, time.Time{}, fmt.Errorf("postgres incr: window %v: must be positive", window)
	}
	var count, resetAt int64
	err := d.pool.QueryRow(ctx, `INSERT INTO counters AS c (key, count, reset_at) VALUES ($1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET
			count    = CASE WHEN c.reset_at <= $4 THEN EXCLUDED.count    ELSE c.count + EXCLUDED.count END,
			reset_at = CASE WHEN c.reset_at <= $4 THEN EXCLUDED.reset_at ELSE c.reset_at END
		RETURNING count, reset_at`,
		key, by, now.Add(window).UnixNano(), now.UnixNano()).Scan(&count, &resetAt)
	if err != nil {
		return 0, time.Time{}, d.fail("incr", err)
	}
	return count, time.Unix(0, resetAt).In(now.Location()), nil
}

// nonNil returns b, or an empty slice for nil: pgx sends a nil []byte as
// NULL and every value column is NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
