package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// Who may call, end to end: the built binary with server.auth,
// access_policy and server.quota, in front of the Bedrock double.

const (
	model120 = "bedrock/openai.gpt-oss-120b-1:0"
	// teamAKey reaches the server through TEAM_A_KEY; teamBKey only as its
	// SHA-256 in the config.
	teamAKey = "team-a-4b8f1d2c6e9a0b3d5f7c1e2a4b6d8f0a"
	teamBKey = "team-b-0f9e8d7c6b5a49382716a5b4c3d2e1f0"
)

// twoModels is the notebook's config with the 120b model registered too.
const twoModels = notebookConfig + `    - metadata: {}
      model_id: bedrock/openai.gpt-oss-120b-1:0
      provider_id: bedrock
      provider_model_id: openai.gpt-oss-120b-1:0
      model_type: llm
`

func sha256Hex(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// apiKeysAuth is a server.auth section with team A's and team B's keys and
// the 120b model readable by team A only.
func apiKeysAuth() string {
	return `  auth:
    provider_config:
      type: api_keys
      keys:
        - key: ${env.TEAM_A_KEY}
          principal: team-a
          attributes: {teams: [a]}
        - key_sha256: ` + sha256Hex(teamBKey) + `
          principal: team-b
          attributes: {teams: [b]}
    access_policy:
      - permit: {actions: [read], resource: "model::` + model120 + `"}
        when: user with a in teams
      - forbid: {actions: [read], resource: "model::` + model120 + `"}
      - permit: {actions: [read]}
`
}

// authServer starts the double and the binary with twoModels plus the
// given server section (indented by two spaces, without "server:").
func authServer(t *testing.T, server string, extraEnv ...string) (*bedrocktest.Server, *server) {
	t.Helper()
	double := bedrocktest.New(t, bedrocktest.Options{})
	env := append([]string{
		"AWS_BEARER_TOKEN_BEDROCK=" + bedrocktest.DefaultKey,
		"AWS_DEFAULT_REGION=us-west-2",
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL(),
		"TEAM_A_KEY=" + teamAKey,
	}, extraEnv...)
	cfg := writeFile(t, "config.yaml", twoModels+"server:\n"+server)
	return double, startServer(t, env, cfg, "--log-level", "debug")
}

// call sends method path with an optional bearer token and body.
func call(t *testing.T, method, url, token, body string) (int, http.Header, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := faultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read: %v", method, url, err)
	}
	return resp.StatusCode, resp.Header, b
}

