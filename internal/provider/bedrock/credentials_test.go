package bedrock

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// awsEnvVars are the process environment variables the SDK reads for
// credentials; isolateAWS blanks them.
var awsEnvVars = []string{
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN",
	"AWS_ACCESS_KEY", "AWS_SECRET_KEY", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
	"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
	"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
	"AWS_REGION", "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
	"AWS_BEARER_TOKEN_BEDROCK", "AWS_MAX_ATTEMPTS", "AWS_RETRY_MODE", "AWS_CA_BUNDLE",
}

// isolateAWS keeps the SDK, which reads the process environment itself,
// away from the machine's credentials and from the network: AWS variables
// are blanked, HOME and the shared files point at empty temporary ones and
// the instance metadata service is disabled. It returns the environment
// (for the env argument) that says the same.
func isolateAWS(t *testing.T) map[string]string {
	t.Helper()
	dir := t.TempDir()
	for _, k := range awsEnvVars {
		t.Setenv(k, "")
	}
	cfgFile, credFile := filepath.Join(dir, "config"), filepath.Join(dir, "credentials")
	for _, f := range []string{cfgFile, credFile} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := map[string]string{
		"HOME":                        dir,
		"AWS_CONFIG_FILE":             cfgFile,
		"AWS_SHARED_CREDENTIALS_FILE": credFile,
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
	return env
}

func mapLookup(m map[string]string) config.LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func withEnv(base map[string]string, kv ...string) map[string]string {
	m := make(map[string]string, len(base)+len(kv)/2)
	for k, v := range base {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func writeCredFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func mustRetrieve(t *testing.T, p aws.CredentialsProvider) aws.Credentials {
	t.Helper()
	c, err := p.Retrieve(t.Context())
	if err != nil {
		t.Fatalf("Retrieve: %v", err)
	}
	return c
}

func assertNoSecret(t *testing.T, err error, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("error shows secret %q: %v", s, err)
		}
	}
}

func TestCredentialsStaticFromConfig(t *testing.T) {
	env := isolateAWS(t)
	cfg := &config.BedrockConfig{
		AWSAccessKeyID:     "AKIDCONFIG",
		AWSSecretAccessKey: "config-secret",
		AWSSessionToken:    "config-token",
		// Static keys win over everything else.
		ProfileName: "missing",
		AWSRoleARN:  "arn:aws:iam::123456789012:role/ignored",
	}
	// Keys in the environment lose to the config's.
	p, err := NewCredentialsProvider(t.Context(), cfg, "us-west-2", mapLookup(withEnv(env, "AWS_ACCESS_KEY_ID", "AKIDENV", "AWS_SECRET_ACCESS_KEY", "env-secret")))
	if err != nil {
		t.Fatal(err)
	}
	c := mustRetrieve(t, p)
	if c.AccessKeyID != "AKIDCONFIG" || c.SecretAccessKey != "config-secret" || c.SessionToken != "config-token" || c.CanExpire {
		t.Errorf("Retrieve = %+v, want the config's keys", c)
	}
	if _, ok := p.(interface{ Invalidate() }); !ok {
		t.Error("provider has no Invalidate method")
	}
}

func TestCredentialsConfigErrors(t *testing.T) {
	env := isolateAWS(t)
	secrets := []string{"half-secret-value", "bearer-secret-value"}
	for _, tt := range []struct {
		name string
		cfg  config.BedrockConfig
		env  map[string]string
		want string
	}{
		{"secret without id", config.BedrockConfig{AWSSecretAccessKey: "half-secret-value", APIKey: "bearer-secret-value"}, env, "aws_access_key_id and aws_secret_access_key must be set together"},
		{"id without secret", config.BedrockConfig{AWSAccessKeyID: "AKIDHALF"}, env, "must be set together"},
		{"token file without role", config.BedrockConfig{AWSWebIdentityTokenFile: "/var/run/token"}, env, "aws_role_arn is not"},
		{"env token file without role", config.BedrockConfig{}, withEnv(env, "AWS_WEB_IDENTITY_TOKEN_FILE", "/var/run/token"), "AWS_ROLE_ARN is not"},
		{"session_ttl too short", config.BedrockConfig{AWSRoleARN: "arn:aws:iam::123456789012:role/r", SessionTTL: 60}, env, "session_ttl 60"},
		{"missing profile", config.BedrockConfig{ProfileName: "nope"}, env, `profile "nope"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewCredentialsProvider(t.Context(), &tt.cfg, "us-west-2", mapLookup(tt.env))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewCredentialsProvider = %v, %v; want an error containing %q", p, err, tt.want)
			}
			assertNoSecret(t, err, secrets...)
		})
	}
}

func TestCredentialsProfile(t *testing.T) {
	env := isolateAWS(t)
	writeCredFile(t, env["AWS_CONFIG_FILE"], "[profile dev]\nregion = eu-west-1\n\n[default]\nregion = us-east-1\n")
	writeCredFile(t, env["AWS_SHARED_CREDENTIALS_FILE"],
		"[dev]\naws_access_key_id = AKIDPROFILE\naws_secret_access_key = profile-secret\n\n[default]\naws_access_key_id = AKIDDEFAULT\naws_secret_access_key = default-secret\n")
	for _, tt := range []struct {
		name   string
		cfg    config.BedrockConfig
		env    map[string]string
		wantID string
	}{
		{"profile_name", config.BedrockConfig{ProfileName: "dev"}, env, "AKIDPROFILE"},
		{"AWS_PROFILE", config.BedrockConfig{}, withEnv(env, "AWS_PROFILE", "dev"), "AKIDPROFILE"},
		{"default profile", config.BedrockConfig{}, env, "AKIDDEFAULT"},
		{"profile_name over AWS_PROFILE", config.BedrockConfig{ProfileName: "dev"}, withEnv(env, "AWS_PROFILE", "default"), "AKIDPROFILE"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p, err := NewCredentialsProvider(t.Context(), &tt.cfg, "us-west-2", mapLookup(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if c := mustRetrieve(t, p); c.AccessKeyID != tt.wantID {
				t.Errorf("access key %q, want %q", c.AccessKeyID, tt.wantID)
			}
		})
	}
}

func TestCredentialsDefaultChainEnvKeys(t *testing.T) {
	env := isolateAWS(t)
	env = withEnv(env, "AWS_ACCESS_KEY_ID", "AKIDENV", "AWS_SECRET_ACCESS_KEY", "env-secret", "AWS_SESSION_TOKEN", "env-token")
	// The process environment has no keys: they come through env.
	p, err := NewCredentialsProvider(t.Context(), &config.BedrockConfig{}, "us-west-2", mapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	if c := mustRetrieve(t, p); c.AccessKeyID != "AKIDENV" || c.SecretAccessKey != "env-secret" || c.SessionToken != "env-token" {
		t.Errorf("Retrieve = %+v, want the environment's keys", c)
	}
}

func TestCredentialsNoneConfigured(t *testing.T) {
	env := isolateAWS(t)
	start := time.Now()
	p, err := NewCredentialsProvider(t.Context(), &config.BedrockConfig{}, "us-west-2", mapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Retrieve(t.Context())
	if err == nil {
		t.Fatal("Retrieve found credentials")
	}
	if !errors.Is(err, ErrNoCredentials) {
		t.Errorf("error %v does not wrap ErrNoCredentials", err)
	}
	msg := err.Error()
	for _, want := range []string{"no AWS credentials found: ", "AWS_BEARER_TOKEN_BEDROCK", "AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "role"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	if !strings.HasPrefix(msg, "no AWS credentials found: ") {
		t.Errorf("error %q does not start with what is wrong", msg)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %v; the metadata service was not disabled?", d)
	}
	// A Minter passes the error on.
	m := &Minter{Credentials: p, Region: "us-west-2"}
	if _, err := m.Token(t.Context()); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("Minter.Token error = %v, want ErrNoCredentials", err)
	}
}

// fakeSTS is an STS double on 127.0.0.1 (awsQuery protocol: form in, XML out).
type fakeSTS struct {
	*httptest.Server
	mu       sync.Mutex
	forms    []url.Values
	auths    []string
	failWith string // when set, answer 403 with this message
	expires  time.Time
}

func newFakeSTS(t *testing.T) *fakeSTS {
	f := &fakeSTS{expires: time.Now().Add(time.Hour).UTC().Truncate(time.Second)}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeSTS) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	form, _ := url.ParseQuery(string(body))
	f.mu.Lock()
	f.forms = append(f.forms, form)
	f.auths = append(f.auths, r.Header.Get("Authorization"))
	fail := f.failWith
	n := len(f.forms)
	f.mu.Unlock()
	w.Header().Set("Content-Type", "text/xml")
	if fail != "" {
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>%s</Message></Error><RequestId>r</RequestId></ErrorResponse>`, fail)
		return
	}
	action := form.Get("Action")
	fmt.Fprintf(w, `<%[1]sResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/"><%[1]sResult>`+
		`<Credentials><AccessKeyId>ASIASTS%[2]d</AccessKeyId><SecretAccessKey>sts-secret-%[2]d</SecretAccessKey>`+
		`<SessionToken>sts-token-%[2]d</SessionToken><Expiration>%[3]s</Expiration></Credentials>`+
		`<AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn><AssumedRoleId>AROA:s</AssumedRoleId></AssumedRoleUser>`+
		`</%[1]sResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></%[1]sResponse>`,
		action, n, f.expires.Format(time.RFC3339))
}

func (f *fakeSTS) calls() ([]url.Values, []string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]url.Values(nil), f.forms...), append([]string(nil), f.auths...)
}

