package storetest

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// listCases covers ListRecords: order, cursors, limits, filters, scoping
// and paging.
func listCases() []testCase {
	return []testCase{
		{"OrderAndCursors", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			// Ties on SortKey break on ID; the insertion order is scrambled
			// so that no backend gets the order for free.
			must(t, "PutRecords", b.PutRecords(ctx,
				rec(store.KindResponse, "e", 5),
				rec(store.KindResponse, "c", 2),
				rec(store.KindResponse, "a", 2),
				rec(store.KindResponse, "z", 1),
				rec(store.KindResponse, "b", 2),
				rec(store.KindResponse, "d", 3),
				rec(store.KindResponse, "m", -1),
				rec(store.KindChatCompletion, "other-kind", 4),
				child("e", "child-of-e", 0),
			))
			// Ascending: m(-1) z(1) a(2) b(2) c(2) d(3) e(5).
			tests := []struct {
				name     string
				q        store.ListQuery
				want     []string
				wantMore bool
			}{
				{"asc", store.ListQuery{Limit: 10}, []string{"m", "z", "a", "b", "c", "d", "e"}, false},
				{"desc", store.ListQuery{Limit: 10, Desc: true}, []string{"e", "d", "c", "b", "a", "z", "m"}, false},
				{"asc limit", store.ListQuery{Limit: 3}, []string{"m", "z", "a"}, true},
				{"desc limit", store.ListQuery{Limit: 3, Desc: true}, []string{"e", "d", "c"}, true},
				{"limit equals count", store.ListQuery{Limit: 7}, []string{"m", "z", "a", "b", "c", "d", "e"}, false},
				{"limit one less", store.ListQuery{Limit: 6}, []string{"m", "z", "a", "b", "c", "d"}, true},
				{"asc after tie", store.ListQuery{After: "a", Limit: 2}, []string{"b", "c"}, true},
				{"asc after tie to end", store.ListQuery{After: "b", Limit: 3}, []string{"c", "d", "e"}, false},
				{"asc after last", store.ListQuery{After: "e", Limit: 3}, nil, false},
				{"desc after tie", store.ListQuery{After: "c", Limit: 2, Desc: true}, []string{"b", "a"}, true},
				{"desc after tie to end", store.ListQuery{After: "b", Limit: 5, Desc: true}, []string{"a", "z", "m"}, false},
				{"desc after last", store.ListQuery{After: "m", Limit: 5, Desc: true}, nil, false},
				{"asc before", store.ListQuery{Before: "c", Limit: 2}, []string{"a", "b"}, true},
				{"asc before all", store.ListQuery{Before: "c", Limit: 4}, []string{"m", "z", "a", "b"}, false},
				{"asc before more than all", store.ListQuery{Before: "c", Limit: 10}, []string{"m", "z", "a", "b"}, false},
				{"asc before first", store.ListQuery{Before: "m", Limit: 10}, nil, false},
				{"desc before", store.ListQuery{Before: "a", Limit: 2, Desc: true}, []string{"c", "b"}, true},
				{"desc before all", store.ListQuery{Before: "a", Limit: 4, Desc: true}, []string{"e", "d", "c", "b"}, false},
				{"after and before", store.ListQuery{After: "z", Before: "e", Limit: 10}, []string{"a", "b", "c", "d"}, false},
				{"after and before limited", store.ListQuery{After: "z", Before: "e", Limit: 2}, []string{"a", "b"}, true},
				{"after and before desc", store.ListQuery{After: "e", Before: "z", Limit: 10, Desc: true}, []string{"d", "c", "b", "a"}, false},
				{"after and before adjacent", store.ListQuery{After: "a", Before: "b", Limit: 10}, nil, false},
			}
			for _, tt := range tests {
				q := tt.q
				q.Kind = store.KindResponse
				got, more, err := b.ListRecords(ctx, q)
				must(t, tt.name, err)
				if ids := idsOf(got); !slices.Equal(ids, tt.want) || more != tt.wantMore {
					t.Errorf("%s: ListRecords = %q, hasMore %v; want %q, hasMore %v", tt.name, ids, more, tt.want, tt.wantMore)
				}
			}
			// Records come back whole.
			got, _, err := b.ListRecords(ctx, store.ListQuery{Kind: store.KindResponse, Limit: 1, Desc: true})
			must(t, "ListRecords", err)
			wantRecord(t, got[0], rec(store.KindResponse, "e", 5))
		}},
		{"UnknownCursor", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			must(t, "PutRecords", b.PutRecords(ctx,
				rec(store.KindResponse, "r1", 1),
				rec(store.KindChatCompletion, "c1", 1),
				rec(store.KindConversation, "conv_a", 1),
				rec(store.KindConversation, "conv_b", 2),
				child("conv_a", "item_a", 0),
				child("conv_b", "item_b", 0),
				store.Record{Kind: store.KindResponse, ID: "bobs", SortKey: 2, Owner: "bob", Body: []byte(`{}`)},
			))
			bad := []struct {
				name string
				q    store.ListQuery
			}{
				{"after absent", store.ListQuery{Kind: store.KindResponse, After: "nope"}},
				{"before absent", store.ListQuery{Kind: store.KindResponse, Before: "nope"}},
				{"after absent desc", store.ListQuery{Kind: store.KindResponse, After: "nope", Desc: true}},
				{"after id of another kind", store.ListQuery{Kind: store.KindResponse, After: "c1"}},
				{"before id of another kind", store.ListQuery{Kind: store.KindResponse, Before: "c1"}},
				{"after item of another parent", store.ListQuery{Kind: store.KindConversationItem, Parent: "conv_a", After: "item_b"}},
				{"after item in a top-level list", store.ListQuery{Kind: store.KindConversationItem, After: "item_a"}},
				{"after record of another owner", store.ListQuery{Kind: store.KindResponse, Owner: "alice", After: "bobs"}},
				{"valid after, absent before", store.ListQuery{Kind: store.KindResponse, After: "r1", Before: "nope"}},
			}
			for _, tt := range bad {
				q := tt.q
				q.Limit = 10
				_, _, err := b.ListRecords(ctx, q)
				wantErrIs(t, tt.name, err, store.ErrNotFound)
			}
			// A cursor of another model is a position, not an error.
			page, _, err := b.ListRecords(ctx, store.ListQuery{Kind: store.KindResponse, Model: "m", After: "r1", Limit: 10})
			must(t, "ListRecords after a record of another model", err)
			if len(page) != 0 {
				t.Fatalf("ListRecords of model m = %q, want none", idsOf(page))
			}
		}},
		{"InvalidQuery", func(t *testing.T, b store.Backend) {
			for _, q := range []store.ListQuery{
				{Kind: store.KindResponse, Limit: 0},
				{Kind: store.KindResponse, Limit: -1},
				{Kind: "", Limit: 1},
			} {
				if _, _, err := b.ListRecords(t.Context(), q); err == nil {
					t.Errorf("ListRecords(%+v) succeeded, want an error", q)
				}
			}
		}},
		{"Filters", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			var recs []store.Record
			for i, combo := range []struct{ model, owner string }{
				{"m1", "alice"}, {"m2", "alice"}, {"m1", "bob"}, {"m2", "bob"}, {"m1", ""}, {"", "alice"},
				{"m1", "alice"}, {"m2", "bob"},
			} {
				recs = append(recs, store.Record{
					Kind: store.KindChatCompletion, ID: fmt.Sprintf("r%d", i), SortKey: int64(100 - i),
					Model: combo.model, Owner: combo.owner, Body: []byte(`{}`),
				})
			}
			recs = append(recs, store.Record{Kind: store.KindResponse, ID: "other", SortKey: 1, Model: "m1", Owner: "alice"})
			must(t, "PutRecords", b.PutRecords(ctx, recs...))
			tests := []struct {
				model, owner string
				want         []string // ascending SortKey: higher index first
			}{
				{"", "", []string{"r7", "r6", "r5", "r4", "r3", "r2", "r1", "r0"}},
				{"m1", "", []string{"r6", "r4", "r2", "r0"}},
				{"m2", "", []string{"r7", "r3", "r1"}},
				{"", "alice", []string{"r6", "r5", "r1", "r0"}},
				{"", "bob", []string{"r7", "r3", "r2"}},
				{"m1", "alice", []string{"r6", "r0"}},
				{"m2", "bob", []string{"r7", "r3"}},
				{"m3", "", nil},
				{"m1", "carol", nil},
			}
			for _, tt := range tests {
				name := fmt.Sprintf("model %q owner %q", tt.model, tt.owner)
				q := store.ListQuery{Kind: store.KindChatCompletion, Model: tt.model, Owner: tt.owner, Limit: 100}
				got, more, err := b.ListRecords(ctx, q)
				must(t, name, err)
				if ids := idsOf(got); !slices.Equal(ids, tt.want) || more {
					t.Errorf("%s: ListRecords = %q, hasMore %v; want %q, hasMore false", name, ids, more, tt.want)
				}
				// hasMore counts filtered records only.
				if len(tt.want) > 1 {
					q.Limit = len(tt.want) - 1
					got, more, err := b.ListRecords(ctx, q)
					must(t, name, err)
					if !more || len(got) != len(tt.want)-1 {
						t.Errorf("%s, Limit %d: %d records, hasMore %v; want %d, true", name, q.Limit, len(got), more, q.Limit)
					}
					q.Limit = len(tt.want)
					if _, more, err := b.ListRecords(ctx, q); err != nil || more {
						t.Errorf("%s, Limit %d: hasMore %v, error %v; want false, nil", name, q.Limit, more, err)
					}
				}
				// Paging through a filtered list visits the same records.
				q.Limit = 1
				if ids := idsOf(listAll(t, b, q)); !slices.Equal(ids, tt.want) {
					t.Errorf("%s: paging one at a time gives %q, want %q", name, ids, tt.want)
				}
			}
		}},
		{"ParentScoping", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			must(t, "PutRecords", b.PutRecords(ctx,
				rec(store.KindConversation, "conv_a", 1),
				rec(store.KindConversation, "conv_b", 2),
				child("conv_a", "a2", 2),
				child("conv_a", "a0", 0),
				child("conv_a", "a1", 1),
				child("conv_b", "b0", 0),
				rec(store.KindConversationItem, "orphan", 0),
			))
			tests := []struct {
				parent string
				want   []string
			}{
				{"conv_a", []string{"a0", "a1", "a2"}},
				{"conv_b", []string{"b0"}},
				{"conv_c", nil},
				{"", []string{"orphan"}},
			}
			for _, tt := range tests {
				got, more, err := b.ListRecords(ctx, store.ListQuery{Kind: store.KindConversationItem, Parent: tt.parent, Limit: 10})
				must(t, "ListRecords parent "+tt.parent, err)
				if ids := idsOf(got); !slices.Equal(ids, tt.want) || more {
					t.Errorf("parent %q: ListRecords = %q, hasMore %v; want %q, false", tt.parent, ids, more, tt.want)
				}
			}
			got, _, err := b.ListRecords(ctx, store.ListQuery{Kind: store.KindConversationItem, Parent: "conv_a", After: "a0", Limit: 10, Desc: true})
			must(t, "ListRecords", err)
			if len(got) != 0 {
				t.Errorf("items of conv_a after a0, descending = %q, want none", idsOf(got))
			}
			got, _, err = b.ListRecords(ctx, store.ListQuery{Kind: store.KindConversation, Limit: 10})
			must(t, "ListRecords", err)
			if ids := idsOf(got); !slices.Equal(ids, []string{"conv_a", "conv_b"}) {
				t.Errorf("conversations = %q, want [conv_a conv_b]", ids)
			}
		}},
		{"Paging", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			const n = 45
			recs := make([]store.Record, n)
			for i := range recs {
				// Three records per SortKey, ids not in SortKey order.
				recs[i] = rec(store.KindChatCompletion, fmt.Sprintf("id-%02d", (i*17)%n), int64(i/3))
			}
			want := make([]store.Record, n)
			copy(want, recs)
			slices.SortFunc(want, func(x, y store.Record) int {
				return cmp.Or(cmp.Compare(x.SortKey, y.SortKey), cmp.Compare(x.ID, y.ID))
			})
			shuffled := slices.Clone(recs)
			rand.New(rand.NewPCG(1, 2)).Shuffle(n, func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			must(t, "PutRecords", b.PutRecords(ctx, shuffled...))
			wantAsc := idsOf(want)
			wantDesc := slices.Clone(wantAsc)
			slices.Reverse(wantDesc)

			for _, desc := range []bool{false, true} {
				wantOrder := wantAsc
				if desc {
					wantOrder = wantDesc
				}
				// Forward with After: 20, 20, 5.
				var seen []string
				after := ""
				for page, size := range []int{20, 20, 5} {
					got, more, err := b.ListRecords(ctx, store.ListQuery{Kind: store.KindChatCompletion, After: after, Limit: 20, Desc: desc})
					must(t, "ListRecords", err)
					if len(got) != size || more != (page < 2) {
						t.Fatalf("desc %v, page %d: %d records, hasMore %v; want %d, %v", desc, page, len(got), more, size, page < 2)
					}
					seen = append(seen, idsOf(got)...)
					after = got[len(got)-1].ID
				}
				if !slices.Equal(seen, wantOrder) {
					t.Fatalf("desc %v: pages after pages = %q, want %q (no duplicate, none missed)", desc, seen, wantOrder)
				}
				// Backward with Before from the last record: 20, 20, 4.
				var back []string
				before := wantOrder[n-1]
				for page, size := range []int{20, 20, 4} {
					got, more, err := b.ListRecords(ctx, store.ListQuery{Kind: store.KindChatCompletion, Before: before, Limit: 20, Desc: desc})
					must(t, "ListRecords", err)
					if len(got) != size || more != (page < 2) {
						t.Fatalf("desc %v, before page %d: %d records, hasMore %v; want %d, %v", desc, page, len(got), more, size, page < 2)
					}
					back = append(idsOf(got), back...)
					before = got[0].ID
				}
				if !slices.Equal(back, wantOrder[:n-1]) {
					t.Fatalf("desc %v: pages before pages = %q, want %q", desc, back, wantOrder[:n-1])
				}
			}
		}},
	}
}

// listAll pages through q with q.Limit per page and returns every record.
func listAll(t *testing.T, b store.Backend, q store.ListQuery) []store.Record {
	t.Helper()
	var all []store.Record
	for range 10000 {
		page, more, err := b.ListRecords(t.Context(), q)
		must(t, "ListRecords", err)
		all = append(all, page...)
		if !more {
			return all
		}
		if len(page) == 0 {
			t.Fatal("ListRecords returned an empty page with hasMore true")
		}
		q.After = page[len(page)-1].ID
	}
	t.Fatal("ListRecords paging does not end")
	return nil
}

// idsOf returns the ids of recs, nil for none.
func idsOf(recs []store.Record) []string {
	var ids []string
	for _, r := range recs {
		ids = append(ids, r.ID)
	}
	return ids
}