// accessRecord waits for the server's access-log record of request id.
func accessRecord(t *testing.T, srv *server, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, line := range srv.Logs() {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) == nil && m["msg"] == "request" && m["request_id"] == id {
				return m
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no access-log record for request %s", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noSecretInLogs fails the test if any log line holds one of secrets.
func noSecretInLogs(t *testing.T, srv *server, secrets ...string) {
	t.Helper()
	for _, line := range srv.Logs() {
		for _, s := range secrets {
			if strings.Contains(line, s) {
				t.Errorf("a secret was logged: %s", line)
			}
		}
	}
}

func modelIDs(t *testing.T, base, token string) []string {
	t.Helper()
	code, _, b := call(t, "GET", base+"/v1/models", token, "")
	var list struct {
		Data []struct {
			ID string `json:"id"`
		} `json:"data"`
	}
	if code != 200 || json.Unmarshal(b, &list) != nil {
		t.Fatalf("list models: %d %s", code, b)
	}
	var ids []string
	for _, m := range list.Data {
		ids = append(ids, m.ID)
	}
	slices.Sort(ids)
	return ids
}

// TestAuthAPIKeys: static API keys, the access policy on models, and
// stored chat completions kept per principal.
func TestAuthAPIKeys(t *testing.T) {
	double, srv := authServer(t, apiKeysAuth())
	chat := chatBody("Which planet do humans live on?", false)

	t.Run("who may call", func(t *testing.T) {
		tests := []struct {
			name      string
			method    string
			path      string
			token     string
			body      string
			status    int
			principal string
		}{
			{"no key", "POST", "/v1/chat/completions", "", chat, 401, ""},
			{"wrong key", "POST", "/v1/chat/completions", "team-a-wrong", chat, 401, ""},
			{"key's digest is not a key", "POST", "/v1/chat/completions", sha256Hex(teamBKey), chat, 401, ""},
			{"team A's key", "POST", "/v1/chat/completions", teamAKey, chat, 200, "team-a"},
			{"team B's key (configured by digest)", "POST", "/v1/chat/completions", teamBKey, chat, 200, "team-b"},
			{"health is open", "GET", "/v1/health", "", "", 200, ""},
			{"models need a key", "GET", "/v1/models", "", "", 401, ""},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				before := chatAttempts(double)
				code, h, b := call(t, tc.method, srv.URL+tc.path, tc.token, tc.body)
				if code != tc.status {
					t.Fatalf("status %d, want %d: %s", code, tc.status, b)
				}
				if code == 401 {
					e := decodeErrorBody(t, b)
					if e.Error.Type != "invalid_request_error" || e.code() != "invalid_api_key" || h.Get("WWW-Authenticate") != "Bearer" {
						t.Errorf("401: %s, WWW-Authenticate %q", b, h.Get("WWW-Authenticate"))
					}
					if got := chatAttempts(double) - before; got != 0 {
						t.Errorf("a refused request reached the upstream %d times", got)
					}
				}
				rec := accessRecord(t, srv, h.Get("X-Request-Id"))
				if rec["status"] != float64(tc.status) {
					t.Errorf("logged status %v", rec["status"])
				}
				if got, _ := rec["principal"].(string); got != tc.principal {
					t.Errorf("logged principal %q, want %q", got, tc.principal)
				}
			})
		}
	})

	t.Run("openai-go with the key", func(t *testing.T) {
		c := oai.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey(teamAKey), option.WithMaxRetries(0))
		resp, err := c.Chat.Completions.New(t.Context(), oai.ChatCompletionNewParams{Model: modelID,
			Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Which planet do humans live on?")}})
		if err != nil || !strings.Contains(resp.Choices[0].Message.Content, "Earth") {
			t.Fatalf("%v %+v", err, resp)
		}
		bad := oai.NewClient(option.WithBaseURL(srv.URL+"/v1/"), option.WithAPIKey("nope"), option.WithMaxRetries(0))
		_, err = bad.Models.List(t.Context())
		var apiErr *oai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 401 || apiErr.Code != "invalid_api_key" {
			t.Errorf("wrong key: %v", err)
		}
	})

	t.Run("access policy", func(t *testing.T) {
		tests := []struct {
			token  string
			listed []string
			get    int // GET /v1/models/120b
			use    int // chat with the 120b model
		}{
			{teamAKey, []string{model120, modelID}, 200, 200}, // sorted
			{teamBKey, []string{modelID}, 404, 403},
		}
		for _, tc := range tests {
			if got := modelIDs(t, srv.URL, tc.token); !slices.Equal(got, tc.listed) {
				t.Errorf("%.6s lists %v, want %v", tc.token, got, tc.listed)
			}
			if code, _, b := call(t, "GET", srv.URL+"/v1/models/"+model120, tc.token, ""); code != tc.get {
				t.Errorf("%.6s GET 120b: %d, want %d: %s", tc.token, code, tc.get, b)
			}
			for _, stream := range []bool{false, true} {
				before := chatAttempts(double)
				body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hello"}],"stream":%t}`, model120, stream)
				code, _, b := call(t, "POST", srv.URL+"/v1/chat/completions", tc.token, body)
				if code != tc.use {
					t.Fatalf("%.6s chat with 120b (stream %v): %d, want %d: %s", tc.token, stream, code, tc.use, b)
				}
				want := 1
				if code == 403 {
					want = 0
					if e := decodeErrorBody(t, b); e.code() != "permission_denied" || e.Error.Message != "User 'team-b' cannot perform action 'read' on resource 'model::"+model120+"'" {
						t.Errorf("403: %s", b)
					}
				}
				if got := chatAttempts(double) - before; got != want {
					t.Errorf("upstream calls = %d, want %d", got, want)
				}
			}
		}
	})

	t.Run("stored completions per principal", func(t *testing.T) {
		ids := map[string]string{}
		for _, tok := range []string{teamAKey, teamBKey} {
			code, _, b := call(t, "POST", srv.URL+"/v1/chat/completions", tok, chatBody("remember me", false))
			var c struct {
				ID string `json:"id"`
			}
			if code != 200 || json.Unmarshal(b, &c) != nil || c.ID == "" {
				t.Fatalf("chat: %d %s", code, b)
			}
			ids[tok] = c.ID
		}
		listed := func(tok string) map[string]bool {
			code, _, b := call(t, "GET", srv.URL+"/v1/chat/completions?limit=100", tok, "")
			var l struct {
				Data []struct {
					ID string `json:"id"`
				} `json:"data"`
			}
			if code != 200 || json.Unmarshal(b, &l) != nil {
				t.Fatalf("list: %d %s", code, b)
			}
			out := map[string]bool{}
			for _, d := range l.Data {
				out[d.ID] = true
			}
			return out
		}
		eventually(t, 15*time.Second, "both completions stored", func() bool {
			return listed(teamAKey)[ids[teamAKey]] && listed(teamBKey)[ids[teamBKey]]
		})
		if listed(teamAKey)[ids[teamBKey]] || listed(teamBKey)[ids[teamAKey]] {
			t.Error("a principal lists another's completion")
		}
		for _, tc := range []struct {
			tok, id string
			status  int
		}{{teamAKey, ids[teamAKey], 200}, {teamBKey, ids[teamAKey], 404}, {teamAKey, ids[teamBKey], 404}, {"", ids[teamAKey], 401}} {
			if code, _, b := call(t, "GET", srv.URL+"/v1/chat/completions/"+tc.id, tc.tok, ""); code != tc.status {
				t.Errorf("GET %s as %.6s: %d, want %d: %s", tc.id, tc.tok, code, tc.status, b)
			}
		}
		if code, _, _ := call(t, "DELETE", srv.URL+"/v1/chat/completions/"+ids[teamAKey], teamBKey, ""); code != 404 {
			t.Errorf("team B deleted team A's completion: %d", code)
		}
		if code, _, _ := call(t, "GET", srv.URL+"/v1/chat/completions/"+ids[teamAKey], teamAKey, ""); code != 200 {
			t.Errorf("team A's completion is gone: %d", code)
		}
	})

	noSecretInLogs(t, srv, teamAKey, teamBKey, "team-a-wrong")
}

// jwksServer serves a JSON Web Key Set that a test can replace, and counts
// the fetches.
type jwksServer struct {
	*httptest.Server
	doc     atomic.Value // []byte
	fetches atomic.Int64
}

func newJWKSServer(t *testing.T) *jwksServer {
	j := &jwksServer{}
	j.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(j.doc.Load().([]byte))
	}))
	t.Cleanup(j.Close)
	return j
}

