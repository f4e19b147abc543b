package config

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// This file holds the typed server.auth, server.quota and server.cors
// sections. Their keys and defaults are those of OGX (AuthenticationConfig,
// QuotaConfig and CORSConfig in src/ogx/core/datatypes.py, AccessRule and
// RouteAccessRule in src/ogx/core/access_control/datatypes.py), plus the
// extensions marked as this server's.

// Authentication provider types: the values of
// server.auth.provider_config.type.
const (
	AuthOAuth2Token    = "oauth2_token"    // JWTs checked against a JWKS, or RFC 7662 introspection
	AuthGitHubToken    = "github_token"    // GitHub tokens checked with GitHub's /user
	AuthCustom         = "custom"          // an HTTP endpoint decides
	AuthKubernetes     = "kubernetes"      // Kubernetes SelfSubjectReview
	AuthUpstreamHeader = "upstream_header" // identity set by a trusted proxy in headers
	AuthAPIKeys        = "api_keys"        // static API keys (this server's extension)
)

// authTypes lists the provider types, for messages.
var authTypes = []string{AuthAPIKeys, AuthCustom, AuthGitHubToken, AuthKubernetes, AuthOAuth2Token, AuthUpstreamHeader}

// AuthConfig is server.auth (OGX's AuthenticationConfig). A nil
// ProviderConfig means requests are not authenticated; RoutePolicy still
// applies then, to anonymous callers.
type AuthConfig struct {
	// ProviderConfig says how callers are authenticated. OGX's env handling
	// sets it to null when its type expands to empty, which switches
	// authentication off.
	ProviderConfig *AuthProviderConfig `yaml:"provider_config"`
	// RoutePolicy decides which routes a caller may call. Empty allows all;
	// otherwise the first rule that matches decides, and no match denies.
	RoutePolicy []RouteRule `yaml:"route_policy"`
	// AccessPolicy decides what a caller may do with resources such as
	// models. Empty means OGX's default policy.
	AccessPolicy []AccessRule `yaml:"access_policy"`
}

// AuthProviderConfig is server.auth.provider_config: Type selects which of
// the other fields is set. It is written as one mapping with a type key and
// that type's keys.
type AuthProviderConfig struct {
	Type string

	OAuth2Token    *OAuth2TokenAuthConfig
	GitHubToken    *GitHubTokenAuthConfig
	Custom         *CustomAuthConfig
	Kubernetes     *KubernetesAuthConfig
	UpstreamHeader *UpstreamHeaderAuthConfig
	APIKeys        *APIKeysAuthConfig
}

// OAuth2TokenAuthConfig configures type oauth2_token: bearer tokens are JWTs
// verified with the keys of a JWKS, or opaque tokens checked by an RFC 7662
// introspection endpoint; exactly one of JWKS and Introspection is set.
type OAuth2TokenAuthConfig struct {
	Type string `yaml:"type"` // always oauth2_token
	// Audience must be in the token's aud claim; default "ogx", as in OGX.
	Audience string `yaml:"audience"`
	// VerifyTLS checks the TLS certificates of the JWKS and introspection
	// endpoints; default true.
	VerifyTLS bool `yaml:"verify_tls"`
	// TLSCAFile is a PEM file of CA certificates to trust instead of the
	// system's.
	TLSCAFile string `yaml:"tls_cafile"`
	// Issuer, when set, must equal the token's iss claim.
	Issuer string `yaml:"issuer"`
	// ClaimsMapping maps claim names (dots reach into nested objects) to
	// attribute names; default OGX's (sub and username to roles, groups and
	// team to teams, project to projects, tenant and namespace to
	// namespaces). A claim that is a list gives its items, a string its
	// space-separated words.
	ClaimsMapping map[string]string `yaml:"claims_mapping"`
	// JWKS gives the keys that sign tokens.
	JWKS *OAuth2JWKSConfig `yaml:"jwks"`
	// Introspection checks opaque tokens.
	Introspection *OAuth2IntrospectionConfig `yaml:"introspection"`
}

// OAuth2JWKSConfig is where the JSON Web Key Set is fetched.
type OAuth2JWKSConfig struct {
	// URI of the JWKS document.
	URI string `yaml:"uri"`
	// Token, when set, is sent as a bearer token with the JWKS request
	// (Kubernetes' JWKS needs one).
	Token Secret `yaml:"token"`
	// KeyRecheckPeriod is how often, in seconds, the keys are fetched again;
	// default 3600.
	KeyRecheckPeriod int `yaml:"key_recheck_period"`
}

// OAuth2IntrospectionConfig is an RFC 7662 token introspection endpoint.
type OAuth2IntrospectionConfig struct {
	URL          string `yaml:"url"`
	ClientID     string `yaml:"client_id"`
	ClientSecret Secret `yaml:"client_secret"`
	// SendSecretInBody sends the client credentials as form fields instead
	// of HTTP basic authentication.
	SendSecretInBody bool `yaml:"send_secret_in_body"`
}

// GitHubTokenAuthConfig configures type github_token: a bearer token is a
// GitHub token, and GitHub's /user says whose.
type GitHubTokenAuthConfig struct {
	Type string `yaml:"type"` // always github_token
	// GitHubAPIBaseURL defaults to https://api.github.com.
	GitHubAPIBaseURL string `yaml:"github_api_base_url"`
	// ClaimsMapping maps login, id and organizations to attributes;
	// default login to roles, organizations to teams.
	ClaimsMapping map[string]string `yaml:"claims_mapping"`
}

