package auth

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"maps"
	"net/http"
	"slices"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// keys authenticates static API keys (type api_keys) by their SHA-256
// digests; it never holds a key itself.
type keys struct {
	digests    [][sha256.Size]byte
	principals []*Principal
}

func newKeys(cfg *config.APIKeysAuthConfig) (*keys, error) {
	k := &keys{}
	for i := range cfg.Keys {
		e := &cfg.Keys[i]
		d, ok := e.Digest()
		if !ok {
			return nil, errors.New("a key has neither key nor a valid key_sha256")
		}
		attrs := make(map[string][]string, len(e.Attributes))
		for name, v := range e.Attributes {
			attrs[name] = slices.Clone(v)
		}
		k.digests = append(k.digests, d)
		k.principals = append(k.principals, &Principal{ID: e.Principal, Attributes: attrs})
	}
	return k, nil
}

const keysRequired = "Authentication required. Please provide your API key as a Bearer token in the Authorization header"

// Authenticate compares the digest of the bearer token with every
// configured digest in constant time, without stopping at a match, so the
// time taken says nothing about which key, if any, matched.
func (k *keys) Authenticate(_ context.Context, r *http.Request) (*Principal, error) {
	token, err := bearer(r, keysRequired)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256([]byte(token))
	match := -1
	for i := range k.digests {
		if subtle.ConstantTimeCompare(sum[:], k.digests[i][:]) == 1 {
			match = i
		}
	}
	if match < 0 {
		return nil, Unauthenticated("Invalid API key", nil)
	}
	return clonePrincipal(k.principals[match]), nil
}

// clonePrincipal copies p, so handlers cannot change the configured one.
func clonePrincipal(p *Principal) *Principal {
	c := &Principal{ID: p.ID, Attributes: make(map[string][]string, len(p.Attributes))}
	for name, v := range maps.All(p.Attributes) {
		c.Attributes[name] = slices.Clone(v)
	}
	return c
}

var _ Authenticator = (*keys)(nil)
