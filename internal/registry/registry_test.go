package registry

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

func TestRegistry(t *testing.T) {
	var p provider.Provider // identity is all the registry needs
	r := New(map[string]provider.Provider{"bedrock": p})
	if err := r.Register(Model{Identifier: "bedrock/a:0", ProviderID: "bedrock", ProviderResourceID: "a:0"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		id      string
		wantRes string
		wantErr error
	}{
		{"registered", "bedrock/a:0", "a:0", nil},
		{"provider fallback", "bedrock/other-1:0", "other-1:0", nil},
		{"unknown provider prefix", "nope/a:0", "", ErrModelNotFound},
		{"bare unknown", "a:0", "", ErrModelNotFound},
		{"empty rest", "bedrock/", "", ErrModelNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rt, err := r.Lookup(tt.id)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && rt.Model.ProviderResourceID != tt.wantRes {
				t.Errorf("resource = %q, want %q", rt.Model.ProviderResourceID, tt.wantRes)
			}
		})
	}
	if err := r.Register(Model{Identifier: "bedrock/a:0", ProviderID: "bedrock"}); !errors.Is(err, ErrModelExists) {
		t.Errorf("duplicate: %v", err)
	}
	if err := r.Register(Model{Identifier: "x", ProviderID: "missing"}); !errors.Is(err, ErrProviderNotFound) {
		t.Errorf("missing provider: %v", err)
	}
	if err := r.Register(Model{Identifier: "b", ProviderID: "bedrock"}); err != nil {
		t.Fatal(err)
	}
	m, ok := r.Get("b")
	if !ok || m.ProviderResourceID != "b" || m.ModelType != TypeLLM || m.Metadata == nil || m.Created.IsZero() {
		t.Errorf("defaults not applied: %+v", m)
	}
	if l := r.List(); len(l) != 2 || l[0].Identifier != "bedrock/a:0" || l[1].Identifier != "b" {
		t.Errorf("List = %+v", l)
	}
}

func TestRegistryConcurrent(t *testing.T) {
	r := New(map[string]provider.Provider{"p": nil})
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Go(func() { _ = r.Register(Model{Identifier: string(rune('a' + i%26)), ProviderID: "p"}) })
		wg.Go(func() { _, _ = r.Lookup("a"); _ = r.List() })
	}
	wg.Wait()
	if n := len(r.List()); n != 26 {
		t.Errorf("%d models, want 26", n)
	}
}

func TestSetDiscovered(t *testing.T) {
	r := New(map[string]provider.Provider{"ollama": nil, "openai": nil})
	if err := r.Register(Model{Identifier: "ollama/llama3.2:3b", ProviderID: "ollama", ProviderResourceID: "llama3.2:3b", Metadata: map[string]any{"pinned": true}}); err != nil {
		t.Fatal(err)
	}
	added, removed, err := r.SetDiscovered("ollama", []Model{
		{Identifier: "ollama/llama3.2:3b", ProviderResourceID: "llama3.2:3b"}, // registered: kept as registered
		{Identifier: "ollama/qwen3:8b", ProviderResourceID: "qwen3:8b"},
		{Identifier: "ollama/nomic-embed-text", ProviderResourceID: "nomic-embed-text", ModelType: TypeEmbedding},
	})
	if err != nil || added != 2 || removed != 0 {
		t.Fatalf("first: added %d removed %d err %v", added, removed, err)
	}
	if m, _ := r.Get("ollama/llama3.2:3b"); m.Discovered || m.Metadata["pinned"] != true {
		t.Errorf("registered model was shadowed: %+v", m)
	}
	if _, _, err := r.SetDiscovered("openai", []Model{{Identifier: "openai/gpt-4o", ProviderResourceID: "gpt-4o"}}); err != nil {
		t.Fatal(err)
	}
	added, removed, _ = r.SetDiscovered("ollama", []Model{{Identifier: "ollama/qwen3:8b", ProviderResourceID: "qwen3:8b"}})
	if added != 0 || removed != 1 {
		t.Errorf("refresh: added %d removed %d", added, removed)
	}
	if _, err := r.Lookup("ollama/nomic-embed-text"); err != nil {
		// The provider fallback still routes it; the listing no longer has it.
		t.Errorf("lookup: %v", err)
	}
	var ids []string
	for _, m := range r.List() {
		ids = append(ids, m.Identifier)
	}
	if got := strings.Join(ids, ","); got != "ollama/llama3.2:3b,openai/gpt-4o,ollama/qwen3:8b" {
		t.Errorf("List = %s", got)
	}
	if _, _, err := r.SetDiscovered("nope", nil); !errors.Is(err, ErrProviderNotFound) {
		t.Errorf("unknown provider: %v", err)
	}
}
