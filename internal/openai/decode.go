package openai

import (
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// DecodeChatCompletion decodes data into c (which it resets first) with the
// result and the error json.Unmarshal(data, c) gives for a zero c. It is
// the same decode without reflection: a strict single-pass scanner fills
// the fields, and anything it does not handle the way encoding/json would
// (a syntax error, a value of the wrong type, a duplicate or
// case-insensitively matched key, an integer out of range) sends the
// whole body through json.Unmarshal instead, so the outcome never differs.
func DecodeChatCompletion(data []byte, c *ChatCompletion) error {
	*c = ChatCompletion{}
	d := decoder{b: data}
	ok := d.completion(c) && d.end()
	d.release()
	if ok {
		return nil
	}
	*c = ChatCompletion{}
	return json.Unmarshal(data, c)
}

// DecodeChatCompletionChunk is DecodeChatCompletion for a stream chunk.
func DecodeChatCompletionChunk(data []byte, c *ChatCompletionChunk) error {
	*c = ChatCompletionChunk{}
	d := decoder{b: data}
	ok := d.chunk(c) && d.end()
	d.release()
	if ok {
		return nil
	}
	*c = ChatCompletionChunk{}
	return json.Unmarshal(data, c)
}

// maxSkipDepth bounds the nesting the fast path skips through; deeper
// bodies take the encoding/json path, which has its own limit.
const maxSkipDepth = 256

// decoder is the fast path's scanner: every method reports false for
// anything it does not handle exactly as encoding/json would, and the
// caller then falls back to json.Unmarshal.
type decoder struct {
	b       []byte
	i       int
	scratch *[]byte // for strings with escapes; from scratchBufs
}

// scratchBufs holds the buffers strings with escapes are unescaped into
// before they are copied out as strings.
var scratchBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

// release returns the scratch buffer, if the decode took one.
func (d *decoder) release() {
	if d.scratch != nil && cap(*d.scratch) <= 64<<10 {
		scratchBufs.Put(d.scratch)
	}
	d.scratch = nil
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

// end reports whether only whitespace is left.
func (d *decoder) end() bool {
	d.ws()
	return d.i == len(d.b)
}

// peek returns the next non-space byte without consuming it; 0 at the end.
func (d *decoder) peek() byte {
	d.ws()
	if d.i < len(d.b) {
		return d.b[d.i]
	}
	return 0
}

// null consumes a null literal if one is next.
func (d *decoder) null() bool {
	if d.peek() == 'n' && len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "null" {
		d.i += 4
		return true
	}
	return false
}

// object iterates the members of an object: call it with first set before
// the first member; it returns the next key (unescaped bytes, valid until
// the next call), or done at the closing brace. The caller must consume the
// member's value before calling again.
func (d *decoder) member(first bool) (key []byte, done, ok bool) {
	d.ws()
	if first {
		if d.i >= len(d.b) || d.b[d.i] != '{' {
			return nil, false, false
		}
		d.i++
		d.ws()
		if d.i < len(d.b) && d.b[d.i] == '}' {
			d.i++
			return nil, true, true
		}
	} else {
		if d.i >= len(d.b) {
			return nil, false, false
		}
		switch d.b[d.i] {
		case '}':
			d.i++
			return nil, true, true
		case ',':
			d.i++
			d.ws()
		default:
			return nil, false, false
		}
	}
	// A key: only plain ones (no escapes) take the fast path.
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return nil, false, false
	}
	start := d.i + 1
	j := start
	for ; j < len(d.b); j++ {
		c := d.b[j]
		if c == '"' {
			break
		}
		if c == '\\' || c < 0x20 {
			return nil, false, false
		}
	}
	if j >= len(d.b) {
		return nil, false, false
	}
	key = d.b[start:j]
	d.i = j + 1
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != ':' {
		return nil, false, false
	}
	d.i++
	d.ws()
	return key, false, true
}

// unknown skips the value of a key the type does not have. encoding/json
// would match the key to a field case-insensitively, so a key that folds
// to one of names (or has non-ASCII bytes, which may fold to ASCII) is left
// to it.
func (d *decoder) unknown(key []byte, names ...string) bool {
	for _, c := range key {
		if c >= utf8.RuneSelf {
			return false
		}
	}
	for _, n := range names {
		if equalFoldASCII(key, n) {
			return false
		}
	}
	return d.skip(0)
}

func equalFoldASCII(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range b {
		x, y := b[i], s[i]
		if 'a' <= x && x <= 'z' {
			x -= 'a' - 'A'
		}
		if 'a' <= y && y <= 'z' {
			y -= 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// once marks field bit in seen and reports whether it was unseen: a
// repeated key takes the encoding/json path (which merges into what the
// first one set).
func once(seen *uint32, bit uint) bool {
	if *seen&(1<<bit) != 0 {
		return false
	}
	*seen |= 1 << bit
	return true
}

// skip consumes one JSON value, checking it as strictly as encoding/json's
// scanner does.
func (d *decoder) skip(depth int) bool {
	if depth > maxSkipDepth {
		return false
	}
	switch d.peek() {
	case '"':
		return d.skipString()
	case '{':
		d.i++
		d.ws()
		if d.i < len(d.b) && d.b[d.i] == '}' {
			d.i++
			return true
		}
		for {
			d.ws()
			if !d.skipString() {
				return false
			}
			d.ws()
			if d.i >= len(d.b) || d.b[d.i] != ':' {
				return false
			}
			d.i++
			if !d.skip(depth + 1) {
				return false
			}
			d.ws()
			if d.i >= len(d.b) {
				return false
			}
			switch d.b[d.i] {
			case ',':
				d.i++
			case '}':
				d.i++
				return true
			default:
				return false
			}
		}
	case '[':
		d.i++
		d.ws()
		if d.i < len(d.b) && d.b[d.i] == ']' {
			d.i++
			return true
		}
		for {
			if !d.skip(depth + 1) {
				return false
			}
			d.ws()
			if d.i >= len(d.b) {
				return false
			}
			switch d.b[d.i] {
			case ',':
				d.i++
			case ']':
				d.i++
				return true
			default:
				return false
			}
		}
	case 't':
		return d.word("true")
	case 'f':
		return d.word("false")
	case 'n':
		return d.word("null")
	default:
		_, ok := d.number()
		return ok
	}
}

func (d *decoder) word(w string) bool {
	if len(d.b)-d.i >= len(w) && string(d.b[d.i:d.i+len(w)]) == w {
		d.i += len(w)
		return true
	}
	return false
}

// skipString consumes a string, checking its escapes.
func (d *decoder) skipString() bool {
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return false
	}
	for j := d.i + 1; j < len(d.b); j++ {
		switch c := d.b[j]; {
		case c == '"':
			d.i = j + 1
			return true
		case c == '\\':
			j++
			if j >= len(d.b) {
				return false
			}
			switch d.b[j] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if j+4 >= len(d.b) || hex4(d.b[j+1:j+5]) < 0 {
					return false
				}
				j += 4
			default:
				return false
			}
		case c < 0x20:
			return false
		}
	}
	return false
}

// hex4 decodes four hex digits; -1 if they are not.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r*16 + rune(c)
	}
	return r
}

