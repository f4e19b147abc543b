package bedrocktest

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// promptOverhead is added to the prompt word count (chat template tokens).
const promptOverhead = 70

// pieceWords is the number of words per streamed content piece.
const pieceWords = 3

// fragmentsPerChunk is how many argument fragments a streamed tool-call
// chunk holds after the first.
const fragmentsPerChunk = 6

// Wire shapes, with key order and nulls as in the recorded fixtures.
type (
	completion struct {
		ID                string   `json:"id"`
		Choices           []choice `json:"choices"`
		Created           int64    `json:"created"`
		Model             string   `json:"model"`
		Object            string   `json:"object"`
		ServiceTier       string   `json:"service_tier"`
		SystemFingerprint *string  `json:"system_fingerprint"`
		Usage             *usage   `json:"usage"`
	}
	choice struct {
		FinishReason string  `json:"finish_reason"`
		Index        int     `json:"index"`
		Logprobs     any     `json:"logprobs"`
		Message      message `json:"message"`
	}
	message struct {
		Content      *string    `json:"content"`
		Refusal      *string    `json:"refusal"`
		Role         string     `json:"role"`
		Annotations  any        `json:"annotations"`
		Audio        any        `json:"audio"`
		FunctionCall any        `json:"function_call"`
		ToolCalls    []toolCall `json:"tool_calls"`
	}
	toolCall struct {
		ID       string       `json:"id"`
		Function functionCall `json:"function"`
		Type     string       `json:"type"`
	}
	functionCall struct {
		Arguments string `json:"arguments"`
		Name      string `json:"name"`
	}
	usage struct {
		CompletionTokens        int `json:"completion_tokens"`
		PromptTokens            int `json:"prompt_tokens"`
		TotalTokens             int `json:"total_tokens"`
		CompletionTokensDetails any `json:"completion_tokens_details"`
		PromptTokensDetails     any `json:"prompt_tokens_details"`
	}
	chunk struct {
		ID                string        `json:"id"`
		Choices           []chunkChoice `json:"choices"`
		Created           int64         `json:"created"`
		Model             string        `json:"model"`
		Object            string        `json:"object"`
		ServiceTier       string        `json:"service_tier"`
		SystemFingerprint *string       `json:"system_fingerprint"`
		Usage             *usage        `json:"usage"`
	}
	chunkChoice struct {
		Delta        delta   `json:"delta"`
		FinishReason *string `json:"finish_reason"`
		Index        int     `json:"index"`
		Logprobs     any     `json:"logprobs"`
		Obfuscation  string  `json:"obfuscation"`
	}
	delta struct {
		Content      *string         `json:"content"`
		FunctionCall any             `json:"function_call"`
		Refusal      *string         `json:"refusal"`
		Role         *string         `json:"role"`
		ToolCalls    []toolCallDelta `json:"tool_calls"`
	}
	toolCallDelta struct {
		Index    int           `json:"index"`
		ID       *string       `json:"id"`
		Function functionDelta `json:"function"`
		Type     string        `json:"type"`
	}
	functionDelta struct {
		Arguments string  `json:"arguments"`
		Name      *string `json:"name"`
	}
)

// outcome is one choice's output after max-token cutting.
type outcome struct {
	reasoning, answer string
	tool              *ToolCall // nil when none or cut
	finish            string
	tokens            int
}

// produce asks the responder and applies the token limit.
func (s *Server) produce(req *ChatRequest) (o outcome, prompt, n int) {
	for _, m := range req.Messages {
		prompt += len(strings.Fields(m.Text))
	}
	prompt += promptOverhead
	n = 1
	if req.N != nil {
		n = *req.N
	}
	reply := s.opts.Responder(req)
	o = outcome{reasoning: reply.Reasoning, answer: reply.Answer, tool: reply.ToolCall, finish: "stop"}
	if o.tool != nil {
		t := *o.tool
		if t.Arguments == "" {
			t.Arguments = "{}"
		}
		o.tool, o.finish = &t, "tool_calls"
	}
	rw, aw := len(strings.Fields(o.reasoning)), len(strings.Fields(o.answer))
	o.tokens = rw + aw
	if o.tool != nil {
		o.tokens += len(strings.Fields(o.tool.Name)) + len(strings.Fields(o.tool.Arguments))
	}
	limit := -1
	for _, p := range []*int{req.MaxTokens, req.MaxCompletionTokens} {
		if p != nil && (limit < 0 || *p < limit) {
			limit = *p
		}
	}
	if limit >= 0 && o.tokens > limit {
		o.reasoning = cutWords(o.reasoning, min(limit, rw))
		o.answer = cutWords(o.answer, max(0, min(limit-rw, aw)))
		o.tool, o.finish, o.tokens = nil, "length", limit
	}
	return o, prompt, n
}

func (o *outcome) content() string {
	if o.reasoning == "" {
		return o.answer
	}
	return "<reasoning>" + o.reasoning + "</reasoning>" + o.answer
}

