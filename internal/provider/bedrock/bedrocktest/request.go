package bedrocktest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// acceptedFields is the gpt-oss backend's list of top-level request members
// (bedrock-wire.md §1.5); any other member is rejected as unknown_parameter.
var acceptedFields = map[string]bool{
	"messages": true, "model": true, "store": true, "reasoning_effort": true,
	"metadata": true, "frequency_penalty": true, "logit_bias": true,
	"logprobs": true, "top_logprobs": true, "max_tokens": true,
	"max_completion_tokens": true, "n": true, "modalities": true,
	"prediction": true, "audio": true, "presence_penalty": true,
	"response_format": true, "seed": true, "service_tier": true, "stop": true,
	"stream": true, "stream_options": true, "temperature": true, "top_p": true,
	"tools": true, "tool_choice": true, "parallel_tool_calls": true,
	"user": true, "function_call": true, "functions": true,
}

// ChatRequest is a chat completion request as the double read it. Decode one
// with [encoding/json] (ChatRequest implements [json.Unmarshaler]); unknown
// members are kept in Raw and not rejected by decoding (the server rejects
// them separately).
type ChatRequest struct {
	// Model is the "model" member.
	Model string
	// Messages are the "messages", in order.
	Messages []Message
	// Stream is the "stream" member.
	Stream bool
	// StreamOptions is "stream_options" (nil when absent or null);
	// IncludeUsage is its "include_usage".
	StreamOptions *struct{ IncludeUsage bool }
	// Temperature and TopP are "temperature" and "top_p" (nil when absent).
	Temperature, TopP *float64
	// MaxTokens, MaxCompletionTokens and N are "max_tokens",
	// "max_completion_tokens" and "n" (nil when absent).
	MaxTokens, MaxCompletionTokens, N *int
	// Tools are the elements of "tools", raw.
	Tools []json.RawMessage
	// ToolChoice is "tool_choice", raw (nil when absent).
	ToolChoice json.RawMessage
	// Raw holds every top-level member of the request body, raw.
	Raw map[string]json.RawMessage
}

// Message is one element of a request's "messages".
type Message struct {
	// Role is the "role" member.
	Role string
	// Content is the "content" member, raw: a string, an array of parts or null.
	Content json.RawMessage
	// Text is Content flattened to text: the string itself, or the "text" of
	// every text part joined by "\n".
	Text string
	// ToolCallID is "tool_call_id" (tool messages).
	ToolCallID string
	// ToolCalls are the elements of "tool_calls" (assistant messages), raw.
	ToolCalls []json.RawMessage
}

// UnmarshalJSON decodes a chat request body. It fails when the body is not a
// JSON object or when a member the double reads has the wrong type.
func (c *ChatRequest) UnmarshalJSON(data []byte) error {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(data, &raw); err != nil {
		return err
	}
	if raw == nil {
		return errors.New("request body must be a JSON object")
	}
	var out ChatRequest
	out.Raw = raw
	var so *struct {
		IncludeUsage *bool `json:"include_usage"`
	}
	for _, f := range []struct {
		name string
		dst  any
	}{
		{"model", &out.Model},
		{"messages", &out.Messages},
		{"stream", &out.Stream},
		{"stream_options", &so},
		{"temperature", &out.Temperature},
		{"top_p", &out.TopP},
		{"max_tokens", &out.MaxTokens},
		{"max_completion_tokens", &out.MaxCompletionTokens},
		{"n", &out.N},
		{"tools", &out.Tools},
	} {
		v, ok := raw[f.name]
		if !ok {
			continue
		}
		if err := json.Unmarshal(v, f.dst); err != nil {
			return fmt.Errorf("%s: %w", f.name, err)
		}
	}
	if so != nil {
		out.StreamOptions = &struct{ IncludeUsage bool }{so.IncludeUsage != nil && *so.IncludeUsage}
	}
	if v, ok := raw["tool_choice"]; ok && !isNull(v) {
		out.ToolChoice = v
	}
	*c = out
	return nil
}

// UnmarshalJSON decodes one message and fills Text from Content.
func (m *Message) UnmarshalJSON(data []byte) error {
	var w struct {
		Role       string            `json:"role"`
		Content    json.RawMessage   `json:"content"`
		ToolCallID string            `json:"tool_call_id"`
		ToolCalls  []json.RawMessage `json:"tool_calls"`
	}
	if err := json.Unmarshal(data, &w); err != nil {
		return err
	}
	text, err := flatten(w.Content)
	if err != nil {
		return err
	}
	*m = Message{Role: w.Role, Content: w.Content, Text: text, ToolCallID: w.ToolCallID, ToolCalls: w.ToolCalls}
	return nil
}

// contentPart is the part of an array-content element the double reads.
type contentPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

func flatten(content json.RawMessage) (string, error) {
	if len(content) == 0 || isNull(content) {
		return "", nil
	}
	var s string
	if err := json.Unmarshal(content, &s); err == nil {
		return s, nil
	}
	var parts []contentPart
	if err := json.Unmarshal(content, &parts); err != nil {
		return "", errors.New("content: must be a string, an array of content parts or null")
	}
	var texts []string
	for _, p := range parts {
		if p.Type == "text" || p.Type == "input_text" || p.Type == "output_text" {
			texts = append(texts, p.Text)
		}
	}
	return strings.Join(texts, "\n"), nil
}

// hasImage reports whether a message content holds an image_url part.
func hasImage(content json.RawMessage) bool {
	var parts []contentPart
	if json.Unmarshal(content, &parts) != nil {
		return false
	}
	for _, p := range parts {
		if p.Type == "image_url" {
			return true
		}
	}
	return false
}

func isNull(v json.RawMessage) bool {
	return bytes.Equal(bytes.TrimSpace(v), []byte("null"))
}

// topLevelKeys returns the member names of a JSON object in body order.
func topLevelKeys(body []byte) []string {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nil
	}
	var keys []string
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return keys
		}
		k, _ := t.(string)
		keys = append(keys, k)
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return keys
		}
	}
	return keys
}

// lastUser returns the text of the last user message ("" if none).
func (c *ChatRequest) lastUser() string {
	for i := len(c.Messages) - 1; i >= 0; i-- {
		if c.Messages[i].Role == "user" {
			return c.Messages[i].Text
		}
	}
	return ""
}

// toolDecl is a declared function tool.
type toolDecl struct {
	Name       string
	Parameters json.RawMessage
}

// toolDecls returns the request's function tools, in order.
func (c *ChatRequest) toolDecls() []toolDecl {
	var out []toolDecl
	for _, raw := range c.Tools {
		var t struct {
			Name       string          `json:"name"`
			Parameters json.RawMessage `json:"parameters"`
			Function   *struct {
				Name       string          `json:"name"`
				Parameters json.RawMessage `json:"parameters"`
			} `json:"function"`
		}
		if json.Unmarshal(raw, &t) != nil {
			continue
		}
		if t.Function != nil && t.Function.Name != "" {
			out = append(out, toolDecl{t.Function.Name, t.Function.Parameters})
		} else if t.Name != "" {
			out = append(out, toolDecl{t.Name, t.Parameters})
		}
	}
	return out
}
