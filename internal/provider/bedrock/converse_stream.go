package bedrock

// ConverseStream (bedrock-wire.md §4.3): the answer is an AWS event stream
// (application/vnd.amazon.eventstream) whose events become OpenAI chunks.

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

// cvMaxFrame bounds one event-stream message (AWS caps them at 16 MiB).
const cvMaxFrame = 16<<20 + 1024

// converseStream opens ConverseStream (POST .../converse-stream) and
// returns a stream of OpenAI chunks. A non-nil error means nothing was sent
// to the client.
func (p *Provider) converseStream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	resp, err := p.converseSend(ctx, req, "/converse-stream", "application/vnd.amazon.eventstream")
	if err != nil {
		return nil, err
	}
	return p.newConverseEvents(ctx, resp.Body, req), nil
}

// newConverseEvents maps an event-stream body to chunks.
func (p *Provider) newConverseEvents(ctx context.Context, body io.ReadCloser, req *provider.Request) *converseEvents {
	s := &converseEvents{
		p:       p,
		ctx:     ctx,
		body:    body,
		dec:     eventstream.NewDecoder(),
		id:      cvCompletionID(),
		created: time.Now().Unix(),
		model:   req.ClientModel,
		tools:   map[int]int{},
	}
	if req.Chat != nil && req.Chat.StreamOptions != nil {
		s.includeUsage = req.Chat.StreamOptions.IncludeUsage
	}
	return s
}

// converseEvents is a provider.Stream over a ConverseStream body.
type converseEvents struct {
	p            *Provider
	ctx          context.Context
	body         io.ReadCloser
	dec          *eventstream.Decoder
	id           string
	created      int64
	model        string
	includeUsage bool

	frame   bytes.Buffer // the current message, reused
	payload []byte
	tools   map[int]int // contentBlockIndex → OpenAI tool index
	nTools  int
	stopped bool // messageStop seen
	err     error
	closed  atomic.Bool
}

// cvEvent is the union of the ConverseStream event payloads.
type cvEvent struct {
	Role              string `json:"role"`
	ContentBlockIndex int    `json:"contentBlockIndex"`
	Start             *struct {
		ToolUse *struct {
			Name      string `json:"name"`
			ToolUseID string `json:"toolUseId"`
		} `json:"toolUse"`
	} `json:"start"`
	Delta *struct {
		Text    *string `json:"text"`
		ToolUse *struct {
			Input string `json:"input"`
		} `json:"toolUse"`
		ReasoningContent *struct {
			Text *string `json:"text"`
		} `json:"reasoningContent"`
	} `json:"delta"`
	StopReason string   `json:"stopReason"`
	Usage      *cvUsage `json:"usage"`
	Message    string   `json:"message"`
	MessageUC  string   `json:"Message"`
}

// Next returns the next chunk, io.EOF after a complete message, or a
// *provider.Error (or the context's cause) when the stream fails.
func (s *converseEvents) Next() (*openai.ChatCompletionChunk, error) {
	for s.err == nil {
		if s.closed.Load() {
			s.err = errors.New("bedrock: stream closed")
			break
		}
		msg, err := s.readMessage()
		if err != nil {
			s.err = err
			break
		}
		c, err := s.handle(msg)
		if err != nil {
			s.err = err
			break
		}
		if c != nil {
			return c, nil
		}
	}
	return nil, s.err
}

// Close closes the upstream body.
func (s *converseEvents) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.body.Close()
}

// readMessage reads and decodes one event-stream message. A body that ends
// on a message boundary gives io.EOF after messageStop and a "stream
// broken" error before it; a truncated or corrupt message is an error.
func (s *converseEvents) readMessage() (eventstream.Message, error) {
	var prelude [12]byte
	n, err := io.ReadFull(s.body, prelude[:])
	if err != nil {
		if n == 0 && err == io.EOF {
			if s.stopped {
				return eventstream.Message{}, io.EOF
			}
			return eventstream.Message{}, s.fail(http.StatusBadGateway, "upstream_stream_broken", "Bedrock's stream ended before the message was complete", nil)
		}
		return eventstream.Message{}, s.readError(err)
	}
	total := binary.BigEndian.Uint32(prelude[0:4])
	headers := binary.BigEndian.Uint32(prelude[4:8])
	if total < 16 || total > cvMaxFrame || headers > total-16 {
		return eventstream.Message{}, s.corrupt(errors.New("bad message lengths"))
	}
	// The buffer grows with the bytes that arrive, not with the length
	// the prelude claims.
	s.frame.Reset()
	s.frame.Write(prelude[:])
	if n, err := io.CopyN(&s.frame, s.body, int64(total)-12); err != nil {
		if err == io.EOF && n < int64(total)-12 {
			err = io.ErrUnexpectedEOF
		}
		return eventstream.Message{}, s.readError(err)
	}
	msg, err := s.dec.Decode(bytes.NewReader(s.frame.Bytes()), s.payload)
	if err != nil {
		return eventstream.Message{}, s.corrupt(err)
	}
	s.payload = msg.Payload[:0]
	return msg, nil
}

// readError reports a failed body read: the client's cancellation, a
// truncated message, or a broken connection.
func (s *converseEvents) readError(err error) error {
	if s.ctx.Err() != nil {
		return context.Cause(s.ctx)
	}
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		return s.corrupt(err)
	}
	return s.fail(http.StatusBadGateway, "upstream_stream_broken", "Bedrock's stream was cut off", err)
}