// serve publishes the public halves of keys, by key id.
func (j *jwksServer) serve(keys map[string]*rsa.PrivateKey) {
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	kids := make([]string, 0, len(keys))
	for kid := range keys {
		kids = append(kids, kid)
	}
	slices.Sort(kids)
	for _, kid := range kids {
		pub := keys[kid].PublicKey
		set.Keys = append(set.Keys, map[string]string{
			"kty": "RSA", "kid": kid, "use": "sig", "alg": "RS256",
			"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
			"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
		})
	}
	b, _ := json.Marshal(set)
	j.doc.Store(b)
}

const (
	jwtIssuer   = "https://idp.test/realms/llama"
	jwtAudience = "llama-stack-e2e"
)

// signToken signs claims over the defaults (issuer, audience, an hour of
// validity, subject alice in group a) with key under kid.
func signToken(t *testing.T, key *rsa.PrivateKey, kid string, over jwt.MapClaims) string {
	t.Helper()
	now := time.Now()
	claims := jwt.MapClaims{"iss": jwtIssuer, "aud": jwtAudience, "sub": "alice", "groups": []string{"a"},
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
	for k, v := range over {
		if v == nil {
			delete(claims, k)
			continue
		}
		claims[k] = v
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodRS256, claims)
	tok.Header["kid"] = kid
	s, err := tok.SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestAuthOAuth2JWT: JWTs verified against a JWKS the test serves, with
// keys generated here: valid, expired, wrong audience or issuer, wrong
// signature; the key set is cached; after a rotation, tokens of the new
// key are accepted once the set is fetched again, and those of the
// removed key refused.
func TestAuthOAuth2JWT(t *testing.T) {
	k1, k2, rogue := rsaKey(t), rsaKey(t), rsaKey(t)
	jwks := newJWKSServer(t)
	jwks.serve(map[string]*rsa.PrivateKey{"k1": k1})
	_, srv := authServer(t, `  auth:
    provider_config:
      type: oauth2_token
      issuer: `+jwtIssuer+`
      audience: `+jwtAudience+`
      jwks:
        uri: `+jwks.URL+`/certs
        key_recheck_period: 3600
      claims_mapping:
        sub: roles
        groups: teams
    access_policy:
      - permit: {actions: [read], resource: "model::`+model120+`"}
        when: user with a in teams
      - forbid: {actions: [read], resource: "model::`+model120+`"}
      - permit: {actions: [read]}
`)
	valid := signToken(t, k1, "k1", nil)
	var tokens []string
	tests := []struct {
		name      string
		token     string
		status    int
		principal string
	}{
		{"valid", valid, 200, "alice"},
		{"valid, other subject and group", signToken(t, k1, "k1", jwt.MapClaims{"sub": "bob", "groups": []string{"b"}}), 200, "bob"},
		{"expired", signToken(t, k1, "k1", jwt.MapClaims{"exp": time.Now().Add(-time.Hour).Unix(), "iat": time.Now().Add(-2 * time.Hour).Unix()}), 401, ""},
		{"no expiry", signToken(t, k1, "k1", jwt.MapClaims{"exp": nil}), 401, ""},
		{"not yet valid", signToken(t, k1, "k1", jwt.MapClaims{"nbf": time.Now().Add(time.Hour).Unix()}), 401, ""},
		{"wrong audience", signToken(t, k1, "k1", jwt.MapClaims{"aud": "someone-else"}), 401, ""},
		{"wrong issuer", signToken(t, k1, "k1", jwt.MapClaims{"iss": "https://evil.test"}), 401, ""},
		{"signed by another key under the known kid", signToken(t, rogue, "k1", nil), 401, ""},
		{"not a JWT", "opaque-token", 401, ""},
		{"none", "", 401, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tokens = append(tokens, tc.token)
			code, h, b := call(t, "GET", srv.URL+"/v1/models", tc.token, "")
			if code != tc.status {
				t.Fatalf("status %d, want %d: %s", code, tc.status, b)
			}
			if code == 401 {
				if e := decodeErrorBody(t, b); e.code() != "invalid_api_key" || h.Get("WWW-Authenticate") != "Bearer" {
					t.Errorf("401: %s WWW-Authenticate %q", b, h.Get("WWW-Authenticate"))
				}
			}
			if got, _ := accessRecord(t, srv, h.Get("X-Request-Id"))["principal"].(string); got != tc.principal {
				t.Errorf("logged principal %q, want %q", got, tc.principal)
			}
		})
	}
	// Every token above names k1, which the first fetch found: one fetch.
	if got := jwks.fetches.Load(); got != 1 {
		t.Errorf("JWKS fetched %d times, want 1 (cached)", got)
	}
	// Claims drive the access policy: alice (group a) sees the 120b model,
	// bob (group b) does not.
	if got := modelIDs(t, srv.URL, valid); !slices.Contains(got, model120) {
		t.Errorf("alice lists %v", got)
	}
	if got := modelIDs(t, srv.URL, signToken(t, k1, "k1", jwt.MapClaims{"sub": "bob", "groups": []string{"b"}})); slices.Contains(got, model120) {
		t.Errorf("bob lists %v", got)
	}

	// Rotation: the identity provider now signs with k2 only.
	jwks.serve(map[string]*rsa.PrivateKey{"k2": k2})
	rotated := signToken(t, k2, "k2", nil)
	tokens = append(tokens, rotated)
	// An unknown key id makes the server fetch the set again, at most
	// once per 10 s (so that unknown ids cannot make it hammer the
	// identity provider): within that the token may still be refused.
	eventually(t, 30*time.Second, "token of the rotated key accepted", func() bool {
		code, _, _ := call(t, "GET", srv.URL+"/v1/models", rotated, "")
		return code == 200
	})
	if got := jwks.fetches.Load(); got != 2 {
		t.Errorf("JWKS fetched %d times, want 2", got)
	}
	if code, _, b := call(t, "GET", srv.URL+"/v1/models", valid, ""); code != 401 {
		t.Errorf("token of the removed key: %d, want 401: %s", code, b)
	}
	for _, tok := range tokens {
		if tok != "" {
			noSecretInLogs(t, srv, tok)
		}
	}
}

// TestQuotaAnonymous: anonymous callers get anonymous_max_requests per
// period each, then 429 with Retry-After; health and metrics are never
// counted.
func TestQuotaAnonymous(t *testing.T) {
	_, srv := authServer(t, `  quota:
    anonymous_max_requests: 3
    period: hour
`)
	for i, want := range []int{200, 200, 200, 429, 429} {
		code, h, b := call(t, "POST", srv.URL+"/v1/chat/completions", "", chatBody("count me", i%2 == 1))
		if code != want {
			t.Fatalf("request %d: %d, want %d: %s", i+1, code, want, b)
		}
		if code == 429 {
			ra, err := strconv.Atoi(h.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 3600 {
				t.Errorf("Retry-After = %q", h.Get("Retry-After"))
			}
			if e := decodeErrorBody(t, b); e.Error.Message != "Quota exceeded: 3 requests per hour" || e.code() != "rate_limit_exceeded" {
				t.Errorf("429: %s", b)
			}
		}
	}
	for range 5 {
		for _, p := range []string{"/v1/health", "/metrics"} {
			if code, _, _ := call(t, "GET", srv.URL+p, "", ""); code != 200 {
				t.Errorf("%s over quota: %d", p, code)
			}
		}
	}
	if got := scrape(t, srv.URL).get("llama_stack_quota_rejections_total", "kind", "requests"); got != 2 {
		t.Errorf("quota_rejections_total = %v, want 2", got)
	}
}

// TestQuotaSharedByReplicas: two server processes on one database share
// the quota counters.
func TestQuotaSharedByReplicas(t *testing.T) {
	const quota = `server:
  quota:
    anonymous_max_requests: 3
    period: hour
`
	tests := []struct {
		name string
		env  func(t *testing.T) []string
		cfg  string
	}{
		{"sqlite file", func(t *testing.T) []string { return []string{"SQLITE_STORE_DIR=" + t.TempDir()} }, notebookConfig + quota},
		{"postgresql", func(t *testing.T) []string {
			dsn := os.Getenv("LLAMA_TEST_POSTGRES_DSN")
			if dsn == "" {
				t.Skip("LLAMA_TEST_POSTGRES_DSN is not set (.ci/postgres.sh starts PostgreSQL and prints it)")
			}
			return freshPostgresDB(t, dsn)
		}, postgresConfig + quota},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			double := bedrocktest.New(t, bedrocktest.Options{})
			env := append([]string{"AWS_BEARER_TOKEN_BEDROCK=" + bedrocktest.DefaultKey, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL()}, tc.env(t)...)
			cfg := writeFile(t, "config.yaml", tc.cfg)
			a := startServer(t, env, cfg)
			b := startServer(t, env, cfg)
			steps := []struct {
				srv    *server
				status int
			}{{a, 200}, {b, 200}, {a, 200}, {b, 429}, {a, 429}}
			for i, s := range steps {
				code, h, body := call(t, "GET", s.srv.URL+"/v1/models", "", "")
				if code != s.status {
					t.Fatalf("request %d: %d, want %d: %s", i+1, code, s.status, body)
				}
				if code == 429 && h.Get("Retry-After") == "" {
					t.Errorf("429 without Retry-After")
				}
			}
		})
	}
}

