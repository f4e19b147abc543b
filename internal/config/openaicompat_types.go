package config

import (
	"errors"
	"maps"
	"strings"

	"go.yaml.in/yaml/v3"
)

// The typed configs of the OpenAI-compatible provider types. Each accepts
// exactly the keys of its OGX config class (in
// src/ogx/providers/remote/inference/<type>/config.py, all extending
// RemoteInferenceProviderConfig, whose keys RemoteInference holds), under
// the names OGX reads them by (aliases included: api_key, api_token), so
// OGX configs load unchanged; any other key is an error. base_url values
// lose their trailing slashes.

// HostedConfig configures the hosted services whose OGX configs have the
// same keys, api_key and base_url: remote::openai (OpenAIConfig),
// remote::together (TogetherImplConfig), remote::fireworks
// (FireworksImplConfig), remote::groq (GroqConfig), remote::sambanova
// (SambaNovaImplConfig) and remote::cerebras (CerebrasImplConfig).
type HostedConfig struct {
	// APIKey is the service's API key (OGX's auth_credential, alias api_key).
	APIKey Secret `yaml:"api_key" json:"api_key"`
	// BaseURL is the OpenAI-compatible base. It defaults to the service's:
	// https://api.openai.com/v1, https://api.together.xyz/v1,
	// https://api.fireworks.ai/inference/v1, https://api.groq.com/openai/v1,
	// https://api.sambanova.ai/v1, https://api.cerebras.ai/v1 (for Cerebras,
	// CEREBRAS_BASE_URL when set and the key is absent).
	BaseURL string `yaml:"base_url" json:"base_url"`
	// RemoteInference holds allowed_models, refresh_models and network.
	RemoteInference `yaml:",inline"`

	urlEnv string // environment variable that defaults base_url
}

func (c *HostedConfig) envDefaults(block *yaml.Node, env LookupEnv, _ *problems, _ string) {
	envDefault(block, env, "base_url", c.urlEnv, &c.BaseURL)
}

func (c *HostedConfig) normalize() { trimURL(&c.BaseURL) }

func (c *HostedConfig) validate(p *problems, path string, block *yaml.Node) {
	c.check(p, path, block, "base_url", c.BaseURL, false)
}

func (c *HostedConfig) fill(o *OpenAICompat) { o.BaseURL, o.APIKey = c.BaseURL, c.APIKey.Value() }

// defaultVLLMMaxTokens is the default of VLLMConfig.MaxTokens.
const defaultVLLMMaxTokens = 4096

// VLLMConfig configures a vLLM server (remote::vllm, OGX's
// VLLMInferenceAdapterConfig).
type VLLMConfig struct {
	// BaseURL is the server's OpenAI base, including /v1, e.g.
	// http://localhost:8000/v1 (OGX's starter takes it from VLLM_URL). Required.
	BaseURL string `yaml:"base_url" json:"base_url"`
	// MaxTokens is added as max_tokens to chat completion requests without
	// one; default 4096, 0 for none.
	MaxTokens int `yaml:"max_tokens" json:"max_tokens"`
	// APIToken is the server's API key (auth_credential, alias api_token).
	// Without it OGX sends a placeholder, so none is required.
	APIToken Secret `yaml:"api_token" json:"api_token"`
	// TLSVerify is the deprecated form of network.tls.verify: true, false
	// or a CA bundle path. Parse copies it there when network.tls is not set.
	TLSVerify any `yaml:"tls_verify" json:"tls_verify"`
	// RemoteInference holds allowed_models, refresh_models and network.
	RemoteInference `yaml:",inline"`
}

// tlsVerifyOK reports whether v is a valid tls_verify or network.tls.verify value.
func tlsVerifyOK(v any) bool {
	switch v := v.(type) {
	case bool:
		return true
	case string:
		return v != ""
	}
	return false
}

