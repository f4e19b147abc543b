package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/conversations"
	"github.com/openai/openai-go/v3/responses"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
	"github.com/llama-stack-go/llama-stack-go/internal/responses/mcp/mcptest"
)

// responsesConfig is the notebook's config plus Claude, served through
// Converse.
const responsesConfig = notebookConfig + `    - model_id: bedrock/claude
      provider_id: bedrock
      provider_model_id: ` + bedrocktest.ModelClaudeHaiku + `
`

const claudeModel = "bedrock/claude"

func responsesServer(t *testing.T) (*bedrocktest.Server, *server) {
	t.Helper()
	double := bedrocktest.New(t, bedrocktest.Options{})
	cfg := writeFile(t, "config.yaml", responsesConfig)
	srv := startServer(t, []string{"AWS_BEARER_TOKEN_BEDROCK=" + bedrocktest.DefaultKey, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL()}, cfg)
	return double, srv
}

func textInput(s string) responses.ResponseNewParamsInputUnion {
	return responses.ResponseNewParamsInputUnion{OfString: oai.String(s)}
}

func itemsInput(items ...responses.ResponseInputItemUnionParam) responses.ResponseNewParamsInputUnion {
	return responses.ResponseNewParamsInputUnion{OfInputItemList: items}
}

func outputTypes(r *responses.Response) string {
	var out []string
	for _, it := range r.Output {
		out = append(out, it.Type)
	}
	return strings.Join(out, ",")
}

