package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// PutRecords inserts or replaces records by (Kind, ID) in one transaction:
// all or none. Every record is checked before anything is sent; a record
// with an empty Kind or ID, or a field that is not UTF-8 text without NUL,
// fails the whole batch. Of two records with the same (Kind, ID) in one
// batch, the later wins.
func (d *DB) PutRecords(ctx context.Context, recs ...store.Record) error {
	for i, r := range recs {
		if err := store.CheckRecord(r); err != nil {
			return fmt.Errorf("postgres put records: record %d: %w", i, err)
		}
	}
	if len(recs) == 0 {
		return ctx.Err()
	}
	// Upserting in (Kind, ID) order makes concurrent batches take their
	// row locks in one order, so two of them never deadlock. The sort is
	// stable: of duplicates, the later still wins.
	sorted := slices.Clone(recs)
	slices.SortStableFunc(sorted, func(a, b store.Record) int {
		return cmp.Or(strings.Compare(a.Kind, b.Kind), strings.Compare(a.ID, b.ID))
	})
	var batch pgx.Batch
	for _, r := range sorted {
		batch.Queue(`INSERT INTO records (kind, id, parent, sort_key, model, owner, body)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (kind, id) DO UPDATE SET
				parent = EXCLUDED.parent, sort_key = EXCLUDED.sort_key, model = EXCLUDED.model,
				owner = EXCLUDED.owner, body = EXCLUDED.body`,
			r.Kind, r.ID, r.Parent, r.SortKey, r.Model, r.Owner, nonNil(r.Body))
	}
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		return tx.SendBatch(ctx, &batch).Close()
	})
	if err != nil {
		return d.fail("put records", err)
	}
	return nil
}

// GetRecord returns one record, or store.ErrNotFound.
func (d *DB) GetRecord(ctx context.Context, kind, id string) (store.Record, error) {
	if store.CheckText("kind", kind, true) != nil || store.CheckText("id", id, true) != nil {
		return store.Record{}, fmt.Errorf("postgres get record: %w", store.ErrNotFound)
	}
	r := store.Record{Kind: kind, ID: id}
	err := d.pool.QueryRow(ctx, `SELECT parent, sort_key, model, owner, body FROM records WHERE kind = $1 AND id = $2`,
		kind, id).Scan(&r.Parent, &r.SortKey, &r.Model, &r.Owner, &r.Body)
	if errors.Is(err, pgx.ErrNoRows) {
		return store.Record{}, fmt.Errorf("postgres get record: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Record{}, d.fail("get record", err)
	}
	r.Body = nonNil(r.Body)
	return r, nil
}

// DeleteRecord removes a record and the records whose Parent is its id (of
// any kind, one level down), or returns store.ErrNotFound.
func (d *DB) DeleteRecord(ctx context.Context, kind, id string) error {
	if store.CheckText("kind", kind, true) != nil || store.CheckText("id", id, true) != nil {
		return fmt.Errorf("postgres delete record: %w", store.ErrNotFound)
	}
	err := pgx.BeginFunc(ctx, d.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM records WHERE kind = $1 AND id = $2`, kind, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return store.ErrNotFound
		}
		// parent <> '' lets the planner use the partial index
		// records_by_parent.
		_, err = tx.Exec(ctx, `DELETE FROM records WHERE parent = $1 AND parent <> ''`, id)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("postgres delete record: %w", store.ErrNotFound)
	}
	if err != nil {
		return d.fail("delete record", err)
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
		return nil, false, fmt.Errorf("postgres list records: %w", err)
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
	rows, err := d.pool.Query(ctx, query, args...)
	if err != nil {
		return nil, false, d.fail("list records", err)
	}
	defer rows.Close()
	var out []store.Record
	for rows.Next() {
		r := store.Record{Kind: q.Kind}
		if err := rows.Scan(&r.ID, &r.Parent, &r.SortKey, &r.Model, &r.Owner, &r.Body); err != nil {
			return nil, false, d.fail("list records", err)
		}
		r.Body = nonNil(r.Body)
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, false, d.fail("list records", err)
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
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(len(args))
	}
	where.WriteString(`kind = ` + arg(q.Kind) + ` AND parent = ` + arg(q.Parent))
	if q.Owner != "" {
		where.WriteString(` AND owner = ` + arg(q.Owner))
	}
	if q.Model != "" {
		where.WriteString(` AND model = ` + arg(q.Model))
	}
	// In list order, "after" is greater ascending and less descending.
	if q.After != "" {
		where.WriteString(` AND (sort_key, id) ` + cmpOp(!q.Desc) + ` (` + arg(afterKey) + `, ` + arg(q.After) + `)`)
	}
	if q.Before != "" {
		where.WriteString(` AND (sort_key, id) ` + cmpOp(q.Desc) + ` (` + arg(beforeKey) + `, ` + arg(q.Before) + `)`)
	}
	// A page that ends before q.Before (with no q.After) is the one
	// nearest to it: scan away from it and reverse.
	backward = q.Before != "" && q.After == ""
	order := "ASC"
	if q.Desc != backward {
		order = "DESC"
	}
	limit = min(int64(q.Limit), math.MaxInt32) + 1
	query = `SELECT id, parent, sort_key, model, owner, body FROM records
		WHERE ` + where.String() + `
		ORDER BY sort_key ` + order + `, id ` + order + `
		LIMIT ` + arg(limit)
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
	err := d.pool.QueryRow(ctx, `SELECT sort_key FROM records
		WHERE kind = $1 AND id = $2 AND parent = $3 AND ($4::text = '' OR owner = $4)`,
		q.Kind, id, q.Parent, q.Owner).Scan(&sortKey)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("postgres list records: cursor: %w", store.ErrNotFound)
	}
	if err != nil {
		return 0, d.fail("list records: cursor", err)
	}
	return sortKey, nil
}