// CustomAuthConfig configures type custom: each bearer token is POSTed,
// with the request's path, headers and query, to Endpoint, which answers
// with the principal and its attributes.
type CustomAuthConfig struct {
	Type     string `yaml:"type"` // always custom
	Endpoint string `yaml:"endpoint"`
}

// KubernetesAuthConfig configures type kubernetes: a bearer token is a
// Kubernetes token, checked with a SelfSubjectReview.
type KubernetesAuthConfig struct {
	Type string `yaml:"type"` // always kubernetes
	// APIServerURL defaults to https://kubernetes.default.svc.
	APIServerURL string `yaml:"api_server_url"`
	// VerifyTLS defaults to true.
	VerifyTLS bool   `yaml:"verify_tls"`
	TLSCAFile string `yaml:"tls_cafile"`
	// ClaimsMapping maps userInfo fields to attributes; default username
	// and groups to roles.
	ClaimsMapping map[string]string `yaml:"claims_mapping"`
}

// UpstreamHeaderAuthConfig configures type upstream_header: a proxy in
// front of the server authenticates callers and names them in a header,
// which the server trusts.
type UpstreamHeaderAuthConfig struct {
	Type string `yaml:"type"` // always upstream_header
	// PrincipalHeader names the caller.
	PrincipalHeader string `yaml:"principal_header"`
	// AttributesHeader, when set, holds a JSON object of attributes.
	AttributesHeader string `yaml:"attributes_header"`
}

// APIKeysAuthConfig configures type api_keys, this server's extension:
// bearer tokens are static API keys listed in the config. Only their
// SHA-256 digests are kept in memory; keys must be long random strings
// (such as the output of `openssl rand -hex 32`), since a digest of a
// guessable key does not protect it.
type APIKeysAuthConfig struct {
	Type string   `yaml:"type"` // always api_keys
	Keys []APIKey `yaml:"keys"`
}

// An APIKey is one static key and the caller it identifies. The key is given
// either as key (typically ${env.NAME}), which Parse replaces by its digest
// in KeySHA256 and clears, or as key_sha256, the hex SHA-256 digest of the
// key (`printf %s "$KEY" | sha256sum`).
type APIKey struct {
	Key       Secret `yaml:"key"`
	KeySHA256 string `yaml:"key_sha256"`
	// Principal is the caller's id, for access rules, quotas and logs.
	Principal string `yaml:"principal"`
	// Attributes are the caller's attributes for access rules, such as
	// roles and teams.
	Attributes map[string][]string `yaml:"attributes"`

	both bool // key and key_sha256 were both written
}

// Digest returns the SHA-256 digest of the key: of Key when set, else
// KeySHA256 decoded; ok is false when neither gives one.
func (k *APIKey) Digest() (sum [sha256.Size]byte, ok bool) {
	if k.Key != "" {
		return sha256.Sum256([]byte(k.Key.Value())), true
	}
	b, err := hex.DecodeString(k.KeySHA256)
	if err != nil || len(b) != sha256.Size {
		return sum, false
	}
	copy(sum[:], b)
	return sum, true
}

// UnmarshalYAML decodes an entry and replaces a plaintext key by its
// digest, so the key itself is not kept.
func (k *APIKey) UnmarshalYAML(n *yaml.Node) error {
	type plain APIKey
	var v plain
	if err := n.Decode(&v); err != nil {
		return err
	}
	*k = APIKey(v)
	if k.Key != "" {
		k.both = k.KeySHA256 != ""
		sum := sha256.Sum256([]byte(k.Key.Value()))
		k.KeySHA256 = hex.EncodeToString(sum[:])
		k.Key = ""
	}
	return nil
}

// Actions of access rules (OGX's Action).
const (
	ActionCreate = "create"
	ActionRead   = "read"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

var actions = []string{ActionCreate, ActionRead, ActionUpdate, ActionDelete}

// An AccessRule permits or forbids actions on resources (OGX's AccessRule,
// loosely Cedar). Exactly one of Permit and Forbid is set, and at most one
// of When and Unless. The rule applies when its scope matches and all of
// When's conditions hold (or not all of Unless's do).
type AccessRule struct {
	Permit      *AccessScope `yaml:"permit"`
	Forbid      *AccessScope `yaml:"forbid"`
	When        StringList   `yaml:"when"`
	Unless      StringList   `yaml:"unless"`
	Description string       `yaml:"description"`
}

// AccessScope says which requests an AccessRule is about.
type AccessScope struct {
	// Principal, when set, must be the caller's id.
	Principal string `yaml:"principal"`
	// Actions are create, read, update and delete; one or a list.
	Actions StringList `yaml:"actions"`
	// Resource, when set, is "type::id" (model::my-model), "type::*" for
	// every resource of a type, or "regex:" and a regular expression that
	// must match at the start of "type::id".
	Resource string `yaml:"resource"`
}

// A RouteRule permits or forbids routes (OGX's RouteAccessRule): exactly
// one of Permit and Forbid, at most one of When and Unless.
type RouteRule struct {
	Permit      *RouteScope `yaml:"permit"`
	Forbid      *RouteScope `yaml:"forbid"`
	When        StringList  `yaml:"when"`
	Unless      StringList  `yaml:"unless"`
	Description string      `yaml:"description"`
}

// RouteScope lists paths: exact ("/v1/chat/completions"), a prefix ending
// in "*" ("/v1/files*"), "*" for all, or "regex:" and a regular expression
// that must match at the start of the path.
type RouteScope struct {
	Paths StringList `yaml:"paths"`
}

// StringList is a list of strings that may be written as one string.
type StringList []string

// UnmarshalYAML accepts a string or a list of strings.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if d := deref(n); d != nil && d.Kind == yaml.ScalarNode {
		if d.ShortTag() == tagNull {
			*l = nil
			return nil
		}
		*l = StringList{d.Value}
		return nil
	}
	var list []string
	if err := n.Decode(&list); err != nil {
		return err
	}
	*l = list
	return nil
}

