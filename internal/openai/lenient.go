package openai

import "encoding/json"

// RepairSingleQuotes rewrites single-quoted string literals outside
// double-quoted strings as JSON strings and reports whether it changed
// anything and the result is valid JSON. It exists for one reason: the
// Bedrock notebook's curl lines quote the model id as 'id' (shell quoting
// that yields `"model": 'bedrock/…'`), and those lines must work
// unchanged. Bodies that are valid JSON never reach it.
func RepairSingleQuotes(b []byte) ([]byte, bool) {
	out := make([]byte, 0, len(b)+8)
	changed := false
	const (
		outside = iota
		inDouble
		inSingle
	)
	state := outside
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch state {
		case outside:
			switch c {
			case '"':
				state = inDouble
			case '\'':
				state, changed, c = inSingle, true, '"'
			}
			out = append(out, c)
		case inDouble:
			out = append(out, c)
			switch c {
			case '\\':
				if i+1 < len(b) {
					i++
					out = append(out, b[i])
				}
			case '"':
				state = outside
			}
		case inSingle:
			switch c {
			case '\\':
				if i+1 < len(b) {
					i++
					if b[i] == '\'' {
						out = append(out, '\'')
					} else {
						out = append(out, '\\', b[i])
					}
				}
			case '"':
				out = append(out, '\\', '"')
			case '\'':
				state = outside
				out = append(out, '"')
			default:
				out = append(out, c)
			}
		}
	}
	if !changed || state != outside || !json.Valid(out) {
		return nil, false
	}
	return out, true
}
