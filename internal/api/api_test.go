package api

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
)

const modelID = "up/m-1:0"

// newGateway serves the API in front of an OpenAI-compatible upstream
// handler and returns the gateway's URL and the number of upstream calls.
func newGateway(t *testing.T, upstream http.HandlerFunc) (string, *atomic.Int64) {
	t.Helper()
	var calls atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		upstream(w, r)
	}))
	t.Cleanup(up.Close)
	reg := registry.New(map[string]provider.Provider{
		"up": openaicompat.New(openaicompat.Options{ProviderID: "up", BaseURL: up.URL + "/v1", HTTPClient: up.Client()}),
	})
	if err := reg.Register(registry.Model{Identifier: modelID, ProviderID: "up", ProviderResourceID: "m-1:0"}); err != nil {
		t.Fatal(err)
	}
	if err := reg.Register(registry.Model{Identifier: "emb", ProviderID: "up", ModelType: registry.TypeEmbedding}); err != nil {
		t.Fatal(err)
	}
	gw := httptest.NewServer(NewHandler(Options{Registry: reg, Version: "test", MaxBodyBytes: 4096,
		Providers: []ProviderInfo{{API: "inference", ProviderID: "up", ProviderType: "remote::bedrock", Config: map[string]any{"api_key": "********"}}}}))
	t.Cleanup(gw.Close)
	return gw.URL, &calls
}

func completionJSON(model string) string {
	return `{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"` + model + `","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop","logprobs":null}],"service_tier":"default","usage":{"prompt_tokens":3,"completion_tokens":1,"total_tokens":4}}`
}

func okUpstream(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	_ = json.NewDecoder(r.Body).Decode(&body)
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, completionJSON(body["model"].(string)))
}

func post(t *testing.T, url, body string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, b
}

func errorDetail(t *testing.T, b []byte) openai.ErrorDetail {
	t.Helper()
	var e openai.ErrorBody
	if err := json.Unmarshal(b, &e); err != nil || e.Error.Message == "" {
		t.Fatalf("not an OpenAI error body: %s", b)
	}
	return e.Error
}

