package responses

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/responses/mcp/mcptest"
)

func addTool(args map[string]any) (string, bool) {
	a, _ := args["a"].(float64)
	b, _ := args["b"].(float64)
	return strconv.FormatFloat(a+b, 'f', -1, 64), false
}

// toolUser calls the named tool once, then answers with the tool's result.
func toolUser(name, args string) func(int, *openai.ChatCompletionRequest) reply {
	return func(n int, req *openai.ChatCompletionRequest) reply {
		last := req.Messages[len(req.Messages)-1]
		if last.Role == "tool" {
			var s string
			_ = json.Unmarshal(last.Content, &s)
			return reply{text: "Result: " + s}
		}
		for _, t := range req.Tools {
			if t.Function.Name == name {
				return reply{calls: []openai.ToolCall{{ID: "call_0", Type: "function", Function: openai.FunctionCall{Name: name, Arguments: args}}}}
			}
		}
		return reply{text: "no tool"}
	}
}

func mcpTool(url, extra string) string {
	return `{"type":"mcp","server_label":"calc","server_url":"` + url + `","headers":{"Authorization":"Bearer secret-token"}` + extra + `}`
}

func TestMCPWithoutApproval(t *testing.T) {
	for _, stream := range []bool{false, true} {
		srv := mcptest.New(t, mcptest.Options{SSE: stream, Header: "Authorization", Value: "Bearer secret-token",
			Tools: []mcptest.Tool{{Name: "add", Description: "adds two numbers", Handle: addTool}, {Name: "hidden"}}})
		h := newHarness(t, toolUser("add", `{"a":2,"b":40}`))
		body := `{"model":"` + testModel + `","input":"add 2 and 40","stream":` + boolJSON(stream) + `,"tools":[` + mcpTool(srv.URL(), `,"require_approval":"never","allowed_tools":["add"]`) + `]}`
		resp, events := mustCreate(t, h, body)
		if got := strings.Join(types(resp.Output), ","); got != "mcp_list_tools,mcp_call,message" {
			t.Fatalf("stream=%v output = %s", stream, got)
		}
		list, call := resp.Output[0], resp.Output[1]
		if len(list.Tools) != 1 || list.Tools[0].Name != "add" || derefStr(list.Tools[0].Description) != "adds two numbers" {
			t.Errorf("listed = %s", mustJSON(t, list))
		}
		if call.Name != "add" || call.ServerLabel != "calc" || string(call.Output) != `"42"` || call.Error != nil || call.Status != StatusCompleted {
			t.Errorf("call = %s", mustJSON(t, call))
		}
		if textOf(t, resp) != "Result: 42" || resp.Status != StatusCompleted {
			t.Errorf("answer = %q", textOf(t, resp))
		}
		if calls := srv.Calls(); len(calls) != 1 || calls[0].Arguments["a"] != 2.0 {
			t.Errorf("server calls = %+v", calls)
		}
		if echoed := mustJSON(t, resp.Tools); strings.Contains(echoed, "secret-token") || !strings.Contains(echoed, `"server_label":"calc"`) {
			t.Errorf("tools echo = %s", echoed)
		}
		reqs := h.p.requests()
		if len(reqs) != 2 || len(reqs[0].Tools) != 1 || reqs[0].Tools[0].Function.Name != "add" {
			t.Fatalf("upstream calls = %s", mustJSON(t, reqs))
		}
		msgs := reqs[1].Messages
		if n := len(msgs); msgs[n-2].Role != "assistant" || msgs[n-2].ToolCalls[0].ID != call.ID || msgs[n-1].ToolCallID != call.ID {
			t.Errorf("turn 2 messages = %s", mustJSON(t, msgs))
		}
		if stream {
			want := []string{"response.output_item.added", "response.mcp_list_tools.in_progress", "response.mcp_list_tools.completed", "response.output_item.done",
				"response.output_item.added", "response.mcp_call.in_progress", "response.mcp_call_arguments.delta"}
			got := evTypes(events)[2:]
			if strings.Join(got[:len(want)], ",") != strings.Join(want, ",") {
				t.Errorf("events = %v", got)
			}
			if !containsInOrder(evTypes(events), "response.mcp_call_arguments.done", "response.mcp_call.completed", "response.output_item.done", "response.completed") {
				t.Errorf("events = %v", evTypes(events))
			}
		}
	}
}

func containsInOrder(list []string, want ...string) bool {
	i := 0
	for _, s := range list {
		if i < len(want) && s == want[i] {
			i++
		}
	}
	return i == len(want)
}