func (c *VLLMConfig) normalize() {
	trimURL(&c.BaseURL)
	if !tlsVerifyOK(c.TLSVerify) {
		return
	}
	if c.Network == nil {
		c.Network = &NetworkConfig{}
	}
	if c.Network.TLS == nil {
		c.Network.TLS = &TLSConfig{Verify: c.TLSVerify}
	}
}

func (c *VLLMConfig) validate(p *problems, path string, block *yaml.Node) {
	c.check(p, path, block, "base_url", c.BaseURL, false)
	if c.MaxTokens < 0 {
		p.addf(lineNode(block, "max_tokens"), path+".max_tokens", "must not be negative, got %d", c.MaxTokens)
	}
	if c.TLSVerify != nil && !tlsVerifyOK(c.TLSVerify) {
		p.addf(lineNode(block, "tls_verify"), path+".tls_verify", "expected a boolean or a CA file path, got %s", fmtValue(c.TLSVerify))
	}
}

func (c *VLLMConfig) fill(o *OpenAICompat) {
	o.BaseURL, o.APIKey, o.KeyRequired, o.MaxTokens = c.BaseURL, c.APIToken.Value(), false, c.MaxTokens
}

// OllamaConfig configures an Ollama server (remote::ollama, OGX's
// OllamaImplConfig).
type OllamaConfig struct {
	// BaseURL is the server's OpenAI base, default http://localhost:11434/v1.
	BaseURL string `yaml:"base_url" json:"base_url"`
	// AuthCredential is accepted, as OGX does, and not used: OGX's Ollama
	// adapter sends no key of its own and takes none per request.
	AuthCredential Secret `yaml:"auth_credential" json:"auth_credential"`
	// RemoteInference holds allowed_models, refresh_models and network.
	RemoteInference `yaml:",inline"`
}

func (c *OllamaConfig) normalize() { trimURL(&c.BaseURL) }

func (c *OllamaConfig) validate(p *problems, path string, block *yaml.Node) {
	c.check(p, path, block, "base_url", c.BaseURL, false)
}

func (c *OllamaConfig) fill(o *OpenAICompat) { o.BaseURL, o.KeyRequired = c.BaseURL, false }

// GeminiConfig configures Google Gemini through its OpenAI-compatible
// endpoint (remote::gemini, OGX's GeminiConfig), with an API key or an
// OAuth2 access token and its quota project.
type GeminiConfig struct {
	// APIKey is a Gemini API key (auth_credential, alias api_key).
	APIKey Secret `yaml:"api_key" json:"api_key"`
	// AccessToken is an OAuth2 access token, sent instead of APIKey; it
	// excludes APIKey and needs Project.
	AccessToken Secret `yaml:"access_token" json:"access_token"`
	// Project is the Google Cloud project for quota attribution, sent as
	// x-goog-user-project; only with AccessToken.
	Project string `yaml:"project" json:"project"`
	// BaseURL overrides the endpoint (not in OGX, whose adapter always uses
	// https://generativelanguage.googleapis.com/v1beta/openai, the default).
	BaseURL string `yaml:"base_url" json:"base_url"`
	// RemoteInference holds allowed_models, refresh_models and network.
	RemoteInference `yaml:",inline"`
}

func (c *GeminiConfig) normalize() { trimURL(&c.BaseURL) }

func (c *GeminiConfig) validate(p *problems, path string, block *yaml.Node) {
	c.check(p, path, block, "base_url", c.BaseURL, false)
	switch {
	case c.APIKey != "" && c.AccessToken != "":
		p.add(lineNode(block, "access_token"), path+".access_token", errors.New("api_key and access_token exclude each other"))
	case c.AccessToken != "" && c.Project == "":
		p.add(lineNode(block, "project"), path+".project", errors.New("required with access_token (Google needs a quota project for OAuth credentials)"))
	case c.Project != "" && c.AccessToken == "":
		p.add(lineNode(block, "project"), path+".project", errors.New("needs access_token (api_key authentication has no quota project)"))
	}
}