// number consumes a number literal (JSON's grammar) and returns it.
func (d *decoder) number() ([]byte, bool) {
	s := d.i
	i := d.i
	if i < len(d.b) && d.b[i] == '-' {
		i++
	}
	switch {
	case i < len(d.b) && d.b[i] == '0':
		i++
	case i < len(d.b) && '1' <= d.b[i] && d.b[i] <= '9':
		for i < len(d.b) && '0' <= d.b[i] && d.b[i] <= '9' {
			i++
		}
	default:
		return nil, false
	}
	if i < len(d.b) && d.b[i] == '.' {
		i++
		if i >= len(d.b) || d.b[i] < '0' || d.b[i] > '9' {
			return nil, false
		}
		for i < len(d.b) && '0' <= d.b[i] && d.b[i] <= '9' {
			i++
		}
	}
	if i < len(d.b) && (d.b[i] == 'e' || d.b[i] == 'E') {
		i++
		if i < len(d.b) && (d.b[i] == '+' || d.b[i] == '-') {
			i++
		}
		if i >= len(d.b) || d.b[i] < '0' || d.b[i] > '9' {
			return nil, false
		}
		for i < len(d.b) && '0' <= d.b[i] && d.b[i] <= '9' {
			i++
		}
	}
	d.i = i
	return d.b[s:i], true
}

// int64 decodes an integer into an int64 field; bits is the field's size
// (encoding/json reports overflow as a type error).
func (d *decoder) int64(bits int) (int64, bool) {
	d.ws()
	lit, ok := d.number()
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(string(lit), 10, bits)
	return n, err == nil
}