func TestChatBadInput(t *testing.T) {
	url, calls := newGateway(t, okUpstream)
	msgs := `"messages":[{"role":"user","content":"hi"}]`
	tests := []struct {
		name, body string
		status     int
		param      string
		msg        string
	}{
		{"empty body", ``, 400, "", "empty"},
		{"not json", `{"model":`, 400, "", "not valid JSON"},
		{"array body", `[1]`, 400, "", "JSON object"},
		{"missing model", `{` + msgs + `}`, 400, "model", "'model' is required"},
		{"model wrong type", `{"model":5,` + msgs + `}`, 400, "model", "must be a string"},
		{"missing messages", `{"model":"` + modelID + `"}`, 400, "messages", "'messages' is required"},
		{"empty messages", `{"model":"` + modelID + `","messages":[]}`, 400, "messages", "at least one"},
		{"bad role", `{"model":"` + modelID + `","messages":[{"role":"robot","content":"x"}]}`, 400, "messages[0].role", "must be one of"},
		{"missing content", `{"model":"` + modelID + `","messages":[{"role":"user"}]}`, 400, "messages[0].content", "required"},
		{"content number", `{"model":"` + modelID + `","messages":[{"role":"user","content":5}]}`, 400, "messages[0].content", "string or an array"},
		{"temperature string", `{"model":"` + modelID + `",` + msgs + `,"temperature":"hot"}`, 400, "temperature", "must be a number"},
		{"temperature range", `{"model":"` + modelID + `",` + msgs + `,"temperature":3}`, 400, "temperature", "between 0 and 2"},
		{"max_tokens zero", `{"model":"` + modelID + `",` + msgs + `,"max_tokens":0}`, 400, "max_tokens", "at least 1"},
		{"stream wrong type", `{"model":"` + modelID + `",` + msgs + `,"stream":"yes"}`, 400, "stream", "must be a boolean"},
		{"stream_options without stream", `{"model":"` + modelID + `",` + msgs + `,"stream_options":{"include_usage":true}}`, 400, "stream_options", "only allowed"},
		{"tool_choice without tools", `{"model":"` + modelID + `",` + msgs + `,"tool_choice":"auto"}`, 400, "tool_choice", "only allowed"},
		{"tool message without id", `{"model":"` + modelID + `","messages":[{"role":"tool","content":"x"}]}`, 400, "messages[0].tool_call_id", "required"},
		{"unknown model", `{"model":"nope",` + msgs + `}`, 404, "model", "Model 'nope' not found"},
		{"unknown provider prefix", `{"model":"other/x",` + msgs + `}`, 404, "model", "not found"},
		{"embedding model", `{"model":"emb",` + msgs + `}`, 400, "model", "model_type 'embedding'"},
		{"too large", `{"model":"` + modelID + `",` + msgs + `,"user":"` + strings.Repeat("x", 5000) + `"}`, 413, "", "larger than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, b := post(t, url, tt.body)
			if resp.StatusCode != tt.status {
				t.Fatalf("status = %d, want %d; body %s", resp.StatusCode, tt.status, b)
			}
			e := errorDetail(t, b)
			if got := deref(e.Param); got != tt.param {
				t.Errorf("param = %q, want %q", got, tt.param)
			}
			if !strings.Contains(e.Message, tt.msg) {
				t.Errorf("message %q does not contain %q", e.Message, tt.msg)
			}
		})
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("bad requests reached the upstream %d times", n)
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func TestChatForwardsAndRewritesModel(t *testing.T) {
	var got []byte
	url, _ := newGateway(t, func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, completionJSON("m-1:0"))
	})
	body := `{"model":"` + modelID + `","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hi"}],"temperature":0.9,"top_p":0.95,"max_tokens":400,"seed":7,"logit_bias":{"50256":-100},"custom_field":{"x":[1,2]}}`
	resp, b := post(t, url, body)
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	want := strings.Replace(body, modelID, "m-1:0", 1)
	if string(got) != want {
		t.Errorf("upstream got\n%s\nwant\n%s", got, want)
	}
	var c openai.ChatCompletion
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if c.Model != modelID || c.Usage == nil || c.Usage.TotalTokens != 4 || *c.Choices[0].Message.Content != "hi" {
		t.Errorf("response = %s", b)
	}
	if !strings.Contains(string(b), `"service_tier":"default"`) {
		t.Errorf("upstream fields lost: %s", b)
	}
}

// TestChatSingleQuotedModel: the notebook's curl lines send the model id in
// single quotes; the body is repaired and forwarded as valid JSON.
func TestChatSingleQuotedModel(t *testing.T) {
	var got []byte
	url, _ := newGateway(t, func(w http.ResponseWriter, r *http.Request) {
		got, _ = io.ReadAll(r.Body)
		okUpstreamBody(w, got)
	})
	resp, b := post(t, url, "{\n    \"model\": '"+modelID+"',\n    \"messages\": [{\"role\": \"user\", \"content\": \"Count to 5\"}],\n    \"stream\": false\n  }")
	if resp.StatusCode != 200 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if !json.Valid(got) || !strings.Contains(string(got), `"model": "m-1:0"`) {
		t.Errorf("upstream got %s", got)
	}
}

func okUpstreamBody(w http.ResponseWriter, body []byte) {
	var m map[string]any
	_ = json.Unmarshal(body, &m)
	w.Header().Set("Content-Type", "application/json")
	io.WriteString(w, completionJSON(fmt.Sprint(m["model"])))
}

