package config

import (
	"encoding/json"
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// compat builds the OpenAICompat most types give: bearer auth, a key
// required, every endpoint.
func compat(base, dataKey string, edit ...func(*OpenAICompat)) OpenAICompat {
	o := OpenAICompat{
		BaseURL: base, KeyRequired: true, AuthHeader: "Authorization", AuthScheme: "Bearer",
		ProviderDataKey: dataKey, ListsModels: true, SupportsCompletions: true, SupportsEmbeddings: true,
	}
	for _, e := range edit {
		e(&o)
	}
	return o
}

func noKeyRequired(o *OpenAICompat) { o.KeyRequired = false }

// loadCompat loads file and returns its enabled inference providers by id.
func loadCompat(t *testing.T, file string, env map[string]string) map[string]*Provider {
	t.Helper()
	c, err := Load(file, mapEnv(env))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Provider{}
	for _, p := range c.EnabledProviders("inference") {
		out[p.ProviderID] = p
	}
	return out
}

func checkCompat(t *testing.T, ps map[string]*Provider, id string, want OpenAICompat) {
	t.Helper()
	p := ps[id]
	if p == nil {
		t.Fatalf("no provider %q", id)
	}
	got, ok := p.OpenAICompat()
	if !ok {
		t.Fatalf("%s: OpenAICompat() not ok (Settings %T)", id, p.Settings)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s: OpenAICompat() =\n%+v\nwant\n%+v", id, got, want)
	}
}

// TestOpenAICompatDefaults checks each type's defaults, from a config with
// only the keys each type needs.
func TestOpenAICompatDefaults(t *testing.T) {
	ps := loadCompat(t, "testdata/openai_compat_minimal.good.yaml", nil)
	tests := []struct {
		id   string
		want OpenAICompat
	}{
		{"openai", compat("https://api.openai.com/v1", "openai_api_key")},
		{"vllm", compat("http://localhost:8000/v1", "vllm_api_token", noKeyRequired, func(o *OpenAICompat) { o.MaxTokens = 4096 })},
		{"ollama", compat("http://localhost:11434/v1", "", noKeyRequired, func(o *OpenAICompat) { o.InlineImages = true })},
		{"together", compat("https://api.together.xyz/v1", "together_api_key", func(o *OpenAICompat) { o.ListsModels = false })},
		{"fireworks", compat("https://api.fireworks.ai/inference/v1", "fireworks_api_key")},
		{"groq", compat("https://api.groq.com/openai/v1", "groq_api_key")},
		{"gemini", compat("https://generativelanguage.googleapis.com/v1beta/openai", "gemini_api_key")},
		{"azure", compat("https://res.openai.azure.com/openai/v1", "azure_api_key", func(o *OpenAICompat) { o.AuthHeader, o.AuthScheme = "api-key", "" })},
		{"nvidia", compat("https://integrate.api.nvidia.com/v1", "nvidia_api_key")},
		{"sambanova", compat("https://api.sambanova.ai/v1", "sambanova_api_key", func(o *OpenAICompat) { o.InlineImages = true })},
		{"cerebras", compat("https://api.cerebras.ai/v1", "cerebras_api_key", func(o *OpenAICompat) { o.SupportsEmbeddings = false })},
		{"runpod", compat("https://api.runpod.ai/v2/abc123/openai/v1", "runpod_api_token")},
		{"databricks", compat("https://dbc-1.cloud.databricks.com/serving-endpoints", "databricks_api_token", func(o *OpenAICompat) {
			o.ListsModels, o.SupportsCompletions = false, false
		})},
		{"passthrough", compat("", "passthrough_api_key", noKeyRequired, func(o *OpenAICompat) {
			o.URLSuffix, o.ProviderDataURLKey, o.StaticKeyFirst = "/v1", "passthrough_url", true
		})},
	}
	if len(tests) != len(compatSpecs) || len(ps) != len(compatSpecs) {
		t.Fatalf("%d cases, %d providers, %d types", len(tests), len(ps), len(compatSpecs))
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) { checkCompat(t, ps, tt.id, tt.want) })
	}
	n := ps["nvidia"].Settings.(*NVIDIAConfig)
	if n.Timeout != 60 || len(n.RerankModelToURL) != 3 || !n.Hosted() {
		t.Errorf("nvidia defaults: %+v", n)
	}
	if a := ps["azure"].Settings.(*AzureConfig); a.APIType != "azure" || a.APIVersion != "" {
		t.Errorf("azure defaults: %+v", a)
	}
}

