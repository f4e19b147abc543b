package auth

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// upstreamHeader trusts a proxy in front of the server to have
// authenticated the caller (type upstream_header), as OGX does: the
// principal is the value of principal_header, and attributes_header, when
// configured and present, holds a JSON object whose values are lists (or
// single values) of attribute values. The server must only be reachable
// through that proxy, and the proxy must strip these headers from what
// clients send.
type upstreamHeader struct {
	cfg *config.UpstreamHeaderAuthConfig
}

// Authenticate reads the identity headers.
func (u *upstreamHeader) Authenticate(_ context.Context, r *http.Request) (*Principal, error) {
	id := r.Header.Get(u.cfg.PrincipalHeader)
	if id == "" {
		return nil, Unauthenticated("Authentication required. Upstream gateway must set the "+u.cfg.PrincipalHeader+" header", nil)
	}
	p := &Principal{ID: id, Attributes: map[string][]string{}}
	if u.cfg.AttributesHeader == "" {
		return p, nil
	}
	raw := r.Header.Get(u.cfg.AttributesHeader)
	if raw == "" {
		return p, nil
	}
	attrs, err := parseAttributesHeader(raw)
	if err != nil {
		return nil, Unauthenticated("Failed to parse authentication attributes header: "+err.Error(), nil)
	}
	p.Attributes = attrs
	return p, nil
}

// parseAttributesHeader decodes a JSON object of attributes: list values
// give their items as text, other values one item.
func parseAttributesHeader(raw string) (map[string][]string, error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal([]byte(raw), &obj); err != nil || obj == nil {
		var anyv any
		if json.Unmarshal([]byte(raw), &anyv) == nil {
			return nil, errors.New("expected JSON object")
		}
		return nil, errors.New("invalid JSON")
	}
	out := make(map[string][]string, len(obj))
	for name, v := range obj {
		var list []json.RawMessage
		if json.Unmarshal(v, &list) == nil && list != nil {
			vals := make([]string, 0, len(list))
			for _, item := range list {
				vals = append(vals, jsonText(item))
			}
			out[name] = vals
			continue
		}
		out[name] = []string{jsonText(v)}
	}
	return out, nil
}

// jsonText is a JSON value as text: a string unquoted, anything else as
// written.
func jsonText(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

var _ Authenticator = (*upstreamHeader)(nil)