func (c *GeminiConfig) fill(o *OpenAICompat) {
	o.BaseURL, o.APIKey = c.BaseURL, c.APIKey.Value()
	if c.AccessToken != "" {
		o.APIKey = c.AccessToken.Value()
	}
	if c.Project != "" {
		if o.Headers == nil {
			o.Headers = map[string]string{}
		}
		o.Headers["x-goog-user-project"] = c.Project
	}
}

// defaultAzureAPIType is the default of AzureConfig.APIType.
const defaultAzureAPIType = "azure"

// AzureConfig configures Azure OpenAI (remote::azure, OGX's AzureConfig).
type AzureConfig struct {
	// APIKey is the resource's API key (auth_credential, alias api_key),
	// sent in the api-key header.
	APIKey Secret `yaml:"api_key" json:"api_key"`
	// BaseURL is the resource's OpenAI base, e.g.
	// https://<resource>.openai.azure.com/openai/v1. Required.
	BaseURL string `yaml:"base_url" json:"base_url"`
	// APIVersion is Azure's API version, e.g. 2024-12-01-preview; when the
	// key is absent, AZURE_API_VERSION. Sent as the api-version query
	// parameter unless BaseURL is the v1 form (ends in /v1), which takes none.
	APIVersion string `yaml:"api_version" json:"api_version"`
	// APIType is accepted and unused, as in OGX; default AZURE_API_TYPE when
	// the key is absent, else "azure".
	APIType string `yaml:"api_type" json:"api_type"`
	// RemoteInference holds allowed_models, refresh_models and network.
	RemoteInference `yaml:",inline"`
}

func (c *AzureConfig) envDefaults(block *yaml.Node, env LookupEnv, _ *problems, _ string) {
	envDefault(block, env, "api_version", "AZURE_API_VERSION", &c.APIVersion)
	envDefault(block, env, "api_type", "AZURE_API_TYPE", &c.APIType)
}

func (c *AzureConfig) normalize() { trimURL(&c.BaseURL) }

func (c *AzureConfig) validate(p *problems, path string, block *yaml.Node) {
	c.check(p, path, block, "base_url", c.BaseURL, false)
	if strings.ContainsAny(c.APIVersion, " \t\r\n&#?/") {
		p.addf(lineNode(block, "api_version"), path+".api_version", "invalid API version %q", c.APIVersion)
	}
}

func (c *AzureConfig) fill(o *OpenAICompat) {
	o.BaseURL, o.APIKey, o.AuthHeader, o.AuthScheme = c.BaseURL, c.APIKey.Value(), "api-key", ""
	if c.APIVersion != "" && !strings.HasSuffix(c.BaseURL, "/v1") {
		o.Query = map[string]string{"api-version": c.APIVersion}
	}
}

// defaultNVIDIATimeout is the default of NVIDIAConfig.Timeout, in seconds.
const defaultNVIDIATimeout = 60

// defaultRerankModelToURL is the default of NVIDIAConfig.RerankModelToURL:
// the hosted rerank endpoints OGX knows.
var defaultRerankModelToURL = map[string]string{
	"nv-rerank-qa-mistral-4b:1":          "https://ai.api.nvidia.com/v1/retrieval/nvidia/reranking",
	"nvidia/nv-rerankqa-mistral-4b-v3":   "https://ai.api.nvidia.com/v1/retrieval/nvidia/nv-rerankqa-mistral-4b-v3/reranking",
	"nvidia/llama-3.2-nv-rerankqa-1b-v2": "https://ai.api.nvidia.com/v1/retrieval/nvidia/llama-3_2-nv-rerankqa-1b-v2/reranking",
}

// nvidiaHostedHost marks NVIDIA's hosted API in a base URL.
const nvidiaHostedHost = "integrate.api.nvidia.com"

