package responses

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

const testModel = "bedrock/test-model"

type harness struct {
	e     *Engine
	st    *memStore
	p     *fakeProvider
	prov  provider.Provider // overrides p when set
	owner string            // the caller
}

func newHarness(t *testing.T, script func(n int, req *openai.ChatCompletionRequest) reply) *harness {
	t.Helper()
	st := newMemStore()
	e := New(Options{Records: st})
	t.Cleanup(e.Close)
	return &harness{e: e, st: st, p: &fakeProvider{t: t, script: script}}
}

func (h *harness) target() Target {
	var p provider.Provider = h.p
	if h.prov != nil {
		p = h.prov
	}
	return Target{Provider: p, ProviderID: "bedrock", ProviderModel: "test-model", ClientModel: testModel}
}

// event is a streamed event as the client decodes it.
type event struct {
	Type string
	Raw  map[string]any
}

// create runs a request; body is the JSON of the request. Streamed events
// are returned decoded from their JSON.
func (h *harness) create(t *testing.T, body string) (*Response, []event, error) {
	t.Helper()
	var req CreateRequest
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatalf("bad test body: %v", err)
	}
	run, err := h.e.Prepare(t.Context(), &req, h.target(), h.owner)
	if err != nil {
		return nil, nil, err
	}
	var events []event
	var sink func(Event) error
	if req.Stream {
		sink = func(ev Event) error {
			b, err := json.Marshal(ev)
			if err != nil {
				t.Fatalf("encode event: %v", err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			events = append(events, event{Type: ev.Type, Raw: m})
			return nil
		}
	}
	resp, err := h.e.Start(t.Context(), run, sink)
	return resp, events, err
}

func mustCreate(t *testing.T, h *harness, body string) (*Response, []event) {
	t.Helper()
	resp, events, err := h.create(t, body)
	if err != nil {
		t.Fatalf("create: %v", err)
	}
	return resp, events
}

func textOf(t *testing.T, r *Response) string {
	t.Helper()
	var b strings.Builder
	for _, it := range r.Output {
		if it.Type == TypeMessage {
			for _, p := range it.Content {
				if p.Type == PartOutputText {
					b.WriteString(p.Text)
				}
			}
		}
	}
	return b.String()
}

func types(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Type)
	}
	return out
}

func answer(text string) func(int, *openai.ChatCompletionRequest) reply {
	return func(int, *openai.ChatCompletionRequest) reply { return reply{text: text} }
}

