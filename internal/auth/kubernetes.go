package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// kubernetes authenticates Kubernetes tokens (type kubernetes) with a
// SelfSubjectReview sent with the token, as OGX does: the principal is
// status.userInfo.username and claims_mapping maps userInfo fields
// (username, groups, ...) to attributes.
type kubernetes struct {
	cfg *config.KubernetesAuthConfig
	remote
}

func newKubernetes(cfg *config.KubernetesAuthConfig, opts Options, log *slog.Logger) (*kubernetes, error) {
	client, err := clientFor(opts, cfg.VerifyTLS, cfg.TLSCAFile, false)
	if err != nil {
		return nil, err
	}
	return &kubernetes{cfg: cfg, remote: newRemote(opts, client, log)}, nil
}

const selfSubjectReview = `{"apiVersion":"authentication.k8s.io/v1","kind":"SelfSubjectReview"}`

// Authenticate asks the API server who owns the bearer token.
func (k *kubernetes) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	token, err := bearer(r, "Authentication required")
	if err != nil {
		return nil, err
	}
	key := tokenKey(token)
	if p, ok := k.cached(key); ok {
		return p, nil
	}
	u := strings.TrimRight(k.cfg.APIServerURL, "/") + "/apis/authentication.k8s.io/v1/selfsubjectreviews"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader([]byte(selfSubjectReview)))
	if err != nil {
		return nil, fmt.Errorf("kubernetes request: %w", err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	status, data, err := k.do(ctx, req, "Token validation timeout", "Token validation error")
	if err != nil {
		return nil, err
	}
	switch {
	case status == http.StatusUnauthorized:
		return nil, Unauthenticated("Invalid token", nil)
	case status >= 500:
		return nil, k.serviceFailure(ctx, req.URL.Host, "Token validation error", fmt.Errorf("status %d", status))
	case status != http.StatusCreated && status != http.StatusOK:
		return nil, Unauthenticated(fmt.Sprintf("Token validation failed: %d", status), nil)
	}
	var review struct {
		Status struct {
			UserInfo map[string]any `json:"userInfo"`
		} `json:"status"`
	}
	if err := json.Unmarshal(data, &review); err != nil {
		return nil, k.serviceFailure(ctx, req.URL.Host, "Token validation error", err)
	}
	name, _ := review.Status.UserInfo["username"].(string)
	if name == "" {
		return nil, k.serviceFailure(ctx, req.URL.Host, "Token validation error", errors.New("no username in SelfSubjectReview"))
	}
	p := &Principal{ID: name, Attributes: attributesFromClaims(review.Status.UserInfo, k.cfg.ClaimsMapping)}
	k.remember(key, p)
	return p, nil
}

var _ Authenticator = (*kubernetes)(nil)
