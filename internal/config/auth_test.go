package config

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The invalid fixtures are named *.invalid.yaml: TestBadConfigs owns the
// *.bad.yaml ones.
func TestAuthInvalidConfigs(t *testing.T) {
	tests := []struct {
		file string
		errs []string
	}{
		{"auth_unknown_type.invalid.yaml", []string{
			`:6: server.auth.provider_config.type: unknown auth provider type "oauth3" (known: api_keys, custom, github_token, kubernetes, oauth2_token, upstream_header)`,
			`:8: server.cors: expected a boolean or a mapping, got "maybe"`,
			`:9: server.quota: expected a mapping, got a list`,
		}},
		{"auth_no_type.invalid.yaml", []string{
			`:6: server.auth.provider_config.type: required (one of api_keys, custom, github_token, kubernetes, oauth2_token, upstream_header)`,
			`:8: server.quota.kvstore.backend: backend "sql_default" is a sql_sqlite backend; quotas need a key-value backend (kv_sqlite or kv_postgres)`,
			`:9: server.cors.allow_origins: expected a list, got "https://a.example.com"`,
		}},
		{"auth_oauth2.invalid.yaml", []string{
			`:7: server.auth.provider_config.audience: must not be empty`,
			`:8: server.auth.provider_config.claims_mapping.sub: attribute name must not be empty`,
			`:10: server.auth.provider_config.jwks.uri: expected an http or https URL, got "not a url"`,
			`:11: server.auth.provider_config.jwks.key_recheck_period: must be a positive number of seconds, got 0`,
			`:13: server.auth.provider_config.introspection: only one of jwks or introspection may be configured`,
		}},
		{"auth_api_keys.invalid.yaml", []string{
			`:10: server.auth.provider_config.keys[1]: set key or key_sha256, not both`,
			`:13: server.auth.provider_config.keys[2].key_sha256: must be 64 hexadecimal digits (the SHA-256 of the key)`,
			`:15: server.auth.provider_config.keys[3].key: required (or key_sha256)`,
			`:16: server.auth.provider_config.keys[4].principal: required`,
			`:16: server.auth.provider_config.keys[4]: same key as keys[0]`,
			`:19: server.auth.provider_config.keys[5].secret: unknown field`,
			`:20: server.auth.route_policy: expected a list, got a mapping`,
		}},
		{"auth_fields.invalid.yaml", []string{
			`:7: server.auth.provider_config.endpoint: expected an http or https URL, got "ftp://auth.example.com"`,
			`:8: server.auth.provider_config.jwks: unknown field`,
			`:10: server.auth.access_policy[0].permit.actions[1]: unknown action "execute" (allowed: create, read, update, delete)`,
			"10: server.auth.access_policy[0].permit.resource: invalid regular expression: error parsing regexp: invalid or unsupported Perl syntax: `(?!`",
			`:11: server.auth.access_policy[0].forbid: permit and forbid are mutually exclusive`,
			`:12: server.auth.access_policy[1].when: invalid condition "user in team admins" (expected one of: `,
			`:13: server.auth.access_policy[1].permit.actions: required`,
			`:15: server.auth.access_policy[2].when[1]: invalid condition "user owns it"`,
			`:16: server.auth.access_policy[2].unless: when and unless are mutually exclusive`,
			`:17: server.auth.access_policy[3]: one of permit or forbid is required`,
			`:19: server.auth.route_policy[0].permit.paths: required`,
			`:20: server.auth.route_policy[1].forbid.paths[1]: expected a string, got a mapping`,
			`:22: server.quota.kvstore.backend: required: the name of a backend in storage.backends`,
			`:23: server.quota.anonymous_max_requests: must not be negative, got -1`,
			`:24: server.quota.period: unknown period "week" (allowed: day, hour, minute)`,
			`:25: server.quota.authenticated_tokens_per_minute: expected an integer, got "1.5"`,
			`:27: server.cors.allow_origins[0]: the "*" origin cannot be used with allow_credentials`,
			`:27: server.cors.allow_origins[1]: invalid origin "https://a.example.com/": an origin has no path (remove the trailing "/")`,
			`:27: server.cors.allow_origins[2]: invalid origin "example.com" (expected scheme://host[:port])`,
			`:29: server.cors.allow_origin_regex: invalid regular expression: error parsing regexp: missing closing )`,
			`:30: server.cors.max_age: must not be negative, got -5`,
			`:31: server.cors.allow_methods: expected a list, got "GET"`,
		}},
	}
	files, _ := filepath.Glob("testdata/auth_*.invalid.yaml")
	covered := map[string]bool{}
	for _, tt := range tests {
		covered[tt.file] = true
	}
	for _, f := range files {
		if !covered[filepath.Base(f)] {
			t.Errorf("%s has no test case", f)
		}
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			c, err := Load(filepath.Join("testdata", tt.file), mapEnv(nil))
			if err == nil {
				t.Fatal("Load succeeded, want errors")
			}
			if c != nil {
				t.Error("Load returned a config with its error")
			}
			lines := strings.Split(err.Error(), "\n")
			for _, want := range tt.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q", want)
				}
			}
			if len(lines) != len(tt.errs) {
				t.Errorf("got %d problems, want %d:\n%s", len(lines), len(tt.errs), err)
			}
		})
	}
}

