package bedrock

// Chat through Bedrock's native Converse API (bedrock-wire.md §4.2): the
// OpenAI request is translated into package-private wire structs, POSTed to
// /model/{id}/converse, and the answer mapped back to an OpenAI completion.
// No Converse type leaves the package.

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
)

// maxConverseResponse bounds one Converse response body.
const maxConverseResponse = 32 << 20

// Converse wire types (request and response), in the member order the AWS
// SDKs use. Optional members are pointers or omitempty.
type (
	cvRequest struct {
		Messages                     []cvMessage       `json:"messages"`
		System                       []cvSystemBlock   `json:"system"`
		InferenceConfig              cvInferenceConfig `json:"inferenceConfig"`
		ToolConfig                   *cvToolConfig     `json:"toolConfig,omitempty"`
		AdditionalModelRequestFields map[string]any    `json:"additionalModelRequestFields,omitempty"`
	}
	cvSystemBlock struct {
		Text string `json:"text"`
	}
	cvInferenceConfig struct {
		MaxTokens     *int64   `json:"maxTokens,omitempty"`
		Temperature   *float64 `json:"temperature,omitempty"`
		TopP          *float64 `json:"topP,omitempty"`
		StopSequences []string `json:"stopSequences,omitempty"`
	}
	cvMessage struct {
		Role    string    `json:"role"`
		Content []cvBlock `json:"content"`
	}
	// cvBlock is the ContentBlock union; exactly one member is set.
	cvBlock struct {
		Text             *string             `json:"text,omitempty"`
		Image            *cvImage            `json:"image,omitempty"`
		ToolUse          *cvToolUse          `json:"toolUse,omitempty"`
		ToolResult       *cvToolResult       `json:"toolResult,omitempty"`
		ReasoningContent *cvReasoningContent `json:"reasoningContent,omitempty"`
	}
	cvImage struct {
		Format string        `json:"format"`
		Source cvImageSource `json:"source"`
	}
	cvImageSource struct {
		Bytes []byte `json:"bytes"` // base64 on the wire
	}
	cvToolUse struct {
		ToolUseID string          `json:"toolUseId"`
		Name      string          `json:"name"`
		Input     json.RawMessage `json:"input"`
	}
	cvToolResult struct {
		ToolUseID string                `json:"toolUseId"`
		Content   []cvToolResultContent `json:"content"`
		Status    string                `json:"status,omitempty"`
	}
	cvToolResultContent struct {
		Text *string         `json:"text,omitempty"`
		JSON json.RawMessage `json:"json,omitempty"`
	}
	cvReasoningContent struct {
		ReasoningText *struct {
			Text      string `json:"text"`
			Signature string `json:"signature,omitempty"`
		} `json:"reasoningText,omitempty"`
		RedactedContent []byte `json:"redactedContent,omitempty"`
	}
	cvToolConfig struct {
		Tools      []cvTool      `json:"tools"`
		ToolChoice *cvToolChoice `json:"toolChoice,omitempty"`
	}
	cvTool struct {
		ToolSpec cvToolSpec `json:"toolSpec"`
	}
	cvToolSpec struct {
		Name        string        `json:"name"`
		Description string        `json:"description,omitempty"`
		InputSchema cvInputSchema `json:"inputSchema"`
	}
	cvInputSchema struct {
		JSON json.RawMessage `json:"json"`
	}
	cvToolChoice struct {
		Auto *struct{}      `json:"auto,omitempty"`
		Any  *struct{}      `json:"any,omitempty"`
		Tool *cvToolChoiceN `json:"tool,omitempty"`
	}
	cvToolChoiceN struct {
		Name string `json:"name"`
	}

	cvResponse struct {
		Output struct {
			Message *cvMessage `json:"message"`
		} `json:"output"`
		StopReason string   `json:"stopReason"`
		Usage      *cvUsage `json:"usage"`
	}
	cvUsage struct {
		InputTokens  int64 `json:"inputTokens"`
		OutputTokens int64 `json:"outputTokens"`
		TotalTokens  int64 `json:"totalTokens"`
	}
)

// cvObjectSchema is the input schema of a tool declared without parameters.
var cvObjectSchema = json.RawMessage(`{"type":"object"}`)

// cvInvalid is a 400 for a request Converse cannot express; param names the
// offending field. The caller sets Provider.
func cvInvalid(param, format string, args ...any) *provider.Error {
	return &provider.Error{StatusCode: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_request",
		Param: param, Message: fmt.Sprintf(format, args...)}
}

