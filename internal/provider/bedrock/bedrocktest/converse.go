package bedrocktest

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

// Model ids the double serves through Converse besides [Options.Models]:
// the models of the recorded Converse fixtures.
const (
	ModelNovaMicro   = "us.amazon.nova-micro-v1:0"
	ModelClaudeHaiku = "us.anthropic.claude-3-5-haiku-20241022-v1:0"
)

// converseModels are served through Converse in addition to Options.Models.
var converseModels = []string{ModelNovaMicro, "amazon.nova-micro-v1:0", ModelGptOss120B, ModelGptOss20B, ModelClaudeHaiku,
	"us.anthropic.claude-sonnet-4-20250514-v1:0"}

// converseFixtures are the recorded exchanges: a request equal (as JSON)
// to name.request.json is answered with name.response.json (Converse) or
// name.eventstream (ConverseStream), byte for byte.
var converseFixtures = []string{"converse-nova-micro-text", "converse-gpt-oss-120b-reasoning"}

var converseStreamFixtures = []string{"converse-stream-nova-micro-text", "converse-stream-nova-micro-tooluse", "converse-stream-gpt-oss-120b-reasoning"}

// Converse request as the double reads it.
type (
	cvRequest struct {
		Messages        []cvMessage `json:"messages"`
		System          []cvText    `json:"system"`
		InferenceConfig *struct {
			MaxTokens *int `json:"maxTokens"`
		} `json:"inferenceConfig"`
		ToolConfig *struct {
			Tools []struct {
				ToolSpec *struct {
					Name        string `json:"name"`
					Description string `json:"description"`
					InputSchema struct {
						JSON json.RawMessage `json:"json"`
					} `json:"inputSchema"`
				} `json:"toolSpec"`
			} `json:"tools"`
			ToolChoice *struct {
				Auto *struct{} `json:"auto"`
				Any  *struct{} `json:"any"`
				Tool *struct {
					Name string `json:"name"`
				} `json:"tool"`
			} `json:"toolChoice"`
		} `json:"toolConfig"`
	}
	cvText struct {
		Text *string `json:"text"`
	}
	cvMessage struct {
		Role    string    `json:"role"`
		Content []cvBlock `json:"content"`
	}
	cvBlock struct {
		Text    *string         `json:"text"`
		Image   json.RawMessage `json:"image"`
		ToolUse *struct {
			ToolUseID string          `json:"toolUseId"`
			Name      string          `json:"name"`
			Input     json.RawMessage `json:"input"`
		} `json:"toolUse"`
		ToolResult *struct {
			ToolUseID string `json:"toolUseId"`
			Content   []struct {
				Text *string         `json:"text"`
				JSON json.RawMessage `json:"json"`
			} `json:"content"`
		} `json:"toolResult"`
		ReasoningContent json.RawMessage `json:"reasoningContent"`
	}
)

// Converse response, members in alphabetical order as Bedrock sends them.
type (
	cvResponse struct {
		Metrics    cvMetrics `json:"metrics"`
		Output     cvOutput  `json:"output"`
		StopReason string    `json:"stopReason"`
		Usage      cvUsage   `json:"usage"`
	}
	cvMetrics struct {
		LatencyMs int `json:"latencyMs"`
	}
	cvOutput struct {
		Message cvOutMessage `json:"message"`
	}
	cvOutMessage struct {
		Content []any  `json:"content"`
		Role    string `json:"role"`
	}
	cvUsage struct {
		InputTokens     int      `json:"inputTokens"`
		OutputTokens    int      `json:"outputTokens"`
		ServerToolUsage struct{} `json:"serverToolUsage"`
		TotalTokens     int      `json:"totalTokens"`
	}
)

const bedrockNS = ":http://internal.amazon.com/coral/com.amazon.bedrock/"

