package bedrocktest_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

const chatPath = "/openai/v1/chat/completions"

func fixturesDir(t *testing.T) string {
	t.Helper()
	dir, err := bedrocktest.Fixtures()
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

func readFixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(fixturesDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// post sends a chat request; key "" sends no Authorization header.
func post(t *testing.T, ctx context.Context, s *bedrocktest.Server, key, body string) *http.Response {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URL()+chatPath, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = resp.Body.Close() })
	return resp
}

func readAll(t *testing.T, r io.Reader) []byte {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	return b
}

func chatBody(model, prompt string, extra string) string {
	b, _ := json.Marshal(prompt)
	return `{"model":"` + model + `","messages":[{"role":"user","content":` + string(b) + `}]` + extra + `}`
}

// sseReader reads "data: …\n\n" events one at a time.
type sseReader struct{ r *bufio.Reader }

func newSSE(r io.Reader) *sseReader { return &sseReader{bufio.NewReader(r)} }

// next returns the payload of the next event; it fails on bad framing.
func (s *sseReader) next() (string, error) {
	line, err := s.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if !strings.HasPrefix(line, "data: ") || !strings.HasSuffix(line, "\n") {
		return "", errors.New("bad event line " + strconvQuote(line))
	}
	blank, err := s.r.ReadString('\n')
	if err != nil {
		return "", err
	}
	if blank != "\n" {
		return "", errors.New("event not followed by a blank line: " + strconvQuote(blank))
	}
	return strings.TrimSuffix(strings.TrimPrefix(line, "data: "), "\n"), nil
}

func strconvQuote(s string) string { b, _ := json.Marshal(s); return string(b) }

// readStream reads a whole stream, checks its framing and returns the JSON
// payloads before data: [DONE].
func readStream(t *testing.T, body io.Reader) []string {
	t.Helper()
	r := newSSE(body)
	var out []string
	for {
		p, err := r.next()
		if err != nil {
			t.Fatalf("after %d events: %v", len(out), err)
		}
		if p == "[DONE]" {
			break
		}
		if !json.Valid([]byte(p)) {
			t.Fatalf("event %d is not JSON: %s", len(out), p)
		}
		out = append(out, p)
	}
	if rest, _ := io.ReadAll(r.r); len(rest) != 0 {
		t.Fatalf("bytes after [DONE]: %q", rest)
	}
	return out
}

type testChunk struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Model   string `json:"model"`
	Created int64  `json:"created"`
	Choices []struct {
		Index        int     `json:"index"`
		FinishReason *string `json:"finish_reason"`
		Obfuscation  *string `json:"obfuscation"`
		Delta        struct {
			Role      *string `json:"role"`
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    int     `json:"index"`
				ID       *string `json:"id"`
				Type     string  `json:"type"`
				Function struct {
					Name      *string `json:"name"`
					Arguments string  `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

func parseChunks(t *testing.T, payloads []string) []testChunk {
	t.Helper()
	out := make([]testChunk, len(payloads))
	for i, p := range payloads {
		if err := json.Unmarshal([]byte(p), &out[i]); err != nil {
			t.Fatalf("chunk %d: %v", i, err)
		}
	}
	return out
}

type testCompletion struct {
	ID          string `json:"id"`
	Object      string `json:"object"`
	Created     int64  `json:"created"`
	Model       string `json:"model"`
	ServiceTier string `json:"service_tier"`
	Choices     []struct {
		Index        int             `json:"index"`
		FinishReason string          `json:"finish_reason"`
		Logprobs     json.RawMessage `json:"logprobs"`
		Message      struct {
			Role      string          `json:"role"`
			Content   *string         `json:"content"`
			Refusal   json.RawMessage `json:"refusal"`
			ToolCalls []struct {
				ID       string `json:"id"`
				Type     string `json:"type"`
				Function struct {
					Name      string `json:"name"`
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"message"`
	} `json:"choices"`
	Usage struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
		TotalTokens      int `json:"total_tokens"`
	} `json:"usage"`
}

func TestAuth(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{ExpiredKeys: []string{"old-key"}})
	ok := chatBody("openai.gpt-oss-20b-1:0", "hello", "")
	tests := []struct {
		name    string
		auth    string // full Authorization header; "" for none
		fixture string // "" means success
	}{
		{"valid key", "Bearer " + bedrocktest.DefaultKey, ""},
		{"scheme case-insensitive", "bearer " + bedrocktest.DefaultKey, ""},
		{"missing header", "", "error-bearer-invalid-key-403.http"},
		{"unknown key", "Bearer nope", "error-bearer-invalid-key-403.http"},
		{"empty bearer", "Bearer ", "error-bearer-invalid-key-403.http"},
		{"basic scheme", "Basic " + bedrocktest.DefaultKey, "error-bearer-invalid-key-403.http"},
		{"expired key", "Bearer old-key", "error-bearer-expired-403.http"},
		{"sigv4", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/us-west-2/bedrock/aws4_request, SignedHeaders=host, Signature=00", "error-sigv4-unrecognized-client-403.http"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+chatPath, strings.NewReader(ok))
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body := readAll(t, resp.Body)
			if tt.fixture == "" {
				if resp.StatusCode != http.StatusOK {
					t.Fatalf("status %d, body %s", resp.StatusCode, body)
				}
				return
			}
			status, header, want, err := bedrocktest.LoadHTTP(filepath.Join(fixturesDir(t), tt.fixture))
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != status {
				t.Errorf("status = %d, want %d", resp.StatusCode, status)
			}
			if got, want := resp.Header.Get("X-Amzn-ErrorType"), header.Get("X-Amzn-ErrorType"); got != want || want == "" {
				t.Errorf("x-amzn-ErrorType = %q, want %q", got, want)
			}
			if got, want := resp.Header.Get("Content-Type"), "application/json"; got != want {
				t.Errorf("Content-Type = %q, want %q", got, want)
			}
			if !bytes.Equal(body, want) {
				t.Errorf("body = %s\nwant   %s", body, want)
			}
		})
	}
}

