package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

func TestContext(t *testing.T) {
	ctx := t.Context()
	if p, ok := FromContext(ctx); ok || p != nil {
		t.Errorf("FromContext(empty) = %v, %v", p, ok)
	}
	want := &Principal{ID: "alice"}
	p, ok := FromContext(WithPrincipal(ctx, want))
	if !ok || p != want {
		t.Errorf("FromContext = %v, %v", p, ok)
	}
	if p, ok := FromContext(WithPrincipal(ctx, nil)); ok || p != nil {
		t.Errorf("FromContext(nil principal) = %v, %v", p, ok)
	}
}

func TestError(t *testing.T) {
	cause := errors.New("jwks: status 500")
	e := &Error{Kind: ErrUnavailable, Message: "Authentication service unavailable", Err: cause}
	if !errors.Is(e, ErrUnavailable) || !errors.Is(e, cause) || errors.Is(e, ErrUnauthenticated) {
		t.Error("errors.Is does not see the kind and the cause")
	}
	if got, want := e.Error(), "Authentication service unavailable: jwks: status 500"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	for kind, status := range map[error]int{ErrUnauthenticated: 401, ErrForbidden: 403, ErrUnavailable: 503} {
		if got := (&Error{Kind: kind}).StatusCode(); got != status {
			t.Errorf("StatusCode(%v) = %d, want %d", kind, got, status)
		}
	}
	var ae *Error
	if err := error(Forbidden("no")); !errors.As(err, &ae) || ae.StatusCode() != 403 || ae.Message != "no" {
		t.Errorf("Forbidden = %+v", ae)
	}
}

func TestAnonymous(t *testing.T) {
	for _, cfg := range []*config.AuthConfig{nil, {}, {RoutePolicy: []config.RouteRule{{Permit: &config.RouteScope{Paths: config.StringList{"*"}}}}}} {
		a, err := New(cfg, Options{})
		if err != nil {
			t.Fatal(err)
		}
		p, err := a.Authenticate(t.Context(), request(""))
		if p != nil || err != nil {
			t.Errorf("anonymous Authenticate = %v, %v", p, err)
		}
	}
	if _, err := New(&config.AuthConfig{ProviderConfig: &config.AuthProviderConfig{Type: config.AuthCustom}}, Options{}); err == nil {
		t.Error("New accepted a provider config without settings")
	}
}

func keysConfig(t *testing.T) *config.AuthConfig {
	t.Helper()
	sum := sha256.Sum256([]byte("ci-key-0123456789abcdef0123456789abcdef"))
	return &config.AuthConfig{ProviderConfig: &config.AuthProviderConfig{
		Type: config.AuthAPIKeys,
		APIKeys: &config.APIKeysAuthConfig{Keys: []config.APIKey{
			{Key: "team-a-key-0123456789abcdef0123456789", Principal: "team-a", Attributes: map[string][]string{"roles": {"user"}}},
			{KeySHA256: hex.EncodeToString(sum[:]), Principal: "ci"},
			{Key: "team-a-second-key-0123456789abcdef", Principal: "team-a"},
		}},
	}}
}