// serveConverse answers POST /model/{id}/converse and
// /model/{id}/converse-stream.
func (s *Server) serveConverse(w http.ResponseWriter, r *http.Request, body []byte) {
	if fx := s.authFailure(r.Header.Get("Authorization")); fx != nil {
		fx.write(w)
		return
	}
	escaped := strings.TrimPrefix(r.URL.EscapedPath(), "/model/")
	stream := strings.HasSuffix(escaped, "/converse-stream")
	escaped = strings.TrimSuffix(strings.TrimSuffix(escaped, "/converse-stream"), "/converse")
	model, err := url.PathUnescape(escaped)
	if err == nil && slices.Contains(s.opts.NoAccess, model) {
		writeAWSError(w, http.StatusForbidden, "AccessDeniedException:http://internal.amazon.com/coral/com.amazon.coral.service/#AccessDeniedException", "Message", "You don't have access to the model with the specified model ID.")
		return
	}
	if err != nil || (!slices.Contains(s.opts.Models, model) && !slices.Contains(converseModels, model)) {
		malformed(w, "The provided model identifier is invalid.")
		return
	}
	var req cvRequest
	if err := json.Unmarshal(body, &req); err != nil {
		writeAWSError(w, http.StatusBadRequest, "SerializationException:http://internal.amazon.com/coral/com.amazon.coral.service/", "Message", "Unexpected content in the request body")
		return
	}
	if msg := validateConverse(&req); msg != "" {
		malformed(w, msg)
		return
	}

	plan, faulted := s.faults(w, stream, false)
	if faulted {
		return
	}

	if !stream {
		b := s.recordedConverse(converseFixtures, body, ".response.json")
		if b == nil {
			b = mustMarshal(s.converseAnswer(model, &req))
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Requestid", newUUID())
		_, _ = w.Write(b)
		return
	}
	frames := splitFrames(s.recordedConverse(converseStreamFixtures, body, ".eventstream"))
	if frames == nil {
		frames = s.converseEvents(model, &req)
	}
	s.streamFrames(w, r, frames, plan)
}

// validateConverse returns the ValidationException message real Converse
// gives for the request's shape, or "".
func validateConverse(req *cvRequest) string {
	if len(req.Messages) == 0 {
		return "A conversation must start with a user message. Try again with a conversation that starts with a user message."
	}
	if req.Messages[0].Role != "user" {
		return "A conversation must start with a user message. Try again with a conversation that starts with a user message."
	}
	tools := false
	for i, m := range req.Messages {
		if m.Role != "user" && m.Role != "assistant" {
			return fmt.Sprintf("1 validation error detected: Value '%s' at 'messages.%d.member.role' failed to satisfy constraint: Member must satisfy enum value set: [user, assistant]", m.Role, i+1)
		}
		if i > 0 && req.Messages[i-1].Role == m.Role {
			return "A conversation must alternate between user and assistant roles. Make sure the conversation alternates between user and assistant roles and try again."
		}
		if len(m.Content) == 0 {
			return fmt.Sprintf("The content field in the Message object at messages.%d is empty. Add a ContentBlock object to the content field and try again.", i)
		}
		for j, b := range m.Content {
			if b.Text != nil && strings.TrimSpace(*b.Text) == "" {
				return fmt.Sprintf("The text field in the ContentBlock object at messages.%d.content.%d is blank. Add text to the text field, and try again.", i, j)
			}
			if b.ToolUse != nil || b.ToolResult != nil {
				tools = true
			}
		}
	}
	if tools && (req.ToolConfig == nil || len(req.ToolConfig.Tools) == 0) {
		return "The toolConfig field must be defined when using toolUse and toolResult content blocks."
	}
	return ""
}

// recordedConverse returns the recorded answer (file suffix ext) of the
// first fixture whose request equals body, or nil.
func (s *Server) recordedConverse(names []string, body []byte, ext string) []byte {
	for _, name := range names {
		req, err := os.ReadFile(filepath.Join(s.opts.FixturesDir, name+".request.json"))
		if err != nil || !sameJSON(req, body) {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(s.opts.FixturesDir, name+ext)); err == nil {
			return b
		}
	}
	return nil
}

// chatRequest restates a Converse request for the responder: system
// blocks as a system message, each toolResult as a tool message, text as
// user/assistant messages, and toolConfig as function tools.
func (req *cvRequest) chatRequest(model string) *ChatRequest {
	c := &ChatRequest{Model: model}
	var sys []string
	for _, b := range req.System {
		if b.Text != nil {
			sys = append(sys, *b.Text)
		}
	}
	if len(sys) > 0 {
		c.Messages = append(c.Messages, Message{Role: "system", Text: strings.Join(sys, "\n")})
	}
	for _, m := range req.Messages {
		var texts []string
		for _, b := range m.Content {
			switch {
			case b.Text != nil:
				texts = append(texts, *b.Text)
			case b.ToolResult != nil:
				var parts []string
				for _, rc := range b.ToolResult.Content {
					if rc.Text != nil {
						parts = append(parts, *rc.Text)
					} else if len(rc.JSON) > 0 {
						var buf bytes.Buffer
						_ = json.Compact(&buf, rc.JSON)
						parts = append(parts, buf.String())
					}
				}
				c.Messages = append(c.Messages, Message{Role: "tool", Text: strings.Join(parts, "\n"), ToolCallID: b.ToolResult.ToolUseID})
			}
		}
		if len(texts) > 0 {
			c.Messages = append(c.Messages, Message{Role: m.Role, Text: strings.Join(texts, "\n")})
		}
	}
	if req.InferenceConfig != nil {
		c.MaxTokens = req.InferenceConfig.MaxTokens
	}
	if tc := req.ToolConfig; tc != nil {
		for _, t := range tc.Tools {
			if t.ToolSpec == nil {
				continue
			}
			fn := map[string]any{"name": t.ToolSpec.Name, "parameters": t.ToolSpec.InputSchema.JSON}
			c.Tools = append(c.Tools, mustMarshal(map[string]any{"type": "function", "function": fn}))
		}
		switch ch := tc.ToolChoice; {
		case ch == nil:
		case ch.Any != nil:
			c.ToolChoice = json.RawMessage(`"required"`)
		case ch.Tool != nil:
			c.ToolChoice = mustMarshal(map[string]any{"type": "function", "function": map[string]string{"name": ch.Tool.Name}})
		}
	}
	return c
}

// converseOutcome asks the responder; gpt-oss models reason, others not.
func (s *Server) converseOutcome(model string, req *cvRequest) (o outcome, prompt int) {
	o, prompt, _ = s.produce(req.chatRequest(model))
	if !strings.Contains(model, "gpt-oss") {
		o.tokens -= len(strings.Fields(o.reasoning))
		o.reasoning = ""
	}
	return o, prompt
}

func converseStop(o *outcome) string {
	switch o.finish {
	case "tool_calls":
		return "tool_use"
	case "length":
		return "max_tokens"
	}
	return "end_turn"
}

func toolUseID() string {
	const alpha = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"
	b := make([]byte, 22)
	for i := range b {
		b[i] = alpha[rand.IntN(len(alpha))]
	}
	return "tooluse_" + string(b)
}

// converseAnswer is the Converse response for a request no fixture
// matches.
func (s *Server) converseAnswer(model string, req *cvRequest) cvResponse {
	o, prompt := s.converseOutcome(model, req)
	var content []any
	if o.reasoning != "" {
		content = append(content, map[string]any{"reasoningContent": map[string]any{"reasoningText": map[string]any{"text": o.reasoning}}})
	}
	if o.answer != "" || (o.tool == nil && o.reasoning == "") {
		content = append(content, map[string]any{"text": o.answer})
	}
	if o.tool != nil {
		if !json.Valid([]byte(o.tool.Arguments)) {
			o.tool.Arguments = "{}"
		}
		content = append(content, map[string]any{"toolUse": map[string]any{"input": json.RawMessage(o.tool.Arguments), "name": o.tool.Name, "toolUseId": toolUseID()}})
	}
	return cvResponse{
		Metrics:    cvMetrics{LatencyMs: 100 + rand.IntN(400)},
		Output:     cvOutput{Message: cvOutMessage{Content: content, Role: "assistant"}},
		StopReason: converseStop(&o),
		Usage:      cvUsage{InputTokens: prompt, OutputTokens: o.tokens, TotalTokens: prompt + o.tokens},
	}
}

// converseEvents renders the ConverseStream answer as event-stream frames,
// in the order of bedrock-wire.md §4.3.
func (s *Server) converseEvents(model string, req *cvRequest) [][]byte {
	o, prompt := s.converseOutcome(model, req)
	var frames [][]byte
	add := func(event string, payload map[string]any) {
		payload["p"] = padding()
		frames = append(frames, EncodeEvent(event, mustMarshal(payload)))
	}
	add("messageStart", map[string]any{"role": "assistant"})
	block := 0
	if o.reasoning != "" {
		for _, p := range pieces(o.reasoning, pieceWords) {
			add("contentBlockDelta", map[string]any{"contentBlockIndex": block, "delta": map[string]any{"reasoningContent": map[string]any{"text": p}}})
		}
		add("contentBlockStop", map[string]any{"contentBlockIndex": block})
		block++
	}
	if o.answer != "" || (o.tool == nil && o.reasoning == "") {
		ps := pieces(o.answer, pieceWords)
		if len(ps) == 0 {
			ps = []string{""}
		}
		for _, p := range ps {
			add("contentBlockDelta", map[string]any{"contentBlockIndex": block, "delta": map[string]any{"text": p}})
		}
		add("contentBlockStop", map[string]any{"contentBlockIndex": block})
		block++
	}
	if o.tool != nil {
		add("contentBlockStart", map[string]any{"contentBlockIndex": block, "start": map[string]any{"toolUse": map[string]any{"name": o.tool.Name, "toolUseId": toolUseID()}}})
		for _, f := range fragments(o.tool.Arguments) {
			add("contentBlockDelta", map[string]any{"contentBlockIndex": block, "delta": map[string]any{"toolUse": map[string]any{"input": f}}})
		}
		add("contentBlockStop", map[string]any{"contentBlockIndex": block})
	}
	add("messageStop", map[string]any{"stopReason": converseStop(&o)})
	add("metadata", map[string]any{"metrics": cvMetrics{LatencyMs: 100 + rand.IntN(400)},
		"usage": cvUsage{InputTokens: prompt, OutputTokens: o.tokens, TotalTokens: prompt + o.tokens}})
	return frames
}

// padding is Bedrock's "p" member: a random-length prefix of a-zA-Z0-9.
func padding() string {
	return alnum[:1+rand.IntN(len(alnum)-1)]
}

// EncodeEvent encodes one ConverseStream event message with the headers
// Bedrock sends (:event-type, :content-type application/json,
// :message-type event).
func EncodeEvent(eventType string, payload []byte) []byte {
	return encodeFrame(eventstream.Headers{
		{Name: ":event-type", Value: eventstream.StringValue(eventType)},
		{Name: ":content-type", Value: eventstream.StringValue("application/json")},
		{Name: ":message-type", Value: eventstream.StringValue("event")},
	}, payload)
}

// EncodeException encodes an in-stream exception message
// (:message-type exception, :exception-type kind, payload {"message":msg}),
// e.g. kind "throttlingException".
func EncodeException(kind, msg string) []byte {
	return encodeFrame(eventstream.Headers{
		{Name: ":exception-type", Value: eventstream.StringValue(kind)},
		{Name: ":content-type", Value: eventstream.StringValue("application/json")},
		{Name: ":message-type", Value: eventstream.StringValue("exception")},
	}, mustMarshal(map[string]string{"message": msg}))
}

func encodeFrame(h eventstream.Headers, payload []byte) []byte {
	var buf bytes.Buffer
	if err := eventstream.NewEncoder().Encode(&buf, eventstream.Message{Headers: h, Payload: payload}); err != nil {
		panic(fmt.Sprintf("bedrocktest: encode event: %v", err))
	}
	return buf.Bytes()
}

// splitFrames splits an event-stream body into its messages by their
// length prefixes (nil for nil; a malformed tail stays one piece).
func splitFrames(b []byte) [][]byte {
	if b == nil {
		return nil
	}
	var out [][]byte
	for len(b) > 0 {
		n := len(b)
		if len(b) >= 4 {
			if l := int(binary.BigEndian.Uint32(b)); l >= 16 && l <= len(b) {
				n = l
			}
		}
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

// streamFrames writes event-stream frames, each flushed, applying
// ChunkDelay, the gate and the drop/stall faults (counted in frames).
func (s *Server) streamFrames(w http.ResponseWriter, r *http.Request, frames [][]byte, plan streamPlan) {
	ctx := r.Context()
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "application/vnd.amazon.eventstream")
	h.Set("X-Amzn-Requestid", newUUID())
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		s.noteCanceled(ctx)
		return
	}
	s.play(ctx, w, rc, frames, plan)
}
