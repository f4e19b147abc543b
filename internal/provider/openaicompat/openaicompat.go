// Package openaicompat is the adapter for upstreams that speak the OpenAI
// chat completions API, Bedrock's /openai/v1 surface among them. It
// forwards the client's body with only "model" replaced, relays stream
// chunks as they arrive, and translates upstream errors into
// *provider.Error.
package openaicompat

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/sse"
)

// maxResponseBytes bounds a non-streamed upstream body.
const maxResponseBytes = 64 << 20

// maxErrorBytes bounds how much of an upstream error body is read.
const maxErrorBytes = 1 << 20

// Options configure a Client.
type Options struct {
	// ProviderID names the provider in errors and logs.
	ProviderID string
	// BaseURL is the upstream's OpenAI base, without a trailing slash, e.g.
	// https://bedrock-runtime.us-west-2.amazonaws.com/openai/v1.
	BaseURL string
	// Query is added to every request URL (Azure's api-version).
	Query url.Values
	// HTTPClient sends the requests; nil means NewHTTPClient().
	HTTPClient *http.Client
	// Authorize adds credentials to an outgoing request (its context,
	// headers and, through GetBody, its body are there for signing), given
	// the caller's provider data. A returned error (a *provider.Error)
	// stops the request before it is sent.
	Authorize func(r *http.Request, data provider.Data) error
	// TranslateError lets a provider reword an upstream error, for example
	// to say which credential to fix. It runs on every *provider.Error the
	// client builds from an upstream response.
	TranslateError func(e *provider.Error)
	// Completions and Embeddings say whether the upstream serves the
	// legacy /completions and /embeddings routes; when false the client
	// answers provider.ErrUnsupported without calling it.
	Completions, Embeddings bool
	// ListModels says whether the upstream serves GET /models.
	ListModels bool
	// Header is sent with every request (network.headers, Gemini's
	// x-goog-user-project).
	Header http.Header
	// DefaultMaxTokens, when positive, is sent as max_tokens on chat
	// requests that set neither max_tokens nor max_completion_tokens
	// (vLLM's configured default).
	DefaultMaxTokens int
}

// Client sends requests to one OpenAI-compatible upstream.
type Client struct {
	o Options
}

var (
	_ provider.Provider    = (*Client)(nil)
	_ provider.Completer   = (*Client)(nil)
	_ provider.Embedder    = (*Client)(nil)
	_ provider.ModelLister = (*Client)(nil)
)

// New returns a Client for the upstream o describes.
func New(o Options) *Client {
	if o.HTTPClient == nil {
		o.HTTPClient = NewHTTPClient()
	}
	return &Client{o: o}
}

// NewHTTPClient returns the client upstream calls use by default: proxies
// from HTTPS_PROXY/NO_PROXY, the system trust store (and SSL_CERT_FILE),
// HTTP/2, bounded dial and TLS handshakes, and no overall timeout, so that
// long streams are not cut.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: NewTransport()}
}

// NewTransport returns the transport behind NewHTTPClient, for callers
// that adjust it (TLS settings, say) before use.
func NewTransport() *http.Transport {
	return &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		ForceAttemptHTTP2:     true,
		MaxIdleConns:          1024,
		MaxIdleConnsPerHost:   256,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ExpectContinueTimeout: time.Second,
		// Non-streamed completions send headers only when the model is
		// done, which for long reasoning answers takes minutes.
		ResponseHeaderTimeout: 10 * time.Minute,
	}
}

// Chat sends a non-streamed completion and returns the upstream's body with
// the client's model id restored.
func (c *Client) Chat(ctx context.Context, req *provider.Request) (*openai.ChatCompletion, error) {
	var out openai.ChatCompletion
	raw, err := c.roundTrip(ctx, "/chat/completions", c.chatBody(req), req.Model, req.ClientModel, req.Data, &out)
	if err != nil {
		return nil, err
	}
	out.Model, out.Raw = req.ClientModel, raw
	return &out, nil
}

// ChatStream opens a streamed completion. It returns once the upstream has
// answered with its status, so that a refusal is still a plain error.
func (c *Client) ChatStream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	resp, err := c.send(ctx, "/chat/completions", c.chatBody(req), req.Model, req.Data, true)
	if err != nil {
		return nil, err
	}
	return newStream(c, ctx, resp.Body, req.ClientModel, func(ch *openai.ChatCompletionChunk) bool {
		return ch.Usage != nil || ch.Finished()
	}), nil
}