func TestChatUpstreamErrors(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     map[string]string
		body       string
		wantStatus int
		wantMsg    string
		retryAfter string
	}{
		{"double-encoded 400", 400, nil, `{"error":{"message":"{\"error\":{\"code\":\"validation_error\",\"message\":\"Model does not support image modality\",\"param\":null,\"type\":\"invalid_request_error\"}}","type":"invalid_request_error","param":null,"code":"validation_error"}}`, 400, "Model does not support image modality", ""},
		{"throttled", 429, map[string]string{"X-Amzn-Errortype": "ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/", "Retry-After": "3"}, `{"message":"Too many requests, please wait before trying again."}`, 429, "Too many requests", "3"},
		{"throttled without header", 429, nil, `{"message":"slow down"}`, 429, "slow down", "1"},
		{"5xx", 503, nil, `{"message":"unavailable"}`, 502, "unavailable", ""},
		{"not json", 500, nil, `<html>oops</html>`, 502, "upstream returned 500", ""},
		{"upstream 404", 404, nil, `{"error":{"code":"model_not_found","message":"The model x does not exist.","type":"invalid_request_error"}}`, 404, "does not exist", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, _ := newGateway(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tt.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tt.status)
				io.WriteString(w, tt.body)
			})
			for _, stream := range []bool{false, true} {
				resp, b := post(t, url, fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"hi"}],"stream":%v}`, modelID, stream))
				if resp.StatusCode != tt.wantStatus {
					t.Fatalf("stream=%v: status = %d, want %d: %s", stream, resp.StatusCode, tt.wantStatus, b)
				}
				if e := errorDetail(t, b); !strings.Contains(e.Message, tt.wantMsg) {
					t.Errorf("stream=%v: message %q, want %q", stream, e.Message, tt.wantMsg)
				}
				if got := resp.Header.Get("Retry-After"); got != tt.retryAfter {
					t.Errorf("Retry-After = %q, want %q", got, tt.retryAfter)
				}
			}
		})
	}
}

func TestChatUpstreamUnreachable(t *testing.T) {
	reg := registry.New(map[string]provider.Provider{
		"up": openaicompat.New(openaicompat.Options{ProviderID: "up", BaseURL: "http://127.0.0.1:1/v1"}),
	})
	_ = reg.Register(registry.Model{Identifier: "m", ProviderID: "up"})
	gw := httptest.NewServer(NewHandler(Options{Registry: reg}))
	defer gw.Close()
	resp, b := post(t, gw.URL, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 502 {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	errorDetail(t, b)
}

func TestChatUpstreamTimeout(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body) // so the server notices the client leaving
		<-r.Context().Done()               // never answers
	}))
	defer up.Close()
	hc := &http.Client{Transport: &http.Transport{ResponseHeaderTimeout: 50 * time.Millisecond}}
	reg := registry.New(map[string]provider.Provider{
		"up": openaicompat.New(openaicompat.Options{ProviderID: "up", BaseURL: up.URL + "/v1", HTTPClient: hc}),
	})
	_ = reg.Register(registry.Model{Identifier: "m", ProviderID: "up"})
	gw := httptest.NewServer(NewHandler(Options{Registry: reg}))
	defer gw.Close()
	resp, b := post(t, gw.URL, `{"model":"m","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != http.StatusGatewayTimeout {
		t.Fatalf("status %d: %s", resp.StatusCode, b)
	}
	if e := errorDetail(t, b); deref(e.Code) != "upstream_timeout" {
		t.Errorf("code = %q", deref(e.Code))
	}
}

// sseLines reads "data: " payloads until the body ends.
func sseLines(t *testing.T, r io.Reader) []string {
	t.Helper()
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if d, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
			out = append(out, d)
		}
	}
	return out
}

func chunkJSON(model, content string, finish string) string {
	fr := "null"
	if finish != "" {
		fr = `"` + finish + `"`
	}
	return `{"id":"c","object":"chat.completion.chunk","created":1,"model":"` + model + `","choices":[{"index":0,"delta":{"content":"` + content + `"},"finish_reason":` + fr + `,"obfuscation":"abc"}]}`
}

