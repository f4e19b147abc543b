package registry

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// ErrNotRegistered reports an unregister of a model that was not
// registered through the API (it comes from the run config or from its
// provider's model list).
var ErrNotRegistered = errors.New("model was not registered through the API")

// ErrInvalid reports a registration with a bad field.
var ErrInvalid = errors.New("invalid model")

// InvalidError names the field of a bad registration; it matches
// ErrInvalid.
type InvalidError struct{ Field, Message string }

// Error returns the message.
func (e *InvalidError) Error() string { return e.Message }

// Is makes the error match ErrInvalid.
func (e *InvalidError) Is(target error) bool { return target == ErrInvalid }

// Persistent registers and unregisters models through a key-value store
// shared by every replica, and keeps the registry in step with it: Sync
// reads the store into the registry, and Run calls Sync periodically, so a
// model registered through one replica is served by the others within one
// period.
type Persistent struct {
	reg    *Registry
	kv     store.KV
	prefix string
	log    *slog.Logger
	// syncMu serialises Sync, so an older listing never replaces a newer
	// one, and guards reported.
	syncMu sync.Mutex
	// reported remembers stored models already logged as unservable here.
	reported map[string]bool
}

// storedModel is a model's record in the store.
type storedModel struct {
	Identifier         string         `json:"identifier"`
	ProviderID         string         `json:"provider_id"`
	ProviderResourceID string         `json:"provider_resource_id"`
	ModelType          string         `json:"model_type"`
	Metadata           map[string]any `json:"metadata"`
	Created            int64          `json:"created"`
}

// NewPersistent keeps reg's API-registered models in kv under
// namespace (OGX's metadata store namespace, "registry" by default).
func NewPersistent(reg *Registry, kv store.KV, namespace string, log *slog.Logger) *Persistent {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if namespace == "" {
		namespace = "registry"
	}
	return &Persistent{reg: reg, kv: kv, prefix: namespace + "/model/", log: log, reported: map[string]bool{}}
}

// Register validates m, writes it to the store (failing with
// ErrModelExists if any replica has the id) and serves it here at once.
func (p *Persistent) Register(ctx context.Context, m Model) (Model, error) {
	if m.Identifier == "" {
		return Model{}, &InvalidError{Field: "model_id", Message: "field 'model_id' is required"}
	}
	if strings.TrimSpace(m.Identifier) != m.Identifier || strings.ContainsAny(m.Identifier, "\x00\r\n") {
		return Model{}, &InvalidError{Field: "model_id", Message: "field 'model_id' must not hold control characters or surrounding spaces"}
	}
	if m.ProviderID == "" {
		ids := p.reg.ProviderIDs()
		if len(ids) != 1 {
			return Model{}, &InvalidError{Field: "provider_id", Message: fmt.Sprintf("field 'provider_id' is required when more than one provider is configured (have %s)", strings.Join(ids, ", "))}
		}
		m.ProviderID = ids[0]
	}
	if !p.reg.HasProvider(m.ProviderID) {
		return Model{}, &InvalidError{Field: "provider_id", Message: fmt.Sprintf("provider '%s' is not configured (have %s)", m.ProviderID, strings.Join(p.reg.ProviderIDs(), ", "))}
	}
	switch m.ModelType {
	case "":
		m.ModelType = TypeLLM
	case TypeLLM, TypeEmbedding, TypeRerank:
	default:
		return Model{}, &InvalidError{Field: "model_type", Message: fmt.Sprintf("field 'model_type' must be llm, embedding or rerank, got '%s'", m.ModelType)}
	}
	if m.ProviderResourceID == "" {
		m.ProviderResourceID = m.Identifier
	}
	if m.Metadata == nil {
		m.Metadata = map[string]any{}
	}
	if existing, ok := p.reg.Get(m.Identifier); ok && !existing.Discovered {
		return Model{}, fmt.Errorf("register %q: %w", m.Identifier, ErrModelExists)
	}
	m.Created = time.Now().Truncate(time.Second)
	data, err := json.Marshal(storedModel{Identifier: m.Identifier, ProviderID: m.ProviderID, ProviderResourceID: m.ProviderResourceID,
		ModelType: m.ModelType, Metadata: m.Metadata, Created: m.Created.Unix()})
	if err != nil {
		return Model{}, &InvalidError{Field: "metadata", Message: "field 'metadata' cannot be stored: " + err.Error()}
	}
	if err := p.kv.Create(ctx, p.prefix+m.Identifier, data); err != nil {
		if errors.Is(err, store.ErrExists) {
			return Model{}, fmt.Errorf("register %q: %w", m.Identifier, ErrModelExists)
		}
		return Model{}, fmt.Errorf("register %q: %w", m.Identifier, err)
	}
	if err := p.Sync(ctx); err != nil {
		// Stored, so every replica will serve it; this one will on its
		// next sync.
		p.log.LogAttrs(ctx, slog.LevelWarn, "model stored but the registry could not be refreshed", slog.String("model_id", m.Identifier), slog.String("error", err.Error()))
	}
	m.Stored = true
	return m, nil
}

