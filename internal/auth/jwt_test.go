package auth

import (
	"crypto"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

const (
	testIssuer   = "https://idp.example.com/realms/test"
	testAudience = "llama-stack"
)

// sign returns a token signed with key under kid, with the given claims
// over valid defaults (a nil claim value deletes the claim).
func sign(t testing.TB, method jwt.SigningMethod, key crypto.Signer, kid string, now time.Time, claims jwt.MapClaims) string {
	t.Helper()
	c := jwt.MapClaims{
		"sub": "alice",
		"iss": testIssuer,
		"aud": testAudience,
		"exp": now.Add(time.Hour).Unix(),
		"iat": now.Unix(),
		"nbf": now.Unix(),
	}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	tok := jwt.NewWithClaims(method, c)
	if kid != "" {
		tok.Header["kid"] = kid
	}
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// unsigned builds a token with the given header and claims and signature.
func unsigned(t testing.TB, header, claims map[string]any, sig []byte) (string, string) {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	text := b64(h) + "." + b64(c)
	return text + "." + b64(sig), text
}

func oauthConfig(uri string) *config.AuthConfig {
	return &config.AuthConfig{ProviderConfig: &config.AuthProviderConfig{
		Type: config.AuthOAuth2Token,
		OAuth2Token: &config.OAuth2TokenAuthConfig{
			Type:      config.AuthOAuth2Token,
			Audience:  testAudience,
			Issuer:    testIssuer,
			VerifyTLS: true,
			ClaimsMapping: map[string]string{
				"groups":             "teams",
				"realm_access.roles": "roles",
				"scope":              "scopes",
			},
			JWKS: &config.OAuth2JWKSConfig{URI: uri, KeyRecheckPeriod: 3600},
		},
	}}
}

func newTestJWT(t *testing.T, srv *jwksServer, clk *clock) Authenticator {
	t.Helper()
	a, err := New(oauthConfig(srv.URL), Options{HTTPClient: srv.Client(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestJWT(t *testing.T) {
	testKeys(t)
	clk := newClock()
	now := clk.Now()
	srv := newJWKSServer(t,
		jwkOf(t, "rsa1", rsaKey1, nil),
		jwkOf(t, "ec256", ecKey256, nil),
		jwkOf(t, "ec384", ecKey384, map[string]string{"alg": "ES384"}),
		jwkOf(t, "ed", edKey, nil),
		jwkOf(t, "enc", rsaKey2, map[string]string{"use": "enc"}),
		jwkOf(t, "small", rsaKeySmall, nil),
	)
	a := newTestJWT(t, srv, clk)

	hmacWithPublicKey := func() string {
		der, err := x509.MarshalPKIXPublicKey(rsaKey1.Public())
		if err != nil {
			t.Fatal(err)
		}
		_, text := unsigned(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": "rsa1"}, map[string]any{"sub": "mallory", "iss": testIssuer, "aud": testAudience, "exp": now.Add(time.Hour).Unix()}, nil)
		m := hmac.New(sha256.New, der)
		m.Write([]byte(text))
		return text + "." + b64(m.Sum(nil))
	}
	noneToken, _ := unsigned(t, map[string]any{"alg": "none", "typ": "JWT", "kid": "rsa1"}, map[string]any{"sub": "mallory", "iss": testIssuer, "aud": testAudience, "exp": now.Add(time.Hour).Unix()}, nil)
	noneToken = strings.TrimSuffix(noneToken, ".") + "."

	tests := []struct {
		name  string
		token string
		kind  error // nil: accepted
	}{
		{"rs256", sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, nil), nil},
		{"ps384", sign(t, jwt.SigningMethodPS384, rsaKey1, "rsa1", now, nil), nil},
		{"es256", sign(t, jwt.SigningMethodES256, ecKey256, "ec256", now, nil), nil},
		{"es384", sign(t, jwt.SigningMethodES384, ecKey384, "ec384", now, nil), nil},
		{"eddsa", sign(t, jwt.SigningMethodEdDSA, edKey, "ed", now, nil), nil},
		{"audience in a list", sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, jwt.MapClaims{"aud": []string{"other", testAudience}}), nil},
		{"expired within leeway", sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, jwt.MapClaims{"exp": now.Add(-10 * time.Second).Unix()}), nil},
		{"expired", sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, jwt.MapClaims{"exp": now.Add(-time.Minute).Unix()}), ErrUnauthenticated},
		{"no exp", sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, jwt.MapClaims{"exp": nil}), ErrUnauthenticated},
		{"not yet valid", sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, jwt.MapClaims{"nbf": now.Add(time.Minute).Unix()}), ErrUnauthenticated},
		{"issued in the future", sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, jwt.MapClaims{"iat": now.Add(time.Hour).Unix()}), ErrUnauthenticated},
		{"wrong issuer", sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, jwt.MapClaims{"iss": "https://evil.example.com"}), ErrUnauthenticated},
		{"no issuer", sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, jwt.MapClaims{"iss": nil}), ErrUnauthenticated},
		{"wrong audience", sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, jwt.MapClaims{"aud": "ogx"}), ErrUnauthenticated},
		{"no audience", sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, jwt.MapClaims{"aud": nil}), ErrUnauthenticated},
		{"no sub", sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, jwt.MapClaims{"sub": nil}), ErrUnauthenticated},
		{"sub not a string", sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", now, jwt.MapClaims{"sub": 7}), ErrUnauthenticated},
		{"bad signature", sign(t, jwt.SigningMethodRS256, rsaKey2, "rsa1", now, nil), ErrUnauthenticated},
		{"bad ec signature", sign(t, jwt.SigningMethodES256, ecKey256Other, "ec256", now, nil), ErrUnauthenticated},
		{"alg does not fit the key", sign(t, jwt.SigningMethodES256, ecKey256, "rsa1", now, nil), ErrUnauthenticated},
		{"alg differs from the jwk's", sign(t, jwt.SigningMethodES256, ecKey256, "ec384", now, nil), ErrUnauthenticated},
		{"encryption key", sign(t, jwt.SigningMethodRS256, rsaKey2, "enc", now, nil), ErrUnauthenticated},
		{"too small rsa key", sign(t, jwt.SigningMethodRS256, rsaKeySmall, "small", now, nil), ErrUnauthenticated},
		{"alg none", noneToken, ErrUnauthenticated},
		{"hs256 with the public key", hmacWithPublicKey(), ErrUnauthenticated},
		{"no kid, one fitting key", sign(t, jwt.SigningMethodEdDSA, edKey, "", now, nil), nil},
		{"no kid, several fitting keys", sign(t, jwt.SigningMethodRS256, rsaKey1, "", now, nil), nil},
		{"kid not a string", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{"sub": "a", "iss": testIssuer, "aud": testAudience, "exp": now.Add(time.Hour).Unix()})
			tok.Header["kid"] = 5
			s, _ := tok.SignedString(rsaKey1)
			return s
		}(), ErrUnauthenticated},
		{"malformed", "not-a-jwt", ErrUnauthenticated},
		{"two parts", "a.b", ErrUnauthenticated},
		{"bad base64", "a!.b.c", ErrUnauthenticated},
		{"empty parts", "..", ErrUnauthenticated},
		{"too long", strings.Repeat("a", maxTokenBytes+1), ErrUnauthenticated},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := a.Authenticate(t.Context(), request("Bearer "+tt.token))
			if tt.kind == nil {
				if err != nil {
					t.Fatalf("Authenticate: %v", err)
				}
				if p.ID != "alice" {
					t.Errorf("principal = %q", p.ID)
				}
				return
			}
			if p != nil {
				t.Errorf("principal %+v with an error", p)
			}
			t.Logf("error: %v", err)
			wantKind(t, err, tt.kind, invalidJWT)
			if strings.Contains(err.Error(), tt.token) && len(tt.token) > 3 {
				t.Errorf("error holds the token: %v", err)
			}
		})
	}
	// The key set was fetched once for all of these: only unknown key ids
	// trigger refetches, and every kid above was known.
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("jwks fetched %d times, want 1", n)
	}
}