func TestCreateTextAnswer(t *testing.T) {
	h := newHarness(t, func(int, *openai.ChatCompletionRequest) reply {
		return reply{reasoning: "Think first.", text: "Paris is the capital."}
	})
	resp, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"capital of France?","instructions":"be brief","temperature":0.5,"metadata":{"k":"v"}}`)
	if resp.Status != StatusCompleted || resp.Object != "response" || !strings.HasPrefix(resp.ID, "resp_") {
		t.Fatalf("response = %+v", resp)
	}
	if got, want := strings.Join(types(resp.Output), ","), "reasoning,message"; got != want {
		t.Fatalf("output types = %s, want %s", got, want)
	}
	if got := textOf(t, resp); got != "Paris is the capital." {
		t.Errorf("output text = %q", got)
	}
	if got := resp.Output[0].Content[0].Text; got != "Think first." {
		t.Errorf("reasoning = %q", got)
	}
	if resp.Model != testModel || resp.Temperature != 0.5 || resp.Metadata["k"] != "v" || derefStr(resp.Instructions) != "be brief" || !resp.Store {
		t.Errorf("request fields not echoed: %+v", resp)
	}
	if resp.Usage == nil || resp.Usage.InputTokens != 10 || resp.Usage.TotalTokens != resp.Usage.InputTokens+resp.Usage.OutputTokens || resp.CompletedAt == nil {
		t.Errorf("usage = %+v, completed_at = %v", resp.Usage, resp.CompletedAt)
	}
	reqs := h.p.requests()
	if len(reqs) != 1 {
		t.Fatalf("%d upstream calls", len(reqs))
	}
	msgs := reqs[0].Messages
	if len(msgs) != 2 || msgs[0].Role != "system" || string(msgs[0].Content) != `"be brief"` || msgs[1].Role != "user" || string(msgs[1].Content) != `"capital of France?"` {
		t.Errorf("upstream messages = %+v", msgs)
	}
	if reqs[0].Model != testModel || reqs[0].Stream || reqs[0].Tools != nil {
		t.Errorf("upstream request = %+v", reqs[0])
	}
	got, err := h.e.GetResponse(t.Context(), resp.ID, "")
	if err != nil {
		t.Fatal(err)
	}
	if a, b := mustJSON(t, got), mustJSON(t, resp); a != b {
		t.Errorf("stored response differs:\n%s\n%s", a, b)
	}
	items, err := h.e.InputItems(t.Context(), resp.ID, ListParams{}, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(items.Data) != 1 || items.Data[0].Role != "user" || !strings.HasPrefix(items.Data[0].ID, "msg_") || items.Data[0].Content[0].Text != "capital of France?" {
		t.Errorf("input items = %s", mustJSON(t, items))
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStreamEvents(t *testing.T) {
	h := newHarness(t, func(int, *openai.ChatCompletionRequest) reply {
		return reply{reasoning: "Let me think about it.", text: "The answer is forty two."}
	})
	resp, events := mustCreate(t, h, `{"model":"`+testModel+`","input":"question","stream":true}`)
	if len(events) < 6 {
		t.Fatalf("%d events", len(events))
	}
	for i, ev := range events {
		if got := int(ev.Raw["sequence_number"].(float64)); got != i {
			t.Fatalf("event %d (%s) has sequence_number %d", i, ev.Type, got)
		}
	}
	want := []string{"response.created", "response.in_progress",
		"response.output_item.added", "response.content_part.added", "response.reasoning_text.delta"}
	for i, w := range want {
		if events[i].Type != w {
			t.Fatalf("event %d = %s, want %s (all: %v)", i, events[i].Type, w, evTypes(events))
		}
	}
	terminal := 0
	var text, reasoning strings.Builder
	var doneText string
	for _, ev := range events {
		switch ev.Type {
		case "response.completed", "response.failed", "response.incomplete":
			terminal++
		case "response.output_text.delta":
			text.WriteString(ev.Raw["delta"].(string))
			if _, ok := ev.Raw["logprobs"]; !ok {
				t.Errorf("output_text.delta without logprobs: %v", ev.Raw)
			}
		case "response.reasoning_text.delta":
			reasoning.WriteString(ev.Raw["delta"].(string))
		case "response.output_text.done":
			doneText = ev.Raw["text"].(string)
		}
	}
	if last := events[len(events)-1]; last.Type != "response.completed" || terminal != 1 {
		t.Fatalf("last event %s, %d terminal events", last.Type, terminal)
	}
	if text.String() != "The answer is forty two." || doneText != text.String() || reasoning.String() != "Let me think about it." {
		t.Errorf("deltas %q / done %q / reasoning %q", text.String(), doneText, reasoning.String())
	}
	created := events[0].Raw["response"].(map[string]any)
	if created["status"] != "in_progress" || created["id"] != resp.ID || len(created["output"].([]any)) != 0 {
		t.Errorf("created = %v", created)
	}
	final := events[len(events)-1].Raw["response"].(map[string]any)
	if final["status"] != "completed" || len(final["output"].([]any)) != 2 {
		t.Errorf("completed = %v", final)
	}
	// The stored response is there before the terminal event is handed out.
	if _, err := h.e.GetResponse(t.Context(), resp.ID, ""); err != nil {
		t.Errorf("stored: %v", err)
	}
	if r := h.p.requests()[0]; !r.Stream {
		t.Errorf("upstream not streamed")
	}
	// Items open and close in order: each output_item.done follows its added.
	open := map[float64]bool{}
	for _, ev := range events {
		switch ev.Type {
		case "response.output_item.added":
			open[ev.Raw["output_index"].(float64)] = true
		case "response.output_item.done":
			idx := ev.Raw["output_index"].(float64)
			if !open[idx] {
				t.Errorf("done before added for index %v", idx)
			}
			delete(open, idx)
		}
	}
	if len(open) != 0 {
		t.Errorf("items never done: %v", open)
	}
}

func evTypes(events []event) []string {
	var out []string
	for _, e := range events {
		out = append(out, e.Type)
	}
	return out
}

var weatherTool = `{"type":"function","name":"get_weather","description":"weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}`

func TestFunctionCallTwoTurns(t *testing.T) {
	h := newHarness(t, func(n int, req *openai.ChatCompletionRequest) reply {
		if n == 0 {
			return reply{calls: []openai.ToolCall{{ID: "call_0", Type: "function", Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}}}}
		}
		return reply{text: "It is sunny."}
	})
	r1, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"weather in Paris?","tools":[`+weatherTool+`]}`)
	if len(r1.Output) != 1 || r1.Output[0].Type != TypeFunctionCall {
		t.Fatalf("turn 1 output = %s", mustJSON(t, r1.Output))
	}
	fc := r1.Output[0]
	if fc.Name != "get_weather" || fc.Arguments != `{"city":"Paris"}` || fc.CallID != "call_0" || fc.Status != StatusCompleted || !strings.HasPrefix(fc.ID, "fc_") {
		t.Fatalf("function call = %+v", fc)
	}
	if r1.Status != StatusCompleted {
		t.Errorf("status %s", r1.Status)
	}
	// Turn 2 sends the call and its output, and no tools.
	r2, _ := mustCreate(t, h, `{"model":"`+testModel+`","previous_response_id":"`+r1.ID+`","input":[{"type":"function_call_output","call_id":"call_0","output":"{\"temp\":21}"}]}`)
	if textOf(t, r2) != "It is sunny." || derefStr(r2.PreviousResponseID) != r1.ID {
		t.Fatalf("turn 2 = %s", mustJSON(t, r2))
	}
	msgs := h.p.requests()[1].Messages
	if len(msgs) != 3 || msgs[1].Role != "assistant" || len(msgs[1].ToolCalls) != 1 || msgs[1].ToolCalls[0].ID != "call_0" ||
		msgs[2].Role != "tool" || msgs[2].ToolCallID != "call_0" || string(msgs[2].Content) != `"{\"temp\":21}"` {
		t.Errorf("turn 2 messages = %s", mustJSON(t, msgs))
	}
	if h.p.requests()[1].Tools != nil {
		t.Errorf("turn 2 sent tools")
	}
}

func TestCallIDsUniqueAcrossTurns(t *testing.T) {
	// The upstream reuses call_0 every turn, as Bedrock models do.
	h := newHarness(t, func(n int, req *openai.ChatCompletionRequest) reply {
		if n < 2 {
			return reply{calls: []openai.ToolCall{{ID: "call_0", Type: "function", Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"city":"X"}`}}}}
		}
		return reply{text: "done"}
	})
	r1, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"go","tools":[`+weatherTool+`]}`)
	id1 := r1.Output[0].CallID
	r2, _ := mustCreate(t, h, `{"model":"`+testModel+`","previous_response_id":"`+r1.ID+`","tools":[`+weatherTool+`],"input":[{"type":"function_call_output","call_id":"`+id1+`","output":"one"}]}`)
	id2 := r2.Output[0].CallID
	if id1 == id2 || id2 == "" {
		t.Fatalf("call ids %q and %q are not unique", id1, id2)
	}
	mustCreate(t, h, `{"model":"`+testModel+`","previous_response_id":"`+r2.ID+`","input":[{"type":"function_call_output","call_id":"`+id2+`","output":"two"}]}`)
	msgs := h.p.requests()[2].Messages
	seen := map[string]bool{}
	results := map[string]string{}
	for _, m := range msgs {
		for _, tc := range m.ToolCalls {
			if seen[tc.ID] {
				t.Errorf("call id %s sent twice", tc.ID)
			}
			seen[tc.ID] = true
		}
		if m.Role == "tool" {
			results[m.ToolCallID] = string(m.Content)
		}
	}
	if results[id1] != `"one"` || results[id2] != `"two"` {
		t.Errorf("tool results = %v", results)
	}
}

func TestStitchRenamesDuplicateCallIDs(t *testing.T) {
	// A client-held history in which two calls share an id.
	h := newHarness(t, answer("ok"))
	input := `[{"role":"user","content":"a"},
		{"type":"function_call","call_id":"call_0","name":"f","arguments":"{}"},
		{"type":"function_call_output","call_id":"call_0","output":"first"},
		{"type":"function_call","call_id":"call_0","name":"f","arguments":"{}"},
		{"type":"function_call_output","call_id":"call_0","output":"second"}]`
	mustCreate(t, h, `{"model":"`+testModel+`","input":`+input+`,"store":false}`)
	msgs := h.p.requests()[0].Messages
	if len(msgs) != 5 {
		t.Fatalf("messages = %s", mustJSON(t, msgs))
	}
	a, b := msgs[1].ToolCalls[0].ID, msgs[3].ToolCalls[0].ID
	if a == b || msgs[2].ToolCallID != a || msgs[4].ToolCallID != b {
		t.Errorf("ids: call %s result %s, call %s result %s", a, msgs[2].ToolCallID, b, msgs[4].ToolCallID)
	}
}

func TestParallelFunctionCalls(t *testing.T) {
	for _, stream := range []bool{false, true} {
		h := newHarness(t, func(n int, req *openai.ChatCompletionRequest) reply {
			return reply{calls: []openai.ToolCall{
				{ID: "a", Type: "function", Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"city":"Paris"}`}},
				{ID: "b", Type: "function", Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"city":"Rome"}`}},
			}}
		})
		resp, events := mustCreate(t, h, `{"model":"`+testModel+`","input":"both","stream":`+boolJSON(stream)+`,"parallel_tool_calls":true,"tools":[`+weatherTool+`]}`)
		if got := strings.Join(types(resp.Output), ","); got != "function_call,function_call" {
			t.Fatalf("stream=%v output = %s", stream, got)
		}
		if resp.Output[0].Arguments != `{"city":"Paris"}` || resp.Output[1].Arguments != `{"city":"Rome"}` || resp.Output[0].CallID == resp.Output[1].CallID {
			t.Errorf("calls = %s", mustJSON(t, resp.Output))
		}
		if p := h.p.requests()[0].ParallelToolCalls; p == nil || !*p {
			t.Errorf("parallel_tool_calls not forwarded")
		}
		if stream {
			args := map[float64]string{}
			for _, ev := range events {
				if ev.Type == "response.function_call_arguments.delta" {
					args[ev.Raw["output_index"].(float64)] += ev.Raw["delta"].(string)
				}
			}
			if args[0] != `{"city":"Paris"}` || args[1] != `{"city":"Rome"}` {
				t.Errorf("argument deltas = %v", args)
			}
		}
	}
}

func boolJSON(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

func TestMaxOutputTokensIncomplete(t *testing.T) {
	for _, stream := range []bool{false, true} {
		h := newHarness(t, func(n int, req *openai.ChatCompletionRequest) reply {
			if req.MaxCompletionTokens == nil || *req.MaxCompletionTokens != 20 {
				t.Errorf("max_completion_tokens = %v", req.MaxCompletionTokens)
			}
			return reply{text: "cut off he", finish: "length"}
		})
		resp, events := mustCreate(t, h, `{"model":"`+testModel+`","input":"long story","max_output_tokens":20,"stream":`+boolJSON(stream)+`}`)
		if resp.Status != StatusIncomplete || resp.IncompleteDetails == nil || resp.IncompleteDetails.Reason != "max_output_tokens" || *resp.MaxOutputTokens != 20 {
			t.Fatalf("response = %s", mustJSON(t, resp))
		}
		if resp.Output[0].Status != StatusIncomplete || resp.CompletedAt != nil {
			t.Errorf("message status %s, completed_at %v", resp.Output[0].Status, resp.CompletedAt)
		}
		if stream && events[len(events)-1].Type != "response.incomplete" {
			t.Errorf("last event %s", events[len(events)-1].Type)
		}
	}
}

func TestUpstreamFailure(t *testing.T) {
	throttled := &provider.Error{Provider: "bedrock", StatusCode: http.StatusTooManyRequests, Message: "Too many requests"}
	t.Run("not streamed: the error, nothing stored", func(t *testing.T) {
		h := newHarness(t, func(int, *openai.ChatCompletionRequest) reply { return reply{err: throttled} })
		_, _, err := h.create(t, `{"model":"`+testModel+`","input":"hi"}`)
		var pe *provider.Error
		if !errors.As(err, &pe) || pe.StatusCode != 429 {
			t.Fatalf("err = %v", err)
		}
		if n := h.st.count(store.KindResponse); n != 0 {
			t.Errorf("%d responses stored", n)
		}
	})
	t.Run("mid-stream: response.failed, stored", func(t *testing.T) {
		h := newHarness(t, func(int, *openai.ChatCompletionRequest) reply {
			return reply{text: "partial answer here", err: throttled, failAfter: 2}
		})
		resp, events, err := h.create(t, `{"model":"`+testModel+`","input":"hi","stream":true}`)
		if err != nil {
			t.Fatal(err)
		}
		last := events[len(events)-1]
		if last.Type != "response.failed" || resp.Status != StatusFailed || resp.Error == nil || resp.Error.Code != "rate_limit_exceeded" {
			t.Fatalf("last event %s, response %s", last.Type, mustJSON(t, resp))
		}
		got, err := h.e.GetResponse(t.Context(), resp.ID, "")
		if err != nil || got.Status != StatusFailed {
			t.Errorf("stored = %v, %v", got, err)
		}
		for _, ev := range events {
			if ev.Type == "response.completed" {
				t.Errorf("completed after failure")
			}
		}
	})
}

func TestStoreFalse(t *testing.T) {
	h := newHarness(t, answer("hi"))
	resp, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"x","store":false}`)
	if resp.Store {
		t.Errorf("store echoed true")
	}
	if n := h.st.count(store.KindResponse); n != 0 {
		t.Fatalf("%d responses stored", n)
	}
	_, _, err := h.create(t, `{"model":"`+testModel+`","input":"y","previous_response_id":"`+resp.ID+`"}`)
	var e *Error
	if !errors.As(err, &e) || e.Status != 404 || e.Param != "previous_response_id" {
		t.Errorf("chain from store:false: %v", err)
	}
}

