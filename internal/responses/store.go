package responses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// storedResponse is the record body of a response: the object, its own
// input, and the items before that input (previous responses or the
// conversation), so that a chain is one read.
type storedResponse struct {
	Response Response `json:"response"`
	Input    []Item   `json:"input"`
	History  []Item   `json:"history,omitempty"`
}

// ListParams select a page of a list.
type ListParams struct {
	// After and Before are ids of the list's elements (Before only for
	// input items).
	After, Before string
	// Limit is the page size; 0 means the list's default.
	Limit int
	// Order is "asc" or "desc"; "" means "desc".
	Order string
	// Model keeps only responses of that model (responses only).
	Model string
}

// pageSize checks the limit of a list: 1 to 100, default def.
func (p *ListParams) pageSize(def int) (int, error) {
	switch {
	case p.Limit == 0:
		return def, nil
	case p.Limit < 1 || p.Limit > 100:
		return 0, invalid("limit", "query parameter 'limit' must be between 1 and 100, got %d", p.Limit)
	}
	return p.Limit, nil
}

// desc checks the order of a list.
func (p *ListParams) desc() (bool, error) {
	switch p.Order {
	case "", "desc":
		return true, nil
	case "asc":
		return false, nil
	}
	return false, invalid("order", "query parameter 'order' must be 'asc' or 'desc', got '%s'", truncate(p.Order, 16))
}

// owns reports whether owner may read rec: records made without an owner
// (no authentication) are everyone's, as for stored chat completions.
func owns(rec store.Record, owner string) bool {
	return rec.Owner == "" || rec.Owner == owner
}

// storeError wraps a storage failure that is not a missing record.
func storeError(what string, err error) error {
	if errors.Is(err, store.ErrUnavailable) {
		return &Error{Status: http.StatusServiceUnavailable, Type: "api_error", Code: "storage_unavailable", Message: "the server's storage is unavailable; try again", Err: err}
	}
	return fmt.Errorf("%s: %w", what, err)
}

// putResponse writes a run's response record, with extra records in the
// same write.
func (e *Engine) putResponse(ctx context.Context, r *Run, extra []store.Record) error {
	body, err := json.Marshal(storedResponse{Response: *r.snapshot(), Input: r.input, History: r.history})
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	rec := store.Record{Kind: store.KindResponse, ID: r.resp.ID, SortKey: r.created.UnixNano(), Model: r.resp.Model, Owner: r.owner, Body: body}
	if err := e.records.PutRecords(ctx, append([]store.Record{rec}, extra...)...); err != nil {
		return storeError("store response", err)
	}
	return nil
}

// loadResponse reads a stored response of owner; param names the request
// field for a 404.
func (e *Engine) loadResponse(ctx context.Context, id, owner, param string) (*storedResponse, error) {
	if e.records == nil {
		return nil, storageOff("reading a stored response")
	}
	rec, err := e.records.GetRecord(ctx, store.KindResponse, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !owns(rec, owner)) {
		return nil, notFound(param, "Response with id '%s' not found.", truncate(id, 80))
	}
	if err != nil {
		return nil, storeError("read response", err)
	}
	var sr storedResponse
	if err := json.Unmarshal(rec.Body, &sr); err != nil {
		return nil, fmt.Errorf("decode stored response %s: %w", id, err)
	}
	return &sr, nil
}

// storedGone reports whether the stored response was cancelled (by a
// cancel that reached another replica) or deleted while it ran; its
// outcome is then not written.
func (e *Engine) storedGone(ctx context.Context, id string) bool {
	rec, err := e.records.GetRecord(context.WithoutCancel(ctx), store.KindResponse, id)
	if errors.Is(err, store.ErrNotFound) {
		return true
	}
	if err != nil {
		return false
	}
	var sr struct {
		Response struct {
			Status string `json:"status"`
		} `json:"response"`
	}
	return json.Unmarshal(rec.Body, &sr) == nil && sr.Response.Status == StatusCancelled
}

// GetResponse returns a stored response.
func (e *Engine) GetResponse(ctx context.Context, id, owner string) (*Response, error) {
	sr, err := e.loadResponse(ctx, id, owner, "response_id")
	if err != nil {
		return nil, err
	}
	return &sr.Response, nil
}

// DeleteResponse deletes a stored response.
func (e *Engine) DeleteResponse(ctx context.Context, id, owner string) (*Deleted, error) {
	if _, err := e.loadResponse(ctx, id, owner, "response_id"); err != nil {
		return nil, err
	}
	if err := e.records.DeleteRecord(ctx, store.KindResponse, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound("response_id", "Response with id '%s' not found.", truncate(id, 80))
		}
		return nil, storeError("delete response", err)
	}
	return &Deleted{ID: id, Object: "response", Deleted: true}, nil
}

