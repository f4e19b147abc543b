package openai

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// fixture reads one of the recorded Bedrock fixtures, or skips.
func fixture(b *testing.B, name string) []byte {
	b.Helper()
	dir, err := bedrocktest.Fixtures()
	if err != nil {
		b.Skip(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, name))
	if err != nil {
		b.Skip(err)
	}
	return bytes.TrimSpace(data)
}

// notebookRequest is the notebook's chat request as a client sends it:
// the registered model id first.
const notebookRequest = `{"model":"bedrock/openai.gpt-oss-20b-1:0","messages":[{"role":"system","content":"You are a concise Python expert. Give brief, code-focused answers."},{"role":"user","content":"How do I read a JSON file?"}],"temperature":0.7,"max_tokens":400,"stream":false}`

// BenchmarkSetTopLevelString rewrites "model" where the gateway does: in
// the client's request (model first), in the recorded completion and in a
// recorded stream chunk (model after choices, so the scan skips them).
func BenchmarkSetTopLevelString(b *testing.B) {
	chunks := bytes.Split(fixture(b, "runtime-chat-completion-gpt-oss-20b.stream.chunks.jsonl"), []byte("\n"))
	cases := []struct {
		name  string
		body  []byte
		value string
	}{
		{"request", []byte(notebookRequest), "openai.gpt-oss-20b-1:0"},
		{"completion", fixture(b, "runtime-chat-completion-gpt-oss-20b.response.json"), "bedrock/openai.gpt-oss-20b-1:0"},
		{"chunk", chunks[len(chunks)/2], "bedrock/openai.gpt-oss-20b-1:0"},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				if _, err := SetTopLevelString(c.body, "model", c.value); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecode measures the typed decodes on the hot path: the chat
// request (once per request, for validation and routing), the completion
// (once per non-streamed answer) and a stream chunk (once per chunk, for
// the finish and usage bookkeeping).
func BenchmarkDecode(b *testing.B) {
	chunks := bytes.Split(fixture(b, "runtime-chat-completion-gpt-oss-20b.stream.chunks.jsonl"), []byte("\n"))
	cases := []struct {
		name string
		body []byte
		new  func() any
	}{
		{"request", []byte(notebookRequest), func() any { return new(ChatCompletionRequest) }},
		{"completion", fixture(b, "runtime-chat-completion-gpt-oss-20b.response.json"), func() any { return new(ChatCompletion) }},
		{"chunk", chunks[len(chunks)/2], func() any { return new(ChatCompletionChunk) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(c.body)))
			for b.Loop() {
				if err := json.Unmarshal(c.body, c.new()); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkFastDecode is BenchmarkDecode through DecodeChatCompletionRequest,
// DecodeChatCompletion and DecodeChatCompletionChunk, the decoders the
// handler and the adapter use.
func BenchmarkFastDecode(b *testing.B) {
	chunks := bytes.Split(fixture(b, "runtime-chat-completion-gpt-oss-20b.stream.chunks.jsonl"), []byte("\n"))
	completion := fixture(b, "runtime-chat-completion-gpt-oss-20b.response.json")
	b.Run("request", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(notebookRequest)))
		for b.Loop() {
			var r ChatCompletionRequest
			if err := DecodeChatCompletionRequest([]byte(notebookRequest), &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("completion", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(completion)))
		for b.Loop() {
			var c ChatCompletion
			if err := DecodeChatCompletion(completion, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("chunk", func(b *testing.B) {
		chunk := chunks[len(chunks)/2]
		b.ReportAllocs()
		b.SetBytes(int64(len(chunk)))
		for b.Loop() {
			var c ChatCompletionChunk
			if err := DecodeChatCompletionChunk(chunk, &c); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkBody encodes typed values, as Body does after an adapter
// changed a field (reasoning separated): the recorded completion and a
// recorded chunk, with the hand-written encoder and with json.Marshal.
func BenchmarkBody(b *testing.B) {
	chunks := bytes.Split(fixture(b, "runtime-chat-completion-gpt-oss-20b.stream.chunks.jsonl"), []byte("\n"))
	var c ChatCompletion
	if err := json.Unmarshal(fixture(b, "runtime-chat-completion-gpt-oss-20b.response.json"), &c); err != nil {
		b.Fatal(err)
	}
	var ch ChatCompletionChunk
	if err := json.Unmarshal(chunks[len(chunks)/2], &ch); err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		v    interface{ Body() ([]byte, error) }
	}{{"completion", &c}, {"chunk", &ch}} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := tc.v.Body(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(tc.name+"/json.Marshal", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := json.Marshal(tc.v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
