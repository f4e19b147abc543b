package bedrock

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
)

// ErrNoCredentials is wrapped by the error a credentials provider from
// [NewCredentialsProvider] returns when nothing configures AWS credentials:
// no keys, no role, no profile, and no instance or container role answered.
var ErrNoCredentials = errors.New("no AWS credentials found")

// noCredentialsHint tells the operator how to give the server credentials.
const noCredentialsHint = "set AWS_BEARER_TOKEN_BEDROCK (or the provider's api_key), " +
	"or configure IAM credentials (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, " +
	"a role with AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, an instance or container role, " +
	"or the provider's aws_* config fields) where the server runs"

// defaultRoleSessionName names assumed-role sessions (visible in CloudTrail)
// when aws_role_session_name is empty.
const defaultRoleSessionName = "llama-stack-go"

// roleCredentialsExpiryWindow makes cached role credentials refresh this
// long before they expire, so that no request is signed with credentials
// that expire on the way.
const roleCredentialsExpiryWindow = time.Minute

// NewCredentialsProvider builds the AWS credential chain the Python server's config fields describe, in
// this order: static aws_access_key_id/aws_secret_access_key(/aws_session_token) from the config; else
// aws_role_arn + aws_web_identity_token_file (web identity / IRSA, session name aws_role_session_name,
// duration session_ttl); else aws_role_arn (AssumeRole from the default chain or profile); else
// profile_name; else the standard default chain (env keys, shared config/credentials files and
// AWS_PROFILE, SSO, web identity env vars, container and instance roles) via config.LoadDefaultConfig.
// env is the process environment lookup (config.LookupEnv) — pass what the SDK needs through
// config.LoadOptions where possible rather than reading os.Getenv directly; credentials are cached
// (aws.NewCredentialsCache).
//
// Static keys win over aws_role_arn, as in the Python server (a role is
// then not assumed). From env come AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE and
// AWS_ROLE_SESSION_NAME (the first steps of the default chain), and, as load
// options, AWS_CONFIG_FILE, AWS_SHARED_CREDENTIALS_FILE (else the files under
// $HOME/.aws), AWS_PROFILE, AWS_REGION/AWS_DEFAULT_REGION (when region is
// empty), AWS_EC2_METADATA_DISABLED, AWS_EC2_METADATA_SERVICE_ENDPOINT and,
// for the STS client, AWS_ENDPOINT_URL_STS/AWS_ENDPOINT_URL unless
// AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true. The SDK itself still reads the
// rest of the process environment (container credentials, SSO caches, …).
//
// Nothing is retrieved here: an error means a bad configuration (half a key
// pair, a token file without a role, a missing profile, a session_ttl STS
// refuses). When the provider finds no credentials at all, Retrieve's error
// wraps [ErrNoCredentials] and says what to set. No error contains a secret.
// The provider has an Invalidate method that drops the cached credentials.
func NewCredentialsProvider(ctx context.Context, cfg *config.BedrockConfig, region string, env config.LookupEnv) (aws.CredentialsProvider, error) {
	if cfg == nil {
		cfg = &config.BedrockConfig{}
	}
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	b := &chainBuilder{cfg: cfg, region: region, env: env}
	b.secrets = b.collectSecrets()
	p, err := b.build(ctx)
	if err != nil {
		return nil, redact(err, b.secrets)
	}
	return p, nil
}

// chainBuilder builds the provider of NewCredentialsProvider.
type chainBuilder struct {
	cfg     *config.BedrockConfig
	region  string
	env     config.LookupEnv
	secrets []string // values no error may show
}

// getenv returns the trimmed value of an environment variable, "" when unset.
func (b *chainBuilder) getenv(name string) string {
	v, _ := b.env(name)
	return strings.TrimSpace(v)
}

// collectSecrets lists the secrets the builder can see, to scrub them from
// error messages as a last line of defence.
func (b *chainBuilder) collectSecrets() []string {
	var out []string
	for _, s := range []string{
		b.cfg.AWSSecretAccessKey.Value(), b.cfg.AWSSessionToken.Value(), b.cfg.APIKey.Value(),
		b.getenv("AWS_SECRET_ACCESS_KEY"), b.getenv("AWS_SESSION_TOKEN"), b.getenv("AWS_BEARER_TOKEN_BEDROCK"),
	} {
		if s = strings.TrimSpace(s); len(s) >= 4 {
			out = append(out, s)
		}
	}
	return out
}