// ListResponses returns a page of stored responses, newest first unless
// the order is asc.
func (e *Engine) ListResponses(ctx context.Context, p ListParams, owner string) (*ResponseList, error) {
	if e.records == nil {
		return nil, storageOff("listing responses")
	}
	limit, err := p.pageSize(50)
	if err != nil {
		return nil, err
	}
	desc, err := p.desc()
	if err != nil {
		return nil, err
	}
	recs, more, err := e.records.ListRecords(ctx, store.ListQuery{Kind: store.KindResponse, Model: p.Model, Owner: owner, After: p.After, Limit: limit, Desc: desc})
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("after", "Response with id '%s' not found.", truncate(p.After, 80))
	}
	if err != nil {
		return nil, storeError("list responses", err)
	}
	out := &ResponseList{Object: "list", Data: make([]ResponseWithInput, 0, len(recs)), HasMore: more}
	for _, rec := range recs {
		if !owns(rec, owner) {
			continue
		}
		var sr storedResponse
		if err := json.Unmarshal(rec.Body, &sr); err != nil {
			return nil, fmt.Errorf("decode stored response %s: %w", rec.ID, err)
		}
		out.Data = append(out.Data, ResponseWithInput{Response: sr.Response, Input: nonNil(sr.Input)})
	}
	if n := len(out.Data); n > 0 {
		out.FirstID, out.LastID = new(out.Data[0].ID), new(out.Data[n-1].ID)
	}
	return out, nil
}

// InputItems returns a page of a stored response's input items (default
// order desc, page 20).
func (e *Engine) InputItems(ctx context.Context, id string, p ListParams, owner string) (*ItemList, error) {
	sr, err := e.loadResponse(ctx, id, owner, "response_id")
	if err != nil {
		return nil, err
	}
	limit, err := p.pageSize(20)
	if err != nil {
		return nil, err
	}
	desc, err := p.desc()
	if err != nil {
		return nil, err
	}
	items := slices.Clone(sr.Input)
	if desc {
		slices.Reverse(items)
	}
	return pageItems(items, p.After, p.Before, limit)
}

// pageItems cuts a page out of an ordered list: after the item After,
// before the item Before, at most limit items.
func pageItems(items []Item, after, before string, limit int) (*ItemList, error) {
	start, end := 0, len(items)
	if after != "" {
		i := slices.IndexFunc(items, func(it Item) bool { return it.ID == after })
		if i < 0 {
			return nil, notFound("after", "item '%s' not found", truncate(after, 80))
		}
		start = i + 1
	}
	if before != "" {
		i := slices.IndexFunc(items, func(it Item) bool { return it.ID == before })
		if i < 0 {
			return nil, notFound("before", "item '%s' not found", truncate(before, 80))
		}
		end = i
	}
	if end < start {
		end = start
	}
	page := items[start:end]
	more := false
	if len(page) > limit {
		page, more = page[:limit], true
	}
	return itemList(page, more), nil
}

func itemList(page []Item, more bool) *ItemList {
	out := &ItemList{Object: "list", Data: nonNil(page), HasMore: more}
	if n := len(page); n > 0 {
		out.FirstID, out.LastID = new(page[0].ID), new(page[n-1].ID)
	}
	return out
}

func nonNil(items []Item) []Item {
	if items == nil {
		return []Item{}
	}
	return items
}

// CancelResponse cancels a background response that is queued or in
// progress: it is recorded as cancelled (a replica running it sees that
// before it records its own outcome) and, when it runs here, stopped.
// Cancelling a cancelled response returns it unchanged.
func (e *Engine) CancelResponse(ctx context.Context, id, owner string) (*Response, error) {
	if e.records == nil {
		return nil, storageOff("cancelling a response")
	}
	rec, err := e.records.GetRecord(ctx, store.KindResponse, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !owns(rec, owner)) {
		return nil, notFound("response_id", "Response with id '%s' not found.", truncate(id, 80))
	}
	if err != nil {
		return nil, storeError("read response", err)
	}
	var sr storedResponse
	if err := json.Unmarshal(rec.Body, &sr); err != nil {
		return nil, fmt.Errorf("decode stored response %s: %w", id, err)
	}
	if !sr.Response.Background {
		return nil, invalid("response_id", "Cannot cancel a synchronous response: only responses created with background: true can be cancelled.")
	}
	switch sr.Response.Status {
	case StatusCancelled:
		return &sr.Response, nil
	case StatusQueued, StatusInProgress:
	default:
		return nil, invalid("response_id", "Cannot cancel a response that is already %s.", sr.Response.Status)
	}
	sr.Response.Status = StatusCancelled
	body, err := json.Marshal(sr)
	if err != nil {
		return nil, fmt.Errorf("encode response: %w", err)
	}
	rec.Body = body
	e.mu.Lock()
	b := e.bg[id]
	if b != nil {
		b.cancelled.Store(true)
	}
	e.mu.Unlock()
	if err := e.records.PutRecords(ctx, rec); err != nil {
		return nil, storeError("store response", err)
	}
	if b != nil {
		b.cancel()
	}
	return &sr.Response, nil
}