// TestQuotaTokensPerMinute: a caller's tokens per minute are counted from
// the usage of its answers; once used up, requests get 429 with
// Retry-After until the minute ends, and never reach the upstream.
func TestQuotaTokensPerMinute(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		reason string // why the row is skipped, "" to run it
	}{
		{"non-streamed", chatBody("spend tokens", false), ""},
		{"streamed with include_usage", fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"spend tokens"}],"stream":true,"stream_options":{"include_usage":true}}`, modelID), ""},
		{"streamed without include_usage", chatBody("spend tokens", true), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.reason != "" {
				t.Skip("known gap: " + tc.reason)
			}
			// One token per minute: the first answer uses more, so the
			// next request is over the limit.
			double, srv := authServer(t, apiKeysAuth()+`  quota:
    authenticated_max_requests: 1000
    authenticated_tokens_per_minute: 1
`)
			code, _, b := call(t, "POST", srv.URL+"/v1/chat/completions", teamAKey, tc.body)
			if code != 200 {
				t.Fatalf("first request: %d %s", code, b)
			}
			before := chatAttempts(double)
			code, h, b := call(t, "POST", srv.URL+"/v1/chat/completions", teamAKey, tc.body)
			if code != 429 {
				t.Fatalf("second request: %d, want 429: %s", code, b)
			}
			if ra, err := strconv.Atoi(h.Get("Retry-After")); err != nil || ra < 1 || ra > 60 {
				t.Errorf("Retry-After = %q", h.Get("Retry-After"))
			}
			if e := decodeErrorBody(t, b); e.Error.Message != "Quota exceeded: 1 tokens per minute" {
				t.Errorf("429: %s", b)
			}
			if got := chatAttempts(double) - before; got != 0 {
				t.Errorf("the refused request reached the upstream")
			}
			// Another principal has its own budget.
			if code, _, b := call(t, "POST", srv.URL+"/v1/chat/completions", teamBKey, tc.body); code != 200 {
				t.Errorf("team B: %d %s", code, b)
			}
			if got := scrape(t, srv.URL).get("llama_stack_quota_rejections_total", "kind", "tokens"); got != 1 {
				t.Errorf("quota_rejections_total{kind=tokens} = %v, want 1", got)
			}
		})
	}
}

// TestAuthCustomEndpoint: type custom asks an HTTP endpoint about each
// token; the endpoint's principal and attributes drive the access policy,
// its refusals are 401s and its failures 503s.
func TestAuthCustomEndpoint(t *testing.T) {
	type asked struct {
		APIKey  string `json:"api_key"`
		Request struct {
			Path    string            `json:"path"`
			Headers map[string]string `json:"headers"`
		} `json:"request"`
	}
	var mu sync.Mutex
	var seen []asked
	endpoint := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var a asked
		_ = json.NewDecoder(r.Body).Decode(&a)
		mu.Lock()
		seen = append(seen, a)
		mu.Unlock()
		switch a.APIKey {
		case "carol-token":
			_, _ = io.WriteString(w, `{"principal":"carol","attributes":{"teams":["a"]}}`)
		case "dave-token":
			_, _ = io.WriteString(w, `{"principal":"dave","attributes":{"teams":["b"]}}`)
		case "broken-token":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer endpoint.Close()
	auth := strings.Replace(apiKeysAuth(), apiKeysAuth()[:strings.Index(apiKeysAuth(), "    access_policy:")], `  auth:
    provider_config:
      type: custom
      endpoint: `+endpoint.URL+`/validate
