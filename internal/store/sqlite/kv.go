package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// Get returns the value of key, or store.ErrNotFound.
func (d *DB) Get(ctx context.Context, key string) ([]byte, error) {
	if err := store.CheckText("key", key, true); err != nil {
		return nil, fail("get", err)
	}
	var v []byte
	err := d.r.QueryRowContext(ctx, `SELECT value FROM kv WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlite get: %w", store.ErrNotFound)
	}
	if err != nil {
		return nil, fail("get", err)
	}
	return nonNil(v), nil
}

// Set writes key, replacing any value.
func (d *DB) Set(ctx context.Context, key string, value []byte) error {
	if err := store.CheckText("key", key, true); err != nil {
		return fail("set", err)
	}
	_, err := d.w.ExecContext(ctx, `INSERT INTO kv (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO UPDATE SET value = excluded.value`, key, nonNil(value))
	if err != nil {
		return fail("set", err)
	}
	return nil
}

// Create writes key only if it is absent, else returns store.ErrExists.
func (d *DB) Create(ctx context.Context, key string, value []byte) error {
	if err := store.CheckText("key", key, true); err != nil {
		return fail("create", err)
	}
	res, err := d.w.ExecContext(ctx, `INSERT INTO kv (key, value) VALUES (?, ?)
		ON CONFLICT (key) DO NOTHING`, key, nonNil(value))
	if err != nil {
		return fail("create", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fail("create", err)
	} else if n == 0 {
		return fmt.Errorf("sqlite create: %w", store.ErrExists)
	}
	return nil
}

// Delete removes key, or returns store.ErrNotFound.
func (d *DB) Delete(ctx context.Context, key string) error {
	if err := store.CheckText("key", key, true); err != nil {
		return fail("delete", err)
	}
	res, err := d.w.ExecContext(ctx, `DELETE FROM kv WHERE key = ?`, key)
	if err != nil {
		return fail("delete", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fail("delete", err)
	} else if n == 0 {
		return fmt.Errorf("sqlite delete: %w", store.ErrNotFound)
	}
	return nil
}

// List returns the entries whose key starts with prefix, in byte order of
// the keys. The prefix is matched literally (no wildcards), as a range scan
// of the primary key.
func (d *DB) List(ctx context.Context, prefix string) ([]store.Entry, error) {
	if err := store.CheckText("prefix", prefix, false); err != nil {
		return nil, fail("list", err)
	}
	var rows *sql.Rows
	var err error
	if end, ok := store.PrefixEnd(prefix); ok {
		rows, err = d.r.QueryContext(ctx, `SELECT key, value FROM kv WHERE key >= ? AND key < ? ORDER BY key`, prefix, end)
	} else {
		rows, err = d.r.QueryContext(ctx, `SELECT key, value FROM kv WHERE key >= ? ORDER BY key`, prefix)
	}
	if err != nil {
		return nil, fail("list", err)
	}
	defer rows.Close()
	var out []store.Entry
	for rows.Next() {
		var e store.Entry
		if err := rows.Scan(&e.Key, &e.Value); err != nil {
			return nil, fail("list", err)
		}
		e.Value = nonNil(e.Value)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fail("list", err)
	}
	return out, nil
}

// Incr adds by to the counter key within a fixed window that starts at the
// first increment (or the first after the previous window ended) and lasts
// window; it returns the new count and when the window ends, in now's
// location. A window has ended once now reaches its end. One statement does
// the read and the write, so increments never get lost.
func (d *DB) Incr(ctx context.Context, key string, by int64, window time.Duration, now time.Time) (int64, time.Time, error) {
	if err := store.CheckText("key", key, true); err != nil {
		return 0, time.Time{}, fail("incr", err)
	}
	if window <= 0 {
		return 0, time.Time{}, fmt.Errorf("sqlite incr: window %v: must be positive", window)
	}
	var count, resetAt int64
	err := d.w.QueryRowContext(ctx, `INSERT INTO counters (key, count, reset_at) VALUES (?1, ?2, ?3)
		ON CONFLICT (key) DO UPDATE SET
			count    = CASE WHEN counters.reset_at <= ?4 THEN excluded.count    ELSE counters.count + excluded.count END,
			reset_at = CASE WHEN counters.reset_at <= ?4 THEN excluded.reset_at ELSE counters.reset_at END
		RETURNING count, reset_at`,
		key, by, now.Add(window).UnixNano(), now.UnixNano()).Scan(&count, &resetAt)
	if err != nil {
		return 0, time.Time{}, fail("incr", err)
	}
	return count, time.Unix(0, resetAt).In(now.Location()), nil
}

// nonNil returns b, or an empty slice for nil: SQLite stores a nil []byte
// as NULL and every value column is NOT NULL.
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
