package e2e

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// notebookConfig is the notebook's minimal config.yaml, verbatim.
const notebookConfig = `version: 2
providers:
  inference:
    - provider_id: bedrock
      provider_type: remote::bedrock
      config:
        api_key: ${env.AWS_BEARER_TOKEN_BEDROCK:=}
        region_name: ${env.AWS_DEFAULT_REGION:=us-west-2}

registered_resources:
  models:
    - metadata: {}
      model_id: bedrock/openai.gpt-oss-20b-1:0
      provider_id: bedrock
      provider_model_id: openai.gpt-oss-20b-1:0
      model_type: llm
`

const (
	modelID    = "bedrock/openai.gpt-oss-20b-1:0"
	upstreamID = "openai.gpt-oss-20b-1:0"
)

// notebookServer starts the double and the binary with the notebook's
// config and the user's environment (the endpoint override points the
// provider at the double).
func notebookServer(t *testing.T, opts bedrocktest.Options, extraEnv ...string) (*bedrocktest.Server, *server) {
	t.Helper()
	double := bedrocktest.New(t, opts)
	cfg := writeFile(t, "config.yaml", notebookConfig)
	env := append([]string{
		"AWS_BEARER_TOKEN_BEDROCK=" + bedrocktest.DefaultKey,
		"AWS_DEFAULT_REGION=us-west-2",
		"AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL(),
	}, extraEnv...)
	return double, startServer(t, env, cfg)
}

func newClient(base string) oai.Client {
	return oai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey("none"), option.WithMaxRetries(0))
}

var reasoningRE = regexp.MustCompile(`<reasoning>[\s\S]*?</reasoning>`)

func stripReasoning(s string) string { return strings.TrimSpace(reasoningRE.ReplaceAllString(s, "")) }