func (s *Server) complete(w http.ResponseWriter, req *ChatRequest) {
	o, prompt, n := s.produce(req)
	resp := completion{
		ID:          "chatcmpl-" + randomHex(16),
		Created:     time.Now().Unix(),
		Model:       req.Model,
		Object:      "chat.completion",
		ServiceTier: "default",
		Usage:       &usage{PromptTokens: prompt, CompletionTokens: o.tokens * n, TotalTokens: prompt + o.tokens*n},
	}
	for i := range n {
		content := o.content()
		c := choice{FinishReason: o.finish, Index: i, Message: message{Content: &content, Role: "assistant"}}
		if o.tool != nil {
			c.Message.ToolCalls = []toolCall{{
				ID:       toolID(o.tool),
				Function: functionCall{Arguments: o.tool.Arguments, Name: o.tool.Name},
				Type:     "function",
			}}
		}
		resp.Choices = append(resp.Choices, c)
	}
	writeJSON(w, http.StatusOK, resp)
}

// chunks renders the stream's chunk JSONs (without data: [DONE]).
func (s *Server) chunks(req *ChatRequest) [][]byte {
	o, prompt, n := s.produce(req)
	base := chunk{
		ID:          "chatcmpl-" + randomHex(16),
		Created:     time.Now().Unix(),
		Model:       req.Model,
		Object:      "chat.completion.chunk",
		ServiceTier: "default",
	}
	// The deltas of one choice, in order; all choices are alike.
	type step struct {
		d      delta
		finish *string
	}
	str := func(v string) *string { return &v }
	var steps []step
	steps = append(steps, step{d: delta{Content: str(""), Role: str("assistant")}}, step{})
	for _, p := range pieces(o.reasoning, pieceWords) {
		steps = append(steps, step{d: delta{Content: str("<reasoning>" + p + "</reasoning>")}})
	}
	if o.reasoning != "" && (o.answer != "" || o.tool != nil) {
		steps = append(steps, step{})
	}
	for _, p := range pieces(o.answer, pieceWords) {
		steps = append(steps, step{d: delta{Content: str(p)}})
	}
	toolStart := len(steps)
	var frags []string
	if o.tool != nil {
		frags = fragments(o.tool.Arguments)
		steps = append(steps, step{}) // first tool-call chunk, filled per choice
		for i := 1; i < len(frags); i += fragmentsPerChunk {
			var tcs []toolCallDelta
			for _, f := range frags[i:min(i+fragmentsPerChunk, len(frags))] {
				tcs = append(tcs, toolCallDelta{Function: functionDelta{Arguments: f}, Type: "function"})
			}
			steps = append(steps, step{d: delta{ToolCalls: tcs}})
		}
	}
	if last := &steps[len(steps)-1]; o.tool == nil && last.d.Content != nil && *last.d.Content != "" && len(steps) > 2 {
		last.finish = str(o.finish)
	} else {
		steps = append(steps, step{finish: str(o.finish)})
	}

	ids := make([]string, n)
	if o.tool != nil {
		for i := range ids {
			ids[i] = toolID(o.tool)
		}
	}
	var out [][]byte
	for k, st := range steps {
		for i := range n {
			c := base
			d := st.d
			if o.tool != nil && k == toolStart {
				d.ToolCalls = []toolCallDelta{{ID: str(ids[i]), Function: functionDelta{Arguments: frags[0], Name: str(o.tool.Name)}, Type: "function"}}
			}
			c.Choices = []chunkChoice{{Delta: d, FinishReason: st.finish, Index: i, Obfuscation: obfuscation()}}
			out = append(out, mustMarshal(c))
		}
	}
	if req.StreamOptions != nil && req.StreamOptions.IncludeUsage {
		c := base
		c.Choices = []chunkChoice{}
		c.Usage = &usage{PromptTokens: prompt, CompletionTokens: o.tokens * n, TotalTokens: prompt + o.tokens*n}
		out = append(out, mustMarshal(c))
	}
	return out
}

func toolID(t *ToolCall) string {
	if t.ID != "" {
		return t.ID
	}
	return "chatcmpl-tool-" + randomHex(8)
}

// wordBounds returns the [start, end) byte offsets of the words of s.
func wordBounds(s string) [][2]int {
	var out [][2]int
	start := -1
	for i, r := range s {
		if unicode.IsSpace(r) {
			if start >= 0 {
				out = append(out, [2]int{start, i})
				start = -1
			}
		} else if start < 0 {
			start = i
		}
	}
	if start >= 0 {
		out = append(out, [2]int{start, len(s)})
	}
	return out
}

// cutWords returns the prefix of s that ends with its k-th word.
func cutWords(s string, k int) string {
	if k <= 0 {
		return ""
	}
	b := wordBounds(s)
	if k >= len(b) {
		return s
	}
	return s[:b[k-1][1]]
}

