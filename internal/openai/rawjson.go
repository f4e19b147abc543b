package openai

import (
	"bytes"
	"encoding/json"
	"errors"
)

// errNotObject reports a body that is not a JSON object.
var errNotObject = errors.New("not a JSON object")

// SetTopLevelString returns obj with its top-level member key set to the
// string value, leaving every other byte as it was: member order, unknown
// fields and number formatting survive. The member is added first when
// absent. obj must be a valid JSON object (callers have decoded it once
// already); a malformed object yields an error, never a panic.
//
// It is how passthrough adapters rewrite "model" without decoding and
// re-encoding the whole body.
func SetTopLevelString(obj []byte, key, value string) ([]byte, error) {
	var buf [128]byte
	return SetTopLevel(obj, key, appendString(buf[:0], value))
}

// SetTopLevel is SetTopLevelString for any JSON value: enc must be valid
// JSON, and is written as given.
func SetTopLevel(obj []byte, key string, enc []byte) ([]byte, error) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil, errNotObject
	}
	open := i
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) {
			return nil, errNotObject
		}
		if obj[i] == '}' {
			break
		}
		ks := i
		ke, err := skipString(obj, i)
		if err != nil {
			return nil, err
		}
		match := keyEquals(obj[ks:ke], key)
		i = skipSpace(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return nil, errNotObject
		}
		vs := skipSpace(obj, i+1)
		ve, err := skipValue(obj, vs)
		if err != nil {
			return nil, err
		}
		if match {
			out := make([]byte, 0, len(obj)-(ve-vs)+len(enc))
			out = append(out, obj[:vs]...)
			out = append(out, enc...)
			return append(out, obj[ve:]...), nil
		}
		i = skipSpace(obj, ve)
		if i >= len(obj) {
			return nil, errNotObject
		}
		switch obj[i] {
		case ',':
			i++
		case '}':
			goto insert
		default:
			return nil, errNotObject
		}
	}
insert:
	// Absent: add it as the first member.
	closeIdx := skipSpace(obj, open+1)
	empty := closeIdx < len(obj) && obj[closeIdx] == '}'
	kenc, _ := json.Marshal(key)
	out := make([]byte, 0, len(obj)+len(kenc)+len(enc)+2)
	out = append(out, obj[:open+1]...)
	out = append(out, kenc...)
	out = append(out, ':')
	out = append(out, enc...)
	if !empty {
		out = append(out, ',')
	}
	return append(out, obj[open+1:]...), nil
}

// keyEquals reports whether the quoted JSON string q decodes to key.
func keyEquals(q []byte, key string) bool {
	if len(q) < 2 {
		return false
	}
	inner := q[1 : len(q)-1]
	if bytes.IndexByte(inner, '\\') < 0 {
		return string(inner) == key
	}
	var s string
	if json.Unmarshal(q, &s) != nil {
		return false
	}
	return s == key
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string starting at b[i]. It
// jumps from quote to quote (bytes.IndexByte); a quote ends the string
// unless an odd run of backslashes precedes it.
func skipString(b []byte, i int) (int, error) {
	if i >= len(b) || b[i] != '"' {
		return 0, errNotObject
	}
	for j := i + 1; ; {
		k := bytes.IndexByte(b[j:], '"')
		if k < 0 {
			return 0, errNotObject
		}
		q := j + k
		n := 0
		for p := q - 1; p > i && b[p] == '\\'; p-- {
			n++
		}
		if n%2 == 0 {
			return q + 1, nil
		}
		j = q + 1
	}
}

// skipValue returns the index just past the JSON value starting at b[i].
func skipValue(b []byte, i int) (int, error) {
	if i >= len(b) {
		return 0, errNotObject
	}
	switch b[i] {
	case '"':
		return skipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				e, err := skipString(b, i)
				if err != nil {
					return 0, err
				}
				i = e
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1, nil
				}
			}
			i++
		}
		return 0, errNotObject
	default:
		s := i
		for i < len(b) {
			switch b[i] {
			case ',', '}', ']', ' ', '\t', '\n', '\r':
				if i == s {
					return 0, errNotObject
				}
				return i, nil
			}
			i++
		}
		return 0, errNotObject
	}
}

// TopLevel returns the raw JSON of obj's top-level member key, without
// decoding the rest, and whether it is present.
func TopLevel(obj []byte, key string) (json.RawMessage, bool) {
	i := skipSpace(obj, 0)
	if i >= len(obj) || obj[i] != '{' {
		return nil, false
	}
	i++
	for {
		i = skipSpace(obj, i)
		if i >= len(obj) || obj[i] == '}' {
			return nil, false
		}
		ks := i
		ke, err := skipString(obj, i)
		if err != nil {
			return nil, false
		}
		i = skipSpace(obj, ke)
		if i >= len(obj) || obj[i] != ':' {
			return nil, false
		}
		vs := skipSpace(obj, i+1)
		ve, err := skipValue(obj, vs)
		if err != nil {
			return nil, false
		}
		if keyEquals(obj[ks:ke], key) {
			return json.RawMessage(obj[vs:ve]), true
		}
		i = skipSpace(obj, ve)
		if i >= len(obj) || obj[i] != ',' {
			return nil, false
		}
		i++
	}
}