func (l *StringList) checkSchema(s *schema, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.ScalarNode:
	case yaml.SequenceNode:
		for i, item := range n.Content {
			s.check(item, reflect.TypeFor[string](), indexPath(path, i))
		}
	default:
		s.probs.addf(n, path, "expected a string or a list of strings, got %s", describe(n))
	}
}

// ConditionKind is the form of a Condition.
type ConditionKind int

// The conditions OGX's access rules accept.
const (
	CondUserIsOwner            ConditionKind = iota + 1 // user is owner
	CondUserIsNotOwner                                  // user is not owner
	CondUserWithValueInList                             // user with <Value> in <Name>
	CondUserWithValueNotInList                          // user with <Value> not in <Name>
	CondUserInOwners                                    // user in owners <Name>
	CondUserNotInOwners                                 // user not in owners <Name>
	CondResourceIsUnowned                               // resource is unowned
)

// A Condition is one parsed when/unless condition. Name is an attribute
// name (roles, teams, ...) and Value an attribute value, where the form has
// them.
type Condition struct {
	Kind        ConditionKind
	Name, Value string
}

// String returns the condition as written in a config.
func (c Condition) String() string {
	switch c.Kind {
	case CondUserIsOwner:
		return "user is owner"
	case CondUserIsNotOwner:
		return "user is not owner"
	case CondUserWithValueInList:
		return "user with " + c.Value + " in " + c.Name
	case CondUserWithValueNotInList:
		return "user with " + c.Value + " not in " + c.Name
	case CondUserInOwners:
		return "user in owners " + c.Name
	case CondUserNotInOwners:
		return "user not in owners " + c.Name
	case CondResourceIsUnowned:
		return "resource is unowned"
	}
	return "invalid condition"
}

// ErrCondition reports a when/unless condition that is not one of the forms
// ParseCondition accepts.
var ErrCondition = errors.New("invalid condition")

// ParseCondition parses a when/unless condition, split into words at white
// space as OGX does: "user is owner", "user is not owner", "user with
// <value> in <name>", "user with <value> not in <name>", "user in owners
// <name>", "user not in owners <name>" or "resource is unowned".
func ParseCondition(s string) (Condition, error) {
	w := strings.Fields(s)
	is := func(words ...string) bool {
		if len(w) != len(words) {
			return false
		}
		for i, x := range words {
			if x != "" && w[i] != x {
				return false
			}
		}
		return true
	}
	switch {
	case is("user", "is", "owner"):
		return Condition{Kind: CondUserIsOwner}, nil
	case is("user", "is", "not", "owner"):
		return Condition{Kind: CondUserIsNotOwner}, nil
	case is("user", "with", "", "in", ""):
		return Condition{Kind: CondUserWithValueInList, Value: w[2], Name: w[4]}, nil
	case is("user", "with", "", "not", "in", ""):
		return Condition{Kind: CondUserWithValueNotInList, Value: w[2], Name: w[5]}, nil
	case is("user", "in", "owners", ""):
		return Condition{Kind: CondUserInOwners, Name: w[3]}, nil
	case is("user", "not", "in", "owners", ""):
		return Condition{Kind: CondUserNotInOwners, Name: w[4]}, nil
	case is("resource", "is", "unowned"):
		return Condition{Kind: CondResourceIsUnowned}, nil
	}
	return Condition{}, fmt.Errorf("%w %q (expected one of: user is owner, user is not owner, user with <value> in <attribute>, user with <value> not in <attribute>, user in owners <attribute>, user not in owners <attribute>, resource is unowned)", ErrCondition, s)
}

