package openai

import (
	"encoding/json"
	"strconv"
)

// DecodeChatCompletionRequest decodes a client's chat request into req
// (which it resets first) with the result and the error
// json.Unmarshal(data, req) gives for a zero req, the way
// DecodeChatCompletion does for completions: a strict reflection-free fast
// path, and json.Unmarshal for anything it does not handle exactly.
func DecodeChatCompletionRequest(data []byte, req *ChatCompletionRequest) error {
	*req = ChatCompletionRequest{}
	d := decoder{b: data}
	ok := d.request(req) && d.end()
	d.release()
	if ok {
		return nil
	}
	*req = ChatCompletionRequest{}
	return json.Unmarshal(data, req)
}

var (
	requestNames = []string{"model", "messages", "stream", "stream_options", "temperature", "top_p", "max_tokens",
		"max_completion_tokens", "n", "presence_penalty", "frequency_penalty", "seed", "stop", "tools", "tool_choice",
		"parallel_tool_calls", "reasoning_effort", "response_format", "user"}
	requestMessageNames = []string{"role", "content", "name", "tool_calls", "tool_call_id", "reasoning", "reasoning_content"}
	streamOptionNames   = []string{"include_usage"}
	toolNames           = []string{"type", "function"}
	functionDeclNames   = []string{"name", "description", "parameters", "strict"}
)

func (d *decoder) request(r *ChatCompletionRequest) bool {
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
		case "model":
			ok = once(&seen, 0) && d.strField(&r.Model)
		case "messages":
			ok = once(&seen, 1) && d.messages(&r.Messages)
		case "stream":
			ok = once(&seen, 2) && d.boolField(&r.Stream)
		case "stream_options":
			ok = once(&seen, 3) && d.streamOptions(&r.StreamOptions)
		case "temperature":
			ok = once(&seen, 4) && d.floatPtr(&r.Temperature)
		case "top_p":
			ok = once(&seen, 5) && d.floatPtr(&r.TopP)
		case "max_tokens":
			ok = once(&seen, 6) && d.int64Ptr(&r.MaxTokens)
		case "max_completion_tokens":
			ok = once(&seen, 7) && d.int64Ptr(&r.MaxCompletionTokens)
		case "n":
			ok = once(&seen, 8) && d.int64Ptr(&r.N)
		case "presence_penalty":
			ok = once(&seen, 9) && d.floatPtr(&r.PresencePenalty)
		case "frequency_penalty":
			ok = once(&seen, 10) && d.floatPtr(&r.FrequencyPenalty)
		case "seed":
			ok = once(&seen, 11) && d.int64Ptr(&r.Seed)
		case "stop":
			ok = once(&seen, 12) && d.raw(&r.Stop)
		case "tools":
			ok = once(&seen, 13) && d.tools(&r.Tools)
		case "tool_choice":
			ok = once(&seen, 14) && d.raw(&r.ToolChoice)
		case "parallel_tool_calls":
			ok = once(&seen, 15) && d.boolPtr(&r.ParallelToolCalls)
		case "reasoning_effort":
			ok = once(&seen, 16) && d.strField(&r.ReasoningEffort)
		case "response_format":
			ok = once(&seen, 17) && d.raw(&r.ResponseFormat)
		case "user":
			ok = once(&seen, 18) && d.strField(&r.User)
		default:
			ok = d.unknown(key, requestNames...)
		}
		if !ok {
			return false
		}
	}
}

func (d *decoder) messages(p *[]Message) bool {
	if d.null() {
		*p = nil
		return true
	}
	out := make([]Message, 0, 4)
	empty, ok := d.array(func() bool {
		out = append(out, Message{})
		return d.requestMessage(&out[len(out)-1])
	})
	if !ok {
		return false
	}
	if empty {
		out = []Message{}
	}
	*p = out
	return true
}

func (d *decoder) requestMessage(m *Message) bool {
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
			ok = once(&seen, 0) && d.strField(&m.Role)
		case "content":
			ok = once(&seen, 1) && d.raw(&m.Content)
		case "name":
			ok = once(&seen, 2) && d.strField(&m.Name)
		case "tool_calls":
			ok = once(&seen, 3) && d.toolCalls(&m.ToolCalls)
		case "tool_call_id":
			ok = once(&seen, 4) && d.strField(&m.ToolCallID)
		case "reasoning":
			ok = once(&seen, 5) && d.strPtr(&m.Reasoning)
		case "reasoning_content":
			ok = once(&seen, 6) && d.strPtr(&m.ReasoningContent)
		default:
			ok = d.unknown(key, requestMessageNames...)
		}
		if !ok {
			return false
		}
	}
}

func (d *decoder) streamOptions(p **StreamOptions) bool {
	if d.null() {
		*p = nil
		return true
	}
	o := new(StreamOptions)
	*p = o
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
		case "include_usage":
			ok = once(&seen, 0) && d.boolField(&o.IncludeUsage)
		default:
			ok = d.unknown(key, streamOptionNames...)
		}
		if !ok {
			return false
		}
	}
}

func (d *decoder) tools(p *[]Tool) bool {
	if d.null() {
		*p = nil
		return true
	}
	var out []Tool
	empty, ok := d.array(func() bool {
		out = append(out, Tool{})
		return d.tool(&out[len(out)-1])
	})
	if !ok {
		return false
	}
	if empty {
		out = []Tool{}
	}
	*p = out
	return true
}

func (d *decoder) tool(t *Tool) bool {
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
		case "type":
			ok = once(&seen, 0) && d.strField(&t.Type)
		case "function":
			ok = once(&seen, 1) && d.functionDecl(&t.Function)
		default:
			ok = d.unknown(key, toolNames...)
		}
		if !ok {
			return false
		}
	}
}

func (d *decoder) functionDecl(f *FunctionDecl) bool {
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
		case "description":
			ok = once(&seen, 1) && d.strField(&f.Description)
		case "parameters":
			ok = once(&seen, 2) && d.raw(&f.Parameters)
		case "strict":
			ok = once(&seen, 3) && d.boolPtr(&f.Strict)
		default:
			ok = d.unknown(key, functionDeclNames...)
		}
		if !ok {
			return false
		}
	}
}

// boolField decodes a bool field: null leaves it as it is.
func (d *decoder) boolField(p *bool) bool {
	if d.null() {
		return true
	}
	switch d.peek() {
	case 't':
		*p = true
		return d.word("true")
	case 'f':
		*p = false
		return d.word("false")
	}
	return false
}

// boolPtr decodes a *bool field: null leaves it nil.
func (d *decoder) boolPtr(p **bool) bool {
	if d.null() {
		*p = nil
		return true
	}
	var v bool
	if !d.boolField(&v) {
		return false
	}
	*p = &v
	return true
}

// floatPtr decodes a *float64 field as encoding/json does (strconv's
// ParseFloat of the literal; out of range is a type error): null leaves
// it nil.
func (d *decoder) floatPtr(p **float64) bool {
	if d.null() {
		*p = nil
		return true
	}
	d.ws()
	lit, ok := d.number()
	if !ok {
		return false
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if err != nil {
		return false
	}
	*p = &f
	return true
}

// int64Ptr decodes a *int64 field: null leaves it nil.
func (d *decoder) int64Ptr(p **int64) bool {
	if d.null() {
		*p = nil
		return true
	}
	n, ok := d.int64(64)
	if !ok {
		return false
	}
	*p = &n
	return true
}
