package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// PutRecords inserts or replaces records by (Kind, ID) in one transaction:
// all or none. Every record is checked before anything is written; a
// record with an empty Kind or ID, or a field that is not UTF-8 text
// without NUL, fails the whole batch. Of two records with the same (Kind,
// ID) in one batch, the later wins.
func (d *DB) PutRecords(ctx context.Context, recs ...store.Record) (err error) {
	for i, r := range recs {
		if err := store.CheckRecord(r); err != nil {
			return fmt.Errorf("sqlite put records: record %d: %w", i, err)
		}
	}
	if len(recs) == 0 {
		return ctx.Err()
	}
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return fail("put records", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO records (kind, id, parent, sort_key, model, owner, body)
		VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (kind, id) DO UPDATE SET
			parent = excluded.parent, sort_key = excluded.sort_key, model = excluded.model,
			owner = excluded.owner, body = excluded.body`)
	if err != nil {
		return fail("put records", err)
	}
	defer stmt.Close()
	for _, r := range recs {
		if _, err := stmt.ExecContext(ctx, r.Kind, r.ID, r.Parent, r.SortKey, r.Model, r.Owner, nonNil(r.Body)); err != nil {
			return fail("put records", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fail("put records: commit", err)
	}
	return nil
}

// GetRecord returns one record, or store.ErrNotFound.
func (d *DB) GetRecord(ctx context.Context, kind, id string) (store.Record, error) {
	r := store.Record{Kind: kind, ID: id}
	err := d.r.QueryRowContext(ctx, `SELECT parent, sort_key, model, owner, body FROM records WHERE kind = ? AND id = ?`,
		kind, id).Scan(&r.Parent, &r.SortKey, &r.Model, &r.Owner, &r.Body)
	if errors.Is(err, sql.ErrNoRows) {
		return store.Record{}, fmt.Errorf("sqlite get record: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Record{}, fail("get record", err)
	}
	r.Body = nonNil(r.Body)
	return r, nil
}

// DeleteRecord removes a record and the records whose Parent is its id (of
// any kind, one level down), or returns store.ErrNotFound.
func (d *DB) DeleteRecord(ctx context.Context, kind, id string) (err error) {
	tx, err := d.w.BeginTx(ctx, nil)
	if err != nil {
		return fail("delete record", err)
	}
	defer func() {
		if err != nil {
			err = errors.Join(err, ignoreDone(tx.Rollback()))
		}
	}()
	res, err := tx.ExecContext(ctx, `DELETE FROM records WHERE kind = ? AND id = ?`, kind, id)
	if err != nil {
		return fail("delete record", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fail("delete record", err)
	} else if n == 0 {
		return fmt.Errorf("sqlite delete record: %w", store.ErrNotFound)
	}
	// parent <> '' lets SQLite use the partial index records_by_parent.
	if _, err := tx.ExecContext(ctx, `DELETE FROM records WHERE parent = ? AND parent <> ''`, id); err != nil {
		return fail("delete record: children", err)
	}
	if err := tx.Commit(); err != nil {
		return fail("delete record: commit", err)
	}
	return nil
}

// ListRecords returns a page of records in (SortKey, ID) order, reversed
// with q.Desc, and whether more records follow it.
//
// With q.After the page is the first q.Limit records after that record;
// with q.Before alone it is the last q.Limit records before that record
// (the page that ends just before it), and hasMore reports records before
// the page. With both, the page starts after q.After and stops before
// q.Before. A cursor must name a record of q.Kind under q.Parent (and of
// q.Owner when set), else the error is store.ErrNotFound.
func (d *DB) ListRecords(ctx context.Context, q store.ListQuery) ([]store.Record, bool, error) {
	if err := store.CheckQuery(q); err != nil {
		return nil, false, fail("list records", err)
	}
	var afterKey, beforeKey int64
	if q.After != "" {
		k, err := d.cursor(ctx, q, q.After)
		if err != nil {
			return nil, false, err
		}
		afterKey = k
	}
	if q.Before != "" {
		k, err := d.cursor(ctx, q, q.Before)
		if err != nil {
			return nil, false, err
		}
		beforeKey = k
	}
	query, args, backward, limit := listSQL(q, afterKey, beforeKey)
	rows, err := d.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, false, fail("list records", err)
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		r := store.Record{Kind: q.Kind}
		if err := rows.Scan(&r.ID, &r.Parent, &r.SortKey, &r.Model, &r.Owner, &r.Body); err != nil {
			return nil, false, fail("list records", err)
		}
		r.Body = nonNil(r.Body)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, false, fail("list records", err)
	}
	more := int64(len(out)) == limit
	if more {
		out = out[:len(out)-1]
	}
	if backward {
		slices.Reverse(out)
	}
	return out, more, nil
}

// listSQL returns the query for a page of q whose cursors (if set) have
// the sort keys afterKey and beforeKey, with its arguments; whether it scans
// backward from q.Before (the rows then come in reverse list order); and
// the LIMIT, one more than q.Limit to tell whether more records follow.
func listSQL(q store.ListQuery, afterKey, beforeKey int64) (query string, args []any, backward bool, limit int64) {
	var where strings.Builder
	args = []any{q.Kind, q.Parent}
	where.WriteString(`kind = ? AND parent = ?`)
	// Each filter combination has its index (see 0001_init.sql); naming
	// it keeps SQLite, which has no statistics to go by, from picking a
	// less selective one, and fails the query if it could not be used.
	index := "records_list"
	if q.Owner != "" {
		where.WriteString(` AND owner = ?`)
		args = append(args, q.Owner)
		index += "_owner"
	}
	if q.Model != "" {
		where.WriteString(` AND model = ?`)
		args = append(args, q.Model)
		index += "_model"
	}
	// In list order, "after" is greater ascending and less descending.
	if q.After != "" {
		where.WriteString(` AND (sort_key, id) ` + cmpOp(!q.Desc) + ` (?, ?)`)
		args = append(args, afterKey, q.After)
	}
	if q.Before != "" {
		where.WriteString(` AND (sort_key, id) ` + cmpOp(q.Desc) + ` (?, ?)`)
		args = append(args, beforeKey, q.Before)
	}
	// A page that ends before q.Before (with no q.After) is the one
	// nearest to it: scan away from it and reverse.
	backward = q.Before != "" && q.After == ""
	order := "ASC"
	if q.Desc != backward {
		order = "DESC"
	}
	limit = min(int64(q.Limit), math.MaxInt32) + 1
	args = append(args, limit)
	query = `SELECT id, parent, sort_key, model, owner, body FROM records INDEXED BY ` + index + `
		WHERE ` + where.String() + `
		ORDER BY sort_key ` + order + `, id ` + order + `
		LIMIT ?`
	return query, args, backward, limit
}

// cmpOp is the comparison that selects the rows above a cursor, or below it.
func cmpOp(above bool) string {
	if above {
		return ">"
	}
	return "<"
}

// cursor returns the SortKey of the record id that a page of q starts
// after or ends before.
func (d *DB) cursor(ctx context.Context, q store.ListQuery, id string) (int64, error) {
	var sortKey int64
	err := d.r.QueryRowContext(ctx, `SELECT sort_key FROM records
		WHERE kind = ? AND id = ? AND parent = ? AND (? = '' OR owner = ?)`,
		q.Kind, id, q.Parent, q.Owner, q.Owner).Scan(&sortKey)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("sqlite list records: cursor: %w", store.ErrNotFound)
	}
	if err != nil {
		return 0, fail("list records: cursor", err)
	}
	return sortKey, nil
}
