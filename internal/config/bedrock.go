package config

import (
	"errors"
	"fmt"
	"math"
	"net/url"
	"regexp"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// ProviderTypeBedrock is the provider_type of AWS Bedrock inference.
const ProviderTypeBedrock = "remote::bedrock"

// ProviderTypes maps each provider_type this build knows to a constructor of
// its typed config, filled with its defaults. Parse decodes an enabled
// provider's config block into the value the constructor returns and stores
// it in Provider.Settings; a provider_type not listed here is an error unless
// the provider is disabled.
var ProviderTypes = map[string]func() any{
	ProviderTypeBedrock: func() any { return newBedrockConfig() },
}

// settings is implemented by the typed provider configs of this package.
type settings interface {
	// envDefaults fills fields whose keys are absent from the config block
	// from the environment, as the Python config's default factories do.
	envDefaults(block *yaml.Node, env LookupEnv, p *problems, path string)
	// normalize applies the defaults that depend on decoded values.
	normalize()
	// validate reports problems; block, when not nil, gives lines.
	validate(p *problems, path string, block *yaml.Node)
}

// BedrockConfig configures the AWS Bedrock inference provider
// (provider_type remote::bedrock). It accepts every key of OGX's BedrockConfig
// (src/ogx/providers/remote/inference/bedrock/config.py, which extends
// BedrockBaseConfig and RemoteInferenceProviderConfig), plus base_url.
//
// Authentication: a bearer key (APIKey) when set, otherwise SigV4 with the AWS
// credential fields and chain. Like OGX, keys absent from the config block
// default from the environment: region_name from AWS_DEFAULT_REGION,
// aws_access_key_id from AWS_ACCESS_KEY_ID, aws_secret_access_key,
// aws_session_token, aws_role_arn, aws_web_identity_token_file,
// aws_role_session_name, profile_name (AWS_PROFILE), total_max_attempts
// (AWS_MAX_ATTEMPTS), retry_mode, connect_timeout, read_timeout and
// session_ttl likewise (AWS_<KEY>). An explicit null or "" in the block keeps
// the built-in default instead.
type BedrockConfig struct {
	// APIKey is the Bedrock API key (bearer token), typically
	// ${env.AWS_BEARER_TOKEN_BEDROCK:=}. OGX's Python field is auth_credential
	// with the YAML alias api_key.
	APIKey Secret `yaml:"api_key" json:"api_key"`
	// RegionName selects the endpoint bedrock-runtime.<region>.amazonaws.com.
	// When it is empty the provider takes AWS_DEFAULT_REGION, then
	// AWS_REGION, then us-west-2 (the region the notebook and the gpt-oss
	// launch use; OGX falls back to us-east-2).
	RegionName string `yaml:"region_name" json:"region_name"`
	// BaseURL overrides the endpoint (not in OGX): a base URL such as
	// http://127.0.0.1:9000 to which the server appends /openai/v1/... and
	// /model/.... Parse removes a trailing "/".
	BaseURL string `yaml:"base_url" json:"base_url"`
	// AuthMode (not in OGX) picks how requests are authenticated when no
	// bearer key is set: "" or "api_key" mints short-term Bedrock API keys
	// from the IAM credentials; "sigv4" signs every request with SigV4
	// (service bedrock), for accounts where API keys are not allowed.
	AuthMode string `yaml:"auth_mode" json:"auth_mode"`

	AWSAccessKeyID          Secret `yaml:"aws_access_key_id" json:"aws_access_key_id"`
	AWSSecretAccessKey      Secret `yaml:"aws_secret_access_key" json:"aws_secret_access_key"`
	AWSSessionToken         Secret `yaml:"aws_session_token" json:"aws_session_token"`
	AWSRoleARN              string `yaml:"aws_role_arn" json:"aws_role_arn"`
	AWSWebIdentityTokenFile string `yaml:"aws_web_identity_token_file" json:"aws_web_identity_token_file"`
	AWSRoleSessionName      string `yaml:"aws_role_session_name" json:"aws_role_session_name"`
	ProfileName             string `yaml:"profile_name" json:"profile_name"`

	TotalMaxAttempts int     `yaml:"total_max_attempts" json:"total_max_attempts"` // including the first; 0 = SDK default
	RetryMode        string  `yaml:"retry_mode" json:"retry_mode"`                 // legacy, standard, adaptive; "" = SDK default
	ConnectTimeout   float64 `yaml:"connect_timeout" json:"connect_timeout"`       // seconds; default 60
	ReadTimeout      float64 `yaml:"read_timeout" json:"read_timeout"`             // seconds; default 60
	SessionTTL       int     `yaml:"session_ttl" json:"session_ttl"`               // seconds of an assumed-role session; default 3600

	// AllowedModels limits the models the provider lists; empty allows all.
	AllowedModels []string `yaml:"allowed_models" json:"allowed_models"`
	// RefreshModels asks for the provider's model list to be refreshed periodically.
	RefreshModels bool `yaml:"refresh_models" json:"refresh_models"`
	// Network configures the HTTP client; nil means defaults.
	Network *NetworkConfig `yaml:"network" json:"network"`
}

// Default values of BedrockConfig fields (those of OGX's BedrockBaseConfig).
const (
	defaultAWSTimeout = 60   // seconds
	defaultSessionTTL = 3600 // seconds
)

func newBedrockConfig() *BedrockConfig {
	return &BedrockConfig{
		ConnectTimeout: defaultAWSTimeout,
		ReadTimeout:    defaultAWSTimeout,
		SessionTTL:     defaultSessionTTL,
	}
}

// HasBearerToken reports whether an API key is configured (OGX ignores one
// that is only white space).
func (c *BedrockConfig) HasBearerToken() bool {
	return strings.TrimSpace(c.APIKey.Value()) != ""
}

func (c *BedrockConfig) envDefaults(block *yaml.Node, env LookupEnv, p *problems, path string) {
	get := func(key, name string) (string, bool) {
		if lookup(block, key) != nil {
			return "", false
		}
		v, _ := env(name)
		return v, v != ""
	}
	strs := []struct {
		key, env string
		dst      *string
	}{
		{"region_name", "AWS_DEFAULT_REGION", &c.RegionName},
		{"aws_role_arn", "AWS_ROLE_ARN", &c.AWSRoleARN},
		{"aws_web_identity_token_file", "AWS_WEB_IDENTITY_TOKEN_FILE", &c.AWSWebIdentityTokenFile},
		{"aws_role_session_name", "AWS_ROLE_SESSION_NAME", &c.AWSRoleSessionName},
		{"profile_name", "AWS_PROFILE", &c.ProfileName},
		{"retry_mode", "AWS_RETRY_MODE", &c.RetryMode},
	}
	for _, s := range strs {
		if v, ok := get(s.key, s.env); ok {
			*s.dst = v
		}
	}
	secrets := []struct {
		key, env string
		dst      *Secret
	}{
		{"aws_access_key_id", "AWS_ACCESS_KEY_ID", &c.AWSAccessKeyID},
		{"aws_secret_access_key", "AWS_SECRET_ACCESS_KEY", &c.AWSSecretAccessKey},
		{"aws_session_token", "AWS_SESSION_TOKEN", &c.AWSSessionToken},
	}
	for _, s := range secrets {
		if v, ok := get(s.key, s.env); ok {
			*s.dst = Secret(v)
		}
	}
	line := 0
	if block != nil {
		line = block.Line
	}
	ints := []struct {
		key, env string
		dst      *int
	}{
		{"total_max_attempts", "AWS_MAX_ATTEMPTS", &c.TotalMaxAttempts},
		{"session_ttl", "AWS_SESSION_TTL", &c.SessionTTL},
	}
	for _, s := range ints {
		if v, ok := get(s.key, s.env); ok {
			n, ok := pyInt(v)
			if !ok || n != int64(int(n)) {
				p.addLine(line, path+"."+s.key, fmt.Errorf("default from environment variable %s: expected an integer, got %q", s.env, v))
				continue
			}
			*s.dst = int(n)
		}
	}
	floats := []struct {
		key, env string
		dst      *float64
	}{
		{"connect_timeout", "AWS_CONNECT_TIMEOUT", &c.ConnectTimeout},
		{"read_timeout", "AWS_READ_TIMEOUT", &c.ReadTimeout},
	}
	for _, s := range floats {
		if v, ok := get(s.key, s.env); ok {
			f, ok := pyFloat(v)
			if !ok {
				p.addLine(line, path+"."+s.key, fmt.Errorf("default from environment variable %s: expected a number, got %q", s.env, v))
				continue
			}
			*s.dst = f
		}
	}
}

func (c *BedrockConfig) normalize() {
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
}

// regionRe matches AWS region names; the region becomes part of a host name.
var regionRe = regexp.MustCompile(`^[a-z0-9]+(-[a-z0-9]+)*$`)

var retryModes = []string{"legacy", "standard", "adaptive"}

func (c *BedrockConfig) validate(p *problems, path string, block *yaml.Node) {
	at := func(key string) (*yaml.Node, string) { return lineNode(block, key), path + "." + key }

	if c.RegionName != "" && !regionRe.MatchString(c.RegionName) {
		n, kp := at("region_name")
		p.addf(n, kp, "invalid AWS region %q", c.RegionName)
	}
	switch c.AuthMode {
	case "", "api_key", "sigv4":
	default:
		n, kp := at("auth_mode")
		p.addf(n, kp, `must be "api_key" or "sigv4", got %q`, c.AuthMode)
	}
	if c.BaseURL != "" {
		if err := checkHTTPURL(c.BaseURL, false); err != nil {
			n, kp := at("base_url")
			p.add(n, kp, err)
		}
	}
	if c.TotalMaxAttempts < 0 {
		n, kp := at("total_max_attempts")
		p.addf(n, kp, "must not be negative, got %d", c.TotalMaxAttempts)
	}
	if c.RetryMode != "" && !contains(retryModes, c.RetryMode) {
		n, kp := at("retry_mode")
		p.addf(n, kp, "unknown retry mode %q (allowed: %s)", c.RetryMode, strings.Join(retryModes, ", "))
	}
	for _, f := range []struct {
		key string
		v   float64
	}{{"connect_timeout", c.ConnectTimeout}, {"read_timeout", c.ReadTimeout}} {
		if !(f.v >= 0) || math.IsInf(f.v, 0) {
			n, kp := at(f.key)
			p.addf(n, kp, "must be a non-negative number of seconds, got %v", f.v)
		}
	}
	if c.SessionTTL < 0 {
		n, kp := at("session_ttl")
		p.addf(n, kp, "must not be negative, got %d", c.SessionTTL)
	}
	for i, m := range c.AllowedModels {
		if m == "" {
			n, kp := at("allowed_models")
			p.add(n, indexPath(kp, i), errors.New("empty model id"))
		}
	}
	if !c.HasBearerToken() && (c.AWSAccessKeyID == "") != (c.AWSSecretAccessKey == "") {
		n, kp := at("aws_access_key_id")
		if c.AWSAccessKeyID == "" {
			n, kp = at("aws_secret_access_key")
		}
		p.add(n, kp, errors.New("aws_access_key_id and aws_secret_access_key must be set together"))
	}
	c.Network.validate(p, path+".network", lookup(block, "network"))
}

// lineNode returns the value of key in block, else block, for line numbers.
func lineNode(block *yaml.Node, key string) *yaml.Node {
	if v := lookup(block, key); v != nil {
		return v
	}
	return deref(block)
}

// checkHTTPURL checks that s is an absolute http or https URL. Unless proxy
// is set, s is a base URL: it may have a path but no query or fragment.
func checkHTTPURL(s string, proxy bool) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("expected an http or https URL, got %q", s)
	}
	if !proxy && (u.RawQuery != "" || u.Fragment != "") {
		return fmt.Errorf("expected a base URL without query or fragment, got %q", s)
	}
	return nil
}