func TestCredentialsWebIdentity(t *testing.T) {
	env := isolateAWS(t)
	sts := newFakeSTS(t)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeCredFile(t, tokenFile, "eyJ.web-identity.jwt")
	const role = "arn:aws:iam::123456789012:role/bedrock"
	for _, tt := range []struct {
		name        string
		cfg         config.BedrockConfig
		env         map[string]string
		wantSession string
		wantTTL     string
	}{
		{"config", config.BedrockConfig{AWSRoleARN: role, AWSWebIdentityTokenFile: tokenFile, AWSRoleSessionName: "irsa", SessionTTL: 3600}, env, "irsa", "3600"},
		{"environment (IRSA)", config.BedrockConfig{}, withEnv(env, "AWS_ROLE_ARN", role, "AWS_WEB_IDENTITY_TOKEN_FILE", tokenFile), defaultRoleSessionName, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before, _ := sts.calls()
			p, err := NewCredentialsProvider(t.Context(), &tt.cfg, "us-west-2", mapLookup(withEnv(tt.env, "AWS_ENDPOINT_URL_STS", sts.URL)))
			if err != nil {
				t.Fatal(err)
			}
			c := mustRetrieve(t, p)
			if !strings.HasPrefix(c.AccessKeyID, "ASIASTS") || c.SessionToken == "" || !c.CanExpire || !c.Expires.Equal(sts.expires.Add(-roleCredentialsExpiryWindow)) {
				t.Errorf("Retrieve = %+v", c)
			}
			mustRetrieve(t, p) // cached
			forms, auths := sts.calls()
			if len(forms)-len(before) != 1 {
				t.Fatalf("%d STS calls, want 1", len(forms)-len(before))
			}
			f := forms[len(forms)-1]
			if f.Get("Action") != "AssumeRoleWithWebIdentity" || f.Get("RoleArn") != role || f.Get("WebIdentityToken") != "eyJ.web-identity.jwt" ||
				f.Get("RoleSessionName") != tt.wantSession || f.Get("DurationSeconds") != tt.wantTTL {
				t.Errorf("STS request %v", f)
			}
			if a := auths[len(auths)-1]; a != "" {
				t.Errorf("AssumeRoleWithWebIdentity was signed: %q", a)
			}
			p.(interface{ Invalidate() }).Invalidate()
			mustRetrieve(t, p)
			if forms, _ := sts.calls(); len(forms)-len(before) != 2 {
				t.Errorf("Invalidate did not refresh: %d STS calls", len(forms)-len(before))
			}
		})
	}
}

