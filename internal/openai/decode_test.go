package openai

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// recorded returns the recorded Bedrock bodies that exist: the completion
// and every chunk of the recorded streams (nil when the fixtures are not
// there).
func recorded(tb testing.TB) (completions, chunks [][]byte) {
	tb.Helper()
	dir, err := bedrocktest.Fixtures()
	if err != nil {
		return nil, nil
	}
	for _, name := range []string{"runtime-chat-completion-gpt-oss-20b.response.json", "mantle-chat-completion-gpt-oss-safeguard-20b.response.json"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err == nil {
			completions = append(completions, bytes.TrimSpace(b))
		}
	}
	for _, name := range []string{"runtime-chat-completion-gpt-oss-20b.stream.chunks.jsonl", "runtime-chat-completion-gpt-oss-20b-toolcall.stream.chunks.jsonl"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		for _, l := range bytes.Split(b, []byte("\n")) {
			if l = bytes.TrimSpace(l); len(l) > 0 {
				chunks = append(chunks, l)
			}
		}
	}
	return completions, chunks
}

// decodeCases are bodies that exercise each rule of the fast path and each
// way out of it; both decoders are checked against json.Unmarshal on all
// of them.
var decodeCases = []string{
	`{"id":"c1","object":"chat.completion.chunk","created":1700000000,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"},"finish_reason":null,"logprobs":null}],"usage":null}`,
	`{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"Hi","refusal":null},"finish_reason":"stop","logprobs":null}],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5,"prompt_tokens_details":{"cached_tokens":0},"completion_tokens_details":null},"service_tier":"default","system_fingerprint":"fp"}`,
	` { "id" : "c1" , "choices" : [ ] , "created" : -0 } `,
	`{"choices":null,"usage":{}}`,
	`{"choices":[{"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"get","arguments":"{\"a\":1}"}}]}}]}`,
	`{"choices":[{"message":{"tool_calls":[{"index":null,"function":null}],"content":null}}]}`,
	`{"choices":[{"delta":{"tool_calls":[]},"message":{"tool_calls":[]}}]}`,
	`{"choices":[{"delta":null,"message":null,"finish_reason":"length"}]}`,
	`{"id":"esc \" \\ \/ \b \f \n \r \t \u00e9 \u20ac \ud83d\ude00 end"}`,
	`{"id":"lone \ud83d surrogate \ude00 and \ud83d\u0041"}`,
	"{\"id\":\"bad utf8 \xff\xfe here\",\"model\":\"ok é\"}",
	`{"id":"<script>&amp;</script>","model":"\u2028\u2029"}`,
	`{"unknown":{"deep":[1,2.5e-3,true,false,null,{"x":"y"}]},"obfuscation":"abc","id":"x"}`,
	`{"choices":[{"delta":{"content":"x","function_call":null,"audio":{"id":"a"}},"obfuscation":"zz"}]}`,
	// Falls back: duplicate keys merge in encoding/json.
	`{"id":"a","id":"b"}`,
	`{"usage":{"prompt_tokens":1},"usage":{"completion_tokens":2}}`,
	`{"choices":[{"index":0,"index":1}]}`,
	// Falls back: keys that match a field case-insensitively.
	`{"ID":"x","Model":"m","CHOICES":[]}`,
	`{"choices":[{"Delta":{"Content":"x"}}]}`,
	"{\"\u017fervice_tier\":\"x\"}",
	`{"i\u0064":"escaped key"}`,
	// Falls back: wrong types, numbers that are not integers, overflow.
	`{"id":1}`,
	`{"created":"now"}`,
	`{"created":1.5}`,
	`{"created":1e3}`,
	`{"created":99999999999999999999}`,
	`{"choices":[{"index":9223372036854775808}]}`,
	`{"choices":{}}`,
	`{"choices":[null]}`,
	`{"choices":[{"delta":{"content":5}}]}`,
	`{"usage":[]}`,
	`{"choices":[{"finish_reason":true}]}`,
	`null`,
	`[]`,
	`"str"`,
	// Falls back: not JSON.
	``,
	`{`,
	`{"id":"x"`,
	`{"id":"x",}`,
	`{"id":"x"} x`,
	`{"id":"x"}{}`,
	`{"id":"\x"}`,
	`{"id":"\u12"}`,
	"{\"id\":\"ctl \x01\"}",
	`{"created":01}`,
	`{"created":-}`,
	`{"created":1.}`,
	`{"created":1e}`,
	`{"x":tru}`,
	`{"x":[1,]}`,
	`{"x":{"a"}}`,
	`{"x":{"a":1,}}`,
	`{id:"x"}`,
}

// sameAsUnmarshal checks that decode gives what json.Unmarshal gives.
func sameAsUnmarshal[T any](t *testing.T, data []byte, decode func([]byte, *T) error) {
	t.Helper()
	var got, want T
	gerr := decode(data, &got)
	werr := json.Unmarshal(data, &want)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Fatalf("%q: error %v, json.Unmarshal's %v", data, gerr, werr)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n got %#v\nwant %#v", data, got, want)
	}
}

func TestDecodeMatchesUnmarshal(t *testing.T) {
	completions, chunks := recorded(t)
	var all [][]byte
	for _, c := range decodeCases {
		all = append(all, []byte(c))
	}
	all = append(append(all, completions...), chunks...)
	for i, data := range all {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			sameAsUnmarshal(t, data, DecodeChatCompletion)
			sameAsUnmarshal(t, data, DecodeChatCompletionChunk)
		})
	}
}

