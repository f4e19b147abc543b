package bedrock

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files in testdata")

// TestToConverseGolden translates testdata/converse/*.request.json and
// compares with *.converse.json (go test -run ToConverseGolden -update
// rewrites them).
func TestToConverseGolden(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "converse", "*.request.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden inputs: %v", err)
	}
	for _, in := range files {
		name := strings.TrimSuffix(filepath.Base(in), ".request.json")
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(in)
			if err != nil {
				t.Fatal(err)
			}
			var chat openai.ChatCompletionRequest
			if err := json.Unmarshal(raw, &chat); err != nil {
				t.Fatal(err)
			}
			cv, err := toConverse(&chat)
			if err != nil {
				t.Fatal(err)
			}
			got, err := cvMarshal(cv)
			if err != nil {
				t.Fatal(err)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			golden := filepath.Join("testdata", "converse", name+".converse.json")
			if *updateGolden {
				if err := os.WriteFile(golden, pretty.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run with -update to create it)", err)
			}
			if !bytes.Equal(pretty.Bytes(), want) {
				t.Errorf("translation differs from %s:\ngot:\n%s\nwant:\n%s", golden, pretty.Bytes(), want)
			}
		})
	}
}

// TestToConverseShape checks the properties the golden files are meant to
// show, so a careless -update cannot bless a wrong translation.
func TestToConverseShape(t *testing.T) {
	load := func(name string) *cvRequest {
		t.Helper()
		raw, err := os.ReadFile(filepath.Join("testdata", "converse", name+".request.json"))
		if err != nil {
			t.Fatal(err)
		}
		var chat openai.ChatCompletionRequest
		if err := json.Unmarshal(raw, &chat); err != nil {
			t.Fatal(err)
		}
		cv, err := toConverse(&chat)
		if err != nil {
			t.Fatal(err)
		}
		return cv
	}
	roles := func(cv *cvRequest) string {
		var r []string
		for _, m := range cv.Messages {
			r = append(r, m.Role)
		}
		return strings.Join(r, ",")
	}

	mt := load("multi-turn")
	if got := roles(mt); got != "user,assistant,user" {
		t.Errorf("multi-turn roles = %s", got)
	}
	if len(mt.System) != 2 || *mt.InferenceConfig.MaxTokens != 50 || len(mt.InferenceConfig.StopSequences) != 2 ||
		mt.AdditionalModelRequestFields["reasoning_effort"] != "high" {
		t.Errorf("multi-turn: %+v", mt)
	}
	if n := len(mt.Messages[2].Content); n != 2 {
		t.Errorf("merged user message has %d blocks, want 2", n)
	}

	tr := load("tool-result")
	if got := roles(tr); got != "user,assistant,user" {
		t.Errorf("tool-result roles = %s", got)
	}
	last := tr.Messages[2].Content
	if len(last) != 3 || last[0].ToolResult == nil || last[1].ToolResult == nil || last[2].Text == nil {
		t.Fatalf("tool results not merged into one user message: %+v", last)
	}
	if string(last[0].ToolResult.Content[0].JSON) != `{"temp_c":21}` || *last[1].ToolResult.Content[0].Text != "sunny, 25 C" {
		t.Errorf("tool result contents: %+v %+v", last[0].ToolResult.Content, last[1].ToolResult.Content)
	}
	if string(tr.Messages[1].Content[0].ToolUse.Input) != `{"city":"Paris"}` {
		t.Errorf("toolUse input = %s", tr.Messages[1].Content[0].ToolUse.Input)
	}

	h := load("history-tools-no-tools")
	if h.ToolConfig == nil || len(h.ToolConfig.Tools) != 2 || h.ToolConfig.Tools[0].ToolSpec.Name != "lookup_city" ||
		h.ToolConfig.Tools[1].ToolSpec.Name != "get_time" || h.ToolConfig.ToolChoice != nil {
		t.Errorf("synthesised toolConfig = %+v", h.ToolConfig)
	}
	if none := load("tools-none"); none.ToolConfig != nil {
		t.Errorf("tool_choice none kept a toolConfig")
	}
	if c := load("tools-required").ToolConfig.ToolChoice; c == nil || c.Any == nil {
		t.Errorf("required → %+v", c)
	}
	if c := load("tools-named").ToolConfig.ToolChoice; c == nil || c.Tool == nil || c.Tool.Name != "get_time" {
		t.Errorf("named → %+v", c)
	}
	img := load("image").Messages[0].Content
	if len(img) != 3 || img[1].Image.Format != "png" || img[2].Image.Format != "jpeg" {
		t.Errorf("images = %+v", img)
	}
}

