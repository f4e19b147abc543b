package e2e

import (
	"encoding/json"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// TestToolCallingConverse: a tool-calling conversation with Claude through
// Converse (call, tool result, final answer) with openai-go against the
// built binary, streaming and not; the second turn sends no tools.
func TestToolCallingConverse(t *testing.T) {
	double := bedrocktest.New(t, bedrocktest.Options{})
	cfg := writeFile(t, "config.yaml", notebookConfig+`    - model_id: bedrock/claude
      provider_id: bedrock
      provider_model_id: `+bedrocktest.ModelClaudeHaiku+`
`)
	srv := startServer(t, []string{"AWS_BEARER_TOKEN_BEDROCK=" + bedrocktest.DefaultKey, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL()}, cfg)
	c := newClient(srv.URL)
	tools := []oai.ChatCompletionToolUnionParam{oai.ChatCompletionFunctionTool(oai.FunctionDefinitionParam{
		Name:        "get_boiling_point",
		Description: oai.String("Returns the boiling point of a liquid in Celsius."),
		Parameters: oai.FunctionParameters{
			"type":       "object",
			"properties": map[string]any{"liquid_name": map[string]any{"type": "string"}},
			"required":   []string{"liquid_name"},
		},
	})}
	question := oai.UserMessage("What is the boiling point of myawesomeliquid? Use get_boiling_point.")

	for _, stream := range []bool{false, true} {
		name := map[bool]string{false: "non-streaming", true: "streaming"}[stream]
		t.Run(name, func(t *testing.T) {
			params := oai.ChatCompletionNewParams{Model: "bedrock/claude", Messages: []oai.ChatCompletionMessageParamUnion{question}, Tools: tools}
			var msg oai.ChatCompletionMessage
			var finish string
			if stream {
				st := c.Chat.Completions.NewStreaming(t.Context(), params)
				var acc oai.ChatCompletionAccumulator
				for st.Next() {
					acc.AddChunk(st.Current())
				}
				if err := st.Err(); err != nil {
					t.Fatal(err)
				}
				msg, finish = acc.Choices[0].Message, acc.Choices[0].FinishReason
			} else {
				resp, err := c.Chat.Completions.New(t.Context(), params)
				if err != nil {
					t.Fatal(err)
				}
				msg, finish = resp.Choices[0].Message, resp.Choices[0].FinishReason
			}
			if finish != "tool_calls" || len(msg.ToolCalls) != 1 || msg.ToolCalls[0].Function.Name != "get_boiling_point" {
				t.Fatalf("turn 1: finish %q, message %+v", finish, msg)
			}
			call := msg.ToolCalls[0]
			var args map[string]any
			if err := json.Unmarshal([]byte(call.Function.Arguments), &args); err != nil || call.ID == "" {
				t.Fatalf("tool call %+v: %v", call, err)
			}
			// Turn 2: the tool result, and no tools this time.
			resp, err := c.Chat.Completions.New(t.Context(), oai.ChatCompletionNewParams{
				Model: "bedrock/claude",
				Messages: []oai.ChatCompletionMessageParamUnion{
					question,
					msg.ToParam(),
					oai.ToolMessage("-100 degrees Celsius", call.ID),
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			if got := resp.Choices[0].Message.Content; !strings.Contains(got, "-100") || resp.Choices[0].FinishReason != "stop" {
				t.Errorf("turn 2: %q (%s)", got, resp.Choices[0].FinishReason)
			}
		})
	}
	for _, r := range double.Requests() {
		if !strings.Contains(r.Path, "/converse") {
			t.Errorf("Claude went to %s, not Converse", r.Path)
		}
	}
}