// str decodes a string as encoding/json does: escapes resolved, invalid
// UTF-8 and lone surrogates replaced by U+FFFD.
func (d *decoder) str() (string, bool) {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", false
	}
	start := d.i + 1
	ascii := true
	for j := start; j < len(d.b); j++ {
		c := d.b[j]
		switch {
		case c == '"':
			raw := d.b[start:j]
			if !ascii && !utf8.Valid(raw) {
				return d.strSlow(start)
			}
			d.i = j + 1
			return string(raw), true
		case c == '\\':
			return d.strSlow(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
	}
	return "", false
}

// strSlow decodes a string with escapes or invalid UTF-8 from start (just
// past the opening quote).
func (d *decoder) strSlow(start int) (string, bool) {
	if d.scratch == nil {
		d.scratch = scratchBufs.Get().(*[]byte)
	}
	out := (*d.scratch)[:0]
	defer func() { *d.scratch = out[:0] }()
	for j := start; j < len(d.b); {
		c := d.b[j]
		switch {
		case c == '"':
			d.i = j + 1
			return string(out), true
		case c < 0x20:
			return "", false
		case c == '\\':
			if j+1 >= len(d.b) {
				return "", false
			}
			switch e := d.b[j+1]; e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			case 'u':
				if j+6 > len(d.b) {
					return "", false
				}
				r := hex4(d.b[j+2 : j+6])
				if r < 0 {
					return "", false
				}
				j += 6
				if utf16.IsSurrogate(r) {
					r2 := rune(-1)
					if j+6 <= len(d.b) && d.b[j] == '\\' && d.b[j+1] == 'u' {
						r2 = hex4(d.b[j+2 : j+6])
					}
					if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
						j += 6
						out = utf8.AppendRune(out, dec)
						continue
					}
					r = utf8.RuneError
				}
				out = utf8.AppendRune(out, r)
				continue
			default:
				return "", false
			}
			j += 2
		case c < utf8.RuneSelf:
			out = append(out, c)
			j++
		default:
			r, size := utf8.DecodeRune(d.b[j:])
			if r == utf8.RuneError && size == 1 {
				out = utf8.AppendRune(out, utf8.RuneError)
			} else {
				out = append(out, d.b[j:j+size]...)
			}
			j += size
		}
	}
	return "", false
}

// strPtr decodes a *string field: null leaves it nil.
func (d *decoder) strPtr(p **string) bool {
	if d.null() {
		*p = nil
		return true
	}
	s, ok := d.str()
	if !ok {
		return false
	}
	*p = &s
	return true
}

// strField decodes a string field: null leaves it as it is.
func (d *decoder) strField(p *string) bool {
	if d.null() {
		return true
	}
	s, ok := d.str()
	*p = s
	return ok
}

// intField decodes an int field: null leaves it as it is.
func (d *decoder) intField(p *int) bool {
	if d.null() {
		return true
	}
	n, ok := d.int64(strconv.IntSize)
	*p = int(n)
	return ok
}

// int64Field decodes an int64 field: null leaves it as it is.
func (d *decoder) int64Field(p *int64) bool {
	if d.null() {
		return true
	}
	n, ok := d.int64(64)
	*p = n
	return ok
}

// raw decodes a json.RawMessage field: the value's bytes as they are (a
// null too).
func (d *decoder) raw(p *json.RawMessage) bool {
	d.ws()
	s := d.i
	if !d.skip(0) {
		return false
	}
	*p = append(json.RawMessage(nil), d.b[s:d.i]...)
	return true
}

// array iterates the elements of an array like member iterates an
// object's members: elem is called with the decoder at each element.
func (d *decoder) array(elem func() bool) (empty, ok bool) {
	d.ws()
	if d.i >= len(d.b) || d.b[d.i] != '[' {
		return false, false
	}
	d.i++
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == ']' {
		d.i++
		return true, true
	}
	for {
		if !elem() {
			return false, false
		}
		d.ws()
		if d.i >= len(d.b) {
			return false, false
		}
		switch d.b[d.i] {
		case ',':
			d.i++
		case ']':
			d.i++
			return false, true
		default:
			return false, false
		}
	}
}

