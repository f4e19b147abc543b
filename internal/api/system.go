package api

import (
	"context"
	"net/http"
	"sort"
	"strings"
	"time"
)

// health serves GET /v1/health: "OK", or "Degraded" with the stores that
// do not answer. It stays 200 while degraded: requests that need no store
// are still served, so a load balancer should keep the replica.
func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	if len(s.stores) == 0 {
		return writeJSON(w, map[string]string{"status": "OK"})
	}
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	status := "OK"
	stores := make(map[string]map[string]string, len(s.stores))
	for name, st := range s.stores {
		if err := st.Ping(ctx); err != nil {
			status = "Degraded"
			stores[name] = map[string]string{"status": "Error", "message": err.Error()}
			continue
		}
		stores[name] = map[string]string{"status": "OK"}
	}
	return writeJSON(w, map[string]any{"status": status, "storage": stores})
}

// getVersion serves GET /v1/version.
func (s *Server) getVersion(w http.ResponseWriter, _ *http.Request) error {
	return writeJSON(w, map[string]string{"version": s.version})
}

// listProviders serves GET /v1/providers; configs come redacted.
func (s *Server) listProviders(w http.ResponseWriter, _ *http.Request) error {
	out := make([]ProviderInfo, len(s.providers))
	for i, p := range s.providers {
		out[i] = p.now()
	}
	return writeJSON(w, map[string]any{"data": out})
}

// now is the provider's info with its health as of now.
func (p ProviderInfo) now() ProviderInfo {
	if p.Check != nil {
		p.Health = p.Check()
	}
	return p
}

// getProvider serves GET /v1/providers/{provider_id}.
func (s *Server) getProvider(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("provider_id")
	for _, p := range s.providers {
		if p.ProviderID == id {
			return writeJSON(w, p.now())
		}
	}
	return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found", Param: "provider_id",
		Message: "Provider '" + id + "' not found. Use 'GET /v1/providers' to list the configured providers."}
}

// routeInfo is one entry of GET /v1/inspect/routes.
type routeInfo struct {
	Route         string   `json:"route"`
	Method        string   `json:"method"`
	ProviderTypes []string `json:"provider_types"`
}

// listRoutes serves GET /v1/inspect/routes: each route with the provider
// types of the API it belongs to.
func (s *Server) listRoutes(w http.ResponseWriter, _ *http.Request) error {
	types := map[string][]string{}
	for _, p := range s.providers {
		types[p.API] = appendUnique(types[p.API], p.ProviderType)
	}
	out := make([]routeInfo, 0, len(s.routes))
	for _, rt := range s.routes {
		pt := types[rt.apiName]
		if pt == nil {
			pt = []string{}
		}
		sort.Strings(pt)
		out = append(out, routeInfo{Route: strings.ReplaceAll(rt.path, "...}", "}"), Method: rt.method, ProviderTypes: pt})
	}
	return writeJSON(w, map[string]any{"data": out})
}

func appendUnique(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}