// toConverse translates an OpenAI chat request into a Converse request. It
// is pure; a request Converse cannot express gives a 400 *provider.Error
// naming the field.
func toConverse(chat *openai.ChatCompletionRequest) (*cvRequest, error) {
	out := &cvRequest{Messages: []cvMessage{}, System: []cvSystemBlock{}}
	if chat == nil {
		return nil, cvInvalid("messages", "the request has no messages")
	}
	historyTools := []string{} // tool names used by toolUse blocks, in order
	seenTool := map[string]bool{}
	hasToolBlocks := false
	add := func(role string, blocks ...cvBlock) {
		if len(blocks) == 0 {
			return
		}
		if n := len(out.Messages); n > 0 && out.Messages[n-1].Role == role {
			out.Messages[n-1].Content = append(out.Messages[n-1].Content, blocks...)
			return
		}
		out.Messages = append(out.Messages, cvMessage{Role: role, Content: blocks})
	}
	for i, m := range chat.Messages {
		field := fmt.Sprintf("messages[%d]", i)
		switch m.Role {
		case "system", "developer":
			parts, err := cvParts(m.Content, field+".content")
			if err != nil {
				return nil, err
			}
			for j, p := range parts {
				if p.Type != "text" {
					return nil, cvInvalid(fmt.Sprintf("%s.content[%d]", field, j), "%s messages take only text, not %q parts", m.Role, p.Type)
				}
				if strings.TrimSpace(p.Text) != "" {
					out.System = append(out.System, cvSystemBlock{Text: p.Text})
				}
			}
		case "user":
			blocks, err := cvUserBlocks(m.Content, field+".content")
			if err != nil {
				return nil, err
			}
			add("user", blocks...)
		case "assistant":
			parts, err := cvParts(m.Content, field+".content")
			if err != nil {
				return nil, err
			}
			var blocks []cvBlock
			for j, p := range parts {
				switch p.Type {
				case "text", "refusal":
					if strings.TrimSpace(p.Text) != "" {
						blocks = append(blocks, cvBlock{Text: new(p.Text)})
					}
				default:
					return nil, cvInvalid(fmt.Sprintf("%s.content[%d]", field, j), "assistant messages take only text, not %q parts", p.Type)
				}
			}
			for j, tc := range m.ToolCalls {
				tf := fmt.Sprintf("%s.tool_calls[%d]", field, j)
				if tc.Function.Name == "" {
					return nil, cvInvalid(tf+".function.name", "a tool call needs a function name")
				}
				input, err := cvArguments(tc.Function.Arguments)
				if err != nil {
					return nil, cvInvalid(tf+".function.arguments", "tool call arguments must be a JSON object: %v", err)
				}
				blocks = append(blocks, cvBlock{ToolUse: &cvToolUse{ToolUseID: tc.ID, Name: tc.Function.Name, Input: input}})
				hasToolBlocks = true
				if !seenTool[tc.Function.Name] {
					seenTool[tc.Function.Name] = true
					historyTools = append(historyTools, tc.Function.Name)
				}
			}
			add("assistant", blocks...)
		case "tool":
			if m.ToolCallID == "" {
				return nil, cvInvalid(field+".tool_call_id", "a tool message needs tool_call_id")
			}
			parts, err := cvParts(m.Content, field+".content")
			if err != nil {
				return nil, err
			}
			var texts []string
			for j, p := range parts {
				if p.Type != "text" {
					return nil, cvInvalid(fmt.Sprintf("%s.content[%d]", field, j), "tool messages take only text, not %q parts", p.Type)
				}
				texts = append(texts, p.Text)
			}
			text := strings.Join(texts, "\n")
			var c cvToolResultContent
			if trimmed := bytes.TrimSpace([]byte(text)); len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed) {
				var buf bytes.Buffer
				_ = json.Compact(&buf, trimmed)
				c.JSON = buf.Bytes()
			} else {
				c.Text = new(text)
			}
			add("user", cvBlock{ToolResult: &cvToolResult{ToolUseID: m.ToolCallID, Content: []cvToolResultContent{c}, Status: "success"}})
			hasToolBlocks = true
		default:
			return nil, cvInvalid(field+".role", "unsupported message role %q", m.Role)
		}
	}
	if len(out.Messages) == 0 {
		return nil, cvInvalid("messages", "the request needs at least one user or assistant message with content")
	}

	// Inference parameters.
	ic := &out.InferenceConfig
	switch {
	case chat.MaxCompletionTokens != nil:
		ic.MaxTokens = chat.MaxCompletionTokens
	case chat.MaxTokens != nil:
		ic.MaxTokens = chat.MaxTokens
	}
	ic.Temperature, ic.TopP = chat.Temperature, chat.TopP
	stops, err := cvStops(chat.Stop)
	if err != nil {
		return nil, err
	}
	ic.StopSequences = stops
	if chat.ReasoningEffort != "" {
		out.AdditionalModelRequestFields = map[string]any{"reasoning_effort": chat.ReasoningEffort}
	}

	// Tools.
	choice, none, err := cvChoice(chat.ToolChoice)
	if err != nil {
		return nil, err
	}
	var tools []cvTool
	for i, t := range chat.Tools {
		if t.Type != "" && t.Type != "function" {
			return nil, cvInvalid(fmt.Sprintf("tools[%d].type", i), "unsupported tool type %q (only function tools)", t.Type)
		}
		if t.Function.Name == "" {
			return nil, cvInvalid(fmt.Sprintf("tools[%d].function.name", i), "a tool needs a function name")
		}
		schema := cvObjectSchema
		if p := bytes.TrimSpace(t.Function.Parameters); len(p) > 0 && !bytes.Equal(p, []byte("null")) {
			if p[0] != '{' || !json.Valid(p) {
				return nil, cvInvalid(fmt.Sprintf("tools[%d].function.parameters", i), "tool parameters must be a JSON schema object")
			}
			schema = json.RawMessage(p)
		}
		tools = append(tools, cvTool{ToolSpec: cvToolSpec{Name: t.Function.Name, Description: t.Function.Description, InputSchema: cvInputSchema{JSON: schema}}})
	}
	switch {
	case len(tools) > 0 && !none:
		out.ToolConfig = &cvToolConfig{Tools: tools, ToolChoice: choice}
	case hasToolBlocks:
		// Converse rejects toolUse/toolResult blocks without a toolConfig:
		// declare the tools the history used.
		tc := &cvToolConfig{}
		for _, name := range historyTools {
			tc.Tools = append(tc.Tools, cvTool{ToolSpec: cvToolSpec{Name: name, InputSchema: cvInputSchema{JSON: cvObjectSchema}}})
		}
		if len(tc.Tools) == 0 {
			// Only tool results, whose calls are not in the history: any
			// declared tool will do, else a placeholder.
			tc.Tools = tools
			if len(tc.Tools) == 0 {
				tc.Tools = []cvTool{{ToolSpec: cvToolSpec{Name: "tool", InputSchema: cvInputSchema{JSON: cvObjectSchema}}}}
			}
		}
		out.ToolConfig = tc
	}
	return out, nil
}