`, 1)
	_, srv := authServer(t, auth)
	tests := []struct {
		token     string
		status    int
		code      string
		principal string
		sees120   bool
	}{
		{"carol-token", 200, "", "carol", true},
		{"dave-token", 200, "", "dave", false},
		{"stranger-token", 401, "invalid_api_key", "", false},
		{"broken-token", 503, "auth_unavailable", "", false},
		{"", 401, "invalid_api_key", "", false},
	}
	for _, tc := range tests {
		code, h, b := call(t, "GET", srv.URL+"/v1/models", tc.token, "")
		if code != tc.status {
			t.Fatalf("%q: %d, want %d: %s", tc.token, code, tc.status, b)
		}
		if tc.code != "" {
			if e := decodeErrorBody(t, b); e.code() != tc.code {
				t.Errorf("%q: %s", tc.token, b)
			}
		}
		if got, _ := accessRecord(t, srv, h.Get("X-Request-Id"))["principal"].(string); got != tc.principal {
			t.Errorf("%q: logged principal %q, want %q", tc.token, got, tc.principal)
		}
		if code == 200 {
			if got := slices.Contains(modelIDs(t, srv.URL, tc.token), model120); got != tc.sees120 {
				t.Errorf("%q sees the 120b model: %v", tc.token, got)
			}
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, a := range seen {
		if a.Request.Path != "/v1/models" || a.Request.Headers["authorization"] != "" {
			t.Errorf("the endpoint was asked %+v", a)
		}
	}
	noSecretInLogs(t, srv, "carol-token", "dave-token", "stranger-token", "broken-token")
}

// testPKI is a CA with a server certificate for 127.0.0.1 and a client
// certificate, as PEM files.
type testPKI struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
	client                    tls.Certificate
}

func newTestPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "llama e2e CA"}, NotBefore: time.Now().Add(-time.Hour),
		NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	leaf := func(serial int64, usage x509.ExtKeyUsage, ips []net.IP) ([]byte, *ecdsa.PrivateKey) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: "leaf"}, NotBefore: time.Now().Add(-time.Hour),
			NotAfter: time.Now().Add(time.Hour), ExtKeyUsage: []x509.ExtKeyUsage{usage}, IPAddresses: ips, KeyUsage: x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		return der, k
	}
	pemOf := func(typ string, b []byte) string { return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b})) }
	srvDER, srvKey := leaf(2, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP("127.0.0.1")})
	srvKeyDER, _ := x509.MarshalECPrivateKey(srvKey)
	cliDER, cliKey := leaf(3, x509.ExtKeyUsageClientAuth, nil)
	cliKeyDER, _ := x509.MarshalECPrivateKey(cliKey)
	client, err := tls.X509KeyPair([]byte(pemOf("CERTIFICATE", cliDER)), []byte(pemOf("EC PRIVATE KEY", cliKeyDER)))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return testPKI{
		caFile:   writeFile(t, "ca.pem", pemOf("CERTIFICATE", caDER)),
		certFile: writeFile(t, "server.pem", pemOf("CERTIFICATE", srvDER)),
		keyFile:  writeFile(t, "server-key.pem", pemOf("EC PRIVATE KEY", srvKeyDER)),
		pool:     pool,
		client:   client,
	}
}

// TestServerTLSAndBodyLimit: server.tls_certfile and tls_keyfile serve
// HTTPS (plain HTTP is refused), tls_cafile also requires a client
// certificate signed by that CA, and server.max_request_body_bytes bounds
// request bodies (413).
func TestServerTLSAndBodyLimit(t *testing.T) {
	pki := newTestPKI(t)
	tests := []struct {
		name       string
		mutual     bool
		clientCert bool
		handshake  bool // the TLS handshake succeeds
	}{
		{"tls", false, false, true},
		{"mutual tls with a client certificate", true, true, true},
		{"mutual tls without a client certificate", true, false, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			server := "  max_request_body_bytes: 2048\n  tls_certfile: " + pki.certFile + "\n  tls_keyfile: " + pki.keyFile + "\n"
			if tc.mutual {
				server += "  tls_cafile: " + pki.caFile + "\n"
			}
			_, srv := authServer(t, server)
			base := strings.Replace(srv.URL, "http://", "https://", 1)
			tlsCfg := &tls.Config{RootCAs: pki.pool, MinVersion: tls.VersionTLS12}
			if tc.clientCert {
				tlsCfg.Certificates = []tls.Certificate{pki.client}
			}
			// Keep-alive, as the SDKs: the server then reads and drops the
			// rest of a body it refused, so the client reads the 413
			// rather than a reset.
			tr := &http.Transport{TLSClientConfig: tlsCfg}
			defer tr.CloseIdleConnections()
			c := &http.Client{Transport: tr}
			post := func(body string) (int, []byte, error) {
				resp, err := c.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
				if err != nil {
					return 0, nil, err
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, b, nil
			}
			code, b, err := post(chatBody("Which planet do humans live on?", false))
			if !tc.handshake {
				if err == nil {
					t.Fatalf("served without a client certificate: %d", code)
				}
				return
			}
			if err != nil || code != 200 {
				t.Fatalf("over TLS: %d %s %v", code, b, err)
			}
			code, b, err = post(chatBody(strings.Repeat("long ", 1000), false))
			if err != nil || code != http.StatusRequestEntityTooLarge {
				t.Fatalf("5 KB body: %d %s %v", code, b, err)
			}
			if e := decodeErrorBody(t, b); e.code() != "request_too_large" || e.Error.Message != "request body is larger than the server's limit of 2048 bytes" {
				t.Errorf("413: %s", b)
			}
			// Plain HTTP to the TLS port is answered 400 by the TLS layer
			// and reaches no handler.
			resp, err := faultClient.Get(srv.URL + "/v1/health")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusBadRequest {
				t.Errorf("plain HTTP to the TLS port: %d", resp.StatusCode)
			}
		})
	}
}
