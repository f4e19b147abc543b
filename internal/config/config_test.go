package config

import (
	"errors"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// mapEnv is a LookupEnv over a map.
func mapEnv(m map[string]string) LookupEnv {
	return func(name string) (string, bool) {
		v, ok := m[name]
		return v, ok
	}
}

func TestGoodConfigs(t *testing.T) {
	files, err := filepath.Glob("testdata/*.good.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no good configs: %v", err)
	}
	for _, file := range files {
		t.Run(filepath.Base(file), func(t *testing.T) {
			c, err := Load(file, mapEnv(nil))
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			if err := c.Validate(); err != nil {
				t.Errorf("Validate after Load: %v", err)
			}
		})
	}
}

func TestBadConfigs(t *testing.T) {
	tests := []struct {
		file string
		env  map[string]string
		errs []string
	}{
		{file: "unknown_top_level.bad.yaml", errs: []string{
			`:3: telemetryy: unknown field (did you mean "telemetry"?)`,
		}},
		{file: "unknown_provider_type.bad.yaml", errs: []string{
			`:5: providers.inference[0].provider_type: unknown provider type "remote::foo" (known: remote::azure, remote::bedrock, remote::cerebras, remote::databricks, remote::fireworks, remote::gemini, remote::groq, remote::nvidia, remote::ollama, remote::openai, remote::passthrough, remote::runpod, remote::sambanova, remote::together, remote::vllm)`,
		}},
		{file: "model_provider_not_configured.bad.yaml", errs: []string{
			`:11: registered_resources.models[1].provider_id: provider "x" is not configured`,
		}},
		{file: "config_unknown_field.bad.yaml", errs: []string{
			`:7: providers.inference[0].config.regionname: unknown field (did you mean "region_name"?)`,
		}},
		{file: "port_not_int.bad.yaml", errs: []string{
			`:4: server.port: expected an integer, got "abc"`,
		}},
		{file: "port_fraction.bad.yaml", errs: []string{
			`server.port: expected an integer, got "8321.5"`,
		}},
		{file: "duplicate_provider.bad.yaml", errs: []string{
			`:6: providers.inference[1].provider_id: duplicate provider_id "bedrock" (also at providers.inference[0], line 4)`,
		}},
		{file: "duplicate_model.bad.yaml", errs: []string{
			`:10: registered_resources.models[1].model_id: duplicate model "bedrock/openai.gpt-oss-20b-1:0" (also at registered_resources.models[0], line 8)`,
		}},
		{file: "model_type.bad.yaml", errs: []string{
			`:10: registered_resources.models[0].model_type: unknown model type "chat" (allowed: llm, embedding, rerank)`,
			`registered_resources.models[1].metadata.embedding_dimension: required for embedding models`,
		}},
		{file: "env_unset.bad.yaml", env: map[string]string{"REGION_B": "", "VAR": ""}, errs: []string{
			`:7: providers.inference[0].config.api_key: environment variable VAR is not set`,
			`:8: providers.inference[0].config.region_name: environment variable REGION_A is not set`,
			`:8: providers.inference[0].config.region_name: environment variable REGION_B is not set`,
		}},
		{file: "many.bad.yaml", errs: []string{
			`:2: version: unsupported version "3" (only 2 is supported)`,
			`:9: providers.inference[0].config.regionname: unknown field`,
			`:10: providers.inference[0].config.connect_timeout: expected a number, got "soon"`,
			`:11: providers.inference[1].provider_id: duplicate provider_id "bedrock"`,
			`:14: providers.inference[2].provider_type: unknown provider type "remote::foo"`,
			`:17: providers.safety[0].provider_type: unknown provider type "inline::llama-guard"`,
			`:22: registered_resources.models[0].model_type: unknown model type "chat"`,
			`:24: registered_resources.models[1].provider_id: provider "x" is not configured`,
			`:26: registered_resources.models[2].provider_id: provider "guard" is a safety provider, not an inference provider`,
			`:27: registered_resources.models[3].model_id: required`,
			`:29: server.port: expected an integer, got "abc"`,
			`:30: server.workers: expected an integer, got "many"`,
			`:31: server.tls_keyfile: tls_certfile and tls_keyfile must be set together`,
			`:32: surprise: unknown field`,
		}},
		{file: "not_mapping.bad.yaml", errs: []string{`not_mapping.bad.yaml:1: expected a mapping at the top level, got a list`}},
		{file: "two_docs.bad.yaml", errs: []string{`two_docs.bad.yaml:3: config must be a single YAML document`}},
		{file: "syntax.bad.yaml", errs: []string{`yaml: line`}},
		{file: "empty.bad.yaml", errs: []string{`config is empty`}},
		{file: "no_providers.bad.yaml", errs: []string{`providers: required`}},
		{file: "version.bad.yaml", errs: []string{`version: unsupported version "3"`}},
		{file: "bedrock_values.bad.yaml", errs: []string{
			`:7: providers.inference[0].config.region_name: invalid AWS region "us west 2"`,
			`:8: providers.inference[0].config.base_url: expected an http or https URL, got "ftp://example.com"`,
			`:9: providers.inference[0].config.retry_mode: unknown retry mode "fast" (allowed: legacy, standard, adaptive)`,
			`:10: providers.inference[0].config.connect_timeout: must be a non-negative number of seconds, got -1`,
			`:11: providers.inference[0].config.total_max_attempts: must not be negative, got -2`,
			`:12: providers.inference[0].config.aws_access_key_id: aws_access_key_id and aws_secret_access_key must be set together`,
			`:13: providers.inference[0].config.allowed_models[0]: empty model id`,
			`:16: providers.inference[0].config.network.tls.verify: expected a boolean or a CA file path, got 3`,
			`:17: providers.inference[0].config.network.tls.min_version: unknown TLS version "TLSv1.1"`,
			`providers.inference[0].config.network.tls: client_cert and client_key must be set together`,
			`:20: providers.inference[0].config.network.proxy.url: url excludes http and https`,
			`:22: providers.inference[0].config.network.proxy.https: expected an http or https URL, got "not a url"`,
			`:23: providers.inference[0].config.network.timeout: expected a non-negative number of seconds or a mapping with connect and read, got "soon"`,
			`:26: providers.inference[0].config.network.retries: unknown field`,
		}},
		{file: "network_timeout.bad.yaml", errs: []string{
			`:9: providers.inference[0].config.network.timeout.connect: expected a non-negative number of seconds, got -1`,
			`:10: providers.inference[0].config.network.timeout.write: unknown field`,
		}},
		{file: "server_values.bad.yaml", errs: []string{
			`:4: server.port: must be between 1024 and 65535, got 80`,
			`:5: server.tls_certfile: tls_certfile and tls_keyfile must be set together`,
			`:7: server.registry_refresh_interval_seconds: must be positive, got 0`,
			`:8: server.max_request_body_bytes: must not be negative, got -1`,
			`:9: server.auth: expected a mapping, got "oauth"`,
			`:10: server.cors: expected a boolean or a mapping, got "maybe"`,
			`:11: server.quota: expected a mapping, got a list`,
		}},
		{file: "types.bad.yaml", errs: []string{
			`:2: apis: expected a list, got "inference"`,
			`:5: providers.inference: expected a list, got a mapping`,
			`:9: providers.safety[0].config: expected a mapping, got a list`,
			`:12: registered_resources.models: expected a list, got a mapping`,
			`:13: server: expected a mapping, got "8321"`,
		}},
		{file: "model_fields.bad.yaml", errs: []string{
			`:7: providers.inference[0].config.region_name: expected a string, got a list`,
			`:8: providers.inference[0].config.refresh_models: expected a boolean, got "perhaps"`,
			`:9: providers.inference[0].config.allowed_models: expected a list, got "openai.gpt-oss-20b-1:0"`,
			`:14: registered_resources.models[0].metadata: expected a mapping, got a list`,
			`:15: registered_resources.models[0].model_type: expected a string, got a mapping`,
		}},
		{file: "duplicate_keys.bad.yaml", errs: []string{
			`:5: server.port: duplicate key (first set on line 4)`,
		}},
		{file: "missing_ids.bad.yaml", errs: []string{
			`:4: providers.inference[0].provider_id: required`,
			`:5: providers.inference[1].provider_type: required`,
			`:8: registered_resources.models[0].model_id: required`,
		}},
		{file: "env_default_invalid.bad.yaml", env: map[string]string{"AWS_MAX_ATTEMPTS": "three", "AWS_READ_TIMEOUT": "1m"}, errs: []string{
			`providers.inference[0].config.total_max_attempts: default from environment variable AWS_MAX_ATTEMPTS: expected an integer, got "three"`,
			`providers.inference[0].config.read_timeout: default from environment variable AWS_READ_TIMEOUT: expected a number, got "1m"`,
		}},
		{file: "disabled_model_provider.bad.yaml", errs: []string{
			`:12: registered_resources.models[1].provider_id: provider "x" is not configured`,
		}},
		{file: "openai_compat_unknown_key.bad.yaml", errs: []string{
			`:7: providers.inference[0].config.baseurl: unknown field (did you mean "base_url"?)`,
			`:12: providers.inference[1].config.api_key: unknown field (did you mean "api_token"?)`,
			`:16: providers.inference[2].config.api_key: unknown field (did you mean "auth_credential"?)`,
			`:20: providers.inference[3].config.organization: unknown field`,
			`:24: providers.inference[4].config.api_keys: unknown field (did you mean "api_key"?)`,
			`:28: providers.inference[5].config.timeout: unknown field`,
			`:32: providers.inference[6].config.location: unknown field`,
			`:37: providers.inference[7].config.deployment: unknown field`,
			`:41: providers.inference[8].config.rerank_model_to_urls: unknown field (did you mean "rerank_model_to_url"?)`,
			`:45: providers.inference[9].config.retries: unknown field`,
			`:51: providers.inference[10].config.network.tls.verfy: unknown field (did you mean "verify"?)`,
			`:55: providers.inference[11].config.url: unknown field (did you mean "base_url"?)`,
			`:60: providers.inference[12].config.api_key: unknown field (did you mean "api_token"?)`,
			`:64: providers.inference[13].config.forward_header: unknown field (did you mean "forward_headers"?)`,
		}},
		{file: "openai_compat_urls.bad.yaml", errs: []string{
			`:7: providers.inference[0].config.base_url: expected an http or https URL, got "ftp://api.openai.com/v1"`,
			`:11: providers.inference[1].config.base_url: expected an http or https URL, got "localhost:8000/v1"`,
			`:15: providers.inference[2].config.base_url: expected an http or https URL, got "http://"`,
			`:19: providers.inference[3].config.base_url: expected a base URL without query or fragment, got "https://api.together.xyz/v1?region=eu"`,
			`:23: providers.inference[4].config.base_url: expected an http or https URL, got "not a url"`,
			`:27: providers.inference[5].config.base_url: expected a base URL without query or fragment, got "https://api.groq.com/openai/v1#frag"`,
			`:31: providers.inference[6].config.base_url: expected an http or https URL, got "gs://bucket"`,
			`:35: providers.inference[7].config.base_url: expected an http or https URL, got "res.openai.azure.com"`,
			`:39: providers.inference[8].config.base_url: expected an http or https URL, got "file:///tmp/nim"`,
			`:43: providers.inference[9].config.base_url: expected an http or https URL, got "://"`,
			`:47: providers.inference[10].config.base_url: expected an http or https URL, got "http//api.cerebras.ai"`,
			`:51: providers.inference[11].config.base_url: expected an http or https URL, got "https:/api.runpod.ai"`,
			`:55: providers.inference[12].config.base_url: expected an http or https URL, got "ws://dbc-1.cloud.databricks.com"`,
			`:59: providers.inference[13].config.base_url: expected an http or https URL, got "mailto:ops@example.com"`,
		}},
		{file: "openai_compat_values.bad.yaml", errs: []string{
			`:7: providers.inference[0].config.base_url: required`,
			`:7: providers.inference[0].config.max_tokens: must not be negative, got -1`,
			`:8: providers.inference[0].config.tls_verify: expected a boolean or a CA file path, got 3`,
			`:12: providers.inference[1].config.base_url: required`,
			`:12: providers.inference[1].config.api_version: invalid API version "2024 12 01"`,
			`:16: providers.inference[2].config.base_url: required`,
			`providers.inference[3].config.base_url: required`,
			`:22: providers.inference[4].config.base_url: required`,
			`:27: providers.inference[5].config.access_token: api_key and access_token exclude each other`,
			`:31: providers.inference[6].config.project: required with access_token`,
			`:35: providers.inference[7].config.project: needs access_token`,
			`:39: providers.inference[8].config.timeout: must not be negative, got -5`,
			`:41: providers.inference[8].config.rerank_model_to_url.m: expected an http or https URL, got "nim/rerank"`,
			`:46: providers.inference[9].config.forward_headers.__secret: provider-data keys starting with "__" are reserved`,
			`:47: providers.inference[9].config.forward_headers.a: "Bad Header" is not a valid HTTP header name`,
			`:48: providers.inference[9].config.forward_headers.b: header "Cookie" may not be forwarded (security-sensitive)`,
			`:49: providers.inference[9].config.forward_headers.c: header "x-internal" may not be forwarded (security-sensitive)`,
			`:50: providers.inference[9].config.extra_blocked_headers[1]: empty header name`,
			`:54: providers.inference[10].config.allowed_models[0]: empty model id`,
			`:56: providers.inference[10].config.network.timeout: expected a non-negative number of seconds or a mapping with connect and read, got "soon"`,
			`:60: providers.inference[11].config.refresh_models: expected a boolean, got "sometimes"`,
		}},
	}
	files, _ := filepath.Glob("testdata/*.bad.yaml")
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
			path := filepath.Join("testdata", tt.file)
			c, err := Load(path, mapEnv(tt.env))
			if err == nil {
				t.Fatalf("Load succeeded, want errors")
			}
			if c != nil {
				t.Errorf("Load returned a config with its error")
			}
			msg := err.Error()
			for _, want := range tt.errs {
				if !strings.Contains(msg, want) {
					t.Errorf("error lacks %q; got:\n%s", want, msg)
				}
			}
			for _, line := range strings.Split(msg, "\n") {
				if !strings.HasPrefix(line, path+":") {
					t.Errorf("error line does not start with the file name: %q", line)
				}
				if strings.Contains(line, "failed to") {
					t.Errorf("error line says \"failed to\": %q", line)
				}
			}
			if len(tt.errs) > 1 {
				if got := len(strings.Split(msg, "\n")); got < len(tt.errs) {
					t.Errorf("got %d problems, want at least %d:\n%s", got, len(tt.errs), msg)
				}
			}
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Errorf("error is not a *FieldError: %T", err)
			}
		})
	}
}