func TestPreviousResponseChain(t *testing.T) {
	h := newHarness(t, func(n int, req *openai.ChatCompletionRequest) reply {
		return reply{text: "answer " + string(rune('A'+n))}
	})
	r1, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"one","instructions":"sys1"}`)
	r2, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"two","previous_response_id":"`+r1.ID+`"}`)
	mustCreate(t, h, `{"model":"`+testModel+`","input":"three","previous_response_id":"`+r2.ID+`","instructions":"sys3"}`)
	msgs := h.p.requests()[2].Messages
	var got []string
	for _, m := range msgs {
		got = append(got, m.Role+":"+strings.Trim(string(m.Content), `"`))
	}
	want := "system:sys3|user:one|assistant:answer A|user:two|assistant:answer B|user:three"
	if strings.Join(got, "|") != want {
		t.Errorf("messages = %s, want %s", strings.Join(got, "|"), want)
	}
	// Input items of a chained response are its own.
	items, err := h.e.InputItems(t.Context(), r2.ID, ListParams{}, "")
	if err != nil || len(items.Data) != 1 || items.Data[0].Content[0].Text != "two" {
		t.Errorf("input items = %v, %v", items, err)
	}
}

func TestBadRequests(t *testing.T) {
	h := newHarness(t, answer("x"))
	tests := []struct {
		name, body, param, msg string
		status                 int
	}{
		{"no input", `{"model":"m"}`, "input", "required", 400},
		{"input number", `{"model":"m","input":5}`, "input", "string or an array", 400},
		{"web_search tool", `{"model":"m","input":"x","tools":[{"type":"web_search"}]}`, "tools[0].type", "'web_search' is not supported", 400},
		{"file_search tool", `{"model":"m","input":"x","tools":[{"type":"file_search","vector_store_ids":["v"]}]}`, "tools[0].type", "'file_search'", 400},
		{"unknown tool", `{"model":"m","input":"x","tools":[{"type":"teleport"}]}`, "tools[0].type", "unknown tool type 'teleport'", 400},
		{"unknown item", `{"model":"m","input":[{"type":"hologram"}]}`, "input[0].type", "unknown item type 'hologram'", 400},
		{"unsupported item", `{"model":"m","input":[{"type":"computer_call_output"}]}`, "input[0].type", "'computer_call_output' is not supported", 400},
		{"bad role", `{"model":"m","input":[{"role":"robot","content":"x"}]}`, "input[0].role", "must be one of", 400},
		{"both chains", `{"model":"m","input":"x","previous_response_id":"resp_1","conversation":"conv_1"}`, "conversation", "cannot be used together", 400},
		{"temperature", `{"model":"m","input":"x","temperature":3}`, "temperature", "between 0 and 2", 400},
		{"max_output_tokens", `{"model":"m","input":"x","max_output_tokens":0}`, "max_output_tokens", "at least 1", 400},
		{"unknown previous", `{"model":"m","input":"x","previous_response_id":"resp_nope"}`, "previous_response_id", "not found", 404},
		{"unknown conversation", `{"model":"m","input":"x","conversation":"conv_nope"}`, "conversation", "not found", 404},
		{"json_schema without schema", `{"model":"m","input":"x","text":{"format":{"type":"json_schema","name":"n"}}}`, "text.format.schema", "schema", 400},
		{"tool_choice unknown function", `{"model":"m","input":"x","tools":[` + weatherTool + `],"tool_choice":{"type":"function","name":"nope"}}`, "tool_choice.name", "not among the tools", 400},
		{"mcp without url", `{"model":"m","input":"x","tools":[{"type":"mcp","server_label":"s"}]}`, "tools[0].server_url", "required", 400},
		{"approval without request", `{"model":"m","input":[{"type":"mcp_approval_response","approval_request_id":"mcpr_1","approve":true}]}`, "input[0].approval_request_id", "no mcp_approval_request", 400},
		{"metadata too long", `{"model":"m","input":"x","metadata":{"k":"` + strings.Repeat("v", 513) + `"}}`, "metadata", "512", 400},
		{"background without store", `{"model":"m","input":"x","background":true,"store":false}`, "background", "stored", 400},
		{"prompt", `{"model":"m","input":"x","prompt":{"id":"p"}}`, "prompt", "not supported", 400},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := h.create(t, tt.body)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v", err)
			}
			if e.Status != tt.status || e.Param != tt.param || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("got %d %q %q; want %d %q containing %q", e.Status, e.Param, e.Message, tt.status, tt.param, tt.msg)
			}
		})
	}
	if n := len(h.p.requests()); n != 0 {
		t.Errorf("bad requests reached the model %d times", n)
	}
}

