package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// FuzzJWT feeds tokens to the verifier with a fixed key set. Whatever the
// input, it must not panic, must fail with an ErrUnauthenticated *Error,
// and may accept only tokens whose signed part (header and claims) is
// byte for byte that of a token the test signed: signatures cannot be
// forged, only re-encoded.
func FuzzJWT(f *testing.F) {
	testKeys(f)
	clk := newClock()
	now := clk.Now()
	signed := []string{
		sign(f, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, nil),
		sign(f, jwt.SigningMethodES256, ecKey256, "ec256", now, nil),
		sign(f, jwt.SigningMethodEdDSA, edKey, "ed", now, nil),
		sign(f, jwt.SigningMethodRS256, rsaKey1, "", now, jwt.MapClaims{"groups": []any{"a", 1}}),
	}
	for _, s := range signed {
		f.Add(s)
	}
	none, _ := unsigned(f, map[string]any{"alg": "none"}, map[string]any{"sub": "x"}, nil)
	for _, s := range []string{"", ".", "..", "a.b.c", none, "eyJhbGciOiJSUzI1NiJ9.e30.", strings.Repeat("x.", 100)} {
		f.Add(s)
	}
	keys := []jwk{
		{kid: "rsa1", key: rsaKey1.Public().(*rsa.PublicKey)},
		{kid: "ec256", key: ecKey256.Public().(*ecdsa.PublicKey)},
		{kid: "ed", key: edKey.Public().(ed25519.PublicKey)},
	}
	signedParts := map[string]bool{}
	for _, s := range signed {
		signedParts[s[:strings.LastIndexByte(s, '.')]] = true
	}
	f.Fuzz(func(t *testing.T, token string) {
		a, err := newJWT(oauthConfig("http://127.0.0.1:1/unused").ProviderConfig.OAuth2Token, Options{Now: clk.Now, Leeway: 30 * time.Second, Timeout: time.Second, JWKSMinRefresh: time.Hour}, discard())
		if err != nil {
			t.Fatal(err)
		}
		a.jwks.set.Store(&keySet{keys: keys, fetched: now})
		a.jwks.lastAttempt = now // unknown kids must not cause a fetch
		p, err := a.verify(t.Context(), token)
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Kind != ErrUnauthenticated || p != nil {
				t.Fatalf("verify(%q) = %v, %v", token, p, err)
			}
			return
		}
		i := strings.LastIndexByte(token, '.')
		if i < 0 || !signedParts[token[:i]] || p.ID != "alice" {
			t.Fatalf("verify accepted %q as %+v", token, p)
		}
	})
}

func FuzzParseJWKS(f *testing.F) {
	testKeys(f)
	for _, k := range []map[string]string{
		jwkOf(f, "r", rsaKey1, nil), jwkOf(f, "e", ecKey256, nil), jwkOf(f, "p", ecKey384, nil), jwkOf(f, "d", edKey, nil),
		{"kty": "EC", "crv": "P-521", "x": "AA", "y": "AA"}, {"kty": "RSA", "n": "AQAB", "e": "AQAB"},
	} {
		doc, _ := json.Marshal(map[string]any{"keys": []any{k}})
		f.Add(doc)
	}
	f.Add([]byte(`{"keys": []}`))
	f.Add([]byte(`{"keys": [1, null, "x", {}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		keys, skipped, err := parseJWKS(data)
		if err != nil {
			if keys != nil || skipped != nil {
				t.Fatal("keys with an error")
			}
			return
		}
		for _, k := range keys {
			switch key := k.key.(type) {
			case *rsa.PublicKey:
				if key.N.BitLen() < minRSABits || key.E < 3 {
					t.Fatalf("weak rsa key accepted: %d bits, e=%d", key.N.BitLen(), key.E)
				}
			case *ecdsa.PublicKey, ed25519.PublicKey:
			default:
				t.Fatalf("key of type %T", key)
			}
		}
	})
}