func TestNotebookMinimal(t *testing.T) {
	for _, tt := range []struct {
		name       string
		env        map[string]string
		wantKey    string
		wantRegion string
	}{
		{"unset", nil, "", "us-west-2"},
		{"empty", map[string]string{"AWS_BEARER_TOKEN_BEDROCK": "", "AWS_DEFAULT_REGION": ""}, "", "us-west-2"},
		{"set", map[string]string{"AWS_BEARER_TOKEN_BEDROCK": "bedrock-api-key-abc", "AWS_DEFAULT_REGION": "eu-west-1"}, "bedrock-api-key-abc", "eu-west-1"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load("testdata/notebook_minimal.good.yaml", mapEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			if got, want := c.Name(), "llama-stack"; got != want {
				t.Errorf("Name() = %q, want %q", got, want)
			}
			if got, want := c.Server.Port, 8321; got != want {
				t.Errorf("port = %d, want %d", got, want)
			}
			ps := c.EnabledProviders("inference")
			if len(ps) != 1 {
				t.Fatalf("enabled providers = %d, want 1", len(ps))
			}
			p := ps[0]
			if p.API != "inference" || p.Path != "providers.inference[0]" || p.ProviderID != "bedrock" || p.ProviderType != ProviderTypeBedrock {
				t.Errorf("provider = %+v", p)
			}
			b, ok := p.Settings.(*BedrockConfig)
			if !ok {
				t.Fatalf("Settings = %T, want *BedrockConfig", p.Settings)
			}
			if b.APIKey.Value() != tt.wantKey || b.RegionName != tt.wantRegion {
				t.Errorf("api key %q region %q, want %q %q", b.APIKey.Value(), b.RegionName, tt.wantKey, tt.wantRegion)
			}
			if b.HasBearerToken() != (tt.wantKey != "") {
				t.Errorf("HasBearerToken() = %v", b.HasBearerToken())
			}
			if b.ConnectTimeout != 60 || b.ReadTimeout != 60 || b.SessionTTL != 3600 {
				t.Errorf("defaults: %v %v %v", b.ConnectTimeout, b.ReadTimeout, b.SessionTTL)
			}
			want := []Model{{
				ModelID:         "bedrock/openai.gpt-oss-20b-1:0",
				ProviderID:      "bedrock",
				ProviderModelID: "openai.gpt-oss-20b-1:0",
				ModelType:       "llm",
				Metadata:        map[string]any{},
				Path:            "registered_resources.models[0]",
			}}
			if got := stripNodes(c.RegisteredResources.Models); !reflect.DeepEqual(got, want) {
				t.Errorf("models = %+v, want %+v", got, want)
			}
			if got := c.RegisteredResources.Models[0].Identifier(); got != "bedrock/openai.gpt-oss-20b-1:0" {
				t.Errorf("Identifier() = %q", got)
			}
		})
	}
}

