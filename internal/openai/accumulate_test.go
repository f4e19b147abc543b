package openai

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestChunkAccumulator(t *testing.T) {
	stream := []string{
		`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","reasoning_content":"think "},"finish_reason":null}]}`,
		`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"reasoning_content":"more"},"finish_reason":null}]}`,
		`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"Hel"},"finish_reason":null}]}`,
		`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"content":"lo"},"finish_reason":null}]}`,
		`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"call_b","type":"function","function":{"name":"b","arguments":"{\"y\":"}}]}}]}`,
		`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_a","type":"function","function":{"name":"a","arguments":""}}]}}]}`,
		`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}},{"index":1,"function":{"arguments":"2}"}}]}}]}`,
		`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`,
		`{"id":"c1","object":"chat.completion.chunk","created":7,"model":"m","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":5,"total_tokens":8}}`,
	}
	var a ChunkAccumulator
	if !a.Empty() {
		t.Fatal("new accumulator not empty")
	}
	for _, s := range stream {
		var ch ChatCompletionChunk
		if err := json.Unmarshal([]byte(s), &ch); err != nil {
			t.Fatal(err)
		}
		a.Add(&ch)
	}
	got := a.Completion()
	content, reasoning := "Hello", "think more"
	want := &ChatCompletion{ID: "c1", Object: "chat.completion", Created: 7, Model: "m",
		Usage: &Usage{PromptTokens: 3, CompletionTokens: 5, TotalTokens: 8},
		Choices: []Choice{{Index: 0, FinishReason: "tool_calls", Message: ResponseMessage{
			Role: "assistant", Content: &content, ReasoningContent: &reasoning,
			ToolCalls: []ToolCall{
				{ID: "call_a", Type: "function", Function: FunctionCall{Name: "a", Arguments: "{}"}},
				{ID: "call_b", Type: "function", Function: FunctionCall{Name: "b", Arguments: `{"y":2}`}},
			}}}}}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("assembled completion (-want +got):\n%s", d)
	}
}

func TestChunkAccumulatorMultipleChoices(t *testing.T) {
	var a ChunkAccumulator
	for _, s := range []string{
		`{"id":"c","created":1,"model":"m","choices":[{"index":1,"delta":{"content":"B"}},{"index":0,"delta":{"content":"A"}}]}`,
		`{"id":"c","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"stop"},{"index":1,"delta":{},"finish_reason":"length"}]}`,
	} {
		var ch ChatCompletionChunk
		if err := json.Unmarshal([]byte(s), &ch); err != nil {
			t.Fatal(err)
		}
		a.Add(&ch)
	}
	got := a.Completion()
	if len(got.Choices) != 2 || *got.Choices[0].Message.Content != "A" || got.Choices[1].FinishReason != "length" {
		b, _ := json.Marshal(got)
		t.Errorf("got %s", b)
	}
}