func TestJWTHeaderErrors(t *testing.T) {
	srv := newJWKSServer(t)
	clk := newClock()
	a := newTestJWT(t, srv, clk)
	for _, tt := range []struct{ header, msg string }{
		{"", "Authentication required. Please provide a valid OAuth2 Bearer token from " + testIssuer},
		{"Basic dXNlcjpwYXNz", errBadAuthHeader},
		{"Bearer", errBadAuthHeader},
		{"Bearer ", errBadAuthHeader},
		{"Bearer a b", errBadAuthHeader},
	} {
		_, err := a.Authenticate(t.Context(), request(tt.header))
		wantKind(t, err, ErrUnauthenticated, tt.msg)
		if got := err.(*Error).StatusCode(); got != http.StatusUnauthorized {
			t.Errorf("status = %d", got)
		}
	}
	if n := srv.fetches.Load(); n != 0 {
		t.Errorf("jwks fetched %d times for requests without a token", n)
	}
}

func TestJWTClaimsMapping(t *testing.T) {
	testKeys(t)
	clk := newClock()
	srv := newJWKSServer(t, jwkOf(t, "rsa1", rsaKey1, nil))
	a := newTestJWT(t, srv, clk)
	tok := sign(t, jwt.SigningMethodRS256, rsaKey1, "rsa1", clk.Now(), jwt.MapClaims{
		"groups":       []any{"ml", "nlp", 7, map[string]any{"x": 1}},
		"realm_access": map[string]any{"roles": []any{"admin", "user"}},
		"scope":        "openid  models:read",
	})
	p, err := a.Authenticate(t.Context(), request("Bearer "+tok))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]string{"teams": {"ml", "nlp", "7"}, "roles": {"admin", "user"}, "scopes": {"openid", "models:read"}}
	if !reflect.DeepEqual(p.Attributes, want) {
		t.Errorf("attributes = %v, want %v", p.Attributes, want)
	}
}