func stripNodes(ms []Model) []Model {
	out := make([]Model, len(ms))
	for i, m := range ms {
		m.node = nil
		out[i] = m
	}
	return out
}

func TestStarter(t *testing.T) {
	c, err := Parse(Starter(), mapEnv(nil))
	if err != nil {
		t.Fatalf("starter without token: %v", err)
	}
	if got := c.Name(); got != "starter" {
		t.Errorf("Name() = %q", got)
	}
	if len(c.EnabledProviders("inference")) != 0 || !c.Providers["inference"][0].Disabled {
		t.Errorf("bedrock enabled without a token")
	}
	if len(c.RegisteredResources.Models) != 0 {
		t.Errorf("models = %v, want none", c.RegisteredResources.Models)
	}
	if got := len(c.DroppedModels()); got != 2 {
		t.Errorf("dropped %d models, want 2", got)
	}

	c, err = Parse(Starter(), mapEnv(map[string]string{"AWS_BEARER_TOKEN_BEDROCK": "tok"}))
	if err != nil {
		t.Fatalf("starter with token: %v", err)
	}
	ps := c.EnabledProviders("inference")
	if len(ps) != 1 || ps[0].ProviderID != "bedrock" {
		t.Fatalf("enabled = %v", ps)
	}
	b := ps[0].Settings.(*BedrockConfig)
	if b.RegionName != "us-west-2" || b.APIKey.Value() != "tok" {
		t.Errorf("settings = %+v", b)
	}
	var ids []string
	for _, m := range c.RegisteredResources.Models {
		if m.ProviderModelID != strings.TrimPrefix(m.ModelID, "bedrock/") || m.ModelType != "llm" {
			t.Errorf("model %+v", m)
		}
		ids = append(ids, m.Identifier())
	}
	if want := []string{"bedrock/openai.gpt-oss-20b-1:0", "bedrock/openai.gpt-oss-120b-1:0"}; !reflect.DeepEqual(ids, want) {
		t.Errorf("models = %v, want %v", ids, want)
	}
	if len(c.DroppedModels()) != 0 {
		t.Errorf("dropped = %v", c.DroppedModels())
	}

	c, err = Parse(Starter(), mapEnv(map[string]string{"AWS_BEARER_TOKEN_BEDROCK": "tok", "AWS_DEFAULT_REGION": "ap-south-1"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Providers["inference"][0].Settings.(*BedrockConfig).RegionName; got != "ap-south-1" {
		t.Errorf("region = %q", got)
	}
	if s := Starter(); &s[0] == &starter[0] {
		t.Errorf("Starter returns the package's slice")
	}
}

func TestOGXStarterStyle(t *testing.T) {
	c, err := Load("testdata/ogx_starter_style.good.yaml", mapEnv(map[string]string{"HOME": "/home/u"}))
	if err != nil {
		t.Fatal(err)
	}
	var disabled []string
	for _, p := range c.Providers["inference"] {
		if p.Disabled {
			disabled = append(disabled, p.ProviderType)
		}
	}
	if want := []string{"remote::cerebras", "remote::vllm", "remote::openai", "remote::ollama"}; !reflect.DeepEqual(disabled, want) {
		t.Errorf("disabled = %v, want %v", disabled, want)
	}
	if c.Server.Port != 8321 {
		t.Errorf("port = %d", c.Server.Port)
	}
	// server.auth.provider_config is null when its type expands to empty.
	if c.Server.Auth == nil || c.Server.Auth.ProviderConfig != nil {
		t.Errorf("auth = %+v, want provider_config: null", c.Server.Auth)
	}
	// ~ in substituted values is expanded with HOME; the rest of the text stays.
	var storage struct {
		Backends map[string]struct {
			DBPath string `yaml:"db_path"`
		}
	}
	if err := c.Storage.Decode(&storage); err != nil {
		t.Fatal(err)
	}
	if got, want := storage.Backends["kv_default"].DBPath, "/home/u/.llama/distributions/starter/kvstore.db"; got != want {
		t.Errorf("db_path = %q, want %q", got, want)
	}
	// Shields whose id expands to empty are removed, as OGX does.
	if got := len(c.RegisteredResources.Shields); got != 1 {
		t.Errorf("shields = %d, want 1", got)
	}
	var kept []string
	for _, m := range c.RegisteredResources.Models {
		kept = append(kept, m.Identifier())
	}
	if want := []string{"claude-haiku-4-5-20251001", "bedrock/openai.gpt-oss-20b-1:0", "bedrock/nomic-embed"}; !reflect.DeepEqual(kept, want) {
		t.Errorf("models = %v, want %v", kept, want)
	}
	var dropped []string
	for _, m := range c.DroppedModels() {
		dropped = append(dropped, m.Path)
	}
	if want := []string{"registered_resources.models[2]", "registered_resources.models[3]"}; !reflect.DeepEqual(dropped, want) {
		t.Errorf("dropped = %v, want %v", dropped, want)
	}
	emb := c.RegisteredResources.Models[2]
	if got := emb.Metadata["embedding_dimension"]; got != 768 {
		t.Errorf("embedding_dimension = %#v, want int 768", got)
	}
	if emb.ModelType != "embedding" || emb.ProviderModelID != "nomic-embed" {
		t.Errorf("embedding model = %+v", emb)
	}
}

func TestLegacy(t *testing.T) {
	c, err := Load("testdata/legacy.good.yaml", mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Name() != "bedrock-legacy" || c.Version != "2" {
		t.Errorf("name %q version %q", c.Name(), c.Version)
	}
	if len(c.Models) != 0 {
		t.Errorf("top-level models not merged")
	}
	var paths []string
	for _, m := range c.RegisteredResources.Models {
		paths = append(paths, m.Path)
	}
	if want := []string{"models[0]", "models[1]"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("paths = %v, want %v", paths, want)
	}
	s := c.Server
	if s.Host != "0.0.0.0" || s.Workers != 2 || !s.DisableIPv6 || s.MaxRequestBodyBytes != 1<<20 || s.RegistryRefreshIntervalSeconds != 300 {
		t.Errorf("server = %+v", s)
	}
	if c.ExternalProvidersDir.Value != "~/.llama/providers.d" {
		t.Errorf("external_providers_dir = %q (only substituted values are ~-expanded)", c.ExternalProvidersDir.Value)
	}
}

func TestAnchors(t *testing.T) {
	c, err := Load("testdata/anchors.good.yaml", mapEnv(map[string]string{"AWS_BEARER_TOKEN_BEDROCK": "k"}))
	if err != nil {
		t.Fatal(err)
	}
	ps := c.EnabledProviders("inference")
	if len(ps) != 2 {
		t.Fatalf("providers = %d", len(ps))
	}
	west, east := ps[0].Settings.(*BedrockConfig), ps[1].Settings.(*BedrockConfig)
	if west.RegionName != "us-west-2" || east.RegionName != "us-east-1" || east.ReadTimeout != 120 || east.APIKey.Value() != "k" {
		t.Errorf("west %+v east %+v", west, east)
	}
	ms := c.RegisteredResources.Models
	if len(ms) != 2 || ms[1].ProviderID != "bedrock-east" || ms[1].ModelID != "openai.gpt-oss-20b-1:0" {
		t.Errorf("models = %+v", ms)
	}
}

func TestBedrockAllFields(t *testing.T) {
	c, err := Load("testdata/bedrock_all_fields.good.yaml", mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	b := c.Providers["inference"][0].Settings.(*BedrockConfig)
	if b.BaseURL != "http://127.0.0.1:9000" {
		t.Errorf("base_url = %q", b.BaseURL)
	}
	if b.HasBearerToken() || b.AWSAccessKeyID.Value() != "AKIAEXAMPLE" || b.AWSSessionToken.Value() != "session-example" {
		t.Errorf("credentials: %+v", b)
	}
	if b.TotalMaxAttempts != 3 || b.RetryMode != "adaptive" || b.ConnectTimeout != 5 || b.ReadTimeout != 30.5 || b.SessionTTL != 900 {
		t.Errorf("client settings: %+v", b)
	}
	if !b.RefreshModels || len(b.AllowedModels) != 2 {
		t.Errorf("models settings: %+v", b)
	}
	n := b.Network
	if v, ca := n.TLS.VerifyTLS(); !v || ca != "/etc/ssl/certs/ca.pem" {
		t.Errorf("VerifyTLS() = %v, %q", v, ca)
	}
	if conn, read := n.Timeouts(); conn.Seconds() != 2 || read.Seconds() != 60 {
		t.Errorf("Timeouts() = %v, %v", conn, read)
	}
	if n.Headers["X-Team"] != "llama" || n.Proxy.HTTPS == "" || len(n.Proxy.NoProxy) != 2 {
		t.Errorf("network = %+v", n)
	}
	if c.Server.TLSCAFile != "/etc/tls/ca.pem" || c.Server.Port != 9321 || c.Server.Host != "::" {
		t.Errorf("server = %+v", c.Server)
	}
}

func TestBedrockEnvDefaults(t *testing.T) {
	const cfg = `
version: 2
providers:
  inference:
  - provider_id: bedrock
    provider_type: remote::bedrock
    config:
      profile_name: explicit
      aws_session_token: null
`
	env := mapEnv(map[string]string{
		"AWS_DEFAULT_REGION":    "eu-west-3",
		"AWS_ACCESS_KEY_ID":     "AKIA",
		"AWS_SECRET_ACCESS_KEY": "s3cr3t",
		"AWS_SESSION_TOKEN":     "tok",
		"AWS_PROFILE":           "ignored",
		"AWS_MAX_ATTEMPTS":      "5",
		"AWS_CONNECT_TIMEOUT":   "2.5",
		"AWS_SESSION_TTL":       "1_800",
		"AWS_ROLE_ARN":          "arn:aws:iam::1:role/r",
	})
	c, err := Parse([]byte(cfg), env)
	if err != nil {
		t.Fatal(err)
	}
	b := c.Providers["inference"][0].Settings.(*BedrockConfig)
	want := newBedrockConfig()
	want.RegionName = "eu-west-3"
	want.AWSAccessKeyID = "AKIA"
	want.AWSSecretAccessKey = "s3cr3t"
	want.ProfileName = "explicit"
	want.TotalMaxAttempts = 5
	want.ConnectTimeout = 2.5
	want.SessionTTL = 1800
	want.AWSRoleARN = "arn:aws:iam::1:role/r"
	if !reflect.DeepEqual(b, want) {
		t.Errorf("settings =\n%#v\nwant\n%#v", *b, *want)
	}
}

func TestDisabledProviderIgnoresItsConfig(t *testing.T) {
	const cfg = `
version: 2
providers:
  inference:
  - provider_id: ${env.ON:+bedrock}
    provider_type: remote::bedrock
    config:
      api_key: ${env.NOT_SET}
      regionname: typo
      port: [1]
  - provider_id: ${env.ON:+x}
    provider_type: remote::unknown
`
	c, err := Parse([]byte(cfg), nil)
	if err != nil {
		t.Fatalf("disabled providers must not be checked: %v", err)
	}
	p := c.Providers["inference"][0]
	if !p.Disabled || p.Settings != nil {
		t.Errorf("provider = %+v", p)
	}
	if got := p.RedactedConfig()["api_key"]; got != redacted {
		t.Errorf("RedactedConfig of a disabled provider: api_key = %v", got)
	}
	if _, err := Parse([]byte(cfg), mapEnv(map[string]string{"ON": "1"})); err == nil {
		t.Errorf("enabled, the same providers must fail")
	} else {
		for _, want := range []string{
			"providers.inference[0].config.api_key: environment variable NOT_SET is not set",
			"providers.inference[1].provider_type: unknown provider type",
		} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%v", want, err)
			}
		}
	}
}

func TestValidateBuiltInGo(t *testing.T) {
	c := &Config{
		Server: DefaultServer,
		Providers: map[string][]Provider{"inference": {
			{ProviderID: "b", ProviderType: ProviderTypeBedrock, Settings: &BedrockConfig{RegionName: "us-east-1"}},
			{ProviderID: "c", ProviderType: ProviderTypeBedrock},
			{ProviderID: "d", ProviderType: ProviderTypeBedrock, Disabled: true},
		}},
		RegisteredResources: RegisteredResources{Models: []Model{
			{ModelID: "m", ProviderID: "b"},
			{ModelID: "n", ProviderID: "d"},
		}},
	}
	err := c.Validate()
	if err == nil {
		t.Fatal("Validate() = nil")
	}
	for _, want := range []string{
		"providers.inference[1].config: not decoded",
		`registered_resources.models[1].provider_id: provider "d" is disabled`,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "line ") {
		t.Errorf("lines for a config built in Go: %v", err)
	}
	c.Providers["inference"] = c.Providers["inference"][:1]
	c.RegisteredResources.Models = c.RegisteredResources.Models[:1]
	if err := c.Validate(); err != nil {
		t.Errorf("Validate() = %v", err)
	}
}

func TestLoadMissingFile(t *testing.T) {
	_, err := Load("testdata/nope.yaml", nil)
	if err == nil || !strings.HasPrefix(err.Error(), "testdata/nope.yaml: ") {
		t.Fatalf("err = %v", err)
	}
}

func TestYAMLNodeFieldsKeepLines(t *testing.T) {
	c, err := Load("testdata/ogx_starter_style.good.yaml", nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Storage.Kind != yaml.MappingNode || c.Storage.Line != 55 {
		t.Errorf("storage node kind %v line %d", c.Storage.Kind, c.Storage.Line)
	}
}
