package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"reflect"
	"slices"

	"go.yaml.in/yaml/v3"
)

// Load reads the config file at path and parses it (see Parse). Every
// line of the error starts with path.
func Load(path string, env LookupEnv) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return parse(data, env, path)
}

// Parse parses a config: it expands ${env...} references in scalar values
// (env nil means no variables are set), decodes strictly, applies defaults,
// decodes the typed config of each enabled provider (Provider.Settings),
// drops models whose provider is disabled (DroppedModels) and validates. On
// failure it returns every problem found, each a *FieldError, joined with
// errors.Join, and no config.
func Parse(data []byte, env LookupEnv) (*Config, error) {
	return parse(data, env, "")
}

// maxNodes bounds the nodes of a tree copied with its aliases expanded.
const maxNodes = 1000000

func parse(data []byte, env LookupEnv, file string) (*Config, error) {
	if env == nil {
		env = noEnv
	}
	probs := &problems{}
	root, line, err := readDocument(data)
	if err != nil {
		probs.addLine(line, "", err)
		return nil, probs.err(file)
	}

	x := newExpander(env, probs, root)
	x.walk(root, "")
	newSchema(probs).check(root, reflect.TypeFor[Config](), "")
	// OGX requires providers too; a server without them serves nothing.
	if p := lookup(root, "providers"); p == nil || p.Kind == yaml.ScalarNode && p.ShortTag() == tagNull {
		probs.add(root, "providers", errors.New("required"))
	}

	c := defaultConfig()
	c.root = root
	if err := root.Decode(c); err != nil && len(probs.list) == 0 {
		probs.add(nil, "", fmt.Errorf("decode: %w", err))
	}
	if len(probs.list) == 0 {
		// The schema check above is meant to accept exactly what a strict
		// yaml.v3 decoder accepts; a strict decode of the expanded tree
		// confirms it. (root.Decode, which cannot be strict, is used for the
		// value so that yaml.Node fields keep their lines.)
		if err := strictDecode(root, defaultConfig()); err != nil {
			probs.add(nil, "", fmt.Errorf("decode: %w", err))
		}
	}

	bindProviders(c, root, x)
	decodeSettings(c, env, probs)
	bindModels(c, root, x)
	resolveModels(c)
	resolveStorage(c, env, probs)

	var v problems
	c.validate(&v)
	probs.merge(&v)
	if err := probs.err(file); err != nil {
		return nil, err
	}
	return c, nil
}

// readDocument parses data, which must hold one YAML document whose top
// level is a mapping. On error it returns the line of the problem, if known.
func readDocument(data []byte) (*yaml.Node, int, error) {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, errors.New("config is empty")
		}
		return nil, 0, err
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		if err != nil {
			return nil, 0, err
		}
		return nil, next.Line, errors.New("config must be a single YAML document")
	}
	root := deref(&doc)
	if root == nil || root.Kind == 0 || root.Kind == yaml.DocumentNode {
		return nil, 0, errors.New("config is empty")
	}
	if root.Kind != yaml.MappingNode {
		return nil, root.Line, fmt.Errorf("expected a mapping at the top level, got %s", describe(root))
	}
	return root, 0, nil
}

// strictDecode encodes n and decodes the text into out with unknown fields
// rejected: yaml.v3 has no strict mode for Node.Decode.
func strictDecode(n *yaml.Node, out any) error {
	budget := maxNodes
	c, err := copyResolved(n, &budget)
	if err != nil {
		return err
	}
	data, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(out); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	return nil
}

// looseDecode decodes n into out, skipping what does not fit.
func looseDecode(n *yaml.Node, out any) error {
	budget := maxNodes
	c, err := copyResolved(n, &budget)
	if err != nil {
		return err
	}
	return c.Decode(out)
}

// bindProviders fills the fields of each Provider that do not come from
// its YAML: API, Path, Disabled, and, from the document, its node and its
// provider_id as written.
func bindProviders(c *Config, root *yaml.Node, x *expander) {
	for api, list := range c.Providers {
		for j := range list {
			p := &list[j]
			p.API = api
			p.Path = indexPath("providers."+api, j)
			p.rawID = p.ProviderID
			p.Disabled = p.ProviderID == "" || p.ProviderID == disabledID
			if p.Config.Kind == yaml.AliasNode {
				if n := deref(&p.Config); n != nil {
					p.Config = *n
				}
			}
		}
	}
	provs := lookup(root, "providers")
	if provs == nil || provs.Kind != yaml.MappingNode {
		return
	}
	for i := 0; i+1 < len(provs.Content); i += 2 {
		list := c.Providers[provs.Content[i].Value]
		seq := deref(provs.Content[i+1])
		if seq == nil || seq.Kind != yaml.SequenceNode || len(seq.Content) != len(list) {
			continue
		}
		for j, item := range seq.Content {
			p := &list[j]
			m := deref(item)
			p.node = m
			p.noID = lookup(m, "provider_id") == nil
			if raw, ok := x.rawIDs[m]; ok {
				p.rawID = raw
			}
		}
	}
}