// NetworkConfig configures an HTTP client (OGX's NetworkConfig).
type NetworkConfig struct {
	TLS   *TLSConfig   `yaml:"tls" json:"tls"`
	Proxy *ProxyConfig `yaml:"proxy" json:"proxy"`
	// Timeout is a number of seconds for both connecting and reading, or a
	// mapping with connect and read; see Timeouts.
	Timeout any `yaml:"timeout" json:"timeout"`
	// Headers are added to every upstream request.
	Headers map[string]string `yaml:"headers" json:"headers"`
}

// Timeouts returns the connect and read timeouts; zero means not set.
func (n *NetworkConfig) Timeouts() (connect, read time.Duration) {
	if n == nil {
		return 0, 0
	}
	if m, ok := n.Timeout.(map[string]any); ok {
		return seconds(m["connect"]), seconds(m["read"])
	}
	d := seconds(n.Timeout)
	return d, d
}

// number returns v as a float64 when it is a YAML number.
func number(v any) (float64, bool) {
	switch v := v.(type) {
	case int:
		return float64(v), true
	case int64:
		return float64(v), true
	case uint64:
		return float64(v), true
	case float64:
		return v, true
	}
	return 0, false
}

// fmtValue formats a decoded YAML value for a message.
func fmtValue(v any) string {
	switch v := v.(type) {
	case string:
		return fmt.Sprintf("%q", v)
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

// nonNegativeSeconds reports whether v is a finite number, at least 0.
func nonNegativeSeconds(v any) bool {
	f, ok := number(v)
	return ok && f >= 0 && !math.IsInf(f, 0)
}

// seconds converts a number of seconds to a Duration; 0 for anything else.
func seconds(v any) time.Duration {
	f, ok := number(v)
	if !ok || !(f > 0) {
		return 0
	}
	if f >= float64(math.MaxInt64)/float64(time.Second) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(f * float64(time.Second))
}

func (n *NetworkConfig) validate(p *problems, path string, block *yaml.Node) {
	if n == nil {
		return
	}
	n.TLS.validate(p, path+".tls", lookup(block, "tls"))
	n.Proxy.validate(p, path+".proxy", lookup(block, "proxy"))
	tp, tn := path+".timeout", lineNode(block, "timeout")
	switch v := n.Timeout.(type) {
	case nil:
	case map[string]any:
		for _, k := range sortedKeys(v) {
			x := v[k]
			kn := lineNode(tn, k)
			switch {
			case k != "connect" && k != "read":
				p.add(kn, tp+"."+k, errors.New("unknown field"))
			case x != nil && !nonNegativeSeconds(x):
				p.addf(kn, tp+"."+k, "expected a non-negative number of seconds, got %s", fmtValue(x))
			}
		}
	default:
		if !nonNegativeSeconds(v) {
			p.addf(tn, tp, "expected a non-negative number of seconds or a mapping with connect and read, got %s", fmtValue(v))
		}
	}
	for k := range n.Headers {
		if k == "" {
			p.add(lineNode(block, "headers"), path+".headers", errors.New("empty header name"))
		}
	}
}

// TLSConfig configures TLS to an upstream (OGX's TLSConfig).
type TLSConfig struct {
	// Verify is true (the default), false, or the path of a CA bundle; see VerifyTLS.
	Verify     any      `yaml:"verify" json:"verify"`
	MinVersion string   `yaml:"min_version" json:"min_version"` // "TLSv1.2" or "TLSv1.3"; "" = default
	Ciphers    []string `yaml:"ciphers" json:"ciphers"`
	ClientCert string   `yaml:"client_cert" json:"client_cert"` // with ClientKey, for mutual TLS
	ClientKey  string   `yaml:"client_key" json:"client_key"`
}

// VerifyTLS reports whether certificates are verified and, when verify
// names a file, the CA bundle to verify them with.
func (t *TLSConfig) VerifyTLS() (verify bool, caFile string) {
	if t == nil {
		return true, ""
	}
	switch v := t.Verify.(type) {
	case bool:
		return v, ""
	case string:
		return true, v
	}
	return true, ""
}

func (t *TLSConfig) validate(p *problems, path string, block *yaml.Node) {
	if t == nil {
		return
	}
	switch v := t.Verify.(type) {
	case nil, bool:
	case string:
		if v == "" {
			p.add(lineNode(block, "verify"), path+".verify", errors.New("expected a boolean or a CA file path, got \"\""))
		}
	default:
		p.addf(lineNode(block, "verify"), path+".verify", "expected a boolean or a CA file path, got %s", fmtValue(v))
	}
	if t.MinVersion != "" && t.MinVersion != "TLSv1.2" && t.MinVersion != "TLSv1.3" {
		p.addf(lineNode(block, "min_version"), path+".min_version", "unknown TLS version %q (allowed: TLSv1.2, TLSv1.3)", t.MinVersion)
	}
	if (t.ClientCert == "") != (t.ClientKey == "") {
		p.add(lineNode(block, "client_cert"), path, errors.New("client_cert and client_key must be set together"))
	}
}

// ProxyConfig configures an HTTP proxy (OGX's ProxyConfig).
type ProxyConfig struct {
	URL     string   `yaml:"url" json:"url"`     // for all requests; excludes http and https
	HTTP    string   `yaml:"http" json:"http"`   // for http:// requests
	HTTPS   string   `yaml:"https" json:"https"` // for https:// requests
	CACert  string   `yaml:"cacert" json:"cacert"`
	NoProxy []string `yaml:"no_proxy" json:"no_proxy"`
}

func (x *ProxyConfig) validate(p *problems, path string, block *yaml.Node) {
	if x == nil {
		return
	}
	for _, f := range []struct{ key, v string }{{"url", x.URL}, {"http", x.HTTP}, {"https", x.HTTPS}} {
		if f.v != "" {
			if err := checkHTTPURL(f.v, true); err != nil {
				p.add(lineNode(block, f.key), path+"."+f.key, err)
			}
		}
	}
	if x.URL != "" && (x.HTTP != "" || x.HTTPS != "") {
		p.add(lineNode(block, "url"), path+".url", errors.New("url excludes http and https"))
	}
}

var _ settings = (*BedrockConfig)(nil)
