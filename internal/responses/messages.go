package responses

import (
	"bytes"
	"encoding/json"
	"strconv"
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
)

// deniedOutput is the tool result the model sees for a call the client
// did not approve.
const deniedOutput = "The user denied this tool call."

// stitcher turns items into chat messages. Consecutive assistant-side
// items (reasoning, assistant text, function and MCP calls) become one
// assistant message; the results of MCP calls follow it.
//
// Call ids are made unique on the way: Bedrock models reuse ids such as
// "call_0" in every turn, and a history holding two calls with one id is
// rejected upstream, so a call whose id was already used gets a fresh one,
// and the outputs that follow it are sent with that one.
type stitcher struct {
	msgs      []openai.Message
	pending   *openai.Message
	deferred  []openai.Message // tool results of MCP calls in pending
	reasoning strings.Builder
	callMap   map[string]string // client call_id → upstream id, latest call
	used      map[string]bool   // upstream ids in use
	approvals map[string]Item   // mcp_approval_request items by id
	// names maps server label + "\x00" + tool name to the chat name of an
	// MCP tool, for calls in the history.
	names map[string]string
}

func newStitcher() *stitcher {
	return &stitcher{callMap: map[string]string{}, used: map[string]bool{}, approvals: map[string]Item{}, names: map[string]string{}}
}

// add appends items.
func (s *stitcher) add(items ...Item) {
	for i := range items {
		s.addOne(&items[i])
	}
}

func (s *stitcher) addOne(it *Item) {
	switch it.Type {
	case TypeMessage:
		if it.Role == "assistant" {
			text := partsText(it.Content, true)
			if s.pending != nil && (len(s.pending.Content) > 0 || len(s.pending.ToolCalls) > 0) {
				s.flush()
			}
			m := s.open()
			if text != "" {
				m.Content = jsonString(text)
			}
			return
		}
		s.flush()
		s.msgs = append(s.msgs, openai.Message{Role: it.Role, Content: userContent(it.Role, it.Content)})
	case TypeReasoning:
		if s.pending != nil && (len(s.pending.Content) > 0 || len(s.pending.ToolCalls) > 0) {
			s.flush()
		}
		text := partsText(it.Content, false)
		if text == "" {
			text = partsText(it.Summary, false)
		}
		s.reasoning.WriteString(text)
	case TypeFunctionCall:
		id := s.useID(it.CallID)
		s.callMap[it.CallID] = id
		m := s.open()
		m.ToolCalls = append(m.ToolCalls, openai.ToolCall{ID: id, Type: "function", Function: openai.FunctionCall{Name: it.Name, Arguments: it.Arguments}})
	case TypeFunctionCallOutput:
		s.flush()
		id, ok := s.callMap[it.CallID]
		if !ok {
			id = it.CallID
		}
		s.msgs = append(s.msgs, openai.Message{Role: "tool", ToolCallID: id, Content: jsonString(outputText(it.Output))})
	case TypeMCPCall:
		id := s.useID(it.ID)
		m := s.open()
		m.ToolCalls = append(m.ToolCalls, openai.ToolCall{ID: id, Type: "function", Function: openai.FunctionCall{Name: s.chatName(it.ServerLabel, it.Name), Arguments: orEmptyObject(it.Arguments)}})
		result := ""
		switch {
		case it.Error != nil:
			result = "Error: " + *it.Error
		case len(it.Output) > 0:
			result = outputText(it.Output)
		}
		s.deferred = append(s.deferred, openai.Message{Role: "tool", ToolCallID: id, Content: jsonString(result)})
	case TypeMCPApprovalRequest:
		s.approvals[it.ID] = *it
	case TypeMCPApprovalResponse:
		if it.Approve != nil && *it.Approve {
			return // the mcp_call item that follows carries the call
		}
		req, ok := s.approvals[derefStr(it.ApprovalRequestID)]
		if !ok {
			return
		}
		id := s.useID(req.ID)
		m := s.open()
		m.ToolCalls = append(m.ToolCalls, openai.ToolCall{ID: id, Type: "function", Function: openai.FunctionCall{Name: s.chatName(req.ServerLabel, req.Name), Arguments: orEmptyObject(req.Arguments)}})
		s.deferred = append(s.deferred, openai.Message{Role: "tool", ToolCallID: id, Content: jsonString(deniedOutput)})
	case TypeMCPListTools:
		// Nothing for the model: the tools themselves are declared.
	}
}

