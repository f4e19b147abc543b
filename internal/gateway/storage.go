package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/api"
	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
	"github.com/llama-stack-go/llama-stack-go/internal/store"
	"github.com/llama-stack-go/llama-stack-go/internal/store/postgres"
	"github.com/llama-stack-go/llama-stack-go/internal/store/sqlite"
)

// DefaultRegistrySync is how often a replica reads the models registered
// through the API by any replica.
const DefaultRegistrySync = 2 * time.Second

// storage is the gateway's open stores.
type storage struct {
	conns     map[string]*store.Conn // by backend name
	persist   *registry.Persistent   // nil when the metadata store is off
	writer    *store.Writer          // nil when the inference store is off
	inference store.Records
	records   store.Records // responses and conversations
	health    map[string]api.StoreHealth
}

// openStorage connects the backends the stores name (each once; a backend
// that cannot be opened yet is retried in the background) and builds the
// stores on them.
func openStorage(s *config.Storage, reg *registry.Registry, log *slog.Logger, observe func(store.WriterEvent)) *storage {
	st := &storage{conns: map[string]*store.Conn{}, health: map[string]api.StoreHealth{}}
	if s == nil {
		return st
	}
	conn := func(storeName string, ref *config.StoreRef) *store.Conn { return st.connect(s, storeName, ref, log) }
	if c := conn("metadata", s.Stores.Metadata); c != nil {
		st.persist = registry.NewPersistent(reg, c, s.Stores.Metadata.Namespace, log)
		if err := st.persist.Sync(context.Background()); err != nil && c.Ready() {
			log.LogAttrs(context.Background(), slog.LevelWarn, "registered models could not be read", slog.String("error", err.Error()))
		}
	}
	if c := conn("inference", s.Stores.Inference); c != nil {
		ref := s.Stores.Inference
		st.inference = c
		st.writer = store.NewWriter(c, store.WriterOptions{
			QueueSize: ref.QueueSize(), FlushInterval: time.Duration(ref.FlushInterval()) * time.Millisecond,
			Logger: log.With(slog.String("store", "inference")), Observe: observe,
		})
	}
	// Responses live with the responses store when one is named, else
	// with the conversations they join.
	ref, name := s.Stores.Responses, "responses"
	if ref == nil {
		ref, name = s.Stores.Conversations, "conversations"
	}
	if c := conn(name, ref); c != nil {
		st.records = c
	}
	return st
}

// connect returns the connection to the backend ref names, opening it on
// first use; nil when the store is switched off.
func (st *storage) connect(s *config.Storage, storeName string, ref *config.StoreRef, log *slog.Logger) *store.Conn {
	if ref == nil {
		return nil
	}
	b := s.StoreBackend(ref)
	if b == nil {
		return nil
	}
	c, ok := st.conns[ref.Backend]
	if !ok {
		c = store.Connect(ref.Backend, opener(b, log), store.ConnectOptions{FirstTry: 3 * time.Second, Logger: log.With(slog.String("backend", ref.Backend))})
		st.conns[ref.Backend] = c
		if c.Ready() {
			log.LogAttrs(context.Background(), slog.LevelInfo, "storage opened", slog.String("backend", ref.Backend), slog.String("database", b.String()))
		}
	}
	st.health[storeName] = c
	return c
}

// opener returns how to open one configured backend.
func opener(b *config.StorageBackend, log *slog.Logger) store.Opener {
	if b.Postgres() {
		cfg := postgres.Config{Host: b.Host, Port: b.PortNumber(), DB: b.DB, User: b.User, Password: b.Password.Value(),
			SSLMode: b.SSLMode, CACertPath: b.CACertPath, PoolSize: b.PoolSize}
		return func(ctx context.Context) (store.Backend, error) {
			db, err := postgres.Open(ctx, cfg, postgres.Options{Logger: log})
			if err != nil {
				return nil, err
			}
			return db, nil
		}
	}
	path := b.DBPath
	return func(ctx context.Context) (store.Backend, error) {
		if strings.HasPrefix(path, "~") {
			return nil, fmt.Errorf("sqlite %s: %w: HOME is not set, so '~' cannot be resolved; set SQLITE_STORE_DIR or give db_path as an absolute path", path, store.ErrUnavailable)
		}
		db, err := sqlite.Open(ctx, path, sqlite.Options{Logger: log})
		if err != nil {
			return nil, err
		}
		return db, nil
	}
}

// inferenceStore is what the API handlers get.
func (st *storage) inferenceStore() api.InferenceStore {
	if st.writer == nil {
		return api.InferenceStore{}
	}
	return api.InferenceStore{Records: st.inference, Recorder: st.writer}
}

// close flushes queued records (until ctx ends) and closes the backends.
func (st *storage) close(ctx context.Context) error {
	var errs []error
	if st.writer != nil {
		if err := st.writer.Close(ctx); err != nil {
			errs = append(errs, err)
		}
	}
	names := make([]string, 0, len(st.conns))
	for n := range st.conns {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if err := st.conns[n].Close(); err != nil {
			errs = append(errs, fmt.Errorf("close storage %s: %w", n, err))
		}
	}
	return errors.Join(errs...)
}