func TestRequestErrors(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{NoAccess: []string{"openai.gpt-oss-120b-1:0"}})
	image := string(readFixture(t, "runtime-chat-completion-error-400-image-modality.request.json"))
	tests := []struct {
		name       string
		body       string
		status     int
		wantBody   string // exact, when set
		errType    string // x-amzn-ErrorType prefix, when set
		wantSubstr string
	}{
		{
			name: "no access", body: chatBody("openai.gpt-oss-120b-1:0", "hi", ""), status: 403,
			wantBody: `{"Message":"You don't have access to the model with the specified model ID."}`,
			errType:  "AccessDeniedException:",
		},
		{
			name: "unknown model", body: chatBody("us.anthropic.claude-x", "hi", ""), status: 404,
			wantBody: "{\"error\":{\"code\":\"model_not_found\",\"message\":\"The model `us.anthropic.claude-x` does not exist.\",\"param\":null,\"type\":\"invalid_request_error\"}}",
		},
		{
			name: "unknown parameter", body: chatBody("openai.gpt-oss-20b-1:0", "hi", `,"temperature":0.5,"thinking":{"type":"enabled"},"zzz":1`), status: 400,
			wantBody: `{"error":{"code":"unknown_parameter","message":"Unknown parameter: 'thinking'.","param":"thinking","type":"invalid_request_error"}}`,
		},
		{
			name: "image part", body: image, status: 400,
			wantBody: string(readFixture(t, "runtime-chat-completion-error-400-image-modality.response.json")),
		},
		{name: "malformed JSON", body: `{"model":`, status: 400, wantSubstr: `validation_error`},
		{name: "not an object", body: `[1,2]`, status: 400, wantSubstr: `validation_error`},
		{name: "wrong type", body: chatBody("openai.gpt-oss-20b-1:0", "hi", `,"temperature":"hot"`), status: 400, wantSubstr: `temperature`},
		{name: "no messages", body: `{"model":"openai.gpt-oss-20b-1:0","messages":[]}`, status: 400, wantSubstr: `messages`},
		{name: "max_tokens zero", body: chatBody("openai.gpt-oss-20b-1:0", "hi", `,"max_tokens":0`), status: 400, wantSubstr: `max_tokens`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, t.Context(), s, bedrocktest.DefaultKey, tt.body)
			body := readAll(t, resp.Body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.status, body)
			}
			if tt.wantBody != "" && string(body) != tt.wantBody {
				t.Errorf("body = %s\nwant   %s", body, tt.wantBody)
			}
			if !strings.Contains(string(body), tt.wantSubstr) {
				t.Errorf("body %s does not contain %q", body, tt.wantSubstr)
			}
			if tt.errType != "" && !strings.HasPrefix(resp.Header.Get("X-Amzn-ErrorType"), tt.errType) {
				t.Errorf("x-amzn-ErrorType = %q, want prefix %q", resp.Header.Get("X-Amzn-ErrorType"), tt.errType)
			}
			if !json.Valid(body) {
				t.Errorf("body is not JSON: %s", body)
			}
			if strings.Contains(tt.wantSubstr, "validation_error") || tt.name == "wrong type" {
				var env struct {
					Error struct{ Message, Code string } `json:"error"`
				}
				_ = json.Unmarshal(body, &env)
				var inner struct {
					Error struct{ Code string } `json:"error"`
				}
				if err := json.Unmarshal([]byte(env.Error.Message), &inner); err != nil || inner.Error.Code != "validation_error" {
					t.Errorf("not a double-encoded validation_error: %s", body)
				}
			}
		})
	}
}

func TestOtherRoutes(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	for _, tc := range []struct{ method, path string }{
		{"GET", "/openai/v1/models"},
		{"GET", chatPath},
		{"POST", "/openai/v1/completions"},
		{"POST", "/openai/v1/embeddings"},
	} {
		req, _ := http.NewRequestWithContext(t.Context(), tc.method, s.URL()+tc.path, nil)
		req.Header.Set("Authorization", "Bearer "+bedrocktest.DefaultKey)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s %s: status %d, want 404", tc.method, tc.path, resp.StatusCode)
		}
	}
}

