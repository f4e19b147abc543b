package auth

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/big"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// maxJWKSBytes bounds a JWKS document.
const maxJWKSBytes = 1 << 20

// minRSABits is the smallest RSA modulus accepted.
const minRSABits = 2048

// A jwk is one verification key of a key set.
type jwk struct {
	kid string
	alg string // the JWK's alg, "" when it has none
	key crypto.PublicKey
}

// parseJWKS parses a JSON Web Key Set (RFC 7517) and returns its signature
// keys: RSA (n, e), EC on P-256, P-384 or P-521 (crv, x, y) and Ed25519
// (OKP, x). Keys for encryption (use "enc"), of other types, or malformed
// are skipped and reported in skipped; a document that is not a key set is
// an error.
func parseJWKS(data []byte) (keys []jwk, skipped []error, err error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		return nil, nil, fmt.Errorf("decode key set: %w", err)
	}
	if doc.Keys == nil {
		return nil, nil, errors.New("decode key set: no keys member")
	}
	for i, raw := range doc.Keys {
		k, err := parseJWK(raw)
		if err != nil {
			skipped = append(skipped, fmt.Errorf("key %d: %w", i, err))
			continue
		}
		keys = append(keys, k)
	}
	return keys, skipped, nil
}

// parseJWK parses one JWK.
func parseJWK(raw json.RawMessage) (jwk, error) {
	var k struct {
		Kty string `json:"kty"`
		Kid string `json:"kid"`
		Use string `json:"use"`
		Alg string `json:"alg"`
		N   string `json:"n"`
		E   string `json:"e"`
		Crv string `json:"crv"`
		X   string `json:"x"`
		Y   string `json:"y"`
	}
	if err := json.Unmarshal(raw, &k); err != nil {
		return jwk{}, err
	}
	if k.Use != "" && k.Use != "sig" {
		return jwk{}, fmt.Errorf("use %q is not sig", k.Use)
	}
	out := jwk{kid: k.Kid, alg: k.Alg}
	switch k.Kty {
	case "RSA":
		n, err := b64Int(k.N)
		if err != nil {
			return jwk{}, fmt.Errorf("rsa n: %w", err)
		}
		e, err := b64Int(k.E)
		if err != nil {
			return jwk{}, fmt.Errorf("rsa e: %w", err)
		}
		if n.BitLen() < minRSABits {
			return jwk{}, fmt.Errorf("rsa modulus of %d bits is too small", n.BitLen())
		}
		if !e.IsInt64() || e.Int64() < 3 || e.Int64() > 1<<31-1 || e.Bit(0) == 0 {
			return jwk{}, errors.New("rsa exponent out of range")
		}
		out.key = &rsa.PublicKey{N: n, E: int(e.Int64())}
	case "EC":
		var curve elliptic.Curve
		switch k.Crv {
		case "P-256":
			curve = elliptic.P256()
		case "P-384":
			curve = elliptic.P384()
		case "P-521":
			curve = elliptic.P521()
		default:
			return jwk{}, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		size := (curve.Params().BitSize + 7) / 8
		x, err := b64Bytes(k.X)
		if err != nil {
			return jwk{}, fmt.Errorf("ec x: %w", err)
		}
		y, err := b64Bytes(k.Y)
		if err != nil {
			return jwk{}, fmt.Errorf("ec y: %w", err)
		}
		if len(x) != size || len(y) != size {
			return jwk{}, fmt.Errorf("ec coordinates must be %d bytes", size)
		}
		point := append(append([]byte{4}, x...), y...)
		pub, err := ecdsa.ParseUncompressedPublicKey(curve, point)
		if err != nil {
			return jwk{}, fmt.Errorf("ec point: %w", err)
		}
		out.key = pub
	case "OKP":
		if k.Crv != "Ed25519" {
			return jwk{}, fmt.Errorf("unsupported curve %q", k.Crv)
		}
		x, err := b64Bytes(k.X)
		if err != nil {
			return jwk{}, fmt.Errorf("okp x: %w", err)
		}
		if len(x) != ed25519.PublicKeySize {
			return jwk{}, fmt.Errorf("ed25519 key must be %d bytes", ed25519.PublicKeySize)
		}
		out.key = ed25519.PublicKey(x)
	default:
		return jwk{}, fmt.Errorf("unsupported key type %q", k.Kty)
	}
	return out, nil
}

// b64Bytes decodes base64url without padding, tolerating padding.
func b64Bytes(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("missing")
	}
	return base64.RawURLEncoding.DecodeString(strings.TrimRight(s, "="))
}

// b64Int decodes a base64url big-endian unsigned integer.
func b64Int(s string) (*big.Int, error) {
	b, err := b64Bytes(s)
	if err != nil {
		return nil, err
	}
	return new(big.Int).SetBytes(b), nil
}

