// Package storetest is the conformance suite every store.Backend must pass:
// the key-value space, the fixed-window counters and the records, including
// the concurrency, all-or-none and paging guarantees store documents.
//
// A backend's tests call Run with a function that opens a fresh, empty
// backend:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Backend {
//			db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "s.db"), sqlite.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			return db
//		})
//	}
package storetest

import (
	"context"
	"errors"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// Run runs the conformance suite against backends made by open. open is
// called once per subtest and must return a new, empty backend that no other
// subtest sees; Run closes it when the subtest ends (open may register its
// own t.Cleanup to remove what it created; it runs after the Close). Subtests
// run in parallel.
func Run(t *testing.T, open func(t *testing.T) store.Backend) {
	t.Helper()
	groups := []struct {
		name  string
		cases []testCase
	}{
		{"KV", kvCases()},
		{"Incr", incrCases()},
		{"Records", recordCases()},
		{"List", listCases()},
		{"Backend", backendCases()},
	}
	for _, g := range groups {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.cases {
				t.Run(tc.name, func(t *testing.T) {
					t.Parallel()
					tc.run(t, openBackend(t, open))
				})
			}
		})
	}
}

// testCase is one subtest of the suite, run against a fresh backend.
type testCase struct {
	name string
	run  func(t *testing.T, b store.Backend)
}

// openBackend opens a backend for one subtest and closes it at its end.
func openBackend(t *testing.T, open func(t *testing.T) store.Backend) store.Backend {
	t.Helper()
	b := open(t)
	if b == nil {
		t.Fatal("open returned a nil backend")
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// wantErrIs fails the test unless errors.Is(err, target).
func wantErrIs(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error = %v, want errors.Is(_, %v)", what, err, target)
	}
}

// must fails the test if err is not nil.
func must(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// cancelled returns a context that is already cancelled.
func cancelled(t *testing.T) context.Context {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	return ctx
}