func (s *converseEvents) corrupt(err error) error {
	return s.fail(http.StatusBadGateway, "upstream_stream_corrupt", "corrupt event stream from Bedrock", err)
}

func (s *converseEvents) fail(status int, code, msg string, err error) *provider.Error {
	return &provider.Error{Provider: s.p.id, StatusCode: status, Type: "api_error", Code: code, Message: msg, Err: err}
}

// cvHeader returns a string header of the message ("" if absent).
func cvHeader(m eventstream.Message, name string) string {
	if v := m.Headers.Get(name); v != nil {
		if sv, ok := v.(eventstream.StringValue); ok {
			return string(sv)
		}
		return v.String()
	}
	return ""
}

// handle maps one message to a chunk (nil when it yields none).
func (s *converseEvents) handle(m eventstream.Message) (*openai.ChatCompletionChunk, error) {
	switch mt := cvHeader(m, ":message-type"); mt {
	case "event":
	case "exception":
		return nil, s.exception(cvHeader(m, ":exception-type"), m.Payload)
	case "error":
		e := s.fail(http.StatusBadGateway, cvHeader(m, ":error-code"), "Bedrock reported a stream error: "+cvHeader(m, ":error-message"), nil)
		return nil, e
	default:
		return nil, s.corrupt(errors.New("unknown :message-type " + mt))
	}
	var ev cvEvent
	if len(m.Payload) > 0 {
		if err := json.Unmarshal(m.Payload, &ev); err != nil {
			return nil, s.fail(http.StatusBadGateway, "upstream_malformed", "Bedrock sent a malformed stream event", err)
		}
	}
	switch cvHeader(m, ":event-type") {
	case "messageStart":
		return s.chunk(openai.Delta{Role: "assistant", Content: new("")}, nil), nil
	case "contentBlockStart":
		if ev.Start == nil || ev.Start.ToolUse == nil {
			return nil, nil
		}
		k := s.toolIndex(ev.ContentBlockIndex)
		return s.chunk(openai.Delta{ToolCalls: []openai.ToolCall{{Index: new(k), ID: ev.Start.ToolUse.ToolUseID, Type: "function",
			Function: openai.FunctionCall{Name: ev.Start.ToolUse.Name, Arguments: ""}}}}, nil), nil
	case "contentBlockDelta":
		d := ev.Delta
		switch {
		case d == nil:
		case d.Text != nil:
			if *d.Text != "" {
				return s.chunk(openai.Delta{Content: d.Text}, nil), nil
			}
		case d.ReasoningContent != nil:
			if t := d.ReasoningContent.Text; t != nil && *t != "" {
				return s.chunk(openai.Delta{ReasoningContent: t}, nil), nil
			}
		case d.ToolUse != nil:
			if d.ToolUse.Input != "" {
				k := s.toolIndex(ev.ContentBlockIndex)
				return s.chunk(openai.Delta{ToolCalls: []openai.ToolCall{{Index: new(k), Function: openai.FunctionCall{Arguments: d.ToolUse.Input}}}}, nil), nil
			}
		}
		return nil, nil
	case "messageStop":
		s.stopped = true
		return s.chunk(openai.Delta{}, new(cvFinishReason(ev.StopReason))), nil
	case "metadata":
		if !s.includeUsage || ev.Usage == nil {
			return nil, nil
		}
		return &openai.ChatCompletionChunk{ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model,
			Choices: []openai.ChunkChoice{}, Usage: cvUsageOf(ev.Usage)}, nil
	}
	// contentBlockStop and events this adapter does not know.
	return nil, nil
}

// toolIndex returns the OpenAI tool index of a content block, numbering
// tool blocks from 0 in the order they appear.
func (s *converseEvents) toolIndex(block int) int {
	k, ok := s.tools[block]
	if !ok {
		k = s.nTools
		s.nTools++
		s.tools[block] = k
	}
	return k
}

func (s *converseEvents) chunk(d openai.Delta, finish *string) *openai.ChatCompletionChunk {
	return &openai.ChatCompletionChunk{ID: s.id, Object: "chat.completion.chunk", Created: s.created, Model: s.model,
		Choices: []openai.ChunkChoice{{Index: 0, Delta: d, FinishReason: finish}}}
}

// exception turns an in-stream exception into a *provider.Error with the
// status of the exception (5xx upstream failures become 502).
func (s *converseEvents) exception(kind string, payload []byte) error {
	var body struct {
		Message   string `json:"message"`
		MessageUC string `json:"Message"`
	}
	_ = json.Unmarshal(payload, &body)
	msg := body.Message
	if msg == "" {
		msg = body.MessageUC
	}
	if msg == "" {
		msg = "Bedrock reported " + kind + " during the stream"
	}
	status, typ := http.StatusBadGateway, "api_error"
	switch strings.ToLower(kind) {
	case "throttlingexception", "modelnotreadyexception":
		status, typ = http.StatusTooManyRequests, "rate_limit_error"
	case "validationexception", "servicequotaexceededexception":
		status, typ = http.StatusBadRequest, "invalid_request_error"
	case "accessdeniedexception":
		status, typ = http.StatusForbidden, "permission_error"
	case "resourcenotfoundexception":
		status, typ = http.StatusNotFound, "not_found_error"
	case "modeltimeoutexception":
		status = http.StatusGatewayTimeout
	}
	code := kind
	if code != "" {
		code = strings.ToUpper(code[:1]) + code[1:]
	}
	e := &provider.Error{Provider: s.p.id, StatusCode: status, Type: typ, Code: code, Message: msg}
	s.p.translateError(e)
	return e
}
