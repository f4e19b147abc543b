package api

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
	"github.com/llama-stack-go/llama-stack-go/internal/responses/mcp/mcptest"
	"github.com/llama-stack-go/llama-stack-go/internal/store"
	"github.com/llama-stack-go/llama-stack-go/internal/store/sqlite"
)

const (
	claudeID  = "us.anthropic.claude-3-7-sonnet-20250219-v1:0"
	claude    = "bedrock/" + claudeID
	gptOss    = "bedrock/" + bedrocktest.ModelGptOss20B
	sqliteDir = "state.db"
)

// respGateway is the API over Bedrock (the double) with SQLite storage.
type respGateway struct {
	URL    string
	double *bedrocktest.Server
	db     store.Records
}

func newRespGateway(t *testing.T, withStore bool) *respGateway {
	t.Helper()
	double := bedrocktest.New(t, bedrocktest.Options{Models: []string{bedrocktest.ModelGptOss20B, claudeID}})
	tr := &http.Transport{}
	t.Cleanup(tr.CloseIdleConnections)
	p, err := bedrock.New("bedrock", &config.BedrockConfig{APIKey: config.Secret(bedrocktest.DefaultKey), BaseURL: double.URL(), RegionName: "us-west-2"},
		bedrock.Options{HTTPClient: &http.Client{Transport: tr}})
	if err != nil {
		t.Fatal(err)
	}
	reg := registry.New(map[string]provider.Provider{"bedrock": p})
	for _, m := range []registry.Model{
		{Identifier: claude, ProviderID: "bedrock", ProviderResourceID: claudeID},
		{Identifier: gptOss, ProviderID: "bedrock", ProviderResourceID: bedrocktest.ModelGptOss20B},
	} {
		if err := reg.Register(m); err != nil {
			t.Fatal(err)
		}
	}
	g := &respGateway{double: double}
	o := Options{Registry: reg, Version: "test"}
	if withStore {
		db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), sqliteDir), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		g.db, o.Records = db, db
	}
	srv := httptest.NewServer(NewHandler(o))
	t.Cleanup(srv.Close)
	g.URL = srv.URL
	return g
}

// rdo sends a JSON request and decodes a JSON answer into out (when not
// nil); it returns the status and the body.
func rdo(t *testing.T, method, url, body string, out any) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && resp.StatusCode == 200 {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
	}
	return resp.StatusCode, b
}

// respObj is the part of a response object the tests read.
type respObj struct {
	ID                 string           `json:"id"`
	Object             string           `json:"object"`
	Status             string           `json:"status"`
	Model              string           `json:"model"`
	Output             []map[string]any `json:"output"`
	PreviousResponseID *string          `json:"previous_response_id"`
	IncompleteDetails  *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Usage *struct {
		InputTokens  int `json:"input_tokens"`
		OutputTokens int `json:"output_tokens"`
		TotalTokens  int `json:"total_tokens"`
	} `json:"usage"`
	Store bool `json:"store"`
}

func (r *respObj) text() string {
	var b strings.Builder
	for _, it := range r.Output {
		if it["type"] != "message" {
			continue
		}
		for _, c := range it["content"].([]any) {
			if p := c.(map[string]any); p["type"] == "output_text" {
				b.WriteString(p["text"].(string))
			}
		}
	}
	return b.String()
}

func (r *respObj) types() string {
	var out []string
	for _, it := range r.Output {
		out = append(out, it["type"].(string))
	}
	return strings.Join(out, ",")
}

// sseFrame is one server-sent event.
type sseFrame struct {
	Event string
	Data  map[string]any
}

// readSSE reads a whole event stream, checking that every frame has an
// event line and a data line whose type matches it.
func readSSE(t *testing.T, r io.Reader) []sseFrame {
	t.Helper()
	var frames []sseFrame
	var ev, data string
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<22)
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			ev = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data = strings.TrimPrefix(line, "data: ")
		case line == "":
			if ev == "" || data == "" {
				t.Fatalf("frame without event or data line: event %q data %q", ev, data)
			}
			var m map[string]any
			if err := json.Unmarshal([]byte(data), &m); err != nil {
				t.Fatalf("data is not JSON: %s", data)
			}
			if m["type"] != ev {
				t.Fatalf("event %q carries type %v", ev, m["type"])
			}
			frames = append(frames, sseFrame{Event: ev, Data: m})
			ev, data = "", ""
		default:
			t.Fatalf("unexpected line %q", line)
		}
	}
	if ev != "" || data != "" {
		t.Fatalf("stream ended inside a frame")
	}
	return frames
}

