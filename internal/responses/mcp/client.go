// Package mcp is a small client of the Model Context Protocol over its
// streamable HTTP transport: it initializes a session, lists a server's
// tools and calls them. It speaks JSON-RPC 2.0 by POST and reads the answer
// either as one JSON body or from a server-sent event stream.
package mcp

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/llama-stack-go/llama-stack-go/internal/sse"
)

// ProtocolVersion is the MCP revision the client asks for.
const ProtocolVersion = "2025-06-18"

// maxBody bounds one answer from a server.
const maxBody = 16 << 20

// ErrProtocol reports an answer that does not follow the protocol.
var ErrProtocol = errors.New("mcp protocol error")

// RPCError is a JSON-RPC error the server answered with.
type RPCError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Error returns the server's message and code.
func (e *RPCError) Error() string {
	return fmt.Sprintf("mcp server error %d: %s", e.Code, e.Message)
}

// HTTPError is a non-success HTTP status from the server.
type HTTPError struct {
	StatusCode int
	Body       string
}

// Error returns the status and the start of the body.
func (e *HTTPError) Error() string {
	return fmt.Sprintf("mcp server answered HTTP %d: %s", e.StatusCode, e.Body)
}

// Tool is one tool a server lists.
type Tool struct {
	Name        string          `json:"name"`
	Title       string          `json:"title,omitempty"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"inputSchema,omitempty"`
	Annotations json.RawMessage `json:"annotations,omitempty"`
}

// Content is one element of a tool result's content.
type Content struct {
	Type     string          `json:"type"`
	Text     string          `json:"text,omitempty"`
	Data     string          `json:"data,omitempty"`
	MimeType string          `json:"mimeType,omitempty"`
	Resource json.RawMessage `json:"resource,omitempty"`
}

// CallResult is the result of tools/call.
type CallResult struct {
	Content           []Content       `json:"content"`
	StructuredContent json.RawMessage `json:"structuredContent,omitempty"`
	IsError           bool            `json:"isError"`
}

// Text flattens the result to text: the text contents joined by newlines,
// else the structured content, else a note per other content.
func (r *CallResult) Text() string {
	var parts []string
	for _, c := range r.Content {
		switch c.Type {
		case "text":
			parts = append(parts, c.Text)
		case "resource":
			var res struct {
				Text string `json:"text"`
				URI  string `json:"uri"`
			}
			if json.Unmarshal(c.Resource, &res) == nil && res.Text != "" {
				parts = append(parts, res.Text)
			} else {
				parts = append(parts, "[resource "+res.URI+"]")
			}
		default:
			parts = append(parts, "["+c.Type+" content]")
		}
	}
	if len(parts) == 0 && len(r.StructuredContent) > 0 {
		return string(r.StructuredContent)
	}
	return strings.Join(parts, "\n")
}

// Client talks to one MCP server. Its methods are safe for concurrent use;
// the session starts with the first call.
type Client struct {
	url     string
	headers map[string]string
	hc      *http.Client
	name    string
	version string

	mu      sync.Mutex
	started bool
	session string
	proto   string
	nextID  atomic.Int64
}

// Options configure a Client.
type Options struct {
	// HTTPClient sends the requests; nil means http.DefaultClient's
	// transport with no overall timeout (calls follow the context).
	HTTPClient *http.Client
	// Headers are sent with every request (authorization, say).
	Headers map[string]string
	// ClientName and ClientVersion identify the client in initialize.
	ClientName, ClientVersion string
}

// New returns a client of the server at url.
func New(url string, o Options) *Client {
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{}
	}
	name := o.ClientName
	if name == "" {
		name = "llama-stack-go"
	}
	return &Client{url: url, headers: o.Headers, hc: hc, name: name, version: o.ClientVersion}
}

// ListTools initializes the session if needed and returns every tool,
// following pagination cursors.
func (c *Client) ListTools(ctx context.Context) ([]Tool, error) {
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	var all []Tool
	cursor := ""
	for range 100 {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		var res struct {
			Tools      []Tool `json:"tools"`
			NextCursor string `json:"nextCursor"`
		}
		if err := c.call(ctx, "tools/list", params, &res); err != nil {
			return nil, fmt.Errorf("list tools: %w", err)
		}
		all = append(all, res.Tools...)
		if res.NextCursor == "" {
			return all, nil
		}
		cursor = res.NextCursor
	}
	return nil, fmt.Errorf("list tools: %w: more than 100 pages", ErrProtocol)
}

// CallTool calls a tool with arguments (a JSON object; empty means {}).
// A tool that reports failure returns a result with IsError set, not an
// error.
func (c *Client) CallTool(ctx context.Context, name string, arguments json.RawMessage) (*CallResult, error) {
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	args := bytes.TrimSpace(arguments)
	if len(args) == 0 {
		args = []byte("{}")
	}
	var res CallResult
	if err := c.call(ctx, "tools/call", map[string]any{"name": name, "arguments": json.RawMessage(args)}, &res); err != nil {
		return nil, fmt.Errorf("call tool %s: %w", name, err)
	}
	return &res, nil
}

