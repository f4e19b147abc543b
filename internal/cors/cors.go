// Package cors answers browsers' cross-origin requests as server.cors
// configures, with the semantics of Starlette's CORSMiddleware (which OGX
// uses): preflight requests (OPTIONS with Access-Control-Request-Method)
// are answered here, without reaching the handler; other requests from an
// allowed origin get the Access-Control-Allow-* headers added.
//
// It must wrap the authentication middleware, so that preflights (which
// browsers send without credentials) are not refused and so that 401 and
// 429 answers carry the headers the browser needs to read them.
package cors

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// allMethods is what "*" in allow_methods stands for.
var allMethods = []string{"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"}

// safelisted are the request headers always allowed in preflights.
var safelisted = []string{"accept", "accept-language", "content-language", "content-type"}

// A CORS is the middleware for one configuration.
type CORS struct {
	on            bool
	origins       []string
	anyOrigin     bool
	re            *regexp.Regexp
	methods       []string
	headers       []string // lower case, with the safelisted ones
	anyHeader     bool
	credentials   bool
	expose        string
	maxAge        string
	explicitAllow bool // answer with the request's origin, not "*"
}

// New returns the middleware for cfg. A nil or disabled cfg gives one that
// changes nothing. cfg must have passed config validation; an invalid
// allow_origin_regex is an error.
func New(cfg *config.CORSConfig) (*CORS, error) {
	if !cfg.Enabled() {
		return &CORS{}, nil
	}
	c := &CORS{
		on:          true,
		origins:     slices.Clone(cfg.AllowOrigins),
		anyOrigin:   slices.Contains(cfg.AllowOrigins, "*"),
		credentials: cfg.AllowCredentials,
		expose:      strings.Join(cfg.ExposeHeaders, ", "),
		maxAge:      strconv.Itoa(cfg.MaxAge),
		methods:     slices.Clone(cfg.AllowMethods),
	}
	if cfg.AllowOriginRegex != "" {
		re, err := regexp.Compile(`^(?:` + cfg.AllowOriginRegex + `)$`)
		if err != nil {
			return nil, fmt.Errorf("allow_origin_regex: %w", err)
		}
		c.re = re
	}
	if slices.Contains(c.methods, "*") {
		c.methods = allMethods
	}
	c.headers = slices.Clone(safelisted)
	for _, h := range cfg.AllowHeaders {
		if h == "*" {
			c.anyHeader = true
			continue
		}
		if h = strings.ToLower(h); !slices.Contains(c.headers, h) {
			c.headers = append(c.headers, h)
		}
	}
	slices.Sort(c.headers)
	c.explicitAllow = !c.anyOrigin || c.credentials
	return c, nil
}

// Enabled reports whether the middleware does anything.
func (c *CORS) Enabled() bool { return c != nil && c.on }

// allowed reports whether origin may call.
func (c *CORS) allowed(origin string) bool {
	return c.anyOrigin || c.re != nil && c.re.MatchString(origin) || slices.Contains(c.origins, origin)
}

// Wrap returns next behind the middleware.
func (c *CORS) Wrap(next http.Handler) http.Handler {
	if !c.Enabled() {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		if c.explicitAllow {
			// The answer depends on the Origin header, with or without one.
			h.Add("Vary", "Origin")
		}
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			c.preflight(w, r, origin)
			return
		}
		if c.allowed(origin) {
			switch {
			case c.explicitAllow || r.Header.Get("Cookie") != "":
				h.Set("Access-Control-Allow-Origin", origin)
				if !c.explicitAllow {
					h.Add("Vary", "Origin")
				}
			default:
				h.Set("Access-Control-Allow-Origin", "*")
			}
			if c.credentials {
				h.Set("Access-Control-Allow-Credentials", "true")
			}
			if c.expose != "" {
				h.Set("Access-Control-Expose-Headers", c.expose)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// preflight answers an OPTIONS preflight: 204 with the allowed methods and
// headers, or 400 "Disallowed CORS origin, method, headers" naming what
// is not allowed (as Starlette does).
func (c *CORS) preflight(w http.ResponseWriter, r *http.Request, origin string) {
	h := w.Header()
	var failures []string
	if c.allowed(origin) {
		if c.explicitAllow {
			h.Set("Access-Control-Allow-Origin", origin)
		} else {
			h.Set("Access-Control-Allow-Origin", "*")
		}
	} else {
		failures = append(failures, "origin")
	}
	if !slices.Contains(c.methods, r.Header.Get("Access-Control-Request-Method")) {
		failures = append(failures, "method")
	}
	requested := strings.Join(r.Header.Values("Access-Control-Request-Headers"), ",")
	switch {
	case c.anyHeader && requested != "":
		h.Set("Access-Control-Allow-Headers", requested)
	default:
		if !c.anyHeader {
			h.Set("Access-Control-Allow-Headers", headerCase(c.headers))
		}
		for _, name := range strings.Split(requested, ",") {
			name = strings.ToLower(strings.TrimSpace(name))
			if name != "" && !slices.Contains(c.headers, name) {
				failures = append(failures, "headers")
				break
			}
		}
	}
	h.Set("Access-Control-Allow-Methods", strings.Join(c.methods, ", "))
	h.Set("Access-Control-Max-Age", c.maxAge)
	if c.credentials {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	if len(failures) > 0 {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		h.Set("X-Content-Type-Options", "nosniff")
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte("Disallowed CORS " + strings.Join(failures, ", ")))
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// headerCase joins header names in canonical case.
func headerCase(names []string) string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = http.CanonicalHeaderKey(n)
	}
	return strings.Join(out, ", ")
}
