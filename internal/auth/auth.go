// Package auth decides who is calling and what they may do: it
// authenticates requests with the provider that server.auth configures
// (static API keys, OAuth2 JWTs verified against a JWKS or by token
// introspection, a custom HTTP endpoint, GitHub or Kubernetes tokens, or
// headers set by a trusted proxy), puts the caller's Principal in the
// request context, and evaluates OGX's route and access policies.
//
// Failures are *Error values that wrap ErrUnauthenticated (401),
// ErrForbidden (403) or ErrUnavailable (503, the authentication service or
// key set cannot be reached); their Message is safe to show to clients and
// never holds a credential.
package auth

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// A Principal is an authenticated caller.
type Principal struct {
	// ID identifies the caller: the JWT's sub, the API key's principal,
	// the custom endpoint's principal, ...
	ID string
	// Attributes hold the caller's roles, teams, projects, namespaces and
	// any other lists the provider gives, for access rules.
	Attributes map[string][]string
}

// LogValue implements slog.LogValuer: a principal logs as its id.
func (p *Principal) LogValue() slog.Value {
	if p == nil {
		return slog.StringValue("")
	}
	return slog.StringValue(p.ID)
}

type principalKey struct{}

// WithPrincipal returns a copy of ctx that carries p.
func WithPrincipal(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, p)
}

// FromContext returns the principal ctx carries; ok is false for an
// anonymous request (no authentication configured, or a public route).
func FromContext(ctx context.Context) (p *Principal, ok bool) {
	p, ok = ctx.Value(principalKey{}).(*Principal)
	return p, ok && p != nil
}

// Sentinels for errors.Is; every error this package returns for a request
// wraps exactly one of them.
var (
	// ErrUnauthenticated: the request has no valid credentials (401).
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrForbidden: the caller may not do this (403).
	ErrForbidden = errors.New("forbidden")
	// ErrUnavailable: credentials could not be checked because the
	// authentication service or key set is unreachable or broken (503).
	ErrUnavailable = errors.New("authentication unavailable")
)

// An Error is a failed authentication or authorization.
type Error struct {
	// Kind is ErrUnauthenticated, ErrForbidden or ErrUnavailable.
	Kind error
	// Message is for the client. It never holds a credential.
	Message string
	// Err is the cause, for logs; nil when there is none. It never holds a
	// credential either.
	Err error
}

// Error returns the message and the cause.
func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the kind and the cause, so errors.Is matches both.
func (e *Error) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Kind, e.Err}
	}
	return []error{e.Kind}
}

// StatusCode returns the HTTP status for the error: 401, 403 or 503.
func (e *Error) StatusCode() int {
	switch e.Kind {
	case ErrForbidden:
		return http.StatusForbidden
	case ErrUnavailable:
		return http.StatusServiceUnavailable
	}
	return http.StatusUnauthorized
}

// Unauthenticated returns an *Error of kind ErrUnauthenticated.
func Unauthenticated(msg string, cause error) *Error {
	return &Error{Kind: ErrUnauthenticated, Message: msg, Err: cause}
}

// Forbidden returns an *Error of kind ErrForbidden, for callers that check
// an access policy themselves (a model the caller may not use).
func Forbidden(msg string) *Error {
	return &Error{Kind: ErrForbidden, Message: msg}
}

// unavailable returns an *Error of kind ErrUnavailable.
func unavailable(msg string, cause error) *Error {
	return &Error{Kind: ErrUnavailable, Message: msg, Err: cause}
}

// An Authenticator establishes who sent a request. It returns a nil
// Principal and a nil error when authentication is not configured, and an
// *Error when the request may not proceed.
type Authenticator interface {
	Authenticate(ctx context.Context, r *http.Request) (*Principal, error)
}

