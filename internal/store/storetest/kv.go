package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// kvCases covers Get, Set, Create, Delete and List.
func kvCases() []testCase {
	return []testCase{
		{"GetMissing", func(t *testing.T, b store.Backend) {
			_, err := b.Get(t.Context(), "models/absent")
			wantErrIs(t, "Get of an absent key", err, store.ErrNotFound)
		}},
		{"SetGetReplace", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			binary := make([]byte, 256)
			for i := range binary {
				binary[i] = byte(i)
			}
			values := []struct {
				name  string
				value []byte
			}{
				{"json", []byte(`{"model_id":"bedrock/x","metadata":{}}`)},
				{"every byte value", binary},
				{"unicode", []byte(`{"name":"modèle ✓ 模型 🦙"}`)},
				{"empty", []byte{}},
				{"replaced", []byte("second")},
			}
			for _, v := range values {
				must(t, "Set "+v.name, b.Set(ctx, "models/m", v.value))
				got, err := b.Get(ctx, "models/m")
				must(t, "Get "+v.name, err)
				if !bytes.Equal(got, v.value) {
					t.Fatalf("Get after Set %s = %q, want %q", v.name, got, v.value)
				}
			}
			// Set on another key leaves the first alone.
			must(t, "Set other", b.Set(ctx, "models/n", []byte("n")))
			got, err := b.Get(ctx, "models/m")
			must(t, "Get", err)
			if string(got) != "second" {
				t.Fatalf("Get models/m = %q after Set of models/n, want %q", got, "second")
			}
		}},
		{"SetDoesNotAlias", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			v := []byte("original")
			must(t, "Set", b.Set(ctx, "k", v))
			copy(v, "CHANGED!")
			got, err := b.Get(ctx, "k")
			must(t, "Get", err)
			if string(got) != "original" {
				t.Fatalf("Get = %q after the caller reused its slice, want %q", got, "original")
			}
		}},
		{"Create", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			must(t, "Create", b.Create(ctx, "models/a", []byte("first")))
			err := b.Create(ctx, "models/a", []byte("second"))
			wantErrIs(t, "Create of a taken key", err, store.ErrExists)
			got, err := b.Get(ctx, "models/a")
			must(t, "Get", err)
			if string(got) != "first" {
				t.Fatalf("Get = %q after a refused Create, want %q", got, "first")
			}
			// A key made by Set is taken too; a deleted key is free again.
			must(t, "Set", b.Set(ctx, "models/b", []byte("set")))
			wantErrIs(t, "Create of a Set key", b.Create(ctx, "models/b", nil), store.ErrExists)
			must(t, "Delete", b.Delete(ctx, "models/b"))
			must(t, "Create after Delete", b.Create(ctx, "models/b", []byte("again")))
		}},
		{"CreateRace", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			const n = 16
			errs := make([]error, n)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range n {
				wg.Go(func() {
					<-start
					errs[i] = b.Create(ctx, "race/key", []byte(fmt.Sprintf("winner-%d", i)))
				})
			}
			close(start)
			wg.Wait()
			winner := -1
			for i, err := range errs {
				switch {
				case err == nil:
					if winner >= 0 {
						t.Fatalf("Create succeeded for goroutines %d and %d, want exactly one", winner, i)
					}
					winner = i
				case errors.Is(err, store.ErrExists):
				default:
					t.Fatalf("Create in goroutine %d: %v, want nil or ErrExists", i, err)
				}
			}
			if winner < 0 {
				t.Fatal("no Create succeeded")
			}
			got, err := b.Get(ctx, "race/key")
			must(t, "Get", err)
			if want := fmt.Sprintf("winner-%d", winner); string(got) != want {
				t.Fatalf("Get = %q, want the winner's value %q", got, want)
			}
		}},
		{"Delete", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			wantErrIs(t, "Delete of an absent key", b.Delete(ctx, "k"), store.ErrNotFound)
			must(t, "Set", b.Set(ctx, "k", []byte("v")))
			must(t, "Set", b.Set(ctx, "k2", []byte("v2")))
			must(t, "Delete", b.Delete(ctx, "k"))
			_, err := b.Get(ctx, "k")
			wantErrIs(t, "Get after Delete", err, store.ErrNotFound)
			wantErrIs(t, "second Delete", b.Delete(ctx, "k"), store.ErrNotFound)
			if _, err := b.Get(ctx, "k2"); err != nil {
				t.Fatalf("Get of a key that was not deleted: %v", err)
			}
		}},
		{"List", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			keys := []string{
				"models/b", "models/a", "models/a/x", "models/", "model", "modelsx",
				"quota/1", "a%b/1", "a%bc", "axb/1", "a_b/1", "aXb", `a\b`, `a\\b`,
				"z", "z\U0010FFFF", "z\U0010FFFFa", "zz", "é/1", "é", "f",
			}
			for _, k := range keys {
				must(t, "Set "+k, b.Set(ctx, k, []byte("v:"+k)))
			}
			tests := []struct {
				prefix string
				want   []string
			}{
				{"models/", []string{"models/", "models/a", "models/a/x", "models/b"}},
				{"models/a", []string{"models/a", "models/a/x"}},
				{"model", []string{"model", "models/", "models/a", "models/a/x", "models/b", "modelsx"}},
				{"quota/", []string{"quota/1"}},
				{"a%b", []string{"a%b/1", "a%bc"}},
				{"a%", []string{"a%b/1", "a%bc"}},
				{"a_b", []string{"a_b/1"}},
				{"a_", []string{"a_b/1"}},
				{`a\`, []string{`a\\b`, `a\b`}},
				{`a\\`, []string{`a\\b`}},
				{"%", nil},
				{"_", nil},
				{"z\U0010FFFF", []string{"z\U0010FFFF", "z\U0010FFFFa"}},
				{"z", []string{"z", "zz", "z\U0010FFFF", "z\U0010FFFFa"}},
				{"é", []string{"é", "é/1"}},
				{"absent/", nil},
				{"", slices.Sorted(slices.Values(keys))},
			}
			for _, tt := range tests {
				entries, err := b.List(ctx, tt.prefix)
				must(t, fmt.Sprintf("List(%q)", tt.prefix), err)
				var got []string
				for _, e := range entries {
					got = append(got, e.Key)
					if want := "v:" + e.Key; string(e.Value) != want {
						t.Errorf("List(%q): value of %q = %q, want %q", tt.prefix, e.Key, e.Value, want)
					}
				}
				if !slices.Equal(got, tt.want) {
					t.Errorf("List(%q) keys = %q, want %q", tt.prefix, got, tt.want)
				}
			}
		}},
		{"InvalidKeys", func(t *testing.T, b store.Backend) {
			// Keys must be UTF-8 text without NUL: PostgreSQL's text
			// cannot hold anything else, so no backend accepts it.
			ctx := t.Context()
			for _, k := range []string{"", "a\x00b", "bad\xffutf8"} {
				if err := b.Set(ctx, k, []byte("v")); err == nil {
					t.Errorf("Set(%q) succeeded, want an error", k)
				}
				if err := b.Create(ctx, k, []byte("v")); err == nil {
					t.Errorf("Create(%q) succeeded, want an error", k)
				}
			}
			if _, err := b.List(ctx, "bad\xff"); err == nil {
				t.Error("List with an invalid UTF-8 prefix succeeded, want an error")
			}
		}},
		{"Concurrent", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			const writers, each = 8, 10
			var wg sync.WaitGroup
			errs := make(chan error, writers*each*2)
			for w := range writers {
				wg.Go(func() {
					for i := range each {
						k := fmt.Sprintf("c/%02d/%02d", w, i)
						if err := b.Set(ctx, k, []byte(k)); err != nil {
							errs <- fmt.Errorf("Set %s: %w", k, err)
						}
						if _, err := b.List(ctx, "c/"); err != nil {
							errs <- fmt.Errorf("List: %w", err)
						}
					}
				})
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Error(err)
			}
			entries, err := b.List(ctx, "c/")
			must(t, "List", err)
			if len(entries) != writers*each {
				t.Fatalf("List after concurrent Sets: %d entries, want %d", len(entries), writers*each)
			}
		}},
	}
}

// incrCases covers the fixed-window counters.
func incrCases() []testCase {
	now := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
	return []testCase{
		{"Window", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			const w = time.Minute
			steps := []struct {
				name      string
				key       string
				by        int64
				at        time.Time
				wantCount int64
				wantReset time.Time
			}{
				{"first starts a window", "quota/a", 3, now, 3, now.Add(w)},
				{"accumulates", "quota/a", 4, now.Add(10 * time.Second), 7, now.Add(w)},
				{"by zero reads", "quota/a", 0, now.Add(20 * time.Second), 7, now.Add(w)},
				{"negative refunds", "quota/a", -2, now.Add(30 * time.Second), 5, now.Add(w)},
				{"last instant of window", "quota/a", 1, now.Add(w - time.Nanosecond), 6, now.Add(w)},
				{"window end starts a new one", "quota/a", 2, now.Add(w), 2, now.Add(2 * w)},
				{"in the new window", "quota/a", 1, now.Add(w + time.Second), 3, now.Add(2 * w)},
				{"long after expiry", "quota/a", 5, now.Add(time.Hour), 5, now.Add(time.Hour + w)},
				{"other key is separate", "quota/b", 1, now.Add(time.Hour), 1, now.Add(time.Hour + w)},
				{"other window length", "quota/c", 1, now, 1, now.Add(24 * time.Hour)},
			}
			for _, s := range steps {
				win := w
				if s.key == "quota/c" {
					win = 24 * time.Hour
				}
				count, reset, err := b.Incr(ctx, s.key, s.by, win, s.at)
				must(t, s.name, err)
				if count != s.wantCount || !reset.Equal(s.wantReset) {
					t.Fatalf("%s: Incr = (%d, %v), want (%d, %v)", s.name, count, reset, s.wantCount, s.wantReset)
				}
			}
		}},
		{"Concurrent", func(t *testing.T, b store.Backend) {
			ctx := t.Context()
			const goroutines, each = 10, 20
			var wg sync.WaitGroup
			counts := make(chan int64, goroutines*each)
			errs := make(chan error, goroutines*each)
			for range goroutines {
				wg.Go(func() {
					for range each {
						c, _, err := b.Incr(ctx, "quota/hot", 1, time.Hour, now)
						if err != nil {
							errs <- err
							continue
						}
						counts <- c
					}
				})
			}
			wg.Wait()
			close(counts)
			close(errs)
			for err := range errs {
				t.Fatalf("Incr: %v", err)
			}
			// Atomic increments hand out every count from 1 to the total
			// exactly once.
			seen := make(map[int64]bool)
			for c := range counts {
				if seen[c] {
					t.Fatalf("count %d returned twice: increments are not atomic", c)
				}
				seen[c] = true
			}
			for c := int64(1); c <= goroutines*each; c++ {
				if !seen[c] {
					t.Fatalf("count %d never returned (saw %d counts)", c, len(seen))
				}
			}
			c, _, err := b.Incr(ctx, "quota/hot", 0, time.Hour, now)
			must(t, "Incr", err)
			if c != goroutines*each {
				t.Fatalf("final count = %d, want %d", c, goroutines*each)
			}
		}},
		{"Location", func(t *testing.T, b store.Backend) {
			loc := time.FixedZone("UTC+5", 5*3600)
			at := now.In(loc)
			_, reset, err := b.Incr(t.Context(), "quota/loc", 1, time.Minute, at)
			must(t, "Incr", err)
			if !reset.Equal(at.Add(time.Minute)) {
				t.Fatalf("resetAt = %v, want %v", reset, at.Add(time.Minute))
			}
		}},
		{"BadWindow", func(t *testing.T, b store.Backend) {
			for _, w := range []time.Duration{0, -time.Second} {
				if _, _, err := b.Incr(t.Context(), "quota/x", 1, w, now); err == nil {
					t.Errorf("Incr with window %v succeeded, want an error", w)
				}
			}
			if _, _, err := b.Incr(t.Context(), "", 1, time.Second, now); err == nil {
				t.Error("Incr of an empty key succeeded, want an error")
			}
		}},
		{"NotInKV", func(t *testing.T, b store.Backend) {
			// Counters live beside the key-value space, not in it: a
			// counter is no Entry of List and does not take a key.
			ctx := t.Context()
			_, _, err := b.Incr(ctx, "quota/k", 1, time.Minute, now)
			must(t, "Incr", err)
			entries, err := b.List(ctx, "quota/")
			must(t, "List", err)
			if len(entries) != 0 {
				t.Fatalf("List(quota/) = %v after Incr, want none", entries)
			}
			must(t, "Create", b.Create(ctx, "quota/k", []byte("v")))
		}},
	}
}
