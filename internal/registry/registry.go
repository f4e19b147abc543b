// Package registry maps the model ids clients use to the provider that
// serves each model and the id the provider knows it by. Lookups take no
// lock: the registry is an immutable snapshot swapped atomically on change.
package registry

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

// ErrModelNotFound reports a model id that no registered model and no
// configured provider answers to.
var ErrModelNotFound = errors.New("model not found")

// ErrModelExists reports a registration whose id is taken.
var ErrModelExists = errors.New("model already registered")

// ErrProviderNotFound reports a registration naming an unknown provider.
var ErrProviderNotFound = errors.New("provider not found")

// NotFoundError is the error Lookup returns for an unknown model; it
// matches ErrModelNotFound with errors.Is and carries the id.
type NotFoundError struct{ ID string }

// Error names the model.
func (e *NotFoundError) Error() string { return fmt.Sprintf("model %q not found", e.ID) }

// Is makes the error match ErrModelNotFound.
func (e *NotFoundError) Is(target error) bool { return target == ErrModelNotFound }

// Model types.
const (
	TypeLLM       = "llm"
	TypeEmbedding = "embedding"
	TypeRerank    = "rerank"
)

// Model is a registered model, as Llama Stack describes it.
type Model struct {
	// Identifier is the id clients use, e.g. "bedrock/openai.gpt-oss-20b-1:0".
	Identifier string
	// ProviderID names the provider that serves the model.
	ProviderID string
	// ProviderResourceID is the id the provider knows the model by.
	ProviderResourceID string
	// ModelType is TypeLLM, TypeEmbedding or TypeRerank.
	ModelType string
	// Metadata is free-form and returned as registered.
	Metadata map[string]any
	// Created is when the model was registered.
	Created time.Time
	// Discovered marks a model listed by its provider rather than
	// registered; SetDiscovered replaces these.
	Discovered bool
	// Stored marks a model registered through the API and kept in the
	// metadata store; SetStored replaces these.
	Stored bool
}

// Route is the answer to a lookup: the model and the provider serving it.
type Route struct {
	Model    Model
	Provider provider.Provider
}

// Registry holds the models and the providers that serve them.
type Registry struct {
	mu        sync.Mutex // serialises writers; readers use snap
	snap      atomic.Pointer[snapshot]
	providers map[string]provider.Provider
}

type snapshot struct {
	routes map[string]*Route
	order  []string // identifiers, in registration order
}

// New returns a registry over the given providers, keyed by provider_id.
func New(providers map[string]provider.Provider) *Registry {
	r := &Registry{providers: providers}
	r.snap.Store(&snapshot{routes: map[string]*Route{}})
	return r
}

