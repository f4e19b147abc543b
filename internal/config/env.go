package config

import (
	"errors"
	"fmt"
	"math/big"
	"regexp"
	"strconv"
	"strings"
	"unicode"

	"go.yaml.in/yaml/v3"
)

// LookupEnv looks up an environment variable; os.LookupEnv fits. A variable
// that is set to the empty string is treated like an unset one, as OGX does.
type LookupEnv func(name string) (string, bool)

// noEnv is the LookupEnv used when the caller passes nil.
func noEnv(string) (string, bool) { return "", false }

// envRef matches one reference. It is the pattern of OGX's replace_env_vars
// (src/ogx/core/stack.py): upper-case names only, an optional ":=" or ":+"
// operator, and an argument that cannot contain "}" (so references do not
// nest). Text that does not match, such as ${env.lower} or ${env.X:-d}, is
// left as written.
var envRef = regexp.MustCompile(`\$\{env\.([A-Z0-9_]+)(?::([=+])([^}]*))?\}`)

// expandString replaces the references in s in one pass (substituted text is
// not scanned again):
//
//	${env.NAME}          the value; unset or empty is an error (listed in missing)
//	${env.NAME:=default} the value if set and not empty, else default
//	${env.NAME:+value}   value if NAME is set and not empty, else ""
//
// A substituted value (variable value, default or :+ value) that starts with
// "~" has it expanded the way Python's os.path.expanduser does, using HOME.
func expandString(s string, env LookupEnv) (out string, missing []string) {
	matches := envRef.FindAllStringSubmatchIndex(s, -1)
	if matches == nil {
		return s, nil
	}
	var b strings.Builder
	last := 0
	for _, m := range matches {
		b.WriteString(s[last:m[0]])
		last = m[1]
		name := s[m[2]:m[3]]
		var op, arg string
		if m[4] >= 0 {
			op, arg = s[m[4]:m[5]], s[m[6]:m[7]]
		}
		val, _ := env(name)
		switch op {
		case "=":
			switch {
			case val != "":
				b.WriteString(expandUser(val, env))
			case arg != "":
				b.WriteString(expandUser(arg, env))
			}
		case "+":
			if val != "" && arg != "" {
				b.WriteString(expandUser(arg, env))
			}
		default:
			if val == "" {
				if !contains(missing, name) {
					missing = append(missing, name)
				}
				continue
			}
			b.WriteString(expandUser(val, env))
		}
	}
	b.WriteString(s[last:])
	return b.String(), missing
}

// expandUser expands a leading "~" or "~/" with HOME, like Python's
// os.path.expanduser. When HOME is not set, and for the "~user" form, the
// value is returned unchanged (Python would consult the password database;
// this package reads nothing but the LookupEnv it is given).
func expandUser(v string, env LookupEnv) string {
	if !strings.HasPrefix(v, "~") {
		return v
	}
	i := strings.IndexByte(v[1:], '/') + 1
	if i == 0 {
		i = len(v)
	}
	if i != 1 {
		return v
	}
	home, ok := env("HOME")
	if !ok {
		return v
	}
	if r := strings.TrimRight(home, "/") + v[i:]; r != "" {
		return r
	}
	return "/"
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// YAML short tags.
const (
	tagNull  = "!!null"
	tagBool  = "!!bool"
	tagInt   = "!!int"
	tagFloat = "!!float"
	tagStr   = "!!str"
	tagMerge = "!!merge"
)

var (
	pyIntSyntax   = regexp.MustCompile(`^[+-]?[0-9](?:_?[0-9])*$`)
	pyFloatSyntax = regexp.MustCompile(`^[+-]?(?:(?:[0-9](?:_?[0-9])*(?:\.(?:[0-9](?:_?[0-9])*)?)?|\.[0-9](?:_?[0-9])*)(?:[eE][+-]?[0-9](?:_?[0-9])*)?|(?i:inf|infinity|nan))$`)
)

// pyValue converts s the way OGX's _convert_string_to_proper_type does after
// a substitution: "" is None, "true"/"false" in any case are booleans, then
// Python's int() and float() are tried, else s stays a string. It returns the
// YAML tag of the result and the value (*big.Int for integers).
func pyValue(s string) (tag string, v any) {
	if s == "" {
		return tagNull, nil
	}
	switch strings.ToLower(s) {
	case "true":
		return tagBool, true
	case "false":
		return tagBool, false
	}
	t := strings.TrimFunc(s, pyIsSpace)
	if pyIntSyntax.MatchString(t) {
		n, ok := new(big.Int).SetString(strings.ReplaceAll(strings.TrimPrefix(t, "+"), "_", ""), 10)
		if ok {
			return tagInt, n
		}
	}
	if pyFloatSyntax.MatchString(t) {
		f, err := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64)
		if err == nil || errors.Is(err, strconv.ErrRange) {
			return tagFloat, f // Python's float() overflows to inf too
		}
	}
	return tagStr, s
}

