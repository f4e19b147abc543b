package auth

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
)

// attributesFromClaims maps claims to attributes the way OGX's
// get_attributes_from_claims does: each mapping key names a claim, first
// as a dotted path into nested objects ("realm_access.roles"), then as a
// literal key; a list claim gives its items, a string claim its
// space-separated words (so an OAuth2 scope becomes one value per scope),
// and anything else is skipped. Claims mapped to the same attribute are
// appended in the order of their names.
func attributesFromClaims(claims map[string]any, mapping map[string]string) map[string][]string {
	attrs := map[string][]string{}
	names := make([]string, 0, len(mapping))
	for name := range mapping {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v, ok := claimAt(claims, name)
		if !ok {
			continue
		}
		var values []string
		switch v := v.(type) {
		case string:
			values = strings.Fields(v)
		case []any:
			values = make([]string, 0, len(v))
			for _, item := range v {
				if s, ok := scalarString(item); ok {
					values = append(values, s)
				}
			}
		case []string:
			values = slices.Clone(v)
		default:
			continue
		}
		attr := mapping[name]
		if prev, ok := attrs[attr]; ok {
			attrs[attr] = append(prev, values...)
		} else {
			attrs[attr] = values
		}
	}
	return attrs
}

// claimAt finds a claim by dotted path, then by literal name.
func claimAt(claims map[string]any, name string) (any, bool) {
	var cur any = claims
	found := true
	for _, part := range strings.Split(name, ".") {
		m, ok := cur.(map[string]any)
		if !ok {
			found = false
			break
		}
		if cur, ok = m[part]; !ok {
			found = false
			break
		}
	}
	if found && cur != nil {
		return cur, true
	}
	if v, ok := claims[name]; ok && v != nil {
		return v, true
	}
	return nil, false
}

// scalarString formats a string or number list item.
func scalarString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case json.Number:
		return v.String(), true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	}
	return "", false
}