// TestOpenAICompatAllFields checks how every key reaches OpenAICompat.
func TestOpenAICompatAllFields(t *testing.T) {
	ps := loadCompat(t, "testdata/openai_compat_all_fields.good.yaml", nil)
	yes, no := true, false
	openaiNet := ps["openai"].Settings.(*HostedConfig).Network
	vllmNet := ps["vllm"].Settings.(*VLLMConfig).Network
	ollamaNet := ps["ollama"].Settings.(*OllamaConfig).Network
	tests := []struct {
		id   string
		want OpenAICompat
	}{
		{"openai", compat("https://api.openai.com/v1", "openai_api_key", func(o *OpenAICompat) {
			o.APIKey, o.AllowedModels, o.RefreshModels = "sk-openai", []string{"gpt-4o", "gpt-4o-mini"}, true
			o.Network, o.Headers, o.TLSVerify, o.CAFile = openaiNet, map[string]string{"X-Team": "llama"}, &yes, "/etc/ssl/certs/ca.pem"
		})},
		// tls_verify (deprecated) moves to network.tls.verify; allowed_models: [] allows none.
		{"vllm", compat("http://vllm.internal:8000/v1", "vllm_api_token", noKeyRequired, func(o *OpenAICompat) {
			o.APIKey, o.MaxTokens, o.AllowedModels, o.Network, o.TLSVerify = "vllm-token", 2048, []string{}, vllmNet, &no
		})},
		// auth_credential is accepted and not sent, as in OGX.
		{"ollama", compat("http://ollama.internal:11434/v1", "", noKeyRequired, func(o *OpenAICompat) {
			o.InlineImages, o.AllowedModels, o.RefreshModels, o.Network = true, []string{"llama3.2:3b"}, true, ollamaNet
		})},
		{"gemini", compat("https://generativelanguage.googleapis.com/v1beta/openai", "gemini_api_key", func(o *OpenAICompat) {
			o.APIKey, o.Headers, o.AllowedModels = "ya29.token", map[string]string{"x-goog-user-project": "my-project"}, []string{"models/gemini-2.5-flash"}
		})},
		{"gemini-key", compat("https://generativelanguage.googleapis.com/v1beta/openai", "gemini_api_key", func(o *OpenAICompat) { o.APIKey = "gemini-key" })},
		// The deployments form takes api-version; the v1 form (TestOpenAICompatEnvDefaults) not.
		{"azure", compat("https://res.openai.azure.com/openai/deployments/gpt-4o", "azure_api_key", func(o *OpenAICompat) {
			o.APIKey, o.AuthHeader, o.AuthScheme, o.Query = "azure-key", "api-key", "", map[string]string{"api-version": "2024-12-01-preview"}
		})},
		// A self-hosted NIM needs no key.
		{"nvidia", compat("http://nim.internal:8000/v1", "nvidia_api_key", noKeyRequired)},
		{"runpod", compat("https://api.runpod.ai/v2/abc123/openai/v1", "runpod_api_token", func(o *OpenAICompat) { o.APIKey = "runpod-token" })},
		{"databricks", compat("https://dbc-1.cloud.databricks.com/serving-endpoints", "databricks_api_token", func(o *OpenAICompat) {
			o.APIKey, o.ListsModels, o.SupportsCompletions = "dapi-token", false, false
		})},
		{"passthrough", compat("http://gateway.internal:9000/v1", "passthrough_api_key", noKeyRequired, func(o *OpenAICompat) {
			o.APIKey, o.URLSuffix, o.ProviderDataURLKey, o.StaticKeyFirst = "pass-key", "/v1", "passthrough_url", true
			o.ForwardHeaders = map[string]string{"maas_api_token": "Authorization", "tenant": "X-Tenant-ID"}
		})},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) { checkCompat(t, ps, tt.id, tt.want) })
	}
	for id, key := range map[string]string{"together": "together-key", "fireworks": "fireworks-key", "groq": "groq-key", "sambanova": "sambanova-key", "cerebras": "cerebras-key"} {
		if o, _ := ps[id].OpenAICompat(); o.APIKey != key {
			t.Errorf("%s: APIKey = %q, want %q", id, o.APIKey, key)
		}
	}
	if v := ps["vllm"].Settings.(*VLLMConfig); v.TLSVerify != false || v.Network.TLS.Verify != false {
		t.Errorf("vllm tls_verify not migrated: %+v", v)
	}
	if n := ps["nvidia"].Settings.(*NVIDIAConfig); n.Timeout != 30 || len(n.RerankModelToURL) != 1 {
		t.Errorf("nvidia: rerank_model_to_url must replace the defaults: %+v", n)
	}
	if n := ps["openai"].Settings.(*HostedConfig).Network; n.Proxy.HTTPS != "http://proxy.example.com:3128" {
		t.Errorf("openai network = %+v", n)
	}
	// The result shares no maps or slices with the config.
	o, _ := ps["openai"].OpenAICompat()
	o.Headers["X-Team"] = "changed"
	o.AllowedModels[0] = "changed"
	if again, _ := ps["openai"].OpenAICompat(); again.Headers["X-Team"] != "llama" || again.AllowedModels[0] != "gpt-4o" {
		t.Errorf("OpenAICompat shares maps or slices with the config")
	}
}

