package gateway

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	oai "github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

const (
	modelID    = "bedrock/openai.gpt-oss-20b-1:0"
	upstreamID = "openai.gpt-oss-20b-1:0"
	runConfig  = `version: 2
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
    - metadata: {reasoning: passthrough}
      model_id: bedrock/raw
      provider_id: bedrock
      provider_model_id: openai.gpt-oss-20b-1:0
`
)

// storeEnv is an environment with only SQLITE_STORE_DIR, a directory of
// the test's own.
func storeEnv(t *testing.T) config.LookupEnv {
	dir := t.TempDir()
	return func(k string) (string, bool) {
		if k == "SQLITE_STORE_DIR" {
			return dir, true
		}
		return "", false
	}
}

// newTestGateway is New, closed when the test ends.
func newTestGateway(t *testing.T, cfg *config.Config, o Options) (*Gateway, error) {
	t.Helper()
	g, err := New(cfg, o)
	if err == nil {
		t.Cleanup(func() { _ = g.Close() })
	}
	return g, err
}

// serve runs the gateway in-process in front of the double, keyed with key.
func serve(t *testing.T, double *bedrocktest.Server, key string) string {
	t.Helper()
	env := map[string]string{"AWS_BEARER_TOKEN_BEDROCK": key, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME": double.URL(),
		// No IAM credentials anywhere, and no instance metadata to ask.
		"AWS_EC2_METADATA_DISABLED": "true", "AWS_CONFIG_FILE": "/nonexistent", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent", "HOME": "/nonexistent",
		"SQLITE_STORE_DIR": t.TempDir()}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	cfg, err := config.Parse([]byte(runConfig), lookup)
	if err != nil {
		t.Fatal(err)
	}
	g, err := newTestGateway(t, cfg, Options{LookupEnv: lookup})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g.Handler())
	t.Cleanup(srv.Close)
	return srv.URL
}

func client(base string) oai.Client {
	return oai.NewClient(option.WithBaseURL(base+"/v1/"), option.WithAPIKey("none"), option.WithMaxRetries(0))
}

func userMsg(s string) oai.ChatCompletionNewParams {
	return oai.ChatCompletionNewParams{Model: modelID, Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage(s)}}
}

func TestOpenAIGoInProcess(t *testing.T) {
	double := bedrocktest.New(t, bedrocktest.Options{})
	c := client(serve(t, double, bedrocktest.DefaultKey))
	resp, err := c.Chat.Completions.New(t.Context(), userMsg("Which planet do humans live on?"))
	if err != nil {
		t.Fatal(err)
	}
	if resp.Model != modelID || !strings.Contains(resp.Choices[0].Message.Content, "Earth") || resp.Usage.TotalTokens == 0 {
		t.Errorf("resp = %+v", resp)
	}
	stream := c.Chat.Completions.NewStreaming(t.Context(), userMsg("What's the name of the Sun in Latin?"))
	var acc oai.ChatCompletionAccumulator
	for stream.Next() {
		acc.AddChunk(stream.Current())
	}
	if err := stream.Err(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(acc.Choices[0].Message.Content, "Sol") {
		t.Errorf("stream content = %q", acc.Choices[0].Message.Content)
	}
	if got := double.Requests()[0].Chat.Model; got != upstreamID {
		t.Errorf("upstream model = %q", got)
	}
}

func TestBedrockErrorsThroughSDK(t *testing.T) {
	tests := []struct {
		name       string
		key        string
		opts       bedrocktest.Options
		arm        func(*bedrocktest.Server)
		wantStatus int
		wantMsg    []string
		retryAfter string
	}{
		{"expired key", "old-key", bedrocktest.Options{ExpiredKeys: []string{"old-key"}}, nil, 401, []string{"expired", "AWS_BEARER_TOKEN_BEDROCK"}, ""},
		{"invalid key", "wrong-key", bedrocktest.Options{}, nil, 401, []string{"invalid", "AWS_BEARER_TOKEN_BEDROCK"}, ""},
		{"no key", "", bedrocktest.Options{}, nil, 401, []string{"no usable Bedrock credentials", "AWS_BEARER_TOKEN_BEDROCK"}, ""},
		{"no model access", bedrocktest.DefaultKey, bedrocktest.Options{NoAccess: []string{upstreamID}}, nil, 403, []string{"no access"}, ""},
		// Throttling and 5xx that outlast the retries (2 by default).
		{"throttled", bedrocktest.DefaultKey, bedrocktest.Options{}, func(s *bedrocktest.Server) { s.Throttle(-1) }, 429, []string{"Too many requests"}, "1"},
		{"5xx", bedrocktest.DefaultKey, bedrocktest.Options{}, func(s *bedrocktest.Server) { s.FailWith(-1, 503) }, 502, nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			double := bedrocktest.New(t, tt.opts)
			if tt.arm != nil {
				tt.arm(double)
			}
			base := serve(t, double, tt.key)
			var httpResp *http.Response
			c := client(base)
			_, err := c.Chat.Completions.New(t.Context(), userMsg("Hello!"), option.WithResponseInto(&httpResp))
			var apiErr *oai.Error
			if !errors.As(err, &apiErr) {
				t.Fatalf("err = %v", err)
			}
			if apiErr.StatusCode != tt.wantStatus {
				t.Errorf("status = %d, want %d: %s", apiErr.StatusCode, tt.wantStatus, apiErr.Message)
			}
			for _, w := range tt.wantMsg {
				if !strings.Contains(apiErr.Message, w) {
					t.Errorf("message %q lacks %q", apiErr.Message, w)
				}
			}
			if strings.Contains(apiErr.Message, bedrocktest.DefaultKey) || (tt.key != "" && strings.Contains(apiErr.Message, tt.key)) {
				t.Errorf("message leaks the key: %q", apiErr.Message)
			}
			if got := apiErr.Response.Header.Get("Retry-After"); got != tt.retryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
			}
		})
	}
}

