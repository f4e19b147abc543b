package bedrock

import (
	"encoding/json"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

func TestSplitReasoning(t *testing.T) {
	tests := []struct{ in, reasoning, content string }{
		{"<reasoning>think</reasoning>Answer", "think", "Answer"},
		{"<reasoning>a</reasoning><reasoning> b</reasoning>Sol.", "a b", "Sol."},
		{"no tags", "", "no tags"},
		{"x < y and <b>bold</b>", "", "x < y and <b>bold</b>"},
		{"<reasoning>unterminated", "unterminated", ""},
		{"<reasoning", "", "<reasoning"},
		{"", "", ""},
	}
	for _, tt := range tests {
		r, c := splitReasoning(tt.in)
		if r != tt.reasoning || c != tt.content {
			t.Errorf("splitReasoning(%q) = %q, %q; want %q, %q", tt.in, r, c, tt.reasoning, tt.content)
		}
	}
}

// feedPieces splits text at the given cut points and runs it through a
// splitter, returning the concatenated outputs.
func feedPieces(text string, cuts []int) (string, string) {
	var s splitter
	var r, c strings.Builder
	prev := 0
	for _, cut := range append(cuts, len(text)) {
		if cut < prev || cut > len(text) {
			continue
		}
		rr, cc := s.feed(text[prev:cut])
		r.WriteString(rr)
		c.WriteString(cc)
		prev = cut
	}
	rr, cc := s.flush()
	return r.String() + rr, c.String() + cc
}

func TestSplitterRandomCuts(t *testing.T) {
	text := "<reasoning>The user asks: x < y?</reasoning><reasoning> More.</reasoning>In Latin the Sun is <b>Sol</b>."
	wantR, wantC := splitReasoning(text)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		var cuts []int
		for i := 1; i < len(text); i++ {
			if rng.IntN(4) == 0 {
				cuts = append(cuts, i)
			}
		}
		if r, c := feedPieces(text, cuts); r != wantR || c != wantC {
			t.Fatalf("cuts %v: %q, %q; want %q, %q", cuts, r, c, wantR, wantC)
		}
	}
}

// FuzzSplitter: any text, cut anywhere, splits the same as when whole, and
// nothing is lost: reasoning plus content are the text without its tags.
func FuzzSplitter(f *testing.F) {
	f.Add("<reasoning>a</reasoning>b", 3, 15)
	f.Add("<reason<reasoning>x</reas</reasoning>", 1, 2)
	f.Fuzz(func(t *testing.T, text string, a, b int) {
		wantR, wantC := splitReasoning(text)
		r, c := feedPieces(text, []int{min(a, b), max(a, b)})
		if r != wantR || c != wantC {
			t.Fatalf("%q cut at %d,%d: %q, %q; whole: %q, %q", text, a, b, r, c, wantR, wantC)
		}
		// Only tags are ever dropped, so the output is never longer.
		if len(r)+len(c) > len(text) {
			t.Fatalf("output longer than input: %q %q", r, c)
		}
	})
}

func TestSeparateCompletion(t *testing.T) {
	raw := `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"<reasoning>Alice.</reasoning>Your name is Alice."},"finish_reason":"stop"}],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}`
	var c openai.ChatCompletion
	if err := json.Unmarshal([]byte(raw), &c); err != nil {
		t.Fatal(err)
	}
	c.Raw = []byte(raw)
	separateCompletion(&c)
	if c.Raw != nil || *c.Choices[0].Message.Content != "Your name is Alice." || *c.Choices[0].Message.ReasoningContent != "Alice." {
		t.Fatalf("got %+v", c.Choices[0].Message)
	}
	body, _ := c.Body()
	if !strings.Contains(string(body), `"reasoning_content":"Alice."`) || !strings.Contains(string(body), `"total_tokens":3`) {
		t.Errorf("body %s", body)
	}

	// Mantle's form: a reasoning field.
	mantle := `{"choices":[{"index":0,"message":{"content":"SAFE","reasoning":"The user says...","role":"assistant"},"finish_reason":"stop"}]}`
	var m openai.ChatCompletion
	_ = json.Unmarshal([]byte(mantle), &m)
	m.Raw = []byte(mantle)
	separateCompletion(&m)
	if msg := m.Choices[0].Message; msg.Reasoning != nil || *msg.ReasoningContent != "The user says..." || *msg.Content != "SAFE" {
		t.Errorf("mantle: %+v", msg)
	}

	// Nothing to separate: the upstream bytes stay.
	plain := `{"choices":[{"index":0,"message":{"content":"hi","role":"assistant"},"finish_reason":"stop"}]}`
	var p openai.ChatCompletion
	_ = json.Unmarshal([]byte(plain), &p)
	p.Raw = []byte(plain)
	separateCompletion(&p)
	if string(p.Raw) != plain {
		t.Errorf("untouched completion re-encoded")
	}
}