func TestStreamRelay(t *testing.T) {
	url, _ := newGateway(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for _, c := range []string{chunkJSON("m-1:0", "Hel", ""), chunkJSON("m-1:0", "lo", "stop")} {
			fmt.Fprintf(w, "data: %s\n\n", c)
		}
		io.WriteString(w, "data: [DONE]\n\n")
	})
	resp, b := post(t, url, `{"model":"`+modelID+`","messages":[{"role":"user","content":"hi"}],"stream":true}`)
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		t.Fatalf("status %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := sseLines(t, strings.NewReader(string(b)))
	want := []string{chunkJSON(modelID, "Hel", ""), chunkJSON(modelID, "lo", "stop"), "[DONE]"}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestStreamFailures(t *testing.T) {
	tests := []struct {
		name     string
		upstream func(w http.ResponseWriter)
		wantCode string
	}{
		{"connection drops mid-stream", func(w http.ResponseWriter) {
			fmt.Fprintf(w, "data: %s\n\n", chunkJSON("m", "a", ""))
			w.(http.Flusher).Flush()
			panic(http.ErrAbortHandler)
		}, "upstream_stream_broken"},
		{"clean close before finish", func(w http.ResponseWriter) {
			fmt.Fprintf(w, "data: %s\n\n", chunkJSON("m", "a", ""))
		}, "upstream_stream_broken"},
		{"error event", func(w http.ResponseWriter) {
			fmt.Fprintf(w, "data: %s\n\n", chunkJSON("m", "a", ""))
			io.WriteString(w, `data: {"error":{"message":"model crashed","type":"server_error","code":"model_error"}}`+"\n\n")
		}, "model_error"},
		{"malformed chunk", func(w http.ResponseWriter) {
			fmt.Fprintf(w, "data: %s\n\n", chunkJSON("m", "a", ""))
			io.WriteString(w, "data: {not json\n\n")
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			url, _ := newGateway(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "text/event-stream")
				tt.upstream(w)
			})
			resp, b := post(t, url, `{"model":"`+modelID+`","messages":[{"role":"user","content":"hi"}],"stream":true}`)
			if resp.StatusCode != 200 {
				t.Fatalf("status %d: %s", resp.StatusCode, b)
			}
			lines := sseLines(t, strings.NewReader(string(b)))
			if len(lines) != 2 {
				t.Fatalf("want a chunk and an error event, got %q", lines)
			}
			last := lines[len(lines)-1]
			if last == "[DONE]" || strings.Contains(last, `"finish_reason":"stop"`) {
				t.Fatalf("a broken stream ended cleanly: %q", lines)
			}
			e := errorDetail(t, []byte(last))
			if tt.wantCode != "" && deref(e.Code) != tt.wantCode {
				t.Errorf("code = %q, want %q (%s)", deref(e.Code), tt.wantCode, last)
			}
		})
	}
}

// TestStreamNotBuffered proves each chunk reaches the client before the
// upstream sends the next: the upstream waits for the client to confirm
// receipt of chunk i before it writes chunk i+1.
func TestStreamNotBuffered(t *testing.T) {
	received := make(chan int)
	url, _ := newGateway(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		for i := range 3 {
			finish := ""
			if i == 2 {
				finish = "stop"
			}
			fmt.Fprintf(w, "data: %s\n\n", chunkJSON("m", fmt.Sprint(i), finish))
			w.(http.Flusher).Flush()
			select {
			case got := <-received:
				if got != i {
					t.Errorf("client saw chunk %d, want %d", got, i)
				}
			case <-time.After(10 * time.Second):
				t.Errorf("chunk %d did not reach the client while the upstream waited", i)
				return
			case <-r.Context().Done():
				return
			}
		}
		io.WriteString(w, "data: [DONE]\n\n")
	})
	resp, err := http.Post(url+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"`+modelID+`","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	n := 0
	for sc.Scan() {
		d, ok := strings.CutPrefix(sc.Text(), "data: ")
		if !ok || d == "[DONE]" {
			continue
		}
		var c openai.ChatCompletionChunk
		if err := json.Unmarshal([]byte(d), &c); err != nil {
			t.Fatal(err)
		}
		received <- n
		n++
	}
	if n != 3 {
		t.Fatalf("got %d chunks, want 3", n)
	}
}