// TestBedrockRetriedThroughSDK: one throttle or one 5xx is retried
// before anything reaches the client, which sees a normal answer.
func TestBedrockRetriedThroughSDK(t *testing.T) {
	for name, arm := range map[string]func(*bedrocktest.Server){
		"throttled once": func(s *bedrocktest.Server) { s.Throttle(1) },
		"503 once":       func(s *bedrocktest.Server) { s.FailWith(1, 503) },
	} {
		t.Run(name, func(t *testing.T) {
			double := bedrocktest.New(t, bedrocktest.Options{})
			arm(double)
			c := client(serve(t, double, bedrocktest.DefaultKey))
			resp, err := c.Chat.Completions.New(t.Context(), userMsg("Hello!"))
			if err != nil {
				t.Fatal(err)
			}
			if resp.Choices[0].Message.Content == "" {
				t.Error("empty answer")
			}
			if n := len(double.Requests()); n != 2 {
				t.Errorf("upstream saw %d requests, want 2 (one failed, one retried)", n)
			}
		})
	}
}

// TestStreamDropEndsWithError: Bedrock cuts the connection mid-stream; the
// SDK sees an error, never a finished answer.
func TestStreamDropEndsWithError(t *testing.T) {
	double := bedrocktest.New(t, bedrocktest.Options{})
	double.DropStreamAfter(1, 3)
	c := client(serve(t, double, bedrocktest.DefaultKey))
	stream := c.Chat.Completions.NewStreaming(t.Context(), userMsg("Explain quantum computing"))
	n := 0
	for stream.Next() {
		n++
		if stream.Current().Choices != nil && len(stream.Current().Choices) > 0 && stream.Current().Choices[0].FinishReason != "" {
			t.Errorf("a finish_reason reached the client of a broken stream")
		}
	}
	if stream.Err() == nil {
		t.Fatalf("stream of %d chunks ended without an error", n)
	}
	if n != 3 {
		t.Errorf("client got %d chunks before the error, want 3", n)
	}
}

// TestStreamGated proves chunks are relayed one by one: the double holds
// every chunk after the first until the client has seen the previous one.
func TestStreamGated(t *testing.T) {
	double := bedrocktest.New(t, bedrocktest.Options{})
	gate := double.Gate()
	base := serve(t, double, bedrocktest.DefaultKey)
	body := `{"model":"` + modelID + `","messages":[{"role":"user","content":"Count to 5"}],"stream":true}`
	resp, err := http.Post(base+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	rd := bufio.NewReader(resp.Body)
	events := 0
	for {
		line, err := readEvent(rd)
		if err != nil {
			t.Fatalf("after %d events: %v", events, err)
		}
		events++
		if line == "[DONE]" {
			break
		}
		// Only now may the upstream send the next chunk.
		gate.Release()
	}
	if events < 4 {
		t.Errorf("%d events", events)
	}
}

// checkSeparated streams the replay through the default model and checks
// that reasoning and answer come apart with nothing lost.
func checkSeparated(t *testing.T, base string, recorded []byte) {
	t.Helper()
	var wantReasoning, wantContent strings.Builder
	for _, l := range strings.Split(strings.TrimSpace(string(recorded)), "\n") {
		var ch oai.ChatCompletionChunk
		if err := json.Unmarshal([]byte(l), &ch); err != nil {
			t.Fatal(err)
		}
		if len(ch.Choices) > 0 {
			c := ch.Choices[0].Delta.Content
			for {
				i := strings.Index(c, "<reasoning>")
				if i < 0 {
					wantContent.WriteString(c)
					break
				}
				wantContent.WriteString(c[:i])
				j := strings.Index(c, "</reasoning>")
				wantReasoning.WriteString(c[i+len("<reasoning>") : j])
				c = c[j+len("</reasoning>"):]
			}
		}
	}
	resp, err := http.Post(base+"/v1/chat/completions", "application/json",
		strings.NewReader(`{"model":"`+modelID+`","messages":[{"role":"user","content":"x"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var gotReasoning, gotContent strings.Builder
	for _, l := range strings.Split(string(body), "\n") {
		d, ok := strings.CutPrefix(l, "data: ")
		if !ok || d == "[DONE]" {
			continue
		}
		var ch struct {
			Choices []struct {
				Delta struct {
					Content          *string `json:"content"`
					ReasoningContent *string `json:"reasoning_content"`
				} `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(d), &ch); err != nil {
			t.Fatal(err)
		}
		for _, c := range ch.Choices {
			if c.Delta.Content != nil {
				gotContent.WriteString(*c.Delta.Content)
			}
			if c.Delta.ReasoningContent != nil {
				gotReasoning.WriteString(*c.Delta.ReasoningContent)
			}
		}
	}
	if gotReasoning.String() != wantReasoning.String() || gotContent.String() != wantContent.String() {
		t.Errorf("separated:\n reasoning %q\n content %q\nwant\n reasoning %q\n content %q", gotReasoning.String(), gotContent.String(), wantReasoning.String(), wantContent.String())
	}
	if strings.Contains(gotContent.String(), "reasoning>") {
		t.Errorf("tags in content: %q", gotContent.String())
	}
}

func readEvent(rd *bufio.Reader) (string, error) {
	for {
		line, err := rd.ReadString('\n')
		if err != nil {
			return "", err
		}
		if d, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "data: "); ok {
			return d, nil
		}
	}
}

