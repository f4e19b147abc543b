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
	// HTTPClient sends the requests; nil means NewHTTPClient().
	HTTPClient *http.Client
	// Authorize adds credentials to an outgoing request. A returned error
	// (a *provider.Error) stops the request before it is sent.
	Authorize func(ctx context.Context, h http.Header) error
	// TranslateError lets a provider reword an upstream error, for example
	// to say which credential to fix. It runs on every *provider.Error the
	// client builds from an upstream response.
	TranslateError func(e *provider.Error)
}

// Client sends chat completions to one OpenAI-compatible upstream.
type Client struct {
	o       Options
	chatURL string
}

var _ provider.Provider = (*Client)(nil)

// New returns a Client for the upstream o describes.
func New(o Options) *Client {
	if o.HTTPClient == nil {
		o.HTTPClient = NewHTTPClient()
	}
	return &Client{o: o, chatURL: o.BaseURL + "/chat/completions"}
}

// NewHTTPClient returns the client upstream calls use by default: proxies
// from HTTPS_PROXY/NO_PROXY, the system trust store (and SSL_CERT_FILE),
// HTTP/2, bounded dial and TLS handshakes, and no overall timeout, so that
// long streams are not cut.
func NewHTTPClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
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
	}}
}

// Chat sends a non-streamed completion and returns the upstream's body with
// the client's model id restored.
func (c *Client) Chat(ctx context.Context, req *provider.Request) (*openai.ChatCompletion, error) {
	resp, err := c.send(ctx, req, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes+1))
	if err != nil {
		return nil, c.transportError(ctx, "read response", err)
	}
	if len(body) > maxResponseBytes {
		return nil, &provider.Error{Provider: c.o.ProviderID, StatusCode: http.StatusBadGateway, Type: "api_error", Message: "upstream response is too large"}
	}
	var out openai.ChatCompletion
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, &provider.Error{Provider: c.o.ProviderID, StatusCode: http.StatusBadGateway, Type: "api_error", Message: "upstream sent a malformed completion", Err: err}
	}
	raw, err := openai.SetTopLevelString(body, "model", req.ClientModel)
	if err != nil {
		return nil, &provider.Error{Provider: c.o.ProviderID, StatusCode: http.StatusBadGateway, Type: "api_error", Message: "upstream sent a malformed completion", Err: err}
	}
	out.Model = req.ClientModel
	out.Raw = raw
	return &out, nil
}

// ChatStream opens a streamed completion. It returns once the upstream has
// answered with its status, so that a refusal is still a plain error.
func (c *Client) ChatStream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	resp, err := c.send(ctx, req, true)
	if err != nil {
		return nil, err
	}
	return &stream{c: c, ctx: ctx, body: resp.Body, rd: sse.NewReader(resp.Body), model: req.ClientModel}, nil
}

// send posts the request with the upstream model id and returns a 2xx
// response; any other status becomes a *provider.Error.
func (c *Client) send(ctx context.Context, req *provider.Request, streaming bool) (*http.Response, error) {
	body, err := openai.SetTopLevelString(req.Raw, "model", req.Model)
	if err != nil {
		return nil, fmt.Errorf("set upstream model: %w", err)
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.chatURL, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("build upstream request: %w", err)
	}
	hreq.Header.Set("Content-Type", "application/json")
	if streaming {
		hreq.Header.Set("Accept", "text/event-stream")
		// Compressed streams are buffered by gzip readers; ask for none.
		hreq.Header.Set("Accept-Encoding", "identity")
	} else {
		hreq.Header.Set("Accept", "application/json")
	}
	if c.o.Authorize != nil {
		if err := c.o.Authorize(ctx, hreq.Header); err != nil {
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

// stream relays one upstream event stream.
type stream struct {
	c        *Client
	ctx      context.Context
	body     io.ReadCloser
	rd       *sse.Reader
	model    string
	finished bool // a finish_reason or usage chunk has been seen
}

// wireChunk is a chunk that may instead be an in-band error.
type wireChunk struct {
	openai.ChatCompletionChunk
	Error json.RawMessage `json:"error"`
}

func (s *stream) Next() (*openai.ChatCompletionChunk, error) {
	for {
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
			return nil, io.EOF
		}
		var wc wireChunk
		if err := json.Unmarshal(ev.Data, &wc); err != nil {
			return nil, &provider.Error{Provider: s.c.o.ProviderID, StatusCode: http.StatusBadGateway, Type: "api_error", Message: "upstream sent a malformed stream chunk", Err: err}
		}
		if len(wc.Error) > 0 && string(wc.Error) != "null" {
			return nil, s.c.upstreamError(0, nil, ev.Data)
		}
		raw, err := openai.SetTopLevelString(ev.Data, "model", s.model)
		if err != nil {
			return nil, &provider.Error{Provider: s.c.o.ProviderID, StatusCode: http.StatusBadGateway, Type: "api_error", Message: "upstream sent a malformed stream chunk", Err: err}
		}
		ch := wc.ChatCompletionChunk
		ch.Model = s.model
		ch.Raw = raw
		if ch.Usage != nil || ch.Finished() {
			s.finished = true
		}
		return &ch, nil
	}
}

// broken turns a read failure mid-stream into an error for the client.
func (s *stream) broken(err error) error {
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

func (s *stream) Close() error { return s.body.Close() }
