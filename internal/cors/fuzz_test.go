package cors

import (
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// FuzzPreflight checks that whatever a preflight asks, the answer is 204
// only for an allowed origin and method, and never echoes a disallowed
// origin.
func FuzzPreflight(f *testing.F) {
	f.Add("http://localhost:3000", "POST", "content-type, authorization")
	f.Add("http://localhost:3000.evil", "GET", "")
	f.Add("https://app.example.com", "DELETE", "x-custom,,")
	f.Add("", "", ",")
	cfg := config.DevCORS()
	cfg.AllowOrigins = []string{"https://app.example.com"}
	c, err := New(&cfg)
	if err != nil {
		f.Fatal(err)
	}
	h := c.Wrap(http.NotFoundHandler())
	f.Fuzz(func(t *testing.T, origin, method, headers string) {
		r := httptest.NewRequest(http.MethodOptions, "/v1/models", nil)
		r.Header["Origin"] = []string{origin}
		r.Header["Access-Control-Request-Method"] = []string{method}
		r.Header["Access-Control-Request-Headers"] = []string{headers}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		allowed := c.allowed(origin)
		if got := w.Header().Get("Access-Control-Allow-Origin"); got != "" && (!allowed || got != origin) {
			t.Fatalf("origin %q answered with %q", origin, got)
		}
		if w.Code == http.StatusNoContent && (!allowed || origin == "") {
			t.Fatalf("preflight from %q method %q headers %q allowed", origin, method, headers)
		}
	})
}