func TestStorageOff(t *testing.T) {
	e := New(Options{})
	defer e.Close()
	p := &fakeProvider{t: t, script: answer("hi")}
	tg := Target{Provider: p, ClientModel: testModel}
	// Without storage a create works and says store: false.
	run, err := e.Prepare(t.Context(), &CreateRequest{Model: testModel, Input: json.RawMessage(`"x"`)}, tg, "")
	if err != nil {
		t.Fatal(err)
	}
	resp, err := e.Start(t.Context(), run, nil)
	if err != nil || resp.Store || textOf(t, resp) != "hi" {
		t.Fatalf("resp %v err %v", resp, err)
	}
	checks := []func() error{
		func() error {
			_, err := e.Prepare(t.Context(), &CreateRequest{Model: testModel, Input: json.RawMessage(`"x"`), Store: new(true)}, tg, "")
			return err
		},
		func() error { _, err := e.GetResponse(t.Context(), "resp_x", ""); return err },
		func() error { _, err := e.ListResponses(t.Context(), ListParams{}, ""); return err },
		func() error { _, err := e.CreateConversation(t.Context(), nil, nil, ""); return err },
	}
	for i, c := range checks {
		err := c()
		var re *Error
		if !errors.As(err, &re) || !errors.Is(err, ErrStorageOff) || re.Status != 400 || !strings.Contains(re.Message, "storage is switched off") {
			t.Errorf("check %d: %v", i, err)
		}
	}
}