func TestCredentialsAssumeRole(t *testing.T) {
	env := isolateAWS(t)
	sts := newFakeSTS(t)
	const role = "arn:aws:iam::123456789012:role/bedrock"
	env = withEnv(env, "AWS_ENDPOINT_URL_STS", sts.URL,
		"AWS_ACCESS_KEY_ID", "AKIDSOURCE", "AWS_SECRET_ACCESS_KEY", "source-secret-value", "AWS_SESSION_TOKEN", "source-token-value")
	cfg := &config.BedrockConfig{AWSRoleARN: role, SessionTTL: 1800}
	p, err := NewCredentialsProvider(t.Context(), cfg, "us-west-2", mapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	c := mustRetrieve(t, p)
	if c.AccessKeyID != "ASIASTS1" || !c.CanExpire {
		t.Errorf("Retrieve = %+v", c)
	}
	forms, auths := sts.calls()
	if len(forms) != 1 {
		t.Fatalf("%d STS calls", len(forms))
	}
	if f := forms[0]; f.Get("Action") != "AssumeRole" || f.Get("RoleArn") != role || f.Get("RoleSessionName") != defaultRoleSessionName || f.Get("DurationSeconds") != "1800" {
		t.Errorf("STS request %v", f)
	}
	if !strings.Contains(auths[0], "Credential=AKIDSOURCE/") || !strings.Contains(auths[0], "/us-west-2/sts/aws4_request") {
		t.Errorf("AssumeRole not signed with the source keys: %q", auths[0])
	}

	// A failure names the role and what to check, and shows no secret even
	// when the upstream message echoes one.
	sts.mu.Lock()
	sts.failWith = "denied for source-secret-value"
	sts.mu.Unlock()
	p, err = NewCredentialsProvider(t.Context(), cfg, "us-west-2", mapLookup(env))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Retrieve(t.Context())
	if err == nil {
		t.Fatal("Retrieve succeeded against a failing STS")
	}
	for _, want := range []string{role, "check aws_role_arn", "AccessDenied", "[REDACTED]"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q lacks %q", err, want)
		}
	}
	assertNoSecret(t, err, "source-secret-value", "source-token-value")
}