// chatName is the chat name of an MCP tool in the history.
func (s *stitcher) chatName(label, tool string) string {
	if n, ok := s.names[label+"\x00"+tool]; ok {
		return n
	}
	return unsafeName.ReplaceAllString(tool, "_")
}

// useID returns id, or a fresh variant of it when it is already in use,
// and marks the result used.
func (s *stitcher) useID(id string) string {
	if id == "" || s.used[id] {
		base := id
		if base == "" || len(base) > 40 {
			base = "call"
		}
		for i := 2; ; i++ {
			cand := base + "_" + strconv.Itoa(i)
			if !s.used[cand] {
				id = cand
				break
			}
		}
	}
	s.used[id] = true
	return id
}

// open returns the pending assistant message, starting one if needed.
func (s *stitcher) open() *openai.Message {
	if s.pending == nil {
		s.pending = &openai.Message{Role: "assistant"}
		if s.reasoning.Len() > 0 {
			s.pending.ReasoningContent = new(s.reasoning.String())
			s.reasoning.Reset()
		}
	}
	return s.pending
}

// flush ends the pending assistant message. Reasoning with no assistant
// output after it has nothing to attach to and is dropped.
func (s *stitcher) flush() {
	// An assistant turn with neither text nor calls (an empty answer) is
	// left out: upstreams reject empty assistant messages.
	if s.pending != nil && (len(s.pending.Content) > 0 || len(s.pending.ToolCalls) > 0) {
		s.msgs = append(s.msgs, *s.pending)
		s.msgs = append(s.msgs, s.deferred...)
	}
	s.pending, s.deferred = nil, nil
	s.reasoning.Reset()
}

// messages returns the messages so far, the pending one included.
func (s *stitcher) messages() []openai.Message {
	s.flush()
	return s.msgs
}

// userContent is a user, system or developer message's chat content: a
// string when it is text only, else an array of parts.
func userContent(role string, ps []Part) json.RawMessage {
	textOnly := true
	for _, p := range ps {
		if p.Type == PartInputImage {
			textOnly = false
		}
	}
	if textOnly {
		return jsonString(partsText(ps, false))
	}
	out := make([]openai.ContentPart, 0, len(ps))
	for _, p := range ps {
		if p.Type == PartInputImage {
			out = append(out, openai.ContentPart{Type: "image_url", ImageURL: &openai.ImageURL{URL: derefStr(p.ImageURL), Detail: imageDetail(p.Detail)}})
			continue
		}
		out = append(out, openai.ContentPart{Type: "text", Text: p.Text})
	}
	b, _ := json.Marshal(out)
	return b
}

func imageDetail(d string) string {
	switch d {
	case "low", "high":
		return d
	}
	return ""
}

// partsText joins the text of parts; refusals count when withRefusal.
func partsText(ps []Part, withRefusal bool) string {
	var b strings.Builder
	for _, p := range ps {
		switch p.Type {
		case PartRefusal:
			if withRefusal {
				b.WriteString(p.Refusal)
			}
		case PartInputImage:
		default:
			b.WriteString(p.Text)
		}
	}
	return b.String()
}

// outputText flattens a function_call_output or mcp_call output to text.
func outputText(raw json.RawMessage) string {
	c := bytes.TrimSpace(raw)
	if len(c) == 0 || string(c) == "null" {
		return ""
	}
	var s string
	if json.Unmarshal(c, &s) == nil {
		return s
	}
	var ps []Part
	if json.Unmarshal(c, &ps) == nil {
		var texts []string
		for _, p := range ps {
			switch p.Type {
			case PartInputImage:
				texts = append(texts, "[image: "+derefStr(p.ImageURL)+"]")
			default:
				texts = append(texts, p.Text)
			}
		}
		return strings.Join(texts, "\n")
	}
	return string(c)
}

func jsonString(s string) json.RawMessage {
	b, _ := json.Marshal(s)
	return b
}

func orEmptyObject(args string) string {
	if strings.TrimSpace(args) == "" {
		return "{}"
	}
	return args
}

func derefStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
