package storetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// recordCases covers PutRecords, GetRecord and DeleteRecord.
func recordCases() []testCase {
	return []testCase{
		{"RoundTrip", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			recs := []store.Record{
				{Kind: store.KindConversation, ID: "conv_1", SortKey: 1700000000000000001, Owner: "alice", Body: []byte(`{"id":"conv_1"}`)},
				{Kind: store.KindConversationItem, ID: "msg_1", Parent: "conv_1", SortKey: 0, Model: "m", Owner: "alice", Body: []byte(`{"id":"msg_1"}`)},
				{Kind: store.KindChatCompletion, ID: "chatcmpl-1", SortKey: -5, Model: "bedrock/x", Body: []byte(`{}`)},
			}
			must(t, "PutRecords", b.PutRecords(ctx, recs...))
			for _, want := range recs {
				got, err := b.GetRecord(ctx, want.Kind, want.ID)
				must(t, "GetRecord "+want.ID, err)
				wantRecord(t, got, want)
			}
		}},
		{"GetMissing", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			_, err := b.GetRecord(ctx, store.KindResponse, "resp_absent")
			wantErrIs(t, "GetRecord of an absent id", err, store.ErrNotFound)
			must(t, "PutRecords", b.PutRecords(ctx, rec(store.KindResponse, "resp_1", 1)))
			_, err = b.GetRecord(ctx, store.KindChatCompletion, "resp_1")
			wantErrIs(t, "GetRecord in another kind", err, store.ErrNotFound)
		}},
		{"Replace", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			first := store.Record{Kind: store.KindResponse, ID: "resp_1", Parent: "p", SortKey: 1, Model: "a", Owner: "o1", Body: []byte(`{"v":1}`)}
			second := store.Record{Kind: store.KindResponse, ID: "resp_1", SortKey: 2, Model: "b", Owner: "o2", Body: []byte(`{"v":2}`)}
			must(t, "PutRecords first", b.PutRecords(ctx, first))
			must(t, "PutRecords second", b.PutRecords(ctx, second))
			got, err := b.GetRecord(ctx, store.KindResponse, "resp_1")
			must(t, "GetRecord", err)
			wantRecord(t, got, second)
			page, _, err := b.ListRecords(ctx, store.ListQuery{Kind: store.KindResponse, Limit: 10})
			must(t, "ListRecords", err)
			if len(page) != 1 {
				t.Fatalf("ListRecords after replace: %d records, want 1", len(page))
			}
			page, _, err = b.ListRecords(ctx, store.ListQuery{Kind: store.KindResponse, Parent: "p", Limit: 10})
			must(t, "ListRecords", err)
			if len(page) != 0 {
				t.Fatalf("ListRecords of the old parent: %d records, want 0", len(page))
			}
		}},
		{"KindsAreSeparate", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			a := store.Record{Kind: store.KindResponse, ID: "same", SortKey: 1, Body: []byte(`"response"`)}
			c := store.Record{Kind: store.KindChatCompletion, ID: "same", SortKey: 1, Body: []byte(`"chat"`)}
			must(t, "PutRecords", b.PutRecords(ctx, a, c))
			must(t, "DeleteRecord", b.DeleteRecord(ctx, store.KindResponse, "same"))
			got, err := b.GetRecord(ctx, store.KindChatCompletion, "same")
			must(t, "GetRecord of the other kind", err)
			wantRecord(t, got, c)
		}},
		{"BatchLastWins", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			r1 := rec(store.KindResponse, "r", 1)
			r2 := rec(store.KindResponse, "r", 2)
			r2.Body = []byte(`{"second":true}`)
			must(t, "PutRecords", b.PutRecords(ctx, r1, r2))
			got, err := b.GetRecord(ctx, store.KindResponse, "r")
			must(t, "GetRecord", err)
			wantRecord(t, got, r2)
		}},
		{"EmptyBatch", func(t *testing.T, b store.Backend) {
			must(t, "PutRecords()", b.PutRecords(t.Context()))
		}},
		{"AllOrNone", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			existing := rec(store.KindResponse, "resp_old", 1)
			must(t, "PutRecords", b.PutRecords(ctx, existing))
			changed := existing
			changed.Body = []byte(`{"changed":true}`)
			fresh := rec(store.KindResponse, "resp_new", 2)
			bad := []struct {
				name string
				rec  store.Record
			}{
				{"empty ID", store.Record{Kind: store.KindResponse, Body: []byte(`{}`)}},
				{"empty Kind", store.Record{ID: "x", Body: []byte(`{}`)}},
				{"NUL in Owner", store.Record{Kind: store.KindResponse, ID: "x", Owner: "a\x00b"}},
				{"invalid UTF-8 in Model", store.Record{Kind: store.KindResponse, ID: "x", Model: "\xff"}},
				{"invalid UTF-8 in Parent", store.Record{Kind: store.KindResponse, ID: "x", Parent: "\xc3"}},
			}
			for _, tc := range bad {
				for _, order := range [][]store.Record{
					{fresh, changed, tc.rec},
					{tc.rec, fresh, changed},
				} {
					if err := b.PutRecords(ctx, order...); err == nil {
						t.Fatalf("PutRecords with a record with %s succeeded, want an error", tc.name)
					}
					_, err := b.GetRecord(ctx, store.KindResponse, "resp_new")
					wantErrIs(t, "GetRecord of a record from a refused batch ("+tc.name+")", err, store.ErrNotFound)
					got, err := b.GetRecord(ctx, store.KindResponse, "resp_old")
					must(t, "GetRecord", err)
					wantRecord(t, got, existing)
				}
			}
		}},
		{"Bodies", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			large := `{"content":"` + strings.Repeat("llama 🦙 ", 1<<20/len("llama 🦙 ")+1) + `"}`
			bodies := []struct {
				name string
				body []byte
			}{
				{"unicode JSON", []byte(`{"content":"héllo wörld — 你好 🦙","escaped":"\u00e9\n\"q\""}`)},
				{"unnormalised JSON", []byte("{ \"b\" : 1,\n\t\"a\":[ 1 ,2 ], \"b\" : 2 }")},
				{"large", []byte(large)},
				{"binary", []byte("\x00\x01\xfe\xff not json")},
				{"empty", nil},
			}
			for i, bd := range bodies {
				r := store.Record{Kind: store.KindChatCompletion, ID: fmt.Sprintf("body-%d", i), SortKey: int64(i), Body: bd.body}
				must(t, "PutRecords "+bd.name, b.PutRecords(ctx, r))
				got, err := b.GetRecord(ctx, r.Kind, r.ID)
				must(t, "GetRecord "+bd.name, err)
				if !bytes.Equal(got.Body, bd.body) {
					t.Fatalf("%s body: got %d bytes, want %d bytes byte for byte", bd.name, len(got.Body), len(bd.body))
				}
				page, _, err := b.ListRecords(ctx, store.ListQuery{Kind: r.Kind, After: prevID(i), Limit: 1})
				must(t, "ListRecords "+bd.name, err)
				if len(page) != 1 || !bytes.Equal(page[0].Body, bd.body) {
					t.Fatalf("%s body through ListRecords does not round-trip", bd.name)
				}
			}
			if len(large) < 1<<20 {
				t.Fatalf("large body is %d bytes, want at least 1 MiB", len(large))
			}
			var v map[string]string
			got, err := b.GetRecord(ctx, store.KindChatCompletion, "body-2")
			must(t, "GetRecord", err)
			if err := json.Unmarshal(got.Body, &v); err != nil {
				t.Fatalf("large body does not parse: %v", err)
			}
		}},
		{"BodyDoesNotAlias", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			r := rec(store.KindResponse, "r", 1)
			must(t, "PutRecords", b.PutRecords(ctx, r))
			want := append([]byte(nil), r.Body...)
			copy(r.Body, "XXXX")
			got, err := b.GetRecord(ctx, r.Kind, r.ID)
			must(t, "GetRecord", err)
			if !bytes.Equal(got.Body, want) {
				t.Fatalf("body = %q after the caller reused its slice, want %q", got.Body, want)
			}
		}},
		{"Delete", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			must(t, "PutRecords", b.PutRecords(ctx,
				rec(store.KindConversation, "conv_a", 1),
				rec(store.KindConversation, "conv_b", 2),
				child("conv_a", "item_a1", 0),
				child("conv_a", "item_a2", 1),
				child("conv_b", "item_b1", 0),
			))
			wantErrIs(t, "DeleteRecord of an absent id", b.DeleteRecord(ctx, store.KindConversation, "conv_absent"), store.ErrNotFound)
			wantErrIs(t, "DeleteRecord in the wrong kind", b.DeleteRecord(ctx, store.KindResponse, "conv_a"), store.ErrNotFound)

			must(t, "DeleteRecord", b.DeleteRecord(ctx, store.KindConversation, "conv_a"))
			for _, gone := range []struct{ kind, id string }{
				{store.KindConversation, "conv_a"},
				{store.KindConversationItem, "item_a1"},
				{store.KindConversationItem, "item_a2"},
			} {
				_, err := b.GetRecord(ctx, gone.kind, gone.id)
				wantErrIs(t, "GetRecord of deleted "+gone.id, err, store.ErrNotFound)
			}
			for _, kept := range []struct{ kind, id string }{
				{store.KindConversation, "conv_b"},
				{store.KindConversationItem, "item_b1"},
			} {
				if _, err := b.GetRecord(ctx, kept.kind, kept.id); err != nil {
					t.Fatalf("GetRecord of %s, which was not deleted: %v", kept.id, err)
				}
			}
			page, more, err := b.ListRecords(ctx, store.ListQuery{Kind: store.KindConversationItem, Parent: "conv_a", Limit: 10})
			must(t, "ListRecords", err)
			if len(page) != 0 || more {
				t.Fatalf("items of a deleted conversation: %d records (more %v), want none", len(page), more)
			}
			wantErrIs(t, "second DeleteRecord", b.DeleteRecord(ctx, store.KindConversation, "conv_a"), store.ErrNotFound)

			// Deleting a child leaves its parent.
			must(t, "DeleteRecord child", b.DeleteRecord(ctx, store.KindConversationItem, "item_b1"))
			if _, err := b.GetRecord(ctx, store.KindConversation, "conv_b"); err != nil {
				t.Fatalf("GetRecord of the parent of a deleted child: %v", err)
			}
		}},
		{"OverlappingBatches", overlappingBatches},
		{"Concurrent", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			const writers, each = 6, 10
			var wg sync.WaitGroup
			errs := make(chan error, writers*each)
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						r := rec(store.KindChatCompletion, fmt.Sprintf("w%d-%02d", w, i), int64(i))
						if err := b.PutRecords(ctx, r, child(r.ID, r.ID+"-c", 0)); err != nil {
							errs <- err
						}
						if _, _, err := b.ListRecords(ctx, store.ListQuery{Kind: store.KindChatCompletion, Limit: 5, Desc: true}); err != nil {
							errs <- err
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
			all := listAll(t, b, store.ListQuery{Kind: store.KindChatCompletion, Limit: 7})
			if len(all) != writers*each {
				t.Fatalf("%d records after concurrent writes, want %d", len(all), writers*each)
			}
		}},
	}
}

