package auth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// maxTokenBytes bounds a bearer token; longer ones are rejected unparsed.
const maxTokenBytes = 16 << 10

// jwtAlgorithms are the signature algorithms accepted: asymmetric only, so
// a public key can never be used as an HMAC secret, and never "none".
var jwtAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}

// jwtAuth authenticates OAuth2 bearer tokens that are JWTs (type
// oauth2_token with jwks): the signature is checked with a key of the
// JWKS, then exp (required), nbf and iat with Options.Leeway, aud against
// audience and iss against issuer when set. The principal is the sub claim;
// attributes come from claims_mapping.
type jwtAuth struct {
	cfg    *config.OAuth2TokenAuthConfig
	jwks   *jwksCache
	parser *jwt.Parser
}

func newJWT(cfg *config.OAuth2TokenAuthConfig, opts Options, log *slog.Logger) (*jwtAuth, error) {
	client, err := clientFor(opts, cfg.VerifyTLS, cfg.TLSCAFile, true)
	if err != nil {
		return nil, err
	}
	popts := []jwt.ParserOption{
		jwt.WithValidMethods(jwtAlgorithms),
		jwt.WithLeeway(opts.Leeway),
		jwt.WithTimeFunc(opts.Now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithAudience(cfg.Audience),
	}
	if cfg.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(cfg.Issuer))
	}
	recheck := time.Duration(cfg.JWKS.KeyRecheckPeriod) * time.Second
	if recheck <= 0 {
		recheck = time.Hour
	}
	return &jwtAuth{
		cfg: cfg,
		jwks: &jwksCache{
			uri:        cfg.JWKS.URI,
			token:      cfg.JWKS.Token,
			client:     client,
			timeout:    opts.Timeout,
			recheck:    recheck,
			minRefresh: opts.JWKSMinRefresh,
			now:        opts.Now,
			log:        log,
		},
		parser: jwt.NewParser(popts...),
	}, nil
}

// invalidJWT is OGX's message for any token that does not verify.
const invalidJWT = "Invalid JWT token"

func (a *jwtAuth) required() string {
	if a.cfg.Issuer != "" {
		return "Authentication required. Please provide a valid OAuth2 Bearer token from " + a.cfg.Issuer
	}
	return "Authentication required. Please provide a valid OAuth2 Bearer token in the Authorization header"
}

// Authenticate verifies the bearer token.
func (a *jwtAuth) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	token, err := bearer(r, a.required())
	if err != nil {
		return nil, err
	}
	return a.verify(ctx, token)
}

// verify checks a token and returns its principal.
func (a *jwtAuth) verify(ctx context.Context, token string) (*Principal, error) {
	if len(token) > maxTokenBytes {
		return nil, Unauthenticated(invalidJWT, errors.New("token too long"))
	}
	claims := jwt.MapClaims{}
	_, err := a.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if v, present := t.Header["kid"]; present && kid == "" {
			return nil, fmt.Errorf("kid header of type %T", v)
		}
		keys, err := a.jwks.keys(ctx, kid, t.Method.Alg())
		if err != nil {
			return nil, err
		}
		switch len(keys) {
		case 0:
			return nil, errors.New("no key in the key set fits the token's kid and alg")
		case 1:
			return keys[0].key, nil
		}
		set := jwt.VerificationKeySet{}
		for _, k := range keys {
			set.Keys = append(set.Keys, k.key)
		}
		return set, nil
	})
	if err != nil {
		if errors.Is(err, errNoKeys) {
			return nil, unavailable("Authentication service unavailable: the token signing keys could not be fetched", err)
		}
		return nil, Unauthenticated(invalidJWT, err)
	}
	sub, _ := claims["sub"].(string)
	if sub == "" {
		return nil, Unauthenticated(invalidJWT, errors.New("token has no sub claim"))
	}
	return &Principal{ID: sub, Attributes: attributesFromClaims(claims, a.cfg.ClaimsMapping)}, nil
}

// clientFor returns the HTTP client for a provider: the injected one, else
// one that verifies TLS as configured. Unless follow is set, the client
// does not follow redirects (a redirect must not resend a token elsewhere).
func clientFor(opts Options, verify bool, caFile string, follow bool) (*http.Client, error) {
	var c http.Client
	if opts.HTTPClient != nil {
		c = *opts.HTTPClient
	} else {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		if !verify || caFile != "" {
			tc := &tls.Config{MinVersion: tls.VersionTLS12}
			if !verify {
				tc.InsecureSkipVerify = true // configured with verify_tls: false
			} else {
				pem, err := os.ReadFile(caFile)
				if err != nil {
					return nil, fmt.Errorf("read tls_cafile: %w", err)
				}
				pool := x509.NewCertPool()
				if !pool.AppendCertsFromPEM(pem) {
					return nil, fmt.Errorf("tls_cafile %s holds no PEM certificates", caFile)
				}
				tc.RootCAs = pool
			}
			tr.TLSClientConfig = tc
		}
		c.Transport = tr
	}
	if !follow {
		c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	return &c, nil
}

var _ Authenticator = (*jwtAuth)(nil)