var (
	completionNames = []string{"id", "object", "created", "model", "choices", "usage", "service_tier", "system_fingerprint"}
	choiceNames     = []string{"index", "message", "finish_reason", "logprobs"}
	chunkChoiceName = []string{"index", "delta", "finish_reason", "logprobs"}
	messageNames    = []string{"role", "content", "refusal", "reasoning", "reasoning_content", "tool_calls"}
	toolCallNames   = []string{"index", "id", "type", "function"}
	functionNames   = []string{"name", "arguments"}
	usageNames      = []string{"prompt_tokens", "completion_tokens", "total_tokens", "prompt_tokens_details", "completion_tokens_details"}
)

// header decodes the members ChatCompletion and ChatCompletionChunk share;
// handled reports whether key was one of them.
func (d *decoder) header(key []byte, seen *uint32, id, object, model, tier, fp *string, created *int64, usage **Usage) (handled, ok bool) {
	switch string(key) {
	case "id":
		return true, once(seen, 0) && d.strField(id)
	case "object":
		return true, once(seen, 1) && d.strField(object)
	case "created":
		return true, once(seen, 2) && d.int64Field(created)
	case "model":
		return true, once(seen, 3) && d.strField(model)
	case "usage":
		return true, once(seen, 5) && d.usage(usage)
	case "service_tier":
		return true, once(seen, 6) && d.strField(tier)
	case "system_fingerprint":
		return true, once(seen, 7) && d.strField(fp)
	}
	return false, true
}

