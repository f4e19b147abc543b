package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"reflect"
	"strconv"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
	"github.com/llama-stack-go/llama-stack-go/internal/sse"
)

var doneEvent = []byte("[DONE]")

// Response header values, shared by every response: what Header.Set would
// store under the same canonical keys, without allocating per request (the
// server copies them when it writes the header; the slices are full, so an
// append copies rather than writes into them).
var (
	headerJSON        = []string{"application/json"}[:1:1]
	headerEventStream = []string{"text/event-stream; charset=utf-8"}[:1:1]
	headerNoCache     = []string{"no-cache"}[:1:1]
	headerNo          = []string{"no"}[:1:1]
)

// chat serves POST /v1/chat/completions: decode once, validate, route, and
// either return the completion or relay the stream chunk by chunk on this
// goroutine.
func (s *Server) chat(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, s.maxBody)
	if err != nil {
		return err
	}
	var req openai.ChatCompletionRequest
	if body, err = decodeJSON(body, &req); err != nil {
		return err
	}
	if err := validateChat(&req); err != nil {
		return err
	}
	rt, err := s.resolve(r, req.Model, registry.TypeLLM, "chat completions")
	if err != nil {
		return err
	}
	data, err := providerData(r)
	if err != nil {
		return err
	}
	preq := &provider.Request{Model: rt.Model.ProviderResourceID, ClientModel: req.Model, Chat: &req, Raw: body, Data: data, Metadata: rt.Model.Metadata}
	if !req.Stream {
		resp, err := rt.Provider.Chat(r.Context(), preq)
		if err != nil {
			return err
		}
		out, err := resp.Body()
		if err != nil {
			return fmt.Errorf("encode response: %w", err)
		}
		w.Header()["Content-Type"] = headerJSON
		_, _ = w.Write(out)
		s.used(r, resp.Usage)
		s.recordCompletion(r, body, req.Model, out)
		return nil
	}
	// A caller under a token quota is charged for streams too: ask the
	// upstream for usage even when the caller did not, and keep the usage
	// chunk it did not ask for out of its stream.
	hideUsage := false
	if s.quota != nil && (req.StreamOptions == nil || !req.StreamOptions.IncludeUsage) && s.quota.CountsTokens(s.quota.KeyOf(r)) {
		if raw, err := openai.SetTopLevel(body, "stream_options", []byte(`{"include_usage":true}`)); err == nil {
			req.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
			preq.Raw, hideUsage = raw, true
		}
	}
	st, err := rt.Provider.ChatStream(r.Context(), preq)
	if err != nil {
		return err
	}
	record := s.inference.Recorder != nil
	var (
		acc      openai.ChunkAccumulator
		complete bool
		usage    *openai.Usage
	)
	err = relay(s, w, r, st, rt.Model.ProviderID, func(c *openai.ChatCompletionChunk, done bool) (skip bool) {
		if done {
			complete = true
			return false
		}
		if c.Usage != nil {
			usage = c.Usage
		}
		if record {
			acc.Add(c)
		}
		return hideUsage && len(c.Choices) == 0 && c.Usage != nil
	})
	s.used(r, usage)
	// Only a stream that ended cleanly is a completion worth storing.
	if record && complete && !acc.Empty() {
		// Body writes what json.Marshal would, without reflection.
		if out, merr := acc.Completion().Body(); merr == nil {
			s.recordCompletion(r, body, req.Model, out)
		}
	}
	return err
}

// bodied is a response or chunk that knows its wire JSON.
type bodied interface {
	Body() ([]byte, error)
}