// Register adds a model. Its provider must be known and its id free.
func (r *Registry) Register(m Model) error {
	if m.Identifier == "" {
		return errors.New("model id is empty")
	}
	p, ok := r.providers[m.ProviderID]
	if !ok {
		return fmt.Errorf("register %q: %w: %q", m.Identifier, ErrProviderNotFound, m.ProviderID)
	}
	if m.ProviderResourceID == "" {
		m.ProviderResourceID = m.Identifier
	}
	if m.ModelType == "" {
		m.ModelType = TypeLLM
	}
	if m.Metadata == nil {
		m.Metadata = map[string]any{}
	}
	if m.Created.IsZero() {
		m.Created = time.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snap.Load()
	if _, ok := old.routes[m.Identifier]; ok {
		return fmt.Errorf("register %q: %w", m.Identifier, ErrModelExists)
	}
	next := &snapshot{routes: make(map[string]*Route, len(old.routes)+1), order: append(old.order[:len(old.order):len(old.order)], m.Identifier)}
	for k, v := range old.routes {
		next.routes[k] = v
	}
	next.routes[m.Identifier] = &Route{Model: m, Provider: p}
	r.snap.Store(next)
	return nil
}

// SetDiscovered replaces the models discovered from one provider with
// models (each named by its Identifier). A discovered model never shadows
// a registered one with the same id. It returns how many models were added
// and removed.
func (r *Registry) SetDiscovered(providerID string, models []Model) (added, removed int, err error) {
	p, ok := r.providers[providerID]
	if !ok {
		return 0, 0, fmt.Errorf("discovered models: %w: %q", ErrProviderNotFound, providerID)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snap.Load()
	next := &snapshot{routes: make(map[string]*Route, len(old.routes)+len(models))}
	for _, id := range old.order {
		rt := old.routes[id]
		if rt.Model.Discovered && rt.Model.ProviderID == providerID {
			continue
		}
		next.routes[id] = rt
		next.order = append(next.order, id)
	}
	now := time.Now()
	for _, m := range models {
		if _, taken := next.routes[m.Identifier]; taken || m.Identifier == "" {
			continue
		}
		m.ProviderID, m.Discovered = providerID, true
		if m.ProviderResourceID == "" {
			m.ProviderResourceID = m.Identifier
		}
		if m.ModelType == "" {
			m.ModelType = TypeLLM
		}
		if m.Metadata == nil {
			m.Metadata = map[string]any{}
		}
		if prev, ok := old.routes[m.Identifier]; ok && prev.Model.Discovered {
			m.Created = prev.Model.Created
		} else {
			added++
		}
		if m.Created.IsZero() {
			m.Created = now
		}
		next.routes[m.Identifier] = &Route{Model: m, Provider: p}
		next.order = append(next.order, m.Identifier)
	}
	for id, rt := range old.routes {
		if rt.Model.Discovered && rt.Model.ProviderID == providerID {
			if _, still := next.routes[id]; !still {
				removed++
			}
		}
	}
	r.snap.Store(next)
	return added, removed, nil
}

// SetStored replaces the models registered through the API (those kept in
// the metadata store) with models. A stored model never shadows one from
// the run config; one whose provider is not configured here is skipped and
// reported in skipped. Discovered models a stored one names are replaced by
// it.
func (r *Registry) SetStored(models []Model) (skipped []Model) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.snap.Load()
	want := make(map[string]bool, len(models))
	for _, m := range models {
		want[m.Identifier] = true
	}
	next := &snapshot{routes: make(map[string]*Route, len(old.routes)+len(models))}
	for _, id := range old.order {
		rt := old.routes[id]
		if rt.Model.Stored || rt.Model.Discovered && want[id] {
			continue
		}
		next.routes[id] = rt
		next.order = append(next.order, id)
	}
	for _, m := range models {
		if _, taken := next.routes[m.Identifier]; taken || m.Identifier == "" {
			continue
		}
		p, ok := r.providers[m.ProviderID]
		if !ok {
			skipped = append(skipped, m)
			continue
		}
		m.Stored, m.Discovered = true, false
		if m.ProviderResourceID == "" {
			m.ProviderResourceID = m.Identifier
		}
		if m.ModelType == "" {
			m.ModelType = TypeLLM
		}
		if m.Metadata == nil {
			m.Metadata = map[string]any{}
		}
		if m.Created.IsZero() {
			m.Created = time.Now()
		}
		next.routes[m.Identifier] = &Route{Model: m, Provider: p}
		next.order = append(next.order, m.Identifier)
	}
	r.snap.Store(next)
	return skipped
}

// HasProvider reports whether a provider with this id is configured.
func (r *Registry) HasProvider(id string) bool {
	_, ok := r.providers[id]
	return ok
}

// Lookup finds the route for a client model id. Like Llama Stack, an id of
// the form "<provider_id>/<provider_model_id>" that is not registered still
// reaches that provider with the part after the slash.
func (r *Registry) Lookup(id string) (*Route, error) {
	if rt, ok := r.snap.Load().routes[id]; ok {
		return rt, nil
	}
	if pid, rest, ok := strings.Cut(id, "/"); ok && rest != "" {
		if p, ok := r.providers[pid]; ok {
			return &Route{Model: Model{Identifier: id, ProviderID: pid, ProviderResourceID: rest, ModelType: TypeLLM, Metadata: map[string]any{}}, Provider: p}, nil
		}
	}
	return nil, &NotFoundError{ID: id}
}

// Get returns a registered model by id, without the provider fallback.
func (r *Registry) Get(id string) (Model, bool) {
	rt, ok := r.snap.Load().routes[id]
	if !ok {
		return Model{}, false
	}
	return rt.Model, true
}

// List returns the registered models in registration order.
func (r *Registry) List() []Model {
	s := r.snap.Load()
	out := make([]Model, 0, len(s.order))
	for _, id := range s.order {
		out = append(out, s.routes[id].Model)
	}
	return out
}

// ProviderIDs returns the ids of the providers, sorted.
func (r *Registry) ProviderIDs() []string {
	ids := make([]string, 0, len(r.providers))
	for id := range r.providers {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	return ids
}
