package auth

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// github authenticates GitHub tokens (type github_token) with GitHub's
// GET /user, as OGX does: the principal is the login, and claims_mapping
// maps login, id and organizations (always empty, as in OGX) to attributes.
type github struct {
	cfg *config.GitHubTokenAuthConfig
	remote
}

func newGitHub(cfg *config.GitHubTokenAuthConfig, opts Options, log *slog.Logger) (*github, error) {
	client, err := clientFor(opts, true, "", false)
	if err != nil {
		return nil, err
	}
	return &github{cfg: cfg, remote: newRemote(opts, client, log)}, nil
}

const githubRequired = "Authentication required. Please provide a valid GitHub access token (https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/managing-your-personal-access-tokens) in the Authorization header (Bearer <token>)"

// Authenticate asks GitHub who owns the bearer token.
func (g *github) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	token, err := bearer(r, githubRequired)
	if err != nil {
		return nil, err
	}
	key := tokenKey(token)
	if p, ok := g.cached(key); ok {
		return p, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(g.cfg.GitHubAPIBaseURL, "/")+"/user", nil)
	if err != nil {
		return nil, fmt.Errorf("github request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Accept", "application/vnd.github.v3+json")
	req.Header.Set("User-Agent", "llama-stack-go")
	status, data, err := g.do(ctx, req, "GitHub token validation timeout", "GitHub token validation error")
	if err != nil {
		return nil, err
	}
	switch {
	case status >= 500:
		return nil, g.serviceFailure(ctx, req.URL.Host, "GitHub token validation error", fmt.Errorf("status %d", status))
	case status < 200 || status > 299:
		return nil, Unauthenticated("GitHub token validation failed. Please check your token and try again.", fmt.Errorf("status %d", status))
	}
	var user struct {
		Login string      `json:"login"`
		ID    json.Number `json:"id"`
	}
	if err := json.Unmarshal(data, &user); err != nil || user.Login == "" {
		if err == nil {
			err = fmt.Errorf("no login")
		}
		return nil, g.serviceFailure(ctx, req.URL.Host, "GitHub token validation error", err)
	}
	claims := map[string]any{"login": user.Login, "id": user.ID.String(), "organizations": []any{}}
	p := &Principal{ID: user.Login, Attributes: attributesFromClaims(claims, g.cfg.ClaimsMapping)}
	g.remember(key, p)
	return p, nil
}

var _ Authenticator = (*github)(nil)