var (
	completionID = regexp.MustCompile(`^chatcmpl-[0-9a-f]{32}$`)
	toolCallID   = regexp.MustCompile(`^chatcmpl-tool-[0-9a-f]{16}$`)
)

func TestNonStream(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	before := time.Now().Unix()
	resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-120b-1:0", "What is the capital of France?", `,"n":2,"temperature":0.2`))
	raw := readAll(t, resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, raw)
	}
	if got := resp.Header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type = %q", got)
	}
	if !bytes.Contains(raw, []byte(`"content":"<reasoning>`)) {
		t.Errorf("reasoning tags are escaped or missing: %s", raw)
	}
	for _, key := range []string{`"logprobs":null`, `"refusal":null`, `"service_tier":"default"`, `"object":"chat.completion"`} {
		if !bytes.Contains(raw, []byte(key)) {
			t.Errorf("body lacks %s: %s", key, raw)
		}
	}
	var c testCompletion
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if !completionID.MatchString(c.ID) {
		t.Errorf("id = %q", c.ID)
	}
	if c.Object != "chat.completion" || c.Model != "openai.gpt-oss-120b-1:0" || c.ServiceTier != "default" {
		t.Errorf("object/model/tier = %q %q %q", c.Object, c.Model, c.ServiceTier)
	}
	if c.Created < before || c.Created > time.Now().Unix() {
		t.Errorf("created = %d", c.Created)
	}
	if len(c.Choices) != 2 {
		t.Fatalf("%d choices, want 2", len(c.Choices))
	}
	wantContent := `<reasoning>The user asks: "What is the capital of France?". Answer directly.</reasoning>The capital of France is **Paris**.`
	for i, ch := range c.Choices {
		if ch.Index != i || ch.FinishReason != "stop" || ch.Message.Role != "assistant" || string(ch.Logprobs) != "null" || string(ch.Message.Refusal) != "null" {
			t.Errorf("choice %d = %+v", i, ch)
		}
		if ch.Message.Content == nil || *ch.Message.Content != wantContent {
			t.Errorf("choice %d content = %v, want %q", i, ch.Message.Content, wantContent)
		}
	}
	// prompt: 6 words + 70; completion: (11 + 6) words × 2 choices.
	if u := c.Usage; u.PromptTokens != 76 || u.CompletionTokens != 34 || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
		t.Errorf("usage = %+v", u)
	}
}

func TestDefaultResponder(t *testing.T) {
	user := func(s string) string { b, _ := json.Marshal(s); return `{"role":"user","content":` + string(b) + `}` }
	assistant := `{"role":"assistant","content":"ok"}`
	tests := []struct {
		name     string
		messages []string
		want     string
	}{
		{"planet", []string{user("Which planet do humans live on?")}, "Humans live on **Earth**, the third planet from the Sun."},
		{"latin", []string{user("What is the name of the Sun in Latin?")}, "In Latin the Sun is called **Sol**."},
		{"name known", []string{user("Hi, my name is Ada Lovelace."), assistant, user("What is my name?")}, "Your name is Ada Lovelace."},
		{"name lower", []string{user("my name is bob and I like tea"), assistant, user("what is my name")}, "Your name is bob."},
		{"name latest wins", []string{user("My name is Ann"), assistant, user("Actually my name is Zoe!"), assistant, user("What is my name?")}, "Your name is Zoe."},
		{"name unknown", []string{user("What is my name?")}, "I don't know your name."},
		{"france", []string{user("what's the CAPITAL OF FRANCE")}, "The capital of France is **Paris**."},
		{"math", []string{user("What is 2 + 2?")}, "2 + 2 = 4."},
		{"shakespeare", []string{user("Who wrote Romeo and Juliet?")}, "Romeo and Juliet was written by William Shakespeare."},
		{"haiku", []string{user("Write a haiku about programming")}, "Code flows like rivers\nDebugging whispers in loops\nLogic blooms at dawn"},
		{"count", []string{user("Count to 5")}, "1, 2, 3, 4, 5"},
		{"weather", []string{user("How is the weather today?")}, "Hark! The heavens doth weep upon the land this day."},
		{"json", []string{user("How do I read a JSON file in Python?")}, "```python\nimport json\nwith open('data.json') as f:\n    data = json.load(f)\n```"},
		{"hello", []string{user("Hello there")}, "Hello! How can I help you today?"},
		{"quantum", []string{user("Explain quantum computing")}, bedrocktest.LongAnswer},
		{"echo", []string{user("Tell me something")}, "You said: Tell me something"},
		{"array content", []string{`{"role":"user","content":[{"type":"text","text":"Capital of France?"}]}`}, "The capital of France is **Paris**."},
		{"system first", []string{`{"role":"system","content":"Talk like a pirate"}`, user("hello")}, "Hello! How can I help you today?"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var req bedrocktest.ChatRequest
			body := `{"model":"m","messages":[` + strings.Join(tt.messages, ",") + `]}`
			if err := json.Unmarshal([]byte(body), &req); err != nil {
				t.Fatal(err)
			}
			r := bedrocktest.DefaultResponder(&req)
			if r.Answer != tt.want {
				t.Errorf("answer = %q, want %q", r.Answer, tt.want)
			}
			last := req.Messages[len(req.Messages)-1].Text
			if want := `The user asks: "` + last + `". Answer directly.`; r.Reasoning != want {
				t.Errorf("reasoning = %q, want %q", r.Reasoning, want)
			}
			if r.ToolCall != nil {
				t.Errorf("unexpected tool call %+v", r.ToolCall)
			}
		})
	}
	if n := len(strings.Fields(bedrocktest.LongAnswer)); n < 120 {
		t.Errorf("LongAnswer has %d words, want ≥ 120", n)
	}
}