// build picks the first source of credentials the config names, in the
// order of NewCredentialsProvider.
func (b *chainBuilder) build(ctx context.Context) (*credentialsProvider, error) {
	cfg := b.cfg
	id := strings.TrimSpace(cfg.AWSAccessKeyID.Value())
	secret := strings.TrimSpace(cfg.AWSSecretAccessKey.Value())
	roleARN := strings.TrimSpace(cfg.AWSRoleARN)
	tokenFile := strings.TrimSpace(cfg.AWSWebIdentityTokenFile)
	profile := strings.TrimSpace(cfg.ProfileName)
	switch {
	case id != "" || secret != "":
		if id == "" || secret == "" {
			return nil, errors.New("AWS credentials: aws_access_key_id and aws_secret_access_key must be set together")
		}
		return b.static(id, secret, strings.TrimSpace(cfg.AWSSessionToken.Value()), "the provider's aws_access_key_id"), nil
	case tokenFile != "" && roleARN == "":
		return nil, errors.New("AWS credentials: aws_web_identity_token_file is set but aws_role_arn is not; set both (IRSA sets AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)")
	case tokenFile != "":
		return b.webIdentity(ctx, roleARN, tokenFile, cfg.AWSRoleSessionName,
			"check aws_role_arn and aws_web_identity_token_file (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) and the role's trust policy")
	case roleARN != "":
		return b.assumeRole(ctx, roleARN, profile)
	case profile != "":
		return b.profile(ctx, profile)
	default:
		return b.defaultChain(ctx)
	}
}

// static caches fixed keys.
func (b *chainBuilder) static(id, secret, token, what string) *credentialsProvider {
	p := credentials.NewStaticCredentialsProvider(id, secret, token)
	return &credentialsProvider{cache: aws.NewCredentialsCache(p), what: what, secrets: b.secrets}
}

// webIdentity assumes roleARN with the OIDC token in tokenFile (IRSA).
func (b *chainBuilder) webIdentity(ctx context.Context, roleARN, tokenFile, sessionName, hint string) (*credentialsProvider, error) {
	ttl, err := b.sessionTTL()
	if err != nil {
		return nil, err
	}
	// AssumeRoleWithWebIdentity is not signed: no profile, no source
	// credentials.
	base, err := b.load(ctx, "")
	if err != nil {
		return nil, err
	}
	client := b.stsClient(base, aws.AnonymousCredentials{})
	p := stscreds.NewWebIdentityRoleProvider(client, roleARN, stscreds.IdentityTokenFile(tokenFile), func(o *stscreds.WebIdentityRoleOptions) {
		o.RoleSessionName = sessionNameOr(sessionName)
		o.Duration = ttl
	})
	return &credentialsProvider{
		cache:   aws.NewCredentialsCache(p, expiryWindow),
		what:    fmt.Sprintf("role %s with the web identity token in %s", roleARN, tokenFile),
		hint:    hint,
		secrets: b.secrets,
	}, nil
}

// assumeRole assumes roleARN with the credentials of profile or, when it is
// empty, of the default chain.
func (b *chainBuilder) assumeRole(ctx context.Context, roleARN, profile string) (*credentialsProvider, error) {
	ttl, err := b.sessionTTL()
	if err != nil {
		return nil, err
	}
	var source *credentialsProvider
	if profile != "" {
		source, err = b.profile(ctx, profile)
	} else {
		source, err = b.defaultChain(ctx)
	}
	if err != nil {
		return nil, err
	}
	base, err := b.load(ctx, profile)
	if err != nil {
		return nil, err
	}
	client := b.stsClient(base, source)
	p := stscreds.NewAssumeRoleProvider(client, roleARN, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = sessionNameOr(b.cfg.AWSRoleSessionName)
		o.Duration = ttl
	})
	return &credentialsProvider{
		cache:   aws.NewCredentialsCache(p, expiryWindow),
		what:    fmt.Sprintf("role %s assumed with the credentials of %s", roleARN, source.what),
		hint:    "check aws_role_arn (AWS_ROLE_ARN), that those credentials may assume it, and session_ttl",
		secrets: b.secrets,
	}, nil
}

