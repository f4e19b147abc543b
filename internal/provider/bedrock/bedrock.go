// Package bedrock is the Amazon Bedrock provider. Chat goes to Bedrock
// Runtime's OpenAI-compatible surface (/openai/v1) through the
// openaicompat adapter; this package adds what is Bedrock's own: region and
// endpoint resolution the way AWS SDKs do it, the Bedrock API key, and
// error messages that say which credential to fix.
package bedrock

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
)

// DefaultRegion is used when neither the config nor the environment names
// a region.
const DefaultRegion = "us-west-2"

// regionRE accepts AWS region names and nothing that could change a host.
var regionRE = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-\d+$`)

// Provider is a Bedrock inference provider.
type Provider struct {
	*openaicompat.Client
	id         string
	region     string
	endpoint   string
	controlURL string      // the Bedrock control plane, for model discovery
	key        string      // static bearer key, when configured
	tokens     TokenSource // minted keys from IAM credentials, when no key is
	signer     *SigV4      // SigV4 signing, with auth_mode sigv4
	hc         *http.Client
}

var (
	_ provider.Provider = (*Provider)(nil)
	_ provider.Embedder = (*Provider)(nil)
)

// Options carry what New needs besides the provider's config.
type Options struct {
	// LookupEnv reads the environment (os.LookupEnv in production).
	LookupEnv config.LookupEnv
	// HTTPClient sends upstream requests; nil means the default client.
	HTTPClient *http.Client
	// Logger receives the provider's warnings (a failed key refresh); nil
	// discards them.
	Logger *slog.Logger
}

// New builds the provider with the given provider_id from its config.
func New(id string, cfg *config.BedrockConfig, o Options) (*Provider, error) {
	env := o.LookupEnv
	if env == nil {
		env = func(string) (string, bool) { return "", false }
	}
	p := &Provider{id: id, hc: o.HTTPClient}
	if p.hc == nil {
		p.hc = openaicompat.NewHTTPClient()
	}
	p.region = firstNonEmpty(cfg.RegionName, getenv(env, "AWS_DEFAULT_REGION"), getenv(env, "AWS_REGION"), DefaultRegion)
	if !regionRE.MatchString(p.region) {
		return nil, fmt.Errorf("bedrock provider %s: region_name %q is not an AWS region name", id, p.region)
	}
	endpoint, err := resolveEndpoint(cfg.BaseURL, p.region, env)
	if err != nil {
		return nil, fmt.Errorf("bedrock provider %s: %w", id, err)
	}
	p.endpoint = endpoint
	p.controlURL = controlEndpoint(p.region, env)
	p.key = firstNonEmpty(strings.TrimSpace(cfg.APIKey.Value()), getenv(env, "AWS_BEARER_TOKEN_BEDROCK"))
	if cfg.AuthMode == "sigv4" || p.key == "" {
		// IAM credentials from the config's fields or the standard chain;
		// nothing is fetched until the first request.
		creds, err := NewCredentialsProvider(context.Background(), cfg, p.region, env)
		if err != nil {
			return nil, fmt.Errorf("bedrock provider %s: %w", id, err)
		}
		if cfg.AuthMode == "sigv4" {
			p.key, p.signer = "", &SigV4{Credentials: creds, Region: p.region}
		} else {
			p.tokens = &Minter{Credentials: creds, Region: p.region, Logger: o.Logger}
		}
	}
	p.Client = openaicompat.New(openaicompat.Options{
		ProviderID:     id,
		BaseURL:        endpoint + "/openai/v1",
		HTTPClient:     p.hc,
		Authorize:      p.authorize,
		TranslateError: p.translateError,
	})
	return p, nil
}

// Chat sends a completion through the API that serves the model (see
// apiFor) and, unless the model's metadata asks for the upstream form,
// separates reasoning from the answer.
func (p *Provider) Chat(ctx context.Context, req *provider.Request) (*openai.ChatCompletion, error) {
	if apiFor(req.Model, req.Metadata) == APIConverse {
		return p.converse(ctx, req)
	}
	req, err := p.prepare(req)
	if err != nil {
		return nil, err
	}
	c, err := p.Client.Chat(ctx, req)
	if err != nil {
		return nil, err
	}
	if reasoningMode(req.Metadata) == ReasoningSeparate {
		separateCompletion(c)
	}
	return c, nil
}

// ChatStream opens a stream through the API that serves the model and,
// unless the model's metadata asks for the upstream form, separates
// reasoning from the answer chunk by chunk.
func (p *Provider) ChatStream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	if apiFor(req.Model, req.Metadata) == APIConverse {
		return p.converseStream(ctx, req)
	}
	req, err := p.prepare(req)
	if err != nil {
		return nil, err
	}
	st, err := p.Client.ChatStream(ctx, req)
	if err != nil {
		return nil, err
	}
	if reasoningMode(req.Metadata) == ReasoningSeparate {
		return newReasoningStream(st), nil
	}
	return st, nil
}

// prepare renames reasoning_content on assistant history to the field
// Bedrock expects.
func (p *Provider) prepare(req *provider.Request) (*provider.Request, error) {
	raw, changed, err := renameHistoryReasoning(req)
	if err != nil {
		return nil, &provider.Error{Provider: p.id, StatusCode: http.StatusBadRequest, Type: "invalid_request_error", Message: "could not prepare the message history", Err: err}
	}
	if !changed {
		return req, nil
	}
	r := *req
	r.Raw = raw
	return &r, nil
}

// Region is the AWS region requests go to.
func (p *Provider) Region() string { return p.region }

// Endpoint is the Bedrock Runtime base URL requests go to.
func (p *Provider) Endpoint() string { return p.endpoint }

// AuthMode says how requests are authenticated: "api_key" (a configured
// key), "iam" (keys minted from IAM credentials) or "sigv4".
func (p *Provider) AuthMode() string {
	switch {
	case p.signer != nil:
		return "sigv4"
	case p.key != "":
		return "api_key"
	default:
		return "iam"
	}
}

// resolveEndpoint picks the Bedrock Runtime base URL the way the AWS SDKs
// do: the config's base_url, then AWS_ENDPOINT_URL_BEDROCK_RUNTIME, then
// AWS_ENDPOINT_URL (both ignored when AWS_IGNORE_CONFIGURED_ENDPOINT_URLS
// is true), then the regional public endpoint.
func resolveEndpoint(configured, region string, env config.LookupEnv) (string, error) {
	u := configured
	if u == "" && !strings.EqualFold(getenv(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		u = firstNonEmpty(getenv(env, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME"), getenv(env, "AWS_ENDPOINT_URL"))
	}
	if u == "" {
		suffix := "amazonaws.com"
		if strings.HasPrefix(region, "cn-") {
			suffix = "amazonaws.com.cn"
		}
		return "https://bedrock-runtime." + region + "." + suffix, nil
	}
	parsed, err := url.Parse(u)
	if err != nil || (parsed.Scheme != "http" && parsed.Scheme != "https") || parsed.Host == "" {
		return "", fmt.Errorf("endpoint %q is not an http(s) URL", u)
	}
	// A base that already ends in /openai/v1 is accepted as well.
	return strings.TrimSuffix(strings.TrimSuffix(strings.TrimRight(u, "/"), "/openai/v1"), "/"), nil
}

// ProviderDataKey is the X-LlamaStack-Provider-Data member that carries a
// per-request Bedrock API key, as Llama Stack clients send it.
const ProviderDataKey = "aws_bearer_token_bedrock"

// authorize authenticates an upstream request: the caller's per-request
// key when the provider data carries one, else the server's key, a key
// minted from its IAM credentials, or a SigV4 signature.
func (p *Provider) authorize(r *http.Request, data provider.Data) error {
	if k := strings.TrimSpace(data[ProviderDataKey]); k != "" {
		r.Header.Set("Authorization", "Bearer "+k)
		return nil
	}
	switch {
	case p.key != "":
		r.Header.Set("Authorization", "Bearer "+p.key)
		return nil
	case p.signer != nil:
		var body []byte
		if r.GetBody != nil {
			rc, err := r.GetBody()
			if err != nil {
				return fmt.Errorf("read body to sign: %w", err)
			}
			body, err = io.ReadAll(rc)
			rc.Close()
			if err != nil {
				return fmt.Errorf("read body to sign: %w", err)
			}
		}
		if err := p.signer.Sign(r.Context(), r, body); err != nil {
			return p.credentialsError(r, err)
		}
		return nil
	default:
		tok, err := p.tokens.Token(r.Context())
		if err != nil {
			return p.credentialsError(r, err)
		}
		r.Header.Set("Authorization", "Bearer "+tok)
		return nil
	}
}

// credentialsError reports credentials the server could not get.
func (p *Provider) credentialsError(r *http.Request, err error) error {
	if r.Context().Err() != nil {
		return context.Cause(r.Context())
	}
	code := "credentials_error"
	if errors.Is(err, ErrNoCredentials) {
		code = "missing_credentials"
	}
	return &provider.Error{Provider: p.id, StatusCode: http.StatusUnauthorized, Type: "authentication_error", Code: code,
		Message: "the server has no usable Bedrock credentials: " + err.Error(), Err: err}
}

// translateError rewords Bedrock's auth and access errors (all 403s on the
// wire) into 401/403 answers that say what the operator has to fix.
// Bedrock's own text is kept at the end; it never contains the key.
func (p *Provider) translateError(e *provider.Error) {
	msg := strings.ToLower(e.Message)
	switch {
	case strings.Contains(msg, "bearer token has expired"):
		e.StatusCode, e.Type, e.Code = http.StatusUnauthorized, "authentication_error", "expired_api_key"
		e.Message = fmt.Sprintf("Bedrock rejected the server's API key because it has expired; put a fresh key in %s and restart the server (Bedrock said: %s)", p.keySource(), e.Message)
	case strings.Contains(msg, "api key is valid"), strings.Contains(msg, "invalid api key format"),
		strings.Contains(msg, "security token included in the request is invalid"), e.Code == "UnrecognizedClientException":
		e.StatusCode, e.Type, e.Code = http.StatusUnauthorized, "authentication_error", "invalid_api_key"
		e.Message = fmt.Sprintf("Bedrock rejected the server's API key as invalid; check %s (Bedrock said: %s)", p.keySource(), e.Message)
	case strings.Contains(msg, "security token included in the request is expired"):
		e.StatusCode, e.Type, e.Code = http.StatusUnauthorized, "authentication_error", "expired_credentials"
		e.Message = "the server's AWS credentials have expired; refresh them where the server runs (Bedrock said: " + e.Message + ")"
	case strings.Contains(msg, "don't have access to the model"):
		e.StatusCode, e.Type, e.Code = http.StatusForbidden, "permission_error", "model_access_denied"
		e.Message = fmt.Sprintf("the server's Bedrock credentials have no access to this model in %s; request access in the Bedrock console or use another model (Bedrock said: %s)", p.region, e.Message)
	case strings.Contains(msg, "is not authorized to perform"):
		e.StatusCode, e.Type, e.Code = http.StatusForbidden, "permission_error", "iam_access_denied"
		e.Message = "the IAM identity behind the server's Bedrock credentials is not allowed to call this model; grant it bedrock:InvokeModel (and bedrock:CallWithBearerToken for API keys)"
	case e.StatusCode == http.StatusForbidden && e.Code == "AccessDeniedException":
		e.Type = "permission_error"
		e.Message = fmt.Sprintf("Bedrock denied access; check %s and the model's access settings (Bedrock said: %s)", p.keySource(), e.Message)
	}
}

// keySource names where the operator sets the key.
func (p *Provider) keySource() string {
	return "AWS_BEARER_TOKEN_BEDROCK (or the provider's api_key)"
}

func getenv(env config.LookupEnv, name string) string {
	v, _ := env(name)
	return strings.TrimSpace(v)
}

func firstNonEmpty(vs ...string) string {
	for _, v := range vs {
		if v != "" {
			return v
		}
	}
	return ""
}
