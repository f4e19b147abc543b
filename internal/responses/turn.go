package responses

import (
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
)

// callKind says who runs a tool call.
type callKind int

const (
	callFunction callKind = iota // the client, as a function_call item
	callMCP                      // the engine, as an mcp_call item
	callApproval                 // the client must approve first
)

// callState is one tool call of a turn as its deltas arrive.
type callState struct {
	index      int // output index, once started
	kind       callKind
	binding    mcpBinding
	upstreamID string
	name       string
	args       strings.Builder
	started    bool
}

// turn turns one model call's chunks into output items and their events:
// a reasoning item, a message item, and one item per tool call, each
// opened when its first delta arrives and closed when the next item
// starts or the call ends.
type turn struct {
	r         *Run
	reasoning int // output index of the open reasoning item, or -1
	message   int // output index of the open message item, or -1
	rtext     strings.Builder
	mtext     strings.Builder
	calls     []*callState
	byIndex   map[int]*callState
	ids       map[string]bool
	items     []int // output indices of the turn's items, in order
	finish    string
	usage     *openai.Usage

	clientCalls, mcpCalls, approvals int
}

func newTurn(r *Run) *turn {
	return &turn{r: r, reasoning: -1, message: -1, byIndex: map[int]*callState{}, ids: map[string]bool{}}
}

// chunk feeds one chunk.
func (t *turn) chunk(ch *openai.ChatCompletionChunk) error {
	if ch.Usage != nil {
		t.usage = ch.Usage
	}
	for i := range ch.Choices {
		c := &ch.Choices[i]
		if c.Index != 0 {
			continue
		}
		d := &c.Delta
		if s := reasoningOf(d); s != "" {
			if err := t.reasoningDelta(s); err != nil {
				return err
			}
		}
		for _, s := range []*string{d.Content, d.Refusal} {
			if s != nil && *s != "" {
				if err := t.textDelta(*s); err != nil {
					return err
				}
			}
		}
		for j := range d.ToolCalls {
			if err := t.toolDelta(&d.ToolCalls[j]); err != nil {
				return err
			}
		}
		if c.FinishReason != nil && *c.FinishReason != "" {
			t.finish = *c.FinishReason
		}
	}
	return nil
}

func reasoningOf(d *openai.Delta) string {
	if d.ReasoningContent != nil && *d.ReasoningContent != "" {
		return *d.ReasoningContent
	}
	if d.Reasoning != nil {
		return *d.Reasoning
	}
	return ""
}

func (t *turn) reasoningDelta(s string) error {
	if err := t.closeMessage(StatusCompleted); err != nil {
		return err
	}
	r := t.r
	if t.reasoning < 0 {
		t.reasoning = r.addItem(Item{Type: TypeReasoning, ID: newID(prefixReasoning), Summary: []Part{}, Status: StatusInProgress})
		t.items = append(t.items, t.reasoning)
		if err := r.emitItem("response.output_item.added", t.reasoning); err != nil {
			return err
		}
		if err := r.emit(Event{Type: "response.content_part.added", ItemID: r.resp.Output[t.reasoning].ID, OutputIndex: new(t.reasoning), ContentIndex: new(0),
			Part: &Part{Type: PartReasoningText}}); err != nil {
			return err
		}
	}
	t.rtext.WriteString(s)
	return r.emit(Event{Type: "response.reasoning_text.delta", ItemID: r.resp.Output[t.reasoning].ID, OutputIndex: new(t.reasoning), ContentIndex: new(0), Delta: new(s)})
}

func (t *turn) closeReasoning() error {
	if t.reasoning < 0 {
		return nil
	}
	r, idx := t.r, t.reasoning
	t.reasoning = -1
	text := t.rtext.String()
	t.rtext.Reset()
	it := &r.resp.Output[idx]
	if err := r.emit(Event{Type: "response.reasoning_text.done", ItemID: it.ID, OutputIndex: new(idx), ContentIndex: new(0), Text: new(text)}); err != nil {
		return err
	}
	part := Part{Type: PartReasoningText, Text: text}
	if err := r.emit(Event{Type: "response.content_part.done", ItemID: it.ID, OutputIndex: new(idx), ContentIndex: new(0), Part: &part}); err != nil {
		return err
	}
	it.Content, it.Status = []Part{part}, StatusCompleted
	return r.emitItem("response.output_item.done", idx)
}

func (t *turn) textDelta(s string) error {
	if err := t.closeReasoning(); err != nil {
		return err
	}
	r := t.r
	if t.message < 0 {
		if err := t.openMessage(); err != nil {
			return err
		}
	}
	t.mtext.WriteString(s)
	return r.emit(Event{Type: "response.output_text.delta", ItemID: r.resp.Output[t.message].ID, OutputIndex: new(t.message), ContentIndex: new(0), Delta: new(s), Logprobs: emptyList})
}

func (t *turn) openMessage() error {
	r := t.r
	t.message = r.addItem(Item{Type: TypeMessage, ID: newID(prefixMessage), Role: "assistant", Status: StatusInProgress, Content: []Part{}})
	t.items = append(t.items, t.message)
	if err := r.emitItem("response.output_item.added", t.message); err != nil {
		return err
	}
	return r.emit(Event{Type: "response.content_part.added", ItemID: r.resp.Output[t.message].ID, OutputIndex: new(t.message), ContentIndex: new(0),
		Part: &Part{Type: PartOutputText}})
}