func TestOpenAICompatNotApplicable(t *testing.T) {
	for _, tt := range []struct {
		name string
		p    Provider
	}{
		{"bedrock", Provider{ProviderType: ProviderTypeBedrock, Settings: newBedrockConfig()}},
		{"disabled", Provider{ProviderType: ProviderTypeOpenAI, Disabled: true}},
		{"wrong settings type", Provider{ProviderType: ProviderTypeOpenAI, Settings: &VLLMConfig{BaseURL: "http://x/v1"}}},
		{"runpod settings for databricks type", Provider{ProviderType: ProviderTypeVLLM, Settings: &EndpointConfig{}}},
		{"unknown type", Provider{ProviderType: "remote::foo", Settings: &HostedConfig{}}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if o, ok := tt.p.OpenAICompat(); ok || !reflect.DeepEqual(o, OpenAICompat{}) {
				t.Errorf("OpenAICompat() = %+v, %v", o, ok)
			}
		})
	}
	// A config built in Go works like a parsed one.
	p := Provider{ProviderType: ProviderTypeDatabricks, Settings: &EndpointConfig{BaseURL: "https://h/serving-endpoints", APIToken: "t"}}
	if o, ok := p.OpenAICompat(); !ok || o.BaseURL != "https://h/serving-endpoints" || o.APIKey != "t" || o.ProviderDataKey != "databricks_api_token" {
		t.Errorf("OpenAICompat() = %+v, %v", o, ok)
	}
}