// TestClientDisconnectCancelsUpstream proves that a client going away
// mid-stream cancels the upstream request at once.
func TestClientDisconnectCancelsUpstream(t *testing.T) {
	canceled := make(chan struct{})
	url, _ := newGateway(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", chunkJSON("m", "a", ""))
		w.(http.Flusher).Flush()
		<-r.Context().Done()
		close(canceled)
	})
	ctx, cancel := context.WithCancel(t.Context())
	req, _ := http.NewRequestWithContext(ctx, "POST", url+"/v1/chat/completions", strings.NewReader(`{"model":"`+modelID+`","messages":[{"role":"user","content":"hi"}],"stream":true}`))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(resp.Body)
	if _, err := br.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	select {
	case <-canceled:
	case <-time.After(10 * time.Second):
		t.Fatal("upstream request was not canceled after the client left")
	}
}

func TestModelsAndSystemRoutes(t *testing.T) {
	url, _ := newGateway(t, okUpstream)
	get := func(path string) (int, map[string]any) {
		resp, err := http.Get(url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m
	}
	code, list := get("/v1/models")
	data, _ := list["data"].([]any)
	if code != 200 || len(data) != 2 {
		t.Fatalf("models: %d %v", code, list)
	}
	first := data[0].(map[string]any)
	meta := first["custom_metadata"].(map[string]any)
	if first["id"] != modelID || first["object"] != "model" || meta["provider_id"] != "up" || meta["provider_resource_id"] != "m-1:0" || meta["model_type"] != "llm" {
		t.Errorf("model entry = %v", first)
	}
	for _, path := range []string{"/v1/models/" + modelID, "/v1/models/up%2Fm-1%3A0", "/v1/models/up/m-1%3A0"} {
		code, m := get(path)
		if code != 200 || m["identifier"] != modelID || m["provider_resource_id"] != "m-1:0" || m["type"] != "model" {
			t.Errorf("GET %s: %d %v", path, code, m)
		}
	}
	if code, m := get("/v1/models/nope"); code != 404 || m["error"] == nil {
		t.Errorf("unknown model: %d %v", code, m)
	}
	if code, m := get("/v1/health"); code != 200 || m["status"] != "OK" {
		t.Errorf("health: %d %v", code, m)
	}
	if code, m := get("/v1/version"); code != 200 || m["version"] != "test" {
		t.Errorf("version: %d %v", code, m)
	}
	if code, m := get("/v1/providers"); code != 200 || len(m["data"].([]any)) != 1 {
		t.Errorf("providers: %d %v", code, m)
	}
	if code, _ := get("/v1/providers/up"); code != 200 {
		t.Errorf("provider: %d", code)
	}
	if code, m := get("/v1/providers/none"); code != 404 || m["error"] == nil {
		t.Errorf("missing provider: %d %v", code, m)
	}
	code, routes := get("/v1/inspect/routes")
	found := false
	for _, r := range routes["data"].([]any) {
		r := r.(map[string]any)
		if r["route"] == "/v1/chat/completions" && r["method"] == "POST" {
			found = fmt.Sprint(r["provider_types"]) == "[remote::bedrock]"
		}
	}
	if code != 200 || !found {
		t.Errorf("routes: %d %v", code, routes)
	}
	if code, m := get("/v2/nothing"); code != 404 || m["error"] == nil {
		t.Errorf("unknown route: %d %v", code, m)
	}
	req, _ := http.NewRequest("PUT", url+"/v1/models", strings.NewReader("{}"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 405 || resp.Header.Get("Allow") != "GET, POST" {
		t.Errorf("PUT /v1/models: %d Allow=%q", resp.StatusCode, resp.Header.Get("Allow"))
	}
}

func TestRequestID(t *testing.T) {
	url, _ := newGateway(t, okUpstream)
	req, _ := http.NewRequest("GET", url+"/v1/health", nil)
	req.Header.Set("X-Request-Id", "abc-123")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("X-Request-Id"); got != "abc-123" {
		t.Errorf("X-Request-Id = %q", got)
	}
}