func TestAPIKeys(t *testing.T) {
	a, err := New(keysConfig(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		header string
		id     string
		kind   error
		msg    string
	}{
		{header: "Bearer team-a-key-0123456789abcdef0123456789", id: "team-a"},
		{header: "bearer team-a-key-0123456789abcdef0123456789", id: "team-a"},
		{header: "Bearer   team-a-second-key-0123456789abcdef", id: "team-a"},
		{header: "Bearer ci-key-0123456789abcdef0123456789abcdef", id: "ci"},
		{header: "Bearer team-a-key-0123456789abcdef012345678", kind: ErrUnauthenticated, msg: "Invalid API key"},
		{header: "Bearer " + hex.EncodeToString(make([]byte, 32)), kind: ErrUnauthenticated, msg: "Invalid API key"},
		{header: "", kind: ErrUnauthenticated, msg: "Authentication required"},
		{header: "team-a-key-0123456789abcdef0123456789", kind: ErrUnauthenticated, msg: errBadAuthHeader},
		{header: "Token team-a-key-0123456789abcdef0123456789", kind: ErrUnauthenticated, msg: errBadAuthHeader},
	}
	for _, tt := range tests {
		p, err := a.Authenticate(t.Context(), request(tt.header))
		if tt.kind != nil {
			wantKind(t, err, tt.kind, tt.msg)
			if strings.Contains(err.Error(), "key-0123") {
				t.Errorf("error shows the key: %v", err)
			}
			continue
		}
		if err != nil || p.ID != tt.id {
			t.Errorf("%q: principal %v, error %v; want %s", tt.header, p, err, tt.id)
		}
	}
	// Principals are copies: a handler changing one does not change the
	// next request's.
	p, _ := a.Authenticate(t.Context(), request("Bearer team-a-key-0123456789abcdef0123456789"))
	p.Attributes["roles"][0] = "admin"
	p, _ = a.Authenticate(t.Context(), request("Bearer team-a-key-0123456789abcdef0123456789"))
	if got := p.Attributes["roles"]; !reflect.DeepEqual(got, []string{"user"}) {
		t.Errorf("roles = %v after a handler changed a copy", got)
	}
}

// customServer is a fake custom authentication endpoint.
type customServer struct {
	*httptest.Server
	calls atomic.Int64
	last  atomic.Value // customRequest
}

func newCustomServer(t *testing.T) *customServer {
	t.Helper()
	s := &customServer{}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.calls.Add(1)
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" {
			w.WriteHeader(http.StatusMethodNotAllowed)
			return
		}
		var req customRequest
		if err := json.NewDecoder(r.Body).Decode(&req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.last.Store(req)
		switch req.APIKey {
		case "good":
			_, _ = io.WriteString(w, `{"principal": "alice", "attributes": {"roles": ["admin"], "teams": ["ml"]}, "message": "ok"}`)
		case "no-attrs":
			_, _ = io.WriteString(w, `{"principal": "bob"}`)
		case "bad":
			w.WriteHeader(http.StatusUnauthorized)
		case "forbidden":
			w.WriteHeader(http.StatusForbidden)
		case "boom":
			w.WriteHeader(http.StatusInternalServerError)
		case "garbage":
			_, _ = io.WriteString(w, `<html>`)
		case "no-principal":
			_, _ = io.WriteString(w, `{"attributes": {}}`)
		case "redirect":
			http.Redirect(w, r, "/elsewhere", http.StatusTemporaryRedirect)
		case "slow":
			<-r.Context().Done()
		}
	}))
	t.Cleanup(s.Close)
	return s
}

func customConfig(endpoint string) *config.AuthConfig {
	return &config.AuthConfig{ProviderConfig: &config.AuthProviderConfig{Type: config.AuthCustom, Custom: &config.CustomAuthConfig{Type: config.AuthCustom, Endpoint: endpoint}}}
}

