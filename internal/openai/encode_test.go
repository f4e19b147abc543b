package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
)

func strp(s string) *string { return &s }
func intp(n int) *int       { return &n }

// encodeCompletions and encodeChunks cover every member, present and
// absent, and each way a raw member makes the encoder defer to
// json.Marshal.
var (
	encodeCompletions = []ChatCompletion{
		{},
		{Choices: []Choice{}},
		{ID: "c", Object: "chat.completion", Created: -5, Model: "m", ServiceTier: "default", SystemFingerprint: "fp",
			Choices: []Choice{{Index: 1, FinishReason: "stop", Logprobs: json.RawMessage(`null`), Message: ResponseMessage{Role: "assistant", Content: strp("a <b> & \"c\"\n\u2028é\xff"),
				Refusal: strp(""), Reasoning: strp("r"), ReasoningContent: strp("rc"),
				ToolCalls: []ToolCall{{Index: intp(0), ID: "call", Type: "function", Function: FunctionCall{Name: "f", Arguments: `{"x":1}`}}, {Function: FunctionCall{}}}}}},
			Usage: &Usage{PromptTokens: 1, CompletionTokens: 2, TotalTokens: 3, PromptTokensDetails: json.RawMessage(`{"cached_tokens":0}`)}},
		{Choices: []Choice{{Message: ResponseMessage{}}, {Index: 2}}, Usage: &Usage{}},
		{Choices: []Choice{{Logprobs: json.RawMessage(`{ "content" : [] }`)}}},
		{Choices: []Choice{{Logprobs: json.RawMessage(`"<tag>"`)}}},
		{Choices: []Choice{{Logprobs: json.RawMessage(`{bad`)}}},
		{Usage: &Usage{CompletionTokensDetails: json.RawMessage("[1,\n2]")}},
		{Raw: json.RawMessage(`{"raw":true}`), ID: "ignored"},
	}
	encodeChunks = []ChatCompletionChunk{
		{},
		{Choices: []ChunkChoice{}},
		{ID: "c", Object: "chat.completion.chunk", Created: 1, Model: "m", ServiceTier: "t", SystemFingerprint: "fp",
			Choices: []ChunkChoice{{Index: 0, FinishReason: strp("stop"), Logprobs: json.RawMessage(`null`), Delta: Delta{Role: "assistant", Content: strp(""),
				Refusal: strp("no"), Reasoning: strp("<r>"), ReasoningContent: strp("\x00\x1f\t\b\f\r"),
				ToolCalls: []ToolCall{{Index: intp(3), Function: FunctionCall{Arguments: "{"}}, {ID: "x", Function: FunctionCall{Name: "n"}}}}}},
			Usage: &Usage{PromptTokens: 9}},
		{Choices: []ChunkChoice{{Delta: Delta{}}, {Index: 1, Delta: Delta{Content: strp("x")}}, {Delta: Delta{ReasoningContent: strp("only")}}}},
		{Choices: []ChunkChoice{{Delta: Delta{ToolCalls: []ToolCall{{Type: "function"}}}}}},
		{Choices: []ChunkChoice{{Logprobs: json.RawMessage(`[ ]`)}}},
		{Choices: []ChunkChoice{{Logprobs: json.RawMessage(`nul`)}}},
	}
)

// sameAsMarshal checks that got/gerr is what json.Marshal(v) returns.
func sameAsMarshal(t *testing.T, v any, got []byte, gerr error) {
	t.Helper()
	want, werr := json.Marshal(v)
	if (gerr == nil) != (werr == nil) || fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Fatalf("%#v: error %v, json.Marshal's %v", v, gerr, werr)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%#v:\n got %s\nwant %s", v, got, want)
	}
}

func TestBodyMatchesMarshal(t *testing.T) {
	for i := range encodeCompletions {
		c := encodeCompletions[i]
		t.Run(fmt.Sprint("completion", i), func(t *testing.T) {
			got, err := c.Body()
			if c.Raw != nil {
				if string(got) != string(c.Raw) || err != nil {
					t.Fatalf("Raw not returned: %s %v", got, err)
				}
				c.Raw = nil
				got, err = c.Body()
			}
			sameAsMarshal(t, &c, got, err)
		})
	}
	for i := range encodeChunks {
		c := encodeChunks[i]
		t.Run(fmt.Sprint("chunk", i), func(t *testing.T) {
			got, err := c.Body()
			sameAsMarshal(t, &c, got, err)
		})
	}
	// The accumulator's completions go through the same encoder.
	completions, chunks := recorded(t)
	var acc ChunkAccumulator
	for _, b := range chunks {
		var ch ChatCompletionChunk
		if err := json.Unmarshal(b, &ch); err != nil {
			t.Fatal(err)
		}
		got, err := ch.Body()
		sameAsMarshal(t, &ch, got, err)
		acc.Add(&ch)
	}
	if !acc.Empty() {
		c := acc.Completion()
		got, err := c.Body()
		sameAsMarshal(t, c, got, err)
	}
	for _, b := range completions {
		var c ChatCompletion
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		got, err := c.Body()
		sameAsMarshal(t, &c, got, err)
	}
}

func TestAppendString(t *testing.T) {
	for _, s := range []string{"", "plain", "\"\\/", "<>&", "\u2028\u2029", "\x00\x01\x1f\x7f", "é€😀", "\xff", "a\xc3", "\xed\xa0\x80", "tab\there\nnl"} {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Errorf("appendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "a<b>&c", "\u2028", "\xff\xfe", "é", "\x00\n\"\\"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); !bytes.Equal(got, want) {
			t.Fatalf("appendString(%q) = %s, want %s", s, got, want)
		}
	})
}

// FuzzBody decodes arbitrary bodies into the typed values (as an adapter
// would before changing a field) and checks that Body writes what
// json.Marshal writes for them.
func FuzzBody(f *testing.F) {
	addDecodeSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		var c ChatCompletion
		if json.Unmarshal(data, &c) == nil {
			got, err := c.Body()
			sameAsMarshal(t, &c, got, err)
		}
		var ch ChatCompletionChunk
		if json.Unmarshal(data, &ch) == nil {
			got, err := ch.Body()
			sameAsMarshal(t, &ch, got, err)
		}
	})
}