// TestClientGoneCancelsBedrock: the client leaves mid-stream and the
// double sees its request canceled.
func TestClientGoneCancelsBedrock(t *testing.T) {
	double := bedrocktest.New(t, bedrocktest.Options{})
	double.StallStreamAfter(1, 2)
	base := serve(t, double, bedrocktest.DefaultKey)
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/v1/chat/completions",
		strings.NewReader(`{"model":"`+modelID+`","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := readEvent(bufio.NewReader(resp.Body)); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-double.Canceled():
	case <-time.After(10 * time.Second):
		t.Fatal("Bedrock's request was not canceled when the client left")
	}
}

// TestReplayRecordedStreams relays the recorded Bedrock transcripts: with
// the passthrough setting every chunk arrives unchanged but for its model;
// by default the reasoning is separated and nothing else is lost.
func TestReplayRecordedStreams(t *testing.T) {
	dir, err := bedrocktest.Fixtures()
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"runtime-chat-completion-gpt-oss-20b.stream.chunks.jsonl", "runtime-chat-completion-gpt-oss-20b-toolcall.stream.chunks.jsonl"} {
		t.Run(name, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			var want []string
			for _, l := range strings.Split(strings.TrimSpace(string(raw)), "\n") {
				want = append(want, strings.Replace(l, `"model":"`+upstreamID+`"`, `"model":"bedrock/raw"`, 1))
			}
			double := bedrocktest.New(t, bedrocktest.Options{})
			double.Replay(2, name)
			base := serve(t, double, bedrocktest.DefaultKey)
			checkSeparated(t, base, raw)
			resp, err := http.Post(base+"/v1/chat/completions", "application/json",
				strings.NewReader(`{"model":"bedrock/raw","messages":[{"role":"user","content":"x"}],"stream":true}`))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			var got []string
			for _, l := range strings.Split(string(body), "\n") {
				if d, ok := strings.CutPrefix(l, "data: "); ok {
					got = append(got, d)
				}
			}
			if len(got) != len(want)+1 || got[len(got)-1] != "[DONE]" {
				t.Fatalf("got %d events, want %d + [DONE]", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Fatalf("chunk %d:\n got %s\nwant %s", i, got[i], want[i])
				}
			}
			// The tool-call transcript still accumulates to valid arguments.
			if strings.Contains(name, "toolcall") {
				var acc oai.ChatCompletionAccumulator
				for _, d := range got[:len(got)-1] {
					var ch oai.ChatCompletionChunk
					if err := json.Unmarshal([]byte(d), &ch); err != nil {
						t.Fatal(err)
					}
					acc.AddChunk(ch)
				}
				tc := acc.Choices[0].Message.ToolCalls
				if len(tc) != 1 || tc[0].Function.Name != "get_boiling_point" || !json.Valid([]byte(tc[0].Function.Arguments)) {
					t.Errorf("tool calls = %+v", tc)
				}
				if !bytes.Contains([]byte(tc[0].Function.Arguments), []byte("myawesomeliquid")) {
					t.Errorf("arguments = %s", tc[0].Function.Arguments)
				}
			}
		})
	}
}

func TestEveryProviderTypeDescribed(t *testing.T) {
	for _, p := range ProviderTypes() {
		if p.Description == "" {
			t.Errorf("%s has no description", p.Type)
		}
	}
}