// cvPart is one element of an OpenAI message content.
type cvPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Refusal  string `json:"refusal"`
	ImageURL *struct {
		URL string `json:"url"`
	} `json:"image_url"`
}

// cvParts reads a message content: a string (one text part), an array of
// parts, or null/absent (no parts).
func cvParts(content json.RawMessage, field string) ([]cvPart, error) {
	c := bytes.TrimSpace(content)
	if len(c) == 0 || bytes.Equal(c, []byte("null")) {
		return nil, nil
	}
	if c[0] == '"' {
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return nil, cvInvalid(field, "content is not valid JSON")
		}
		return []cvPart{{Type: "text", Text: s}}, nil
	}
	var parts []cvPart
	if err := json.Unmarshal(c, &parts); err != nil {
		return nil, cvInvalid(field, "content must be a string or an array of content parts")
	}
	for i := range parts {
		if parts[i].Type == "refusal" {
			parts[i].Text = parts[i].Refusal
		}
	}
	return parts, nil
}

// cvUserBlocks translates a user message content: text and data-URL images.
func cvUserBlocks(content json.RawMessage, field string) ([]cvBlock, error) {
	parts, err := cvParts(content, field)
	if err != nil {
		return nil, err
	}
	var blocks []cvBlock
	for j, p := range parts {
		pf := fmt.Sprintf("%s[%d]", field, j)
		switch p.Type {
		case "text":
			if strings.TrimSpace(p.Text) != "" {
				blocks = append(blocks, cvBlock{Text: new(p.Text)})
			}
		case "image_url":
			if p.ImageURL == nil {
				return nil, cvInvalid(pf+".image_url", "an image_url part needs image_url.url")
			}
			img, err := cvDataImage(p.ImageURL.URL, pf+".image_url.url")
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, cvBlock{Image: img})
		default:
			return nil, cvInvalid(pf+".type", "unsupported content part type %q (text and image_url are supported)", p.Type)
		}
	}
	return blocks, nil
}