func TestStreamFraming(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	for _, includeUsage := range []bool{false, true} {
		t.Run(map[bool]string{false: "no usage", true: "include_usage"}[includeUsage], func(t *testing.T) {
			extra := `,"stream":true`
			if includeUsage {
				extra += `,"stream_options":{"include_usage":true}`
			}
			resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "Explain quantum computing", extra))
			if resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if got := resp.Header.Get("Content-Type"); got != "text/event-stream" {
				t.Errorf("Content-Type = %q", got)
			}
			payloads := readStream(t, resp.Body)
			chunks := parseChunks(t, payloads)
			if len(chunks) < 10 {
				t.Fatalf("only %d chunks", len(chunks))
			}
			id := chunks[0].ID
			if !completionID.MatchString(id) {
				t.Errorf("id = %q", id)
			}
			var reasoning, answer strings.Builder
			finishes := 0
			for i, c := range chunks {
				if c.ID != id || c.Object != "chat.completion.chunk" || c.Model != "openai.gpt-oss-20b-1:0" {
					t.Errorf("chunk %d header = %q %q %q", i, c.ID, c.Object, c.Model)
				}
				if !strings.Contains(payloads[i], `"system_fingerprint":null`) {
					t.Errorf("chunk %d lacks system_fingerprint null", i)
				}
				if len(c.Choices) == 0 {
					if !includeUsage || i != len(chunks)-1 {
						t.Errorf("chunk %d has no choices", i)
					}
					if !strings.Contains(payloads[i], `"choices":[]`) {
						t.Errorf("usage chunk %s", payloads[i])
					}
					continue
				}
				ch := c.Choices[0]
				if ch.Obfuscation == nil || !regexp.MustCompile(`^[A-Za-z0-9]+$`).MatchString(*ch.Obfuscation) {
					t.Errorf("chunk %d obfuscation = %v", i, ch.Obfuscation)
				}
				if c.Usage != nil {
					t.Errorf("chunk %d has usage", i)
				}
				switch {
				case i == 0:
					if ch.Delta.Role == nil || *ch.Delta.Role != "assistant" || ch.Delta.Content == nil || *ch.Delta.Content != "" {
						t.Errorf("first chunk = %s", payloads[i])
					}
				case i == 1:
					if ch.Delta.Content != nil || !strings.Contains(payloads[i], `"content":null`) {
						t.Errorf("second chunk = %s", payloads[i])
					}
				case ch.Delta.Content != nil:
					text := *ch.Delta.Content
					if strings.HasPrefix(text, "<reasoning>") {
						if !strings.HasSuffix(text, "</reasoning>") || answer.Len() > 0 {
							t.Errorf("chunk %d reasoning piece %q", i, text)
						}
						reasoning.WriteString(strings.TrimSuffix(strings.TrimPrefix(text, "<reasoning>"), "</reasoning>"))
					} else {
						answer.WriteString(text)
					}
				}
				if ch.FinishReason != nil {
					finishes++
					if *ch.FinishReason != "stop" || ch.Delta.Content == nil || *ch.Delta.Content == "" {
						t.Errorf("finish chunk %d = %s", i, payloads[i])
					}
				}
			}
			if finishes != 1 {
				t.Errorf("%d finish_reason chunks, want 1", finishes)
			}
			if got, want := reasoning.String(), `The user asks: "Explain quantum computing". Answer directly.`; got != want {
				t.Errorf("reasoning = %q, want %q", got, want)
			}
			if got := answer.String(); got != bedrocktest.LongAnswer {
				t.Errorf("answer = %q", got)
			}
			last := chunks[len(chunks)-1]
			if includeUsage {
				u := last.Usage
				if u == nil || u.PromptTokens != 73 || u.CompletionTokens != 8+len(strings.Fields(bedrocktest.LongAnswer)) || u.TotalTokens != u.PromptTokens+u.CompletionTokens {
					t.Errorf("usage = %+v", u)
				}
			} else if last.Usage != nil || len(last.Choices) == 0 {
				t.Errorf("usage chunk without include_usage: %s", payloads[len(payloads)-1])
			}
		})
	}
}

func TestStreamN(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "hello", `,"n":2,"stream":true`))
	chunks := parseChunks(t, readStream(t, resp.Body))
	text := map[int]string{}
	finish := map[int]string{}
	for _, c := range chunks {
		for _, ch := range c.Choices {
			if ch.Delta.Content != nil && !strings.HasPrefix(*ch.Delta.Content, "<reasoning>") {
				text[ch.Index] += *ch.Delta.Content
			}
			if ch.FinishReason != nil {
				finish[ch.Index] = *ch.FinishReason
			}
		}
	}
	for i := range 2 {
		if text[i] != "Hello! How can I help you today?" || finish[i] != "stop" {
			t.Errorf("choice %d: %q %q", i, text[i], finish[i])
		}
	}
}