// NVIDIAConfig configures NVIDIA NIM (remote::nvidia, OGX's NVIDIAConfig):
// NVIDIA's hosted API or a self-hosted NIM.
type NVIDIAConfig struct {
	// APIKey is the NVIDIA API key (auth_credential, alias api_key); the
	// hosted API needs one, a self-hosted NIM usually not.
	APIKey Secret `yaml:"api_key" json:"api_key"`
	// BaseURL is the NIM's OpenAI base; when the key is absent,
	// NVIDIA_BASE_URL, else https://integrate.api.nvidia.com/v1.
	BaseURL string `yaml:"base_url" json:"base_url"`
	// Timeout is a number of seconds, default 60; OGX accepts it and does
	// not apply it (use network.timeout).
	Timeout int `yaml:"timeout" json:"timeout"`
	// RerankModelToURL maps rerank model ids to their endpoints; when the
	// key is absent or null, OGX's three hosted rerank models.
	RerankModelToURL map[string]string `yaml:"rerank_model_to_url" json:"rerank_model_to_url"`
	// RemoteInference holds allowed_models, refresh_models and network.
	RemoteInference `yaml:",inline"`
}

// Hosted reports whether BaseURL is NVIDIA's hosted API, which needs a key.
func (c *NVIDIAConfig) Hosted() bool { return strings.Contains(c.BaseURL, nvidiaHostedHost) }

func (c *NVIDIAConfig) envDefaults(block *yaml.Node, env LookupEnv, _ *problems, _ string) {
	envDefault(block, env, "base_url", "NVIDIA_BASE_URL", &c.BaseURL)
}

func (c *NVIDIAConfig) normalize() {
	trimURL(&c.BaseURL)
	if c.RerankModelToURL == nil {
		c.RerankModelToURL = maps.Clone(defaultRerankModelToURL)
	}
}

func (c *NVIDIAConfig) validate(p *problems, path string, block *yaml.Node) {
	c.check(p, path, block, "base_url", c.BaseURL, false)
	if c.Timeout < 0 {
		p.addf(lineNode(block, "timeout"), path+".timeout", "must not be negative, got %d", c.Timeout)
	}
	urls := lookup(block, "rerank_model_to_url")
	for _, model := range sortedKeys(c.RerankModelToURL) {
		if err := checkHTTPURL(c.RerankModelToURL[model], true); err != nil {
			p.add(lineNode(urls, model), path+".rerank_model_to_url."+model, err)
		}
	}
}

func (c *NVIDIAConfig) fill(o *OpenAICompat) {
	o.BaseURL, o.APIKey, o.KeyRequired = c.BaseURL, c.APIKey.Value(), c.Hosted()
}

// EndpointConfig configures a model-serving endpoint reached with a base URL
// and a token: remote::runpod (OGX's RunpodImplConfig) and
// remote::databricks (DatabricksImplConfig).
type EndpointConfig struct {
	// BaseURL is the endpoint's OpenAI base. Required. For RunPod, e.g.
	// https://api.runpod.ai/v2/<endpoint>/openai/v1; for Databricks, the
	// workspace URL with /serving-endpoints.
	BaseURL string `yaml:"base_url" json:"base_url"`
	// APIToken is the API token (auth_credential, alias api_token).
	APIToken Secret `yaml:"api_token" json:"api_token"`
	// RemoteInference holds allowed_models, refresh_models and network.
	RemoteInference `yaml:",inline"`
}

func (c *EndpointConfig) normalize() { trimURL(&c.BaseURL) }

func (c *EndpointConfig) validate(p *problems, path string, block *yaml.Node) {
	c.check(p, path, block, "base_url", c.BaseURL, false)
}

func (c *EndpointConfig) fill(o *OpenAICompat) { o.BaseURL, o.APIKey = c.BaseURL, c.APIToken.Value() }