// TestResponsesOpenAIGo drives the Responses and Conversations APIs of the
// built binary with openai-go, on gpt-oss (OpenAI-compatible surface) and
// Claude (Converse).
func TestResponsesOpenAIGo(t *testing.T) {
	double, srv := responsesServer(t)
	c := newClient(srv.URL)
	ctx := t.Context()

	t.Run("create, retrieve, input items, delete", func(t *testing.T) {
		r, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: modelID, Input: textInput("What is the capital of France?"),
			Instructions: oai.String("Answer briefly."), Metadata: map[string]string{"suite": "e2e"}})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != responses.ResponseStatusCompleted || r.OutputText() != "The capital of France is **Paris**." || !strings.HasPrefix(r.ID, "resp_") {
			t.Fatalf("response = %s", r.RawJSON())
		}
		if outputTypes(r) != "reasoning,message" || r.Usage.TotalTokens != r.Usage.InputTokens+r.Usage.OutputTokens || r.Metadata["suite"] != "e2e" {
			t.Errorf("output %s usage %+v", outputTypes(r), r.Usage)
		}
		got, err := c.Responses.Get(ctx, r.ID, responses.ResponseGetParams{})
		if err != nil || got.OutputText() != r.OutputText() {
			t.Fatalf("get = %v, %v", got, err)
		}
		items, err := c.Responses.InputItems.List(ctx, r.ID, responses.InputItemListParams{})
		if err != nil || len(items.Data) != 1 || items.Data[0].Role != "user" {
			t.Fatalf("input items = %v, %v", items, err)
		}
		if err := c.Responses.Delete(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
		_, err = c.Responses.Get(ctx, r.ID, responses.ResponseGetParams{})
		var apiErr *oai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 {
			t.Errorf("get deleted: %v", err)
		}
	})

	t.Run("streaming", func(t *testing.T) {
		for _, model := range []string{modelID, claudeModel} {
			st := c.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: model, Input: textInput("Write a haiku about code")})
			var types []string
			var text strings.Builder
			var final responses.Response
			seq := int64(0)
			for st.Next() {
				ev := st.Current()
				if ev.SequenceNumber != seq {
					t.Fatalf("%s: event %s has sequence_number %d, want %d", model, ev.Type, ev.SequenceNumber, seq)
				}
				seq++
				types = append(types, ev.Type)
				switch ev.Type {
				case "response.output_text.delta":
					text.WriteString(ev.Delta)
				case "response.completed":
					final = ev.Response
				}
			}
			if err := st.Err(); err != nil {
				t.Fatal(err)
			}
			if types[0] != "response.created" || types[1] != "response.in_progress" || types[len(types)-1] != "response.completed" {
				t.Fatalf("%s: events %v", model, types)
			}
			want := "Code flows like rivers\nDebugging whispers in loops\nLogic blooms at dawn"
			if text.String() != want || final.OutputText() != want {
				t.Errorf("%s: deltas %q, final %q", model, text.String(), final.OutputText())
			}
			// Stored before the terminal event: retrievable at once.
			got, err := c.Responses.Get(ctx, final.ID, responses.ResponseGetParams{})
			if err != nil || got.Status != responses.ResponseStatusCompleted {
				t.Errorf("%s: get after completed: %v, %v", model, got, err)
			}
		}
	})

	t.Run("previous_response_id chain", func(t *testing.T) {
		r1, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: claudeModel, Input: textInput("Hello, my name is Ada Lovelace.")})
		if err != nil {
			t.Fatal(err)
		}
		r2, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: claudeModel, Input: textInput("What is my name?"), PreviousResponseID: oai.String(r1.ID)})
		if err != nil {
			t.Fatal(err)
		}
		if r2.OutputText() != "Your name is Ada Lovelace." || r2.PreviousResponseID != r1.ID {
			t.Errorf("answer %q", r2.OutputText())
		}
	})

	t.Run("function calling on Claude, turn 2 without tools", func(t *testing.T) {
		tool := responses.ToolParamOfFunction("get_weather", map[string]any{
			"type": "object", "properties": map[string]any{"city": map[string]any{"type": "string"}}, "required": []string{"city"},
		}, false)
		question := responses.ResponseInputItemParamOfMessage("What is the weather in Paris?", responses.EasyInputMessageRoleUser)
		r1, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: claudeModel, Input: itemsInput(question), Tools: []responses.ToolUnionParam{tool}})
		if err != nil {
			t.Fatal(err)
		}
		if outputTypes(r1) != "function_call" {
			t.Fatalf("turn 1 output %s", r1.RawJSON())
		}
		fc := r1.Output[0].AsFunctionCall()
		if fc.Name != "get_weather" || fc.Arguments != `{"city":"Paris"}` {
			t.Fatalf("call = %+v", fc)
		}
		call := fc.ToParam()
		out := responses.ResponseInputItemParamOfFunctionCallOutput(`{"temperature":21}`)
		out.OfFunctionCallOutput.CallID = oai.String(fc.CallID)
		r2, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: claudeModel,
			Input: itemsInput(question, responses.ResponseInputItemUnionParam{OfFunctionCall: &call}, out)})
		if err != nil {
			t.Fatal(err)
		}
		if r2.OutputText() != `The tool returned: {"temperature":21}` {
			t.Errorf("turn 2 = %s", r2.RawJSON())
		}
		// What Converse received: the call and its result under one id.
		reqs := double.Requests()
		last := reqs[len(reqs)-1]
		if !strings.HasSuffix(last.Path, "/converse") || strings.Count(string(last.Body), fc.CallID) != 2 {
			t.Errorf("converse request %s: %s", last.Path, last.Body)
		}
	})

	t.Run("max_output_tokens", func(t *testing.T) {
		r, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: modelID, Input: textInput("Tell me about quantum computing"), MaxOutputTokens: oai.Int(16)})
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != responses.ResponseStatusIncomplete || r.IncompleteDetails.Reason != "max_output_tokens" {
			t.Errorf("status %s, details %+v", r.Status, r.IncompleteDetails)
		}
	})

	t.Run("unsupported tool", func(t *testing.T) {
		_, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: modelID, Input: textInput("x"),
			Tools: []responses.ToolUnionParam{{OfWebSearch: &responses.WebSearchToolParam{Type: responses.WebSearchToolTypeWebSearch}}}})
		var apiErr *oai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Message, "web_search") {
			t.Errorf("err = %v", err)
		}
	})

	t.Run("conversation paged with after", func(t *testing.T) {
		conv, err := c.Conversations.New(ctx, conversations.ConversationNewParams{Metadata: map[string]string{"topic": "paging"}})
		if err != nil {
			t.Fatal(err)
		}
		for batch := range 2 {
			var items []responses.ResponseInputItemUnionParam
			for i := range 11 {
				items = append(items, responses.ResponseInputItemParamOfMessage(fmt.Sprintf("note %d", batch*11+i), responses.EasyInputMessageRoleUser))
			}
			if _, err := c.Conversations.Items.New(ctx, conv.ID, conversations.ItemNewParams{Items: items}); err != nil {
				t.Fatal(err)
			}
		}
		r, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: claudeModel, Input: textInput("hello"),
			Conversation: responses.ResponseNewParamsConversationUnion{OfString: oai.String(conv.ID)}})
		if err != nil || r.Conversation.ID != conv.ID {
			t.Fatalf("response in conversation: %v, %v", r, err)
		}
		pager := c.Conversations.Items.ListAutoPaging(ctx, conv.ID, conversations.ItemListParams{Order: conversations.ItemListParamsOrderAsc, Limit: oai.Int(10)})
		var texts []string
		for pager.Next() {
			it := pager.Current()
			m := it.AsMessage()
			if len(m.Content) > 0 {
				texts = append(texts, string(m.Role)+":"+m.Content[0].Text)
			}
		}
		if err := pager.Err(); err != nil {
			t.Fatal(err)
		}
		if len(texts) != 24 || texts[0] != "user:note 0" || texts[21] != "user:note 21" || texts[22] != "user:hello" || texts[23] != "assistant:Hello! How can I help you today?" {
			t.Errorf("%d items: %v", len(texts), texts)
		}
	})

	t.Run("MCP tools with and without approval", func(t *testing.T) {
		mcp, err := mcptest.Start(mcptest.Options{Tools: []mcptest.Tool{{Name: "add", Description: "Add two numbers",
			InputSchema: json.RawMessage(`{"type":"object","properties":{"a":{"type":"number"},"b":{"type":"number"}},"required":["a","b"]}`)}}})
		if err != nil {
			t.Fatal(err)
		}
		defer mcp.Close()
		tool := func(approval string) []responses.ToolUnionParam {
			return []responses.ToolUnionParam{{OfMcp: &responses.ToolMcpParam{ServerLabel: "calc", ServerURL: oai.String(mcp.URL()),
				RequireApproval: responses.ToolMcpRequireApprovalUnionParam{OfMcpToolApprovalSetting: oai.String(approval)}}}}
		}
		r, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: claudeModel, Input: textInput("Please add 4 and 4"), Tools: tool("never")})
		if err != nil {
			t.Fatal(err)
		}
		if outputTypes(r) != "mcp_list_tools,mcp_call,message" || r.OutputText() != `The tool returned: {"a":4,"b":4}` {
			t.Fatalf("without approval: %s", r.RawJSON())
		}
		r1, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: claudeModel, Input: textInput("Please add 5 and 5"), Tools: tool("always")})
		if err != nil {
			t.Fatal(err)
		}
		if outputTypes(r1) != "mcp_list_tools,mcp_approval_request" || len(mcp.Calls()) != 1 {
			t.Fatalf("with approval, turn 1: %s", r1.RawJSON())
		}
		approval := r1.Output[1].ID
		r2, err := c.Responses.New(ctx, responses.ResponseNewParams{Model: claudeModel, PreviousResponseID: oai.String(r1.ID), Tools: tool("always"),
			Input: itemsInput(responses.ResponseInputItemParamOfMcpApprovalResponse(approval, true))})
		if err != nil {
			t.Fatal(err)
		}
		if outputTypes(r2) != "mcp_call,message" || r2.OutputText() != `The tool returned: {"a":5,"b":5}` || len(mcp.Calls()) != 2 {
			t.Errorf("approved: %s", r2.RawJSON())
		}
	})

	t.Run("npm openai", func(t *testing.T) {
		dir := filepath.Join(repoRoot(), "e2e", "js")
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
			if os.Getenv("LLAMA_E2E_SKIP_JS") == "1" {
				t.Skip("LLAMA_E2E_SKIP_JS=1 and e2e/js/node_modules is missing")
			}
			t.Fatalf("e2e/js/node_modules is missing: run `npm ci` in e2e/js (make test does)")
		}
		runSuite(t, dir, []string{"LLAMA_STACK_BASE_URL=" + srv.URL, "MODEL_ID=" + modelID, "CLAUDE_MODEL_ID=" + claudeModel},
			"node", "--test", "--test-concurrency=1", "responses.test.mjs")
	})
}