// chatBody is the client's body, with the configured default max_tokens
// when the client set no limit.
func (c *Client) chatBody(req *provider.Request) []byte {
	if c.o.DefaultMaxTokens <= 0 || req.Chat == nil || req.Chat.MaxTokens != nil || req.Chat.MaxCompletionTokens != nil {
		return req.Raw
	}
	b, err := openai.SetTopLevel(req.Raw, "max_tokens", []byte(strconv.Itoa(c.o.DefaultMaxTokens)))
	if err != nil {
		return req.Raw
	}
	return b
}

// Complete sends a non-streamed legacy completion.
func (c *Client) Complete(ctx context.Context, req *provider.CompletionRequest) (*openai.Completion, error) {
	if !c.o.Completions {
		return nil, c.unsupported("completions")
	}
	var out openai.Completion
	raw, err := c.roundTrip(ctx, "/completions", req.Raw, req.Model, req.ClientModel, req.Data, &out)
	if err != nil {
		return nil, err
	}
	out.Model, out.Raw = req.ClientModel, raw
	return &out, nil
}

// CompleteStream opens a streamed legacy completion.
func (c *Client) CompleteStream(ctx context.Context, req *provider.CompletionRequest) (provider.CompletionStream, error) {
	if !c.o.Completions {
		return nil, c.unsupported("completions")
	}
	resp, err := c.send(ctx, "/completions", req.Raw, req.Model, req.Data, true)
	if err != nil {
		return nil, err
	}
	return newStream(c, ctx, resp.Body, req.ClientModel, func(ch *openai.Completion) bool {
		return ch.Usage != nil || ch.Finished()
	}), nil
}

// Embed sends an embeddings request.
func (c *Client) Embed(ctx context.Context, req *provider.EmbedRequest) (*openai.EmbeddingList, error) {
	if !c.o.Embeddings {
		return nil, c.unsupported("embeddings")
	}
	var out openai.EmbeddingList
	raw, err := c.roundTrip(ctx, "/embeddings", req.Raw, req.Model, req.ClientModel, req.Data, &out)
	if err != nil {
		return nil, err
	}
	out.Model, out.Raw = req.ClientModel, raw
	return &out, nil
}

// ListModels asks the upstream which models it serves (GET /models).
func (c *Client) ListModels(ctx context.Context) ([]openai.Model, error) {
	if !c.o.ListModels {
		return nil, c.unsupported("model listing")
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("/models"), nil)
	if err != nil {
		return nil, fmt.Errorf("build upstream request: %w", err)
	}
	hreq.Header.Set("Accept", "application/json")
	resp, err := c.do(ctx, hreq, nil)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var list openai.ModelList
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBytes)).Decode(&list); err != nil {
		return nil, &provider.Error{Provider: c.o.ProviderID, StatusCode: http.StatusBadGateway, Type: "api_error", Message: "upstream sent a malformed model list", Err: err}
	}
	return list.Data, nil
}

func (c *Client) unsupported(what string) error {
	return fmt.Errorf("provider %s: %s: %w", c.o.ProviderID, what, provider.ErrUnsupported)
}

func (c *Client) url(path string) string {
	u := c.o.BaseURL + path
	if len(c.o.Query) > 0 {
		u += "?" + c.o.Query.Encode()
	}
	return u
}