// PassthroughConfig configures passthrough (remote::passthrough, OGX's
// PassthroughImplConfig): requests go unchanged to any OpenAI-compatible
// server.
type PassthroughConfig struct {
	// APIKey is sent as a bearer token and wins over a per-request key
	// (auth_credential, alias api_key).
	APIKey Secret `yaml:"api_key" json:"api_key"`
	// BaseURL is the server's URL without /v1, which is appended. When it is
	// not set, each request's provider data gives it as passthrough_url.
	BaseURL string `yaml:"base_url" json:"base_url"`
	// ForwardHeaders maps provider-data fields to the headers their values
	// are sent in, e.g. {maas_api_token: Authorization}; only these are
	// forwarded. Fields starting with "__" and security-sensitive headers
	// (Host, Cookie, X-Forwarded-For, ...) are refused.
	ForwardHeaders map[string]string `yaml:"forward_headers" json:"forward_headers"`
	// ExtraBlockedHeaders adds header names ForwardHeaders may not name.
	ExtraBlockedHeaders []string `yaml:"extra_blocked_headers" json:"extra_blocked_headers"`
	// RemoteInference holds allowed_models, refresh_models and network.
	RemoteInference `yaml:",inline"`
}

// passthroughSuffix is the path passthrough appends to its base URL.
const passthroughSuffix = "/v1"

// blockedForwardHeaders are the headers passthrough never forwards: framing,
// hop-by-hop, cookies and proxy or trust headers (lower case).
var blockedForwardHeaders = []string{
	"host", "content-type", "content-length", "transfer-encoding", "connection", "upgrade", "te", "trailer",
	"cookie", "set-cookie", "forwarded", "proxy-authorization",
	"x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-prefix", "x-real-ip",
}

// isToken reports whether s is an HTTP token (RFC 9110), as a header name must be.
func isToken(s string) bool {
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return s != ""
}

func (c *PassthroughConfig) normalize() {
	trimURL(&c.BaseURL)
	for k, h := range c.ForwardHeaders {
		c.ForwardHeaders[k] = strings.TrimSpace(h)
	}
}

func (c *PassthroughConfig) validate(p *problems, path string, block *yaml.Node) {
	c.check(p, path, block, "base_url", c.BaseURL, true)
	blocked := map[string]bool{}
	for _, h := range blockedForwardHeaders {
		blocked[h] = true
	}
	for i, h := range c.ExtraBlockedHeaders {
		h = strings.ToLower(strings.TrimSpace(h))
		if h == "" {
			p.add(lineNode(block, "extra_blocked_headers"), indexPath(path+".extra_blocked_headers", i), errors.New("empty header name"))
		}
		blocked[h] = true
	}
	fwd := lookup(block, "forward_headers")
	for _, key := range sortedKeys(c.ForwardHeaders) {
		h, n, kp := c.ForwardHeaders[key], lineNode(fwd, key), path+".forward_headers."+key
		switch {
		case strings.HasPrefix(key, "__"):
			p.add(n, kp, errors.New(`provider-data keys starting with "__" are reserved`))
		case !isToken(h):
			p.addf(n, kp, "%q is not a valid HTTP header name", h)
		case blocked[strings.ToLower(h)]:
			p.addf(n, kp, "header %q may not be forwarded (security-sensitive)", h)
		}
	}
}

func (c *PassthroughConfig) fill(o *OpenAICompat) {
	if c.BaseURL != "" {
		o.BaseURL = c.BaseURL + passthroughSuffix
	}
	o.URLSuffix, o.ProviderDataURLKey = passthroughSuffix, "passthrough_url"
	o.APIKey, o.KeyRequired, o.StaticKeyFirst = c.APIKey.Value(), false, true
	o.ForwardHeaders = maps.Clone(c.ForwardHeaders)
}

var (
	_ compatSettings = (*HostedConfig)(nil)
	_ compatSettings = (*VLLMConfig)(nil)
	_ compatSettings = (*OllamaConfig)(nil)
	_ compatSettings = (*GeminiConfig)(nil)
	_ compatSettings = (*AzureConfig)(nil)
	_ compatSettings = (*NVIDIAConfig)(nil)
	_ compatSettings = (*EndpointConfig)(nil)
	_ compatSettings = (*PassthroughConfig)(nil)
)