func (t *turn) closeMessage(status string) error {
	if t.message < 0 {
		return nil
	}
	r, idx := t.r, t.message
	t.message = -1
	text := t.mtext.String()
	t.mtext.Reset()
	it := &r.resp.Output[idx]
	if err := r.emit(Event{Type: "response.output_text.done", ItemID: it.ID, OutputIndex: new(idx), ContentIndex: new(0), Text: new(text), Logprobs: emptyList}); err != nil {
		return err
	}
	part := Part{Type: PartOutputText, Text: text}
	if err := r.emit(Event{Type: "response.content_part.done", ItemID: it.ID, OutputIndex: new(idx), ContentIndex: new(0), Part: &part}); err != nil {
		return err
	}
	it.Content, it.Status = []Part{part}, status
	return r.emitItem("response.output_item.done", idx)
}

func (t *turn) toolDelta(tc *openai.ToolCall) error {
	if err := t.closeReasoning(); err != nil {
		return err
	}
	if err := t.closeMessage(StatusCompleted); err != nil {
		return err
	}
	key := 0
	if tc.Index != nil {
		key = *tc.Index
	}
	cs, ok := t.byIndex[key]
	if !ok {
		cs = &callState{}
		t.byIndex[key] = cs
		t.calls = append(t.calls, cs)
	}
	if cs.upstreamID == "" {
		cs.upstreamID = tc.ID
	}
	if cs.name == "" {
		cs.name = tc.Function.Name
	}
	if !cs.started && cs.name != "" {
		if err := t.start(cs); err != nil {
			return err
		}
	}
	if a := tc.Function.Arguments; a != "" {
		cs.args.WriteString(a)
		if cs.started {
			return t.argsDelta(cs, a)
		}
	}
	return nil
}

// start opens the item of a tool call once its name is known.
func (t *turn) start(cs *callState) error {
	r := t.r
	cs.started = true
	b, isMCP := r.bindings[cs.name]
	switch {
	case isMCP && b.server.needsApproval(b.tool):
		cs.kind, cs.binding = callApproval, b
		cs.index = r.addItem(Item{Type: TypeMCPApprovalRequest, ID: newID(prefixMCPApproval), ServerLabel: b.server.Label, Name: b.tool})
	case isMCP:
		cs.kind, cs.binding = callMCP, b
		cs.index = r.addItem(Item{Type: TypeMCPCall, ID: newID(prefixMCPCall), ServerLabel: b.server.Label, Name: b.tool, Status: StatusInProgress})
	default:
		cs.kind = callFunction
		cs.index = r.addItem(Item{Type: TypeFunctionCall, ID: newID(prefixFunctionCall), CallID: t.callID(cs.upstreamID), Name: cs.name, Status: StatusInProgress})
	}
	t.items = append(t.items, cs.index)
	if err := r.emitItem("response.output_item.added", cs.index); err != nil {
		return err
	}
	if cs.kind == callMCP {
		if err := r.emit(Event{Type: "response.mcp_call.in_progress", ItemID: r.resp.Output[cs.index].ID, OutputIndex: new(cs.index)}); err != nil {
			return err
		}
	}
	if cs.args.Len() > 0 {
		return t.argsDelta(cs, cs.args.String())
	}
	return nil
}

// callID gives a function call the upstream's id unless that id is empty
// or already used in this conversation, then a fresh one.
func (t *turn) callID(up string) string {
	id := up
	if id == "" || t.r.st.used[id] || t.ids[id] {
		id = newCallID()
	}
	t.ids[id] = true
	return id
}

func (t *turn) argsDelta(cs *callState, a string) error {
	r := t.r
	id := r.resp.Output[cs.index].ID
	switch cs.kind {
	case callFunction:
		return r.emit(Event{Type: "response.function_call_arguments.delta", ItemID: id, OutputIndex: new(cs.index), Delta: new(a)})
	case callMCP:
		return r.emit(Event{Type: "response.mcp_call_arguments.delta", ItemID: id, OutputIndex: new(cs.index), Delta: new(a)})
	}
	return nil
}

// end closes the turn's open items. A turn with no message and no tool
// call gets an empty message, so every answer has one.
func (t *turn) end() error {
	if t.finish == "" {
		t.finish = "stop"
	}
	status := StatusCompleted
	if t.finish == "length" {
		status = StatusIncomplete
	}
	if err := t.closeReasoning(); err != nil {
		return err
	}
	r := t.r
	hasMessage := false
	for _, idx := range t.items {
		if r.resp.Output[idx].Type == TypeMessage {
			hasMessage = true
		}
	}
	if !hasMessage && t.message < 0 && len(t.calls) == 0 {
		if err := t.openMessage(); err != nil {
			return err
		}
	}
	if err := t.closeMessage(status); err != nil {
		return err
	}
	for _, cs := range t.calls {
		if !cs.started {
			if err := t.start(cs); err != nil {
				return err
			}
		}
		it := &r.resp.Output[cs.index]
		args := cs.args.String()
		it.Arguments = args
		switch cs.kind {
		case callFunction:
			t.clientCalls++
			if err := r.emit(Event{Type: "response.function_call_arguments.done", ItemID: it.ID, OutputIndex: new(cs.index), Arguments: new(args), Name: it.Name}); err != nil {
				return err
			}
			it.Status = status
			if err := r.emitItem("response.output_item.done", cs.index); err != nil {
				return err
			}
		case callMCP:
			t.mcpCalls++
			if err := r.emit(Event{Type: "response.mcp_call_arguments.done", ItemID: it.ID, OutputIndex: new(cs.index), Arguments: new(args)}); err != nil {
				return err
			}
		case callApproval:
			t.approvals++
			if err := r.emitItem("response.output_item.done", cs.index); err != nil {
				return err
			}
		}
	}
	return nil
}