// pyIsSpace approximates Python's str.isspace, which int() and float() strip.
func pyIsSpace(r rune) bool { return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f) }

// retag sets the type of a scalar whose text an expansion changed to out.
// The node keeps out as its text. It gets the type OGX would give the value
// (pyValue) when YAML reads out under that type as the same value; otherwise
// it is a string. So "8321" becomes an integer and "" a null, while "0123"
// (an integer for Python, octal 83 for YAML) and " 42" stay strings: the
// substituted text is never rewritten, which matters for string fields such
// as API keys.
func retag(n *yaml.Node, out string) {
	n.Value = out
	tag, want := pyValue(out)
	switch tag {
	case tagNull:
		n.Tag, n.Style = tagNull, 0
		return
	case tagStr:
		n.Tag = tagStr
		return
	}
	probe := yaml.Node{Kind: yaml.ScalarNode, Tag: tag, Value: out}
	var got any
	if err := probe.Decode(&got); err != nil || !sameValue(want, got) {
		n.Tag = tagStr
		return
	}
	n.Tag, n.Style = tag, 0
}

// sameValue compares a pyValue result with what YAML decoded.
func sameValue(want, got any) bool {
	switch w := want.(type) {
	case bool:
		g, ok := got.(bool)
		return ok && g == w
	case float64:
		g, ok := got.(float64)
		return ok && g == w
	case *big.Int:
		var g big.Int
		switch v := got.(type) {
		case int:
			g.SetInt64(int64(v))
		case int64:
			g.SetInt64(v)
		case uint64:
			g.SetUint64(v)
		default:
			return false
		}
		return g.Cmp(w) == 0
	}
	return false
}

// resourceIDFields are the keys OGX checks in every list item: an item whose
// id expands to null or "" is dropped (RESOURCE_ID_FIELDS in stack.py).
var resourceIDFields = []string{"vector_store_id", "model_id", "shield_id"}

// disabledID is the provider_id OGX reads as "this provider is disabled".
const disabledID = "__disabled__"

// expander applies the substitution to a document tree in place, following
// the walk of OGX's replace_env_vars, including its special cases:
//
//   - a list item (a mapping) whose provider_id expands to "__disabled__", or
//     whose model_id/shield_id/vector_store_id expands to null or "", is
//     dropped without expanding the rest of it;
//   - server.auth.provider_config becomes null, unexpanded, when its type
//     expands to null or "".
//
// One deliberate difference: a provider under providers.<api> whose
// provider_id expands to null or "" is disabled like one whose provider_id is
// "__disabled__", and nothing else in it is expanded (OGX still expands its
// config, so an unset ${env.X} there stops OGX but not this server); it is
// also kept in the list, marked disabled, where OGX removes "__disabled__"
// entries. Dropped items of model lists are kept in the tree and recorded in
// skip, so paths keep matching the file; elsewhere dropped items are removed,
// as OGX removes them.
type expander struct {
	env   LookupEnv
	probs *problems

	seen          map[*yaml.Node]bool
	skip          map[*yaml.Node]bool   // dropped items of provider and model lists
	providerLists map[*yaml.Node]string // providers.<api> sequences → api
	modelLists    map[*yaml.Node]bool   // registered_resources.models and models
	rawIDs        map[*yaml.Node]string // provider item → provider_id as written
}

func newExpander(env LookupEnv, probs *problems, root *yaml.Node) *expander {
	x := &expander{
		env:           env,
		probs:         probs,
		seen:          map[*yaml.Node]bool{},
		skip:          map[*yaml.Node]bool{},
		providerLists: map[*yaml.Node]string{},
		modelLists:    map[*yaml.Node]bool{},
		rawIDs:        map[*yaml.Node]string{},
	}
	if provs := lookup(root, "providers"); provs != nil && provs.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(provs.Content); i += 2 {
			if seq := deref(provs.Content[i+1]); seq != nil && seq.Kind == yaml.SequenceNode {
				x.providerLists[seq] = provs.Content[i].Value
			}
		}
	}
	if seq := lookup(lookup(root, "registered_resources"), "models"); seq != nil && seq.Kind == yaml.SequenceNode {
		x.modelLists[seq] = true
	}
	if seq := lookup(root, "models"); seq != nil && seq.Kind == yaml.SequenceNode {
		x.modelLists[seq] = true
	}
	return x
}