// sliceStream replays chunks.
type sliceStream struct{ chunks []*openai.ChatCompletionChunk }

func (s *sliceStream) Next() (*openai.ChatCompletionChunk, error) {
	if len(s.chunks) == 0 {
		return nil, io.EOF
	}
	c := s.chunks[0]
	s.chunks = s.chunks[1:]
	return c, nil
}

func (s *sliceStream) Close() error { return nil }

func chunk(content string, finish string) *openai.ChatCompletionChunk {
	c := &openai.ChatCompletionChunk{Choices: []openai.ChunkChoice{{Delta: openai.Delta{Content: &content}}}, Raw: []byte(`{}`)}
	if finish != "" {
		c.Choices[0].FinishReason = &finish
	}
	return c
}

func TestReasoningStream(t *testing.T) {
	st := newReasoningStream(&sliceStream{chunks: []*openai.ChatCompletionChunk{
		chunk("", ""), chunk("<reasoning>Probably Sol</reasoning>", ""), chunk("<reasoning>. Done</reas", ""),
		chunk("oning>In Latin: ", ""), chunk("**Sol**", ""), chunk(" <", "stop"),
	}})
	var r, c strings.Builder
	for {
		ch, err := st.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		d := ch.Choices[0].Delta
		if d.ReasoningContent != nil {
			r.WriteString(*d.ReasoningContent)
		}
		if d.Content != nil {
			if strings.Contains(*d.Content, "reasoning>") {
				t.Errorf("tag leaked into content: %q", *d.Content)
			}
			c.WriteString(*d.Content)
		}
	}
	if r.String() != "Probably Sol. Done" || c.String() != "In Latin: **Sol** <" {
		t.Errorf("reasoning %q content %q", r.String(), c.String())
	}
}

func TestRenameHistoryReasoning(t *testing.T) {
	rc := "thought"
	req := &provider.Request{
		Chat: &openai.ChatCompletionRequest{Messages: []openai.Message{{Role: "user"}, {Role: "assistant", ReasoningContent: &rc}}},
		Raw:  []byte(`{"model":"m","messages":[{"role":"user","content":"hi"},{"role":"assistant","content":"yo","reasoning_content":"thought"}],"stream":false}`),
	}
	out, changed, err := renameHistoryReasoning(req)
	if err != nil || !changed {
		t.Fatal(err)
	}
	if strings.Contains(string(out), "reasoning_content") || !strings.Contains(string(out), `"reasoning":"thought"`) || !strings.HasSuffix(string(out), `"stream":false}`) {
		t.Errorf("got %s", out)
	}
}

func TestAPIFor(t *testing.T) {
	tests := []struct {
		model string
		meta  map[string]any
		want  string
	}{
		{"openai.gpt-oss-20b-1:0", nil, APIOpenAI},
		{"us.anthropic.claude-sonnet-4-5-20250929-v1:0", nil, APIConverse},
		{"amazon.nova-micro-v1:0", nil, APIConverse},
		{"us.meta.llama3-3-70b-instruct-v1:0", nil, APIConverse},
		{"mistral.mistral-large-2407-v1:0", nil, APIConverse},
		{"qwen.qwen3-32b-v1:0", nil, APIOpenAI},
		{"openai.gpt-oss-120b-1:0", map[string]any{"api": "converse"}, APIConverse},
		{"amazon.nova-pro-v1:0", map[string]any{"api": "openai"}, APIOpenAI},
	}
	for _, tt := range tests {
		if got := apiFor(tt.model, tt.meta); got != tt.want {
			t.Errorf("apiFor(%s, %v) = %s, want %s", tt.model, tt.meta, got, tt.want)
		}
	}
}