// overlappingBatches is a record case: batches that write the same records
// in opposite orders at once all succeed (no deadlock between them).
func overlappingBatches(t *testing.T, b store.Backend) {
	ctx := t.Context()
	const writers, rounds = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, writers*rounds)
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				batch := []store.Record{
					rec(store.KindConversation, "conv_shared", 1),
					child("conv_shared", "item_1", 1),
					child("conv_shared", "item_2", 2),
					rec(store.KindResponse, "resp_shared", int64(w*rounds+i)),
				}
				if w%2 == 1 {
					slices.Reverse(batch)
				}
				if err := b.PutRecords(ctx, batch...); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("PutRecords of overlapping batches: %v", err)
	}
	page, _, err := b.ListRecords(ctx, store.ListQuery{Kind: store.KindConversationItem, Parent: "conv_shared", Limit: 10})
	must(t, "ListRecords", err)
	if len(page) != 2 {
		t.Fatalf("%d items after overlapping batches, want 2", len(page))
	}
}

// backendCases covers Ping, Close and cancelled contexts.
func backendCases() []testCase {
	return []testCase{
		{"Ping", func(t *testing.T, b store.Backend) {
			must(t, "Ping", b.Ping(t.Context()))
		}},
		{"CloseTwice", func(t *testing.T, b store.Backend) {
			must(t, "Close", b.Close())
			must(t, "second Close", b.Close())
			if err := b.Set(t.Context(), "k", []byte("v")); err == nil {
				t.Fatal("Set after Close succeeded, want an error")
			}
		}},
		{"Cancelled", func(t *testing.T, b store.Backend) {
			must(t, "Set", b.Set(t.Context(), "k", []byte("v")))
			must(t, "PutRecords", b.PutRecords(t.Context(), rec(store.KindResponse, "r", 1)))
			ctx := cancelled(t)
			calls := []struct {
				name string
				call func() error
			}{
				{"Get", func() error { _, err := b.Get(ctx, "k"); return err }},
				{"Set", func() error { return b.Set(ctx, "k2", []byte("v")) }},
				{"Create", func() error { return b.Create(ctx, "k3", []byte("v")) }},
				{"Delete", func() error { return b.Delete(ctx, "k") }},
				{"List", func() error { _, err := b.List(ctx, ""); return err }},
				{"Incr", func() error { _, _, err := b.Incr(ctx, "q", 1, time.Minute, time.Now()); return err }},
				{"PutRecords", func() error { return b.PutRecords(ctx, rec(store.KindResponse, "r2", 2)) }},
				{"GetRecord", func() error { _, err := b.GetRecord(ctx, store.KindResponse, "r"); return err }},
				{"DeleteRecord", func() error { return b.DeleteRecord(ctx, store.KindResponse, "r") }},
				{"ListRecords", func() error {
					_, _, err := b.ListRecords(ctx, store.ListQuery{Kind: store.KindResponse, Limit: 1})
					return err
				}},
				{"Ping", func() error { return b.Ping(ctx) }},
			}
			for _, c := range calls {
				if err := c.call(); !errors.Is(err, context.Canceled) {
					t.Errorf("%s with a cancelled context: error = %v, want context.Canceled", c.name, err)
				}
			}
			// Nothing the cancelled calls attempted happened.
			if _, err := b.Get(t.Context(), "k"); err != nil {
				t.Errorf("Get after a cancelled Delete: %v", err)
			}
			if _, err := b.Get(t.Context(), "k2"); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("Get of a key whose Set was cancelled: error = %v, want ErrNotFound", err)
			}
			if _, err := b.GetRecord(t.Context(), store.KindResponse, "r"); err != nil {
				t.Errorf("GetRecord after a cancelled DeleteRecord: %v", err)
			}
		}},
	}
}

