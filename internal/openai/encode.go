package openai

import (
	"bytes"
	"encoding/json"
	"strconv"
	"sync"
	"unicode/utf8"
)

// The encoders below write exactly the bytes json.Marshal writes for
// ChatCompletion and ChatCompletionChunk (field order, omitempty, HTML-safe
// string escaping, raw members compacted), without reflection. They are
// what Body uses when an adapter changed a typed field; a raw member they
// cannot copy as it is (one that needs compacting or escaping, or is not
// valid JSON) sends the value through json.Marshal instead, so the output
// and the errors never differ.

// marshalCompletion returns c's JSON as json.Marshal(c) would.
func marshalCompletion(c *ChatCompletion) ([]byte, error) {
	bp := encodeBufs.Get().(*[]byte)
	defer putEncodeBuf(bp)
	out, ok := appendCompletion((*bp)[:0], c)
	*bp = out
	if !ok {
		return json.Marshal(c)
	}
	return bytes.Clone(out), nil
}

// marshalChunk returns c's JSON as json.Marshal(c) would.
func marshalChunk(c *ChatCompletionChunk) ([]byte, error) {
	bp := encodeBufs.Get().(*[]byte)
	defer putEncodeBuf(bp)
	out, ok := appendChunk((*bp)[:0], c)
	*bp = out
	if !ok {
		return json.Marshal(c)
	}
	return bytes.Clone(out), nil
}

// encodeBufs holds scratch buffers for the encoders; the result is copied
// out at its exact size, so one allocation remains per encode.
var encodeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// putEncodeBuf returns a buffer to the pool unless it grew large.
func putEncodeBuf(bp *[]byte) {
	if cap(*bp) <= 64<<10 {
		encodeBufs.Put(bp)
	}
}

func appendHeader(b []byte, id, object string, created int64, model string) []byte {
	b = append(b, `{"id":`...)
	b = appendString(b, id)
	b = append(b, `,"object":`...)
	b = appendString(b, object)
	b = append(b, `,"created":`...)
	b = strconv.AppendInt(b, created, 10)
	b = append(b, `,"model":`...)
	b = appendString(b, model)
	return append(b, `,"choices":`...)
}

func appendTrailer(b []byte, u *Usage, tier, fp string) ([]byte, bool) {
	ok := true
	if u != nil {
		b = append(b, `,"usage":`...)
		if b, ok = appendUsage(b, u); !ok {
			return b, false
		}
	}
	if tier != "" {
		b = append(b, `,"service_tier":`...)
		b = appendString(b, tier)
	}
	if fp != "" {
		b = append(b, `,"system_fingerprint":`...)
		b = appendString(b, fp)
	}
	return append(b, '}'), true
}