// ParseConditions parses each condition of l.
func ParseConditions(l StringList) ([]Condition, error) {
	out := make([]Condition, 0, len(l))
	for _, s := range l {
		c, err := ParseCondition(s)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// RegexPrefix marks a resource or path pattern that is a regular
// expression.
const RegexPrefix = "regex:"

// CompilePattern compiles the regular expression of a "regex:" pattern the
// way OGX applies it (Python's re.match): it must match at the start of the
// text, not necessarily all of it. The syntax is Go's (RE2): no
// backreferences or lookaround.
func CompilePattern(expr string) (*regexp.Regexp, error) {
	return regexp.Compile(`^(?:` + expr + `)`)
}

// Quota periods: the values of server.quota.period. OGX knows only day;
// hour and minute are this server's.
const (
	PeriodDay    = "day"
	PeriodHour   = "hour"
	PeriodMinute = "minute"
)

var periods = map[string]time.Duration{PeriodDay: 24 * time.Hour, PeriodHour: time.Hour, PeriodMinute: time.Minute}

// QuotaConfig is server.quota (OGX's QuotaConfig): how many requests a
// caller may make per period, counted in a shared store. Authenticated
// callers are counted by principal, anonymous ones by client address.
type QuotaConfig struct {
	// KVStore names the key-value backend (in storage.backends) that holds
	// the counters, so that replicas share them. When absent the server
	// picks one (see the ratelimit package).
	KVStore *QuotaStore `yaml:"kvstore"`
	// AnonymousMaxRequests is per client address and period; default 100.
	AnonymousMaxRequests int64 `yaml:"anonymous_max_requests"`
	// AuthenticatedMaxRequests is per principal and period; default 1000.
	AuthenticatedMaxRequests int64 `yaml:"authenticated_max_requests"`
	// Period is day (the default), hour or minute.
	Period string `yaml:"period"`

	// AnonymousTokensPerMinute and AuthenticatedTokensPerMinute bound the
	// tokens (prompt plus completion, from the responses' usage) a caller
	// may use per minute; 0 means no limit. This server's extension.
	AnonymousTokensPerMinute     int64 `yaml:"anonymous_tokens_per_minute"`
	AuthenticatedTokensPerMinute int64 `yaml:"authenticated_tokens_per_minute"`
}

// QuotaStore points the quota counters at a key-value backend (OGX's
// KVStoreReference).
type QuotaStore struct {
	Backend   string `yaml:"backend"`
	Namespace string `yaml:"namespace"`
}

// DefaultQuota holds OGX's quota defaults.
var DefaultQuota = QuotaConfig{AnonymousMaxRequests: 100, AuthenticatedMaxRequests: 1000, Period: PeriodDay}

// PeriodDuration returns the length of Period; a day for an unknown one.
func (q *QuotaConfig) PeriodDuration() time.Duration {
	if d, ok := periods[q.Period]; ok {
		return d
	}
	return periods[PeriodDay]
}

// UnmarshalYAML decodes the section over its defaults.
func (q *QuotaConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain QuotaConfig
	v := plain(DefaultQuota)
	err := n.Decode(&v)
	*q = QuotaConfig(v)
	return err
}

// CORSConfig is server.cors (OGX's CORSConfig), written as true (the
// development settings of DevCORS: http(s)://localhost on any port), false
// (Disabled), or a mapping over the defaults of DefaultCORS. The semantics
// are those of Starlette's CORSMiddleware, which OGX uses.
type CORSConfig struct {
	// Disabled is set by cors: false.
	Disabled bool `yaml:"-"`

	// AllowOrigins lists origins ("https://app.example.com") allowed to
	// call; "*" allows any.
	AllowOrigins []string `yaml:"allow_origins"`
	// AllowOriginRegex allows the origins it matches in full.
	AllowOriginRegex string `yaml:"allow_origin_regex"`
	// AllowMethods lists the methods a preflight may ask for; "*" allows
	// any. Default OPTIONS only, as in OGX.
	AllowMethods []string `yaml:"allow_methods"`
	// AllowHeaders lists the request headers a preflight may ask for,
	// besides the CORS-safelisted ones; "*" allows any.
	AllowHeaders []string `yaml:"allow_headers"`
	// AllowCredentials lets browsers send cookies and Authorization; it
	// cannot be combined with the "*" origin.
	AllowCredentials bool `yaml:"allow_credentials"`
	// ExposeHeaders lists the response headers scripts may read.
	ExposeHeaders []string `yaml:"expose_headers"`
	// MaxAge is how long, in seconds, browsers may cache a preflight
	// answer; default 600.
	MaxAge int `yaml:"max_age"`
}

// DefaultCORS returns the settings a cors mapping starts from (OGX's
// CORSConfig defaults).
func DefaultCORS() CORSConfig {
	return CORSConfig{AllowMethods: []string{"OPTIONS"}, MaxAge: 600}
}

// DevCORS returns the settings of cors: true: any port of localhost, over
// http or https, common methods and headers, no credentials (OGX's
// process_cors_config).
func DevCORS() CORSConfig {
	c := DefaultCORS()
	c.AllowOriginRegex = `https?://localhost:\d+`
	c.AllowMethods = []string{"GET", "POST", "PUT", "DELETE", "OPTIONS"}
	c.AllowHeaders = []string{"Content-Type", "Authorization", "X-Requested-With"}
	return c
}

// Enabled reports whether CORS headers are to be sent: c is set and not
// Disabled.
func (c *CORSConfig) Enabled() bool { return c != nil && !c.Disabled }

// UnmarshalYAML accepts true, false or a mapping.
func (c *CORSConfig) UnmarshalYAML(n *yaml.Node) error {
	if d := deref(n); d != nil && d.Kind == yaml.ScalarNode {
		var on bool
		if err := d.Decode(&on); err != nil {
			return err
		}
		if on {
			*c = DevCORS()
		} else {
			*c = CORSConfig{Disabled: true}
		}
		return nil
	}
	type plain CORSConfig
	v := plain(DefaultCORS())
	err := n.Decode(&v)
	*c = CORSConfig(v)
	return err
}

// MarshalYAML writes false for a disabled config, else the mapping.
func (c CORSConfig) MarshalYAML() (any, error) {
	if c.Disabled {
		return false, nil
	}
	type plain CORSConfig
	return plain(c), nil
}

func (c *CORSConfig) checkSchema(s *schema, n *yaml.Node, path string) {
	switch n.Kind {
	case yaml.MappingNode:
		s.structure(n, reflect.TypeFor[CORSConfig](), path)
	case yaml.ScalarNode:
		var b bool
		if n.Decode(&b) == nil {
			return
		}
		fallthrough
	default:
		s.probs.addf(n, path, "expected a boolean or a mapping, got %s", describe(n))
	}
}

// authProviderTypes maps each provider type to its config type.
var authProviderTypes = map[string]reflect.Type{
	AuthOAuth2Token:    reflect.TypeFor[OAuth2TokenAuthConfig](),
	AuthGitHubToken:    reflect.TypeFor[GitHubTokenAuthConfig](),
	AuthCustom:         reflect.TypeFor[CustomAuthConfig](),
	AuthKubernetes:     reflect.TypeFor[KubernetesAuthConfig](),
	AuthUpstreamHeader: reflect.TypeFor[UpstreamHeaderAuthConfig](),
	AuthAPIKeys:        reflect.TypeFor[APIKeysAuthConfig](),
}

func (c *AuthProviderConfig) checkSchema(s *schema, n *yaml.Node, path string) {
	if n.Kind != yaml.MappingNode {
		s.probs.addf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	tn := lookup(n, "type")
	if tn == nil || tn.Kind == yaml.ScalarNode && tn.ShortTag() == tagNull {
		s.probs.addf(n, path+".type", "required (one of %s)", strings.Join(authTypes, ", "))
		return
	}
	if tn.Kind != yaml.ScalarNode {
		s.probs.addf(tn, path+".type", "expected a string, got %s", describe(tn))
		return
	}
	t, ok := authProviderTypes[tn.Value]
	if !ok {
		s.probs.addf(tn, path+".type", "unknown auth provider type %q (known: %s)", tn.Value, strings.Join(authTypes, ", "))
		return
	}
	s.structure(n, t, path)
}

// UnmarshalYAML decodes the mapping into the config of its type. An
// unknown type leaves only Type set (validation reports it).
func (c *AuthProviderConfig) UnmarshalYAML(n *yaml.Node) error {
	var head struct {
		Type string `yaml:"type"`
	}
	_ = n.Decode(&head)
	*c = AuthProviderConfig{Type: head.Type}
	switch head.Type {
	case AuthOAuth2Token:
		c.OAuth2Token = &OAuth2TokenAuthConfig{Audience: "ogx", VerifyTLS: true}
		err := n.Decode(c.OAuth2Token)
		if c.OAuth2Token.ClaimsMapping == nil {
			c.OAuth2Token.ClaimsMapping = defaultOAuth2Claims()
		}
		return err
	case AuthGitHubToken:
		c.GitHubToken = &GitHubTokenAuthConfig{GitHubAPIBaseURL: "https://api.github.com"}
		err := n.Decode(c.GitHubToken)
		if c.GitHubToken.ClaimsMapping == nil {
			c.GitHubToken.ClaimsMapping = map[string]string{"login": "roles", "organizations": "teams"}
		}
		return err
	case AuthCustom:
		c.Custom = &CustomAuthConfig{}
		return n.Decode(c.Custom)
	case AuthKubernetes:
		c.Kubernetes = &KubernetesAuthConfig{APIServerURL: "https://kubernetes.default.svc", VerifyTLS: true}
		err := n.Decode(c.Kubernetes)
		if c.Kubernetes.ClaimsMapping == nil {
			c.Kubernetes.ClaimsMapping = map[string]string{"username": "roles", "groups": "roles"}
		}
		return err
	case AuthUpstreamHeader:
		c.UpstreamHeader = &UpstreamHeaderAuthConfig{}
		return n.Decode(c.UpstreamHeader)
	case AuthAPIKeys:
		c.APIKeys = &APIKeysAuthConfig{}
		return n.Decode(c.APIKeys)
	}
	return nil
}

// MarshalYAML writes the config of the selected type (secrets redacted).
func (c AuthProviderConfig) MarshalYAML() (any, error) {
	if v := c.settings(); v != nil {
		return v, nil
	}
	return map[string]string{"type": c.Type}, nil
}

// settings returns the pointer to the config of c's type, or nil.
func (c *AuthProviderConfig) settings() any {
	switch c.Type {
	case AuthOAuth2Token:
		if c.OAuth2Token != nil {
			return c.OAuth2Token
		}
	case AuthGitHubToken:
		if c.GitHubToken != nil {
			return c.GitHubToken
		}
	case AuthCustom:
		if c.Custom != nil {
			return c.Custom
		}
	case AuthKubernetes:
		if c.Kubernetes != nil {
			return c.Kubernetes
		}
	case AuthUpstreamHeader:
		if c.UpstreamHeader != nil {
			return c.UpstreamHeader
		}
	case AuthAPIKeys:
		if c.APIKeys != nil {
			return c.APIKeys
		}
	}
	return nil
}

// defaultOAuth2Claims is OGX's default claims_mapping for oauth2_token.
func defaultOAuth2Claims() map[string]string {
	return map[string]string{
		"sub":       "roles",
		"username":  "roles",
		"groups":    "teams",
		"team":      "teams",
		"project":   "projects",
		"tenant":    "namespaces",
		"namespace": "namespaces",
	}
}

// UnmarshalYAML decodes the JWKS settings over their defaults.
func (j *OAuth2JWKSConfig) UnmarshalYAML(n *yaml.Node) error {
	type plain OAuth2JWKSConfig
	v := plain{KeyRecheckPeriod: 3600}
	err := n.Decode(&v)
	*j = OAuth2JWKSConfig(v)
	return err
}

// schemaChecker is implemented by types that check their own YAML shape
// (a union of forms, a mapping whose keys depend on a type key); schema.check
// hands them the node instead of walking their Go type.
type schemaChecker interface {
	checkSchema(s *schema, n *yaml.Node, path string)
}

var (
	_ schemaChecker = (*StringList)(nil)
	_ schemaChecker = (*CORSConfig)(nil)
	_ schemaChecker = (*AuthProviderConfig)(nil)
)

// accessNode returns the node at a path of keys (strings) and list indexes
// (ints) from the document root, or the deepest node on the way that
// exists, for line numbers; nil for a config built in Go.
func (c *Config) accessNode(steps ...any) *yaml.Node {
	n := c.root
	for _, s := range steps {
		var next *yaml.Node
		switch s := s.(type) {
		case string:
			next = lookup(n, s)
		case int:
			if d := deref(n); d != nil && d.Kind == yaml.SequenceNode && s < len(d.Content) {
				next = deref(d.Content[s])
			}
		}
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

// validateAccessControl checks server.auth, server.quota and server.cors.
func (c *Config) validateAccessControl(p *problems) {
	if a := c.Server.Auth; a != nil {
		if a.ProviderConfig != nil {
			c.validateAuthProvider(p, a.ProviderConfig)
		}
		for i := range a.RoutePolicy {
			c.validateRouteRule(p, &a.RoutePolicy[i], i)
		}
		for i := range a.AccessPolicy {
			c.validateAccessRule(p, &a.AccessPolicy[i], i)
		}
	}
	if q := c.Server.Quota; q != nil {
		c.validateQuota(p, q)
	}
	if cors := c.Server.CORS; cors.Enabled() {
		c.validateCORS(p, cors)
	}
}

func (c *Config) validateAuthProvider(p *problems, pc *AuthProviderConfig) {
	base := []any{"server", "auth", "provider_config"}
	path := "server.auth.provider_config"
	at := func(keys ...any) (*yaml.Node, string) {
		kp := path
		for _, k := range keys {
			switch k := k.(type) {
			case string:
				kp = joinPath(kp, k)
			case int:
				kp = indexPath(kp, k)
			}
		}
		return c.accessNode(append(slices.Clone(base), keys...)...), kp
	}
	if pc.Type == "" {
		n, kp := at("type")
		p.addf(n, kp, "required (one of %s)", strings.Join(authTypes, ", "))
		return
	}
	if _, ok := authProviderTypes[pc.Type]; !ok {
		n, kp := at("type")
		p.addf(n, kp, "unknown auth provider type %q (known: %s)", pc.Type, strings.Join(authTypes, ", "))
		return
	}
	if pc.settings() == nil {
		n, kp := at()
		p.addf(n, kp, "type is %s but its settings are not set", pc.Type)
		return
	}
	claims := func(m map[string]string) {
		for _, k := range sortedKeys(m) {
			if m[k] == "" {
				n, kp := at("claims_mapping", k)
				p.addf(n, kp, "attribute name must not be empty")
			}
		}
	}
	checkURL := func(key string, v string, required bool, keys ...any) {
		n, kp := at(append(keys, key)...)
		switch {
		case v == "" && required:
			p.add(n, kp, errors.New("required"))
		case v != "":
			if err := checkHTTPURL(v, true); err != nil {
				p.add(n, kp, err)
			}
		}
	}
	switch pc.Type {
	case AuthOAuth2Token:
		o := pc.OAuth2Token
		claims(o.ClaimsMapping)
		if o.Audience == "" {
			n, kp := at("audience")
			p.add(n, kp, errors.New("must not be empty"))
		}
		switch {
		case o.JWKS == nil && o.Introspection == nil:
			n, kp := at()
			p.add(n, kp, errors.New("one of jwks or introspection must be configured"))
		case o.JWKS != nil && o.Introspection != nil:
			n, kp := at("introspection")
			p.add(n, kp, errors.New("only one of jwks or introspection may be configured"))
		}
		if j := o.JWKS; j != nil {
			checkURL("uri", j.URI, true, "jwks")
			if j.KeyRecheckPeriod <= 0 {
				n, kp := at("jwks", "key_recheck_period")
				p.addf(n, kp, "must be a positive number of seconds, got %d", j.KeyRecheckPeriod)
			}
		}
		if in := o.Introspection; in != nil {
			checkURL("url", in.URL, true, "introspection")
			if in.ClientID == "" {
				n, kp := at("introspection", "client_id")
				p.add(n, kp, errors.New("required"))
			}
			if in.ClientSecret == "" {
				n, kp := at("introspection", "client_secret")
				p.add(n, kp, errors.New("required"))
			}
		}
	case AuthGitHubToken:
		claims(pc.GitHubToken.ClaimsMapping)
		checkURL("github_api_base_url", pc.GitHubToken.GitHubAPIBaseURL, true)
	case AuthCustom:
		checkURL("endpoint", pc.Custom.Endpoint, true)
	case AuthKubernetes:
		claims(pc.Kubernetes.ClaimsMapping)
		checkURL("api_server_url", pc.Kubernetes.APIServerURL, true)
	case AuthUpstreamHeader:
		u := pc.UpstreamHeader
		if u.PrincipalHeader == "" {
			n, kp := at("principal_header")
			p.add(n, kp, errors.New("required"))
		} else if !validHeaderName(u.PrincipalHeader) {
			n, kp := at("principal_header")
			p.addf(n, kp, "invalid header name %q", u.PrincipalHeader)
		}
		if u.AttributesHeader != "" && !validHeaderName(u.AttributesHeader) {
			n, kp := at("attributes_header")
			p.addf(n, kp, "invalid header name %q", u.AttributesHeader)
		}
		if strings.EqualFold(u.PrincipalHeader, "Authorization") {
			n, kp := at("principal_header")
			p.add(n, kp, errors.New("must not be Authorization"))
		}
	case AuthAPIKeys:
		keys := pc.APIKeys.Keys
		if len(keys) == 0 {
			n, kp := at("keys")
			p.add(n, kp, errors.New("at least one key is required"))
		}
		seen := map[[sha256.Size]byte]int{}
		for i := range keys {
			k := &keys[i]
			n, kp := at("keys", i)
			switch {
			case k.both:
				p.add(lineNode(n, "key_sha256"), kp, errors.New("set key or key_sha256, not both"))
				continue
			case k.Key == "" && k.KeySHA256 == "":
				p.add(n, kp+".key", errors.New("required (or key_sha256)"))
				continue
			}
			sum, ok := k.Digest()
			if !ok {
				p.add(lineNode(n, "key_sha256"), kp+".key_sha256", errors.New("must be 64 hexadecimal digits (the SHA-256 of the key)"))
				continue
			}
			if k.Principal == "" {
				p.add(lineNode(n, "principal"), kp+".principal", errors.New("required"))
			}
			if j, dup := seen[sum]; dup {
				p.addf(n, kp, "same key as keys[%d]", j)
			} else {
				seen[sum] = i
			}
		}
	}
}

// validHeaderName reports whether s is an HTTP header field name (RFC 9110
// token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", b) >= 0 {
			continue
		}
		return false
	}
	return true
}

// listItem returns the node and path of item i of a list-or-string field
// at steps/path: the item when the field is written as a list, else the
// field itself.
func (c *Config) listItem(steps []any, path string, i int) (*yaml.Node, string) {
	n := c.accessNode(steps...)
	if d := deref(n); d != nil && d.Kind == yaml.SequenceNode && i < len(d.Content) {
		return deref(d.Content[i]), indexPath(path, i)
	}
	if c.root == nil {
		return nil, indexPath(path, i) // built in Go: always a list
	}
	return n, path
}

// writtenList reports whether the field at steps is written as a non-empty
// list (so a decode failure, not an empty list, left it empty).
func (c *Config) writtenList(steps []any) bool {
	if c.root == nil {
		return false
	}
	n := deref(c.accessNode(steps...))
	return n != nil && n.Kind == yaml.SequenceNode && len(n.Content) > 0
}

// validateRuleShape checks what access and route rules share.
func (c *Config) validateRuleShape(p *problems, path string, steps []any, permit, forbid bool, when, unless StringList) {
	at := func(key string) []any { return append(slices.Clone(steps), key) }
	switch {
	case !permit && !forbid:
		p.add(c.accessNode(steps...), path, errors.New("one of permit or forbid is required"))
	case permit && forbid:
		p.add(c.accessNode(at("forbid")...), path+".forbid", errors.New("permit and forbid are mutually exclusive"))
	}
	if len(when) > 0 && len(unless) > 0 {
		p.add(c.accessNode(at("unless")...), path+".unless", errors.New("when and unless are mutually exclusive"))
	}
	for _, f := range []struct {
		key  string
		list StringList
	}{{"when", when}, {"unless", unless}} {
		for i, s := range f.list {
			if _, err := ParseCondition(s); err != nil {
				n, kp := c.listItem(at(f.key), path+"."+f.key, i)
				p.add(n, kp, err)
			}
		}
	}
}

func (c *Config) validateAccessRule(p *problems, r *AccessRule, i int) {
	path := indexPath("server.auth.access_policy", i)
	steps := []any{"server", "auth", "access_policy", i}
	c.validateRuleShape(p, path, steps, r.Permit != nil, r.Forbid != nil, r.When, r.Unless)
	for _, sc := range []struct {
		key   string
		scope *AccessScope
	}{{"permit", r.Permit}, {"forbid", r.Forbid}} {
		if sc.scope == nil {
			continue
		}
		sp := path + "." + sc.key
		at := func(key string) []any { return append(slices.Clone(steps), sc.key, key) }
		if len(sc.scope.Actions) == 0 && !c.writtenList(at("actions")) {
			p.add(c.accessNode(at("actions")...), sp+".actions", errors.New("required"))
		}
		for j, a := range sc.scope.Actions {
			if !slices.Contains(actions, a) {
				n, kp := c.listItem(at("actions"), sp+".actions", j)
				p.addf(n, kp, "unknown action %q (allowed: %s)", a, strings.Join(actions, ", "))
			}
		}
		if res, ok := strings.CutPrefix(sc.scope.Resource, RegexPrefix); ok {
			if _, err := CompilePattern(res); err != nil {
				p.addf(c.accessNode(at("resource")...), sp+".resource", "invalid regular expression: %v", err)
			}
		}
	}
}

func (c *Config) validateRouteRule(p *problems, r *RouteRule, i int) {
	path := indexPath("server.auth.route_policy", i)
	steps := []any{"server", "auth", "route_policy", i}
	c.validateRuleShape(p, path, steps, r.Permit != nil, r.Forbid != nil, r.When, r.Unless)
	for _, sc := range []struct {
		key   string
		scope *RouteScope
	}{{"permit", r.Permit}, {"forbid", r.Forbid}} {
		if sc.scope == nil {
			continue
		}
		ps := append(slices.Clone(steps), sc.key, "paths")
		kp := path + "." + sc.key + ".paths"
		if len(sc.scope.Paths) == 0 && !c.writtenList(ps) {
			p.add(c.accessNode(ps...), kp, errors.New("required"))
		}
		for j, pat := range sc.scope.Paths {
			if pat == "" {
				n, ip := c.listItem(ps, kp, j)
				p.add(n, ip, errors.New("empty path"))
			}
			if expr, ok := strings.CutPrefix(pat, RegexPrefix); ok {
				if _, err := CompilePattern(expr); err != nil {
					n, ip := c.listItem(ps, kp, j)
					p.addf(n, ip, "invalid regular expression: %v", err)
				}
			}
		}
	}
}

func (c *Config) validateQuota(p *problems, q *QuotaConfig) {
	at := func(key string) (*yaml.Node, string) {
		return c.accessNode("server", "quota", key), "server.quota." + key
	}
	for _, f := range []struct {
		key string
		v   int64
	}{
		{"anonymous_max_requests", q.AnonymousMaxRequests},
		{"authenticated_max_requests", q.AuthenticatedMaxRequests},
		{"anonymous_tokens_per_minute", q.AnonymousTokensPerMinute},
		{"authenticated_tokens_per_minute", q.AuthenticatedTokensPerMinute},
	} {
		if f.v < 0 {
			n, kp := at(f.key)
			p.addf(n, kp, "must not be negative, got %d", f.v)
		}
	}
	if _, ok := periods[q.Period]; !ok {
		n, kp := at("period")
		p.addf(n, kp, "unknown period %q (allowed: day, hour, minute)", q.Period)
	}
	if ref := q.KVStore; ref != nil {
		n, kp := at("kvstore")
		switch {
		case ref.Backend == "":
			p.add(lineNode(n, "backend"), kp+".backend", errors.New("required: the name of a backend in storage.backends"))
		case c.Store != nil:
			b, ok := c.Store.Backends[ref.Backend]
			switch {
			case !ok || b == nil:
				p.addf(lineNode(n, "backend"), kp+".backend", "no backend named %q in storage.backends", ref.Backend)
			case b.Type != BackendKVSQLite && b.Type != BackendKVPostgres:
				p.addf(lineNode(n, "backend"), kp+".backend", "backend %q is a %s backend; quotas need a key-value backend (kv_sqlite or kv_postgres)", ref.Backend, b.Type)
			}
		}
	}
}

func (c *Config) validateCORS(p *problems, cors *CORSConfig) {
	steps := func(key string) []any { return []any{"server", "cors", key} }
	item := func(key string, i int) (*yaml.Node, string) {
		return c.listItem(steps(key), "server.cors."+key, i)
	}
	for i, o := range cors.AllowOrigins {
		if o == "*" {
			if cors.AllowCredentials {
				n, kp := item("allow_origins", i)
				p.add(n, kp, errors.New(`the "*" origin cannot be used with allow_credentials`))
			}
			continue
		}
		if err := checkOrigin(o); err != nil {
			n, kp := item("allow_origins", i)
			p.add(n, kp, err)
		}
	}
	if cors.AllowOriginRegex != "" {
		if _, err := regexp.Compile(cors.AllowOriginRegex); err != nil {
			p.addf(c.accessNode(steps("allow_origin_regex")...), "server.cors.allow_origin_regex", "invalid regular expression: %v", err)
		}
	}
	if cors.MaxAge < 0 {
		p.addf(c.accessNode(steps("max_age")...), "server.cors.max_age", "must not be negative, got %d", cors.MaxAge)
	}
	for i, m := range cors.AllowMethods {
		if m != "*" && !validHeaderName(m) {
			n, kp := item("allow_methods", i)
			p.addf(n, kp, "invalid method %q", m)
		}
	}
	for _, f := range []struct {
		key  string
		list []string
	}{{"allow_headers", cors.AllowHeaders}, {"expose_headers", cors.ExposeHeaders}} {
		for i, h := range f.list {
			if h != "*" && !validHeaderName(h) {
				n, kp := item(f.key, i)
				p.addf(n, kp, "invalid header name %q", h)
			}
		}
	}
}

// checkOrigin checks that o is a serialized origin, as browsers send it in
// the Origin header: scheme://host[:port], with no path, query or trailing
// slash (such an entry could never match).
func checkOrigin(o string) error {
	u, err := url.Parse(o)
	if err != nil || u.Scheme == "" || u.Host == "" || u.Opaque != "" || u.User != nil {
		return fmt.Errorf("invalid origin %q (expected scheme://host[:port])", o)
	}
	if u.Path != "" || u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(o, "?") || strings.HasSuffix(o, "#") {
		return fmt.Errorf("invalid origin %q: an origin has no path (remove the trailing %q)", o, strings.TrimPrefix(o, u.Scheme+"://"+u.Host))
	}
	if o != strings.ToLower(u.Scheme)+"://"+u.Host || u.Host != strings.ToLower(u.Host) {
		return fmt.Errorf("invalid origin %q: browsers send origins in lower case", o)
	}
	return nil
}
