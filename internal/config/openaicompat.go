package config

import (
	"errors"
	"maps"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Provider types of the OpenAI-compatible inference providers: OGX's remote
// inference adapters that speak the OpenAI API to their upstream (those
// built on its OpenAIMixin, src/ogx/providers/utils/inference/openai_mixin.py),
// and passthrough, OGX's provider for any OpenAI-compatible server. Their
// typed configs are listed in the comment of each config type; Provider.OpenAICompat
// gives what a client needs from any of them.
const (
	ProviderTypeOpenAI      = "remote::openai"      // OpenAI (HostedConfig)
	ProviderTypeVLLM        = "remote::vllm"        // a vLLM server (VLLMConfig)
	ProviderTypeOllama      = "remote::ollama"      // an Ollama server (OllamaConfig)
	ProviderTypeTogether    = "remote::together"    // Together AI (HostedConfig)
	ProviderTypeFireworks   = "remote::fireworks"   // Fireworks AI (HostedConfig)
	ProviderTypeGroq        = "remote::groq"        // Groq (HostedConfig)
	ProviderTypeGemini      = "remote::gemini"      // Google Gemini's OpenAI-compatible endpoint (GeminiConfig)
	ProviderTypeAzure       = "remote::azure"       // Azure OpenAI (AzureConfig)
	ProviderTypeNVIDIA      = "remote::nvidia"      // NVIDIA NIM, hosted or self-hosted (NVIDIAConfig)
	ProviderTypeSambaNova   = "remote::sambanova"   // SambaNova Cloud (HostedConfig)
	ProviderTypeCerebras    = "remote::cerebras"    // Cerebras Cloud (HostedConfig)
	ProviderTypeRunpod      = "remote::runpod"      // a RunPod OpenAI-compatible endpoint (EndpointConfig)
	ProviderTypeDatabricks  = "remote::databricks"  // Databricks model serving (EndpointConfig)
	ProviderTypePassthrough = "remote::passthrough" // any OpenAI-compatible server (PassthroughConfig)
)

// Default base URLs, those of the OGX configs.
const (
	openAIURL    = "https://api.openai.com/v1"
	togetherURL  = "https://api.together.xyz/v1"
	fireworksURL = "https://api.fireworks.ai/inference/v1"
	groqURL      = "https://api.groq.com/openai/v1"
	sambaNovaURL = "https://api.sambanova.ai/v1"
	cerebrasURL  = "https://api.cerebras.ai/v1"
	ollamaURL    = "http://localhost:11434/v1"
	nvidiaURL    = "https://integrate.api.nvidia.com/v1"
	geminiURL    = "https://generativelanguage.googleapis.com/v1beta/openai"
)

// OpenAICompat is what a client of an OpenAI-compatible upstream needs from
// a provider's config, whatever its type. Provider.OpenAICompat computes it
// with each type's defaults and quirks, as OGX's adapters apply them.
type OpenAICompat struct {
	// BaseURL is the OpenAI-style base the API paths are appended to, e.g.
	// https://api.openai.com/v1 + /chat/completions. It has no trailing
	// slash and already includes any path the type adds (passthrough's /v1).
	// It is "" only for passthrough without base_url: then each request's
	// provider data gives the URL (ProviderDataURLKey).
	BaseURL string
	// URLSuffix is appended to a URL taken from provider data
	// (ProviderDataURLKey) to make the base: "/v1" for passthrough.
	URLSuffix string

	// APIKey is the configured key; "" when none is configured.
	APIKey string
	// KeyRequired reports that OGX refuses a request when neither APIKey nor
	// the provider data (ProviderDataKey) gives a key ("API key not
	// provided"). It is false where OGX sends a placeholder key instead
	// (vllm, ollama, self-hosted NVIDIA) and for passthrough.
	KeyRequired bool
	// AuthHeader and AuthScheme say how to send the key: header AuthHeader
	// with value AuthScheme + " " + key, or the bare key when AuthScheme is
	// "". "Authorization" and "Bearer" except for Azure ("api-key", "").
	AuthHeader string
	// AuthScheme prefixes the key in AuthHeader ("Bearer"); "" sends the bare key.
	AuthScheme string
	// ProviderDataKey is the field of the request's provider data (the
	// JSON object of the X-OGX-Provider-Data header, X-LlamaStack-Provider-Data
	// in Llama Stack) that holds a per-request key, e.g. "openai_api_key";
	// "" when the type takes none (ollama).
	ProviderDataKey string
	// StaticKeyFirst reports that APIKey, when set, wins over the
	// per-request key (passthrough); otherwise the per-request key wins.
	StaticKeyFirst bool
	// ProviderDataURLKey is the provider-data field that gives the upstream
	// URL when BaseURL is "" ("passthrough_url" for passthrough).
	ProviderDataURLKey string
	// ForwardHeaders maps provider-data fields to the request headers their
	// values are sent in, verbatim (passthrough's forward_headers). A
	// configured APIKey replaces a forwarded Authorization header.
	ForwardHeaders map[string]string

	// Query holds query parameters for every request: Azure's api-version
	// for a base URL of the older deployments form. Nil when none.
	Query map[string]string
	// Headers are sent with every request: network.headers, then the type's
	// own (Gemini's x-goog-user-project). Nil when none.
	Headers map[string]string
	// Network is the provider's network settings (TLS, proxy, timeouts,
	// headers); nil means defaults. It points into the config: do not
	// modify it.
	Network *NetworkConfig
	// TLSVerify is network.tls.verify as a boolean, nil when not set
	// (verify); CAFile is the CA bundle when verify names a file. For vllm
	// they include the deprecated tls_verify key.
	TLSVerify *bool
	// CAFile is the CA bundle network.tls.verify names; "" for the system's.
	CAFile string

	// AllowedModels limits the models served, as OGX does: nil allows all,
	// an empty list none.
	AllowedModels []string
	// RefreshModels asks for the model list to be refreshed periodically.
	RefreshModels bool
	// ListsModels reports that the upstream lists its models at GET
	// {BaseURL}/models in OpenAI's form. False for Together (a bare JSON
	// array; OGX uses Together's SDK) and Databricks (serving endpoints;
	// OGX uses the Databricks SDK).
	ListsModels bool
	// SupportsCompletions and SupportsEmbeddings report whether OGX's
	// adapter forwards the legacy /completions and /embeddings endpoints
	// (Databricks has no completions, Cerebras no embeddings).
	SupportsCompletions bool
	// SupportsEmbeddings: see SupportsCompletions.
	SupportsEmbeddings bool
	// InlineImages reports that image URLs in chat messages must be
	// downloaded and sent as base64 data URLs (OGX's download_images:
	// ollama, sambanova).
	InlineImages bool
	// MaxTokens is added as max_tokens to chat completion requests that
	// have none (vllm's max_tokens); 0 means none.
	MaxTokens int
}

// Header values of OpenAICompat.
const (
	headerAuthorization = "Authorization"
	schemeBearer        = "Bearer"
)

// OpenAICompat returns what an OpenAI-compatible client needs from the
// provider's config. ok is false when the provider's type is not one of the
// OpenAI-compatible types above (remote::bedrock) or its Settings is not
// that type's config (nil for a disabled provider). The result shares no
// maps or slices with the config, except Network.
func (p *Provider) OpenAICompat() (_ OpenAICompat, ok bool) {
	spec, known := compatSpecs[p.ProviderType]
	s, isCompat := p.Settings.(compatSettings)
	if !known || !isCompat || reflect.TypeOf(s) != reflect.TypeOf(spec.newConfig()) {
		return OpenAICompat{}, false
	}
	r := s.remote()
	o := OpenAICompat{
		KeyRequired:         true,
		AuthHeader:          headerAuthorization,
		AuthScheme:          schemeBearer,
		ProviderDataKey:     spec.dataKey,
		Network:             r.Network,
		AllowedModels:       slices.Clone(r.AllowedModels),
		RefreshModels:       r.RefreshModels,
		ListsModels:         spec.caps&capListModels != 0,
		SupportsCompletions: spec.caps&capCompletions != 0,
		SupportsEmbeddings:  spec.caps&capEmbeddings != 0,
		InlineImages:        spec.caps&capInlineImages != 0,
	}
	if n := r.Network; n != nil {
		o.Headers = maps.Clone(n.Headers)
		if n.TLS != nil && n.TLS.Verify != nil {
			v, ca := n.TLS.VerifyTLS()
			o.TLSVerify, o.CAFile = &v, ca
		}
	}
	s.fill(&o)
	return o, true
}

// compatSettings is implemented by the configs of the OpenAI-compatible types.
type compatSettings interface {
	settings
	// remote returns the keys all of them share.
	remote() *RemoteInference
	// fill sets the fields of o that depend on the type's own keys.
	fill(o *OpenAICompat)
}

// capability is a set of what an upstream serves (OpenAICompat's booleans).
type capability uint8

const (
	capListModels capability = 1 << iota
	capCompletions
	capEmbeddings
	capInlineImages

	capAll = capListModels | capCompletions | capEmbeddings
)

// compatSpec describes an OpenAI-compatible provider type.
type compatSpec struct {
	newConfig func() compatSettings // its config with OGX's defaults
	dataKey   string                // OGX's provider_data_api_key_field
	caps      capability
}

// compatSpecs lists the OpenAI-compatible provider types. The facts come
// from OGX's src/ogx/providers/remote/inference/<type>/: config.py
// (defaults, provider-data validator) and the adapter (base URL, key field,
// endpoints it leaves out).
var compatSpecs = map[string]compatSpec{
	ProviderTypeOpenAI:      {hosted(openAIURL, ""), "openai_api_key", capAll},
	ProviderTypeVLLM:        {func() compatSettings { return &VLLMConfig{MaxTokens: defaultVLLMMaxTokens} }, "vllm_api_token", capAll},
	ProviderTypeOllama:      {func() compatSettings { return &OllamaConfig{BaseURL: ollamaURL} }, "", capAll | capInlineImages},
	ProviderTypeTogether:    {hosted(togetherURL, ""), "together_api_key", capCompletions | capEmbeddings},
	ProviderTypeFireworks:   {hosted(fireworksURL, ""), "fireworks_api_key", capAll},
	ProviderTypeGroq:        {hosted(groqURL, ""), "groq_api_key", capAll},
	ProviderTypeGemini:      {func() compatSettings { return &GeminiConfig{BaseURL: geminiURL} }, "gemini_api_key", capAll},
	ProviderTypeAzure:       {func() compatSettings { return &AzureConfig{APIType: defaultAzureAPIType} }, "azure_api_key", capAll},
	ProviderTypeNVIDIA:      {func() compatSettings { return &NVIDIAConfig{BaseURL: nvidiaURL, Timeout: defaultNVIDIATimeout} }, "nvidia_api_key", capAll},
	ProviderTypeSambaNova:   {hosted(sambaNovaURL, ""), "sambanova_api_key", capAll | capInlineImages},
	ProviderTypeCerebras:    {hosted(cerebrasURL, "CEREBRAS_BASE_URL"), "cerebras_api_key", capListModels | capCompletions},
	ProviderTypeRunpod:      {func() compatSettings { return &EndpointConfig{} }, "runpod_api_token", capAll},
	ProviderTypeDatabricks:  {func() compatSettings { return &EndpointConfig{} }, "databricks_api_token", capEmbeddings},
	ProviderTypePassthrough: {func() compatSettings { return &PassthroughConfig{} }, "passthrough_api_key", capAll},
}

func init() {
	for typ, spec := range compatSpecs {
		ProviderTypes[typ] = func() any { return spec.newConfig() }
	}
}

// hosted returns the constructor of a HostedConfig with base URL url,
// defaulted from environment variable urlEnv when that is not "".
func hosted(url, urlEnv string) func() compatSettings {
	return func() compatSettings { return &HostedConfig{BaseURL: url, urlEnv: urlEnv} }
}

// RemoteInference holds the keys every OGX remote inference config has
// (RemoteInferenceProviderConfig in
// src/ogx/providers/utils/inference/model_registry.py) except the
// credential, whose key differs by type. The OpenAI-compatible configs
// embed it.
type RemoteInference struct {
	// AllowedModels limits the models the provider serves: nil (the key
	// absent or null) allows all; an empty list allows none, as in OGX.
	AllowedModels []string `yaml:"allowed_models" json:"allowed_models"`
	// RefreshModels asks for the provider's model list to be refreshed periodically.
	RefreshModels bool `yaml:"refresh_models" json:"refresh_models"`
	// Network configures the HTTP client; nil means defaults.
	Network *NetworkConfig `yaml:"network" json:"network"`
}

func (r *RemoteInference) remote() *RemoteInference { return r }

// envDefaults does nothing: most types take no defaults from the
// environment; those that do define their own.
func (*RemoteInference) envDefaults(*yaml.Node, LookupEnv, *problems, string) {}

// check reports the problems of the shared keys and of base_url, when the
// type has one (key != ""): it must be an http(s) URL, and is required
// unless optional.
func (r *RemoteInference) check(p *problems, path string, block *yaml.Node, key, baseURL string, optional bool) {
	if key != "" {
		n, kp := lineNode(block, key), path+"."+key
		switch {
		case baseURL == "" && !optional:
			p.add(n, kp, errors.New("required"))
		case baseURL != "":
			if err := checkHTTPURL(baseURL, false); err != nil {
				p.add(n, kp, err)
			}
		}
	}
	for i, m := range r.AllowedModels {
		if m == "" {
			p.add(lineNode(block, "allowed_models"), indexPath(path+".allowed_models", i), errors.New("empty model id"))
		}
	}
	r.Network.validate(p, path+".network", lookup(block, "network"))
}

// envDefault sets *dst from environment variable name when key is absent
// from block and the variable is set and not empty, as the default
// factories of OGX's configs do.
func envDefault(block *yaml.Node, env LookupEnv, key, name string, dst *string) {
	if name == "" || lookup(block, key) != nil {
		return
	}
	if v, _ := env(name); v != "" {
		*dst = v
	}
}

// trimURL removes the trailing slashes of a base URL, unless only a scheme
// would be left (so that a message about "http://" quotes it unchanged).
func trimURL(s *string) {
	if t := strings.TrimRight(*s, "/"); !strings.HasSuffix(t, ":") {
		*s = t
	}
}