// TestDecodeFastPath checks that well-formed bodies do not fall back: the
// scanner alone decodes them.
func TestDecodeFastPath(t *testing.T) {
	completions, chunks := recorded(t)
	fastCompletions := append([][]byte{[]byte(decodeCases[1]), []byte(decodeCases[2])}, completions...)
	fastChunks := append([][]byte{[]byte(decodeCases[0]), []byte(decodeCases[4]), []byte(decodeCases[8]), []byte(decodeCases[9]), []byte(decodeCases[10]), []byte(decodeCases[12]), []byte(decodeCases[13])}, chunks...)
	for _, data := range fastCompletions {
		d := decoder{b: data}
		var c ChatCompletion
		if !d.completion(&c) || !d.end() {
			t.Errorf("completion took the slow path at byte %d: %.200s", d.i, data)
		}
	}
	for _, data := range fastChunks {
		d := decoder{b: data}
		var c ChatCompletionChunk
		if !d.chunk(&c) || !d.end() {
			t.Errorf("chunk took the slow path at byte %d: %.200s", d.i, data)
		}
	}
}

// TestDecodeResets checks that a reused value is overwritten, not merged.
func TestDecodeResets(t *testing.T) {
	c := ChatCompletionChunk{ID: "old", Raw: json.RawMessage(`{}`), Choices: []ChunkChoice{{Index: 3}}}
	if err := DecodeChatCompletionChunk([]byte(`{"model":"m"}`), &c); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(c, ChatCompletionChunk{Model: "m"}) {
		t.Errorf("got %#v", c)
	}
	cc := ChatCompletion{ID: "old"}
	if err := DecodeChatCompletion([]byte(`{"id":1}`), &cc); err == nil || cc.ID != "" {
		t.Errorf("type error: err %v, id %q", err, cc.ID)
	}
}

func addDecodeSeeds(f *testing.F) {
	for _, c := range decodeCases {
		f.Add([]byte(c))
	}
	completions, chunks := recorded(f)
	for _, b := range completions {
		f.Add(b)
	}
	for _, b := range chunks {
		f.Add(b)
	}
}

func FuzzDecodeChatCompletion(f *testing.F) {
	addDecodeSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		sameAsUnmarshal(t, data, DecodeChatCompletion)
	})
}

func FuzzDecodeChatCompletionChunk(f *testing.F) {
	addDecodeSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		sameAsUnmarshal(t, data, DecodeChatCompletionChunk)
	})
}

// requestCases exercise the request decoder; the first ones take the fast
// path.
var requestCases = []string{
	`{"model":"bedrock/openai.gpt-oss-20b-1:0","messages":[{"role":"system","content":"You are a concise Python expert."},{"role":"user","content":"How do I read a JSON file?"}],"temperature":0.7,"max_tokens":400,"stream":false}`,
	`{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"data:,"}}],"name":"n"},{"role":"assistant","content":null,"tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{}"}}],"reasoning_content":"why"},{"role":"tool","tool_call_id":"c","content":"42","reasoning":null}],"stream":true,"stream_options":{"include_usage":true},"top_p":1,"max_completion_tokens":5,"n":1,"presence_penalty":-0.5,"frequency_penalty":1e-2,"seed":-3,"stop":["a","b"],"tools":[{"type":"function","function":{"name":"f","description":"d","parameters":{"type":"object"},"strict":true}}],"tool_choice":"auto","parallel_tool_calls":false,"reasoning_effort":"low","response_format":{"type":"json_object"},"user":"u","metadata":{"k":"v"}}`,
	`{"model":"m","messages":[],"stream_options":null,"temperature":null,"tools":null,"stop":null,"parallel_tool_calls":null,"stream":null,"user":null}`,
	`{"model":"m","messages":null,"tools":[],"stream_options":{}}`,
	`{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":1E400}`,
	`{"model":"m","temperature":"hot"}`,
	`{"model":"m","stream":1}`,
	`{"model":"m","stream":tru}`,
	`{"model":"m","max_tokens":1.0}`,
	`{"model":"m","max_tokens":9223372036854775808}`,
	`{"model":"m","messages":{}}`,
	`{"model":"m","messages":[{"role":5}]}`,
	`{"model":"m","Model":"n"}`,
	`{"model":"m","model":"n"}`,
	`{"model":'m'}`,
	`{"model":"m","tools":[{"function":null}]}`,
	`{"model":"m","stream_options":{"include_usage":true,"include_usage":false}}`,
}

func TestDecodeRequestMatchesUnmarshal(t *testing.T) {
	all := append([]string{}, requestCases...)
	all = append(all, decodeCases...)
	for i, c := range all {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			sameAsUnmarshal(t, []byte(c), DecodeChatCompletionRequest)
		})
	}
	for _, c := range requestCases[:4] {
		d := decoder{b: []byte(c)}
		var r ChatCompletionRequest
		if !d.request(&r) || !d.end() {
			t.Errorf("request took the slow path at byte %d: %.200s", d.i, c)
		}
	}
}

func FuzzDecodeChatCompletionRequest(f *testing.F) {
	for _, c := range requestCases {
		f.Add([]byte(c))
	}
	addDecodeSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		sameAsUnmarshal(t, data, DecodeChatCompletionRequest)
	})
}