func appendCompletion(b []byte, c *ChatCompletion) ([]byte, bool) {
	b = appendHeader(b, c.ID, c.Object, c.Created, c.Model)
	if c.Choices == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range c.Choices {
			if i > 0 {
				b = append(b, ',')
			}
			ch := &c.Choices[i]
			b = append(b, `{"index":`...)
			b = strconv.AppendInt(b, int64(ch.Index), 10)
			b = append(b, `,"message":{"role":`...)
			m := &ch.Message
			b = appendString(b, m.Role)
			b = append(b, `,"content":`...)
			if m.Content == nil {
				b = append(b, "null"...)
			} else {
				b = appendString(b, *m.Content)
			}
			b = appendOptString(b, `,"refusal":`, m.Refusal)
			b = appendOptString(b, `,"reasoning":`, m.Reasoning)
			b = appendOptString(b, `,"reasoning_content":`, m.ReasoningContent)
			b = appendToolCalls(b, m.ToolCalls)
			b = append(b, `},"finish_reason":`...)
			b = appendString(b, ch.FinishReason)
			var ok bool
			if b, ok = appendOptRaw(b, `,"logprobs":`, ch.Logprobs); !ok {
				return b, false
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return appendTrailer(b, c.Usage, c.ServiceTier, c.SystemFingerprint)
}

func appendChunk(b []byte, c *ChatCompletionChunk) ([]byte, bool) {
	b = appendHeader(b, c.ID, c.Object, c.Created, c.Model)
	if c.Choices == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i := range c.Choices {
			if i > 0 {
				b = append(b, ',')
			}
			ch := &c.Choices[i]
			b = append(b, `{"index":`...)
			b = strconv.AppendInt(b, int64(ch.Index), 10)
			b = append(b, `,"delta":{`...)
			d := &ch.Delta
			// The delta's members are all omitempty: the first one written
			// has no comma.
			mark := len(b)
			if d.Role != "" {
				b = append(b, `,"role":`...)
				b = appendString(b, d.Role)
			}
			b = appendOptString(b, `,"content":`, d.Content)
			b = appendOptString(b, `,"refusal":`, d.Refusal)
			b = appendOptString(b, `,"reasoning":`, d.Reasoning)
			b = appendOptString(b, `,"reasoning_content":`, d.ReasoningContent)
			b = appendToolCalls(b, d.ToolCalls)
			if len(b) > mark {
				b = append(b[:mark], b[mark+1:]...)
			}
			b = append(b, `},"finish_reason":`...)
			if ch.FinishReason == nil {
				b = append(b, "null"...)
			} else {
				b = appendString(b, *ch.FinishReason)
			}
			var ok bool
			if b, ok = appendOptRaw(b, `,"logprobs":`, ch.Logprobs); !ok {
				return b, false
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return appendTrailer(b, c.Usage, c.ServiceTier, c.SystemFingerprint)
}

// appendToolCalls writes an omitempty tool_calls member.
func appendToolCalls(b []byte, calls []ToolCall) []byte {
	if len(calls) == 0 {
		return b
	}
	b = append(b, `,"tool_calls":[`...)
	for i := range calls {
		if i > 0 {
			b = append(b, ',')
		}
		t := &calls[i]
		b = append(b, '{')
		mark := len(b)
		if t.Index != nil {
			b = append(b, `,"index":`...)
			b = strconv.AppendInt(b, int64(*t.Index), 10)
		}
		if t.ID != "" {
			b = append(b, `,"id":`...)
			b = appendString(b, t.ID)
		}
		if t.Type != "" {
			b = append(b, `,"type":`...)
			b = appendString(b, t.Type)
		}
		b = append(b, `,"function":{`...)
		b = append(b[:mark], b[mark+1:]...) // function is always there: drop the leading comma
		if t.Function.Name != "" {
			b = append(b, `"name":`...)
			b = appendString(b, t.Function.Name)
			b = append(b, ',')
		}
		b = append(b, `"arguments":`...)
		b = appendString(b, t.Function.Arguments)
		b = append(b, "}}"...)
	}
	return append(b, ']')
}

func appendUsage(b []byte, u *Usage) ([]byte, bool) {
	b = append(b, `{"prompt_tokens":`...)
	b = strconv.AppendInt(b, u.PromptTokens, 10)
	b = append(b, `,"completion_tokens":`...)
	b = strconv.AppendInt(b, u.CompletionTokens, 10)
	b = append(b, `,"total_tokens":`...)
	b = strconv.AppendInt(b, u.TotalTokens, 10)
	var ok bool
	if b, ok = appendOptRaw(b, `,"prompt_tokens_details":`, u.PromptTokensDetails); !ok {
		return b, false
	}
	if b, ok = appendOptRaw(b, `,"completion_tokens_details":`, u.CompletionTokensDetails); !ok {
		return b, false
	}
	return append(b, '}'), true
}

// appendOptString writes an omitempty *string member.
func appendOptString(b []byte, key string, s *string) []byte {
	if s == nil {
		return b
	}
	return appendString(append(b, key...), *s)
}

// appendOptRaw writes an omitempty json.RawMessage member. It reports false
// for a value json.Marshal would change (compact or escape) or reject.
func appendOptRaw(b []byte, key string, raw json.RawMessage) ([]byte, bool) {
	if len(raw) == 0 {
		return b, true
	}
	if string(raw) != "null" && (bytes.ContainsAny(raw, " \t\r\n<>&\xe2") || !json.Valid(raw)) {
		return b, false
	}
	return append(append(b, key...), raw...), true
}

// appendString writes s as a JSON string exactly as json.Marshal does:
// HTML-sensitive characters and U+2028/U+2029 escaped, invalid UTF-8
// replaced by U+FFFD.
func appendString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '\\', '"':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hex[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