func toolRequest(t *testing.T, stream bool) string {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(readFixture(t, "runtime-chat-completion-gpt-oss-20b-toolcall.stream.request.json"), &m); err != nil {
		t.Fatal(err)
	}
	m["stream"] = stream
	if !stream {
		delete(m, "stream_options")
	}
	b, _ := json.Marshal(m)
	return string(b)
}

func TestToolCallStream(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	resp := post(t, t.Context(), s, bedrocktest.DefaultKey, toolRequest(t, true))
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	chunks := parseChunks(t, readStream(t, resp.Body))
	var id, name string
	var args strings.Builder
	multi, finish := false, ""
	for i, c := range chunks {
		if len(c.Choices) == 0 {
			continue
		}
		ch := c.Choices[0]
		if len(ch.Delta.ToolCalls) > 1 {
			multi = true
		}
		for _, tc := range ch.Delta.ToolCalls {
			if tc.Index != 0 || tc.Type != "function" {
				t.Errorf("chunk %d tool call %+v", i, tc)
			}
			if tc.ID != nil {
				if id != "" {
					t.Errorf("second id in chunk %d", i)
				}
				id = *tc.ID
			}
			if tc.Function.Name != nil {
				name += *tc.Function.Name
			}
			args.WriteString(tc.Function.Arguments)
		}
		if ch.FinishReason != nil {
			finish = *ch.FinishReason
			if ch.Delta.Content != nil || ch.Delta.ToolCalls != nil {
				t.Errorf("finish chunk carries a delta")
			}
		}
	}
	if !toolCallID.MatchString(id) || name != "get_boiling_point" || finish != "tool_calls" || !multi {
		t.Errorf("id %q name %q finish %q multi-fragment %v", id, name, finish, multi)
	}
	var parsed map[string]any
	if err := json.Unmarshal([]byte(args.String()), &parsed); err != nil {
		t.Fatalf("arguments %q: %v", args.String(), err)
	}
	if parsed["liquid_name"] != "myawesomeliquid" {
		t.Errorf("arguments = %s", args.String())
	}
	if u := chunks[len(chunks)-1].Usage; u == nil {
		t.Error("no usage chunk")
	}
}

func TestToolCallNonStream(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	tests := []struct {
		name, body, wantTool string
	}{
		{"mentioned", toolRequest(t, false), "get_boiling_point"},
		{"tool_choice", `{"model":"openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a"}},{"type":"function","function":{"name":"b"}}],"tool_choice":{"type":"function","function":{"name":"b"}}}`, "b"},
		{"required", `{"model":"openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":"required"}`, "a"},
		{"none", `{"model":"openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"call a"}],"tools":[{"type":"function","function":{"name":"a"}}],"tool_choice":"none"}`, ""},
		{"not mentioned", `{"model":"openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"hello"}],"tools":[{"type":"function","function":{"name":"get_weather"}}]}`, ""},
		{"after tool result", `{"model":"openai.gpt-oss-20b-1:0","messages":[{"role":"user","content":"get_weather please"},{"role":"assistant","content":null,"tool_calls":[{"id":"x","type":"function","function":{"name":"get_weather","arguments":"{}"}}]},{"role":"tool","tool_call_id":"x","content":"sunny"}],"tools":[{"type":"function","function":{"name":"get_weather"}}]}`, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, t.Context(), s, bedrocktest.DefaultKey, tt.body)
			raw := readAll(t, resp.Body)
			var c testCompletion
			if err := json.Unmarshal(raw, &c); err != nil || len(c.Choices) != 1 {
				t.Fatalf("%v: %s", err, raw)
			}
			ch := c.Choices[0]
			if tt.wantTool == "" {
				if ch.FinishReason != "stop" || len(ch.Message.ToolCalls) != 0 || !strings.Contains(string(raw), `"tool_calls":null`) {
					t.Errorf("unexpected tool call: %s", raw)
				}
				return
			}
			if ch.FinishReason != "tool_calls" || len(ch.Message.ToolCalls) != 1 {
				t.Fatalf("no tool call: %s", raw)
			}
			tc := ch.Message.ToolCalls[0]
			if !toolCallID.MatchString(tc.ID) || tc.Type != "function" || tc.Function.Name != tt.wantTool || !json.Valid([]byte(tc.Function.Arguments)) {
				t.Errorf("tool call = %+v", tc)
			}
		})
	}
}

func TestToolResultAnswer(t *testing.T) {
	var req bedrocktest.ChatRequest
	body := `{"model":"m","messages":[{"role":"user","content":"weather?"},{"role":"tool","tool_call_id":"x","content":[{"type":"text","text":"sunny"}]}]}`
	if err := json.Unmarshal([]byte(body), &req); err != nil {
		t.Fatal(err)
	}
	if r := bedrocktest.DefaultResponder(&req); r.Answer != "The tool returned: sunny" || r.ToolCall != nil {
		t.Errorf("reply = %+v", r)
	}
}