// profile takes the credentials of a shared-config profile (keys, a role,
// SSO, a credential process, …) as the SDK resolves them.
func (b *chainBuilder) profile(ctx context.Context, profile string) (*credentialsProvider, error) {
	awsCfg, err := b.load(ctx, profile)
	if err != nil {
		return nil, err
	}
	return &credentialsProvider{
		cache:   asCache(awsCfg.Credentials),
		what:    fmt.Sprintf("AWS profile %q", profile),
		hint:    "check profile_name (AWS_PROFILE) and the shared config and credentials files; for SSO run aws sso login",
		secrets: b.secrets,
	}, nil
}

// defaultChain is the SDK's default chain, with the environment read
// through b.env.
func (b *chainBuilder) defaultChain(ctx context.Context) (*credentialsProvider, error) {
	id, secret := b.getenv("AWS_ACCESS_KEY_ID"), b.getenv("AWS_SECRET_ACCESS_KEY")
	if id != "" && secret != "" {
		return b.static(id, secret, b.getenv("AWS_SESSION_TOKEN"), "AWS_ACCESS_KEY_ID"), nil
	}
	if tokenFile := b.getenv("AWS_WEB_IDENTITY_TOKEN_FILE"); tokenFile != "" {
		roleARN := b.getenv("AWS_ROLE_ARN")
		if roleARN == "" {
			return nil, errors.New("AWS credentials: AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not; set both")
		}
		return b.webIdentity(ctx, roleARN, tokenFile, b.getenv("AWS_ROLE_SESSION_NAME"),
			"check AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE and the role's trust policy")
	}
	profile := b.getenv("AWS_PROFILE")
	awsCfg, err := b.load(ctx, profile)
	if err != nil {
		return nil, err
	}
	cache := asCache(awsCfg.Credentials)
	p := &credentialsProvider{
		cache:   cache,
		what:    "the default AWS credential chain",
		hint:    "check the AWS_* environment variables and the shared config and credentials files",
		secrets: b.secrets,
	}
	if profile != "" {
		p.what = fmt.Sprintf("AWS profile %q (AWS_PROFILE)", profile)
	}
	// With nothing configured the SDK falls back to the EC2 instance role
	// alone; if that fails there are no credentials at all.
	if src := cache.ProviderSources(); len(src) == 1 && src[0] == aws.CredentialSourceIMDS {
		p.none = true
	}
	return p, nil
}

// load runs config.LoadDefaultConfig with what b.env says as load options.
func (b *chainBuilder) load(ctx context.Context, profile string) (aws.Config, error) {
	var opts []func(*awsconfig.LoadOptions) error
	if r := firstSet(b.region, b.getenv("AWS_REGION"), b.getenv("AWS_DEFAULT_REGION")); r != "" {
		opts = append(opts, awsconfig.WithRegion(r))
	}
	home := b.getenv("HOME")
	if f := b.getenv("AWS_CONFIG_FILE"); f != "" {
		opts = append(opts, awsconfig.WithSharedConfigFiles([]string{f}))
	} else if home != "" {
		opts = append(opts, awsconfig.WithSharedConfigFiles([]string{filepath.Join(home, ".aws", "config")}))
	}
	if f := b.getenv("AWS_SHARED_CREDENTIALS_FILE"); f != "" {
		opts = append(opts, awsconfig.WithSharedCredentialsFiles([]string{f}))
	} else if home != "" {
		opts = append(opts, awsconfig.WithSharedCredentialsFiles([]string{filepath.Join(home, ".aws", "credentials")}))
	}
	if profile != "" {
		opts = append(opts, awsconfig.WithSharedConfigProfile(profile))
	}
	switch v := b.getenv("AWS_EC2_METADATA_DISABLED"); {
	case strings.EqualFold(v, "true"):
		opts = append(opts, awsconfig.WithEC2IMDSClientEnableState(imds.ClientDisabled))
	case strings.EqualFold(v, "false"):
		opts = append(opts, awsconfig.WithEC2IMDSClientEnableState(imds.ClientEnabled))
	}
	if v := b.getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT"); v != "" {
		opts = append(opts, awsconfig.WithEC2IMDSEndpoint(v))
	}
	if n := b.cfg.TotalMaxAttempts; n > 0 {
		opts = append(opts, awsconfig.WithRetryMaxAttempts(n))
	}
	if m, err := aws.ParseRetryMode(b.cfg.RetryMode); err == nil {
		opts = append(opts, awsconfig.WithRetryMode(m)) // "legacy" (botocore's) keeps the SDK default
	}
	awsCfg, err := awsconfig.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		if profile != "" {
			return aws.Config{}, fmt.Errorf("AWS credentials: load AWS profile %q (check profile_name or AWS_PROFILE and the shared config files): %w", profile, err)
		}
		return aws.Config{}, fmt.Errorf("AWS credentials: load AWS config: %w", err)
	}
	return awsCfg, nil
}