// decodeSettings decodes the config block of each enabled provider of a
// known type into its typed config: the block is checked against the type,
// then re-encoded and decoded with a fresh strict decoder.
func decodeSettings(c *Config, env LookupEnv, probs *problems) {
	for _, api := range sortedKeys(c.Providers) {
		for _, p := range c.EnabledProviders(api) {
			newSettings, ok := ProviderTypes[p.ProviderType]
			if !ok {
				continue // reported by validate
			}
			v := newSettings()
			path := p.Path + ".config"
			block := &p.Config
			if block.Kind == 0 {
				block = nil
			}
			s, hooks := v.(settings)
			if hooks {
				s.envDefaults(block, env, probs, path)
			}
			if block != nil && !(block.Kind == yaml.ScalarNode && block.ShortTag() == tagNull) {
				before := len(probs.list)
				newSchema(probs).check(block, reflect.TypeOf(v).Elem(), path)
				if len(probs.list) == before {
					if err := strictDecode(block, v); err != nil {
						probs.add(block, path, fmt.Errorf("decode: %w", err))
					}
				} else {
					// Decode what can be decoded, so that validation can
					// still report the problems of the other fields.
					_ = looseDecode(block, v)
				}
			}
			if hooks {
				s.normalize()
			}
			p.Settings = v
		}
	}
}

// bindModels sets Path and line of each model and drops (into c.dropped)
// those OGX drops while expanding: model_id expanded to empty, or
// provider_id "__disabled__".
func bindModels(c *Config, root *yaml.Node, x *expander) {
	bind := func(list []Model, seq *yaml.Node, base string) []Model {
		if seq == nil || seq.Kind != yaml.SequenceNode || len(seq.Content) != len(list) {
			for i := range list {
				list[i].Path = indexPath(base, i)
			}
			return list
		}
		var kept []Model
		for i, item := range seq.Content {
			m := list[i]
			m.Path = indexPath(base, i)
			m.node = deref(item)
			if x.skip[deref(item)] {
				c.dropped = append(c.dropped, m)
				continue
			}
			kept = append(kept, m)
		}
		return kept
	}
	rr := bind(c.RegisteredResources.Models, lookup(lookup(root, "registered_resources"), "models"), "registered_resources.models")
	top := bind(c.Models, lookup(root, "models"), "models")
	c.RegisteredResources.Models = append(rr, top...)
	c.Models = nil
}

// resolveModels applies model defaults and drops the models whose provider
// is disabled.
func resolveModels(c *Config) {
	enabled := map[string]bool{}
	for _, p := range c.EnabledProviders("inference") {
		enabled[p.ProviderID] = true
	}
	// Ids that disabled inference providers would have if enabled: the
	// provider_id as written, with ${env.X:+id} and ${env.X:=id} read as id.
	wouldBe := map[string]bool{}
	for _, p := range c.Providers["inference"] {
		if !p.Disabled {
			continue
		}
		if id := envRef.ReplaceAllString(p.rawID, "$3"); id != "" && id != disabledID {
			wouldBe[id] = true
		}
	}
	var kept []Model
	for _, m := range c.RegisteredResources.Models {
		drop := false
		switch {
		case m.ModelID == "":
			// missing model_id: reported by validate
		case m.ProviderID == "" || m.ProviderID == disabledID:
			drop = true
		case m.ProviderID == AllProviders:
			drop = len(enabled) == 0
		case !enabled[m.ProviderID] && wouldBe[m.ProviderID]:
			drop = true
		}
		if drop {
			c.dropped = append(c.dropped, m)
			continue
		}
		if m.ModelType == "" {
			m.ModelType = ModelTypeLLM
		}
		if m.ProviderModelID == "" {
			m.ProviderModelID = m.ModelID
		}
		kept = append(kept, m)
	}
	c.RegisteredResources.Models = kept
	slices.SortStableFunc(c.dropped, func(a, b Model) int { return lineOf(a.node) - lineOf(b.node) })
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
