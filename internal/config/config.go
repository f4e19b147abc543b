package config

import (
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is a run configuration. Its YAML keys are those of the OGX / Llama
// Stack run-config format (StackConfig in src/ogx/core/datatypes.py, plus the
// keys older versions of the format had), so Python configs load unchanged.
// Sections this server does not use yet are kept as yaml.Node (already
// env-expanded) so later work can give them meaning; any other top-level key
// is an error.
type Config struct {
	Version    string   `yaml:"version"`     // "2"; written as 2 or "2"
	ImageName  string   `yaml:"image_name"`  // deprecated name of distro_name
	DistroName string   `yaml:"distro_name"` // the distribution's name
	APIs       []string `yaml:"apis"`        // APIs to serve; empty means those with providers

	// Providers lists the providers of each API, keyed by API name
	// (inference, safety, ...), in file order.
	Providers map[string][]Provider `yaml:"providers"`

	// RegisteredResources holds the models (and other resources) to register
	// at startup. After Parse it holds only the models to register: those of
	// the older top-level models key are merged in, and those whose provider
	// is disabled are moved to DroppedModels.
	RegisteredResources RegisteredResources `yaml:"registered_resources"`

	// Models is the older top-level form of registered_resources.models.
	// Parse merges it into RegisteredResources.Models and leaves it empty.
	Models []Model `yaml:"models"`

	// Server configures the HTTP server.
	Server Server `yaml:"server"`

	ContainerImage       yaml.Node `yaml:"container_image,omitempty"`
	Storage              yaml.Node `yaml:"storage,omitempty"`
	MetadataStore        yaml.Node `yaml:"metadata_store,omitempty"`
	InferenceStore       yaml.Node `yaml:"inference_store,omitempty"`
	ConversationsStore   yaml.Node `yaml:"conversations_store,omitempty"`
	Logging              yaml.Node `yaml:"logging,omitempty"`
	LoggingConfig        yaml.Node `yaml:"logging_config,omitempty"` // read by OGX's server before validation
	Telemetry            yaml.Node `yaml:"telemetry,omitempty"`
	ExternalProvidersDir yaml.Node `yaml:"external_providers_dir,omitempty"`
	ExternalAPIsDir      yaml.Node `yaml:"external_apis_dir,omitempty"`
	Shields              yaml.Node `yaml:"shields,omitempty"`
	VectorDBs            yaml.Node `yaml:"vector_dbs,omitempty"`
	VectorStores         yaml.Node `yaml:"vector_stores,omitempty"`
	Datasets             yaml.Node `yaml:"datasets,omitempty"`
	ScoringFns           yaml.Node `yaml:"scoring_fns,omitempty"`
	Benchmarks           yaml.Node `yaml:"benchmarks,omitempty"`
	ToolGroups           yaml.Node `yaml:"tool_groups,omitempty"`
	EvalTasks            yaml.Node `yaml:"eval_tasks,omitempty"`
	MemoryBanks          yaml.Node `yaml:"memory_banks,omitempty"`
	Safety               yaml.Node `yaml:"safety,omitempty"`
	Connectors           yaml.Node `yaml:"connectors,omitempty"`
	DockerImage          yaml.Node `yaml:"docker_image,omitempty"`
	CondaEnv             yaml.Node `yaml:"conda_env,omitempty"`
	BuiltAt              yaml.Node `yaml:"built_at,omitempty"`

	// Store is the storage layout after Parse: the storage section, the
	// older per-store keys translated into it, and defaults.
	Store *Storage `yaml:"-"`

	dropped []Model
	root    *yaml.Node // the parsed document, for line numbers
}

// Name returns distro_name, else image_name, else "llama-stack".
func (c *Config) Name() string {
	switch {
	case c.DistroName != "":
		return c.DistroName
	case c.ImageName != "":
		return c.ImageName
	}
	return "llama-stack"
}

// EnabledProviders returns the providers of api that are not disabled, in
// file order. The pointers refer into c.Providers.
func (c *Config) EnabledProviders(api string) []*Provider {
	var out []*Provider
	list := c.Providers[api]
	for i := range list {
		if !list[i].Disabled {
			out = append(out, &list[i])
		}
	}
	return out
}

// DroppedModels returns the models Parse left out, in file order, for the
// caller to log: those whose provider_id is empty or "__disabled__", names a
// disabled provider, or is "all" while no inference provider is enabled, and
// those OGX drops because their model_id expands to empty.
func (c *Config) DroppedModels() []Model { return c.dropped }

// A Provider is one entry of providers.<api>.
type Provider struct {
	ProviderID   string    `yaml:"provider_id"`
	ProviderType string    `yaml:"provider_type"`    // e.g. "remote::bedrock"
	Config       yaml.Node `yaml:"config,omitempty"` // the config block, env-expanded unless Disabled
	Module       string    `yaml:"module,omitempty"` // OGX's external provider module; unused

	// Resilience overrides, key by key, the server's resilience settings
	// for this provider (timeouts, retries, concurrency, circuit breaker).
	// It is kept as written, like Config, because a disabled provider's
	// values are not expanded; Config.ResilienceFor decodes it.
	Resilience yaml.Node `yaml:"resilience,omitempty"`

	API      string `yaml:"-"` // the providers.<api> key
	Path     string `yaml:"-"` // YAML path, e.g. "providers.inference[0]"
	Disabled bool   `yaml:"-"` // provider_id is empty (after expansion) or "__disabled__"

	// Settings is the typed config, e.g. *BedrockConfig, decoded by Parse for
	// enabled providers of a type in ProviderTypes; nil otherwise.
	Settings any `yaml:"-"`

	node  *yaml.Node // the entry, for line numbers; nil when built in Go
	noID  bool       // the provider_id key is missing
	rawID string     // provider_id as written, before expansion
}

// RegisteredResources is the registered_resources section.
type RegisteredResources struct {
	Models []Model `yaml:"models"`

	// Accepted for compatibility, unused.
	Shields      []yaml.Node `yaml:"shields,omitempty"`
	VectorStores []yaml.Node `yaml:"vector_stores,omitempty"`
	VectorDBs    []yaml.Node `yaml:"vector_dbs,omitempty"`
	Datasets     []yaml.Node `yaml:"datasets,omitempty"`
	ScoringFns   []yaml.Node `yaml:"scoring_fns,omitempty"`
	Benchmarks   []yaml.Node `yaml:"benchmarks,omitempty"`
	ToolGroups   []yaml.Node `yaml:"tool_groups,omitempty"`
	Connectors   []yaml.Node `yaml:"connectors,omitempty"`
}

// Model types OGX accepts (ModelType in ogx_api/models/models.py).
const (
	ModelTypeLLM       = "llm"
	ModelTypeEmbedding = "embedding"
	ModelTypeRerank    = "rerank"
)

// Special values of Model fields that OGX resolves at registration time.
const (
	// AllProviders as a model's provider_id registers the model under its
	// bare model_id with the first enabled inference provider.
	AllProviders = "all"
	// AutoModel as a provider_model_id asks the provider to pick a model.
	AutoModel = "auto"
)

// A Model is a model to register at startup (OGX's ModelInput).
type Model struct {
	ModelID         string         `yaml:"model_id"`
	ProviderID      string         `yaml:"provider_id"`
	ProviderModelID string         `yaml:"provider_model_id"` // Parse defaults it to ModelID
	ModelType       string         `yaml:"model_type"`        // llm (the default), embedding or rerank
	Metadata        map[string]any `yaml:"metadata"`          // embedding models need embedding_dimension

	Path string `yaml:"-"` // YAML path, e.g. "registered_resources.models[0]"

	node *yaml.Node // the entry, for line numbers; nil when built in Go
}

// Identifier is the id clients use for the model, as OGX's model routing
// table computes it: model_id when it already starts with "<provider_id>/"
// or when provider_id is "all", else "<provider_id>/<model_id>".
func (m *Model) Identifier() string {
	if m.ProviderID == AllProviders || m.ProviderID == "" || strings.HasPrefix(m.ModelID, m.ProviderID+"/") {
		return m.ModelID
	}
	return m.ProviderID + "/" + m.ModelID
}

// Server is the server section (OGX's ServerConfig, plus
// max_request_body_bytes).
type Server struct {
	Port        int          `yaml:"port"`         // 1024-65535, as OGX requires
	Host        string       `yaml:"host"`         // "" listens on all interfaces
	TLSCertfile string       `yaml:"tls_certfile"` // with tls_keyfile, serve HTTPS
	TLSKeyfile  string       `yaml:"tls_keyfile"`
	TLSCAFile   string       `yaml:"tls_cafile"`      // require client certificates signed by this CA
	Auth        *AuthConfig  `yaml:"auth,omitempty"`  // nil: no authentication
	Quota       *QuotaConfig `yaml:"quota,omitempty"` // nil: no request quotas
	CORS        *CORSConfig  `yaml:"cors,omitempty"`  // true, false or a mapping; see CORSConfig.Enabled

	Workers                        int  `yaml:"workers"`                           // OGX's uvicorn worker count; at least 1
	RegistryRefreshIntervalSeconds int  `yaml:"registry_refresh_interval_seconds"` // model list refresh; positive
	DisableIPv6                    bool `yaml:"disable_ipv6"`

	// MaxRequestBodyBytes caps request bodies; 0 lets the server choose.
	MaxRequestBodyBytes int64 `yaml:"max_request_body_bytes"`

	// Resilience holds the resilience settings every provider starts from,
	// overriding DefaultResilience key by key; Config.ResilienceFor decodes
	// it.
	Resilience yaml.Node `yaml:"resilience,omitempty"`
}

// DefaultServer holds the server defaults, OGX's: port 8321, all
// interfaces, one worker, registry refresh every 300 seconds.
var DefaultServer = Server{
	Port:                           8321,
	Workers:                        1,
	RegistryRefreshIntervalSeconds: 300,
}

// defaultConfig returns the values a config starts from before decoding.
func defaultConfig() *Config {
	return &Config{Version: "2", Server: DefaultServer}
}
