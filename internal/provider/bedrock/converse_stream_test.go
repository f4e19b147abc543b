package bedrock

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// streamSummary is what a stream amounts to.
type streamSummary struct {
	Text, Reasoning string
	Tools           []openai.ToolCall // index order, arguments concatenated
	Finish          string
	Usage           *openai.Usage
}

// summarize drains a stream, checking the chunk envelope as it goes.
func summarize(t testing.TB, st provider.Stream, model string) (streamSummary, error) {
	return summarizeStrict(t, st, model, true)
}

// summarizeStrict drains a stream; strict also wants the role chunk first
// (a real stream starts with messageStart; fuzzed bodies need not).
func summarizeStrict(t testing.TB, st provider.Stream, model string, strict bool) (streamSummary, error) {
	var s streamSummary
	var id string
	first := true
	for {
		c, err := st.Next()
		if err == io.EOF {
			return s, nil
		}
		if err != nil {
			return s, err
		}
		if id == "" {
			id = c.ID
		}
		if c.ID != id || c.Object != "chat.completion.chunk" || c.Model != model || c.Created == 0 || c.Raw != nil {
			t.Fatalf("chunk envelope = %+v", c)
		}
		if first && strict {
			if len(c.Choices) != 1 || c.Choices[0].Delta.Role != "assistant" {
				t.Fatalf("first chunk = %+v", c)
			}
			first = false
		}
		if c.Usage != nil {
			if len(c.Choices) != 0 || c.Choices == nil {
				t.Fatalf("usage chunk has choices %+v", c.Choices)
			}
			s.Usage = c.Usage
			continue
		}
		d := c.Choices[0].Delta
		if d.Content != nil {
			s.Text += *d.Content
		}
		if d.ReasoningContent != nil {
			s.Reasoning += *d.ReasoningContent
		}
		for _, tc := range d.ToolCalls {
			k := *tc.Index
			for len(s.Tools) <= k {
				s.Tools = append(s.Tools, openai.ToolCall{})
			}
			if tc.ID != "" {
				s.Tools[k].ID, s.Tools[k].Type, s.Tools[k].Function.Name = tc.ID, tc.Type, tc.Function.Name
			}
			s.Tools[k].Function.Arguments += tc.Function.Arguments
		}
		if f := c.Choices[0].FinishReason; f != nil {
			s.Finish = *f
		}
	}
}