func TestMCPApproval(t *testing.T) {
	srv := mcptest.New(t, mcptest.Options{Tools: []mcptest.Tool{{Name: "add", Handle: addTool}}})
	h := newHarness(t, toolUser("add", `{"a":1,"b":2}`))
	tool := mcpTool(srv.URL(), "") // require_approval defaults to always
	r1, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"add","tools":[`+tool+`]}`)
	if got := strings.Join(types(r1.Output), ","); got != "mcp_list_tools,mcp_approval_request" {
		t.Fatalf("output = %s", got)
	}
	areq := r1.Output[1]
	if areq.Name != "add" || areq.Arguments != `{"a":1,"b":2}` || !strings.HasPrefix(areq.ID, "mcpr_") || len(srv.Calls()) != 0 {
		t.Fatalf("approval request = %s, calls %v", mustJSON(t, areq), srv.Calls())
	}
	// Approve: the call is made and the model answers.
	r2, events := mustCreate(t, h, `{"model":"`+testModel+`","previous_response_id":"`+r1.ID+`","stream":true,"tools":[`+tool+`],
		"input":[{"type":"mcp_approval_response","approval_request_id":"`+areq.ID+`","approve":true}]}`)
	if got := strings.Join(types(r2.Output), ","); got != "mcp_call,message" {
		t.Fatalf("approved output = %s", got)
	}
	if derefStr(r2.Output[0].ApprovalRequestID) != areq.ID || string(r2.Output[0].Output) != `"3"` || textOf(t, r2) != "Result: 3" {
		t.Errorf("approved = %s", mustJSON(t, r2.Output))
	}
	if !containsInOrder(evTypes(events), "response.created", "response.mcp_call.in_progress", "response.mcp_call.completed", "response.completed") {
		t.Errorf("events = %v", evTypes(events))
	}
	// The tools were listed once, in turn 1.
	if n := strings.Count(strings.Join(srv.Methods(), ","), "tools/list"); n != 1 {
		t.Errorf("tools listed %d times", n)
	}

	// Deny: nothing is called and the model hears so.
	h2 := newHarness(t, toolUser("add", `{"a":1,"b":2}`))
	r3, _ := mustCreate(t, h2, `{"model":"`+testModel+`","input":"add","tools":[`+tool+`]}`)
	calls := len(srv.Calls())
	r4, _ := mustCreate(t, h2, `{"model":"`+testModel+`","previous_response_id":"`+r3.ID+`","tools":[`+tool+`],
		"input":[{"type":"mcp_approval_response","approval_request_id":"`+r3.Output[1].ID+`","approve":false}]}`)
	if len(srv.Calls()) != calls || textOf(t, r4) != "Result: "+deniedOutput {
		t.Errorf("denied: calls %d→%d, answer %q", calls, len(srv.Calls()), textOf(t, r4))
	}
}

func TestMCPFailures(t *testing.T) {
	srv := mcptest.New(t, mcptest.Options{FailList: true})
	h := newHarness(t, answer("x"))
	_, _, err := h.create(t, `{"model":"`+testModel+`","input":"x","tools":[`+mcpTool(srv.URL(), "")+`]}`)
	if err == nil || !strings.Contains(err.Error(), "could not list the tools of MCP server 'calc'") || strings.Contains(err.Error(), srv.URL()) {
		t.Errorf("list failure (not streamed): %v", err)
	}
	resp, events, err := h.create(t, `{"model":"`+testModel+`","input":"x","stream":true,"tools":[`+mcpTool(srv.URL(), "")+`]}`)
	if err != nil || resp.Status != StatusFailed || events[len(events)-1].Type != "response.failed" || resp.Output[0].Error == nil {
		t.Errorf("list failure (streamed): %v %s", err, mustJSON(t, resp))
	}
	if !containsInOrder(evTypes(events), "response.mcp_list_tools.in_progress", "response.mcp_list_tools.failed", "response.failed") {
		t.Errorf("events = %v", evTypes(events))
	}

	// A tool error becomes the call's error, and the model goes on.
	srv2 := mcptest.New(t, mcptest.Options{Tools: []mcptest.Tool{{Name: "add", Handle: func(map[string]any) (string, bool) { return "division by zero", true }}}})
	h2 := newHarness(t, toolUser("add", `{}`))
	resp, _ = mustCreate(t, h2, `{"model":"`+testModel+`","input":"x","tools":[`+mcpTool(srv2.URL(), `,"require_approval":"never"`)+`]}`)
	call := resp.Output[1]
	if call.Status != StatusFailed || derefStr(call.Error) != "division by zero" || textOf(t, resp) != "Result: Error: division by zero" {
		t.Errorf("tool error: %s", mustJSON(t, resp.Output))
	}
}

func TestMCPMaxToolCalls(t *testing.T) {
	srv := mcptest.New(t, mcptest.Options{Tools: []mcptest.Tool{{Name: "add", Handle: addTool}}})
	// The model would call the tool forever.
	h := newHarness(t, func(n int, req *openai.ChatCompletionRequest) reply {
		if len(req.Tools) == 0 {
			return reply{text: "stopped"}
		}
		return reply{calls: []openai.ToolCall{{ID: "c", Type: "function", Function: openai.FunctionCall{Name: "add", Arguments: `{"a":1,"b":1}`}}}}
	})
	resp, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"x","max_tool_calls":2,"tools":[`+mcpTool(srv.URL(), `,"require_approval":"never"`)+`]}`)
	if n := len(srv.Calls()); n != 2 {
		t.Errorf("%d calls made, want 2", n)
	}
	if textOf(t, resp) != "stopped" || resp.Status != StatusCompleted {
		t.Errorf("output = %s", mustJSON(t, resp.Output))
	}
}

func TestMCPRefusesLinkLocal(t *testing.T) {
	for _, addr := range []string{"169.254.169.254:80", "[fe80::1]:80"} {
		if err := refuseLinkLocal("tcp", addr, nil); err == nil {
			t.Errorf("%s allowed", addr)
		}
	}
	for _, addr := range []string{"127.0.0.1:8080", "10.0.0.1:80", "[::1]:80"} {
		if err := refuseLinkLocal("tcp", addr, nil); err != nil {
			t.Errorf("%s refused: %v", addr, err)
		}
	}
}