// cvDataImage decodes a data:image/…;base64,… URL; Converse takes image
// bytes only, not links.
func cvDataImage(u, field string) (*cvImage, error) {
	rest, ok := strings.CutPrefix(u, "data:")
	if !ok {
		return nil, cvInvalid(field, "Bedrock takes images only as data URLs (data:image/png;base64,...), not links")
	}
	meta, data, ok := strings.Cut(rest, ",")
	mime, isB64 := strings.CutSuffix(meta, ";base64")
	if !ok || !isB64 {
		return nil, cvInvalid(field, "the image data URL must be base64-encoded (data:image/png;base64,...)")
	}
	format := ""
	switch strings.ToLower(mime) {
	case "image/png":
		format = "png"
	case "image/jpeg", "image/jpg":
		format = "jpeg"
	case "image/gif":
		format = "gif"
	case "image/webp":
		format = "webp"
	default:
		return nil, cvInvalid(field, "unsupported image type %q (png, jpeg, gif and webp are supported)", mime)
	}
	b, err := base64.StdEncoding.DecodeString(data)
	if err != nil {
		if b, err = base64.RawStdEncoding.DecodeString(data); err != nil {
			return nil, cvInvalid(field, "the image data URL is not valid base64")
		}
	}
	return &cvImage{Format: format, Source: cvImageSource{Bytes: b}}, nil
}

// cvArguments parses tool call arguments into the object Converse wants;
// empty arguments are {}.
func cvArguments(args string) (json.RawMessage, error) {
	a := bytes.TrimSpace([]byte(args))
	if len(a) == 0 || bytes.Equal(a, []byte("null")) {
		return json.RawMessage(`{}`), nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(a, &obj); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	_ = json.Compact(&buf, a)
	return buf.Bytes(), nil
}

// cvStops reads stop: a string or an array of strings.
func cvStops(raw json.RawMessage) ([]string, error) {
	r := bytes.TrimSpace(raw)
	if len(r) == 0 || bytes.Equal(r, []byte("null")) {
		return nil, nil
	}
	var one string
	if json.Unmarshal(r, &one) == nil {
		if one == "" {
			return nil, nil
		}
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(r, &many); err != nil {
		return nil, cvInvalid("stop", "stop must be a string or an array of strings")
	}
	var out []string
	for _, s := range many {
		if s != "" {
			out = append(out, s)
		}
	}
	return out, nil
}

// cvChoice translates tool_choice; none reports "none", which drops the
// tools.
func cvChoice(raw json.RawMessage) (choice *cvToolChoice, none bool, err error) {
	r := bytes.TrimSpace(raw)
	if len(r) == 0 || bytes.Equal(r, []byte("null")) {
		return nil, false, nil
	}
	var s string
	if json.Unmarshal(r, &s) == nil {
		switch s {
		case "auto":
			return &cvToolChoice{Auto: &struct{}{}}, false, nil
		case "required":
			return &cvToolChoice{Any: &struct{}{}}, false, nil
		case "none":
			return nil, true, nil
		}
		return nil, false, cvInvalid("tool_choice", "tool_choice must be \"auto\", \"required\", \"none\" or a function, not %q", s)
	}
	var obj struct {
		Type     string `json:"type"`
		Function struct {
			Name string `json:"name"`
		} `json:"function"`
	}
	if json.Unmarshal(r, &obj) != nil || obj.Type != "function" || obj.Function.Name == "" {
		return nil, false, cvInvalid("tool_choice", `tool_choice must be "auto", "required", "none" or {"type":"function","function":{"name":...}}`)
	}
	return &cvToolChoice{Tool: &cvToolChoiceN{Name: obj.Function.Name}}, false, nil
}

// cvMarshal encodes compactly without HTML escaping.
func cvMarshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// cvFinishReason maps a Converse stopReason to an OpenAI finish_reason.
func cvFinishReason(stop string) string {
	switch stop {
	case "tool_use":
		return "tool_calls"
	case "max_tokens", "model_context_window_exceeded":
		return "length"
	case "guardrail_intervened", "content_filtered":
		return "content_filter"
	}
	return "stop"
}

// cvCompletionID returns a fresh "chatcmpl-" id.
func cvCompletionID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return "chatcmpl-" + hex.EncodeToString(b)
}

// cvUsageOf maps Converse usage.
func cvUsageOf(u *cvUsage) *openai.Usage {
	if u == nil {
		return nil
	}
	total := u.TotalTokens
	if total == 0 {
		total = u.InputTokens + u.OutputTokens
	}
	return &openai.Usage{PromptTokens: u.InputTokens, CompletionTokens: u.OutputTokens, TotalTokens: total}
}

// fromConverse maps a Converse response to an OpenAI completion.
func fromConverse(r *cvResponse, model string) *openai.ChatCompletion {
	var text, reasoning strings.Builder
	var calls []openai.ToolCall
	if r.Output.Message != nil {
		for _, b := range r.Output.Message.Content {
			switch {
			case b.Text != nil:
				text.WriteString(*b.Text)
			case b.ReasoningContent != nil && b.ReasoningContent.ReasoningText != nil:
				reasoning.WriteString(b.ReasoningContent.ReasoningText.Text)
			case b.ToolUse != nil:
				calls = append(calls, openai.ToolCall{ID: b.ToolUse.ToolUseID, Type: "function",
					Function: openai.FunctionCall{Name: b.ToolUse.Name, Arguments: cvCompactArgs(b.ToolUse.Input)}})
			}
		}
	}
	msg := openai.ResponseMessage{Role: "assistant", ToolCalls: calls}
	if text.Len() > 0 || len(calls) == 0 {
		msg.Content = new(text.String())
	}
	if reasoning.Len() > 0 {
		msg.ReasoningContent = new(reasoning.String())
	}
	return &openai.ChatCompletion{
		ID:      cvCompletionID(),
		Object:  "chat.completion",
		Created: time.Now().Unix(),
		Model:   model,
		Choices: []openai.Choice{{Index: 0, Message: msg, FinishReason: cvFinishReason(r.StopReason)}},
		Usage:   cvUsageOf(r.Usage),
	}
}

// cvCompactArgs renders a toolUse input as compact JSON arguments.
func cvCompactArgs(in json.RawMessage) string {
	if len(bytes.TrimSpace(in)) == 0 || bytes.Equal(bytes.TrimSpace(in), []byte("null")) {
		return "{}"
	}
	var buf bytes.Buffer
	if json.Compact(&buf, in) != nil {
		return string(in)
	}
	return buf.String()
}

// converse sends a chat request through Converse (POST
// {endpoint}/model/{model}/converse).
func (p *Provider) converse(ctx context.Context, req *provider.Request) (*openai.ChatCompletion, error) {
	resp, err := p.converseSend(ctx, req, "/converse", "application/json")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxConverseResponse))
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, &provider.Error{Provider: p.id, StatusCode: http.StatusBadGateway, Type: "api_error", Code: "upstream_stream_broken", Message: "Bedrock's answer was cut off", Err: err}
	}
	var out cvResponse
	if err := json.Unmarshal(b, &out); err != nil || out.Output.Message == nil {
		return nil, &provider.Error{Provider: p.id, StatusCode: http.StatusBadGateway, Type: "api_error", Code: "upstream_malformed",
			Message: "Bedrock sent a malformed Converse response", Err: err}
	}
	return fromConverse(&out, req.ClientModel), nil
}