func TestReplay(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	for _, name := range []string{
		"runtime-chat-completion-gpt-oss-20b.stream.chunks.jsonl",
		"runtime-chat-completion-gpt-oss-20b-toolcall.stream.chunks.jsonl",
	} {
		t.Run(name, func(t *testing.T) {
			want := strings.Split(strings.TrimSuffix(string(readFixture(t, name)), "\n"), "\n")
			s.Replay(1, name)
			// A non-streaming request does not use up the replay.
			if resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "hello", "")); resp.StatusCode != 200 {
				t.Fatalf("status %d", resp.StatusCode)
			}
			resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "hello", `,"stream":true`))
			got := readStream(t, resp.Body)
			if len(got) != len(want) {
				t.Fatalf("%d events, want %d", len(got), len(want))
			}
			for i := range want {
				if got[i] != want[i] {
					t.Errorf("event %d differs:\n got %s\nwant %s", i, got[i], want[i])
				}
			}
			// The next stream is generated again.
			resp = post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "hello", `,"stream":true`))
			if got := readStream(t, resp.Body); strings.Contains(got[0], "rec-") {
				t.Errorf("replay used twice")
			}
		})
	}
}

func TestThrottle(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	status, header, want, err := bedrocktest.LoadHTTP(filepath.Join(fixturesDir(t), "error-throttling-429.http"))
	if err != nil {
		t.Fatal(err)
	}
	check := func(t *testing.T, stream bool) {
		t.Helper()
		extra := ""
		if stream {
			extra = `,"stream":true`
		}
		resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "hello", extra))
		body := readAll(t, resp.Body)
		if resp.StatusCode != status || !bytes.Equal(body, want) {
			t.Errorf("got %d %s, want %d %s", resp.StatusCode, body, status, want)
		}
		for _, h := range []string{"X-Amzn-ErrorType", "X-Amzn-RequestId", "Date"} {
			if resp.Header.Get(h) != header.Get(h) {
				t.Errorf("%s = %q, want %q", h, resp.Header.Get(h), header.Get(h))
			}
		}
		if resp.Header.Get("Retry-After") != "1" {
			t.Errorf("Retry-After = %q", resp.Header.Get("Retry-After"))
		}
	}
	ok := func(t *testing.T) {
		t.Helper()
		if resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "hello", "")); resp.StatusCode != 200 {
			t.Errorf("status %d, want 200", resp.StatusCode)
		}
	}
	s.Throttle(2)
	// A request failing auth does not use up the fault.
	if resp := post(t, t.Context(), s, "bad", chatBody("openai.gpt-oss-20b-1:0", "hello", "")); resp.StatusCode != 403 {
		t.Errorf("bad key: status %d", resp.StatusCode)
	}
	check(t, false)
	check(t, true)
	ok(t)
	s.Throttle(-1)
	for range 3 {
		check(t, false)
	}
	s.Throttle(0)
	ok(t)
}

func TestFailWith(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	for _, tc := range []struct {
		status  int
		errType string
	}{
		{500, "InternalServerException:"},
		{503, "ServiceUnavailableException:"},
		{502, "InternalServerException:"},
	} {
		s.FailWith(1, tc.status)
		resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "hello", `,"stream":true`))
		body := readAll(t, resp.Body)
		var m map[string]string
		if resp.StatusCode != tc.status || json.Unmarshal(body, &m) != nil || m["message"] == "" || len(m) != 1 {
			t.Errorf("status %d body %s", resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Amzn-ErrorType"); !strings.HasPrefix(got, tc.errType) {
			t.Errorf("x-amzn-ErrorType = %q, want %s…", got, tc.errType)
		}
		if resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "hello", "")); resp.StatusCode != 200 {
			t.Errorf("after one failure: status %d", resp.StatusCode)
		}
	}
}

func TestDropStream(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	for _, after := range []int{0, 3, 1000} {
		s.DropStreamAfter(1, after)
		resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "hello", `,"stream":true`))
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		r := newSSE(resp.Body)
		n := 0
		var err error
		for {
			var p string
			if p, err = r.next(); err != nil {
				break
			}
			if p == "[DONE]" {
				t.Fatalf("after=%d: got [DONE]", after)
			}
			n++
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("after=%d: read error %v, want unexpected EOF", after, err)
		}
		if after < 1000 && n != after {
			t.Errorf("got %d events, want %d", n, after)
		}
	}
	// The fault was used up.
	resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "hello", `,"stream":true`))
	readStream(t, resp.Body)
}

