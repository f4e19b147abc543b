package mcp

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/responses/mcp/mcptest"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

func add(args map[string]any) (string, bool) {
	a, _ := args["a"].(float64)
	b, _ := args["b"].(float64)
	return strconv.FormatFloat(a+b, 'f', -1, 64), false
}

func TestListAndCall(t *testing.T) {
	for _, sse := range []bool{false, true} {
		srv := mcptest.New(t, mcptest.Options{SSE: sse, PageSize: 1, Header: "Authorization", Value: "Bearer k",
			Tools: []mcptest.Tool{{Name: "add", Description: "adds", Handle: add}, {Name: "fail", Handle: func(map[string]any) (string, bool) { return "bad input", true }}}})
		c := New(srv.URL(), Options{Headers: map[string]string{"Authorization": "Bearer k"}})
		tools, err := c.ListTools(t.Context())
		if err != nil {
			t.Fatalf("sse=%v: %v", sse, err)
		}
		if len(tools) != 2 || tools[0].Name != "add" || tools[0].Description != "adds" || tools[1].Name != "fail" {
			t.Fatalf("tools = %+v", tools)
		}
		res, err := c.CallTool(t.Context(), "add", json.RawMessage(`{"a":2,"b":3}`))
		if err != nil || res.IsError || res.Text() != "5" {
			t.Fatalf("call = %+v, %v", res, err)
		}
		res, err = c.CallTool(t.Context(), "fail", nil)
		if err != nil || !res.IsError || res.Text() != "bad input" {
			t.Fatalf("failing call = %+v, %v", res, err)
		}
		_, err = c.CallTool(t.Context(), "missing", nil)
		var re *RPCError
		if !errors.As(err, &re) || !strings.Contains(re.Message, "unknown tool") {
			t.Errorf("unknown tool: %v", err)
		}
		c.Close(t.Context())
		want := "initialize,notifications/initialized,tools/list,tools/list,tools/call,tools/call,tools/call"
		if got := strings.Join(srv.Methods(), ","); got != want {
			t.Errorf("methods = %s", got)
		}
	}
}

func TestErrors(t *testing.T) {
	srv := mcptest.New(t, mcptest.Options{Header: "X-Key", Value: "secret"})
	_, err := New(srv.URL(), Options{}).ListTools(t.Context())
	var he *HTTPError
	if !errors.As(err, &he) || he.StatusCode != 401 {
		t.Errorf("without the header: %v", err)
	}
	srv2 := mcptest.New(t, mcptest.Options{FailList: true})
	_, err = New(srv2.URL(), Options{}).ListTools(t.Context())
	var re *RPCError
	if !errors.As(err, &re) || re.Message != "listing is broken" {
		t.Errorf("failing list: %v", err)
	}
}

func TestReadAnswers(t *testing.T) {
	tests := []struct {
		name, body string
		sse        bool
		ok         bool
	}{
		{"json", `{"jsonrpc":"2.0","id":7,"result":{}}`, false, true},
		{"batch", `[{"jsonrpc":"2.0","method":"x"},{"jsonrpc":"2.0","id":7,"result":{}}]`, false, true},
		{"wrong id", `{"jsonrpc":"2.0","id":8,"result":{}}`, false, false},
		{"not json", `<html>`, false, false},
		{"sse", "event: message\ndata: {\"jsonrpc\":\"2.0\",\"method\":\"n\"}\n\ndata: {\"jsonrpc\":\"2.0\",\"id\":7,\"result\":{}}\n\n", true, true},
		{"sse server request with same id", "data: {\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"sampling/createMessage\"}\n\ndata: {\"id\":7,\"result\":{}}\n\n", true, true},
		{"sse without answer", "data: {\"jsonrpc\":\"2.0\",\"method\":\"n\"}\n\n", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var m *rpcMessage
			var err error
			if tt.sse {
				m, err = readEventAnswer(strings.NewReader(tt.body), []byte("7"))
			} else {
				m, err = readJSONAnswer(strings.NewReader(tt.body), []byte("7"))
			}
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v", err)
			}
			if tt.ok && (m == nil || len(m.Result) == 0) {
				t.Errorf("answer = %+v", m)
			}
			if !tt.ok && !errors.Is(err, ErrProtocol) {
				t.Errorf("error is not ErrProtocol: %v", err)
			}
		})
	}
}

// FuzzReadAnswer checks that neither answer reader panics and that an
// answer they return has the id asked for.
func FuzzReadAnswer(f *testing.F) {
	f.Add([]byte(`{"jsonrpc":"2.0","id":1,"result":{"tools":[]}}`), false)
	f.Add([]byte(`[{"id":1,"error":{"code":-1,"message":"x"}}]`), false)
	f.Add([]byte("data: {\"id\":1,\"result\":{}}\n\n"), true)
	f.Add([]byte("data: {\"id\":1\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, body []byte, sse bool) {
		var m *rpcMessage
		var err error
		if sse {
			m, err = readEventAnswer(bytes.NewReader(body), []byte("1"))
		} else {
			m, err = readJSONAnswer(bytes.NewReader(body), []byte("1"))
		}
		if err == nil && string(bytes.TrimSpace(m.ID)) != "1" {
			t.Fatalf("answer with id %s", m.ID)
		}
	})
}