func TestCustom(t *testing.T) {
	srv := newCustomServer(t)
	a, err := New(customConfig(srv.URL+"/validate"), Options{HTTPClient: srv.Client(), Timeout: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	tests := []struct {
		token string
		id    string
		attrs map[string][]string
		kind  error
		msg   string
	}{
		{token: "good", id: "alice", attrs: map[string][]string{"roles": {"admin"}, "teams": {"ml"}}},
		{token: "no-attrs", id: "bob", attrs: map[string][]string{}},
		{token: "bad", kind: ErrUnauthenticated, msg: "Authentication failed: 401"},
		{token: "forbidden", kind: ErrUnauthenticated, msg: "Authentication failed: 403"},
		{token: "redirect", kind: ErrUnauthenticated, msg: "Authentication failed: 307"},
		{token: "boom", kind: ErrUnavailable, msg: "Authentication service error"},
		{token: "garbage", kind: ErrUnavailable, msg: "Invalid authentication response format"},
		{token: "no-principal", kind: ErrUnavailable, msg: "Invalid authentication response format"},
		{token: "slow", kind: ErrUnavailable, msg: "Authentication service timeout"},
		{token: "", kind: ErrUnauthenticated, msg: "Authentication required. Please provide your API key as a Bearer token (validated by " + host + ")"},
	}
	for _, tt := range tests {
		t.Run(tt.token, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/v1/chat/completions?limit=100&offset=0&empty=&limit=5", strings.NewReader("{}"))
			if tt.token != "" {
				r.Header.Set("Authorization", "Bearer "+tt.token)
			}
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("X-LlamaStack-Provider-Data", `{"aws_bearer_token_bedrock": "secret"}`)
			r.Header.Set("Proxy-Authorization", "Basic eA==")
			r.Header.Add("X-Multi", "a")
			r.Header.Add("X-Multi", "b")
			p, err := a.Authenticate(t.Context(), r)
			if tt.kind != nil {
				wantKind(t, err, tt.kind, tt.msg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.ID != tt.id || !reflect.DeepEqual(p.Attributes, tt.attrs) {
				t.Errorf("principal = %+v", p)
			}
			got := srv.last.Load().(customRequest)
			want := customRequestContext{
				Path:    "/v1/chat/completions",
				Headers: map[string]string{"content-type": "application/json", "x-multi": "a, b"},
				Params:  map[string][]string{"limit": {"100", "5"}, "offset": {"0"}},
			}
			if got.APIKey != tt.token || !reflect.DeepEqual(got.Request, want) {
				t.Errorf("endpoint got %+v, want api_key %q and %+v", got, tt.token, want)
			}
		})
	}

	// The endpoint is down: 503.
	down := httptest.NewServer(http.NotFoundHandler())
	url := down.URL
	down.Close()
	a2, err := New(customConfig(url), Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, err = a2.Authenticate(t.Context(), request("Bearer good"))
	wantKind(t, err, ErrUnavailable, "Authentication service error")

	// The client goes away while its token is being checked: a context
	// error, not an authentication failure.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = a.Authenticate(ctx, request("Bearer good").WithContext(ctx))
	var ae *Error
	if !errors.Is(err, context.Canceled) || errors.As(err, &ae) {
		t.Errorf("canceled request: %v", err)
	}
}

func TestCustomCache(t *testing.T) {
	srv := newCustomServer(t)
	clk := newClock()
	a, err := New(customConfig(srv.URL), Options{HTTPClient: srv.Client(), Now: clk.Now, CacheTTL: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	call := func(token, target string) error {
		r := httptest.NewRequest(http.MethodGet, target, nil)
		r.Header.Set("Authorization", "Bearer "+token)
		_, err := a.Authenticate(t.Context(), r)
		return err
	}
	for range 3 {
		if err := call("good", "/v1/models"); err != nil {
			t.Fatal(err)
		}
	}
	if n := srv.calls.Load(); n != 1 {
		t.Errorf("calls = %d, want 1 (cached)", n)
	}
	// Another path is another decision.
	if err := call("good", "/v1/chat/completions"); err != nil {
		t.Fatal(err)
	}
	if n := srv.calls.Load(); n != 2 {
		t.Errorf("calls = %d, want 2", n)
	}
	// Failures are not cached.
	for range 2 {
		if err := call("bad", "/v1/models"); err == nil {
			t.Fatal("bad token accepted")
		}
	}
	if n := srv.calls.Load(); n != 4 {
		t.Errorf("calls = %d, want 4", n)
	}
	clk.Advance(time.Minute)
	if err := call("good", "/v1/models"); err != nil {
		t.Fatal(err)
	}
	if n := srv.calls.Load(); n != 5 {
		t.Errorf("calls after expiry = %d, want 5", n)
	}
}

func TestCacheBound(t *testing.T) {
	clk := newClock()
	c := newCache(time.Minute, clk.Now)
	for i := range maxCacheEntries + 10 {
		c.put(tokenKey(string(rune(i))), &Principal{ID: "x"})
	}
	if n := len(c.entries); n > maxCacheEntries {
		t.Errorf("cache holds %d entries", n)
	}
}

func TestIntrospection(t *testing.T) {
	var gotForm atomic.Value
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		user, pass, basic := r.BasicAuth()
		gotForm.Store(url.Values(r.PostForm).Encode() + " basic=" + user + ":" + pass + ":" + map[bool]string{true: "yes", false: "no"}[basic])
		switch r.PostForm.Get("token") {
		case "active":
			_, _ = io.WriteString(w, `{"active": true, "sub": "svc-1", "scope": "read write", "groups": ["g"]}`)
		case "username":
			_, _ = io.WriteString(w, `{"active": true, "username": "bob"}`)
		case "inactive":
			_, _ = io.WriteString(w, `{"active": false}`)
		case "error":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			w.WriteHeader(http.StatusBadRequest)
		}
	}))
	defer srv.Close()
	mk := func(inBody bool) Authenticator {
		cfg := &config.AuthConfig{ProviderConfig: &config.AuthProviderConfig{Type: config.AuthOAuth2Token, OAuth2Token: &config.OAuth2TokenAuthConfig{
			Audience: "ogx", VerifyTLS: true, ClaimsMapping: map[string]string{"scope": "scopes", "groups": "teams"},
			Introspection: &config.OAuth2IntrospectionConfig{URL: srv.URL, ClientID: "gw", ClientSecret: "s3cret", SendSecretInBody: inBody},
		}}}
		a, err := New(cfg, Options{HTTPClient: srv.Client()})
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	a := mk(false)
	p, err := a.Authenticate(t.Context(), request("Bearer active"))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "svc-1" || !reflect.DeepEqual(p.Attributes, map[string][]string{"scopes": {"read", "write"}, "teams": {"g"}}) {
		t.Errorf("principal = %+v", p)
	}
	if got := gotForm.Load(); got != "token=active basic=gw:s3cret:yes" {
		t.Errorf("introspection request = %v", got)
	}
	if p, err := mk(true).Authenticate(t.Context(), request("Bearer username")); err != nil || p.ID != "bob" {
		t.Errorf("username principal = %v, %v", p, err)
	}
	if got := gotForm.Load(); got != "client_id=gw&client_secret=s3cret&token=username basic=::no" {
		t.Errorf("introspection request with secret in body = %v", got)
	}
	_, err = a.Authenticate(t.Context(), request("Bearer inactive"))
	wantKind(t, err, ErrUnauthenticated, "Token not active")
	_, err = a.Authenticate(t.Context(), request("Bearer other"))
	wantKind(t, err, ErrUnauthenticated, "Token introspection failed: 400")
	_, err = a.Authenticate(t.Context(), request("Bearer error"))
	wantKind(t, err, ErrUnavailable, "Token introspection error")
	if strings.Contains(err.Error(), "s3cret") {
		t.Errorf("error shows the client secret: %v", err)
	}
}

func TestGitHub(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/v3/user" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		switch r.Header.Get("Authorization") {
		case "Bearer gho_good":
			_, _ = io.WriteString(w, `{"login": "octocat", "id": 583231}`)
		case "Bearer gho_down":
			w.WriteHeader(http.StatusBadGateway)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	cfg := &config.AuthConfig{ProviderConfig: &config.AuthProviderConfig{Type: config.AuthGitHubToken, GitHubToken: &config.GitHubTokenAuthConfig{
		GitHubAPIBaseURL: srv.URL + "/api/v3/", ClaimsMapping: map[string]string{"login": "roles", "id": "ids", "organizations": "teams"},
	}}}
	a, err := New(cfg, Options{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(t.Context(), request("Bearer gho_good"))
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != "octocat" || !reflect.DeepEqual(p.Attributes, map[string][]string{"roles": {"octocat"}, "ids": {"583231"}, "teams": {}}) {
		t.Errorf("principal = %+v", p)
	}
	_, err = a.Authenticate(t.Context(), request("Bearer gho_bad"))
	wantKind(t, err, ErrUnauthenticated, "GitHub token validation failed")
	_, err = a.Authenticate(t.Context(), request("Bearer gho_down"))
	wantKind(t, err, ErrUnavailable, "")
	_, err = a.Authenticate(t.Context(), request(""))
	wantKind(t, err, ErrUnauthenticated, "GitHub access token")
}

func TestKubernetes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/apis/authentication.k8s.io/v1/selfsubjectreviews" {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		body, _ := io.ReadAll(r.Body)
		if !strings.Contains(string(body), `"kind":"SelfSubjectReview"`) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		switch r.Header.Get("Authorization") {
		case "Bearer sa-token":
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"status": {"userInfo": {"username": "system:serviceaccount:ns:sa", "groups": ["system:serviceaccounts", "system:authenticated"]}}}`)
		case "Bearer forbidden":
			w.WriteHeader(http.StatusForbidden)
		case "Bearer empty":
			w.WriteHeader(http.StatusCreated)
			_, _ = io.WriteString(w, `{"status": {}}`)
		default:
			w.WriteHeader(http.StatusUnauthorized)
		}
	}))
	defer srv.Close()
	cfg := &config.AuthConfig{ProviderConfig: &config.AuthProviderConfig{Type: config.AuthKubernetes, Kubernetes: &config.KubernetesAuthConfig{
		APIServerURL: srv.URL, VerifyTLS: true, ClaimsMapping: map[string]string{"username": "roles", "groups": "roles"},
	}}}
	a, err := New(cfg, Options{HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := a.Authenticate(t.Context(), request("Bearer sa-token"))
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"system:serviceaccounts", "system:authenticated", "system:serviceaccount:ns:sa"}; p.ID != "system:serviceaccount:ns:sa" || !reflect.DeepEqual(p.Attributes["roles"], want) {
		t.Errorf("principal = %+v", p)
	}
	_, err = a.Authenticate(t.Context(), request("Bearer nope"))
	wantKind(t, err, ErrUnauthenticated, "Invalid token")
	_, err = a.Authenticate(t.Context(), request("Bearer forbidden"))
	wantKind(t, err, ErrUnauthenticated, "Token validation failed: 403")
	_, err = a.Authenticate(t.Context(), request("Bearer empty"))
	wantKind(t, err, ErrUnavailable, "Token validation error")
}

func TestUpstreamHeader(t *testing.T) {
	cfg := &config.AuthConfig{ProviderConfig: &config.AuthProviderConfig{Type: config.AuthUpstreamHeader, UpstreamHeader: &config.UpstreamHeaderAuthConfig{
		PrincipalHeader: "X-Auth-User", AttributesHeader: "X-Auth-Attrs",
	}}}
	a, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		user, attrs string
		want        *Principal
		msg         string
	}{
		{user: "alice", want: &Principal{ID: "alice", Attributes: map[string][]string{}}},
		{user: "alice", attrs: `{"roles": ["admin", 1], "teams": "ml", "n": 2}`, want: &Principal{ID: "alice", Attributes: map[string][]string{"roles": {"admin", "1"}, "teams": {"ml"}, "n": {"2"}}}},
		{attrs: `{}`, msg: "Upstream gateway must set the X-Auth-User header"},
		{user: "alice", attrs: `[1]`, msg: "expected JSON object"},
		{user: "alice", attrs: `{`, msg: "invalid JSON"},
	}
	for _, tt := range tests {
		r := request("")
		if tt.user != "" {
			r.Header.Set("x-auth-user", tt.user)
		}
		if tt.attrs != "" {
			r.Header.Set("x-auth-attrs", tt.attrs)
		}
		p, err := a.Authenticate(t.Context(), r)
		if tt.want == nil {
			wantKind(t, err, ErrUnauthenticated, tt.msg)
			continue
		}
		if err != nil || !reflect.DeepEqual(p, tt.want) {
			t.Errorf("%+v: got %+v, %v", tt, p, err)
		}
	}
}

func TestBearer(t *testing.T) {
	for _, tt := range []struct {
		header, token string
		ok            bool
	}{
		{"Bearer abc", "abc", true},
		{"BEARER abc", "abc", true},
		{"Bearer    abc", "abc", true},
		{"Bearer abc ", "", false},
		{"Bearer", "", false},
		{"Bearerabc", "", false},
		{"Basic abc", "", false},
		{"Bearer a\tb", "", false},
	} {
		token, err := bearer(request(tt.header), "missing")
		if tt.ok != (err == nil) || token != tt.token {
			t.Errorf("bearer(%q) = %q, %v", tt.header, token, err)
		}
	}
}

func FuzzBearer(f *testing.F) {
	for _, s := range []string{"Bearer abc", "bearer  x", "Basic dXNlcjpwYXNz", "Bearer", "Bearer \x00", "", " Bearer x", "Bearer a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := &http.Request{Header: http.Header{"Authorization": {h}}}
		token, err := bearer(r, "missing")
		if err != nil {
			var ae *Error
			if !errors.As(err, &ae) || ae.Kind != ErrUnauthenticated || token != "" {
				t.Fatalf("bearer(%q) = %q, %v", h, token, err)
			}
			// Nothing of the header reaches the error: its text is fixed.
			if ae.Err != nil || ae.Message != "missing" && ae.Message != errBadAuthHeader {
				t.Fatalf("bearer(%q) error = %v", h, ae)
			}
			return
		}
		if token == "" || strings.ContainsAny(token, " \t") || !strings.HasSuffix(h, token) || !strings.EqualFold(h[:6], "bearer") {
			t.Fatalf("bearer(%q) = %q", h, token)
		}
	})
}

func FuzzAttributesHeader(f *testing.F) {
	for _, s := range []string{`{}`, `{"roles": ["a", "b"]}`, `{"a": "b", "c": 1, "d": null, "e": [true, {"x": 1}]}`, `[]`, `"x"`, `{`, `null`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		attrs, err := parseAttributesHeader(s)
		if err != nil {
			if attrs != nil {
				t.Fatalf("attributes with an error")
			}
			return
		}
		var obj map[string]json.RawMessage
		if json.Unmarshal([]byte(s), &obj) != nil {
			t.Fatalf("accepted %q, which is not a JSON object", s)
		}
		if len(attrs) != len(obj) {
			t.Fatalf("%q gave %d attributes for %d members", s, len(attrs), len(obj))
		}
	})
}

// Tokens and configured secrets never reach the logs, whatever fails.
func TestNoSecretsInLogs(t *testing.T) {
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	down := httptest.NewServer(http.NotFoundHandler())
	downURL := down.URL
	down.Close()
	broken := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusInternalServerError)
	}))
	defer broken.Close()
	const token = "tok-SECRET-0123456789"
	testKeys(t)
	jwtToken := sign(t, jwt.SigningMethodRS256, rsaKey1, "k", time.Now(), nil)
	cfgs := []*config.AuthConfig{
		customConfig(downURL + "/validate?key=CFGSECRET"),
		customConfig(broken.URL),
		oauthConfig(downURL + "/jwks?key=CFGSECRET"),
		{ProviderConfig: &config.AuthProviderConfig{Type: config.AuthOAuth2Token, OAuth2Token: &config.OAuth2TokenAuthConfig{
			Audience: "ogx", VerifyTLS: true,
			Introspection: &config.OAuth2IntrospectionConfig{URL: broken.URL, ClientID: "gw", ClientSecret: "CFGSECRET"},
		}}},
		{ProviderConfig: &config.AuthProviderConfig{Type: config.AuthKubernetes, Kubernetes: &config.KubernetesAuthConfig{APIServerURL: downURL, VerifyTLS: true}}},
	}
	for _, cfg := range cfgs {
		a, err := New(cfg, Options{Logger: log})
		if err != nil {
			t.Fatal(err)
		}
		g := &Guard{Authenticator: a, Logger: log, WriteError: func(w http.ResponseWriter, _ *http.Request, err error) {
			log.Error("request failed", "error", err)
			w.WriteHeader(http.StatusUnauthorized)
		}}
		for _, tok := range []string{token, jwtToken} {
			g.Wrap(http.NotFoundHandler()).ServeHTTP(httptest.NewRecorder(), request("Bearer "+tok))
		}
	}
	out := logs.String()
	if !strings.Contains(out, "request failed") {
		t.Fatalf("nothing logged:\n%s", out)
	}
	if !strings.Contains(out, `msg="fetch jwks"`) {
		t.Errorf("jwks failure not logged:\n%s", out)
	}
	for _, secret := range []string{"SECRET", jwtToken} {
		if strings.Contains(out, secret) {
			t.Errorf("logs hold %q:\n%s", secret, out)
		}
	}
}