// pieces splits s into consecutive pieces of about n words each, the
// whitespace before a word going with it; the pieces concatenate to s.
func pieces(s string, n int) []string {
	if s == "" {
		return nil
	}
	b := wordBounds(s)
	var out []string
	from := 0
	for i := n; i < len(b); i += n {
		cut := b[i-1][1]
		out = append(out, s[from:cut])
		from = cut
	}
	return append(out, s[from:])
}

// fragments splits tool-call arguments into short pieces (4, then 2–6
// bytes, never inside a UTF-8 sequence); they concatenate to args.
func fragments(args string) []string {
	var out []string
	for i := 0; len(args) > 0; i++ {
		n := 4
		if i > 0 {
			n = 2 + (i*7)%5
		}
		n = min(n, len(args))
		for n < len(args) && !isRuneStart(args[n]) {
			n++
		}
		out = append(out, args[:n])
		args = args[n:]
	}
	if len(out) == 0 {
		out = []string{""}
	}
	return out
}

func isRuneStart(b byte) bool { return b&0xC0 != 0x80 }

const alnum = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"

// obfuscation returns padding of random length (as Bedrock's "obfuscation").
func obfuscation() string {
	b := make([]byte, 16+mrand.IntN(100))
	for i := range b {
		b[i] = alnum[mrand.IntN(len(alnum))]
	}
	return string(b)
}

func randomHex(nbytes int) string {
	b := make([]byte, nbytes)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// marshal encodes v compactly without HTML escaping (so "<reasoning>"
// stays literal, as on the wire).
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func mustMarshal(v any) []byte {
	b, err := marshal(v)
	if err != nil {
		panic(fmt.Sprintf("bedrocktest: marshal: %v", err))
	}
	return b
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b := mustMarshal(v)
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("X-Amzn-Requestid", newUUID())
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// openAIError is the OpenAI error envelope in the key order Bedrock's
// backend uses for its own errors (code, message, param, type).
type openAIError struct {
	Error struct {
		Code    string  `json:"code"`
		Message string  `json:"message"`
		Param   *string `json:"param"`
		Type    string  `json:"type"`
	} `json:"error"`
}

func writeOpenAIError(w http.ResponseWriter, status int, code, msg string, param *string) {
	var e openAIError
	e.Error.Code, e.Error.Message, e.Error.Param, e.Error.Type = code, msg, param, "invalid_request_error"
	writeJSON(w, status, e)
}

// writeValidation writes a 400 validation_error shaped like the recorded
// image-modality error: an envelope whose message is the inner error JSON.
func writeValidation(w http.ResponseWriter, msg string) {
	var inner openAIError
	inner.Error.Code, inner.Error.Message, inner.Error.Type = "validation_error", msg, "invalid_request_error"
	var outer struct {
		Error struct {
			Message string  `json:"message"`
			Type    string  `json:"type"`
			Param   *string `json:"param"`
			Code    string  `json:"code"`
		} `json:"error"`
	}
	outer.Error.Message = string(mustMarshal(inner))
	outer.Error.Type, outer.Error.Code = "invalid_request_error", "validation_error"
	writeJSON(w, http.StatusBadRequest, outer)
}

// writeAWSError writes an AWS-style error: x-amzn-ErrorType and a body with
// a single member (key "message" or "Message").
func writeAWSError(w http.ResponseWriter, status int, errType, key, msg string) {
	b := mustMarshal(map[string]string{key: msg})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h["x-amzn-RequestId"] = []string{newUUID()}
	h["x-amzn-ErrorType"] = []string{errType}
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// writeFailure writes the error FailWith asks for.
func writeFailure(w http.ResponseWriter, status int) {
	const bedrock = ":http://internal.amazon.com/coral/com.amazon.bedrock/"
	name, msg := "InternalServerException", "The server encountered an internal error while processing the request."
	switch status {
	case http.StatusServiceUnavailable:
		name, msg = "ServiceUnavailableException", "Bedrock is unable to process your request."
	case http.StatusRequestTimeout:
		name, msg = "ModelTimeoutException", "Model has timed out in processing the request. Try your request again."
	case http.StatusFailedDependency:
		name, msg = "ModelErrorException", "The system encountered an unexpected error during processing. Try your request again."
	case http.StatusTooManyRequests:
		name, msg = "ThrottlingException", "Too many requests, please wait before trying again."
	case http.StatusBadRequest:
		name, msg = "ValidationException", "The provided request is invalid."
	case http.StatusForbidden:
		name, msg = "AccessDeniedException", "You don't have access to the model with the specified model ID."
	case http.StatusNotFound:
		name, msg = "ResourceNotFoundException", "The requested resource could not be found."
	}
	if status < 100 || status > 999 {
		status = http.StatusInternalServerError
	}
	writeAWSError(w, status, name+bedrock, "message", msg)
}
