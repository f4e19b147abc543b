package config

import (
	"errors"
	"fmt"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Validate checks c and returns every problem found, each a *FieldError
// with its YAML path (and line, for a config that came from Parse), joined
// with errors.Join; nil if there are none. Parse has already called it; call
// it again after changing a config, or on a config built in Go (start from
// DefaultServer, and set Provider.Settings to the type ProviderTypes gives).
func (c *Config) Validate() error {
	var p problems
	c.validate(&p)
	return p.err("")
}

// lineOf returns the line of n, or 0.
func lineOf(n *yaml.Node) int {
	if n == nil {
		return 0
	}
	return n.Line
}

// at returns the node at a path of keys from the document root, for lines.
func (c *Config) at(keys ...string) *yaml.Node {
	n := c.root
	for _, k := range keys {
		next := lookup(n, k)
		if next == nil {
			return n
		}
		n = next
	}
	return n
}

func (c *Config) validate(p *problems) {
	if c.Version != "" && c.Version != "2" {
		p.addf(c.at("version"), "version", "unsupported version %q (only 2 is supported)", c.Version)
	}
	c.validateServer(p)
	c.validateProviders(p)
	c.validateModels(p)
	c.validateStorage(p)
	c.validateResilience(p)
}

func (c *Config) validateServer(p *problems) {
	s := &c.Server
	at := func(key string) (*yaml.Node, string) { return c.at("server", key), "server." + key }
	if s.Port < 1024 || s.Port > 65535 {
		n, path := at("port")
		p.addf(n, path, "must be between 1024 and 65535, got %d", s.Port)
	}
	if s.RegistryRefreshIntervalSeconds <= 0 {
		n, path := at("registry_refresh_interval_seconds")
		p.addf(n, path, "must be positive, got %d", s.RegistryRefreshIntervalSeconds)
	}
	if s.MaxRequestBodyBytes < 0 {
		n, path := at("max_request_body_bytes")
		p.addf(n, path, "must not be negative, got %d", s.MaxRequestBodyBytes)
	}
	if (s.TLSCertfile == "") != (s.TLSKeyfile == "") {
		n, path := at("tls_certfile")
		if s.TLSCertfile == "" {
			n, path = at("tls_keyfile")
		}
		p.add(n, path, errors.New("tls_certfile and tls_keyfile must be set together"))
	}
	if s.TLSCAFile != "" && s.TLSCertfile == "" {
		n, path := at("tls_cafile")
		p.add(n, path, errors.New("needs tls_certfile and tls_keyfile"))
	}
	c.validateAccessControl(p) // server.auth, server.quota, server.cors: auth.go
}

// knownTypes lists ProviderTypes for messages.
func knownTypes() string {
	return strings.Join(sortedKeys(ProviderTypes), ", ")
}

func (c *Config) validateProviders(p *problems) {
	for _, api := range sortedKeys(c.Providers) {
		type first struct {
			path string
			node *yaml.Node
		}
		ids := map[string]first{}
		list := c.Providers[api]
		for i := range list {
			pr := &list[i]
			path := pr.Path
			if path == "" {
				path = indexPath("providers."+api, i)
			}
			if pr.noID {
				p.add(pr.node, path+".provider_id", errors.New("required"))
			}
			if pr.ProviderType == "" {
				p.add(lineNode(pr.node, "provider_type"), path+".provider_type", errors.New("required"))
			}
			if b := deref(&pr.Config); b != nil && b.Kind != 0 && b.Kind != yaml.MappingNode && !(b.Kind == yaml.ScalarNode && b.ShortTag() == tagNull) {
				p.addf(b, path+".config", "expected a mapping, got %s", describe(b))
				continue
			}
			if pr.Disabled || pr.ProviderID == "" || pr.ProviderID == disabledID {
				continue
			}
			if prev, dup := ids[pr.ProviderID]; dup {
				p.addf(lineNode(pr.node, "provider_id"), path+".provider_id", "duplicate provider_id %q (also at %s%s)", pr.ProviderID, prev.path, onLine(prev.node))
			} else {
				ids[pr.ProviderID] = first{path, pr.node}
			}
			if pr.ProviderType == "" {
				continue
			}
			newSettings, known := ProviderTypes[pr.ProviderType]
			if !known {
				p.addf(lineNode(pr.node, "provider_type"), path+".provider_type", "unknown provider type %q (known: %s)", pr.ProviderType, knownTypes())
				continue
			}
			block := &pr.Config
			if block.Kind == 0 {
				block = nil
			}
			want := reflect.TypeOf(newSettings())
			switch {
			case pr.Settings == nil:
				p.add(lineNode(pr.node, "config"), path+".config", errors.New("not decoded: Settings is nil"))
			case reflect.TypeOf(pr.Settings) != want:
				p.addf(lineNode(pr.node, "config"), path+".config", "settings are a %T, want %v", pr.Settings, want)
			default:
				if s, ok := pr.Settings.(settings); ok {
					s.validate(p, path+".config", block)
				}
			}
		}
	}
}

// onLine formats ", line N" for a node with a line.
func onLine(n *yaml.Node) string {
	if l := lineOf(n); l > 0 {
		return fmt.Sprintf(", line %d", l)
	}
	return ""
}

var modelTypes = []string{ModelTypeLLM, ModelTypeEmbedding, ModelTypeRerank}

func (c *Config) validateModels(p *problems) {
	inference := map[string]bool{} // enabled inference provider ids
	disabled := map[string]bool{}  // ids of inference providers marked disabled
	other := map[string]string{}   // enabled provider id → api, other APIs
	for _, api := range sortedKeys(c.Providers) {
		for _, pr := range c.Providers[api] {
			switch {
			case api == "inference" && pr.Disabled && pr.ProviderID != "":
				disabled[pr.ProviderID] = true
			case pr.Disabled || pr.ProviderID == "" || pr.ProviderID == disabledID:
			case api == "inference":
				inference[pr.ProviderID] = true
			default:
				if _, seen := other[pr.ProviderID]; !seen {
					other[pr.ProviderID] = api
				}
			}
		}
	}
	models := make([]*Model, 0, len(c.RegisteredResources.Models)+len(c.Models))
	paths := make([]string, 0, cap(models))
	for i := range c.RegisteredResources.Models {
		models = append(models, &c.RegisteredResources.Models[i])
		paths = append(paths, indexPath("registered_resources.models", i))
	}
	for i := range c.Models {
		models = append(models, &c.Models[i])
		paths = append(paths, indexPath("models", i))
	}
	type first struct {
		path string
		node *yaml.Node
	}
	seen := map[string]first{}
	for i, m := range models {
		path := m.Path
		if path == "" {
			path = paths[i]
		}
		at := func(key string) (*yaml.Node, string) { return lineNode(m.node, key), path + "." + key }
		if m.ModelID == "" {
			n, kp := at("model_id")
			p.add(n, kp, errors.New("required"))
		}
		switch id := m.ProviderID; {
		case id == "" || id == disabledID:
			n, kp := at("provider_id")
			p.add(n, kp, errors.New("required"))
		case id == AllProviders:
			if len(inference) == 0 {
				n, kp := at("provider_id")
				p.add(n, kp, errors.New(`"all" needs an enabled inference provider`))
			}
		case inference[id]:
		case disabled[id]:
			n, kp := at("provider_id")
			p.addf(n, kp, "provider %q is disabled", id)
		case other[id] != "":
			n, kp := at("provider_id")
			p.addf(n, kp, "provider %q is a %s provider, not an inference provider", id, other[id])
		default:
			n, kp := at("provider_id")
			p.addf(n, kp, "provider %q is not configured", id)
		}
		if m.ModelType != "" && !contains(modelTypes, m.ModelType) {
			n, kp := at("model_type")
			p.addf(n, kp, "unknown model type %q (allowed: %s)", m.ModelType, strings.Join(modelTypes, ", "))
		}
		if m.ModelType == ModelTypeEmbedding {
			if _, ok := m.Metadata["embedding_dimension"]; !ok {
				n, kp := at("metadata")
				p.add(n, kp+".embedding_dimension", errors.New("required for embedding models"))
			}
		}
		if m.ModelID == "" {
			continue
		}
		ident := m.Identifier()
		if prev, dup := seen[ident]; dup {
			n, kp := at("model_id")
			p.addf(n, kp, "duplicate model %q (also at %s%s)", ident, prev.path, onLine(prev.node))
		} else {
			seen[ident] = first{path, m.node}
		}
	}
}