func TestCredentialsAssumeRoleWithoutSource(t *testing.T) {
	env := isolateAWS(t)
	sts := newFakeSTS(t)
	cfg := &config.BedrockConfig{AWSRoleARN: "arn:aws:iam::123456789012:role/bedrock"}
	p, err := NewCredentialsProvider(t.Context(), cfg, "us-west-2", mapLookup(withEnv(env, "AWS_ENDPOINT_URL_STS", sts.URL)))
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Retrieve(t.Context())
	if !errors.Is(err, ErrNoCredentials) || !strings.Contains(err.Error(), "AWS_BEARER_TOKEN_BEDROCK") {
		t.Fatalf("Retrieve error = %v, want ErrNoCredentials for the source", err)
	}
	if forms, _ := sts.calls(); len(forms) != 0 {
		t.Errorf("STS called %d times without source credentials", len(forms))
	}
}

func TestRedact(t *testing.T) {
	base := errors.New("x secret-one y secret-two")
	err := redact(base, []string{"secret-one", "secret-two"})
	if err.Error() != "x [REDACTED] y [REDACTED]" || !errors.Is(err, base) {
		t.Errorf("redact = %q", err)
	}
	if redact(base, []string{"absent"}) != base {
		t.Error("redact wrapped an error without secrets")
	}
}