func TestToConverseErrors(t *testing.T) {
	tests := []struct {
		name, body, param string
	}{
		{"image link", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"https://x/y.png"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"image not base64", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/png;base64,!!!"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"image type", `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/tiff;base64,AAAA"}}]}]}`, "messages[0].content[0].image_url.url"},
		{"audio part", `{"messages":[{"role":"user","content":[{"type":"input_audio","input_audio":{}}]}]}`, "messages[0].content[0].type"},
		{"bad arguments", `{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"{not json"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{"array arguments", `{"messages":[{"role":"user","content":"x"},{"role":"assistant","tool_calls":[{"id":"a","type":"function","function":{"name":"f","arguments":"[1]"}}]}]}`, "messages[1].tool_calls[0].function.arguments"},
		{"tool_choice", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"sometimes"}`, "tool_choice"},
		{"role", `{"messages":[{"role":"function","content":"x"}]}`, "messages[0].role"},
		{"no messages", `{"messages":[{"role":"system","content":"x"}]}`, "messages"},
		{"stop", `{"messages":[{"role":"user","content":"x"}],"stop":5}`, "stop"},
		{"tool type", `{"messages":[{"role":"user","content":"x"}],"tools":[{"type":"code_interpreter"}]}`, "tools[0].type"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var chat openai.ChatCompletionRequest
			if err := json.Unmarshal([]byte(tt.body), &chat); err != nil {
				t.Fatal(err)
			}
			_, err := toConverse(&chat)
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.StatusCode != http.StatusBadRequest || pe.Param != tt.param {
				t.Fatalf("err = %#v, want 400 with param %q", err, tt.param)
			}
		})
	}
}

func TestFromConverseMapping(t *testing.T) {
	for _, tt := range []struct{ stop, want string }{
		{"end_turn", "stop"}, {"stop_sequence", "stop"}, {"tool_use", "tool_calls"}, {"max_tokens", "length"},
		{"model_context_window_exceeded", "length"}, {"guardrail_intervened", "content_filter"},
		{"content_filtered", "content_filter"}, {"malformed_model_output", "stop"},
	} {
		if got := cvFinishReason(tt.stop); got != tt.want {
			t.Errorf("cvFinishReason(%q) = %q, want %q", tt.stop, got, tt.want)
		}
	}
	var r cvResponse
	body := `{"output":{"message":{"role":"assistant","content":[{"text":"Let me look."},{"toolUse":{"toolUseId":"tooluse_1","name":"f","input":{ "a" : [1, 2] }}}]}},"stopReason":"tool_use","usage":{"inputTokens":3,"outputTokens":4,"totalTokens":7}}`
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatal(err)
	}
	c := fromConverse(&r, "client/model")
	m := c.Choices[0].Message
	if *m.Content != "Let me look." || len(m.ToolCalls) != 1 || m.ToolCalls[0].ID != "tooluse_1" || m.ToolCalls[0].Type != "function" ||
		m.ToolCalls[0].Function.Arguments != `{"a":[1,2]}` || c.Choices[0].FinishReason != "tool_calls" || c.Model != "client/model" ||
		c.Usage.TotalTokens != 7 || !strings.HasPrefix(c.ID, "chatcmpl-") || c.Object != "chat.completion" || c.Created == 0 || c.Raw != nil {
		t.Errorf("completion = %+v / %+v", c, m)
	}
}

// converseProvider is a provider against a fresh double.
func converseProvider(t *testing.T, opts bedrocktest.Options) (*Provider, *bedrocktest.Server) {
	t.Helper()
	double := bedrocktest.New(t, opts)
	p, err := New("bedrock", &config.BedrockConfig{APIKey: config.Secret(bedrocktest.DefaultKey), BaseURL: double.URL()}, Options{LookupEnv: envOf()})
	if err != nil {
		t.Fatal(err)
	}
	return p, double
}

func chatReq(t *testing.T, model, body string) *provider.Request {
	t.Helper()
	var chat openai.ChatCompletionRequest
	if err := json.Unmarshal([]byte(body), &chat); err != nil {
		t.Fatal(err)
	}
	return &provider.Request{Model: model, ClientModel: "bedrock/" + model, Chat: &chat, Raw: json.RawMessage(body)}
}

// TestConverseFixtures sends the requests whose Converse form is a
// recorded one and checks the recorded answers map to the expected
// completions.
func TestConverseFixtures(t *testing.T) {
	p, double := converseProvider(t, bedrocktest.Options{})
	tests := []struct {
		name, model, body  string
		content, reasoning string
		usage              [3]int64
	}{
		{"nova text", bedrocktest.ModelNovaMicro, `{"messages":[{"role":"system","content":"You are a chatbot."},{"role":"user","content":"Hello!"}]}`,
			"Hello there! How can I assist you today? Whether you have questions, need information, or just want to chat, I'm here to help. What's on your mind?", "", [3]int64{7, 39, 46}},
		{"gpt-oss reasoning", bedrocktest.ModelGptOss120B, `{"messages":[{"role":"user","content":"Reply with the single word: ok"}],"reasoning_effort":"medium"}`,
			"ok", `User wants reply with the single word: ok. So just "ok".`, [3]int64{74, 26, 100}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := p.converse(t.Context(), chatReq(t, tt.model, tt.body))
			if err != nil {
				t.Fatal(err)
			}
			m := c.Choices[0].Message
			if m.Role != "assistant" || m.Content == nil || *m.Content != tt.content || c.Choices[0].FinishReason != "stop" {
				t.Errorf("message = %+v", m)
			}
			if (tt.reasoning == "") != (m.ReasoningContent == nil) || (m.ReasoningContent != nil && *m.ReasoningContent != tt.reasoning) {
				t.Errorf("reasoning_content = %v, want %q", m.ReasoningContent, tt.reasoning)
			}
			if u := c.Usage; u == nil || [3]int64{u.PromptTokens, u.CompletionTokens, u.TotalTokens} != tt.usage {
				t.Errorf("usage = %+v, want %v", c.Usage, tt.usage)
			}
			if c.Model != "bedrock/"+tt.model || c.Object != "chat.completion" || len(c.Choices) != 1 {
				t.Errorf("completion = %+v", c)
			}
		})
	}
	reqs := double.Requests()
	if len(reqs) != 2 || reqs[0].Path != "/model/"+bedrocktest.ModelNovaMicro+"/converse" || reqs[0].Header.Get("Authorization") != "Bearer "+bedrocktest.DefaultKey {
		t.Errorf("requests = %+v", reqs)
	}
}

// TestConverseToolRoundTrip calls a tool and sends its result back, with
// and without the tools in the second turn.
func TestConverseToolRoundTrip(t *testing.T) {
	p, _ := converseProvider(t, bedrocktest.Options{})
	tools := `"tools":[{"type":"function","function":{"name":"get_weather","description":"Weather in a city.","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}]`
	c, err := p.converse(t.Context(), chatReq(t, bedrocktest.ModelNovaMicro, `{"messages":[{"role":"user","content":"What is the weather in Paris?"}],`+tools+`}`))
	if err != nil {
		t.Fatal(err)
	}
	m := c.Choices[0].Message
	if c.Choices[0].FinishReason != "tool_calls" || len(m.ToolCalls) != 1 || m.ToolCalls[0].Function.Name != "get_weather" {
		t.Fatalf("first turn = %+v", c.Choices[0])
	}
	call := m.ToolCalls[0]
	var args map[string]any
	if err := json.Unmarshal([]byte(call.Function.Arguments), &args); err != nil || args["city"] != "Paris" {
		t.Errorf("arguments = %s", call.Function.Arguments)
	}
	callJSON, _ := json.Marshal([]openai.ToolCall{call})
	history := `{"role":"user","content":"What is the weather in Paris?"},{"role":"assistant","content":null,"tool_calls":` + string(callJSON) +
		`},{"role":"tool","tool_call_id":"` + call.ID + `","content":"18 C and cloudy"}`
	for _, withTools := range []bool{true, false} {
		body := `{"messages":[` + history + `]}`
		if withTools {
			body = `{"messages":[` + history + `],` + tools + `}`
		}
		c, err := p.converse(t.Context(), chatReq(t, bedrocktest.ModelNovaMicro, body))
		if err != nil {
			t.Fatalf("tools=%v: %v", withTools, err)
		}
		if got := *c.Choices[0].Message.Content; got != "The tool returned: 18 C and cloudy" {
			t.Errorf("tools=%v: answer = %q", withTools, got)
		}
	}
}

func TestConverseErrors(t *testing.T) {
	p, double := converseProvider(t, bedrocktest.Options{})
	_, err := p.converse(t.Context(), chatReq(t, "no.such-model", `{"messages":[{"role":"user","content":"hi"}]}`))
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.StatusCode != 400 || pe.Code != "ValidationException" || pe.Provider != "bedrock" {
		t.Errorf("unknown model: %#v", err)
	}
	double.Throttle(1)
	_, err = p.converse(t.Context(), chatReq(t, bedrocktest.ModelNovaMicro, `{"messages":[{"role":"user","content":"hi"}]}`))
	if !errors.As(err, &pe) || pe.StatusCode != 429 {
		t.Errorf("throttled: %#v", err)
	}
	_, err = p.converse(t.Context(), chatReq(t, bedrocktest.ModelNovaMicro, `{"messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"http://x/y.png"}}]}]}`))
	if !errors.As(err, &pe) || pe.StatusCode != 400 || pe.Provider != "bedrock" || !strings.Contains(pe.Param, "image_url") {
		t.Errorf("image link: %#v", err)
	}
	bad, err := New("bedrock", &config.BedrockConfig{APIKey: "wrong", BaseURL: double.URL()}, Options{LookupEnv: envOf()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.converse(t.Context(), chatReq(t, bedrocktest.ModelNovaMicro, `{"messages":[{"role":"user","content":"hi"}]}`))
	if !errors.As(err, &pe) || pe.StatusCode != 401 || pe.Code != "invalid_api_key" {
		t.Errorf("bad key: %#v", err)
	}
	unreachable, err := New("bedrock", &config.BedrockConfig{APIKey: "k", BaseURL: "http://127.0.0.1:1"}, Options{LookupEnv: envOf()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = unreachable.converse(t.Context(), chatReq(t, bedrocktest.ModelNovaMicro, `{"messages":[{"role":"user","content":"hi"}]}`))
	if !errors.As(err, &pe) || pe.StatusCode != 502 {
		t.Errorf("unreachable: %#v", err)
	}
}