// TestOpenAICompatEnvDefaults: the keys OGX defaults from the environment
// take it only when they are absent.
func TestOpenAICompatEnvDefaults(t *testing.T) {
	const cfg = `
version: 2
providers:
  inference:
  - {provider_id: cerebras, provider_type: "remote::cerebras"}
  - {provider_id: cerebras-null, provider_type: "remote::cerebras", config: {base_url: null}}
  - {provider_id: nvidia, provider_type: "remote::nvidia"}
  - {provider_id: azure, provider_type: "remote::azure", config: {base_url: "https://x.openai.azure.com/openai/v1"}}
  - provider_id: azure-set
    provider_type: remote::azure
    config: {base_url: "https://x.openai.azure.com/openai", api_version: 2024-06-01, api_type: null}
  - {provider_id: openai, provider_type: "remote::openai"}
  - {provider_id: groq, provider_type: "remote::groq"}
`
	env := mapEnv(map[string]string{
		"CEREBRAS_BASE_URL": "https://cerebras.proxy/v1/",
		"NVIDIA_BASE_URL":   "http://nim:8000/v1",
		"AZURE_API_VERSION": "2025-01-01-preview",
		"AZURE_API_TYPE":    "openai",
		"OPENAI_BASE_URL":   "https://not.used/v1", // only the starter reads it
		"GROQ_BASE_URL":     "https://not.used/v1",
	})
	c, err := Parse([]byte(cfg), env)
	if err != nil {
		t.Fatal(err)
	}
	ps := c.Providers["inference"]
	base := func(i int) string { o, _ := ps[i].OpenAICompat(); return o.BaseURL }
	for i, want := range map[int]string{0: "https://cerebras.proxy/v1", 1: cerebrasURL, 2: "http://nim:8000/v1", 5: openAIURL, 6: groqURL} {
		if got := base(i); got != want {
			t.Errorf("%s: BaseURL = %q, want %q", ps[i].ProviderID, got, want)
		}
	}
	if o, _ := ps[2].OpenAICompat(); o.KeyRequired {
		t.Errorf("self-hosted nvidia requires a key")
	}
	a := ps[3].Settings.(*AzureConfig)
	if a.APIVersion != "2025-01-01-preview" || a.APIType != "openai" {
		t.Errorf("azure = %+v", a)
	}
	if o, _ := ps[3].OpenAICompat(); o.Query != nil {
		t.Errorf("v1 form: Query = %v, want none", o.Query)
	}
	a = ps[4].Settings.(*AzureConfig)
	if a.APIVersion != "2024-06-01" || a.APIType != "azure" {
		t.Errorf("azure-set = %+v", a)
	}
	if o, _ := ps[4].OpenAICompat(); !reflect.DeepEqual(o.Query, map[string]string{"api-version": "2024-06-01"}) {
		t.Errorf("deployments form: Query = %v", o.Query)
	}
}