// converseSend translates the request, POSTs it to the Converse operation
// at suffix ("/converse" or "/converse-stream") and returns a 2xx response;
// anything else becomes an error (the body closed).
func (p *Provider) converseSend(ctx context.Context, req *provider.Request, suffix, accept string) (*http.Response, error) {
	cv, err := toConverse(req.Chat)
	if err != nil {
		if pe, ok := err.(*provider.Error); ok {
			pe.Provider = p.id
		}
		return nil, err
	}
	body, err := cvMarshal(cv)
	if err != nil {
		return nil, fmt.Errorf("encode converse body: %w", err)
	}
	return p.postModel(ctx, req.Model, suffix, body, accept, req.Data)
}

// postModel POSTs body to a Bedrock Runtime model operation
// ({endpoint}/model/{id}{op}) with the provider's credentials and returns
// a 2xx response; anything else becomes a *provider.Error (body closed).
func (p *Provider) postModel(ctx context.Context, model, op string, body []byte, accept string, data provider.Data) (*http.Response, error) {
	u := p.endpoint + "/model/" + url.PathEscape(model) + op
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build %s request: %w", op, err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", accept)
	if accept != "application/json" {
		hreq.Header.Set("Accept-Encoding", "identity")
	}
	if err := p.authorize(hreq, data); err != nil {
		return nil, err
	}
	resp, err := p.hc.Do(hreq)
	if err != nil {
		if ctx.Err() != nil {
			return nil, context.Cause(ctx)
		}
		return nil, &provider.Error{Provider: p.id, StatusCode: http.StatusBadGateway, Type: "api_error", Code: "upstream_unreachable",
			Message: "Bedrock could not be reached", Err: err}
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		e := openaicompat.ParseError(resp.StatusCode, resp.Header, b)
		e.Provider = p.id
		p.translateError(e)
		return nil, e
	}
	return resp, nil
}