// TestResponsesReplicasPostgres: a response streamed by replica A is there
// on replica B the moment A sends the terminal event.
func TestResponsesReplicasPostgres(t *testing.T) {
	pg := postgresEnv(t)
	double := bedrocktest.New(t, bedrocktest.Options{})
	cfg := writeFile(t, "config.yaml", postgresConfig)
	env := append([]string{"AWS_BEARER_TOKEN_BEDROCK=" + bedrocktest.DefaultKey, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL()}, pg...)
	a := startServer(t, env, cfg)
	b := startServer(t, env, cfg)
	ca, cb := newClient(a.URL), newClient(b.URL)
	ctx := t.Context()
	for i := range 3 {
		st := ca.Responses.NewStreaming(ctx, responses.ResponseNewParams{Model: modelID, Input: textInput(fmt.Sprintf("replica question %d", i))})
		var id string
		for st.Next() {
			if ev := st.Current(); ev.Type == "response.completed" {
				id = ev.Response.ID
				// At once, before reading anything else.
				got, err := cb.Responses.Get(ctx, id, responses.ResponseGetParams{})
				if err != nil || got.Status != responses.ResponseStatusCompleted {
					t.Fatalf("replica B right after completed: %v, %v", got, err)
				}
			}
		}
		if err := st.Err(); err != nil || id == "" {
			t.Fatalf("stream: %v (id %q)", err, id)
		}
		// Chaining on B from a response made on A.
		r, err := cb.Responses.New(ctx, responses.ResponseNewParams{Model: modelID, Input: textInput("hello"), PreviousResponseID: oai.String(id)})
		if err != nil || r.PreviousResponseID != id {
			t.Fatalf("chain on B: %v, %v", r, err)
		}
	}
	// A conversation made on B is used on A.
	code, body := httpDo(t, http.MethodPost, b.URL+"/v1/conversations", `{"items":[{"role":"user","content":"my name is Linus. hello"}]}`)
	var conv struct {
		ID string `json:"id"`
	}
	if code != 200 || json.Unmarshal(body, &conv) != nil {
		t.Fatalf("conversation on B: %d %s", code, body)
	}
	r, err := ca.Responses.New(ctx, responses.ResponseNewParams{Model: modelID, Input: textInput("what is my name?"),
		Conversation: responses.ResponseNewParamsConversationUnion{OfString: oai.String(conv.ID)}})
	if err != nil || r.OutputText() != "Your name is Linus." {
		t.Fatalf("conversation on A: %v, %v", r, err)
	}
}