// Close ends the session, if the server gave one, with a DELETE; servers
// may refuse that, which is not an error.
func (c *Client) Close(ctx context.Context) {
	c.mu.Lock()
	session := c.session
	c.mu.Unlock()
	if session == "" {
		return
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, c.url, nil)
	if err != nil {
		return
	}
	c.setHeaders(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
	resp.Body.Close()
}

// start runs the initialize handshake once.
func (c *Client) start(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.started {
		return nil
	}
	params := map[string]any{
		"protocolVersion": ProtocolVersion,
		"capabilities":    map[string]any{},
		"clientInfo":      map[string]string{"name": c.name, "version": c.version},
	}
	var res struct {
		ProtocolVersion string `json:"protocolVersion"`
	}
	session, err := c.roundTrip(ctx, "initialize", params, &res, true)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	c.session, c.proto = session, res.ProtocolVersion
	if c.proto == "" {
		c.proto = ProtocolVersion
	}
	if _, err := c.roundTrip(ctx, "notifications/initialized", nil, nil, false); err != nil {
		return fmt.Errorf("initialized notification: %w", err)
	}
	c.started = true
	return nil
}

func (c *Client) call(ctx context.Context, method string, params, result any) error {
	_, err := c.roundTrip(ctx, method, params, result, true)
	return err
}

// rpcMessage is any JSON-RPC message a server sends.
type rpcMessage struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Result json.RawMessage `json:"result"`
	Error  *RPCError       `json:"error"`
}

// roundTrip POSTs one request (withID) or notification and decodes the
// matching response's result into result. It returns the session id the
// server gave, if any.
func (c *Client) roundTrip(ctx context.Context, method string, params, result any, withID bool) (string, error) {
	msg := map[string]any{"jsonrpc": "2.0", "method": method}
	if params != nil {
		msg["params"] = params
	}
	var id int64
	if withID {
		id = c.nextID.Add(1)
		msg["id"] = id
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return "", fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return "", fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	c.setHeaders(req)
	resp, err := c.hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("post %s: %w", method, err)
	}
	defer resp.Body.Close()
	session := resp.Header.Get("Mcp-Session-Id")
	if resp.StatusCode/100 != 2 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return "", &HTTPError{StatusCode: resp.StatusCode, Body: strings.TrimSpace(string(b))}
	}
	if !withID {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBody))
		return session, nil
	}
	want := []byte(fmt.Sprint(id))
	ct, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	var answer *rpcMessage
	if ct == "text/event-stream" {
		answer, err = readEventAnswer(resp.Body, want)
	} else {
		answer, err = readJSONAnswer(resp.Body, want)
	}
	if err != nil {
		return "", err
	}
	if answer.Error != nil {
		return "", answer.Error
	}
	if result != nil {
		if len(answer.Result) == 0 {
			return "", fmt.Errorf("%w: response to %s has no result", ErrProtocol, method)
		}
		if err := json.Unmarshal(answer.Result, result); err != nil {
			return "", fmt.Errorf("%w: decode %s result: %v", ErrProtocol, method, err)
		}
	}
	return session, nil
}

func (c *Client) setHeaders(req *http.Request) {
	for k, v := range c.headers {
		req.Header.Set(k, v)
	}
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
	}
	if c.proto != "" {
		req.Header.Set("MCP-Protocol-Version", c.proto)
	}
}

// readJSONAnswer reads a JSON body: one response or a batch.
func readJSONAnswer(r io.Reader, id []byte) (*rpcMessage, error) {
	b, err := io.ReadAll(io.LimitReader(r, maxBody))
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var batch []rpcMessage
		if err := json.Unmarshal(b, &batch); err != nil {
			return nil, fmt.Errorf("%w: response is not JSON-RPC: %v", ErrProtocol, err)
		}
		for i := range batch {
			if bytes.Equal(bytes.TrimSpace(batch[i].ID), id) {
				return &batch[i], nil
			}
		}
		return nil, fmt.Errorf("%w: no response with id %s in the batch", ErrProtocol, id)
	}
	var m rpcMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: response is not JSON-RPC: %v", ErrProtocol, err)
	}
	if !bytes.Equal(bytes.TrimSpace(m.ID), id) {
		return nil, fmt.Errorf("%w: response id %s, want %s", ErrProtocol, m.ID, id)
	}
	return &m, nil
}

// readEventAnswer reads server-sent events until the response with id,
// skipping the server's notifications and requests.
func readEventAnswer(r io.Reader, id []byte) (*rpcMessage, error) {
	rd := sse.NewReader(io.LimitReader(r, maxBody))
	for {
		ev, err := rd.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return nil, fmt.Errorf("%w: the event stream ended without a response", ErrProtocol)
			}
			return nil, fmt.Errorf("read event stream: %w", err)
		}
		var m rpcMessage
		if json.Unmarshal(ev.Data, &m) != nil {
			continue
		}
		if m.Method == "" && bytes.Equal(bytes.TrimSpace(m.ID), id) {
			return &m, nil
		}
	}
}