func TestAttributesFromClaims(t *testing.T) {
	claims := map[string]any{
		"sub":           "u1",
		"a.b":           "literal dotted",
		"a":             map[string]any{"c": []any{"x"}},
		"groups":        []string{"g1"},
		"n":             1.5,
		"null":          nil,
		"resource.deep": map[string]any{"roles": "r"},
	}
	got := attributesFromClaims(claims, map[string]string{
		"sub": "roles", "a.b": "literal", "a.c": "nested", "groups": "roles", "n": "skipped", "null": "nothing", "missing": "none",
	})
	want := map[string][]string{"roles": {"g1", "u1"}, "literal": {"literal", "dotted"}, "nested": {"x"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("attributes = %v, want %v", got, want)
	}
}

// A token whose key id the cached set lacks makes the server fetch the set
// again (key rotation), but not more often than JWKSMinRefresh.
func TestJWTKeyRotation(t *testing.T) {
	testKeys(t)
	clk := newClock()
	srv := newJWKSServer(t, jwkOf(t, "old", rsaKey1, nil))
	a, err := New(oauthConfig(srv.URL), Options{HTTPClient: srv.Client(), Now: clk.Now, JWKSMinRefresh: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	auth := func(kid string, key crypto.Signer) error {
		_, err := a.Authenticate(t.Context(), request("Bearer "+sign(t, jwt.SigningMethodRS256, key, kid, clk.Now(), nil)))
		return err
	}
	if err := auth("old", rsaKey1); err != nil {
		t.Fatal(err)
	}
	// The identity provider rotates to a new key, keeping the old one.
	srv.set(http.StatusOK, jwkOf(t, "old", rsaKey1, nil), jwkOf(t, "new", rsaKey2, nil))
	// Within JWKSMinRefresh of the first fetch, an unknown kid is refused
	// without a fetch.
	clk.Advance(10 * time.Second)
	if err := auth("new", rsaKey2); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("unknown kid within the refresh interval: %v", err)
	}
	if n := srv.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d, want 1", n)
	}
	clk.Advance(30 * time.Second)
	if err := auth("new", rsaKey2); err != nil {
		t.Fatalf("rotated key: %v", err)
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	// A stream of tokens with made-up key ids causes at most one fetch per
	// interval.
	for range 20 {
		if err := auth("made-up", rsaKey2); !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("made-up kid: %v", err)
		}
	}
	if n := srv.fetches.Load(); n != 2 {
		t.Fatalf("fetches after unknown kids = %d, want 2", n)
	}
	// The old key is retired; tokens signed with it fail once the set is
	// fetched again (after key_recheck_period).
	srv.set(http.StatusOK, jwkOf(t, "new", rsaKey2, nil))
	if err := auth("old", rsaKey1); err != nil {
		t.Fatalf("old key before recheck: %v", err)
	}
	clk.Advance(time.Hour)
	if err := auth("old", rsaKey1); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("retired key after recheck: %v", err)
	}
	if err := auth("new", rsaKey2); err != nil {
		t.Fatalf("new key after recheck: %v", err)
	}
	if n := srv.fetches.Load(); n != 3 {
		t.Fatalf("fetches after recheck = %d, want 3", n)
	}
}