// writeBody answers 200 with a response's JSON.
func writeBody(w http.ResponseWriter, v bodied) error {
	out, err := v.Body()
	if err != nil {
		return fmt.Errorf("encode response: %w", err)
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
	return nil
}

// relay streams chunks to the client on the request's goroutine. Until
// the first chunk arrives nothing has been written, so an early failure is
// still a plain HTTP error; after that, failures become one in-band error
// event and the stream ends without [DONE], so no client mistakes it for a
// finished answer.
func relay[T bodied](s *Server, w http.ResponseWriter, r *http.Request, st interface {
	Next() (T, error)
	Close() error
}, providerID string, observe func(chunk T, done bool) (skip bool)) error {
	defer st.Close()
	chunk, err := st.Next()
	if err == io.EOF {
		return &provider.Error{Provider: providerID, StatusCode: http.StatusBadGateway, Type: "api_error", Message: "the upstream ended the stream without sending anything"}
	}
	if err != nil {
		return err
	}
	s.firstToken(r)
	h := w.Header()
	h["Content-Type"] = headerEventStream
	h["Cache-Control"] = headerNoCache
	h["X-Accel-Buffering"] = headerNo
	w.WriteHeader(http.StatusOK)
	sw := sse.NewWriter(w)
	for {
		if observe == nil || !observe(chunk, false) {
			data, err := chunk.Body()
			if err != nil {
				return s.streamFailed(r, sw, fmt.Errorf("encode chunk: %w", err))
			}
			if err := sw.WriteData(data); err != nil {
				// The client is gone; returning closes the upstream.
				s.log.LogAttrs(r.Context(), slog.LevelDebug, "client went away mid-stream", slog.String("request_id", requestID(r.Context())), slog.String("error", err.Error()))
				return nil
			}
		}
		chunk, err = st.Next()
		if err == io.EOF {
			if werr := sw.WriteData(doneEvent); werr == nil && observe != nil {
				var zero T
				observe(zero, true)
			}
			return nil
		}
		if err != nil {
			return s.streamFailed(r, sw, err)
		}
	}
}

// streamFailed reports a failure after the stream started, in-band.
func (s *Server) streamFailed(r *http.Request, sw *sse.Writer, err error) error {
	p := toProblem(err)
	logProblem(r, s.log, p, err)
	if p.status == statusClientClosed {
		return nil
	}
	b, _ := json.Marshal(openai.ErrorBody{Error: p.detail})
	_ = sw.WriteData(b)
	return nil
}

// readBody reads the whole request body within the size limit.
func readBody(w http.ResponseWriter, r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength > limit {
		return nil, &http.MaxBytesError{Limit: limit}
	}
	body, err := readAll(http.MaxBytesReader(w, r.Body, limit), r.ContentLength)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, err
		}
		return nil, &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Message: "could not read the request body", Err: err}
	}
	return body, nil
}

// readAll is io.ReadAll that, given the body's announced length, reads it
// into one buffer of that size instead of growing one from 512 bytes.
func readAll(rd io.Reader, size int64) ([]byte, error) {
	if size <= 0 || size > 1<<20 {
		return io.ReadAll(rd)
	}
	// One spare byte, so that the read that meets EOF needs no growth.
	b := make([]byte, 0, size+1)
	for {
		n, err := rd.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// unmarshal is json.Unmarshal, through openai's reflection-free decoder
// (same result, same errors) for the chat request, the hot path.
func unmarshal(body []byte, v any) error {
	if req, ok := v.(*openai.ChatCompletionRequest); ok {
		return openai.DecodeChatCompletionRequest(body, req)
	}
	return json.Unmarshal(body, v)
}

// decodeJSON decodes a request body, turning decode errors into 400s that
// name the field. It returns the body to forward: the client's, or, for a
// body whose only flaw is single-quoted strings (the notebook's curl lines
// send `"model": 'id'`), the repaired one.
func decodeJSON(body []byte, v any) ([]byte, error) {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return nil, badRequest("", "request body is empty; send a JSON object")
	}
	if trimmed[0] != '{' {
		return nil, badRequest("", "request body must be a JSON object")
	}
	err := unmarshal(body, v)
	if err == nil {
		return body, nil
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		if fixed, ok := openai.RepairSingleQuotes(body); ok {
			return decodeJSON(fixed, v)
		}
	}
	return nil, decodeError(err)
}

// decodeError names the field of a JSON decode error.
func decodeError(err error) error {
	var (
		se *json.SyntaxError
		te *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &se):
		return badRequest("", "request body is not valid JSON: %s (at byte %d)", se.Error(), se.Offset)
	case errors.As(err, &te):
		field := te.Field
		if field == "" {
			return badRequest("", "request body must be a JSON object")
		}
		return badRequest(field, "field '%s' must be %s, got %s", field, jsonKind(te.Type), te.Value)
	default:
		return badRequest("", "request body is not valid JSON: %s", err.Error())
	}
}

// jsonKind names the JSON type a Go type decodes from.
func jsonKind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64, reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	default:
		return "an object"
	}
}

var validRoles = map[string]bool{"system": true, "developer": true, "user": true, "assistant": true, "tool": true, "function": true}