// walk expands every string scalar under n; path is n's YAML path.
func (x *expander) walk(n *yaml.Node, path string) {
	n = deref(n)
	if n == nil || x.seen[n] {
		return
	}
	x.seen[n] = true
	switch n.Kind {
	case yaml.DocumentNode:
		for _, c := range n.Content {
			x.walk(c, path)
		}
	case yaml.ScalarNode:
		x.scalar(n, path)
	case yaml.MappingNode:
		if path == "server.auth" && x.authDisabled(n, path) {
			return
		}
		for i := 0; i+1 < len(n.Content); i += 2 {
			x.walk(n.Content[i+1], joinPath(path, keyName(n.Content[i])))
		}
	case yaml.SequenceNode:
		api, isProviders := x.providerLists[n]
		keep := isProviders || x.modelLists[n]
		kept := n.Content[:0:0]
		for i, item := range n.Content {
			ip := fmt.Sprintf("%s[%d]", path, i)
			switch {
			case isProviders:
				x.provider(item, ip, api)
			case x.dropped(item):
				x.skip[deref(item)] = true
				if !keep {
					continue
				}
			default:
				x.walk(item, ip)
			}
			kept = append(kept, item)
		}
		if len(kept) != len(n.Content) {
			n.Content = kept
		}
	}
}

// scalar expands one string scalar in place.
func (x *expander) scalar(n *yaml.Node, path string) {
	if n.ShortTag() != tagStr {
		return
	}
	out, missing := expandString(n.Value, x.env)
	for _, name := range missing {
		x.probs.add(n, path, &EnvError{Name: name})
	}
	if len(missing) > 0 || out == n.Value {
		return
	}
	retag(n, out)
}

// provider expands one providers.<api> item.
func (x *expander) provider(item *yaml.Node, path, api string) {
	m := deref(item)
	if m == nil || m.Kind != yaml.MappingNode || x.seen[m] {
		x.walk(item, path)
		return
	}
	x.seen[m] = true
	if id := lookup(m, "provider_id"); id != nil {
		if id.Kind == yaml.ScalarNode {
			x.rawIDs[m] = id.Value
		}
		x.walk(id, path+".provider_id")
		if id.Kind == yaml.ScalarNode && (id.ShortTag() == tagNull || id.ShortTag() == tagStr && (id.Value == "" || id.Value == disabledID)) {
			return // disabled: the rest is not expanded
		}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		x.walk(m.Content[i+1], joinPath(path, keyName(m.Content[i])))
	}
}

// dropped reports whether OGX would drop this list item.
func (x *expander) dropped(item *yaml.Node) bool {
	m := deref(item)
	if m == nil || m.Kind != yaml.MappingNode {
		return false
	}
	if id := lookup(m, "provider_id"); id != nil {
		if s, null, ok := x.peek(id); ok && !null && s == disabledID {
			return true
		}
	}
	for _, f := range resourceIDFields {
		if id := lookup(m, f); id != nil {
			if s, null, ok := x.peek(id); ok && (null || s == "") {
				return true
			}
		}
	}
	return false
}

// authDisabled handles server.auth: when provider_config.type expands to
// null or "", provider_config becomes null and is not expanded.
func (x *expander) authDisabled(auth *yaml.Node, path string) bool {
	pc := lookup(auth, "provider_config")
	if pc == nil || pc.Kind != yaml.MappingNode {
		return false
	}
	typ := lookup(pc, "type")
	if typ == nil || deref(typ) == nil || deref(typ).Kind != yaml.ScalarNode {
		return false
	}
	if s, null, ok := x.peek(typ); !ok || !null && s != "" {
		return false
	}
	for i := 0; i+1 < len(auth.Content); i += 2 {
		if auth.Content[i].Value == "provider_config" {
			v := auth.Content[i+1]
			auth.Content[i+1] = &yaml.Node{Kind: yaml.ScalarNode, Tag: tagNull, Line: v.Line, Column: v.Column}
			continue
		}
		x.walk(auth.Content[i+1], joinPath(path, keyName(auth.Content[i])))
	}
	return true
}

// peek evaluates n as OGX would, without changing it: the resulting string,
// whether the result is null, and ok=false when an unset variable would make
// OGX raise. Mappings and lists are never null or empty.
func (x *expander) peek(n *yaml.Node) (s string, null, ok bool) {
	n = deref(n)
	if n == nil || n.Kind != yaml.ScalarNode {
		return "", false, true
	}
	switch n.ShortTag() {
	case tagNull:
		return "", true, true
	case tagStr:
	default:
		return n.Value, false, true
	}
	out, missing := expandString(n.Value, x.env)
	if len(missing) > 0 {
		return "", false, false
	}
	if out != n.Value {
		if tag, _ := pyValue(out); tag == tagNull {
			return "", true, true
		}
	}
	return out, false, true
}

// pyInt parses s like Python's int(s).
func pyInt(s string) (int64, bool) {
	t := strings.TrimFunc(s, pyIsSpace)
	if !pyIntSyntax.MatchString(t) {
		return 0, false
	}
	n, err := strconv.ParseInt(strings.ReplaceAll(strings.TrimPrefix(t, "+"), "_", ""), 10, 64)
	return n, err == nil
}

// pyFloat parses s like Python's float(s).
func pyFloat(s string) (float64, bool) {
	t := strings.TrimFunc(s, pyIsSpace)
	if !pyFloatSyntax.MatchString(t) {
		return 0, false
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(t, "_", ""), 64)
	return f, err == nil || errors.Is(err, strconv.ErrRange)
}