func TestAuthAPIKeysHashedAtLoad(t *testing.T) {
	const key = "k-from-env-0123456789abcdef0123456789"
	c, err := Load("testdata/auth_api_keys.good.yaml", mapEnv(map[string]string{"TEAM_A_KEY": key}))
	if err != nil {
		t.Fatal(err)
	}
	pc := c.Server.Auth.ProviderConfig
	if pc.Type != AuthAPIKeys || pc.APIKeys == nil {
		t.Fatalf("provider config = %+v", pc)
	}
	keys := pc.APIKeys.Keys
	if len(keys) != 2 {
		t.Fatalf("keys = %d, want 2", len(keys))
	}
	sum := sha256.Sum256([]byte(key))
	if keys[0].Key != "" {
		t.Error("plaintext key kept after load")
	}
	if got, want := keys[0].KeySHA256, hex.EncodeToString(sum[:]); got != want {
		t.Errorf("key_sha256 = %s, want %s", got, want)
	}
	if d, ok := keys[0].Digest(); !ok || d != sum {
		t.Errorf("Digest = %x, %v", d, ok)
	}
	if keys[0].Principal != "team-a" || !reflect.DeepEqual(keys[0].Attributes, map[string][]string{"roles": {"user"}, "teams": {"a"}}) {
		t.Errorf("key 0 = %+v", keys[0])
	}
	if d, ok := keys[1].Digest(); !ok || hex.EncodeToString(d[:]) != "5994471abb01112afcc18159f6cc74b4f511b99806da59b3caf5a9c173cacfc5" {
		t.Errorf("key 1 digest = %x, %v", d, ok)
	}
	// The plaintext appears nowhere: not in YAML, not in %+v.
	out, err := yaml.Marshal(c.Server)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{string(out), fmt.Sprintf("%+v %#v", keys, keys)} {
		if strings.Contains(s, key) {
			t.Errorf("plaintext key in %q", s)
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate after Load: %v", err)
	}

	// A key built in Go is hashed on use.
	k := APIKey{Key: Secret(key), Principal: "x"}
	if d, ok := k.Digest(); !ok || d != sum {
		t.Errorf("Digest of a Go-built key = %x, %v", d, ok)
	}
}

func TestAuthDecodedValues(t *testing.T) {
	c, err := Load("testdata/auth_api_keys.good.yaml", mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	a := c.Server.Auth
	if got, want := len(a.RoutePolicy), 2; got != want {
		t.Fatalf("route rules = %d", got)
	}
	if got, want := []string(a.RoutePolicy[0].Permit.Paths), []string{"/v1/chat/completions", "/v1/models*"}; !reflect.DeepEqual(got, want) {
		t.Errorf("paths = %q, want %q", got, want)
	}
	if got, want := []string(a.RoutePolicy[1].Permit.Paths), []string{"*"}; !reflect.DeepEqual(got, want) {
		t.Errorf("paths written as a string = %q, want %q", got, want)
	}
	if got := []string(a.RoutePolicy[0].When); !reflect.DeepEqual(got, []string{"user with user in roles"}) {
		t.Errorf("when = %q", got)
	}
	if got := []string(a.AccessPolicy[2].Permit.Actions); !reflect.DeepEqual(got, []string{"read"}) {
		t.Errorf("actions written as a string = %q", got)
	}
	if got := []string(a.AccessPolicy[1].Unless); !reflect.DeepEqual(got, []string{"user with admin in roles"}) {
		t.Errorf("unless = %q", got)
	}
	q := c.Server.Quota
	want := QuotaConfig{KVStore: &QuotaStore{Backend: "kv_default", Namespace: "quota"}, AnonymousMaxRequests: 10, AuthenticatedMaxRequests: 5000, Period: PeriodHour, AuthenticatedTokensPerMinute: 200000}
	if !reflect.DeepEqual(*q, want) {
		t.Errorf("quota = %+v, want %+v", *q, want)
	}
	if q.PeriodDuration().Hours() != 1 {
		t.Errorf("period = %v", q.PeriodDuration())
	}
	cors := c.Server.CORS
	if !cors.Enabled() || !cors.AllowCredentials || cors.MaxAge != 3600 || !reflect.DeepEqual(cors.AllowMethods, []string{"GET", "POST", "OPTIONS"}) {
		t.Errorf("cors = %+v", cors)
	}

	c, err = Load("testdata/auth_oauth2.good.yaml", mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	o := c.Server.Auth.ProviderConfig.OAuth2Token
	if o == nil {
		t.Fatal("no oauth2_token config")
	}
	// claims_mapping replaces the default; it is not merged into it.
	if want := map[string]string{"sub": "roles", "realm_access.roles": "roles", "groups": "teams"}; !reflect.DeepEqual(o.ClaimsMapping, want) {
		t.Errorf("claims_mapping = %v, want %v", o.ClaimsMapping, want)
	}
	if o.Audience != "llama-stack" || !o.VerifyTLS || o.JWKS.KeyRecheckPeriod != 600 || o.JWKS.Token != "" {
		t.Errorf("oauth2 = %+v, jwks %+v", o, o.JWKS)
	}
	if got, want := *c.Server.CORS, DevCORS(); !reflect.DeepEqual(got, want) {
		t.Errorf("cors: true = %+v, want %+v", got, want)
	}
	if got, want := *c.Server.Quota, (QuotaConfig{KVStore: &QuotaStore{Backend: "kv_default", Namespace: "quota"}, AnonymousMaxRequests: 100, AuthenticatedMaxRequests: 1000, Period: PeriodDay}); !reflect.DeepEqual(got, want) {
		t.Errorf("quota defaults = %+v", got)
	}

	c, err = Load("testdata/auth_custom.good.yaml", mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if pc := c.Server.Auth.ProviderConfig; pc.Custom == nil || pc.Custom.Endpoint != "http://auth.internal:8080/validate" {
		t.Errorf("custom = %+v", pc)
	}
	if c.Server.CORS == nil || c.Server.CORS.Enabled() {
		t.Errorf("cors: false = %+v, want disabled", c.Server.CORS)
	}

	c, err = Load("testdata/auth_others.good.yaml", mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	k := c.Server.Auth.ProviderConfig.Kubernetes
	if k == nil || k.VerifyTLS || k.APIServerURL != "https://api.cluster.example.com:6443" || k.ClaimsMapping["groups"] != "teams" {
		t.Errorf("kubernetes = %+v", k)
	}
	if c.Server.CORS.Enabled() || c.Server.Quota != nil {
		t.Errorf("absent cors/quota = %+v %+v", c.Server.CORS, c.Server.Quota)
	}
}

// server parses a config whose server section is the given YAML.
func server(t *testing.T, section string, env map[string]string) (*Config, error) {
	t.Helper()
	doc := "version: 2\nproviders: {}\nserver:\n" + section
	return Parse([]byte(doc), mapEnv(env))
}

func TestAuthProviderTypes(t *testing.T) {
	tests := []struct {
		name    string
		section string
		env     map[string]string
		check   func(t *testing.T, c *Config)
		errs    []string
	}{
		{name: "github defaults", section: "  auth: {provider_config: {type: github_token}}\n", check: func(t *testing.T, c *Config) {
			g := c.Server.Auth.ProviderConfig.GitHubToken
			if g.GitHubAPIBaseURL != "https://api.github.com" || !reflect.DeepEqual(g.ClaimsMapping, map[string]string{"login": "roles", "organizations": "teams"}) {
				t.Errorf("github = %+v", g)
			}
		}},
		{name: "kubernetes defaults", section: "  auth: {provider_config: {type: kubernetes}}\n", check: func(t *testing.T, c *Config) {
			k := c.Server.Auth.ProviderConfig.Kubernetes
			if k.APIServerURL != "https://kubernetes.default.svc" || !k.VerifyTLS || !reflect.DeepEqual(k.ClaimsMapping, map[string]string{"username": "roles", "groups": "roles"}) {
				t.Errorf("kubernetes = %+v", k)
			}
		}},
		{name: "oauth2 defaults", section: "  auth: {provider_config: {type: oauth2_token, jwks: {uri: 'https://idp/jwks'}}}\n", check: func(t *testing.T, c *Config) {
			o := c.Server.Auth.ProviderConfig.OAuth2Token
			if o.Audience != "ogx" || !o.VerifyTLS || o.JWKS.KeyRecheckPeriod != 3600 || !reflect.DeepEqual(o.ClaimsMapping, defaultOAuth2Claims()) {
				t.Errorf("oauth2 = %+v", o)
			}
		}},
		{name: "upstream header", section: "  auth: {provider_config: {type: upstream_header, principal_header: x-auth-user, attributes_header: x-auth-attrs}}\n", check: func(t *testing.T, c *Config) {
			u := c.Server.Auth.ProviderConfig.UpstreamHeader
			if u.PrincipalHeader != "x-auth-user" || u.AttributesHeader != "x-auth-attrs" {
				t.Errorf("upstream = %+v", u)
			}
		}},
		{name: "upstream header bad", section: "  auth: {provider_config: {type: upstream_header, principal_header: Authorization, attributes_header: 'x y'}}\n", errs: []string{
			`server.auth.provider_config.principal_header: must not be Authorization`,
			`server.auth.provider_config.attributes_header: invalid header name "x y"`,
		}},
		{name: "upstream header missing", section: "  auth: {provider_config: {type: upstream_header}}\n", errs: []string{
			`server.auth.provider_config.principal_header: required`,
		}},
		{name: "introspection", section: "  auth: {provider_config: {type: oauth2_token, introspection: {url: 'https://idp/introspect', client_id: gw, client_secret: s3cret}}}\n", check: func(t *testing.T, c *Config) {
			in := c.Server.Auth.ProviderConfig.OAuth2Token.Introspection
			if in.ClientSecret.Value() != "s3cret" || in.SendSecretInBody {
				t.Errorf("introspection = %+v", in)
			}
			out, _ := yaml.Marshal(c.Server.Auth)
			if strings.Contains(string(out), "s3cret") || !strings.Contains(string(out), "type: oauth2_token") {
				t.Errorf("marshalled auth:\n%s", out)
			}
		}},
		{name: "introspection missing credentials", section: "  auth: {provider_config: {type: oauth2_token, introspection: {url: 'https://idp/introspect'}}}\n", errs: []string{
			`server.auth.provider_config.introspection.client_id: required`,
			`server.auth.provider_config.introspection.client_secret: required`,
		}},
		{name: "oauth2 needs a key source", section: "  auth: {provider_config: {type: oauth2_token}}\n", errs: []string{
			`server.auth.provider_config: one of jwks or introspection must be configured`,
		}},
		{name: "unknown key of the type", section: "  auth: {provider_config: {type: custom, endpoint: 'http://a', issuer: x}}\n", errs: []string{
			`line 4: server.auth.provider_config.issuer: unknown field`,
		}},
		{name: "typo suggests", section: "  auth: {provider_config: {type: oauth2_token, jwks: {uri: 'http://a'}, audiance: x}}\n", errs: []string{
			`server.auth.provider_config.audiance: unknown field (did you mean "audience"?)`,
		}},
		{name: "api keys empty", section: "  auth: {provider_config: {type: api_keys, keys: []}}\n", errs: []string{
			`server.auth.provider_config.keys: at least one key is required`,
		}},
		{name: "type not a name", section: "  auth: {provider_config: {type: 1}}\n", errs: []string{
			`line 4: server.auth.provider_config.type: unknown auth provider type "1"`,
		}},
		// OGX's env handling: a type that expands to empty switches
		// authentication off, leaving route_policy in force.
		{name: "auth switched off by env", section: "  auth:\n    provider_config:\n      type: ${env.AUTH_PROVIDER:+oauth2_token}\n      issuer: ${env.KEYCLOAK_URL}\n    route_policy: [{permit: {paths: '*'}}]\n", check: func(t *testing.T, c *Config) {
			if c.Server.Auth.ProviderConfig != nil || len(c.Server.Auth.RoutePolicy) != 1 {
				t.Errorf("auth = %+v", c.Server.Auth)
			}
		}},
		{name: "auth switched on by env", section: "  auth:\n    provider_config:\n      type: ${env.AUTH_PROVIDER:+oauth2_token}\n      issuer: ${env.KEYCLOAK_URL}\n", env: map[string]string{"AUTH_PROVIDER": "x", "KEYCLOAK_URL": "https://kc"}, errs: []string{
			`server.auth.provider_config: one of jwks or introspection must be configured`,
		}},
		{name: "auth null", section: "  auth:\n  cors:\n  quota:\n", check: func(t *testing.T, c *Config) {
			if c.Server.Auth != nil || c.Server.CORS.Enabled() || c.Server.Quota != nil {
				t.Errorf("server = %+v", c.Server)
			}
		}},
		{name: "cors empty mapping", section: "  cors: {}\n", check: func(t *testing.T, c *Config) {
			if got, want := *c.Server.CORS, DefaultCORS(); !reflect.DeepEqual(got, want) {
				t.Errorf("cors = %+v, want %+v", got, want)
			}
		}},
		{name: "cors unknown key", section: "  cors: {allow_origin: ['https://a.b']}\n", errs: []string{
			`server.cors.allow_origin: unknown field (did you mean "allow_origins"?)`,
		}},
		{name: "cors bad names", section: "  cors: {allow_methods: ['GE T'], allow_headers: ['a:b'], expose_headers: ['*', ok], allow_origins: ['HTTPS://A.example.com']}\n", errs: []string{
			`server.cors.allow_methods[0]: invalid method "GE T"`,
			`server.cors.allow_headers[0]: invalid header name "a:b"`,
			`server.cors.allow_origins[0]: invalid origin "HTTPS://A.example.com": browsers send origins in lower case`,
		}},
		{name: "quota minute", section: "  quota: {period: minute, anonymous_max_requests: 0}\n", check: func(t *testing.T, c *Config) {
			if q := c.Server.Quota; q.PeriodDuration().Minutes() != 1 || q.AnonymousMaxRequests != 0 || q.AuthenticatedMaxRequests != 1000 {
				t.Errorf("quota = %+v", q)
			}
		}},
		{name: "quota unknown backend", section: "  quota: {kvstore: {backend: redis1}}\n", errs: []string{
			`server.quota.kvstore.backend: no backend named "redis1" in storage.backends`,
		}},
		{name: "route regex", section: "  auth: {route_policy: [{permit: {paths: ['regex:/v1/(a', '']}}]}\n", errs: []string{
			`server.auth.route_policy[0].permit.paths[0]: invalid regular expression`,
			`server.auth.route_policy[0].permit.paths[1]: empty path`,
		}},
		{name: "when not a list of strings", section: "  auth: {access_policy: [{permit: {actions: read}, when: {a: b}}]}\n", errs: []string{
			`server.auth.access_policy[0].when: expected a string or a list of strings, got a mapping`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := server(t, tt.section, tt.env)
			if len(tt.errs) == 0 {
				if err != nil {
					t.Fatalf("Parse: %v", err)
				}
				if err := c.Validate(); err != nil {
					t.Errorf("Validate after Parse: %v", err)
				}
				tt.check(t, c)
				return
			}
			if err == nil {
				t.Fatal("Parse succeeded, want errors")
			}
			for _, want := range tt.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error lacks %q; got:\n%v", want, err)
				}
			}
			if n := len(strings.Split(err.Error(), "\n")); n != len(tt.errs) {
				t.Errorf("got %d problems, want %d:\n%v", n, len(tt.errs), err)
			}
		})
	}
}

// A config built in Go is validated the same way, without lines.
func TestAuthValidateGoConfig(t *testing.T) {
	c := &Config{Version: "2", Server: DefaultServer}
	c.Server.Auth = &AuthConfig{
		ProviderConfig: &AuthProviderConfig{Type: AuthAPIKeys, APIKeys: &APIKeysAuthConfig{Keys: []APIKey{
			{Key: "a-very-long-key-0123456789", Principal: "p"},
			{Key: "a-very-long-key-0123456789", Principal: "q"},
		}}},
		AccessPolicy: []AccessRule{{Permit: &AccessScope{Actions: StringList{"read", "list"}}}},
	}
	cors := DefaultCORS()
	cors.AllowOrigins = []string{"*"}
	cors.AllowCredentials = true
	c.Server.CORS = &cors
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate accepted the config")
	}
	for _, want := range []string{
		`server.auth.provider_config.keys[1]: same key as keys[0]`,
		`server.auth.access_policy[0].permit.actions[1]: unknown action "list"`,
		`server.cors.allow_origins[0]: the "*" origin cannot be used with allow_credentials`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q; got:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "a-very-long-key") {
		t.Errorf("error shows a key: %v", err)
	}

	c.Server.Auth = &AuthConfig{ProviderConfig: &AuthProviderConfig{Type: AuthCustom}}
	c.Server.CORS = nil
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "type is custom but its settings are not set") {
		t.Errorf("Validate = %v", err)
	}
}

func TestParseCondition(t *testing.T) {
	tests := []struct {
		in   string
		want Condition
		err  bool
	}{
		{in: "user is owner", want: Condition{Kind: CondUserIsOwner}},
		{in: "  user   is not\towner ", want: Condition{Kind: CondUserIsNotOwner}},
		{in: "user with admin in roles", want: Condition{Kind: CondUserWithValueInList, Value: "admin", Name: "roles"}},
		{in: "user with admin not in roles", want: Condition{Kind: CondUserWithValueNotInList, Value: "admin", Name: "roles"}},
		{in: "user in owners teams", want: Condition{Kind: CondUserInOwners, Name: "teams"}},
		{in: "user not in owners teams", want: Condition{Kind: CondUserNotInOwners, Name: "teams"}},
		{in: "resource is unowned", want: Condition{Kind: CondResourceIsUnowned}},
		{in: "user with not in roles", want: Condition{Kind: CondUserWithValueInList, Value: "not", Name: "roles"}},
		{in: "", err: true},
		{in: "user is admin", err: true},
		{in: "User is owner", err: true},
		{in: "user with admin in", err: true},
		{in: "user in owner teams", err: true},
		{in: "user with a b in roles", err: true},
	}
	for _, tt := range tests {
		got, err := ParseCondition(tt.in)
		if tt.err {
			if err == nil {
				t.Errorf("ParseCondition(%q) = %+v, want an error", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("ParseCondition(%q) = %+v, %v; want %+v", tt.in, got, err, tt.want)
			continue
		}
		// String gives back a form that parses to the same condition.
		if again, err := ParseCondition(got.String()); err != nil || again != got {
			t.Errorf("ParseCondition(%q.String()) = %+v, %v", tt.in, again, err)
		}
	}
}

func FuzzParseCondition(f *testing.F) {
	for _, s := range []string{
		"user is owner", "user is not owner", "user with admin in roles", "user with a not in teams",
		"user in owners teams", "user not in owners roles", "resource is unowned", "", "user", "user with  in ",
		"user\u00a0is\u2003owner", "user with \xff in roles",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCondition(s)
		if err != nil {
			if c != (Condition{}) {
				t.Fatalf("ParseCondition(%q) returned %+v with an error", s, c)
			}
			return
		}
		if c.Kind < CondUserIsOwner || c.Kind > CondResourceIsUnowned {
			t.Fatalf("ParseCondition(%q) kind %d", s, c.Kind)
		}
		// The words of the input are those of the condition's text.
		if got, want := strings.Join(strings.Fields(s), " "), c.String(); got != want {
			t.Fatalf("ParseCondition(%q) = %q", s, want)
		}
		if again, err := ParseCondition(c.String()); err != nil || again != c {
			t.Fatalf("round trip of %q: %+v, %v", s, again, err)
		}
	})
}

func TestCompilePattern(t *testing.T) {
	re, err := CompilePattern(`model::(llama|mistral)-3\.\d+`)
	if err != nil {
		t.Fatal(err)
	}
	// Anchored at the start only, like Python's re.match.
	for s, want := range map[string]bool{
		"model::llama-3.1":        true,
		"model::llama-3.1-8b":     true,
		"x-model::llama-3.1":      false,
		"model::gpt":              false,
		"model::mistral-3.22-7b":  true,
		"vector_store::llama-3.1": false,
	} {
		if got := re.MatchString(s); got != want {
			t.Errorf("match %q = %v, want %v", s, got, want)
		}
	}
	// An alternation cannot escape the anchor.
	re, _ = CompilePattern(`a|b`)
	if re.MatchString("xb") {
		t.Error(`"a|b" matched "xb"`)
	}
}

func TestCORSMarshal(t *testing.T) {
	for _, tt := range []struct {
		c    CORSConfig
		want string
	}{
		{CORSConfig{Disabled: true}, "false\n"},
		{DefaultCORS(), "allow_origins: []\nallow_origin_regex: \"\"\nallow_methods:\n    - OPTIONS\nallow_headers: []\nallow_credentials: false\nexpose_headers: []\nmax_age: 600\n"},
	} {
		out, err := yaml.Marshal(tt.c)
		if err != nil || string(out) != tt.want {
			t.Errorf("Marshal(%+v) = %q, %v; want %q", tt.c, out, err, tt.want)
		}
	}
}
