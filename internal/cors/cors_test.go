package cors

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// reached marks responses that came from the wrapped handler.
const reached = "X-Reached"

func serve(t *testing.T, cfg *config.CORSConfig, method string, headers map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := c.Wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set(reached, "yes")
		w.WriteHeader(http.StatusUnauthorized) // as the auth middleware would
	}))
	r := httptest.NewRequest(method, "/v1/chat/completions", nil)
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func cfgWith(f func(c *config.CORSConfig)) *config.CORSConfig {
	c := config.DefaultCORS()
	f(&c)
	return &c
}

func TestCORS(t *testing.T) {
	dev := config.DevCORS()
	explicit := cfgWith(func(c *config.CORSConfig) {
		c.AllowOrigins = []string{"https://app.example.com"}
		c.AllowMethods = []string{"GET", "POST"}
		c.AllowHeaders = []string{"Authorization", "X-Custom"}
		c.AllowCredentials = true
		c.ExposeHeaders = []string{"X-Request-Id", "Retry-After"}
		c.MaxAge = 3600
	})
	wildcard := cfgWith(func(c *config.CORSConfig) {
		c.AllowOrigins = []string{"*"}
		c.AllowMethods = []string{"*"}
		c.AllowHeaders = []string{"*"}
	})
	preflight := func(origin, method, headers string) map[string]string {
		m := map[string]string{"Origin": origin, "Access-Control-Request-Method": method}
		if headers != "" {
			m["Access-Control-Request-Headers"] = headers
		}
		return m
	}
	tests := []struct {
		name    string
		cfg     *config.CORSConfig
		method  string
		headers map[string]string
		status  int
		want    map[string]string // "" means the header must be absent
		body    string
	}{
		{
			name: "dev preflight from localhost", cfg: &dev, method: http.MethodOptions,
			headers: preflight("http://localhost:3000", "POST", "content-type, authorization"),
			status:  http.StatusNoContent,
			want: map[string]string{
				"Access-Control-Allow-Origin":      "http://localhost:3000",
				"Access-Control-Allow-Methods":     "GET, POST, PUT, DELETE, OPTIONS",
				"Access-Control-Allow-Headers":     "Accept, Accept-Language, Authorization, Content-Language, Content-Type, X-Requested-With",
				"Access-Control-Max-Age":           "600",
				"Access-Control-Allow-Credentials": "",
				"Vary":                             "Origin",
				reached:                            "",
			},
		},
		{
			name: "dev regex must match the whole origin", cfg: &dev, method: http.MethodOptions,
			headers: preflight("http://localhost:3000.evil.com", "POST", ""),
			status:  http.StatusBadRequest, body: "Disallowed CORS origin",
			want: map[string]string{"Access-Control-Allow-Origin": "", reached: ""},
		},
		{
			name: "dev simple request", cfg: &dev, method: http.MethodPost,
			headers: map[string]string{"Origin": "https://localhost:8080"},
			status:  http.StatusUnauthorized,
			want:    map[string]string{"Access-Control-Allow-Origin": "https://localhost:8080", "Vary": "Origin", reached: "yes"},
		},
		{
			name: "disallowed simple request passes without headers", cfg: &dev, method: http.MethodGet,
			headers: map[string]string{"Origin": "https://evil.example.com"},
			status:  http.StatusUnauthorized,
			want:    map[string]string{"Access-Control-Allow-Origin": "", "Vary": "Origin", reached: "yes"},
		},
		{
			name: "no origin", cfg: explicit, method: http.MethodGet,
			status: http.StatusUnauthorized,
			want:   map[string]string{"Access-Control-Allow-Origin": "", "Vary": "Origin", reached: "yes"},
		},
		{
			name: "OPTIONS without a requested method is not a preflight", cfg: explicit, method: http.MethodOptions,
			headers: map[string]string{"Origin": "https://app.example.com"},
			status:  http.StatusUnauthorized,
			want:    map[string]string{"Access-Control-Allow-Origin": "https://app.example.com", reached: "yes"},
		},
		{
			name: "credentials preflight", cfg: explicit, method: http.MethodOptions,
			headers: preflight("https://app.example.com", "POST", "X-Custom"),
			status:  http.StatusNoContent,
			want: map[string]string{
				"Access-Control-Allow-Origin":      "https://app.example.com",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Allow-Methods":     "GET, POST",
				"Access-Control-Allow-Headers":     "Accept, Accept-Language, Authorization, Content-Language, Content-Type, X-Custom",
				"Access-Control-Max-Age":           "3600",
			},
		},
		{
			name: "method and headers not allowed", cfg: explicit, method: http.MethodOptions,
			headers: preflight("https://app.example.com", "DELETE", "X-Other"),
			status:  http.StatusBadRequest, body: "Disallowed CORS method, headers",
		},
		{
			name: "origin, method and headers not allowed", cfg: explicit, method: http.MethodOptions,
			headers: preflight("https://other.example.com", "PUT", "x-other"),
			status:  http.StatusBadRequest, body: "Disallowed CORS origin, method, headers",
			want: map[string]string{"Access-Control-Allow-Origin": ""},
		},
		{
			name: "credentials simple request", cfg: explicit, method: http.MethodGet,
			headers: map[string]string{"Origin": "https://app.example.com"},
			status:  http.StatusUnauthorized,
			want: map[string]string{
				"Access-Control-Allow-Origin":      "https://app.example.com",
				"Access-Control-Allow-Credentials": "true",
				"Access-Control-Expose-Headers":    "X-Request-Id, Retry-After",
				"Vary":                             "Origin",
			},
		},
		{
			name: "wildcard preflight", cfg: wildcard, method: http.MethodOptions,
			headers: preflight("https://anything.example", "PATCH", "X-Whatever, Authorization"),
			status:  http.StatusNoContent,
			want: map[string]string{
				"Access-Control-Allow-Origin":  "*",
				"Access-Control-Allow-Methods": "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT",
				"Access-Control-Allow-Headers": "X-Whatever, Authorization",
				"Vary":                         "",
			},
		},
		{
			name: "wildcard simple request", cfg: wildcard, method: http.MethodGet,
			headers: map[string]string{"Origin": "https://anything.example"},
			status:  http.StatusUnauthorized,
			want:    map[string]string{"Access-Control-Allow-Origin": "*", "Vary": "", "Access-Control-Allow-Credentials": ""},
		},
		{
			name: "wildcard with a cookie echoes the origin", cfg: wildcard, method: http.MethodGet,
			headers: map[string]string{"Origin": "https://anything.example", "Cookie": "a=b"},
			status:  http.StatusUnauthorized,
			want:    map[string]string{"Access-Control-Allow-Origin": "https://anything.example", "Vary": "Origin"},
		},
		{
			name: "default methods allow only OPTIONS", cfg: cfgWith(func(c *config.CORSConfig) { c.AllowOrigins = []string{"https://a.example"} }), method: http.MethodOptions,
			headers: preflight("https://a.example", "GET", ""),
			status:  http.StatusBadRequest, body: "Disallowed CORS method",
		},
		{
			name: "disabled", cfg: &config.CORSConfig{Disabled: true}, method: http.MethodOptions,
			headers: preflight("http://localhost:3000", "POST", ""),
			status:  http.StatusUnauthorized,
			want:    map[string]string{"Access-Control-Allow-Origin": "", "Vary": "", reached: "yes"},
		},
		{
			name: "absent", cfg: nil, method: http.MethodGet,
			headers: map[string]string{"Origin": "http://localhost:3000"},
			status:  http.StatusUnauthorized,
			want:    map[string]string{"Access-Control-Allow-Origin": "", reached: "yes"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := serve(t, tt.cfg, tt.method, tt.headers)
			if w.Code != tt.status {
				t.Errorf("status = %d, want %d", w.Code, tt.status)
			}
			for k, v := range tt.want {
				if got := w.Header().Get(k); got != v {
					t.Errorf("%s = %q, want %q", k, got, v)
				}
			}
			if tt.body != "" && w.Body.String() != tt.body {
				t.Errorf("body = %q, want %q", w.Body, tt.body)
			}
		})
	}
}

func TestNew(t *testing.T) {
	if _, err := New(cfgWith(func(c *config.CORSConfig) { c.AllowOriginRegex = "(" })); err == nil {
		t.Error("bad regex accepted")
	}
	for _, cfg := range []*config.CORSConfig{nil, {Disabled: true}} {
		c, err := New(cfg)
		if err != nil || c.Enabled() {
			t.Errorf("New(%+v) = enabled %v, %v", cfg, c.Enabled(), err)
		}
		next := http.NotFoundHandler()
		if h := c.Wrap(next); h == nil {
			t.Error("Wrap returned nil")
		}
	}
	dev := config.DevCORS()
	if c, _ := New(&dev); !c.Enabled() {
		t.Error("dev config not enabled")
	}
}