// stsClient is an STS client of base signing with creds, at the endpoint
// the environment configures for STS, if any.
func (b *chainBuilder) stsClient(base aws.Config, creds aws.CredentialsProvider) *sts.Client {
	var endpoint string
	if !strings.EqualFold(b.getenv("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		endpoint = firstSet(b.getenv("AWS_ENDPOINT_URL_STS"), b.getenv("AWS_ENDPOINT_URL"))
	}
	return sts.NewFromConfig(base, func(o *sts.Options) {
		o.Credentials = creds
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
	})
}

// sessionTTL is the requested role session duration; 0 leaves it to STS
// (web identity) or the SDK (15 min for AssumeRole).
func (b *chainBuilder) sessionTTL() (time.Duration, error) {
	ttl := b.cfg.SessionTTL
	if ttl == 0 {
		return 0, nil
	}
	if ttl < 900 || ttl > 43200 {
		return 0, fmt.Errorf("AWS credentials: session_ttl %d is outside the 900..43200 seconds STS allows for a role session", ttl)
	}
	return time.Duration(ttl) * time.Second, nil
}

// sessionNameOr returns name, or the default role session name when it is empty.
func sessionNameOr(name string) string {
	if name = strings.TrimSpace(name); name != "" {
		return name
	}
	return defaultRoleSessionName
}

// expiryWindow sets the expiry window of the role credentials caches.
func expiryWindow(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = roleCredentialsExpiryWindow }

// asCache returns p as the credentials cache it is after LoadDefaultConfig,
// or caches it.
func asCache(p aws.CredentialsProvider) *aws.CredentialsCache {
	if c, ok := p.(*aws.CredentialsCache); ok {
		return c
	}
	if p == nil {
		p = aws.AnonymousCredentials{}
	}
	return aws.NewCredentialsCache(p)
}

// credentialsProvider is the provider NewCredentialsProvider returns: a
// credentials cache whose errors say where the credentials were to come
// from and what to fix.
type credentialsProvider struct {
	cache   *aws.CredentialsCache
	what    string   // where the credentials come from, for messages
	hint    string   // what to check when retrieving them fails
	none    bool     // only the instance role is left: failing means no credentials at all
	secrets []string // values no error may show
}

// Retrieve returns cached credentials, refreshing them when they expired.
func (p *credentialsProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	creds, err := p.cache.Retrieve(ctx)
	if err == nil {
		if creds.AccessKeyID == "" && creds.SecretAccessKey == "" {
			// Anonymous: there is nothing to sign with.
			return aws.Credentials{}, fmt.Errorf("%w: %s", ErrNoCredentials, noCredentialsHint)
		}
		return creds, nil
	}
	switch {
	case isContextErr(err) && ctx.Err() != nil:
		err = fmt.Errorf("get AWS credentials from %s: %w", p.what, err)
	case p.none:
		err = fmt.Errorf("%w: %s: %w", ErrNoCredentials, noCredentialsHint, err)
	default:
		err = fmt.Errorf("get AWS credentials from %s (%s): %w", p.what, p.hint, err)
	}
	return aws.Credentials{}, redact(err, p.secrets)
}

// Invalidate drops the cached credentials; the next Retrieve fetches new ones.
func (p *credentialsProvider) Invalidate() { p.cache.Invalidate() }

// redactedError is an error whose message had secrets removed.
type redactedError struct {
	msg string
	err error
}

// Error returns the message without the secrets.
func (e *redactedError) Error() string { return e.msg }

// Unwrap returns the original error, for errors.Is and errors.As.
func (e *redactedError) Unwrap() error { return e.err }

// redact replaces every secret in err's message with "[REDACTED]".
func redact(err error, secrets []string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	out := msg
	for _, s := range secrets {
		out = strings.ReplaceAll(out, s, "[REDACTED]")
	}
	if out == msg {
		return err
	}
	return &redactedError{msg: out, err: err}
}

// firstSet returns the first non-empty string of vs.
func firstSet(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
