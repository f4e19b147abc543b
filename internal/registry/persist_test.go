package registry

import (
	"context"
	"errors"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// memKV is an in-memory store.KV shared by "replicas" in these tests; the
// real backends pass the store conformance suite.
type memKV struct {
	mu   sync.Mutex
	m    map[string][]byte
	fail error
}

func (k *memKV) Get(_ context.Context, key string) ([]byte, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	v, ok := k.m[key]
	if !ok {
		return nil, store.ErrNotFound
	}
	return v, nil
}
func (k *memKV) Set(_ context.Context, key string, v []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.m[key] = v
	return nil
}
func (k *memKV) Create(_ context.Context, key string, v []byte) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return k.fail
	}
	if _, ok := k.m[key]; ok {
		return store.ErrExists
	}
	k.m[key] = v
	return nil
}
func (k *memKV) Delete(_ context.Context, key string) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if _, ok := k.m[key]; !ok {
		return store.ErrNotFound
	}
	delete(k.m, key)
	return nil
}
func (k *memKV) List(_ context.Context, prefix string) ([]store.Entry, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.fail != nil {
		return nil, k.fail
	}
	var out []store.Entry
	for key, v := range k.m {
		if strings.HasPrefix(key, prefix) {
			out = append(out, store.Entry{Key: key, Value: v})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}
func (k *memKV) Incr(context.Context, string, int64, time.Duration, time.Time) (int64, time.Time, error) {
	return 0, time.Time{}, errors.New("unused")
}

func TestPersistentRegisterSeenByOtherReplica(t *testing.T) {
	kv := &memKV{m: map[string][]byte{}}
	var p provider.Provider
	regA := New(map[string]provider.Provider{"bedrock": p, "openai": p})
	regB := New(map[string]provider.Provider{"bedrock": p, "openai": p})
	if err := regA.Register(Model{Identifier: "from-config", ProviderID: "bedrock"}); err != nil {
		t.Fatal(err)
	}
	a := NewPersistent(regA, kv, "registry", nil)
	b := NewPersistent(regB, kv, "registry", nil)
	ctx := t.Context()

	m, err := a.Register(ctx, Model{Identifier: "my-claude", ProviderID: "bedrock", ProviderResourceID: "anthropic.claude", Metadata: map[string]any{"team": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	if !m.Stored || m.ModelType != TypeLLM {
		t.Errorf("registered model = %+v", m)
	}
	if rt, err := regA.Lookup("my-claude"); err != nil || rt.Model.ProviderResourceID != "anthropic.claude" {
		t.Fatalf("replica A lookup = %v, %v", rt, err)
	}
	if _, err := regB.Lookup("my-claude"); err == nil {
		t.Fatal("replica B served the model before syncing")
	}
	if err := b.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if rt, err := regB.Lookup("my-claude"); err != nil || rt.Model.Metadata["team"] != "x" {
		t.Fatalf("replica B after sync = %v, %v", rt, err)
	}
	// The id is taken on every replica.
	if _, err := b.Register(ctx, Model{Identifier: "my-claude", ProviderID: "openai"}); !errors.Is(err, ErrModelExists) {
		t.Errorf("second register = %v, want ErrModelExists", err)
	}
	if _, err := a.Register(ctx, Model{Identifier: "from-config", ProviderID: "bedrock"}); !errors.Is(err, ErrModelExists) {
		t.Errorf("register over a config model = %v, want ErrModelExists", err)
	}
	// Unregister through B; A drops it at its next sync.
	if err := b.Unregister(ctx, "my-claude"); err != nil {
		t.Fatal(err)
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if _, ok := regA.Get("my-claude"); ok {
		t.Error("replica A still serves the unregistered model")
	}
	if err := a.Unregister(ctx, "my-claude"); !errors.Is(err, ErrModelNotFound) {
		t.Errorf("unregister twice = %v, want ErrModelNotFound", err)
	}
	if err := a.Unregister(ctx, "from-config"); !errors.Is(err, ErrNotRegistered) {
		t.Errorf("unregister config model = %v, want ErrNotRegistered", err)
	}
}

func TestPersistentRegisterInvalid(t *testing.T) {
	var p provider.Provider
	reg := New(map[string]provider.Provider{"bedrock": p, "openai": p})
	ps := NewPersistent(reg, &memKV{m: map[string][]byte{}}, "", nil)
	tests := []struct {
		name  string
		m     Model
		field string
	}{
		{"no id", Model{ProviderID: "bedrock"}, "model_id"},
		{"newline in id", Model{Identifier: "a\nb", ProviderID: "bedrock"}, "model_id"},
		{"unknown provider", Model{Identifier: "x", ProviderID: "nope"}, "provider_id"},
		{"provider needed", Model{Identifier: "x"}, "provider_id"},
		{"bad type", Model{Identifier: "x", ProviderID: "bedrock", ModelType: "vision"}, "model_type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ps.Register(t.Context(), tt.m)
			var ie *InvalidError
			if !errors.As(err, &ie) || ie.Field != tt.field {
				t.Errorf("Register = %v, want InvalidError on %s", err, tt.field)
			}
		})
	}
}

func TestPersistentSkipsUnknownProvider(t *testing.T) {
	kv := &memKV{m: map[string][]byte{}}
	var p provider.Provider
	full := NewPersistent(New(map[string]provider.Provider{"bedrock": p, "vllm": p}), kv, "", nil)
	if _, err := full.Register(t.Context(), Model{Identifier: "llama", ProviderID: "vllm"}); err != nil {
		t.Fatal(err)
	}
	small := New(map[string]provider.Provider{"bedrock": p})
	if err := NewPersistent(small, kv, "", nil).Sync(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, ok := small.Get("llama"); ok {
		t.Error("a model of an unconfigured provider is served")
	}
}

func TestPersistentStoreDownKeepsModels(t *testing.T) {
	kv := &memKV{m: map[string][]byte{}}
	var p provider.Provider
	reg := New(map[string]provider.Provider{"bedrock": p})
	ps := NewPersistent(reg, kv, "", nil)
	if _, err := ps.Register(t.Context(), Model{Identifier: "m", ProviderID: "bedrock"}); err != nil {
		t.Fatal(err)
	}
	kv.fail = store.ErrUnavailable
	if err := ps.Sync(t.Context()); !errors.Is(err, store.ErrUnavailable) {
		t.Fatalf("Sync = %v", err)
	}
	if _, ok := reg.Get("m"); !ok {
		t.Error("a failed sync dropped the stored models")
	}
	if _, err := ps.Register(t.Context(), Model{Identifier: "n", ProviderID: "bedrock"}); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Register with the store down = %v, want ErrUnavailable", err)
	}
}
