package config

import (
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"
)

// deref follows alias nodes and unwraps a document node.
func deref(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && i < 100; i++ {
		switch {
		case n.Kind == yaml.AliasNode:
			n = n.Alias
		case n.Kind == yaml.DocumentNode && len(n.Content) == 1:
			n = n.Content[0]
		default:
			return n
		}
	}
	return n
}

// isMergeKey reports whether k is the YAML merge key "<<".
func isMergeKey(k *yaml.Node) bool {
	return k.Kind == yaml.ScalarNode && k.Value == "<<" && (k.Tag == "" || k.Tag == "!" || k.ShortTag() == tagMerge)
}

// lookup returns the value of key in mapping m (following aliases and merge
// keys, explicit keys first), or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	return lookupDepth(m, key, 0)
}

func lookupDepth(m *yaml.Node, key string, depth int) *yaml.Node {
	m = deref(m)
	if m == nil || m.Kind != yaml.MappingNode || depth > 10 {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if k := m.Content[i]; k.Kind == yaml.ScalarNode && k.Value == key && !isMergeKey(k) {
			return deref(m.Content[i+1])
		}
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if !isMergeKey(m.Content[i]) {
			continue
		}
		v := deref(m.Content[i+1])
		if v == nil {
			continue
		}
		sources := []*yaml.Node{v}
		if v.Kind == yaml.SequenceNode {
			sources = v.Content
		}
		for _, src := range sources {
			if r := lookupDepth(src, key, depth+1); r != nil {
				return r
			}
		}
	}
	return nil
}

// keyName is the text of a mapping key, for paths.
func keyName(k *yaml.Node) string {
	k = deref(k)
	if k == nil {
		return "?"
	}
	if k.Kind == yaml.ScalarNode {
		return k.Value
	}
	return "?"
}

// joinPath appends a mapping key to a YAML path.
func joinPath(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// indexPath appends a list index to a YAML path.
func indexPath(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}

// describe says what a node is, for "expected X, got Y" messages.
func describe(n *yaml.Node) string {
	n = deref(n)
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.ShortTag() == tagNull:
		return "null"
	}
	v := n.Value
	if r := []rune(v); len(r) > 40 {
		v = string(r[:37]) + "..."
	}
	return fmt.Sprintf("%q", v)
}

// copyResolved deep-copies n with aliases replaced by copies of their
// targets and anchors removed, so the copy can be encoded on its own. budget
// bounds the number of nodes copied (alias expansion can be exponential); a
// node that contains an alias to itself is an error.
func copyResolved(n *yaml.Node, budget *int) (*yaml.Node, error) {
	return copyNode(n, budget, map[*yaml.Node]bool{})
}

func copyNode(n *yaml.Node, budget *int, active map[*yaml.Node]bool) (*yaml.Node, error) {
	n = deref(n)
	if n == nil {
		return &yaml.Node{Kind: yaml.ScalarNode, Tag: tagNull}, nil
	}
	if active[n] {
		return nil, fmt.Errorf("line %d: an alias refers to a node that contains it", n.Line)
	}
	*budget--
	if *budget < 0 {
		return nil, fmt.Errorf("too many nodes after expanding aliases")
	}
	c := *n
	c.Anchor = ""
	c.Alias = nil
	if len(n.Content) > 0 {
		active[n] = true
		defer delete(active, n)
		c.Content = make([]*yaml.Node, len(n.Content))
		for i, ch := range n.Content {
			cc, err := copyNode(ch, budget, active)
			if err != nil {
				return nil, err
			}
			c.Content[i] = cc
		}
	}
	return &c, nil
}

// closest returns the candidate nearest to s (after ignoring case, "_" and
// "-"), when it is near enough to be a likely typo, or "".
func closest(s string, candidates []string) string {
	norm := func(x string) string {
		return strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(x))
	}
	ns := norm(s)
	best, bestD := "", 3
	for _, c := range candidates {
		nc := norm(c)
		if nc == ns {
			return c
		}
		if d := editDistance(ns, nc, bestD); d < bestD {
			best, bestD = c, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance of a and b, or max when it is at
// least max.
func editDistance(a, b string, max int) int {
	ra, rb := []rune(a), []rune(b)
	if d := len(ra) - len(rb); d >= max || -d >= max {
		return max
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return min(prev[len(rb)], max)
}