// validateChat checks what the OpenAI API requires of a chat request, so
// that a bad request fails here with a clear message and never goes
// upstream.
func validateChat(req *openai.ChatCompletionRequest) error {
	if req.Model == "" {
		return badRequest("model", "field 'model' is required; GET /v1/models lists the models")
	}
	if req.Messages == nil {
		return badRequest("messages", "field 'messages' is required")
	}
	if len(req.Messages) == 0 {
		return badRequest("messages", "field 'messages' must hold at least one message")
	}
	for i := range req.Messages {
		m := &req.Messages[i]
		// The path is only formatted for an error: the valid path does not
		// allocate.
		p := func() string { return "messages[" + strconv.Itoa(i) + "]" }
		if m.Role == "" {
			return badRequest(p()+".role", "field '%s.role' is required", p())
		}
		if !validRoles[m.Role] {
			return badRequest(p()+".role", "field '%s.role' must be one of system, developer, user, assistant, tool; got '%s'", p(), m.Role)
		}
		if err := validateContent(p, m); err != nil {
			return err
		}
		if m.Role == "tool" && m.ToolCallID == "" {
			return badRequest(p()+".tool_call_id", "field '%s.tool_call_id' is required for tool messages", p())
		}
	}
	if t := req.Temperature; t != nil && (*t < 0 || *t > 2) {
		return badRequest("temperature", "field 'temperature' must be between 0 and 2, got %g", *t)
	}
	if t := req.TopP; t != nil && (*t < 0 || *t > 1) {
		return badRequest("top_p", "field 'top_p' must be between 0 and 1, got %g", *t)
	}
	if n := req.MaxTokens; n != nil && *n < 1 {
		return badRequest("max_tokens", "field 'max_tokens' must be at least 1, got %d", *n)
	}
	if n := req.MaxCompletionTokens; n != nil && *n < 1 {
		return badRequest("max_completion_tokens", "field 'max_completion_tokens' must be at least 1, got %d", *n)
	}
	if n := req.N; n != nil && *n < 1 {
		return badRequest("n", "field 'n' must be at least 1, got %d", *n)
	}
	for _, f := range []struct {
		name string
		v    *float64
	}{{"presence_penalty", req.PresencePenalty}, {"frequency_penalty", req.FrequencyPenalty}} {
		if f.v != nil && (*f.v < -2 || *f.v > 2) {
			return badRequest(f.name, "field '%s' must be between -2 and 2, got %g", f.name, *f.v)
		}
	}
	if req.StreamOptions != nil && !req.Stream {
		return badRequest("stream_options", "field 'stream_options' is only allowed when 'stream' is true")
	}
	if err := validateStop(req.Stop); err != nil {
		return err
	}
	for i := range req.Tools {
		t := &req.Tools[i]
		if t.Type != "function" {
			p := "tools[" + strconv.Itoa(i) + "]"
			return badRequest(p+".type", "field '%s.type' must be 'function', got '%s'", p, t.Type)
		}
		if t.Function.Name == "" {
			p := "tools[" + strconv.Itoa(i) + "]"
			return badRequest(p+".function.name", "field '%s.function.name' is required", p)
		}
	}
	if len(req.ToolChoice) > 0 && string(req.ToolChoice) != "null" && len(req.Tools) == 0 {
		return badRequest("tool_choice", "field 'tool_choice' is only allowed when 'tools' is also provided")
	}
	return nil
}

// validateContent checks a message's content: a string, an array of
// content parts, or (for assistant messages with tool calls) null.
func validateContent(path func() string, m *openai.Message) error {
	c := bytes.TrimSpace(m.Content)
	switch {
	case len(c) == 0 || string(c) == "null":
		if m.Role == "assistant" || m.Role == "function" {
			return nil
		}
		p := path()
		return badRequest(p+".content", "field '%s.content' is required for %s messages", p, m.Role)
	case c[0] == '"':
		return nil
	case c[0] == '[':
		var parts []openai.ContentPart
		if err := json.Unmarshal(c, &parts); err != nil {
			p := path()
			return badRequest(p+".content", "field '%s.content' must be a string or an array of content parts", p)
		}
		for j, part := range parts {
			if part.Type == "" {
				p := path()
				return badRequest(fmt.Sprintf("%s.content[%d].type", p, j), "field '%s.content[%d].type' is required", p, j)
			}
		}
		return nil
	default:
		p := path()
		return badRequest(p+".content", "field '%s.content' must be a string or an array of content parts", p)
	}
}

// validateStop accepts a string, an array of strings, or null.
func validateStop(raw json.RawMessage) error {
	c := bytes.TrimSpace(raw)
	if len(c) == 0 || string(c) == "null" || c[0] == '"' {
		return nil
	}
	var list []string
	if c[0] != '[' || json.Unmarshal(c, &list) != nil {
		return badRequest("stop", "field 'stop' must be a string or an array of strings")
	}
	return nil
}