// Unregister removes a model registered through the API, from the store
// (for every replica) and from this registry.
func (p *Persistent) Unregister(ctx context.Context, id string) error {
	if m, ok := p.reg.Get(id); ok && !m.Stored {
		return fmt.Errorf("unregister %q: %w", id, ErrNotRegistered)
	}
	if err := p.kv.Delete(ctx, p.prefix+id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return &NotFoundError{ID: id}
		}
		return fmt.Errorf("unregister %q: %w", id, err)
	}
	if err := p.Sync(ctx); err != nil {
		p.log.LogAttrs(ctx, slog.LevelWarn, "model deleted but the registry could not be refreshed", slog.String("model_id", id), slog.String("error", err.Error()))
	}
	return nil
}

// Sync makes the registry's API-registered models those of the store.
func (p *Persistent) Sync(ctx context.Context) error {
	p.syncMu.Lock()
	defer p.syncMu.Unlock()
	entries, err := p.kv.List(ctx, p.prefix)
	if err != nil {
		return fmt.Errorf("list stored models: %w", err)
	}
	models := make([]Model, 0, len(entries))
	for _, e := range entries {
		var sm storedModel
		if err := json.Unmarshal(e.Value, &sm); err != nil || sm.Identifier == "" {
			if !p.reported[e.Key] {
				p.reported[e.Key] = true
				p.log.LogAttrs(ctx, slog.LevelError, "stored model unreadable; skipped", slog.String("key", e.Key))
			}
			continue
		}
		models = append(models, Model{Identifier: sm.Identifier, ProviderID: sm.ProviderID, ProviderResourceID: sm.ProviderResourceID,
			ModelType: sm.ModelType, Metadata: sm.Metadata, Created: time.Unix(sm.Created, 0)})
	}
	for _, m := range p.reg.SetStored(models) {
		if key := "provider:" + m.Identifier; !p.reported[key] {
			p.reported[key] = true
			p.log.LogAttrs(ctx, slog.LevelWarn, "stored model not served: its provider is not configured on this server",
				slog.String("model_id", m.Identifier), slog.String("provider_id", m.ProviderID))
		}
	}
	return nil
}

// Run calls Sync every period until ctx ends, logging failures.
func (p *Persistent) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	failing := false
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		err := p.Sync(ctx)
		switch {
		case err != nil && !failing && ctx.Err() == nil:
			failing = true
			p.log.LogAttrs(ctx, slog.LevelWarn, "model registry sync failed; serving the last known models", slog.String("error", err.Error()))
		case err == nil && failing:
			failing = false
			p.log.LogAttrs(ctx, slog.LevelInfo, "model registry sync recovered")
		}
	}
}
