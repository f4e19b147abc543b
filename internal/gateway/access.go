package gateway

import (
	"fmt"
	"log/slog"

	"github.com/llama-stack-go/llama-stack-go/internal/auth"
	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/cors"
	"github.com/llama-stack-go/llama-stack-go/internal/ratelimit"
)

// accessControl is who may call, what they may use, and how much.
type accessControl struct {
	auth   auth.Authenticator // nil: no authentication
	routes *auth.RoutePolicy
	policy *auth.Policy // nil: every model for everyone
	quota  *ratelimit.Quota
	cors   *cors.CORS
}

// newAccessControl builds server.auth, server.quota and server.cors. Quota
// counters live in the key-value backend server.quota.kvstore names, else
// the metadata store's, so that replicas share them; with no store at all
// they are kept in memory.
func newAccessControl(cfg *config.Config, st *storage, log *slog.Logger) (*accessControl, error) {
	ac := &accessControl{}
	var err error
	if a := cfg.Server.Auth; a != nil && a.ProviderConfig != nil {
		if ac.auth, err = auth.New(a, auth.Options{Logger: log.With(slog.String("component", "auth"))}); err != nil {
			return nil, fmt.Errorf("server.auth: %w", err)
		}
		if ac.routes, err = auth.NewRoutePolicy(a.RoutePolicy); err != nil {
			return nil, fmt.Errorf("server.auth.route_policy: %w", err)
		}
		if ac.policy, err = auth.NewPolicy(a.AccessPolicy); err != nil {
			return nil, fmt.Errorf("server.auth.access_policy: %w", err)
		}
	}
	if ac.cors, err = cors.New(cfg.Server.CORS); err != nil {
		return nil, fmt.Errorf("server.cors: %w", err)
	}
	if q := cfg.Server.Quota; q != nil {
		opts := ratelimit.Options{Namespace: "quota", Logger: log.With(slog.String("component", "quota"))}
		switch {
		case q.KVStore != nil:
			ref := &config.StoreRef{Backend: q.KVStore.Backend}
			if cfg.Store.StoreBackend(ref) == nil {
				return nil, fmt.Errorf("server.quota.kvstore.backend: no backend named %q in storage.backends", q.KVStore.Backend)
			}
			opts.Counter = st.connect(cfg.Store, "quota", ref, log)
			if q.KVStore.Namespace != "" {
				opts.Namespace = q.KVStore.Namespace
			}
		case st.persist != nil:
			opts.Counter = st.conns[cfg.Store.Stores.Metadata.Backend]
		default:
			log.Warn("server.quota: no key-value store, so the counters are kept in memory and not shared between replicas")
		}
		ac.quota = ratelimit.New(q, opts)
	}
	return ac, nil
}
