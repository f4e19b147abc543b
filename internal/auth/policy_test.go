package auth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// rules decodes access or route rules written in YAML, as a config would
// hold them.
func rules[T any](t *testing.T, doc string) []T {
	t.Helper()
	var out []T
	if err := yaml.Unmarshal([]byte(doc), &out); err != nil {
		t.Fatal(err)
	}
	return out
}

var (
	alice   = &Principal{ID: "alice", Attributes: map[string][]string{"roles": {"user"}, "teams": {"ml"}}}
	bob     = &Principal{ID: "bob", Attributes: map[string][]string{"roles": {"admin"}, "teams": {"infra"}}}
	carol   = &Principal{ID: "carol"}
	mlOwner = &Principal{ID: "dave", Attributes: map[string][]string{"teams": {"ml", "x"}}}
)

func model(id string, owner *Principal) Resource {
	return Resource{Type: "model", ID: id, Owner: owner}
}

func TestPolicy(t *testing.T) {
	policy := `
- permit: {principal: carol, actions: [read], resource: model::bedrock/gpt}
  description: carol may use one model
- forbid: {actions: [create, update, delete], resource: model::*}
  unless: user with admin in roles
- permit: {actions: [read], resource: "regex:model::bedrock/(llama|mistral)"}
  when: [user with user in roles, user with ml in teams]
- forbid: {actions: [read], resource: model::secret}
- permit: {actions: [read, create, update, delete]}
  when: user in owners teams
- permit: {actions: [read]}
  when: resource is unowned
  unless: user with nobody in roles
`
	// "when" and "unless" together are refused by config validation;
	// NewPolicy takes when first, like OGX.
	pol, err := NewPolicy(rules[config.AccessRule](t, policy))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		p      *Principal
		action string
		res    Resource
		want   bool
	}{
		{nil, ActionDelete, model("anything", nil), true}, // no authentication: everything
		{carol, ActionRead, model("bedrock/gpt", nil), true},
		{carol, ActionRead, model("bedrock/gpt-2", nil), true}, // unowned, rule 6
		{carol, ActionCreate, model("bedrock/gpt", nil), false},
		{alice, ActionCreate, model("m", nil), false},                                                                   // forbid unless admin
		{bob, ActionCreate, model("m", nil), false},                                                                     // admin: forbid skipped, then no permit for create on unowned
		{bob, ActionCreate, model("m", &Principal{ID: "x", Attributes: map[string][]string{"teams": {"infra"}}}), true}, // team owner
		{alice, ActionRead, model("bedrock/llama-3", nil), true},
		{alice, ActionRead, model("bedrock/llama-3-8b", mlOwner), true}, // regex anchored at the start only
		{alice, ActionRead, model("x/bedrock/llama", &Principal{ID: "x"}), false},
		{bob, ActionRead, model("bedrock/llama-3", &Principal{ID: "x"}), false}, // not in ml team, owned by someone else
		{alice, ActionRead, model("secret", nil), false},                        // forbidden before the unowned permit
		{alice, ActionUpdate, Resource{Type: "vector_store", ID: "v", Owner: mlOwner}, true},
		{alice, ActionUpdate, Resource{Type: "vector_store", ID: "v", Owner: bob}, false},
		{&Principal{ID: "z", Attributes: map[string][]string{"roles": {"nobody"}}}, ActionRead, model("q", nil), true}, // when wins over unless
		{carol, ActionRead, Resource{Type: "vector_store", ID: "v"}, true},
	}
	for i, tt := range tests {
		if got := pol.Allowed(tt.p, tt.action, tt.res); got != tt.want {
			t.Errorf("%d: Allowed(%v, %s, %s::%s) = %v, want %v", i, tt.p, tt.action, tt.res.Type, tt.res.ID, got, tt.want)
		}
	}
}

