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

// custom authenticates with an HTTP endpoint (type custom), as OGX does:
// it POSTs
//
//	{"api_key": "<token>", "request": {"path": "/v1/...", "headers": {...}, "params": {"k": ["v"]}}}
//
// and a 200 answer {"principal": "...", "attributes": {"roles": [...]}}
// admits the caller. The headers are the request's, lower-cased, without
// Authorization and the other headers that carry credentials
// (Proxy-Authorization and the provider-data headers, which can hold
// upstream API keys).
//
// Outcomes: 200 with a principal admits; any other 2xx or a 4xx is a 401
// ("Authentication failed: <status>"); a 5xx, a timeout, a connection
// failure or a 200 whose body is not the expected JSON is a 503, since the
// fault is the service's, not the caller's (OGX answers 401 to all of
// these).
type custom struct {
	endpoint string
	host     string
	remote
}

func newCustom(cfg *config.CustomAuthConfig, opts Options, log *slog.Logger) (*custom, error) {
	u, err := url.Parse(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("endpoint: %w", err)
	}
	client, err := clientFor(opts, true, "", false)
	if err != nil {
		return nil, err
	}
	return &custom{endpoint: cfg.Endpoint, host: u.Host, remote: newRemote(opts, client, log)}, nil
}

// withheldHeaders are never sent to the endpoint.
var withheldHeaders = map[string]bool{
	"authorization":              true,
	"proxy-authorization":        true,
	"x-llamastack-provider-data": true,
	"x-ogx-provider-data":        true,
}

// customRequest is the body sent to the endpoint (OGX's AuthRequest).
type customRequest struct {
	APIKey  string               `json:"api_key"`
	Request customRequestContext `json:"request"`
}

type customRequestContext struct {
	Path    string              `json:"path"`
	Headers map[string]string   `json:"headers"`
	Params  map[string][]string `json:"params"`
}

// customResponse is the endpoint's answer (OGX's AuthResponse).
type customResponse struct {
	Principal  *string             `json:"principal"`
	Attributes map[string][]string `json:"attributes"`
}

// Authenticate asks the endpoint about the bearer token.
func (c *custom) Authenticate(ctx context.Context, r *http.Request) (*Principal, error) {
	token, err := bearer(r, requiredMessage(c.host))
	if err != nil {
		return nil, err
	}
	key := tokenKey(token, r.URL.Path, r.URL.RawQuery)
	if p, ok := c.cached(key); ok {
		return p, nil
	}
	body, err := json.Marshal(customRequest{APIKey: token, Request: customRequestContext{
		Path:    r.URL.Path,
		Headers: forwardedHeaders(r.Header),
		Params:  queryParams(r.URL.RawQuery),
	}})
	if err != nil {
		return nil, fmt.Errorf("encode authentication request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("authentication request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	status, data, err := c.do(ctx, req, "Authentication service timeout", "Authentication service error")
	if err != nil {
		return nil, err
	}
	switch {
	case status >= 500:
		return nil, c.serviceFailure(ctx, c.host, "Authentication service error", fmt.Errorf("status %d", status))
	case status != http.StatusOK:
		return nil, Unauthenticated(fmt.Sprintf("Authentication failed: %d", status), nil)
	}
	var resp customResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, c.serviceFailure(ctx, c.host, "Invalid authentication response format", err)
	}
	if resp.Principal == nil {
		return nil, c.serviceFailure(ctx, c.host, "Invalid authentication response format", errors.New("no principal"))
	}
	p := &Principal{ID: *resp.Principal, Attributes: resp.Attributes}
	if p.Attributes == nil {
		p.Attributes = map[string][]string{}
	}
	c.remember(key, p)
	return p, nil
}

// forwardedHeaders returns h with lower-case names, values of repeated
// headers joined with ", ", and the withheld headers left out.
func forwardedHeaders(h http.Header) map[string]string {
	out := make(map[string]string, len(h))
	for name, values := range h {
		n := strings.ToLower(name)
		if withheldHeaders[n] {
			continue
		}
		out[n] = strings.Join(values, ", ")
	}
	return out
}

// queryParams parses a query like Python's parse_qs: name → values, with
// blank values left out.
func queryParams(raw string) map[string][]string {
	out := map[string][]string{}
	q, _ := url.ParseQuery(raw)
	for name, values := range q {
		for _, v := range values {
			if v != "" {
				out[name] = append(out[name], v)
			}
		}
	}
	return out
}

var _ Authenticator = (*custom)(nil)