// roundTrip posts a non-streamed request and decodes the answer into out;
// it returns the upstream body with the client's model id restored.
func (c *Client) roundTrip(ctx context.Context, path string, raw []byte, model, clientModel string, data provider.Data, out any) ([]byte, error) {
	resp, err := c.send(ctx, path, raw, model, data, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	// The body is read into a pooled buffer: what is kept of it (the
	// decoded values, the rewritten body) is copied out below.
	bp := bodyBufs.Get().(*[]byte)
	defer putBodyBuf(bp)
	body, err := readBody(io.LimitReader(resp.Body, maxResponseBytes+1), (*bp)[:0])
	*bp = body
	if err != nil {
		return nil, c.transportError(ctx, "read response", err)
	}
	if len(body) > maxResponseBytes {
		return nil, &provider.Error{Provider: c.o.ProviderID, StatusCode: http.StatusBadGateway, Type: "api_error", Message: "upstream response is too large"}
	}
	if err := decode(body, out); err != nil {
		return nil, &provider.Error{Provider: c.o.ProviderID, StatusCode: http.StatusBadGateway, Type: "api_error", Message: "upstream sent a malformed response", Err: err}
	}
	fixed, err := openai.SetTopLevelString(body, "model", clientModel)
	if err != nil {
		return nil, &provider.Error{Provider: c.o.ProviderID, StatusCode: http.StatusBadGateway, Type: "api_error", Message: "upstream sent a malformed response", Err: err}
	}
	return fixed, nil
}

// bodyBufs holds the buffers non-streamed upstream bodies are read into.
var bodyBufs = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

// putBodyBuf returns a buffer to bodyBufs unless a large body grew it.
func putBodyBuf(bp *[]byte) {
	if cap(*bp) <= 256<<10 {
		*bp = (*bp)[:0]
		bodyBufs.Put(bp)
	}
}

// readBody reads r to the end, appending to buf.
func readBody(r io.Reader, buf []byte) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// send posts the request with the upstream model id and returns a 2xx
// response; any other status becomes a *provider.Error.
func (c *Client) send(ctx context.Context, path string, raw []byte, model string, data provider.Data, streaming bool) (*http.Response, error) {
	body, err := openai.SetTopLevelString(raw, "model", model)
	if err != nil {
		return nil, fmt.Errorf("set upstream model: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url(path), bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build upstream request: %w", err)
	}
	// Canonical keys with shared values (what Header.Set would store,
	// without allocating them per request; the slices are full, so an
	// append by anyone copies rather than writes into them).
	h := hreq.Header
	h["Content-Type"] = headerJSON
	if streaming {
		h["Accept"] = headerEventStream
		// Compressed streams are buffered by gzip readers; ask for none.
		h["Accept-Encoding"] = headerIdentity
	} else {
		h["Accept"] = headerJSON
	}
	return c.do(ctx, hreq, data)
}

var (
	headerJSON        = []string{"application/json"}[:1:1]
	headerEventStream = []string{"text/event-stream"}[:1:1]
	headerIdentity    = []string{"identity"}[:1:1]
)

// do authorizes and sends a request and turns a non-2xx answer into a
// *provider.Error.
func (c *Client) do(ctx context.Context, hreq *http.Request, data provider.Data) (*http.Response, error) {
	for k, v := range c.o.Header {
		hreq.Header[k] = v
	}
	if c.o.Authorize != nil {
		if err := c.o.Authorize(hreq, data); err != nil {
			return nil, err
		}
	}
	resp, err := c.o.HTTPClient.Do(hreq)
	if err != nil {
		return nil, c.transportError(ctx, "send request", err)
	}
	if resp.StatusCode/100 != 2 {
		defer resp.Body.Close()
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBytes))
		return nil, c.upstreamError(resp.StatusCode, resp.Header, b)
	}
	return resp, nil
}

// upstreamError builds the error for an upstream error response.
func (c *Client) upstreamError(status int, h http.Header, body []byte) *provider.Error {
	e := ParseError(status, h, body)
	e.Provider = c.o.ProviderID
	if c.o.TranslateError != nil {
		c.o.TranslateError(e)
	}
	return e
}

// transportError classifies a failure to reach or read the upstream. A
// canceled client context is returned as is: the client went away.
func (c *Client) transportError(ctx context.Context, op string, err error) error {
	if ctx.Err() != nil && errors.Is(err, context.Canceled) {
		return fmt.Errorf("%s: %w", op, context.Cause(ctx))
	}
	e := &provider.Error{Provider: c.o.ProviderID, Type: "api_error", Err: fmt.Errorf("%s: %w", op, err)}
	var ne net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		e.StatusCode = http.StatusGatewayTimeout
		e.Code = "upstream_timeout"
		e.Message = "the upstream did not answer in time"
	default:
		e.StatusCode = http.StatusBadGateway
		e.Code = "upstream_unreachable"
		e.Message = "the upstream could not be reached or closed the connection"
	}
	return e
}

