// Package mcptest is a test double of an MCP server on the streamable HTTP
// transport: initialize (with a session id), tools/list (paged) and
// tools/call, answered as JSON or as a server-sent event stream. It records
// the calls it served.
package mcptest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
)

// Tool is a tool the double serves.
type Tool struct {
	Name        string
	Description string
	// InputSchema is the tool's JSON schema; nil means an object schema
	// without properties.
	InputSchema json.RawMessage
	// Handle answers a call: the result text and whether it is a tool
	// error. Nil echoes the arguments.
	Handle func(args map[string]any) (text string, isError bool)
}

// Options configure a Server.
type Options struct {
	// Tools are served in order.
	Tools []Tool
	// SSE answers requests with an event stream (a notification first,
	// then the response) instead of a JSON body.
	SSE bool
	// Header and Value, when set, are a header every request must carry
	// (else 401).
	Header, Value string
	// PageSize splits tools/list into pages; 0 means one page.
	PageSize int
	// FailList makes tools/list answer a JSON-RPC error.
	FailList bool
}

// Call is one tools/call the server served.
type Call struct {
	Name      string
	Arguments map[string]any
}

// Server is a running double.
type Server struct {
	o       Options
	srv     *httptest.Server
	mu      sync.Mutex
	calls   []Call
	methods []string
	session string
}

// New starts a Server on 127.0.0.1; tb.Cleanup closes it.
func New(tb testing.TB, o Options) *Server {
	tb.Helper()
	s, err := Start(o)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Close)
	return s
}

// Start starts a Server on 127.0.0.1; the caller closes it.
func Start(o Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen: %w", err)
	}
	s := &Server{o: o, session: "session-" + strconv.Itoa(len(o.Tools))}
	s.srv = &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(s.serve)}}
	s.srv.Start()
	return s, nil
}

// URL is the MCP endpoint.
func (s *Server) URL() string { return s.srv.URL + "/mcp" }

// Close stops the server.
func (s *Server) Close() { s.srv.Close() }

// Calls returns the tool calls served so far.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// Methods returns the JSON-RPC methods received so far, in order.
func (s *Server) Methods() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.methods)
}

type request struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if s.o.Header != "" && r.Header.Get(s.o.Header) != s.o.Value {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	if r.URL.Path != "/mcp" {
		http.NotFound(w, r)
		return
	}
	if r.Method == http.MethodDelete {
		w.WriteHeader(http.StatusOK)
		return
	}
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	var req request
	if err := json.Unmarshal(body, &req); err != nil {
		http.Error(w, "bad JSON-RPC", http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.methods = append(s.methods, req.Method)
	s.mu.Unlock()
	if req.Method != "initialize" && r.Header.Get("Mcp-Session-Id") != s.session {
		http.Error(w, "missing or unknown session", http.StatusBadRequest)
		return
	}
	if len(req.ID) == 0 {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	var result any
	var rpcErr map[string]any
	switch req.Method {
	case "initialize":
		w.Header().Set("Mcp-Session-Id", s.session)
		result = map[string]any{"protocolVersion": "2025-06-18", "capabilities": map[string]any{"tools": map[string]any{}},
			"serverInfo": map[string]string{"name": "mcptest", "version": "1"}}
	case "tools/list":
		if s.o.FailList {
			rpcErr = map[string]any{"code": -32603, "message": "listing is broken"}
			break
		}
		result = s.list(req.Params)
	case "tools/call":
		result, rpcErr = s.call(req.Params)
	default:
		rpcErr = map[string]any{"code": -32601, "message": "method not found"}
	}
	msg := map[string]any{"jsonrpc": "2.0", "id": req.ID}
	if rpcErr != nil {
		msg["error"] = rpcErr
	} else {
		msg["result"] = result
	}
	out, _ := json.Marshal(msg)
	if s.o.SSE {
		w.Header().Set("Content-Type", "text/event-stream")
		note, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "notifications/message", "params": map[string]string{"level": "info", "data": "working"}})
		fmt.Fprintf(w, "event: message\ndata: %s\n\nevent: message\ndata: %s\n\n", note, out)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(out)
}

func (s *Server) list(params json.RawMessage) any {
	var p struct {
		Cursor string `json:"cursor"`
	}
	_ = json.Unmarshal(params, &p)
	start, _ := strconv.Atoi(p.Cursor)
	end := len(s.o.Tools)
	if s.o.PageSize > 0 {
		end = min(end, start+s.o.PageSize)
	}
	start = min(start, end)
	tools := []map[string]any{}
	for _, t := range s.o.Tools[start:end] {
		schema := t.InputSchema
		if schema == nil {
			schema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		tools = append(tools, map[string]any{"name": t.Name, "description": t.Description, "inputSchema": schema})
	}
	res := map[string]any{"tools": tools}
	if end < len(s.o.Tools) {
		res["nextCursor"] = strconv.Itoa(end)
	}
	return res
}

func (s *Server) call(params json.RawMessage) (any, map[string]any) {
	var p struct {
		Name      string         `json:"name"`
		Arguments map[string]any `json:"arguments"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, map[string]any{"code": -32602, "message": "invalid params"}
	}
	s.mu.Lock()
	s.calls = append(s.calls, Call{Name: p.Name, Arguments: p.Arguments})
	s.mu.Unlock()
	for _, t := range s.o.Tools {
		if t.Name != p.Name {
			continue
		}
		text, isErr := "", false
		if t.Handle != nil {
			text, isErr = t.Handle(p.Arguments)
		} else {
			b, _ := json.Marshal(p.Arguments)
			text = string(b)
		}
		return map[string]any{"content": []map[string]string{{"type": "text", "text": text}}, "isError": isErr}, nil
	}
	return nil, map[string]any{"code": -32602, "message": "unknown tool " + p.Name}
}
