package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// introspection authenticates opaque OAuth2 tokens with an RFC 7662
// introspection endpoint (type oauth2_token with introspection), as OGX
// does: the token is POSTed as a form with the client credentials (basic
// authentication, or form fields with send_secret_in_body); an answer with
// "active": true admits the caller, named by sub, else username.
type introspection struct {
	cfg  *config.OAuth2TokenAuthConfig
	host string
	remote
}

func newIntrospection(cfg *config.OAuth2TokenAuthConfig, opts Options, log *slog.Logger) (*introspection, error) {
	u, err := url.Parse(cfg.Introspection.URL)
	if err != nil {
		return nil, fmt.Errorf("introspection url: %w", err)
	}
	client, err := clientFor(opts, cfg.VerifyTLS, cfg.TLSCAFile, false)
	if err != nil {
		return nil, err
	}
	return &introspection{cfg: cfg, host: u.Host, remote: newRemote(opts, client, log)}, nil
}

// Authenticate introspects the bearer token.
func (in *introspection) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	missing := "Authentication required. Please provide a valid OAuth2 Bearer token validated by " + in.host
	if in.cfg.Issuer != "" {
		missing = "Authentication required. Please provide a valid OAuth2 Bearer token from " + in.cfg.Issuer
	}
	token, err := bearer(r, missing)
	if err != nil {
		return nil, err
	}
	key := tokenKey(token)
	if p, ok := in.cached(key); ok {
		return p, nil
	}
	ic := in.cfg.Introspection
	form := url.Values{"token": {token}}
	if ic.SendSecretInBody {
		form.Set("client_id", ic.ClientID)
		form.Set("client_secret", ic.ClientSecret.Value())
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ic.URL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, fmt.Errorf("introspection request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	if !ic.SendSecretInBody {
		req.SetBasicAuth(ic.ClientID, ic.ClientSecret.Value())
	}
	status, data, err := in.do(ctx, req, "Token introspection timeout", "Token introspection error")
	if err != nil {
		return nil, err
	}
	switch {
	case status >= 500:
		return nil, in.serviceFailure(ctx, in.host, "Token introspection error", fmt.Errorf("status %d", status))
	case status != http.StatusOK:
		return nil, Unauthenticated(fmt.Sprintf("Token introspection failed: %d", status), nil)
	}
	var fields map[string]any
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	if err := dec.Decode(&fields); err != nil {
		return nil, in.serviceFailure(ctx, in.host, "Token introspection error", err)
	}
	if active, _ := fields["active"].(bool); !active {
		return nil, Unauthenticated("Token not active", nil)
	}
	sub, _ := fields["sub"].(string)
	if sub == "" {
		sub, _ = fields["username"].(string)
	}
	if sub == "" {
		return nil, Unauthenticated("Token not active", errors.New("introspection names no sub or username"))
	}
	p := &Principal{ID: sub, Attributes: attributesFromClaims(fields, in.cfg.ClaimsMapping)}
	in.remember(key, p)
	return p, nil
}

var _ Authenticator = (*introspection)(nil)