func TestDefaultPolicy(t *testing.T) {
	for _, pol := range []*Policy{nil, mustPolicy(t, nil)} {
		for i, tt := range []struct {
			p    *Principal
			res  Resource
			want bool
		}{
			{alice, model("m", nil), true},                  // unowned
			{alice, model("m", alice), true},                // owner
			{alice, model("m", mlOwner), true},              // shares a team
			{alice, model("m", bob), false},                 // shares nothing
			{carol, model("m", &Principal{ID: "x"}), false}, // no attributes either side
			{alice, model("m", &Principal{ID: "x", Attributes: map[string][]string{"roles": {"user"}}}), true},
			{alice, model("m", &Principal{ID: "x", Attributes: map[string][]string{"other": {"ml"}}}), false}, // only roles, teams, projects, namespaces
		} {
			for _, action := range []string{ActionCreate, ActionRead, ActionUpdate, ActionDelete} {
				if got := pol.Allowed(tt.p, action, tt.res); got != tt.want {
					t.Errorf("%d %s: Allowed = %v, want %v", i, action, got, tt.want)
				}
			}
		}
	}
}

func mustPolicy(t *testing.T, r []config.AccessRule) *Policy {
	t.Helper()
	p, err := NewPolicy(r)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPolicyConditions(t *testing.T) {
	for _, tt := range []struct {
		cond string
		p    *Principal
		res  Resource
		want bool
	}{
		{"user is owner", alice, model("m", alice), true},
		{"user is owner", alice, model("m", nil), false},
		{"user is not owner", alice, model("m", nil), true},
		{"user is not owner", alice, model("m", bob), true},
		{"user is not owner", alice, model("m", alice), false},
		{"user with user in roles", alice, model("m", nil), true},
		{"user with user in roles", carol, model("m", nil), false},
		{"user with admin not in roles", alice, model("m", nil), true},
		{"user with admin not in roles", carol, model("m", nil), true},
		{"user with admin not in roles", bob, model("m", nil), false},
		{"user in owners teams", alice, model("m", mlOwner), true},
		{"user in owners teams", alice, model("m", nil), false},
		{"user not in owners teams", alice, model("m", mlOwner), false},
		{"user not in owners teams", alice, model("m", nil), true},
		{"resource is unowned", alice, model("m", nil), true},
		{"resource is unowned", alice, model("m", bob), false},
	} {
		c, err := config.ParseCondition(tt.cond)
		if err != nil {
			t.Fatal(err)
		}
		if got := holds(c, tt.p, &tt.res); got != tt.want {
			t.Errorf("%q for %s on %v: %v, want %v", tt.cond, tt.p.ID, tt.res.Owner, got, tt.want)
		}
	}
}

func TestNewPolicyErrors(t *testing.T) {
	for _, doc := range []string{
		`[{when: user is owner}]`,
		`[{permit: {actions: read}, forbid: {actions: read}}]`,
		`[{permit: {actions: read, resource: "regex:("}}]`,
		`[{permit: {actions: read}, when: user is king}]`,
		`[{permit: {actions: read}, unless: [user is owner, nope]}]`,
	} {
		if _, err := NewPolicy(rules[config.AccessRule](t, doc)); err == nil {
			t.Errorf("NewPolicy(%s) succeeded", doc)
		}
	}
	for _, doc := range []string{
		`[{when: user is owner}]`,
		`[{permit: {paths: "*"}, forbid: {paths: "*"}}]`,
		`[{permit: {paths: "regex:("}}]`,
		`[{permit: {paths: "*"}, when: user is king}]`,
	} {
		if _, err := NewRoutePolicy(rules[config.RouteRule](t, doc)); err == nil {
			t.Errorf("NewRoutePolicy(%s) succeeded", doc)
		}
	}
}

func TestRoutePolicy(t *testing.T) {
	rp, err := NewRoutePolicy(rules[config.RouteRule](t, `
- forbid: {paths: "/v1/admin*"}
  unless: user with admin in roles
- permit: {paths: ["/v1/chat/completions", "/v1/models*"]}
  when: user with user in roles
- permit: {paths: "regex:/v1/(embeddings|completions)$"}
- permit: {paths: "/v1/health"}
- permit: {paths: "*"}
  when: user with admin in roles
`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		p    *Principal
		path string
		want bool
	}{
		{alice, "/v1/chat/completions", true},
		{alice, "/v1/chat/completions/", true},
		{alice, "/v1/models/bedrock/x", true},
		{alice, "/v1/responses", false},
		{alice, "/v1/admin/keys", false},
		{bob, "/v1/admin/keys", true},
		{bob, "/v1/responses", true},
		{carol, "/v1/embeddings", true},
		{carol, "/v1/embeddings/x", false}, // $ anchors the end
		{carol, "/v1/chat/completions", false},
		{nil, "/v1/health", true},
		{nil, "/v1/embeddings", true},
		{nil, "/v1/chat/completions", false}, // conditions never match anonymous callers
		{nil, "/v1/admin", false},
	} {
		if got := rp.Allowed(tt.p, tt.path); got != tt.want {
			t.Errorf("Allowed(%v, %q) = %v, want %v", tt.p, tt.path, got, tt.want)
		}
	}
	empty, err := NewRoutePolicy(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !empty.Empty() || !empty.Allowed(nil, "/anything") || !(*RoutePolicy)(nil).Allowed(alice, "/x") {
		t.Error("an empty route policy denies")
	}
	// OGX's "unless" on routes: the rule applies when none of the
	// conditions holds.
	rp, _ = NewRoutePolicy(rules[config.RouteRule](t, `[{forbid: {paths: "*"}, unless: [user with admin in roles, user with user in roles]}, {permit: {paths: "*"}}]`))
	if !rp.Allowed(alice, "/x") || !rp.Allowed(bob, "/x") || rp.Allowed(carol, "/x") {
		t.Error("route unless: want alice and bob allowed, carol denied")
	}
}

func TestGuard(t *testing.T) {
	a, err := New(keysConfig(t), Options{})
	if err != nil {
		t.Fatal(err)
	}
	rp, err := NewRoutePolicy(rules[config.RouteRule](t, `[{permit: {paths: "/v1/models"}, when: user with user in roles}]`))
	if err != nil {
		t.Fatal(err)
	}
	var seen *Principal
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen, _ = FromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	})
	g := &Guard{Authenticator: a, Routes: rp, WriteError: func(w http.ResponseWriter, _ *http.Request, err error) {
		var ae *Error
		status := http.StatusInternalServerError
		if errors.As(err, &ae) {
			status = ae.StatusCode()
		}
		http.Error(w, err.Error(), status)
	}}
	h := g.Wrap(next)
	for _, tt := range []struct {
		path, authz string
		status      int
		principal   string
	}{
		{"/v1/models", "Bearer team-a-key-0123456789abcdef0123456789", http.StatusNoContent, "team-a"},
		{"/v1/models", "", http.StatusUnauthorized, ""},
		{"/v1/models", "Bearer wrong", http.StatusUnauthorized, ""},
		{"/v1/models", "Bearer ci-key-0123456789abcdef0123456789abcdef", http.StatusForbidden, ""}, // ci has no user role
		{"/v1/chat/completions", "Bearer team-a-key-0123456789abcdef0123456789", http.StatusForbidden, ""},
		{"/v1/health", "", http.StatusNoContent, ""},
		{"/v1/version/", "Bearer wrong", http.StatusNoContent, ""}, // public: the header is not even looked at
	} {
		seen = nil
		r := httptest.NewRequest(http.MethodGet, tt.path, nil)
		if tt.authz != "" {
			r.Header.Set("Authorization", tt.authz)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != tt.status {
			t.Errorf("%s %q: status %d, want %d (%s)", tt.path, tt.authz, w.Code, tt.status, w.Body)
		}
		got := ""
		if seen != nil {
			got = seen.ID
		}
		if got != tt.principal {
			t.Errorf("%s: principal %q, want %q", tt.path, got, tt.principal)
		}
		if tt.status == http.StatusForbidden && tt.path == "/v1/chat/completions" && !strings.Contains(w.Body.String(), "Access denied: insufficient permissions for route /v1/chat/completions") {
			t.Errorf("403 body = %q", w.Body)
		}
	}
}