// Without any key set, tokens cannot be checked: 503, not 401. Failed
// fetches are retried no more often than JWKSMinRefresh; once one works,
// tokens verify. A failing refetch keeps the keys already fetched.
func TestJWTKeySetUnavailable(t *testing.T) {
	testKeys(t)
	clk := newClock()
	srv := newJWKSServer(t)
	srv.set(http.StatusInternalServerError)
	a := newTestJWT(t, srv, clk)
	auth := func() error {
		_, err := a.Authenticate(t.Context(), request("Bearer "+sign(t, jwt.SigningMethodRS256, rsaKey1, "k", clk.Now(), nil)))
		return err
	}
	err := auth()
	wantKind(t, err, ErrUnavailable, "Authentication service unavailable")
	if got := err.(*Error).StatusCode(); got != http.StatusServiceUnavailable {
		t.Errorf("status = %d", got)
	}
	_ = auth()
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1 (failures are not retried at once)", n)
	}
	srv.set(http.StatusOK, jwkOf(t, "k", rsaKey1, nil))
	clk.Advance(11 * time.Second)
	if err := auth(); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
	// The set goes stale and the endpoint fails: the old keys still work.
	srv.set(http.StatusBadGateway)
	clk.Advance(2 * time.Hour)
	if err := auth(); err != nil {
		t.Fatalf("stale keys with a failing endpoint: %v", err)
	}
	if n := srv.fetches.Load(); n != 3 {
		t.Errorf("fetches = %d, want 3", n)
	}

	// An endpoint that is down entirely.
	srv2 := newJWKSServer(t)
	url := srv2.URL
	srv2.Close()
	a2, err := New(oauthConfig(url), Options{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a2.Authenticate(t.Context(), request("Bearer "+sign(t, jwt.SigningMethodRS256, rsaKey1, "k", clk.Now(), nil)))
	wantKind(t, err, ErrUnavailable, "")
}

func TestJWKSRequest(t *testing.T) {
	testKeys(t)
	clk := newClock()
	srv := newJWKSServer(t, jwkOf(t, "k", rsaKey1, nil))
	cfg := oauthConfig(srv.URL)
	cfg.ProviderConfig.OAuth2Token.JWKS.Token = "jwks-reader-token"
	a, err := New(cfg, Options{HTTPClient: srv.Client(), Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Authenticate(t.Context(), request("Bearer "+sign(t, jwt.SigningMethodRS256, rsaKey1, "k", clk.Now(), nil))); err != nil {
		t.Fatal(err)
	}
	if got := srv.auth.Load(); got != "Bearer jwks-reader-token" {
		t.Errorf("jwks request Authorization = %q", got)
	}
}

func TestParseJWKS(t *testing.T) {
	testKeys(t)
	good := jwkOf(t, "a", ecKey256, nil)
	offCurve := jwkOf(t, "b", ecKey256, nil)
	offCurve["y"] = offCurve["x"]
	short := jwkOf(t, "c", ecKey256, nil)
	short["x"] = b64([]byte{1, 2, 3})
	evenE := jwkOf(t, "d", rsaKey1, nil)
	evenE["e"] = b64([]byte{2})
	padded := jwkOf(t, "e", rsaKey1, nil)
	padded["n"] += "=="
	doc, _ := json.Marshal(map[string]any{"keys": []any{good, offCurve, short, evenE, padded,
		map[string]string{"kty": "oct", "k": "c2VjcmV0"},
		map[string]string{"kty": "OKP", "crv": "X25519", "x": b64(make([]byte, 32))},
		"not an object",
	}})
	keys, skipped, err := parseJWKS(doc)
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range keys {
		kids = append(kids, k.kid)
	}
	if !reflect.DeepEqual(kids, []string{"a", "e"}) {
		t.Errorf("keys = %v, want [a e]", kids)
	}
	if len(skipped) != 6 {
		t.Errorf("skipped = %v, want 6", skipped)
	}
	for _, bad := range []string{`{}`, `[]`, `{"keys": 1}`, `nope`} {
		if _, _, err := parseJWKS([]byte(bad)); err == nil {
			t.Errorf("parseJWKS(%s) succeeded", bad)
		}
	}
}

// Concurrent requests share one fetch: the first fetch of the set, and one
// refetch when they all bring a key id the set lacks.
func TestJWTConcurrentFetches(t *testing.T) {
	testKeys(t)
	clk := newClock()
	srv := newJWKSServer(t, jwkOf(t, "old", rsaKey1, nil))
	a := newTestJWT(t, srv, clk)
	oldTok := sign(t, jwt.SigningMethodRS256, rsaKey1, "old", clk.Now(), nil)
	run := func(token string) {
		t.Helper()
		errs := make(chan error, 16)
		for range 16 {
			go func() {
				_, err := a.Authenticate(t.Context(), request("Bearer "+token))
				errs <- err
			}()
		}
		for range 16 {
			if err := <-errs; err != nil {
				t.Error(err)
			}
		}
	}
	run(oldTok)
	if n := srv.fetches.Load(); n != 1 {
		t.Errorf("fetches = %d, want 1", n)
	}
	srv.set(http.StatusOK, jwkOf(t, "old", rsaKey1, nil), jwkOf(t, "new", rsaKey2, nil))
	clk.Advance(time.Minute)
	run(sign(t, jwt.SigningMethodRS256, rsaKey2, "new", clk.Now(), nil))
	if n := srv.fetches.Load(); n != 2 {
		t.Errorf("fetches = %d, want 2", n)
	}
}
