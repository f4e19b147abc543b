package auth

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestMain fails the package if a test leaves goroutines behind.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// clock is a settable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Test keys are generated once per test binary: RSA key generation is slow.
var (
	keysOnce           sync.Once
	rsaKey1, rsaKey2   *rsa.PrivateKey
	ecKey256, ecKey384 *ecdsa.PrivateKey
	edKey              ed25519.PrivateKey
	rsaKeySmall        *rsa.PrivateKey
	ecKey256Other      *ecdsa.PrivateKey
	keyGenErr          error
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		must := func(e error) {
			if e != nil && keyGenErr == nil {
				keyGenErr = e
			}
		}
		rsaKey1, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048)
		must(err)
		rsaKeySmall, err = rsa.GenerateKey(rand.Reader, 1024)
		must(err)
		ecKey256, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		ecKey256Other, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		must(err)
		ecKey384, err = ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		must(err)
		_, edKey, err = ed25519.GenerateKey(rand.Reader)
		must(err)
	})
	if keyGenErr != nil {
		t.Fatalf("generate test keys: %v", keyGenErr)
	}
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// jwkOf returns the public JWK of a private key.
func jwkOf(t testing.TB, kid string, key crypto.Signer, extra map[string]string) map[string]string {
	t.Helper()
	m := map[string]string{"kid": kid, "use": "sig"}
	switch pub := key.Public().(type) {
	case *rsa.PublicKey:
		m["kty"] = "RSA"
		m["n"] = b64(pub.N.Bytes())
		m["e"] = b64(big.NewInt(int64(pub.E)).Bytes())
	case *ecdsa.PublicKey:
		raw, err := pub.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		size := (len(raw) - 1) / 2
		m["kty"] = "EC"
		m["crv"] = pub.Curve.Params().Name
		m["x"] = b64(raw[1 : 1+size])
		m["y"] = b64(raw[1+size:])
	case ed25519.PublicKey:
		m["kty"] = "OKP"
		m["crv"] = "Ed25519"
		m["x"] = b64(pub)
	default:
		t.Fatalf("key type %T", pub)
	}
	for k, v := range extra {
		if v == "" {
			delete(m, k)
		} else {
			m[k] = v
		}
	}
	return m
}

// jwksServer serves a key set that tests can replace, counting fetches.
type jwksServer struct {
	*httptest.Server
	mu      sync.Mutex
	keys    []map[string]string
	status  int
	fetches atomic.Int64
	auth    atomic.Value // last Authorization header
}

func newJWKSServer(t *testing.T, keys ...map[string]string) *jwksServer {
	t.Helper()
	s := &jwksServer{keys: keys, status: http.StatusOK}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.fetches.Add(1)
		s.auth.Store(r.Header.Get("Authorization"))
		s.mu.Lock()
		status, keys := s.status, s.keys
		s.mu.Unlock()
		if status != http.StatusOK {
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": keys})
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) set(status int, keys ...map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.status, s.keys = status, keys
}

// request returns a GET request with the given Authorization header ("" for
// none).
func request(authz string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/v1/models", nil)
	if authz != "" {
		r.Header.Set("Authorization", authz)
	}
	return r
}

// wantKind checks that err is an *Error of the given kind whose message
// contains msg.
func wantKind(t *testing.T, err error, kind error, msg string) {
	t.Helper()
	var ae *Error
	if !errors.As(err, &ae) {
		t.Fatalf("error = %v (%T), want *Error", err, err)
	}
	if !errors.Is(err, kind) || ae.Kind != kind {
		t.Fatalf("error kind = %v, want %v (error: %v)", ae.Kind, kind, err)
	}
	if msg != "" && !strings.Contains(ae.Message, msg) {
		t.Fatalf("message = %q, want it to contain %q", ae.Message, msg)
	}
}

func discard() *slog.Logger { return slog.New(slog.DiscardHandler) }
