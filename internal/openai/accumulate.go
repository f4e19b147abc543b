package openai

import (
	"sort"
	"strings"
)

// ChunkAccumulator assembles a streamed chat completion from its chunks:
// the content, reasoning, refusal and tool calls of each choice
// concatenated, the last finish reason and usage kept. The result is the
// completion the stream amounts to, as a non-streamed request would have
// returned it.
type ChunkAccumulator struct {
	c       ChatCompletion
	choices map[int]*choiceAcc
	seen    bool
}

type choiceAcc struct {
	role                       string
	content, reasoning, refuse strings.Builder
	hasContent, hasReasoning   bool
	hasRefusal                 bool
	finish                     string
	calls                      map[int]*ToolCall
	callOrder                  []int
}

// Add folds one chunk in.
func (a *ChunkAccumulator) Add(ch *ChatCompletionChunk) {
	if !a.seen {
		a.seen = true
		a.c.ID, a.c.Created, a.c.Model = ch.ID, ch.Created, ch.Model
		a.choices = map[int]*choiceAcc{}
	}
	if ch.SystemFingerprint != "" {
		a.c.SystemFingerprint = ch.SystemFingerprint
	}
	if ch.ServiceTier != "" {
		a.c.ServiceTier = ch.ServiceTier
	}
	if ch.Usage != nil {
		u := *ch.Usage
		a.c.Usage = &u
	}
	for i := range ch.Choices {
		cc := &ch.Choices[i]
		acc := a.choices[cc.Index]
		if acc == nil {
			acc = &choiceAcc{}
			a.choices[cc.Index] = acc
		}
		d := &cc.Delta
		if d.Role != "" {
			acc.role = d.Role
		}
		if d.Content != nil {
			acc.hasContent = true
			acc.content.WriteString(*d.Content)
		}
		if r := d.ReasoningContent; r != nil {
			acc.hasReasoning = true
			acc.reasoning.WriteString(*r)
		} else if r := d.Reasoning; r != nil {
			acc.hasReasoning = true
			acc.reasoning.WriteString(*r)
		}
		if d.Refusal != nil {
			acc.hasRefusal = true
			acc.refuse.WriteString(*d.Refusal)
		}
		for j := range d.ToolCalls {
			tc := &d.ToolCalls[j]
			idx := j
			if tc.Index != nil {
				idx = *tc.Index
			}
			call := acc.calls[idx]
			if call == nil {
				if acc.calls == nil {
					acc.calls = map[int]*ToolCall{}
				}
				call = &ToolCall{Type: "function"}
				acc.calls[idx] = call
				acc.callOrder = append(acc.callOrder, idx)
			}
			if tc.ID != "" {
				call.ID = tc.ID
			}
			if tc.Type != "" {
				call.Type = tc.Type
			}
			if tc.Function.Name != "" {
				call.Function.Name += tc.Function.Name
			}
			call.Function.Arguments += tc.Function.Arguments
		}
		if cc.FinishReason != nil && *cc.FinishReason != "" {
			acc.finish = *cc.FinishReason
		}
	}
}

// Empty reports whether no chunk was added.
func (a *ChunkAccumulator) Empty() bool { return !a.seen }

// Completion returns the assembled completion (object "chat.completion",
// choices in index order).
func (a *ChunkAccumulator) Completion() *ChatCompletion {
	out := a.c
	out.Object = "chat.completion"
	out.Raw = nil
	idx := make([]int, 0, len(a.choices))
	for i := range a.choices {
		idx = append(idx, i)
	}
	sort.Ints(idx)
	out.Choices = make([]Choice, 0, len(idx))
	for _, i := range idx {
		acc := a.choices[i]
		role := acc.role
		if role == "" {
			role = "assistant"
		}
		m := ResponseMessage{Role: role}
		if acc.hasContent || len(acc.calls) == 0 {
			s := acc.content.String()
			m.Content = &s
		}
		if acc.hasReasoning {
			s := acc.reasoning.String()
			m.ReasoningContent = &s
		}
		if acc.hasRefusal {
			s := acc.refuse.String()
			m.Refusal = &s
		}
		sort.Ints(acc.callOrder)
		for _, ci := range acc.callOrder {
			m.ToolCalls = append(m.ToolCalls, *acc.calls[ci])
		}
		out.Choices = append(out.Choices, Choice{Index: i, Message: m, FinishReason: acc.finish})
	}
	return &out
}