func TestStallStreamAndCanceled(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	s.StallStreamAfter(1, 2)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	resp := post(t, ctx, s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "hello", `,"stream":true`))
	events := make(chan string)
	errc := make(chan error, 1)
	go func() {
		r := newSSE(resp.Body)
		for {
			p, err := r.next()
			if err != nil {
				errc <- err
				return
			}
			events <- p
		}
	}()
	for range 2 {
		select {
		case <-events:
		case err := <-errc:
			t.Fatal(err)
		}
	}
	select {
	case p := <-events:
		t.Fatalf("event after the stall: %s", p)
	case err := <-errc:
		t.Fatalf("stream ended during the stall: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	cancel()
	select {
	case <-s.Canceled():
	case <-time.After(10 * time.Second):
		t.Fatal("Canceled() not signalled")
	}
	<-errc
}

func TestCanceledDuringDelay(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{ChunkDelay: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(t.Context())
	resp := post(t, ctx, s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "Explain quantum computing", `,"stream":true`))
	if _, err := newSSE(resp.Body).next(); err != nil {
		t.Fatal(err)
	}
	cancel()
	select {
	case <-s.Canceled():
	case <-time.After(10 * time.Second):
		t.Fatal("Canceled() not signalled")
	}
}

func TestGate(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	g := s.Gate()
	if s.Gate() != g {
		t.Fatal("Gate() returned a new gate")
	}
	resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "hello", `,"stream":true`))
	events := make(chan string, 100)
	go func() {
		defer close(events)
		r := newSSE(resp.Body)
		for {
			p, err := r.next()
			if err != nil {
				return
			}
			events <- p
		}
	}()
	quiet := func() {
		t.Helper()
		select {
		case p := <-events:
			t.Fatalf("event went past the gate: %s", p)
		case <-time.After(50 * time.Millisecond):
		}
	}
	if p := <-events; !strings.Contains(p, `"role":"assistant"`) {
		t.Fatalf("first event = %s", p)
	}
	quiet()
	for range 2 {
		g.Release()
		if p, ok := <-events; !ok || p == "[DONE]" {
			t.Fatalf("released event = %q", p)
		}
		quiet()
	}
	g.Open()
	var last string
	for p := range events {
		last = p
	}
	if last != "[DONE]" {
		t.Errorf("last event = %q", last)
	}
}

func TestGateReleaseNeverBlocks(t *testing.T) {
	var g bedrocktest.Gate
	for range 1000 {
		g.Release()
	}
	g.Open()
	g.Open()
}

func TestMaxTokens(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	tests := []struct {
		name, extra, content, finish string
		tokens                       int
	}{
		{"reasoning cut", `,"max_tokens":5`, `<reasoning>The user asks: "What is</reasoning>`, "length", 5},
		{"answer cut", `,"max_completion_tokens":13`, `<reasoning>The user asks: "What is the capital of France?". Answer directly.</reasoning>The capital`, "length", 13},
		{"smaller wins", `,"max_tokens":100,"max_completion_tokens":6`, `<reasoning>The user asks: "What is the</reasoning>`, "length", 6},
		{"enough", `,"max_tokens":17`, `<reasoning>The user asks: "What is the capital of France?". Answer directly.</reasoning>The capital of France is **Paris**.`, "stop", 17},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "What is the capital of France?", tt.extra))
			var c testCompletion
			if err := json.Unmarshal(readAll(t, resp.Body), &c); err != nil {
				t.Fatal(err)
			}
			ch := c.Choices[0]
			if *ch.Message.Content != tt.content || ch.FinishReason != tt.finish || c.Usage.CompletionTokens != tt.tokens {
				t.Errorf("got %q %q %d, want %q %q %d", *ch.Message.Content, ch.FinishReason, c.Usage.CompletionTokens, tt.content, tt.finish, tt.tokens)
			}

			resp = post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "What is the capital of France?", tt.extra+`,"stream":true,"stream_options":{"include_usage":true}`))
			chunks := parseChunks(t, readStream(t, resp.Body))
			var content strings.Builder
			finish := ""
			for _, c := range chunks {
				for _, ch := range c.Choices {
					if ch.Delta.Content != nil {
						content.WriteString(*ch.Delta.Content)
					}
					if ch.FinishReason != nil {
						finish = *ch.FinishReason
					}
				}
			}
			got := strings.ReplaceAll(content.String(), "</reasoning><reasoning>", "")
			if got != tt.content || finish != tt.finish || chunks[len(chunks)-1].Usage.CompletionTokens != tt.tokens {
				t.Errorf("stream: got %q %q, want %q %q", got, finish, tt.content, tt.finish)
			}
		})
	}
}

func TestToolCallCutByMaxTokens(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	var m map[string]any
	_ = json.Unmarshal([]byte(toolRequest(t, false)), &m)
	m["max_tokens"] = 3
	b, _ := json.Marshal(m)
	resp := post(t, t.Context(), s, bedrocktest.DefaultKey, string(b))
	var c testCompletion
	if err := json.Unmarshal(readAll(t, resp.Body), &c); err != nil {
		t.Fatal(err)
	}
	if ch := c.Choices[0]; ch.FinishReason != "length" || len(ch.Message.ToolCalls) != 0 {
		t.Errorf("choice = %+v", ch)
	}
}

