package config

import (
	"cmp"
	"errors"
	"math"
	"reflect"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

var nodeType = reflect.TypeFor[yaml.Node]()

// schema checks a node tree against a Go type before it is decoded, so that
// every unknown key, duplicate key and wrongly typed value is reported with
// its YAML path and line. It accepts exactly what a yaml.v3 decoder with
// KnownFields(true) accepts, except that integers must be whole numbers
// (yaml.v3 would silently truncate 1.5 to 1). yaml.Node and interface values
// accept anything; null leaves the default in place, as yaml.v3 does.
type schema struct {
	probs *problems
	seen  map[schemaKey]bool
}

type schemaKey struct {
	n *yaml.Node
	t reflect.Type
}

func newSchema(probs *problems) *schema {
	return &schema{probs: probs, seen: map[schemaKey]bool{}}
}

// check checks n (at path) against t.
func (s *schema) check(n *yaml.Node, t reflect.Type, path string) {
	n = deref(n)
	if n == nil || n.Kind == 0 {
		return
	}
	k := schemaKey{n, t}
	if s.seen[k] {
		return
	}
	s.seen[k] = true
	if t == nodeType {
		return
	}
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Interface || n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull {
		return
	}
	if sc, ok := reflect.New(t).Interface().(schemaChecker); ok {
		sc.checkSchema(s, n, path) // types with more than one form: auth.go
		return
	}
	switch t.Kind() {
	case reflect.Struct:
		s.structure(n, t, path)
	case reflect.Map:
		s.mapping(n, t, path)
	case reflect.Slice:
		if n.Kind != yaml.SequenceNode {
			s.probs.addf(n, path, "expected a list, got %s", describe(n))
			return
		}
		for i, item := range n.Content {
			s.check(item, t.Elem(), indexPath(path, i))
		}
	default:
		s.scalar(n, t, path)
	}
}

// yamlFields maps the YAML keys of struct type t to their field types, the
// way yaml.v3 names fields (tag name, else the lower-cased field name). The
// keys of a struct field tagged ",inline" are those of its own fields.
func yamlFields(t reflect.Type) (map[string]reflect.Type, []string) {
	fields := map[string]reflect.Type{}
	var names []string
	var add func(t reflect.Type)
	add = func(t reflect.Type) {
		for i := range t.NumField() {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			if f.Type.Kind() == reflect.Struct && slices.Contains(strings.Split(opts, ","), "inline") {
				add(f.Type)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			fields[name] = f.Type
			names = append(names, name)
		}
	}
	add(t)
	return fields, names
}

func (s *schema) structure(n *yaml.Node, t reflect.Type, path string) {
	fields, names := yamlFields(t)
	s.entries(n, t, path, func(key, kp string, kn, vn *yaml.Node) {
		ft, ok := fields[key]
		if !ok {
			if c := cmp.Or(closest(key, names), synonym(key, fields)); c != "" {
				s.probs.addf(kn, kp, "unknown field (did you mean %q?)", c)
			} else {
				s.probs.add(kn, kp, errors.New("unknown field"))
			}
			return
		}
		s.check(vn, ft, kp)
	})
}

// synonyms lists, for keys that name the same thing in different provider
// configs or in older versions of the format, the keys to suggest instead.
var synonyms = map[string][]string{
	"api_key":         {"api_token", "auth_credential"},
	"api_token":       {"api_key", "auth_credential"},
	"auth_credential": {"api_key", "api_token"},
	"url":             {"base_url"},
}

// synonym returns the first synonym of key that fields has, or "".
func synonym(key string, fields map[string]reflect.Type) string {
	for _, s := range synonyms[key] {
		if _, ok := fields[s]; ok {
			return s
		}
	}
	return ""
}

func (s *schema) mapping(n *yaml.Node, t reflect.Type, path string) {
	s.entries(n, t, path, func(_, kp string, _, vn *yaml.Node) { s.check(vn, t.Elem(), kp) })
}

// entries walks the key/value pairs of a mapping node, following merge
// keys into t and reporting non-mappings and duplicate keys; fn checks each
// remaining pair.
func (s *schema) entries(n *yaml.Node, t reflect.Type, path string, fn func(key, kp string, kn, vn *yaml.Node)) {
	if n.Kind != yaml.MappingNode {
		s.probs.addf(n, path, "expected a mapping, got %s", describe(n))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if isMergeKey(kn) {
			s.merge(vn, t, path)
			continue
		}
		key, ok := s.key(kn, path)
		if !ok {
			continue
		}
		kp := joinPath(path, key)
		if line, dup := seen[key]; dup {
			s.probs.addf(kn, kp, "duplicate key (first set on line %d)", line)
			continue
		}
		seen[key] = kn.Line
		fn(key, kp, kn, vn)
	}
}

// key returns the text of a mapping key, reporting keys that are not scalars.
func (s *schema) key(kn *yaml.Node, path string) (string, bool) {
	k := deref(kn)
	if k == nil || k.Kind != yaml.ScalarNode {
		s.probs.addf(kn, path, "mapping keys must be strings, got %s", describe(kn))
		return "", false
	}
	return k.Value, true
}

// merge checks the mappings merged in with "<<" against t.
func (s *schema) merge(v *yaml.Node, t reflect.Type, path string) {
	v = deref(v)
	if v == nil {
		return
	}
	switch v.Kind {
	case yaml.MappingNode:
		s.check(v, t, path)
	case yaml.SequenceNode:
		for _, item := range v.Content {
			if item = deref(item); item != nil && item.Kind == yaml.MappingNode {
				s.check(item, t, path)
			} else {
				s.probs.addf(item, path, "\"<<\" must merge mappings, got %s", describe(item))
			}
		}
	default:
		s.probs.addf(v, path, "\"<<\" must merge mappings, got %s", describe(v))
	}
}

func (s *schema) scalar(n *yaml.Node, t reflect.Type, path string) {
	var want string
	switch t.Kind() {
	case reflect.String:
		want = "a string"
	case reflect.Bool:
		want = "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		want = "an integer"
	case reflect.Float32, reflect.Float64:
		want = "a number"
	default:
		want = "a " + t.Kind().String()
	}
	if n.Kind != yaml.ScalarNode {
		s.probs.addf(n, path, "expected %s, got %s", want, describe(n))
		return
	}
	if t.Kind() == reflect.String {
		return // yaml.v3 stores the text of any scalar in a string
	}
	if err := n.Decode(reflect.New(t).Interface()); err != nil {
		s.probs.addf(n, path, "expected %s, got %s", want, describe(n))
		return
	}
	if want == "an integer" {
		var v any
		if err := n.Decode(&v); err == nil {
			if f, ok := v.(float64); ok && f != math.Trunc(f) {
				s.probs.addf(n, path, "expected %s, got %s", want, describe(n))
			}
		}
	}
}