func TestTextFormatReasoningAndChoice(t *testing.T) {
	h := newHarness(t, answer(`{"a":1}`))
	resp, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"x","text":{"format":{"type":"json_schema","name":"obj","schema":{"type":"object"},"strict":true}},
		"reasoning":{"effort":"low"},"tools":[`+weatherTool+`],"tool_choice":{"type":"function","name":"get_weather"},"top_p":0.9,"max_tool_calls":3,"truncation":"auto","user":"u1"}`)
	req := h.p.requests()[0]
	var rf map[string]any
	if err := json.Unmarshal(req.ResponseFormat, &rf); err != nil || rf["type"] != "json_schema" || rf["json_schema"].(map[string]any)["name"] != "obj" {
		t.Errorf("response_format = %s", req.ResponseFormat)
	}
	if req.ReasoningEffort != "low" || string(req.ToolChoice) != `{"function":{"name":"get_weather"},"type":"function"}` || *req.TopP != 0.9 {
		t.Errorf("request = %s", mustJSON(t, req))
	}
	if resp.Text.Format.Type != "json_schema" || derefStr(resp.Reasoning.Effort) != "low" || string(resp.ToolChoice) != `{"type":"function","name":"get_weather"}` ||
		resp.TopP != 0.9 || *resp.MaxToolCalls != 3 || resp.Truncation != "auto" || derefStr(resp.User) != "u1" || len(resp.Tools) != 1 {
		t.Errorf("echo = %s", mustJSON(t, resp))
	}
}

func TestReasoningItemsRoundTrip(t *testing.T) {
	h := newHarness(t, func(int, *openai.ChatCompletionRequest) reply { return reply{reasoning: "hmm", text: "ok"} })
	input := `[{"role":"user","content":"a"},{"type":"reasoning","id":"rs_1","summary":[],"content":[{"type":"reasoning_text","text":"earlier thought"}]},
		{"type":"message","role":"assistant","content":[{"type":"output_text","text":"earlier answer"}]},{"role":"user","content":"b"}]`
	mustCreate(t, h, `{"model":"`+testModel+`","input":`+input+`}`)
	msgs := h.p.requests()[0].Messages
	if len(msgs) != 3 || msgs[1].Role != "assistant" || derefStr(msgs[1].ReasoningContent) != "earlier thought" || string(msgs[1].Content) != `"earlier answer"` {
		t.Errorf("messages = %s", mustJSON(t, msgs))
	}
}

func TestListAndDeleteResponses(t *testing.T) {
	h := newHarness(t, answer("x"))
	var ids []string
	for range 5 {
		r, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"x"}`)
		ids = append(ids, r.ID)
	}
	page, err := h.e.ListResponses(t.Context(), ListParams{Limit: 2, Order: "asc"}, "")
	if err != nil || len(page.Data) != 2 || !page.HasMore || page.Data[0].ID != ids[0] || len(page.Data[0].Input) != 1 {
		t.Fatalf("page = %s, %v", mustJSON(t, page), err)
	}
	page2, err := h.e.ListResponses(t.Context(), ListParams{Limit: 10, Order: "asc", After: *page.LastID}, "")
	if err != nil || len(page2.Data) != 3 || page2.HasMore {
		t.Fatalf("page 2 = %v, %v", page2, err)
	}
	if _, err := h.e.ListResponses(t.Context(), ListParams{Model: "other"}, ""); err != nil {
		t.Fatal(err)
	}
	d, err := h.e.DeleteResponse(t.Context(), ids[0], "")
	if err != nil || !d.Deleted || d.ID != ids[0] {
		t.Fatalf("delete = %v, %v", d, err)
	}
	if _, err := h.e.GetResponse(t.Context(), ids[0], ""); err == nil {
		t.Errorf("deleted response still there")
	}
	// Records with an owner are that owner's; records without are
	// everyone's, as for stored chat completions.
	if _, err := h.e.GetResponse(t.Context(), ids[1], "someone-else"); err != nil {
		t.Errorf("an unowned response is not readable: %v", err)
	}
	h.owner = "alice"
	mine, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"x"}`)
	if _, err := h.e.GetResponse(t.Context(), mine.ID, "bob"); err == nil {
		t.Errorf("bob read alice's response")
	}
	if _, err := h.e.GetResponse(t.Context(), mine.ID, "alice"); err != nil {
		t.Errorf("alice cannot read her response: %v", err)
	}
	if _, _, err := h.create(t, `{"model":"`+testModel+`","input":"x","previous_response_id":"`+mine.ID+`"}`); err != nil {
		t.Errorf("alice cannot chain from her response: %v", err)
	}
	h.owner = "bob"
	if _, _, err := h.create(t, `{"model":"`+testModel+`","input":"x","previous_response_id":"`+mine.ID+`"}`); err == nil {
		t.Errorf("bob chained from alice's response")
	}
	if page, _ := h.e.ListResponses(t.Context(), ListParams{Limit: 100}, "bob"); len(page.Data) != 0 {
		t.Errorf("bob lists %d responses", len(page.Data))
	}
}

func TestBackgroundAndCancel(t *testing.T) {
	release := make(chan struct{})
	h := newHarness(t, answer("late"))
	h.p.script = func(n int, req *openai.ChatCompletionRequest) reply {
		if n == 0 {
			<-release
		}
		return reply{text: "late"}
	}
	// A background response is queued at once and completes later.
	resp, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"x","background":true}`)
	if resp.Status != StatusQueued || !resp.Background {
		t.Fatalf("status %s", resp.Status)
	}
	close(release)
	got := waitStatus(t, h.e, resp.ID, StatusCompleted)
	if textOf(t, got) != "late" {
		t.Errorf("output %s", mustJSON(t, got.Output))
	}
	if _, err := h.e.CancelResponse(t.Context(), resp.ID, ""); err == nil {
		t.Errorf("cancelled a completed response")
	}

	// Cancel stops a running one.
	block := make(chan struct{})
	h2 := newHarness(t, nil)
	h2.prov = &blockingProvider{fakeProvider: fakeProvider{t: t, script: answer("never")}, started: block}
	resp2, _ := mustCreate(t, h2, `{"model":"`+testModel+`","input":"x","background":true}`)
	<-block
	c, err := h2.e.CancelResponse(t.Context(), resp2.ID, "")
	if err != nil || c.Status != StatusCancelled {
		t.Fatalf("cancel = %v, %v", c, err)
	}
	waitStatus(t, h2.e, resp2.ID, StatusCancelled)
	if c, err := h2.e.CancelResponse(t.Context(), resp2.ID, ""); err != nil || c.Status != StatusCancelled {
		t.Errorf("second cancel = %v, %v", c, err)
	}
	// A foreground response cannot be cancelled.
	fg, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"x"}`)
	if _, err := h.e.CancelResponse(t.Context(), fg.ID, ""); err == nil || !strings.Contains(err.Error(), "synchronous") {
		t.Errorf("cancel foreground: %v", err)
	}
}

// blockingProvider blocks each call until its context ends.
type blockingProvider struct {
	fakeProvider
	started chan struct{}
}

func (p *blockingProvider) Chat(ctx context.Context, req *provider.Request) (*openai.ChatCompletion, error) {
	close(p.started)
	<-ctx.Done()
	return nil, ctx.Err()
}

func waitStatus(t *testing.T, e *Engine, id, status string) *Response {
	t.Helper()
	for range 2000 {
		r, err := e.GetResponse(t.Context(), id, "")
		if err != nil {
			t.Fatal(err)
		}
		if r.Status == status {
			return r
		}
		switch r.Status {
		case StatusQueued, StatusInProgress:
		default:
			t.Fatalf("status %s, want %s", r.Status, status)
		}
		waitABit(t)
	}
	t.Fatalf("response %s never reached %s", id, status)
	return nil
}

func TestBackgroundStreamOutlivesClient(t *testing.T) {
	h := newHarness(t, answer("finished anyway"))
	var req CreateRequest
	if err := json.Unmarshal([]byte(`{"model":"`+testModel+`","input":"x","background":true,"stream":true}`), &req); err != nil {
		t.Fatal(err)
	}
	run, err := h.e.Prepare(t.Context(), &req, h.target(), "")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	sink := func(ev Event) error {
		if len(got) == 2 {
			return errors.New("client gone")
		}
		got = append(got, ev.Type)
		return nil
	}
	resp, err := h.e.Start(t.Context(), run, sink)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Status != StatusCompleted || textOf(t, resp) != "finished anyway" {
		t.Fatalf("response = %s", mustJSON(t, resp))
	}
	if strings.Join(got, ",") != "response.created,response.in_progress" {
		t.Errorf("events before the client left: %v", got)
	}
	stored, err := h.e.GetResponse(t.Context(), resp.ID, "")
	if err != nil || stored.Status != StatusCompleted {
		t.Errorf("stored = %v, %v", stored, err)
	}
}

func TestForegroundStreamClientGone(t *testing.T) {
	h := newHarness(t, answer("a b c d e f"))
	var req CreateRequest
	if err := json.Unmarshal([]byte(`{"model":"`+testModel+`","input":"x","stream":true}`), &req); err != nil {
		t.Fatal(err)
	}
	run, err := h.e.Prepare(t.Context(), &req, h.target(), "")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	_, err = h.e.Start(t.Context(), run, func(Event) error {
		n++
		if n > 4 {
			return errors.New("broken pipe")
		}
		return nil
	})
	if !errors.Is(err, errClientGone) {
		t.Fatalf("err = %v", err)
	}
	if c := h.st.count(store.KindResponse); c != 0 {
		t.Errorf("%d responses stored for a stream the client left", c)
	}
}

func TestCloseEndsBackgroundResponses(t *testing.T) {
	block := make(chan struct{})
	h := newHarness(t, nil)
	h.prov = &blockingProvider{fakeProvider: fakeProvider{t: t, script: answer("never")}, started: block}
	resp, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"x","background":true}`)
	<-block
	h.e.Close() // waits for the run to record its end
	got, err := h.e.GetResponse(t.Context(), resp.ID, "")
	if err != nil || got.Status != StatusFailed || got.Error == nil || !strings.Contains(got.Error.Message, "shut down") {
		t.Fatalf("after Close: %s, %v", mustJSON(t, got), err)
	}
}

func TestEmptyAnswerLeftOutOfHistory(t *testing.T) {
	h := newHarness(t, func(n int, req *openai.ChatCompletionRequest) reply {
		if n == 0 {
			return reply{reasoning: "nothing to say"}
		}
		return reply{text: "now something"}
	})
	r1, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"a"}`)
	if got := strings.Join(types(r1.Output), ","); got != "reasoning,message" || textOf(t, r1) != "" {
		t.Fatalf("turn 1 = %s", mustJSON(t, r1.Output))
	}
	mustCreate(t, h, `{"model":"`+testModel+`","input":"b","previous_response_id":"`+r1.ID+`"}`)
	msgs := h.p.requests()[1].Messages
	if len(msgs) != 2 || msgs[0].Role != "user" || msgs[1].Role != "user" {
		t.Errorf("messages = %s", mustJSON(t, msgs))
	}
}