// TestNotebook runs the notebook's steps with openai-go, then the npm and
// curl suites, against one server, and finally checks what Bedrock (the
// double) received.
func TestNotebook(t *testing.T) {
	double, srv := notebookServer(t, bedrocktest.Options{})
	ctx := t.Context()
	client := newClient(srv.URL)

	t.Run("models", func(t *testing.T) {
		page, err := client.Models.List(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Data) != 1 || page.Data[0].ID != modelID {
			t.Fatalf("models = %+v", page.Data)
		}
		var raw struct {
			Data []struct {
				ID             string         `json:"id"`
				CustomMetadata map[string]any `json:"custom_metadata"`
			} `json:"data"`
		}
		getJSON(t, srv.URL+"/v1/models", &raw)
		if raw.Data[0].CustomMetadata["provider_id"] != "bedrock" || raw.Data[0].CustomMetadata["provider_resource_id"] != upstreamID {
			t.Errorf("custom_metadata = %v", raw.Data[0].CustomMetadata)
		}
	})

	t.Run("example1 simple", func(t *testing.T) {
		resp, err := client.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{
			Model:    modelID,
			Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Which planet do humans live on?")},
		})
		if err != nil {
			t.Fatal(err)
		}
		// The reasoning is separated from the answer by default.
		if c := resp.Choices[0].Message.Content; !strings.Contains(c, "Earth") || strings.Contains(c, "<reasoning>") {
			t.Errorf("content = %q", c)
		}
		var raw struct {
			Choices []struct {
				Message struct {
					ReasoningContent string `json:"reasoning_content"`
				} `json:"message"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(resp.RawJSON()), &raw); err != nil || raw.Choices[0].Message.ReasoningContent != `The user asks: "Which planet do humans live on?". Answer directly.` {
			t.Errorf("reasoning_content = %+v (%v)", raw, err)
		}
		if resp.Model != modelID || resp.Usage.PromptTokens == 0 || resp.Usage.TotalTokens != resp.Usage.PromptTokens+resp.Usage.CompletionTokens {
			t.Errorf("model %q usage %+v", resp.Model, resp.Usage)
		}
	})

	t.Run("example2 streaming", func(t *testing.T) {
		stream := client.Chat.Completions.NewStreaming(ctx, oai.ChatCompletionNewParams{
			Model:         modelID,
			Messages:      []oai.ChatCompletionMessageParamUnion{oai.UserMessage("What's the name of the Sun in Latin?")},
			StreamOptions: oai.ChatCompletionStreamOptionsParam{IncludeUsage: oai.Bool(true)},
		})
		var acc oai.ChatCompletionAccumulator
		chunks := 0
		for stream.Next() {
			ch := stream.Current()
			acc.AddChunk(ch)
			chunks++
			if ch.Model != modelID {
				t.Errorf("chunk model = %q", ch.Model)
			}
		}
		if err := stream.Err(); err != nil {
			t.Fatal(err)
		}
		if chunks < 3 || !strings.Contains(acc.Choices[0].Message.Content, "Sol") || acc.Choices[0].FinishReason != "stop" {
			t.Errorf("%d chunks, content %q, finish %q", chunks, acc.Choices[0].Message.Content, acc.Choices[0].FinishReason)
		}
		if acc.Usage.TotalTokens == 0 {
			t.Errorf("no usage chunk with include_usage")
		}
	})

	t.Run("example3 multi-turn", func(t *testing.T) {
		resp, err := client.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{
			Model: modelID,
			Messages: []oai.ChatCompletionMessageParamUnion{
				oai.UserMessage("My name is Alice"),
				oai.AssistantMessage("Nice to meet you, Alice! How can I help you today?"),
				oai.UserMessage("What is my name?"),
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(strings.ToLower(resp.Choices[0].Message.Content), "alice") {
			t.Errorf("content = %q", resp.Choices[0].Message.Content)
		}
	})

	t.Run("example4 system", func(t *testing.T) {
		resp, err := client.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{
			Model: modelID,
			Messages: []oai.ChatCompletionMessageParamUnion{
				oai.SystemMessage("You are Shakespeare. Respond only in Shakespearean English with dramatic flair."),
				oai.UserMessage("Tell me about the weather today"),
			},
		})
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(resp.Choices[0].Message.Content, "Hark") {
			t.Errorf("content = %q", resp.Choices[0].Message.Content)
		}
	})

	t.Run("example5 sampling", func(t *testing.T) {
		for _, temp := range []float64{0.1, 0.9} {
			params := oai.ChatCompletionNewParams{
				Model:       modelID,
				Messages:    []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Write a haiku (5-7-5 syllables) about coding. Output ONLY the 3-line haiku.")},
				Temperature: oai.Float(temp),
				MaxTokens:   oai.Int(400),
			}
			if temp == 0.9 {
				params.TopP = oai.Float(0.95)
			}
			resp, err := client.Chat.Completions.New(ctx, params)
			if err != nil {
				t.Fatal(err)
			}
			if got := stripReasoning(resp.Choices[0].Message.Content); len(strings.Split(got, "\n")) != 3 {
				t.Errorf("temperature %v: haiku = %q", temp, got)
			}
		}
		resp, err := client.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{
			Model:     modelID,
			Messages:  []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Explain quantum computing")},
			MaxTokens: oai.Int(50),
		})
		if err != nil {
			t.Fatal(err)
		}
		if resp.Usage.CompletionTokens > 50 || resp.Choices[0].FinishReason != "length" {
			t.Errorf("max_tokens 50: usage %+v finish %q", resp.Usage, resp.Choices[0].FinishReason)
		}
	})

	t.Run("example6 errors", func(t *testing.T) {
		_, err := client.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{
			Model:    "invalid-model-id",
			Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Hello!")},
		})
		var apiErr *oai.Error
		if !errors.As(err, &apiErr) || apiErr.StatusCode != 404 || !strings.Contains(apiErr.Message, "invalid-model-id") {
			t.Fatalf("err = %v", err)
		}
	})

	t.Run("example7 batch", func(t *testing.T) {
		for q, want := range map[string]string{"What is the capital of France?": "Paris", "What is 2 + 2?": "4", "Who wrote Romeo and Juliet?": "Shakespeare"} {
			resp, err := client.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{
				Model: modelID, Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage(q)}, MaxTokens: oai.Int(400),
			})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(resp.Choices[0].Message.Content, want) {
				t.Errorf("%s: %q", q, resp.Choices[0].Message.Content)
			}
		}
	})

	jsEnv := []string{"LLAMA_STACK_BASE_URL=" + srv.URL, "MODEL_ID=" + modelID, "BEDROCK_TEST_KEY=" + bedrocktest.DefaultKey}
	t.Run("npm openai and llama-stack-client", func(t *testing.T) {
		dir := filepath.Join(repoRoot(), "e2e", "js")
		if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
			if os.Getenv("LLAMA_E2E_SKIP_JS") == "1" {
				t.Skip("LLAMA_E2E_SKIP_JS=1 and e2e/js/node_modules is missing")
			}
			t.Fatalf("e2e/js/node_modules is missing: run `npm ci` in e2e/js (make test does)")
		}
		runSuite(t, dir, jsEnv, "node", "--test", "--test-concurrency=1", "notebook.test.mjs", "llama-stack-client.test.mjs")
	})
	t.Run("curl", func(t *testing.T) {
		for _, tool := range []string{"curl", "jq", "bash"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Fatalf("%s is not installed (make test installs it)", tool)
			}
		}
		runSuite(t, repoRoot(), jsEnv, "bash", "e2e/curl/notebook.sh")
	})

	// What Bedrock saw: the upstream id, the server's key, the client's
	// parameters and history, and nothing for requests we refused.
	t.Run("upstream received", func(t *testing.T) {
		var chats []bedrocktest.Recorded
		for _, r := range double.Requests() {
			if r.Path != bedrocktest.ChatPath {
				t.Errorf("unexpected upstream path %s", r.Path)
				continue
			}
			chats = append(chats, r)
			if r.Chat == nil || r.Chat.Model != upstreamID {
				t.Errorf("upstream model = %v, want %s: %s", r.Chat, upstreamID, r.Body)
			}
			if got := r.Header.Get("Authorization"); got != "Bearer "+bedrocktest.DefaultKey {
				t.Errorf("Authorization = %q", got)
			}
			if strings.Contains(string(r.Body), "invalid-model-id") {
				t.Errorf("a request for an unknown model reached Bedrock")
			}
		}
		if len(chats) < 10 {
			t.Fatalf("only %d chat requests reached the double", len(chats))
		}
		find := func(pred func(*bedrocktest.ChatRequest) bool) *bedrocktest.ChatRequest {
			for _, r := range chats {
				if r.Chat != nil && pred(r.Chat) {
					return r.Chat
				}
			}
			return nil
		}
		if find(func(c *bedrocktest.ChatRequest) bool {
			return c.Temperature != nil && *c.Temperature == 0.1 && c.MaxTokens != nil && *c.MaxTokens == 400 && c.TopP == nil
		}) == nil {
			t.Error("no request with temperature 0.1 and max_tokens 400 (and no top_p)")
		}
		if find(func(c *bedrocktest.ChatRequest) bool {
			return c.Temperature != nil && *c.Temperature == 0.9 && c.TopP != nil && *c.TopP == 0.95 && c.MaxTokens != nil && *c.MaxTokens == 400
		}) == nil {
			t.Error("no request with temperature 0.9, top_p 0.95, max_tokens 400")
		}
		multi := find(func(c *bedrocktest.ChatRequest) bool {
			return len(c.Messages) == 3 && c.Messages[0].Text == "My name is Alice"
		})
		if multi == nil || multi.Messages[1].Role != "assistant" || multi.Messages[1].Text != "Nice to meet you, Alice! How can I help you today?" || multi.Messages[2].Text != "What is my name?" {
			t.Errorf("multi-turn history not intact: %+v", multi)
		}
		sys := find(func(c *bedrocktest.ChatRequest) bool { return len(c.Messages) == 2 && c.Messages[0].Role == "system" })
		if sys == nil || sys.Messages[0].Text != "You are Shakespeare. Respond only in Shakespearean English with dramatic flair." {
			t.Errorf("system message not intact: %+v", sys)
		}
		stream := find(func(c *bedrocktest.ChatRequest) bool { return c.Stream })
		if stream == nil {
			t.Error("no streaming request reached the double")
		}
		for _, r := range chats {
			if r.Chat != nil && !r.Chat.Stream {
				if _, ok := r.Chat.Raw["stream_options"]; ok {
					t.Errorf("stream_options invented on a non-streaming request: %s", r.Body)
				}
			}
		}
	})
}

func runSuite(t *testing.T, dir string, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	t.Logf("%s %s:\n%s", name, strings.Join(args, " "), tail(string(out), 40))
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

func getJSON(t *testing.T, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("GET %s: %v: %s", url, err, b)
	}
	return resp.StatusCode
}
