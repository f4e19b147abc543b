package bedrock

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

// Reasoning settings, chosen per model by the "reasoning" key of the
// model's metadata.
const (
	// ReasoningSeparate (the default) returns the answer clean in content
	// and the model's reasoning in reasoning_content, on messages and on
	// stream deltas alike.
	ReasoningSeparate = "separate"
	// ReasoningPassthrough leaves the upstream's form untouched (inline
	// <reasoning> tags in content, or a reasoning field).
	ReasoningPassthrough = "passthrough"
)

// MetadataReasoning is the model metadata key that picks the setting.
const MetadataReasoning = "reasoning"

const (
	openTag  = "<reasoning>"
	closeTag = "</reasoning>"
)

// reasoningMode reads the model's setting; unknown values separate.
func reasoningMode(meta map[string]any) string {
	if v, _ := meta[MetadataReasoning].(string); v == ReasoningPassthrough {
		return ReasoningPassthrough
	}
	return ReasoningSeparate
}

// splitter separates <reasoning>…</reasoning> runs from the answer in
// text that arrives in pieces. Tags may be split across pieces; a suffix
// that could be the start of a tag is held back until the next piece.
type splitter struct {
	inReasoning bool
	pending     string
}

// feed consumes a piece and returns what it adds to the reasoning and to
// the answer.
func (s *splitter) feed(piece string) (reasoning, content string) {
	text := s.pending + piece
	s.pending = ""
	var r, c strings.Builder
	for text != "" {
		tag := openTag
		if s.inReasoning {
			tag = closeTag
		}
		if i := strings.Index(text, tag); i >= 0 {
			s.emit(&r, &c, text[:i])
			text = text[i+len(tag):]
			s.inReasoning = !s.inReasoning
			continue
		}
		// Hold back the longest suffix that is a prefix of the tag.
		keep := 0
		for k := min(len(tag)-1, len(text)); k > 0; k-- {
			if strings.HasSuffix(text, tag[:k]) {
				keep = k
				break
			}
		}
		s.emit(&r, &c, text[:len(text)-keep])
		s.pending = text[len(text)-keep:]
		break
	}
	return r.String(), c.String()
}

// flush returns what was held back, at the end of the text.
func (s *splitter) flush() (reasoning, content string) {
	var r, c strings.Builder
	s.emit(&r, &c, s.pending)
	s.pending = ""
	return r.String(), c.String()
}

func (s *splitter) emit(r, c *strings.Builder, text string) {
	if s.inReasoning {
		r.WriteString(text)
	} else {
		c.WriteString(text)
	}
}

// splitReasoning separates a whole message's content.
func splitReasoning(text string) (reasoning, content string) {
	var s splitter
	r1, c1 := s.feed(text)
	r2, c2 := s.flush()
	return r1 + r2, c1 + c2
}

// separateCompletion moves reasoning out of each choice's content (inline
// tags) and out of a "reasoning" field into reasoning_content. An
// unchanged completion keeps its upstream bytes.
func separateCompletion(c *openai.ChatCompletion) {
	changed := false
	for i := range c.Choices {
		m := &c.Choices[i].Message
		reasoning := ""
		if m.ReasoningContent != nil {
			reasoning = *m.ReasoningContent
		}
		if m.Reasoning != nil {
			reasoning += *m.Reasoning
			m.Reasoning = nil
			changed = true
		}
		if m.Content != nil && strings.Contains(*m.Content, openTag) {
			r, content := splitReasoning(*m.Content)
			reasoning += r
			m.Content = &content
			changed = true
		}
		if changed && reasoning != "" {
			m.ReasoningContent = &reasoning
		}
	}
	if changed {
		c.Raw = nil
	}
}

// reasoningStream separates reasoning in a stream, per choice index.
type reasoningStream struct {
	provider.Stream
	splitters map[int]*splitter
}

func newReasoningStream(st provider.Stream) *reasoningStream {
	return &reasoningStream{Stream: st, splitters: map[int]*splitter{}}
}

func (s *reasoningStream) Next() (*openai.ChatCompletionChunk, error) {
	ch, err := s.Stream.Next()
	if err != nil {
		return nil, err
	}
	changed := false
	for i := range ch.Choices {
		c := &ch.Choices[i]
		d := &c.Delta
		sp := s.splitters[c.Index]
		if sp == nil {
			sp = &splitter{}
			s.splitters[c.Index] = sp
		}
		reasoning := ""
		if d.ReasoningContent != nil {
			reasoning = *d.ReasoningContent
		}
		if d.Reasoning != nil {
			reasoning += *d.Reasoning
			d.Reasoning = nil
			changed = true
		}
		if d.Content != nil && (sp.inReasoning || sp.pending != "" || strings.ContainsRune(*d.Content, '<')) {
			orig := *d.Content
			r, content := sp.feed(orig)
			reasoning += r
			d.Content = &content
			if content == "" && orig != "" {
				d.Content = nil // a reasoning-only piece carries no answer text
			}
			changed = true
		}
		if c.FinishReason != nil && *c.FinishReason != "" && sp.pending != "" {
			r, content := sp.flush()
			reasoning += r
			if content != "" {
				joined := content
				if d.Content != nil {
					joined = *d.Content + content
				}
				d.Content = &joined
			}
			changed = true
		}
		if changed {
			d.ReasoningContent = nil
			if reasoning != "" {
				d.ReasoningContent = &reasoning
			}
		}
	}
	if changed {
		ch.Raw = nil
	}
	return ch, nil
}

// renameHistoryReasoning renames reasoning_content to reasoning on the
// assistant messages a client sends back, the field Bedrock's chat
// completions endpoint expects (and rejects the other). It reports whether
// the body changed; bodies without the field are returned as they are.
func renameHistoryReasoning(req *provider.Request) ([]byte, bool, error) {
	found := false
	if req.Chat != nil {
		for _, m := range req.Chat.Messages {
			if m.ReasoningContent != nil {
				found = true
				break
			}
		}
	}
	if !found {
		return req.Raw, false, nil
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(req.Raw, &body); err != nil {
		return nil, false, fmt.Errorf("decode request: %w", err)
	}
	var msgs []map[string]json.RawMessage
	if err := json.Unmarshal(body["messages"], &msgs); err != nil {
		return nil, false, fmt.Errorf("decode messages: %w", err)
	}
	for _, m := range msgs {
		if rc, ok := m["reasoning_content"]; ok {
			if _, has := m["reasoning"]; !has {
				m["reasoning"] = rc
			}
			delete(m, "reasoning_content")
		}
	}
	enc, err := json.Marshal(msgs)
	if err != nil {
		return nil, false, fmt.Errorf("encode messages: %w", err)
	}
	out, err := openai.SetTopLevel(req.Raw, "messages", enc)
	return out, err == nil, err
}