func TestOpenAICompatBuiltInGo(t *testing.T) {
	var list []Provider
	for _, typ := range sortedKeys(compatSpecs) {
		list = append(list, Provider{ProviderID: typ, ProviderType: typ, Settings: ProviderTypes[typ]()})
	}
	c := &Config{Server: DefaultServer, Providers: map[string][]Provider{"inference": list}}
	// The types without a default base URL need one: azure, databricks, runpod, vllm.
	err := c.Validate()
	for i, typ := range sortedKeys(compatSpecs) {
		msg := fmt.Sprintf("providers.inference[%d].config.base_url: required", i)
		needs := typ == ProviderTypeAzure || typ == ProviderTypeDatabricks || typ == ProviderTypeRunpod || typ == ProviderTypeVLLM
		if strings.Contains(fmt.Sprint(err), msg) != needs {
			t.Errorf("%s: needs base_url %v; Validate() = %v", typ, needs, err)
		}
	}
	if got := strings.Count(fmt.Sprint(err), "\n") + 1; got != 4 {
		t.Errorf("%d problems, want 4: %v", got, err)
	}
	for i := range list {
		switch s := list[i].Settings.(type) {
		case *VLLMConfig:
			s.BaseURL = "http://localhost:8000/v1"
		case *AzureConfig:
			s.BaseURL = "https://r.openai.azure.com/openai/v1"
		case *EndpointConfig:
			s.BaseURL = "https://h/v1"
		}
	}
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

// starterEnv gives each variable the starter reads a value, by the
// provider it belongs to ("" for Bedrock's region).
var starterEnv = []struct {
	provider, name, value string
}{
	{"bedrock", "AWS_BEARER_TOKEN_BEDROCK", "bedrock-key"},
	{"", "AWS_DEFAULT_REGION", "eu-west-1"},
	{"cerebras", "CEREBRAS_API_KEY", "cerebras-key"},
	{"ollama", "OLLAMA_URL", "http://ollama:11434/v1"},
	{"vllm", "VLLM_URL", "http://vllm:8000/v1"},
	{"", "VLLM_MAX_TOKENS", "1024"},
	{"", "VLLM_API_TOKEN", "vllm-token"},
	{"", "VLLM_TLS_VERIFY", "false"},
	{"fireworks", "FIREWORKS_API_KEY", "fireworks-key"},
	{"together", "TOGETHER_API_KEY", "together-key"},
	{"nvidia", "NVIDIA_API_KEY", "nvidia-key"},
	{"", "NVIDIA_BASE_URL", "https://nim.example.com/v1"},
	{"openai", "OPENAI_API_KEY", "sk-openai"},
	{"", "OPENAI_BASE_URL", "https://openai.proxy.example.com/v1"},
	{"gemini", "GEMINI_API_KEY", "gemini-key"},
	{"groq", "GROQ_API_KEY", "groq-key"},
	{"sambanova", "SAMBANOVA_API_KEY", "sambanova-key"},
	{"azure", "AZURE_API_KEY", "azure-key"},
	{"", "AZURE_API_BASE", "https://res.openai.azure.com/openai/v1"},
	{"", "AZURE_API_VERSION", "preview"},
	{"", "AZURE_API_TYPE", "azure"},
	{"runpod", "RUNPOD_URL", "https://api.runpod.ai/v2/abc/openai/v1"},
	{"", "RUNPOD_API_TOKEN", "runpod-token"},
	{"databricks", "DATABRICKS_HOST", "https://dbc-1.cloud.databricks.com/serving-endpoints"},
	{"", "DATABRICKS_TOKEN", "dapi-token"},
	{"passthrough", "PASSTHROUGH_URL", "http://gateway:9000"},
	{"", "PASSTHROUGH_API_KEY", "pass-key"},
}

// geminiOAuthEnv are the starter's variables for Gemini's OAuth mode, which
// excludes GEMINI_API_KEY.
var geminiOAuthEnv = map[string]string{"GEMINI_ACCESS_TOKEN": "ya29.token", "GEMINI_AI_PROJECT": "my-project"}

func enabledIDs(c *Config) []string {
	var ids []string
	for _, p := range c.EnabledProviders("inference") {
		ids = append(ids, p.ProviderID)
	}
	return ids
}

func TestStarterOpenAICompat(t *testing.T) {
	// Every variable the starter reads is in the tables above.
	names := map[string]bool{}
	for _, m := range regexp.MustCompile(`\$\{env\.([A-Za-z0-9_]+)`).FindAllStringSubmatch(string(Starter()), -1) {
		names[m[1]] = true
	}
	all := maps.Clone(geminiOAuthEnv)
	enabling := map[string]string{} // provider id → the variable that enables it
	for _, e := range starterEnv {
		all[e.name] = e.value
		if e.provider != "" {
			enabling[e.provider] = e.name
		}
	}
	if got, want := slices.Sorted(maps.Keys(names)), slices.Sorted(maps.Keys(all)); !reflect.DeepEqual(got, want) {
		t.Fatalf("starter variables\n%v\nwant\n%v", got, want)
	}

	t.Run("nothing set", func(t *testing.T) {
		c, err := Parse(Starter(), mapEnv(nil))
		if err != nil {
			t.Fatal(err)
		}
		if ids := enabledIDs(c); len(ids) != 0 {
			t.Errorf("enabled = %v", ids)
		}
		var types []string
		for _, p := range c.Providers["inference"] {
			if _, ok := ProviderTypes[p.ProviderType]; !ok {
				t.Errorf("starter provider type %s is not in ProviderTypes", p.ProviderType)
			}
			types = append(types, p.ProviderType)
		}
		want := append(sortedKeys(compatSpecs), ProviderTypeBedrock)
		if slices.Sort(types); !reflect.DeepEqual(types, slices.Sorted(slices.Values(want))) {
			t.Errorf("starter types = %v, want %v", types, want)
		}
	})

	t.Run("ollama and openai", func(t *testing.T) {
		c, err := Parse(Starter(), mapEnv(map[string]string{"OLLAMA_URL": "http://ollama:11434/v1", "OPENAI_API_KEY": "sk-test"}))
		if err != nil {
			t.Fatal(err)
		}
		if ids := enabledIDs(c); !reflect.DeepEqual(ids, []string{"ollama", "openai"}) {
			t.Fatalf("enabled = %v", ids)
		}
		ps := map[string]*Provider{}
		for _, p := range c.EnabledProviders("inference") {
			ps[p.ProviderID] = p
		}
		checkCompat(t, ps, "ollama", compat("http://ollama:11434/v1", "", noKeyRequired, func(o *OpenAICompat) { o.InlineImages = true }))
		checkCompat(t, ps, "openai", compat(openAIURL, "openai_api_key", func(o *OpenAICompat) { o.APIKey = "sk-test" }))
		if got := len(c.DroppedModels()); got != 2 {
			t.Errorf("dropped %d models, want Bedrock's 2", got)
		}
	})

	t.Run("each variable alone", func(t *testing.T) {
		for id, name := range enabling {
			env := map[string]string{name: all[name]}
			c, err := Parse(Starter(), mapEnv(env))
			if err != nil {
				// Azure needs its base URL as well.
				if id != "azure" || !strings.Contains(err.Error(), "base_url: required") {
					t.Errorf("%s: %v", name, err)
				}
				continue
			}
			if ids := enabledIDs(c); !reflect.DeepEqual(ids, []string{id}) {
				t.Errorf("%s enables %v, want [%s]", name, ids, id)
			}
		}
	})

	t.Run("every variable", func(t *testing.T) {
		env := maps.Clone(all)
		for k := range geminiOAuthEnv {
			delete(env, k)
		}
		c, err := Parse(Starter(), mapEnv(env))
		if err != nil {
			t.Fatal(err)
		}
		want := []string{"bedrock", "cerebras", "ollama", "vllm", "fireworks", "together", "nvidia", "openai", "gemini", "groq", "sambanova", "azure", "runpod", "databricks", "passthrough"}
		if ids := enabledIDs(c); !reflect.DeepEqual(ids, want) {
			t.Fatalf("enabled = %v, want %v", ids, want)
		}
		for _, p := range c.EnabledProviders("inference") {
			o, ok := p.OpenAICompat()
			if ok != (p.ProviderID != "bedrock") {
				t.Errorf("%s: OpenAICompat ok = %v", p.ProviderID, ok)
				continue
			}
			if ok && (!strings.HasPrefix(o.BaseURL, "http") || o.APIKey == "" && p.ProviderID != "ollama") {
				t.Errorf("%s: %+v", p.ProviderID, o)
			}
		}
		ps := map[string]*Provider{}
		for _, p := range c.EnabledProviders("inference") {
			ps[p.ProviderID] = p
		}
		no := false
		vllmNet := ps["vllm"].Settings.(*VLLMConfig).Network
		checkCompat(t, ps, "vllm", compat("http://vllm:8000/v1", "vllm_api_token", noKeyRequired, func(o *OpenAICompat) {
			o.APIKey, o.MaxTokens, o.Network, o.TLSVerify = "vllm-token", 1024, vllmNet, &no
		}))
		checkCompat(t, ps, "openai", compat("https://openai.proxy.example.com/v1", "openai_api_key", func(o *OpenAICompat) { o.APIKey = "sk-openai" }))
		checkCompat(t, ps, "nvidia", compat("https://nim.example.com/v1", "nvidia_api_key", func(o *OpenAICompat) { o.APIKey = "nvidia-key"; o.KeyRequired = false }))
		checkCompat(t, ps, "azure", compat("https://res.openai.azure.com/openai/v1", "azure_api_key", func(o *OpenAICompat) {
			o.APIKey, o.AuthHeader, o.AuthScheme = "azure-key", "api-key", ""
		}))
		checkCompat(t, ps, "passthrough", compat("http://gateway:9000/v1", "passthrough_api_key", noKeyRequired, func(o *OpenAICompat) {
			o.APIKey, o.URLSuffix, o.ProviderDataURLKey, o.StaticKeyFirst = "pass-key", "/v1", "passthrough_url", true
		}))
		if b := ps["bedrock"].Settings.(*BedrockConfig); b.RegionName != "eu-west-1" || len(c.RegisteredResources.Models) != 2 {
			t.Errorf("bedrock: %+v, models %v", b, c.RegisteredResources.Models)
		}
	})

	t.Run("gemini oauth", func(t *testing.T) {
		c, err := Parse(Starter(), mapEnv(geminiOAuthEnv))
		if err != nil {
			t.Fatal(err)
		}
		if ids := enabledIDs(c); len(ids) != 0 {
			t.Errorf("GEMINI_API_KEY enables Gemini, not its OAuth variables: %v", ids)
		}
		env := maps.Clone(geminiOAuthEnv)
		env["GEMINI_API_KEY"] = "k"
		if _, err := Parse(Starter(), mapEnv(env)); err == nil || !strings.Contains(err.Error(), "api_key and access_token exclude each other") {
			t.Errorf("api key with access token: %v", err)
		}
	})
}

// TestOpenAICompatRedacted: no secret of the all-fields config shows in
// RedactedConfig, fmt, YAML or JSON.
func TestOpenAICompatRedacted(t *testing.T) {
	c, err := Load("testdata/openai_compat_all_fields.good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	secrets := []string{"sk-openai", "vllm-token", "ignored", "together-key", "fireworks-key", "groq-key", "ya29.token", "gemini-key",
		"azure-key", "sambanova-key", "cerebras-key", "runpod-token", "dapi-token", "pass-key"}
	redactedKeys := map[string]string{"openai": "api_key", "vllm": "api_token", "ollama": "auth_credential", "gemini": "access_token",
		"gemini-key": "api_key", "azure": "api_key", "runpod": "api_token", "databricks": "api_token", "passthrough": "api_key"}
	for _, p := range c.Providers["inference"] {
		rc := p.RedactedConfig()
		if rc == nil {
			t.Fatalf("%s: RedactedConfig() = nil", p.ProviderID)
		}
		if k, ok := redactedKeys[p.ProviderID]; ok && rc[k] != redacted {
			t.Errorf("%s: RedactedConfig()[%s] = %v", p.ProviderID, k, rc[k])
		}
		y, _ := yaml.Marshal(p.Settings)
		j, _ := json.Marshal(p.Settings)
		o, _ := p.OpenAICompat()
		texts := []string{fmt.Sprint(rc), fmt.Sprintf("%+v", p.Settings), fmt.Sprintf("%#v", p.Settings), string(y), string(j)}
		for _, text := range texts {
			for _, s := range secrets {
				if strings.Contains(text, s) {
					t.Errorf("%s: secret %q shows in %s", p.ProviderID, s, text)
				}
			}
		}
		if p.ProviderID == "ollama" || p.ProviderID == "nvidia" {
			continue // no key: ignored, and empty
		}
		if o.APIKey == "" || !slices.Contains(secrets, o.APIKey) {
			t.Errorf("%s: OpenAICompat().APIKey = %q, want the secret", p.ProviderID, o.APIKey)
		}
	}
	// The NVIDIA key is "" and stays visible as not set.
	if rc := c.Providers["inference"][9].RedactedConfig(); rc["api_key"] != "" {
		t.Errorf("empty key: %v", rc["api_key"])
	}
}

// TestYAMLFieldsInline: the keys of an inline struct are checked as the
// struct's own.
func TestYAMLFieldsInline(t *testing.T) {
	fields, names := yamlFields(reflect.TypeFor[VLLMConfig]())
	want := []string{"base_url", "max_tokens", "api_token", "tls_verify", "allowed_models", "refresh_models", "network"}
	if !reflect.DeepEqual(names, want) || len(fields) != len(want) {
		t.Errorf("names = %v, want %v", names, want)
	}
}
