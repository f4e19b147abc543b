package responses

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
)

// functionTool is a function tool the client runs.
type functionTool struct {
	Name        string
	Description string
	Parameters  json.RawMessage
	Strict      *bool
}

// mcpServer is an MCP tool: a server the engine calls over streamable
// HTTP.
type mcpServer struct {
	Label       string
	URL         string
	Headers     map[string]string
	Allowed     []string // nil: every tool
	Description string
	// approval: "always" or "never" for tools not named below.
	approval string
	always   []string
	never    []string
}

// needsApproval reports whether a call of tool needs the client's approval.
func (m *mcpServer) needsApproval(tool string) bool {
	switch {
	case slices.Contains(m.never, tool):
		return false
	case slices.Contains(m.always, tool):
		return true
	}
	return m.approval != "never"
}

// allows reports whether the tool is in allowed_tools.
func (m *mcpServer) allows(tool string) bool {
	return m.Allowed == nil || slices.Contains(m.Allowed, tool)
}

// toolSet is the request's tools, validated.
type toolSet struct {
	functions []functionTool
	mcp       []*mcpServer
	// echo is the tools as the response shows them: as sent, without MCP
	// headers and authorization.
	echo []json.RawMessage
}

// hostedTools are OpenAI's server-side tools this server does not run.
var hostedTools = map[string]bool{
	"web_search": true, "web_search_preview": true, "web_search_preview_2025_03_11": true, "web_search_2025_08_26": true,
	"file_search": true, "code_interpreter": true, "computer_use_preview": true, "computer_use": true, "computer": true,
	"image_generation": true, "local_shell": true, "shell": true, "custom": true, "apply_patch": true, "tool_search": true,
	"namespace": true,
}

var toolNameRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,64}$`)

// wireTool is a tool as it arrives.
type wireTool struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict"`
	// Chat-style function tools nest the declaration.
	Function *struct {
		Name        string          `json:"name"`
		Description string          `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
		Strict      *bool           `json:"strict"`
	} `json:"function"`
	ServerLabel       string            `json:"server_label"`
	ServerURL         string            `json:"server_url"`
	ConnectorID       string            `json:"connector_id"`
	Headers           map[string]string `json:"headers"`
	Authorization     string            `json:"authorization"`
	AllowedTools      json.RawMessage   `json:"allowed_tools"`
	RequireApproval   json.RawMessage   `json:"require_approval"`
	ServerDescription string            `json:"server_description"`
}

// parseTools validates the request's tools.
func parseTools(raws []json.RawMessage) (*toolSet, error) {
	ts := &toolSet{echo: []json.RawMessage{}}
	names := map[string]bool{}
	labels := map[string]bool{}
	for i, raw := range raws {
		p := fmt.Sprintf("tools[%d]", i)
		var w wireTool
		if err := json.Unmarshal(raw, &w); err != nil {
			return nil, memberError(p, err)
		}
		switch {
		case w.Type == "function":
			f := functionTool{Name: w.Name, Description: w.Description, Parameters: w.Parameters, Strict: w.Strict}
			if f.Name == "" && w.Function != nil {
				f = functionTool{Name: w.Function.Name, Description: w.Function.Description, Parameters: w.Function.Parameters, Strict: w.Function.Strict}
			}
			if f.Name == "" {
				return nil, invalid(p+".name", "field '%s.name' is required for function tools", p)
			}
			if !toolNameRE.MatchString(f.Name) {
				return nil, invalid(p+".name", "field '%s.name' must be 1 to 64 letters, digits, '_' or '-'; got '%s'", p, truncate(f.Name, 80))
			}
			if names[f.Name] {
				return nil, invalid(p+".name", "function tool '%s' is declared twice", f.Name)
			}
			if ps := bytes.TrimSpace(f.Parameters); len(ps) > 0 && string(ps) != "null" && ps[0] != '{' {
				return nil, invalid(p+".parameters", "field '%s.parameters' must be a JSON schema object", p)
			}
			names[f.Name] = true
			ts.functions = append(ts.functions, f)
			ts.echo = append(ts.echo, functionEcho(f))
		case w.Type == "mcp":
			m, err := parseMCP(&w, p)
			if err != nil {
				return nil, err
			}
			if labels[m.Label] {
				return nil, invalid(p+".server_label", "MCP server_label '%s' is used twice", m.Label)
			}
			labels[m.Label] = true
			ts.mcp = append(ts.mcp, m)
			ts.echo = append(ts.echo, redactMCP(raw))
		case w.Type == "":
			return nil, invalid(p+".type", "field '%s.type' is required", p)
		default:
			what := "unknown tool type"
			if hostedTools[w.Type] {
				what = "tool type"
			}
			return nil, unsupported(p+".type", "%s '%s' is not supported by this server (supported tool types: function, mcp)", what, truncate(w.Type, 64))
		}
	}
	return ts, nil
}

// functionEcho is a function tool in the response's shape.
func functionEcho(f functionTool) json.RawMessage {
	params := f.Parameters
	if len(bytes.TrimSpace(params)) == 0 {
		params = json.RawMessage("null")
	}
	strict := f.Strict
	if strict == nil {
		strict = new(true)
	}
	var desc *string
	if f.Description != "" {
		desc = &f.Description
	}
	b, _ := json.Marshal(struct {
		Type        string          `json:"type"`
		Name        string          `json:"name"`
		Description *string         `json:"description"`
		Parameters  json.RawMessage `json:"parameters"`
		Strict      *bool           `json:"strict"`
	}{"function", f.Name, desc, params, strict})
	return b
}

// redactMCP is an MCP tool as sent, without the members that carry
// credentials.
func redactMCP(raw json.RawMessage) json.RawMessage {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw
	}
	delete(m, "headers")
	delete(m, "authorization")
	b, err := json.Marshal(m)
	if err != nil {
		return raw
	}
	return b
}

func parseMCP(w *wireTool, p string) (*mcpServer, error) {
	if w.ServerLabel == "" {
		return nil, invalid(p+".server_label", "field '%s.server_label' is required for mcp tools", p)
	}
	if w.ConnectorID != "" && w.ServerURL == "" {
		return nil, unsupported(p+".connector_id", "%s: MCP connectors are not supported by this server; give server_url", p)
	}
	if w.ServerURL == "" {
		return nil, invalid(p+".server_url", "field '%s.server_url' is required for mcp tools", p)
	}
	u, err := url.Parse(w.ServerURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, invalid(p+".server_url", "field '%s.server_url' must be an http or https URL", p)
	}
	m := &mcpServer{Label: w.ServerLabel, URL: w.ServerURL, Headers: w.Headers, Description: w.ServerDescription, approval: "always"}
	if w.Authorization != "" {
		if m.Headers == nil {
			m.Headers = map[string]string{}
		}
		if _, ok := m.Headers["Authorization"]; !ok {
			m.Headers["Authorization"] = "Bearer " + w.Authorization
		}
	}
	if a := bytes.TrimSpace(w.AllowedTools); len(a) > 0 && string(a) != "null" {
		var list []string
		var filter struct {
			ToolNames []string `json:"tool_names"`
		}
		switch {
		case json.Unmarshal(a, &list) == nil:
			m.Allowed = list
		case json.Unmarshal(a, &filter) == nil:
			m.Allowed = filter.ToolNames
		default:
			return nil, invalid(p+".allowed_tools", "field '%s.allowed_tools' must be an array of tool names or {\"tool_names\": [...]}", p)
		}
		if m.Allowed == nil {
			m.Allowed = []string{}
		}
	}
	if r := bytes.TrimSpace(w.RequireApproval); len(r) > 0 && string(r) != "null" {
		var mode string
		var filter struct {
			Always *struct {
				ToolNames []string `json:"tool_names"`
			} `json:"always"`
			Never *struct {
				ToolNames []string `json:"tool_names"`
			} `json:"never"`
		}
		switch {
		case json.Unmarshal(r, &mode) == nil:
			if mode != "always" && mode != "never" {
				return nil, invalid(p+".require_approval", "field '%s.require_approval' must be 'always', 'never' or a filter object; got '%s'", p, truncate(mode, 32))
			}
			m.approval = mode
		case json.Unmarshal(r, &filter) == nil:
			if filter.Always != nil {
				m.always = filter.Always.ToolNames
			}
			if filter.Never != nil {
				m.never = filter.Never.ToolNames
			}
		default:
			return nil, invalid(p+".require_approval", "field '%s.require_approval' must be 'always', 'never' or a filter object", p)
		}
	}
	return m, nil
}

// toolChoice is the validated tool_choice.
type toolChoice struct {
	mode     string // "auto", "none", "required", or "" with a named tool
	function string // a named function tool
	mcpLabel string // a named MCP server (and mcpName, when set)
	mcpName  string
	// allowed, for allowed_tools: function names and MCP labels the model
	// may use.
	allowed *allowedTools
	echo    json.RawMessage
}

type allowedTools struct {
	functions map[string]bool
	mcp       map[string]string // label → tool name ("" = all)
}

// parseToolChoice validates tool_choice against the tools.
func parseToolChoice(raw json.RawMessage, ts *toolSet) (*toolChoice, error) {
	c := bytes.TrimSpace(raw)
	if len(c) == 0 || string(c) == "null" {
		return &toolChoice{mode: "auto", echo: json.RawMessage(`"auto"`)}, nil
	}
	tc := &toolChoice{echo: c}
	var mode string
	if json.Unmarshal(c, &mode) == nil {
		switch mode {
		case "auto", "none", "required":
			tc.mode = mode
			return tc, nil
		}
		return nil, invalid("tool_choice", "field 'tool_choice' must be 'auto', 'none', 'required' or an object; got '%s'", truncate(mode, 32))
	}
	var w struct {
		Type        string                 `json:"type"`
		Name        string                 `json:"name"`
		ServerLabel string                 `json:"server_label"`
		Mode        string                 `json:"mode"`
		Tools       []wireTool             `json:"tools"`
		Function    *struct{ Name string } `json:"function"`
	}
	if err := json.Unmarshal(c, &w); err != nil {
		return nil, invalid("tool_choice", "field 'tool_choice' must be a string or an object")
	}
	switch w.Type {
	case "function":
		name := w.Name
		if name == "" && w.Function != nil {
			name = w.Function.Name
		}
		if !slices.ContainsFunc(ts.functions, func(f functionTool) bool { return f.Name == name }) {
			return nil, invalid("tool_choice.name", "tool_choice names function '%s', which is not among the tools", truncate(name, 64))
		}
		tc.function = name
	case "mcp":
		if !slices.ContainsFunc(ts.mcp, func(m *mcpServer) bool { return m.Label == w.ServerLabel }) {
			return nil, invalid("tool_choice.server_label", "tool_choice names MCP server '%s', which is not among the tools", truncate(w.ServerLabel, 64))
		}
		tc.mcpLabel, tc.mcpName = w.ServerLabel, w.Name
		if w.Name == "" {
			tc.mode = "required"
		}
	case "allowed_tools":
		switch w.Mode {
		case "auto", "required":
			tc.mode = w.Mode
		default:
			return nil, invalid("tool_choice.mode", "field 'tool_choice.mode' must be 'auto' or 'required'")
		}
		tc.allowed = &allowedTools{functions: map[string]bool{}, mcp: map[string]string{}}
		for i, t := range w.Tools {
			switch t.Type {
			case "function":
				tc.allowed.functions[t.Name] = true
			case "mcp":
				tc.allowed.mcp[t.ServerLabel] = t.Name
			default:
				return nil, unsupported(fmt.Sprintf("tool_choice.tools[%d].type", i), "tool type '%s' is not supported by this server (supported tool types: function, mcp)", truncate(t.Type, 64))
			}
		}
	case "":
		return nil, invalid("tool_choice.type", "field 'tool_choice.type' is required")
	default:
		return nil, unsupported("tool_choice.type", "tool_choice type '%s' is not supported by this server (supported: function, mcp, allowed_tools)", truncate(w.Type, 64))
	}
	return tc, nil
}

// responseFormat turns text.format into a chat response_format; nil for
// plain text.
func responseFormat(t *TextConfig) (json.RawMessage, error) {
	if t == nil || t.Format == nil {
		return nil, nil
	}
	f := t.Format
	switch f.Type {
	case "text":
		return nil, nil
	case "json_object":
		return json.RawMessage(`{"type":"json_object"}`), nil
	case "json_schema":
		if f.Name == "" {
			return nil, invalid("text.format.name", "field 'text.format.name' is required for json_schema")
		}
		if s := bytes.TrimSpace(f.Schema); len(s) == 0 || s[0] != '{' {
			return nil, invalid("text.format.schema", "field 'text.format.schema' must be a JSON schema object")
		}
		var desc *string
		if f.Description != "" {
			desc = &f.Description
		}
		b, err := json.Marshal(map[string]any{"type": "json_schema", "json_schema": struct {
			Name        string          `json:"name"`
			Description *string         `json:"description,omitempty"`
			Schema      json.RawMessage `json:"schema"`
			Strict      *bool           `json:"strict,omitempty"`
		}{f.Name, desc, f.Schema, f.Strict}})
		if err != nil {
			return nil, fmt.Errorf("encode response_format: %w", err)
		}
		return b, nil
	case "":
		return nil, invalid("text.format.type", "field 'text.format.type' is required")
	default:
		return nil, invalid("text.format.type", "field 'text.format.type' must be text, json_object or json_schema; got '%s'", truncate(f.Type, 32))
	}
}

// chatTools are the tools offered to the model in one model call, and how
// to map a called name back.
type chatTools struct {
	tools  []openai.Tool
	choice json.RawMessage
	mcp    map[string]mcpBinding // chat name → MCP tool
}

// mcpBinding names one MCP tool of one server.
type mcpBinding struct {
	server *mcpServer
	tool   string
}

var unsafeName = regexp.MustCompile(`[^a-zA-Z0-9_-]`)

// chatName gives an MCP tool a name the upstream accepts and no other tool
// has.
func chatName(label, tool string, taken map[string]bool) string {
	base := unsafeName.ReplaceAllString(tool, "_")
	if len(base) > 64 {
		base = base[:64]
	}
	if !taken[base] && base != "" {
		return base
	}
	pre := unsafeName.ReplaceAllString(label, "_")
	name := pre + "__" + base
	if len(name) > 64 {
		name = name[:64]
	}
	for i := 2; taken[name]; i++ {
		suffix := fmt.Sprintf("_%d", i)
		name = strings.TrimSuffix(name[:min(len(name), 64-len(suffix))], suffix) + suffix
	}
	return name
}
