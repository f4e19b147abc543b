package auth

import (
	"log/slog"
	"net/http"
)

// PublicPaths are the routes served without authentication, as OGX marks
// them: health and version, for load balancers and monitoring.
var PublicPaths = []string{"/v1/health", "/v1/version"}

// IsPublic reports whether r's path is one of PublicPaths (trailing
// slashes ignored).
func IsPublic(r *http.Request) bool {
	path := normalizeRoute(r.URL.Path)
	for _, p := range PublicPaths {
		if path == p {
			return true
		}
	}
	return false
}

// A Guard is the authentication middleware: it authenticates each request,
// puts the Principal in its context (WithPrincipal) and applies the route
// policy. Public routes skip both.
type Guard struct {
	// Authenticator is required; use New.
	Authenticator Authenticator
	// Routes is the route policy; nil allows every route.
	Routes *RoutePolicy
	// Public reports routes served without authentication; nil means
	// IsPublic.
	Public func(r *http.Request) bool
	// WriteError answers a request that may not proceed. err is an *Error
	// (see StatusCode) or, when the client went away while its token was
	// being checked, wraps context.Canceled; a request refused by the route
	// policy carries its Principal (FromContext). Required.
	WriteError func(w http.ResponseWriter, r *http.Request, err error)
	// Logger receives rejections at debug level (never credentials); nil
	// discards.
	Logger *slog.Logger
}

// Wrap returns next behind the guard.
func (g *Guard) Wrap(next http.Handler) http.Handler {
	public := g.Public
	if public == nil {
		public = IsPublic
	}
	log := g.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if public(r) {
			next.ServeHTTP(w, r)
			return
		}
		p, err := g.Authenticator.Authenticate(r.Context(), r)
		if err != nil {
			log.LogAttrs(r.Context(), slog.LevelDebug, "request not authenticated", slog.String("path", r.URL.Path), slog.String("error", err.Error()))
			g.WriteError(w, r, err)
			return
		}
		if p != nil {
			// Also for a refusal, so that it can be logged whom it refused.
			r = r.WithContext(WithPrincipal(r.Context(), p))
		}
		if !g.Routes.Allowed(p, r.URL.Path) {
			route := normalizeRoute(r.URL.Path)
			log.LogAttrs(r.Context(), slog.LevelDebug, "route denied", slog.String("path", route), slog.Any("principal", p))
			g.WriteError(w, r, &Error{Kind: ErrForbidden, Message: "Access denied: insufficient permissions for route " + route})
			return
		}
		next.ServeHTTP(w, r)
	})
}