func (d *decoder) completion(c *ChatCompletion) bool {
	var seen uint32
	for first := true; ; first = false {
		key, done, ok := d.member(first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		handled, ok := d.header(key, &seen, &c.ID, &c.Object, &c.Model, &c.ServiceTier, &c.SystemFingerprint, &c.Created, &c.Usage)
		switch {
		case handled:
		case string(key) == "choices":
			ok = once(&seen, 4) && d.choices(&c.Choices)
		default:
			ok = d.unknown(key, completionNames...)
		}
		if !ok {
			return false
		}
	}
}

func (d *decoder) chunk(c *ChatCompletionChunk) bool {
	var seen uint32
	for first := true; ; first = false {
		key, done, ok := d.member(first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		handled, ok := d.header(key, &seen, &c.ID, &c.Object, &c.Model, &c.ServiceTier, &c.SystemFingerprint, &c.Created, &c.Usage)
		switch {
		case handled:
		case string(key) == "choices":
			ok = once(&seen, 4) && d.chunkChoices(&c.Choices)
		default:
			ok = d.unknown(key, completionNames...)
		}
		if !ok {
			return false
		}
	}
}

func (d *decoder) usage(p **Usage) bool {
	if d.null() {
		*p = nil
		return true
	}
	u := new(Usage)
	*p = u
	var seen uint32
	for first := true; ; first = false {
		key, done, ok := d.member(first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		switch string(key) {
		case "prompt_tokens":
			ok = once(&seen, 0) && d.int64Field(&u.PromptTokens)
		case "completion_tokens":
			ok = once(&seen, 1) && d.int64Field(&u.CompletionTokens)
		case "total_tokens":
			ok = once(&seen, 2) && d.int64Field(&u.TotalTokens)
		case "prompt_tokens_details":
			ok = once(&seen, 3) && d.raw(&u.PromptTokensDetails)
		case "completion_tokens_details":
			ok = once(&seen, 4) && d.raw(&u.CompletionTokensDetails)
		default:
			ok = d.unknown(key, usageNames...)
		}
		if !ok {
			return false
		}
	}
}

func (d *decoder) choices(p *[]Choice) bool {
	if d.null() {
		*p = nil
		return true
	}
	out := make([]Choice, 0, 1)
	empty, ok := d.array(func() bool {
		out = append(out, Choice{})
		return d.choice(&out[len(out)-1])
	})
	if !ok {
		return false
	}
	if empty {
		out = []Choice{}
	}
	*p = out
	return true
}

func (d *decoder) choice(c *Choice) bool {
	var seen uint32
	for first := true; ; first = false {
		key, done, ok := d.member(first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		switch string(key) {
		case "index":
			ok = once(&seen, 0) && d.intField(&c.Index)
		case "message":
			ok = once(&seen, 1) && d.message(&c.Message.Role, &c.Message.Content, &c.Message.Refusal, &c.Message.Reasoning, &c.Message.ReasoningContent, &c.Message.ToolCalls)
		case "finish_reason":
			ok = once(&seen, 2) && d.strField(&c.FinishReason)
		case "logprobs":
			ok = once(&seen, 3) && d.raw(&c.Logprobs)
		default:
			ok = d.unknown(key, choiceNames...)
		}
		if !ok {
			return false
		}
	}
}

func (d *decoder) chunkChoices(p *[]ChunkChoice) bool {
	if d.null() {
		*p = nil
		return true
	}
	out := make([]ChunkChoice, 0, 1)
	empty, ok := d.array(func() bool {
		out = append(out, ChunkChoice{})
		return d.chunkChoice(&out[len(out)-1])
	})
	if !ok {
		return false
	}
	if empty {
		out = []ChunkChoice{}
	}
	*p = out
	return true
}

func (d *decoder) chunkChoice(c *ChunkChoice) bool {
	var seen uint32
	for first := true; ; first = false {
		key, done, ok := d.member(first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		switch string(key) {
		case "index":
			ok = once(&seen, 0) && d.intField(&c.Index)
		case "delta":
			ok = once(&seen, 1) && d.message(&c.Delta.Role, &c.Delta.Content, &c.Delta.Refusal, &c.Delta.Reasoning, &c.Delta.ReasoningContent, &c.Delta.ToolCalls)
		case "finish_reason":
			ok = once(&seen, 2) && d.strPtr(&c.FinishReason)
		case "logprobs":
			ok = once(&seen, 3) && d.raw(&c.Logprobs)
		default:
			ok = d.unknown(key, chunkChoiceName...)
		}
		if !ok {
			return false
		}
	}
}

// message decodes a ResponseMessage or a Delta (the same fields): null
// leaves it as it is.
func (d *decoder) message(role *string, content, refusal, reasoning, reasoningContent **string, calls *[]ToolCall) bool {
	if d.null() {
		return true
	}
	var seen uint32
	for first := true; ; first = false {
		key, done, ok := d.member(first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		switch string(key) {
		case "role":
			ok = once(&seen, 0) && d.strField(role)
		case "content":
			ok = once(&seen, 1) && d.strPtr(content)
		case "refusal":
			ok = once(&seen, 2) && d.strPtr(refusal)
		case "reasoning":
			ok = once(&seen, 3) && d.strPtr(reasoning)
		case "reasoning_content":
			ok = once(&seen, 4) && d.strPtr(reasoningContent)
		case "tool_calls":
			ok = once(&seen, 5) && d.toolCalls(calls)
		default:
			ok = d.unknown(key, messageNames...)
		}
		if !ok {
			return false
		}
	}
}

func (d *decoder) toolCalls(p *[]ToolCall) bool {
	if d.null() {
		*p = nil
		return true
	}
	var out []ToolCall
	empty, ok := d.array(func() bool {
		out = append(out, ToolCall{})
		return d.toolCall(&out[len(out)-1])
	})
	if !ok {
		return false
	}
	if empty {
		out = []ToolCall{}
	}
	*p = out
	return true
}

func (d *decoder) toolCall(t *ToolCall) bool {
	var seen uint32
	for first := true; ; first = false {
		key, done, ok := d.member(first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		switch string(key) {
		case "index":
			if !once(&seen, 0) {
				return false
			}
			if d.null() {
				t.Index = nil
				break
			}
			n, nok := d.int64(strconv.IntSize)
			v := int(n)
			t.Index, ok = &v, nok
		case "id":
			ok = once(&seen, 1) && d.strField(&t.ID)
		case "type":
			ok = once(&seen, 2) && d.strField(&t.Type)
		case "function":
			ok = once(&seen, 3) && d.function(&t.Function)
		default:
			ok = d.unknown(key, toolCallNames...)
		}
		if !ok {
			return false
		}
	}
}

func (d *decoder) function(f *FunctionCall) bool {
	if d.null() {
		return true
	}
	var seen uint32
	for first := true; ; first = false {
		key, done, ok := d.member(first)
		if !ok {
			return false
		}
		if done {
			return true
		}
		switch string(key) {
		case "name":
			ok = once(&seen, 0) && d.strField(&f.Name)
		case "arguments":
			ok = once(&seen, 1) && d.strField(&f.Arguments)
		default:
			ok = d.unknown(key, functionNames...)
		}
		if !ok {
			return false
		}
	}
}