// fits reports whether key k can verify a token signed with alg.
func (k *jwk) fits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch key := k.key.(type) {
	case *rsa.PublicKey:
		return strings.HasPrefix(alg, "RS") || strings.HasPrefix(alg, "PS")
	case *ecdsa.PublicKey:
		switch alg {
		case "ES256":
			return key.Curve == elliptic.P256()
		case "ES384":
			return key.Curve == elliptic.P384()
		case "ES512":
			return key.Curve == elliptic.P521()
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// errNoKeys reports that no key set could be fetched yet.
var errNoKeys = errors.New("no key set available")

// keySet is one fetched JWKS.
type keySet struct {
	keys    []jwk
	fetched time.Time
}

// jwksCache fetches a JWKS on demand and keeps it. Keys are fetched again
// when the set is older than recheck, and when a token names a key id the
// set lacks, but never more often than minRefresh after the last attempt
// (so unknown key ids and a failing endpoint cannot make it hammer the
// identity provider). A failed fetch keeps the previous keys. It starts no
// goroutines: a fetch runs on the request that needs it, and requests that
// arrive meanwhile with keys in hand do not wait for it.
type jwksCache struct {
	uri        string
	token      config.Secret
	client     *http.Client
	timeout    time.Duration
	recheck    time.Duration
	minRefresh time.Duration
	now        func() time.Time
	log        *slog.Logger

	set atomic.Pointer[keySet]

	fetchMu     sync.Mutex // one fetch at a time; guards lastAttempt
	lastAttempt time.Time
}

// keys returns the keys that may verify a token with key id kid (any id
// when kid is "") signed with alg. It returns errNoKeys (wrapped) when no
// key set has ever been fetched.
func (c *jwksCache) keys(ctx context.Context, kid, alg string) ([]jwk, error) {
	now := c.now()
	set := c.set.Load()
	if set == nil || now.Sub(set.fetched) >= c.recheck {
		// Stale or missing: refresh, unless another request is already
		// at it and we have keys to use meanwhile.
		if set == nil || c.fetchMu.TryLock() {
			if set != nil {
				c.fetchMu.Unlock()
			}
			set = c.refresh(ctx, now, set, false)
		}
	}
	if set == nil {
		return nil, errNoKeys
	}
	found := match(set, kid, alg)
	if len(found) == 0 && kid != "" && !hasKid(set, kid) {
		// A key id we do not know: the keys may have rotated.
		set = c.refresh(ctx, now, set, true)
		found = match(set, kid, alg)
	}
	return found, nil
}

// refresh fetches the key set unless someone else did so since old was
// read, or (for unknown key ids and after failures) the last attempt was
// under minRefresh ago. It returns the current set, which may be old or nil.
func (c *jwksCache) refresh(ctx context.Context, now time.Time, old *keySet, unknownKid bool) *keySet {
	c.fetchMu.Lock()
	defer c.fetchMu.Unlock()
	if cur := c.set.Load(); cur != old {
		return cur // fetched while we waited
	}
	if !c.lastAttempt.IsZero() && now.Sub(c.lastAttempt) < c.minRefresh && (unknownKid || old == nil || c.lastAttempt.After(old.fetched)) {
		return old
	}
	c.lastAttempt = now
	keys, err := c.fetch(ctx)
	if err != nil {
		c.log.LogAttrs(ctx, slog.LevelWarn, "fetch jwks", slog.String("uri", redactURL(c.uri)), slog.String("error", err.Error()))
		return old
	}
	set := &keySet{keys: keys, fetched: now}
	c.set.Store(set)
	return set
}

// fetch GETs and parses the key set. The request does not inherit the
// caller's cancellation: one client going away must not fail the fetch for
// the others.
func (c *jwksCache) fetch(ctx context.Context) ([]jwk, error) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.uri, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token.Value())
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, redactURLError(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("status %d", resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read: %w", err)
	}
	if len(data) > maxJWKSBytes {
		return nil, fmt.Errorf("key set larger than %d bytes", maxJWKSBytes)
	}
	keys, skipped, err := parseJWKS(data)
	if err != nil {
		return nil, err
	}
	for _, s := range skipped {
		c.log.LogAttrs(ctx, slog.LevelDebug, "jwks key skipped", slog.String("uri", redactURL(c.uri)), slog.String("reason", s.Error()))
	}
	if len(keys) == 0 {
		return nil, errors.New("key set has no usable signature keys")
	}
	return keys, nil
}

// match returns the keys of set with key id kid (any, for "") that fit alg.
func match(set *keySet, kid, alg string) []jwk {
	if set == nil {
		return nil
	}
	var out []jwk
	for _, k := range set.keys {
		if (kid == "" || k.kid == kid) && k.fits(alg) {
			out = append(out, k)
		}
	}
	return out
}

func hasKid(set *keySet, kid string) bool {
	for _, k := range set.keys {
		if k.kid == kid {
			return true
		}
	}
	return false
}

// redactURL strips query and user info from a URL for logs.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	u.RawQuery, u.User, u.Fragment = "", nil, ""
	return u.String()
}