// stream relays one upstream event stream of T (chat chunks or legacy
// completion chunks), restoring the client's model id in each.
type stream[T any] struct {
	c        *Client
	ctx      context.Context
	body     io.ReadCloser
	rd       *sse.Reader
	model    string
	done     func(*T) bool // reports a chunk after which the stream may end
	finished bool
	sawDone  bool // data: [DONE] arrived: Close may drain the body
}

func newStream[T any](c *Client, ctx context.Context, body io.ReadCloser, model string, done func(*T) bool) *stream[T] {
	return &stream[T]{c: c, ctx: ctx, body: body, rd: sse.NewReader(body), model: model, done: done}
}

// errorProbe finds an in-band error event.
type errorProbe struct {
	Error json.RawMessage `json:"error"`
}

func (s *stream[T]) Next() (*T, error) {
	ev, err := s.rd.Next()
	if err != nil {
		if err == io.EOF && s.finished {
			// Some upstreams end without [DONE] after the last chunk.
			return nil, io.EOF
		}
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, s.broken(err)
	}
	if bytes.Equal(ev.Data, []byte("[DONE]")) {
		s.sawDone = true
		return nil, io.EOF
	}
	item := new(T)
	if err := decode(ev.Data, item); err != nil {
		return nil, &provider.Error{Provider: s.c.o.ProviderID, StatusCode: http.StatusBadGateway, Type: "api_error", Message: "upstream sent a malformed stream chunk", Err: err}
	}
	if bytes.Contains(ev.Data, []byte(`"error"`)) {
		var probe errorProbe
		if json.Unmarshal(ev.Data, &probe) == nil && len(probe.Error) > 0 && string(probe.Error) != "null" {
			return nil, s.c.upstreamError(0, nil, ev.Data)
		}
	}
	raw, err := openai.SetTopLevelString(ev.Data, "model", s.model)
	if err != nil {
		return nil, &provider.Error{Provider: s.c.o.ProviderID, StatusCode: http.StatusBadGateway, Type: "api_error", Message: "upstream sent a malformed stream chunk", Err: err}
	}
	setModel(item, s.model, raw)
	if s.done(item) {
		s.finished = true
	}
	return item, nil
}

// decode decodes an upstream body into v: chat completions and chunks,
// the hot path, through openai's reflection-free decoders (same result and
// errors as json.Unmarshal), anything else through json.Unmarshal.
func decode(data []byte, v any) error {
	switch v := v.(type) {
	case *openai.ChatCompletionChunk:
		return openai.DecodeChatCompletionChunk(data, v)
	case *openai.ChatCompletion:
		return openai.DecodeChatCompletion(data, v)
	}
	return json.Unmarshal(data, v)
}

// setModel stores the client's model id and the rewritten body in a chunk.
func setModel(item any, model string, raw []byte) {
	switch v := item.(type) {
	case *openai.ChatCompletionChunk:
		v.Model, v.Raw = model, raw
	case *openai.Completion:
		v.Model, v.Raw = model, raw
	}
}

// broken turns a read failure mid-stream into an error for the client.
func (s *stream[T]) broken(err error) error {
	if s.ctx.Err() != nil {
		return fmt.Errorf("read stream: %w", context.Cause(s.ctx))
	}
	e := s.c.transportError(s.ctx, "read stream", err)
	if pe, ok := e.(*provider.Error); ok && pe.Code == "upstream_unreachable" {
		pe.Code = "upstream_stream_broken"
		pe.Message = "the upstream stream ended before the completion finished"
	}
	return e
}

// Close releases the upstream connection. After data: [DONE] it first
// reads what is left of the body (normally just the end of the chunked
// encoding) so that the connection goes back to the pool instead of being
// dropped, which would cost the next stream a TCP and TLS handshake; an
// upstream that holds the body open longer than drainTimeout is cut.
func (s *stream[T]) Close() error {
	if s.sawDone {
		t := time.AfterFunc(drainTimeout, func() { _ = s.body.Close() })
		_, _ = io.CopyN(io.Discard, s.body, maxDrainBytes)
		t.Stop()
	}
	return s.body.Close()
}

// How long and how much Close reads after data: [DONE].
const (
	drainTimeout  = time.Second
	maxDrainBytes = 64 << 10
)