// rec returns a top-level record of kind with a small JSON body.
func rec(kind, id string, sortKey int64) store.Record {
	return store.Record{Kind: kind, ID: id, SortKey: sortKey, Body: []byte(fmt.Sprintf(`{"id":%q}`, id))}
}

// child returns a conversation item of parent.
func child(parent, id string, pos int64) store.Record {
	r := rec(store.KindConversationItem, id, pos)
	r.Parent = parent
	return r
}

// prevID is the id of the "Bodies" record before i, or "" for the first.
func prevID(i int) string {
	if i == 0 {
		return ""
	}
	return fmt.Sprintf("body-%d", i-1)
}

// wantRecord fails the test unless got equals want field by field (a nil
// and an empty body are equal).
func wantRecord(t *testing.T, got, want store.Record) {
	t.Helper()
	if got.Kind != want.Kind || got.ID != want.ID || got.Parent != want.Parent || got.SortKey != want.SortKey ||
		got.Model != want.Model || got.Owner != want.Owner || !bytes.Equal(got.Body, want.Body) {
		t.Fatalf("record = %s, want %s", show(got), show(want))
	}
}

// show formats a record for failure messages, abbreviating its body.
func show(r store.Record) string {
	body := string(r.Body)
	if len(body) > 80 {
		body = fmt.Sprintf("%s... (%d bytes)", body[:80], len(r.Body))
	}
	return fmt.Sprintf("{Kind:%q ID:%q Parent:%q SortKey:%d Model:%q Owner:%q Body:%q}",
		r.Kind, r.ID, r.Parent, r.SortKey, r.Model, r.Owner, body)
}