// expectedSummary maps a fixture's .decoded.jsonl by hand.
func expectedSummary(t *testing.T, path string, includeUsage bool) streamSummary {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var s streamSummary
	tools := map[int]int{}
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var line struct {
			Headers map[string]string `json:"headers"`
			Payload struct {
				ContentBlockIndex int `json:"contentBlockIndex"`
				Start             struct {
					ToolUse *struct{ Name, ToolUseID string } `json:"toolUse"`
				} `json:"start"`
				Delta struct {
					Text             string `json:"text"`
					ReasoningContent struct {
						Text string `json:"text"`
					} `json:"reasoningContent"`
					ToolUse struct {
						Input string `json:"input"`
					} `json:"toolUse"`
				} `json:"delta"`
				StopReason string  `json:"stopReason"`
				Usage      cvUsage `json:"usage"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(sc.Bytes(), &line); err != nil {
			t.Fatal(err)
		}
		pl := line.Payload
		switch line.Headers[":event-type"] {
		case "contentBlockStart":
			if pl.Start.ToolUse != nil {
				tools[pl.ContentBlockIndex] = len(s.Tools)
				s.Tools = append(s.Tools, openai.ToolCall{ID: pl.Start.ToolUse.ToolUseID, Type: "function", Function: openai.FunctionCall{Name: pl.Start.ToolUse.Name}})
			}
		case "contentBlockDelta":
			s.Text += pl.Delta.Text
			s.Reasoning += pl.Delta.ReasoningContent.Text
			if pl.Delta.ToolUse.Input != "" {
				s.Tools[tools[pl.ContentBlockIndex]].Function.Arguments += pl.Delta.ToolUse.Input
			}
		case "messageStop":
			s.Finish = map[string]string{"end_turn": "stop", "tool_use": "tool_calls"}[pl.StopReason]
		case "metadata":
			if includeUsage {
				s.Usage = &openai.Usage{PromptTokens: pl.Usage.InputTokens, CompletionTokens: pl.Usage.OutputTokens, TotalTokens: pl.Usage.TotalTokens}
			}
		}
	}
	return s
}

// randomSplits delivers a body in random-sized reads.
type randomSplits struct {
	b   []byte
	rng *rand.Rand
}

func (r *randomSplits) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, io.EOF
	}
	n := min(len(p), len(r.b), 1+r.rng.IntN(300))
	copy(p, r.b[:n])
	r.b = r.b[n:]
	return n, nil
}

func decodeBody(t testing.TB, r io.Reader, includeUsage bool) (streamSummary, error) {
	return decodeBodyStrict(t, r, includeUsage, true)
}

func decodeBodyStrict(t testing.TB, r io.Reader, includeUsage, strict bool) (streamSummary, error) {
	p := &Provider{id: "bedrock"}
	req := &provider.Request{Model: "m", ClientModel: "client/m", Chat: &openai.ChatCompletionRequest{}}
	if includeUsage {
		req.Chat.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	}
	st := p.newConverseEvents(t.Context(), io.NopCloser(r), req)
	defer st.Close()
	return summarizeStrict(t, st, "client/m", strict)
}

var streamFixtures = []string{"converse-stream-nova-micro-text", "converse-stream-nova-micro-tooluse", "converse-stream-gpt-oss-120b-reasoning"}

func fixturesDir(t testing.TB) string {
	dir, err := bedrocktest.Fixtures()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func TestConverseStreamFixtures(t *testing.T) {
	dir := fixturesDir(t)
	for _, name := range streamFixtures {
		raw, err := os.ReadFile(filepath.Join(dir, name+".eventstream"))
		if err != nil {
			t.Fatal(err)
		}
		for _, usage := range []bool{true, false} {
			want := expectedSummary(t, filepath.Join(dir, name+".decoded.jsonl"), usage)
			if want.Finish == "" || (want.Text == "" && len(want.Tools) == 0) {
				t.Fatalf("%s: fixture summary looks empty: %+v", name, want)
			}
			readers := map[string]func() io.Reader{
				"whole":    func() io.Reader { return bytes.NewReader(raw) },
				"one byte": func() io.Reader { return iotest.OneByteReader(bytes.NewReader(raw)) },
			}
			for seed := range 5 {
				readers["random "+string(rune('0'+seed))] = func() io.Reader {
					return &randomSplits{b: raw, rng: rand.New(rand.NewPCG(uint64(seed), 7))}
				}
			}
			for rn, mk := range readers {
				got, err := decodeBody(t, mk(), usage)
				if err != nil {
					t.Fatalf("%s/%s: %v", name, rn, err)
				}
				if !reflect.DeepEqual(got, want) {
					t.Errorf("%s/%s usage=%v:\ngot  %+v\nwant %+v", name, rn, usage, got, want)
				}
				for _, tc := range got.Tools {
					if !json.Valid([]byte(tc.Function.Arguments)) {
						t.Errorf("%s: tool arguments %q are not JSON", name, tc.Function.Arguments)
					}
				}
			}
		}
	}
}

func frames(t testing.TB, parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}

func TestConverseStreamFailures(t *testing.T) {
	start := bedrocktest.EncodeEvent("messageStart", []byte(`{"p":"ab","role":"assistant"}`))
	delta := bedrocktest.EncodeEvent("contentBlockDelta", []byte(`{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"a"}`))
	stop := bedrocktest.EncodeEvent("messageStop", []byte(`{"p":"abc","stopReason":"end_turn"}`))
	corrupted := bytes.Clone(delta)
	corrupted[len(corrupted)-6] ^= 0x20 // payload byte: message CRC fails
	tests := []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"throttling", frames(t, start, bedrocktest.EncodeException("throttlingException", "Too many requests")), 429, "ThrottlingException"},
		{"validation", frames(t, start, bedrocktest.EncodeException("validationException", "bad")), 400, "ValidationException"},
		{"model stream error", frames(t, start, delta, bedrocktest.EncodeException("modelStreamErrorException", "boom")), 502, "ModelStreamErrorException"},
		{"internal", frames(t, start, bedrocktest.EncodeException("internalServerException", "oops")), 502, "InternalServerException"},
		{"unavailable", frames(t, start, bedrocktest.EncodeException("serviceUnavailableException", "later")), 502, "ServiceUnavailableException"},
		{"crc", frames(t, start, corrupted, stop), 502, "upstream_stream_corrupt"},
		{"truncated frame", frames(t, start, delta[:len(delta)-3]), 502, "upstream_stream_corrupt"},
		{"truncated prelude", frames(t, start, delta[:5]), 502, "upstream_stream_corrupt"},
		{"no messageStop", frames(t, start, delta), 502, "upstream_stream_broken"},
		{"empty body", nil, 502, "upstream_stream_broken"},
		{"garbage", []byte("<html>not an event stream</html>"), 502, "upstream_stream_corrupt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := decodeBody(t, bytes.NewReader(tt.body), false)
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.StatusCode != tt.status || pe.Code != tt.code || pe.Provider != "bedrock" {
				t.Fatalf("err = %#v, want %d %s", err, tt.status, tt.code)
			}
		})
	}
	// A complete message ends with io.EOF even without metadata.
	got, err := decodeBody(t, bytes.NewReader(frames(t, start, delta, stop)), true)
	if err != nil || got.Text != "Hi" || got.Finish != "stop" || got.Usage != nil {
		t.Errorf("complete = %+v, %v", got, err)
	}
}

// TestConverseStreamDouble runs converseStream against the double: the
// recorded fixtures, the default responder's tool call, and faults.
func TestConverseStreamDouble(t *testing.T) {
	p, double := converseProvider(t, bedrocktest.Options{})
	dir := fixturesDir(t)

	req := chatReq(t, bedrocktest.ModelNovaMicro, `{"messages":[{"role":"system","content":"You are a helpful chatbot."},{"role":"user","content":"What is the capital of France?"}],"temperature":0,"stream":true,"stream_options":{"include_usage":true}}`)
	st, err := p.converseStream(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	got, err := summarize(t, st, req.ClientModel)
	st.Close()
	if want := expectedSummary(t, filepath.Join(dir, "converse-stream-nova-micro-text.decoded.jsonl"), true); err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("fixture stream = %+v, %v; want %+v", got, err, want)
	}

	tools := `"tools":[{"type":"function","function":{"name":"get_weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`
	req = chatReq(t, bedrocktest.ModelGptOss120B, `{"messages":[{"role":"user","content":"What is the weather in Paris?"}],"stream":true,`+tools+`}`)
	st, err = p.converseStream(t.Context(), req)
	if err != nil {
		t.Fatal(err)
	}
	got, err = summarize(t, st, req.ClientModel)
	st.Close()
	if err != nil || got.Finish != "tool_calls" || len(got.Tools) != 1 || got.Tools[0].Function.Name != "get_weather" ||
		!strings.HasPrefix(got.Tools[0].ID, "tooluse_") || got.Tools[0].Function.Arguments != `{"city":"Paris"}` || got.Reasoning == "" || got.Usage != nil {
		t.Errorf("tool stream = %+v, %v", got, err)
	}

	double.DropStreamAfter(1, 3)
	st, err = p.converseStream(t.Context(), chatReq(t, bedrocktest.ModelNovaMicro, `{"messages":[{"role":"user","content":"Tell me about quantum computing"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	_, err = summarize(t, st, "bedrock/"+bedrocktest.ModelNovaMicro)
	st.Close()
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.StatusCode != 502 {
		t.Errorf("dropped stream: %#v", err)
	}

	double.Throttle(1)
	if _, err := p.converseStream(t.Context(), chatReq(t, bedrocktest.ModelNovaMicro, `{"messages":[{"role":"user","content":"hi"}],"stream":true}`)); !errors.As(err, &pe) || pe.StatusCode != 429 {
		t.Errorf("throttled: %#v", err)
	}
}

// FuzzConverseStream feeds arbitrary bodies to the decoder and mapper: it
// never panics, and every error is a *provider.Error.
func FuzzConverseStream(f *testing.F) {
	dir := fixturesDir(f)
	for _, name := range streamFixtures {
		raw, err := os.ReadFile(filepath.Join(dir, name+".eventstream"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
		f.Add(raw[:len(raw)/2])
	}
	f.Add(bedrocktest.EncodeException("throttlingException", "slow down"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, body []byte) {
		_, err := decodeBodyStrict(t, bytes.NewReader(body), true, false)
		if err == nil {
			return
		}
		var pe *provider.Error
		if !errors.As(err, &pe) {
			t.Fatalf("error %v (%T) is not a *provider.Error", err, err)
		}
	})
}