// Options are the dependencies of the authenticators.
type Options struct {
	// HTTPClient makes the outbound calls (JWKS, custom endpoint,
	// introspection, GitHub, Kubernetes). Nil builds one per provider from
	// its verify_tls and tls_cafile settings. Redirects are never followed
	// for calls that carry the caller's token in the body.
	HTTPClient *http.Client
	// Logger receives failures of those calls (never a credential); nil
	// discards.
	Logger *slog.Logger
	// Now is the clock for token expiry and caches; nil is time.Now.
	Now func() time.Time
	// Timeout bounds each outbound call; 0 means 10 seconds (OGX's).
	Timeout time.Duration
	// Leeway is the clock skew allowed on JWT exp, nbf and iat; 0 means
	// 30 seconds, negative means none.
	Leeway time.Duration
	// JWKSMinRefresh is the least time between two JWKS fetches caused by
	// tokens with an unknown key id, or by failed fetches; 0 means 10
	// seconds.
	JWKSMinRefresh time.Duration
	// CacheTTL, when positive, caches successful answers of remote
	// validators (custom endpoint, introspection, GitHub, Kubernetes) for
	// that long, keyed by the SHA-256 of the token (for the custom
	// endpoint, also the request path and query, which it is sent).
	// A revoked token then keeps working until its entry expires. Off by
	// default.
	CacheTTL time.Duration
}

func (o *Options) defaults() {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	switch {
	case o.Leeway == 0:
		o.Leeway = 30 * time.Second
	case o.Leeway < 0:
		o.Leeway = 0
	}
	if o.JWKSMinRefresh <= 0 {
		o.JWKSMinRefresh = 10 * time.Second
	}
}

// New returns the Authenticator that cfg configures. A nil cfg, or one
// without provider_config, gives an Authenticator that lets every request
// through as anonymous. cfg must have passed config validation. New makes
// no network calls; a JWKS is fetched on first use.
func New(cfg *config.AuthConfig, opts Options) (Authenticator, error) {
	opts.defaults()
	if cfg == nil || cfg.ProviderConfig == nil {
		return anonymous{}, nil
	}
	pc := cfg.ProviderConfig
	log := opts.Logger.With(slog.String("auth_provider", pc.Type))
	var (
		a   Authenticator
		err error
	)
	switch {
	case pc.Type == config.AuthAPIKeys && pc.APIKeys != nil:
		a, err = newKeys(pc.APIKeys)
	case pc.Type == config.AuthOAuth2Token && pc.OAuth2Token != nil && pc.OAuth2Token.JWKS != nil:
		a, err = newJWT(pc.OAuth2Token, opts, log)
	case pc.Type == config.AuthOAuth2Token && pc.OAuth2Token != nil && pc.OAuth2Token.Introspection != nil:
		a, err = newIntrospection(pc.OAuth2Token, opts, log)
	case pc.Type == config.AuthCustom && pc.Custom != nil:
		a, err = newCustom(pc.Custom, opts, log)
	case pc.Type == config.AuthGitHubToken && pc.GitHubToken != nil:
		a, err = newGitHub(pc.GitHubToken, opts, log)
	case pc.Type == config.AuthKubernetes && pc.Kubernetes != nil:
		a, err = newKubernetes(pc.Kubernetes, opts, log)
	case pc.Type == config.AuthUpstreamHeader && pc.UpstreamHeader != nil:
		a = &upstreamHeader{cfg: pc.UpstreamHeader}
	default:
		return nil, fmt.Errorf("auth provider %q: not configured", pc.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("auth provider %s: %w", pc.Type, err)
	}
	return a, nil
}

// anonymous is the Authenticator of a server without authentication.
type anonymous struct{}

// Authenticate lets every request through without a principal.
func (anonymous) Authenticate(context.Context, *http.Request) (*Principal, error) { return nil, nil }

// errBadAuthHeader is the message for an Authorization header that is not
// "Bearer <token>" (OGX's).
const errBadAuthHeader = "Invalid Authorization header format"

// bearer returns the token of r's "Authorization: Bearer <token>" header.
// missing is the message when there is no header.
func bearer(r *http.Request, missing string) (string, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return "", Unauthenticated(missing, nil)
	}
	scheme, token, ok := strings.Cut(h, " ")
	token = strings.TrimLeft(token, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" || strings.ContainsAny(token, " \t") {
		return "", Unauthenticated(errBadAuthHeader, nil)
	}
	return token, nil
}

// tokenKey is the cache key of a token: its SHA-256, so caches never hold
// credentials.
func tokenKey(parts ...string) [sha256.Size]byte {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	return k
}

// requiredMessage is OGX's message for a request without a token, for the
// providers that validate tokens remotely: the endpoint's host when known.
func requiredMessage(host string) string {
	if host != "" {
		return "Authentication required. Please provide your API key as a Bearer token (validated by " + host + ")"
	}
	return "Authentication required. Please provide your API key as a Bearer token in the Authorization header"
}

var _ Authenticator = anonymous{}