// stream posts a streamed create and returns its events.
func stream(t *testing.T, url, body string) []sseFrame {
	t.Helper()
	resp, err := http.Post(url+"/v1/responses", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("status %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), b)
	}
	return readSSE(t, resp.Body)
}

const weatherFn = `{"type":"function","name":"get_weather","description":"Current weather","parameters":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}`

// TestResponsesClaudeFunctionCalling is two-turn function calling on
// Claude through Converse: turn 2 carries the function_call and its
// function_call_output, and no tools.
func TestResponsesClaudeFunctionCalling(t *testing.T) {
	g := newRespGateway(t, true)
	var r1 respObj
	status, b := rdo(t, "POST", g.URL+"/v1/responses", `{"model":"`+claude+`","input":"What is the weather in Paris?","tools":[`+weatherFn+`]}`, &r1)
	if status != 200 || r1.types() != "function_call" {
		t.Fatalf("turn 1: %d %s", status, b)
	}
	fc := r1.Output[0]
	if fc["name"] != "get_weather" || fc["arguments"] != `{"city":"Paris"}` || fc["status"] != "completed" || fc["call_id"] == "" {
		t.Fatalf("function call = %v", fc)
	}
	reqs := g.double.Requests()
	if last := reqs[len(reqs)-1]; last.Path != "/model/"+claudeID+"/converse" {
		t.Fatalf("turn 1 went to %s", last.Path)
	}
	fcJSON, _ := json.Marshal(fc)
	for _, tt := range []struct{ name, body string }{
		{"client-held history", `{"model":"` + claude + `","input":[{"role":"user","content":"What is the weather in Paris?"},` + string(fcJSON) +
			`,{"type":"function_call_output","call_id":"` + fc["call_id"].(string) + `","output":"{\"temperature\":21,\"sky\":\"clear\"}"}]}`},
		{"previous_response_id", `{"model":"` + claude + `","previous_response_id":"` + r1.ID + `","input":[{"type":"function_call_output","call_id":"` + fc["call_id"].(string) + `","output":"{\"temperature\":21,\"sky\":\"clear\"}"}]}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var r2 respObj
			status, b := rdo(t, "POST", g.URL+"/v1/responses", tt.body, &r2)
			if status != 200 || r2.Status != "completed" {
				t.Fatalf("turn 2: %d %s", status, b)
			}
			if got := r2.text(); got != `The tool returned: {"temperature":21,"sky":"clear"}` {
				t.Errorf("answer = %q", got)
			}
			reqs := g.double.Requests()
			var cv struct {
				Messages []struct {
					Role    string `json:"role"`
					Content []struct {
						ToolUse *struct {
							ToolUseID string `json:"toolUseId"`
							Name      string `json:"name"`
						} `json:"toolUse"`
						ToolResult *struct {
							ToolUseID string `json:"toolUseId"`
						} `json:"toolResult"`
					} `json:"content"`
				} `json:"messages"`
			}
			if err := json.Unmarshal(reqs[len(reqs)-1].Body, &cv); err != nil {
				t.Fatal(err)
			}
			if len(cv.Messages) != 3 || cv.Messages[1].Content[0].ToolUse == nil || cv.Messages[2].Content[0].ToolResult == nil ||
				cv.Messages[1].Content[0].ToolUse.ToolUseID != cv.Messages[2].Content[0].ToolResult.ToolUseID {
				t.Errorf("converse request = %s", reqs[len(reqs)-1].Body)
			}
		})
	}
}

func TestResponsesStreamGptOss(t *testing.T) {
	g := newRespGateway(t, true)
	frames := stream(t, g.URL, `{"model":"`+gptOss+`","input":"What is the capital of France?","stream":true}`)
	if frames[0].Event != "response.created" || frames[1].Event != "response.in_progress" {
		t.Fatalf("first events %s, %s", frames[0].Event, frames[1].Event)
	}
	var text, reasoning strings.Builder
	terminal := 0
	for i, f := range frames {
		if int(f.Data["sequence_number"].(float64)) != i {
			t.Fatalf("frame %d has sequence_number %v", i, f.Data["sequence_number"])
		}
		switch f.Event {
		case "response.output_text.delta":
			text.WriteString(f.Data["delta"].(string))
		case "response.reasoning_text.delta":
			reasoning.WriteString(f.Data["delta"].(string))
		case "response.completed", "response.failed", "response.incomplete":
			terminal++
		}
	}
	last := frames[len(frames)-1]
	if last.Event != "response.completed" || terminal != 1 {
		t.Fatalf("last %s, %d terminal", last.Event, terminal)
	}
	if text.String() != "The capital of France is **Paris**." || !strings.Contains(reasoning.String(), "The user asks") {
		t.Errorf("text %q reasoning %q", text.String(), reasoning.String())
	}
	final := last.Data["response"].(map[string]any)
	id := final["id"].(string)
	// Retrievable at once after the terminal event.
	var got respObj
	if status, b := rdo(t, "GET", g.URL+"/v1/responses/"+id, "", &got); status != 200 || got.Status != "completed" || got.text() != text.String() || got.types() != "reasoning,message" {
		t.Fatalf("get: %d %s", status, b)
	}
	if got.Model != gptOss || got.Usage == nil || got.Usage.TotalTokens != got.Usage.InputTokens+got.Usage.OutputTokens || got.Usage.OutputTokens == 0 {
		t.Errorf("model %s usage %+v", got.Model, got.Usage)
	}
	// The upstream was asked for a stream with usage, and not for store or metadata.
	reqs := g.double.Requests()
	up := reqs[len(reqs)-1]
	if up.Chat == nil || !up.Chat.Stream || up.Chat.StreamOptions == nil || !up.Chat.StreamOptions.IncludeUsage {
		t.Errorf("upstream request = %s", up.Body)
	}
}

func TestResponsesMaxOutputTokens(t *testing.T) {
	g := newRespGateway(t, true)
	var r respObj
	status, b := rdo(t, "POST", g.URL+"/v1/responses", `{"model":"`+claude+`","input":"Tell me about quantum computing","max_output_tokens":16}`, &r)
	if status != 200 || r.Status != "incomplete" || r.IncompleteDetails == nil || r.IncompleteDetails.Reason != "max_output_tokens" {
		t.Fatalf("%d %s", status, b)
	}
	if n := len(strings.Fields(r.text())); n == 0 || n > 16 {
		t.Errorf("truncated text has %d words", n)
	}
	frames := stream(t, g.URL, `{"model":"`+gptOss+`","input":"Tell me about quantum computing","max_output_tokens":16,"stream":true}`)
	if last := frames[len(frames)-1]; last.Event != "response.incomplete" {
		t.Errorf("last event %s", last.Event)
	}
}

func TestResponsesCRUD(t *testing.T) {
	g := newRespGateway(t, true)
	var ids []string
	for _, q := range []string{"hello", "What is 2 + 2?", "count to 5"} {
		var r respObj
		if status, b := rdo(t, "POST", g.URL+"/v1/responses", `{"model":"`+claude+`","input":"`+q+`"}`, &r); status != 200 {
			t.Fatalf("%d %s", status, b)
		}
		ids = append(ids, r.ID)
	}
	var chained respObj
	rdo(t, "POST", g.URL+"/v1/responses", `{"model":"`+claude+`","input":"my name is Ada. hello","previous_response_id":"`+ids[2]+`"}`, &chained)
	var named respObj
	rdo(t, "POST", g.URL+"/v1/responses", `{"model":"`+claude+`","input":"what is my name?","previous_response_id":"`+chained.ID+`"}`, &named)
	if named.text() != "Your name is Ada." || derefStr(named.PreviousResponseID) != chained.ID {
		t.Errorf("chain answer = %q", named.text())
	}
	var list struct {
		Data    []respObj `json:"data"`
		HasMore bool      `json:"has_more"`
		LastID  string    `json:"last_id"`
	}
	if status, b := rdo(t, "GET", g.URL+"/v1/responses?limit=2&order=asc", "", &list); status != 200 || len(list.Data) != 2 || !list.HasMore || list.Data[0].ID != ids[0] {
		t.Fatalf("list: %d %s", status, b)
	}
	rdo(t, "GET", g.URL+"/v1/responses?limit=10&order=asc&after="+list.LastID, "", &list)
	if len(list.Data) != 3 || list.HasMore {
		t.Errorf("page 2 has %d", len(list.Data))
	}
	rdo(t, "GET", g.URL+"/v1/responses?model=nope", "", &list)
	if len(list.Data) != 0 {
		t.Errorf("model filter kept %d", len(list.Data))
	}
	var items struct {
		Data []map[string]any `json:"data"`
	}
	if status, b := rdo(t, "GET", g.URL+"/v1/openai/v1/responses/"+ids[1]+"/input_items", "", &items); status != 200 || len(items.Data) != 1 || items.Data[0]["role"] != "user" {
		t.Fatalf("input items: %d %s", status, b)
	}
	var del map[string]any
	if status, _ := rdo(t, "DELETE", g.URL+"/v1/responses/"+ids[0], "", &del); status != 200 || del["deleted"] != true || del["object"] != "response" {
		t.Errorf("delete = %v", del)
	}
	if status, b := rdo(t, "GET", g.URL+"/v1/responses/"+ids[0], "", nil); status != 404 || !strings.Contains(string(b), "not found") {
		t.Errorf("get deleted: %d %s", status, b)
	}
	// store:false is never written; chaining from it is a 404.
	var nostore respObj
	rdo(t, "POST", g.URL+"/v1/responses", `{"model":"`+claude+`","input":"hello","store":false}`, &nostore)
	if status, _ := rdo(t, "GET", g.URL+"/v1/responses/"+nostore.ID, "", nil); status != 404 || nostore.Store {
		t.Errorf("store:false response readable: %d", status)
	}
	if status, b := rdo(t, "POST", g.URL+"/v1/responses", `{"model":"`+claude+`","input":"x","previous_response_id":"`+nostore.ID+`"}`, nil); status != 404 || !strings.Contains(string(b), "previous_response_id") {
		t.Errorf("chain from store:false: %d %s", status, b)
	}
}

func TestResponsesBadRequests(t *testing.T) {
	g := newRespGateway(t, true)
	tests := []struct {
		name, body string
		status     int
		param, msg string
	}{
		{"web_search", `{"model":"` + claude + `","input":"x","tools":[{"type":"web_search_preview"}]}`, 400, "tools[0].type", "'web_search_preview' is not supported"},
		{"code_interpreter", `{"model":"` + claude + `","input":"x","tools":[{"type":"code_interpreter","container":{"type":"auto"}}]}`, 400, "tools[0].type", "'code_interpreter'"},
		{"unknown item", `{"model":"` + claude + `","input":[{"type":"telepathy"}]}`, 400, "input[0].type", "'telepathy'"},
		{"unknown model", `{"model":"nope","input":"x"}`, 404, "model", "not found"},
		{"no model", `{"input":"x"}`, 400, "model", "required"},
		{"bad json", `{"model":`, 400, "", "not valid JSON"},
		{"stream not bool", `{"model":"` + claude + `","input":"x","stream":"yes"}`, 400, "stream", "boolean"},
		{"both", `{"model":"` + claude + `","input":"x","previous_response_id":"resp_1","conversation":"conv_1"}`, 400, "conversation", "together"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, b := rdo(t, "POST", g.URL+"/v1/responses", tt.body, nil)
			if status != tt.status {
				t.Fatalf("status %d, want %d: %s", status, tt.status, b)
			}
			e := errorDetail(t, b)
			if deref(e.Param) != tt.param || !strings.Contains(e.Message, tt.msg) {
				t.Errorf("param %q message %q", deref(e.Param), e.Message)
			}
		})
	}
	if n := len(g.double.Requests()); n != 0 {
		t.Errorf("%d requests reached Bedrock", n)
	}
}

func TestResponsesUpstreamFailure(t *testing.T) {
	g := newRespGateway(t, true)
	// Not streamed: the upstream's status.
	g.double.FailWith(1, http.StatusTooManyRequests)
	if status, b := rdo(t, "POST", g.URL+"/v1/responses", `{"model":"`+gptOss+`","input":"hello"}`, nil); status != 429 {
		t.Errorf("not streamed: %d %s", status, b)
	}
	// Streamed, failing at once and mid-stream: response.failed with a
	// spec code, stored.
	g.double.FailWith(1, http.StatusTooManyRequests)
	frames := stream(t, g.URL, `{"model":"`+gptOss+`","input":"hello","stream":true}`)
	last := frames[len(frames)-1]
	resp := last.Data["response"].(map[string]any)
	if last.Event != "response.failed" || resp["error"].(map[string]any)["code"] != "rate_limit_exceeded" {
		t.Fatalf("last = %v", last.Data)
	}
	g.double.DropStreamAfter(1, 3)
	frames = stream(t, g.URL, `{"model":"`+gptOss+`","input":"Tell me about quantum computing","stream":true}`)
	last = frames[len(frames)-1]
	resp = last.Data["response"].(map[string]any)
	if last.Event != "response.failed" || resp["error"].(map[string]any)["code"] != "server_error" || resp["status"] != "failed" {
		t.Fatalf("dropped stream: last = %v", last.Data)
	}
	var got respObj
	if status, _ := rdo(t, "GET", g.URL+"/v1/responses/"+resp["id"].(string), "", &got); status != 200 || got.Status != "failed" {
		t.Errorf("stored failed response: %d %+v", status, got)
	}
}

func TestResponsesStorageOff(t *testing.T) {
	g := newRespGateway(t, false)
	var r respObj
	if status, b := rdo(t, "POST", g.URL+"/v1/responses", `{"model":"`+claude+`","input":"hello"}`, &r); status != 200 || r.Store || r.text() == "" {
		t.Fatalf("%d %s", status, b)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/v1/responses/" + r.ID, ""},
		{"GET", "/v1/responses", ""},
		{"POST", "/v1/responses", `{"model":"` + claude + `","input":"x","store":true}`},
		{"POST", "/v1/conversations", `{}`},
	} {
		status, b := rdo(t, c.method, g.URL+c.path, c.body, nil)
		if status != 400 || !strings.Contains(string(b), "storage is switched off") {
			t.Errorf("%s %s: %d %s", c.method, c.path, status, b)
		}
	}
}

// TestResponsesParallelCalls runs parallel function calls through an
// OpenAI-compatible upstream that returns two tool calls in one message.
func TestResponsesParallelCalls(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Stream bool `json:"stream"`
		}
		_ = json.NewDecoder(r.Body).Decode(&req)
		calls := `[{"index":0,"id":"call_0","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}},` +
			`{"index":1,"id":"call_1","type":"function","function":{"name":"get_weather","arguments":"{\"city\":\"Rome\"}"}}]`
		if !req.Stream {
			w.Header().Set("Content-Type", "application/json")
			io.WriteString(w, `{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,"message":{"role":"assistant","content":null,"tool_calls":`+calls+`},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":5,"completion_tokens":9,"total_tokens":14}}`)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","tool_calls":`+calls+`},"finish_reason":null}]}`+"\n\n")
		io.WriteString(w, `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}`+"\n\n")
		io.WriteString(w, "data: [DONE]\n\n")
	}))
	t.Cleanup(up.Close)
	reg := registry.New(map[string]provider.Provider{"up": openaicompat.New(openaicompat.Options{ProviderID: "up", BaseURL: up.URL + "/v1", HTTPClient: up.Client()})})
	if err := reg.Register(registry.Model{Identifier: "up/m", ProviderID: "up", ProviderResourceID: "m"}); err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(NewHandler(Options{Registry: reg}))
	t.Cleanup(gw.Close)
	var r respObj
	if status, b := rdo(t, "POST", gw.URL+"/v1/responses", `{"model":"up/m","input":"weather in Paris and Rome","tools":[`+weatherFn+`],"parallel_tool_calls":true,"store":false}`, &r); status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	if r.types() != "function_call,function_call" || r.Output[0]["arguments"] != `{"city":"Paris"}` || r.Output[1]["arguments"] != `{"city":"Rome"}` {
		t.Errorf("output = %v", r.Output)
	}
	frames := stream(t, gw.URL, `{"model":"up/m","input":"weather in Paris and Rome","tools":[`+weatherFn+`],"stream":true,"store":false}`)
	done := 0
	for _, f := range frames {
		if f.Event == "response.function_call_arguments.done" {
			done++
		}
	}
	if done != 2 {
		t.Errorf("%d function_call_arguments.done events", done)
	}
}

func TestResponsesMCP(t *testing.T) {
	g := newRespGateway(t, true)
	srv := mcptest.New(t, mcptest.Options{SSE: true, Tools: []mcptest.Tool{{Name: "add", Description: "Add two numbers",
		InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}`)}}})
	tool := `{"type":"mcp","server_label":"calc","server_url":"` + srv.URL() + `"`
	// Without approval: the server calls the tool and Claude answers.
	var r respObj
	if status, b := rdo(t, "POST", g.URL+"/v1/responses", `{"model":"`+claude+`","input":"Please add 7 and 7","tools":[`+tool+`,"require_approval":"never"}]}`, &r); status != 200 {
		t.Fatalf("%d %s", status, b)
	}
	if r.types() != "mcp_list_tools,mcp_call,message" || r.text() != `The tool returned: {"a":7,"b":7}` {
		t.Fatalf("output = %s / %q", r.types(), r.text())
	}
	// With approval: a request, then the approval runs it.
	frames := stream(t, g.URL, `{"model":"`+claude+`","input":"Please add 3 and 3","stream":true,"tools":[`+tool+`}]}`)
	final := frames[len(frames)-1].Data["response"].(map[string]any)
	out := final["output"].([]any)
	areq := out[len(out)-1].(map[string]any)
	if areq["type"] != "mcp_approval_request" || len(srv.Calls()) != 1 {
		t.Fatalf("output = %v", out)
	}
	var r2 respObj
	status, b := rdo(t, "POST", g.URL+"/v1/responses", `{"model":"`+claude+`","previous_response_id":"`+final["id"].(string)+`","tools":[`+tool+`}],
		"input":[{"type":"mcp_approval_response","approval_request_id":"`+areq["id"].(string)+`","approve":true}]}`, &r2)
	if status != 200 || r2.types() != "mcp_call,message" || r2.Output[0]["approval_request_id"] != areq["id"] || len(srv.Calls()) != 2 {
		t.Fatalf("approved: %d %s", status, b)
	}
}

func derefStr(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// TestResponsesStreamIsLive proves events reach the client while the
// upstream is still answering, and that a client that leaves cancels the
// upstream.
func TestResponsesStreamIsLive(t *testing.T) {
	g := newRespGateway(t, true)
	gate := g.double.Gate()
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "POST", g.URL+"/v1/responses", strings.NewReader(`{"model":"`+gptOss+`","input":"Tell me about quantum computing","stream":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	// The gate holds everything after the upstream's first event (the
	// role chunk); the client still gets created and in_progress.
	var seen []string
	for len(seen) < 2 {
		line, err := br.ReadString('\n')
		if err != nil {
			t.Fatalf("read: %v (seen %v)", err, seen)
		}
		if ev, ok := strings.CutPrefix(strings.TrimSpace(line), "event: "); ok {
			seen = append(seen, ev)
		}
	}
	if seen[0] != "response.created" || seen[1] != "response.in_progress" {
		t.Errorf("first events = %v", seen)
	}
	// Leave once the upstream call is open (the double records it before
	// the gate holds it).
	for deadline := time.Now().Add(10 * time.Second); len(g.double.Requests()) == 0; {
		if time.Now().After(deadline) {
			t.Fatal("the upstream was never called")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-g.double.Canceled():
	case <-time.After(10 * time.Second):
		t.Error("the upstream stream was not canceled when the client left")
	}
	gate.Open()
}