func TestResponderAndRequests(t *testing.T) {
	var mu sync.Mutex
	var seen []*bedrocktest.ChatRequest
	s := bedrocktest.New(t, bedrocktest.Options{
		Keys:   []string{"k1", "k2"},
		Models: []string{"my.model"},
		Responder: func(r *bedrocktest.ChatRequest) bedrocktest.Reply {
			mu.Lock()
			seen = append(seen, r)
			mu.Unlock()
			return bedrocktest.Reply{Answer: "plain"}
		},
	})
	body := `{"model":"my.model","messages":[{"role":"system","content":"be brief"},{"role":"user","content":[{"type":"text","text":"a"},{"type":"text","text":"b"}]}],"temperature":0.5,"top_p":1,"max_tokens":50,"n":1,"stream_options":{"include_usage":true},"tool_choice":"auto","reasoning_effort":"low"}`
	resp := post(t, t.Context(), s, "k2", body)
	raw := readAll(t, resp.Body)
	var c testCompletion
	if err := json.Unmarshal(raw, &c); err != nil || *c.Choices[0].Message.Content != "plain" {
		t.Fatalf("%v: %s", err, raw)
	}
	if resp := post(t, t.Context(), s, bedrocktest.DefaultKey, body); resp.StatusCode != 403 {
		t.Errorf("DefaultKey accepted although Keys was set")
	}
	reqs := s.Requests()
	if len(reqs) != 2 {
		t.Fatalf("%d requests recorded", len(reqs))
	}
	r := reqs[0]
	if r.Method != "POST" || r.Path != chatPath || r.Header.Get("Authorization") != "Bearer k2" || string(r.Body) != body || r.Chat == nil {
		t.Fatalf("recorded = %+v", r)
	}
	ch := r.Chat
	if ch.Model != "my.model" || len(ch.Messages) != 2 || ch.Messages[1].Text != "a\nb" || ch.Messages[0].Role != "system" ||
		ch.Temperature == nil || *ch.Temperature != 0.5 || ch.TopP == nil || *ch.TopP != 1 ||
		ch.MaxTokens == nil || *ch.MaxTokens != 50 || ch.MaxCompletionTokens != nil || ch.N == nil || *ch.N != 1 ||
		ch.StreamOptions == nil || !ch.StreamOptions.IncludeUsage || ch.Stream || string(ch.ToolChoice) != `"auto"` ||
		string(ch.Raw["reasoning_effort"]) != `"low"` {
		t.Errorf("parsed = %+v", ch)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != 1 || seen[0].Model != "my.model" {
		t.Errorf("responder saw %d requests", len(seen))
	}
}

func TestConcurrent(t *testing.T) {
	s := bedrocktest.New(t, bedrocktest.Options{})
	var wg sync.WaitGroup
	for i := range 16 {
		wg.Go(func() {
			extra := ""
			if i%2 == 0 {
				extra = `,"stream":true`
			}
			req, _ := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+chatPath, strings.NewReader(chatBody("openai.gpt-oss-20b-1:0", "hello", extra)))
			req.Header.Set("Authorization", "Bearer "+bedrocktest.DefaultKey)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Error(err)
				return
			}
			defer resp.Body.Close()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil || resp.StatusCode != 200 {
				t.Errorf("status %d, %v", resp.StatusCode, err)
			}
			_ = s.Requests()
		})
	}
	wg.Wait()
	if n := len(s.Requests()); n != 16 {
		t.Errorf("%d requests recorded", n)
	}
}

func TestCloseEndsBlockedStreams(t *testing.T) {
	s, err := bedrocktest.Start(bedrocktest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.StallStreamAfter(-1, 1)
	resp := post(t, t.Context(), s, bedrocktest.DefaultKey, chatBody("openai.gpt-oss-20b-1:0", "hello", `,"stream":true`))
	if _, err := newSSE(resp.Body).next(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close blocked on a stalled stream")
	}
	s.Close() // idempotent
}

func TestFixturesAndLoadHTTP(t *testing.T) {
	dir := fixturesDir(t)
	t.Setenv(bedrocktest.FixturesEnv, dir)
	if got, err := bedrocktest.Fixtures(); err != nil || got != dir {
		t.Errorf("Fixtures() with env = %q, %v", got, err)
	}
	t.Setenv(bedrocktest.FixturesEnv, filepath.Join(t.TempDir(), "missing"))
	if _, err := bedrocktest.Fixtures(); err == nil {
		t.Error("Fixtures() accepted a missing directory")
	}
	if _, err := bedrocktest.Start(bedrocktest.Options{}); err == nil {
		t.Error("Start without fixtures succeeded")
	}
	status, h, body, err := bedrocktest.LoadHTTP(filepath.Join(dir, "error-bearer-expired-403.http"))
	if err != nil || status != 403 || string(body) != `{"Message":"Bearer Token has expired"}` ||
		!strings.HasPrefix(h.Get("X-Amzn-ErrorType"), "AccessDeniedException:") || h.Get("Content-Length") != "38" {
		t.Errorf("LoadHTTP = %d %v %q %v", status, h, body, err)
	}
	lf := filepath.Join(t.TempDir(), "x.http")
	_ = os.WriteFile(lf, []byte("HTTP/1.1 418 I'm a teapot\nA: b\n\nbody\n"), 0o644)
	if status, h, body, err := bedrocktest.LoadHTTP(lf); err != nil || status != 418 || h.Get("A") != "b" || string(body) != "body\n" {
		t.Errorf("LoadHTTP(LF) = %d %v %q %v", status, h, body, err)
	}
}
