package responses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/responses/mcp"
)

// mcpListError reports an MCP server whose tools could not be listed.
type mcpListError struct {
	label string
	err   error
}

// Error names the server and the failure, never its URL.
func (e *mcpListError) Error() string {
	return fmt.Sprintf("could not list the tools of MCP server '%s': %s", e.label, mcpMessage(e.err))
}

// Unwrap returns the client's error.
func (e *mcpListError) Unwrap() error { return e.err }

// mcpMessage is a failure of an MCP server, safe to show: the server's
// own JSON-RPC message or HTTP status, never the URL.
func mcpMessage(err error) string {
	var (
		re *mcp.RPCError
		he *mcp.HTTPError
	)
	switch {
	case errors.As(err, &re):
		return re.Message
	case errors.As(err, &he):
		return fmt.Sprintf("the server answered HTTP %d", he.StatusCode)
	case errors.Is(err, mcp.ErrProtocol):
		return "the server's answer does not follow the MCP protocol"
	case errors.Is(err, context.DeadlineExceeded):
		return "the server did not answer in time"
	default:
		return "the server could not be reached"
	}
}

// loop lists the MCP tools, runs approved calls, then calls the model
// until it answers without calling a server-side tool.
func (r *Run) loop(ctx context.Context) error {
	if err := r.listMCPTools(ctx); err != nil {
		return err
	}
	r.st = newStitcher()
	r.st.names = r.names
	r.st.add(r.history...)
	r.st.add(r.fresh...)
	for _, it := range r.fresh {
		if it.Type != TypeMCPApprovalResponse || it.Approve == nil || !*it.Approve {
			continue
		}
		req, _ := r.findApproval(derefStr(it.ApprovalRequestID))
		if r.answered(req.ID) {
			continue
		}
		item, err := r.runApproved(ctx, req)
		if err != nil {
			return err
		}
		r.st.add(item)
	}
	for iter := 0; ; iter++ {
		last := iter == r.e.maxIter-1
		var budget *int64
		if m := r.req.MaxOutputTokens; m != nil {
			left := *m - r.usage.OutputTokens
			if left < 1 {
				r.incomplete("max_output_tokens")
				return nil
			}
			budget = &left
		}
		creq, err := r.chatRequest(iter, last, budget)
		if err != nil {
			return err
		}
		t := newTurn(r)
		if err := r.callModel(ctx, creq, t); err != nil {
			return err
		}
		if err := t.end(); err != nil {
			return err
		}
		r.addUsage(t.usage)
		if err := r.runCalls(ctx, t); err != nil {
			return err
		}
		for _, idx := range t.items {
			r.st.add(r.resp.Output[idx])
		}
		switch t.finish {
		case "length":
			r.incomplete("max_output_tokens")
			return nil
		case "content_filter":
			r.incomplete("content_filter")
			return nil
		}
		if t.clientCalls > 0 || t.approvals > 0 || t.mcpCalls == 0 || last {
			r.resp.Status = StatusCompleted
			return nil
		}
	}
}

// answered reports whether an mcp_call for an approval request is already
// in the history.
func (r *Run) answered(requestID string) bool {
	for _, it := range r.history {
		if it.Type == TypeMCPCall && derefStr(it.ApprovalRequestID) == requestID {
			return true
		}
	}
	return false
}

func (r *Run) incomplete(reason string) {
	r.resp.Status = StatusIncomplete
	r.resp.IncompleteDetails = &IncompleteDetails{Reason: reason}
}

// addUsage adds one model call's usage.
func (r *Run) addUsage(u *openai.Usage) {
	if u == nil {
		return
	}
	r.usage.InputTokens += u.PromptTokens
	r.usage.OutputTokens += u.CompletionTokens
	var pd struct {
		CachedTokens int64 `json:"cached_tokens"`
	}
	if len(u.PromptTokensDetails) > 0 && json.Unmarshal(u.PromptTokensDetails, &pd) == nil {
		r.usage.InputTokensDetails.CachedTokens += pd.CachedTokens
	}
	var cd struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	}
	if len(u.CompletionTokensDetails) > 0 && json.Unmarshal(u.CompletionTokensDetails, &cd) == nil {
		r.usage.OutputTokensDetails.ReasoningTokens += cd.ReasoningTokens
	}
	r.usage.TotalTokens = r.usage.InputTokens + r.usage.OutputTokens
}

// chatRequest builds one model call. The last call of the loop offers no
// tools, so it must answer.
func (r *Run) chatRequest(iter int, last bool, budget *int64) (*openai.ChatCompletionRequest, error) {
	req := r.req
	msgs := r.st.messages()
	if req.Instructions != nil && *req.Instructions != "" {
		msgs = append([]openai.Message{{Role: "system", Content: jsonString(*req.Instructions)}}, msgs...)
	}
	c := &openai.ChatCompletionRequest{
		Model:               r.t.ClientModel,
		Messages:            msgs,
		Temperature:         req.Temperature,
		TopP:                req.TopP,
		MaxCompletionTokens: budget,
		ResponseFormat:      r.format,
		User:                req.User,
	}
	if c.Model == "" {
		c.Model = req.Model
	}
	if req.Reasoning != nil && req.Reasoning.Effort != nil {
		c.ReasoningEffort = *req.Reasoning.Effort
	}
	if r.sink != nil {
		c.Stream = true
		c.StreamOptions = &openai.StreamOptions{IncludeUsage: true}
	}
	if last {
		return c, nil
	}
	ct := r.chatTools(iter)
	if len(ct.tools) > 0 {
		c.Tools, c.ToolChoice = ct.tools, ct.choice
		c.ParallelToolCalls = req.ParallelToolCalls
	}
	return c, nil
}

// chatTools are the tools of one model call: the function tools and the
// listed MCP tools that allowed_tools and max_tool_calls leave. A forced
// choice (required, a named tool) holds for the first call only; later
// calls of the loop are "auto", or the model could never stop.
func (r *Run) chatTools(iter int) chatTools {
	ct := chatTools{}
	al := r.choice.allowed
	for _, f := range r.tools.functions {
		if al != nil && !al.functions[f.Name] {
			continue
		}
		params := f.Parameters
		if len(params) == 0 || string(params) == "null" {
			params = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		ct.tools = append(ct.tools, openai.Tool{Type: "function", Function: openai.FunctionDecl{Name: f.Name, Description: f.Description, Parameters: params, Strict: f.Strict}})
	}
	mcpOpen := r.req.MaxToolCalls == nil || int64(r.mcpCalls) < *r.req.MaxToolCalls
	if mcpOpen {
		for _, m := range r.tools.mcp {
			only, ok := "", true
			if al != nil {
				only, ok = al.mcp[m.Label]
			}
			if !ok {
				continue
			}
			for _, t := range r.listed[m.Label] {
				if only != "" && t.Name != only {
					continue
				}
				params := t.InputSchema
				if len(params) == 0 || string(params) == "null" {
					params = json.RawMessage(`{"type":"object","properties":{}}`)
				}
				ct.tools = append(ct.tools, openai.Tool{Type: "function", Function: openai.FunctionDecl{Name: r.names[m.Label+"\x00"+t.Name], Description: derefStr(t.Description), Parameters: params}})
			}
		}
	}
	if len(ct.tools) == 0 {
		return ct
	}
	mode := r.choice.mode
	switch {
	case iter > 0 && mode != "none":
		mode = "auto"
	case r.choice.function != "":
		ct.choice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": r.choice.function}})
		return ct
	case r.choice.mcpLabel != "" && r.choice.mcpName != "":
		name, ok := r.names[r.choice.mcpLabel+"\x00"+r.choice.mcpName]
		if ok {
			ct.choice, _ = json.Marshal(map[string]any{"type": "function", "function": map[string]string{"name": name}})
			return ct
		}
		mode = "required"
	}
	if mode == "" {
		mode = "auto"
	}
	ct.choice = jsonString(mode)
	return ct
}

// callModel sends one model call and feeds its output to the turn.
func (r *Run) callModel(ctx context.Context, c *openai.ChatCompletionRequest, t *turn) error {
	raw, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode chat request: %w", err)
	}
	preq := &provider.Request{Model: r.t.ProviderModel, ClientModel: c.Model, Chat: c, Raw: raw, Data: r.t.Data, Metadata: r.t.Metadata}
	if !c.Stream {
		cc, err := r.t.Provider.Chat(ctx, preq)
		if err != nil {
			return err
		}
		return t.chunk(chunkOf(cc))
	}
	st, err := r.t.Provider.ChatStream(ctx, preq)
	if err != nil {
		return err
	}
	defer st.Close()
	for n := 0; ; n++ {
		ch, err := st.Next()
		if err == io.EOF && n == 0 {
			return &provider.Error{Provider: r.t.ProviderID, StatusCode: http.StatusBadGateway, Type: "api_error", Message: "the upstream ended the stream without sending anything"}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if err := t.chunk(ch); err != nil {
			return err
		}
	}
}

// chunkOf restates a complete chat completion as one chunk.
func chunkOf(c *openai.ChatCompletion) *openai.ChatCompletionChunk {
	ch := &openai.ChatCompletionChunk{ID: c.ID, Model: c.Model, Usage: c.Usage}
	if len(c.Choices) == 0 {
		return ch
	}
	m := c.Choices[0].Message
	d := openai.Delta{Role: m.Role, Content: m.Content, Refusal: m.Refusal, Reasoning: m.Reasoning, ReasoningContent: m.ReasoningContent}
	for i, tc := range m.ToolCalls {
		tc.Index = new(i)
		d.ToolCalls = append(d.ToolCalls, tc)
	}
	fr := c.Choices[0].FinishReason
	ch.Choices = []openai.ChunkChoice{{Delta: d, FinishReason: &fr}}
	return ch
}

// listMCPTools lists each MCP server's tools, unless the history already
// holds a listing of that server, and names them for the model.
func (r *Run) listMCPTools(ctx context.Context) error {
	r.listed = map[string][]MCPTool{}
	r.names = map[string]string{}
	r.bindings = map[string]mcpBinding{}
	taken := map[string]bool{}
	for _, f := range r.tools.functions {
		taken[f.Name] = true
	}
	for _, m := range r.tools.mcp {
		tools, ok := r.priorListing(m.Label)
		if !ok {
			var err error
			if tools, err = r.listServer(ctx, m); err != nil {
				return err
			}
		}
		var allowed []MCPTool
		for _, t := range tools {
			if !m.allows(t.Name) {
				continue
			}
			allowed = append(allowed, t)
			name := chatName(m.Label, t.Name, taken)
			taken[name] = true
			r.names[m.Label+"\x00"+t.Name] = name
			r.bindings[name] = mcpBinding{server: m, tool: t.Name}
		}
		r.listed[m.Label] = allowed
	}
	return nil
}

// priorListing returns the tools of the latest successful listing of a
// server in the history.
func (r *Run) priorListing(label string) ([]MCPTool, bool) {
	for i := len(r.history) - 1; i >= 0; i-- {
		it := r.history[i]
		if it.Type == TypeMCPListTools && it.ServerLabel == label && it.Error == nil {
			return it.Tools, true
		}
	}
	return nil, false
}

// listServer lists a server's tools as an mcp_list_tools output item.
func (r *Run) listServer(ctx context.Context, m *mcpServer) ([]MCPTool, error) {
	idx := r.addItem(Item{Type: TypeMCPListTools, ID: newID(prefixMCPListTools), ServerLabel: m.Label, Tools: []MCPTool{}})
	it := &r.resp.Output[idx]
	if err := r.emitItem("response.output_item.added", idx); err != nil {
		return nil, err
	}
	if err := r.emit(Event{Type: "response.mcp_list_tools.in_progress", ItemID: it.ID, OutputIndex: new(idx)}); err != nil {
		return nil, err
	}
	lctx, cancel := context.WithTimeout(ctx, mcpTimeout)
	listed, err := r.client(m).ListTools(lctx)
	cancel()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		le := &mcpListError{label: m.Label, err: err}
		it.Error = new(le.Error())
		_ = r.emit(Event{Type: "response.mcp_list_tools.failed", ItemID: it.ID, OutputIndex: new(idx)})
		_ = r.emitItem("response.output_item.done", idx)
		return nil, le
	}
	tools := make([]MCPTool, 0, len(listed))
	for _, t := range listed {
		if !m.allows(t.Name) {
			continue
		}
		mt := MCPTool{Name: t.Name, InputSchema: t.InputSchema, Annotations: t.Annotations}
		if t.Description != "" {
			mt.Description = new(t.Description)
		}
		if len(mt.InputSchema) == 0 {
			mt.InputSchema = json.RawMessage(`{"type":"object","properties":{}}`)
		}
		if len(mt.Annotations) == 0 {
			mt.Annotations = json.RawMessage("null")
		}
		tools = append(tools, mt)
	}
	it.Tools = tools
	if err := r.emit(Event{Type: "response.mcp_list_tools.completed", ItemID: it.ID, OutputIndex: new(idx)}); err != nil {
		return nil, err
	}
	if err := r.emitItem("response.output_item.done", idx); err != nil {
		return nil, err
	}
	return tools, nil
}

// client returns the session with an MCP server, opening it on first use.
func (r *Run) client(m *mcpServer) *mcp.Client {
	if r.clients == nil {
		r.clients = map[string]*mcp.Client{}
	}
	c, ok := r.clients[m.Label]
	if !ok {
		c = mcp.New(m.URL, mcp.Options{HTTPClient: r.e.hc, Headers: m.Headers, ClientVersion: r.e.version})
		r.clients[m.Label] = c
	}
	return c
}

// closeClients ends the MCP sessions.
func (r *Run) closeClients() {
	for _, c := range r.clients {
		ctx, cancel := contextWithShortTimeout()
		c.Close(ctx)
		cancel()
	}
}

// runCalls runs the turn's MCP calls, in order, and completes their items.
func (r *Run) runCalls(ctx context.Context, t *turn) error {
	for _, c := range t.calls {
		if c.kind != callMCP {
			continue
		}
		it := &r.resp.Output[c.index]
		if t.finish == "length" {
			it.Error = new("the call was cut off at max_output_tokens and not made")
			it.Status = StatusFailed
		} else {
			r.execMCP(ctx, c.binding.server, it)
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err := r.finishMCPItem(c.index); err != nil {
			return err
		}
	}
	return nil
}

// runApproved makes a call the client approved, as an mcp_call output
// item.
func (r *Run) runApproved(ctx context.Context, req Item) (Item, error) {
	m := r.server(req.ServerLabel)
	idx := r.addItem(Item{Type: TypeMCPCall, ID: newID(prefixMCPCall), ServerLabel: req.ServerLabel, Name: req.Name, Arguments: req.Arguments,
		ApprovalRequestID: new(req.ID), Status: StatusInProgress})
	id := r.resp.Output[idx].ID
	if err := r.emitItem("response.output_item.added", idx); err != nil {
		return Item{}, err
	}
	if err := r.emit(Event{Type: "response.mcp_call.in_progress", ItemID: id, OutputIndex: new(idx)}); err != nil {
		return Item{}, err
	}
	if err := r.emit(Event{Type: "response.mcp_call_arguments.done", ItemID: id, OutputIndex: new(idx), Arguments: new(req.Arguments)}); err != nil {
		return Item{}, err
	}
	r.execMCP(ctx, m, &r.resp.Output[idx])
	if ctx.Err() != nil {
		return Item{}, ctx.Err()
	}
	if err := r.finishMCPItem(idx); err != nil {
		return Item{}, err
	}
	return r.resp.Output[idx], nil
}

// execMCP calls the tool of an mcp_call item and fills its output or
// error. A call beyond max_tool_calls is not made.
func (r *Run) execMCP(ctx context.Context, m *mcpServer, it *Item) {
	if mx := r.req.MaxToolCalls; mx != nil && int64(r.mcpCalls) >= *mx {
		it.Error, it.Status = new(fmt.Sprintf("not called: the response reached max_tool_calls (%d)", *mx)), StatusFailed
		return
	}
	r.mcpCalls++
	args := strings.TrimSpace(it.Arguments)
	if args == "" {
		args = "{}"
	}
	if !json.Valid([]byte(args)) || args[0] != '{' {
		it.Error, it.Status = new("the arguments are not a JSON object"), StatusFailed
		return
	}
	cctx, cancel := context.WithTimeout(ctx, mcpTimeout)
	res, err := r.client(m).CallTool(cctx, it.Name, json.RawMessage(args))
	cancel()
	if err != nil {
		var ue *url.Error
		logErr := err
		if errors.As(err, &ue) {
			logErr = ue.Err
		}
		r.e.log.LogAttrs(ctx, slog.LevelWarn, "mcp tool call failed", slog.String("response_id", r.resp.ID), slog.String("server_label", m.Label),
			slog.String("tool", it.Name), slog.String("error", logErr.Error()))
		it.Error, it.Status = new("calling tool '"+it.Name+"' failed: "+mcpMessage(err)), StatusFailed
		return
	}
	text := res.Text()
	if res.IsError {
		it.Error, it.Status = new(text), StatusFailed
		return
	}
	it.Output, it.Status = jsonString(text), StatusCompleted
}

// finishMCPItem sends the completion events of an mcp_call item.
func (r *Run) finishMCPItem(idx int) error {
	it := &r.resp.Output[idx]
	typ := "response.mcp_call.completed"
	if it.Error != nil {
		typ = "response.mcp_call.failed"
	}
	if err := r.emit(Event{Type: typ, ItemID: it.ID, OutputIndex: new(idx)}); err != nil {
		return err
	}
	return r.emitItem("response.output_item.done", idx)
}

// addItem appends an output item and returns its index.
func (r *Run) addItem(it Item) int {
	r.resp.Output = append(r.resp.Output, it)
	return len(r.resp.Output) - 1
}

// emitItem sends an output_item event carrying a copy of the item.
func (r *Run) emitItem(typ string, idx int) error {
	it := r.resp.Output[idx]
	it.Content = clonePartsForEvent(it.Content)
	return r.emit(Event{Type: typ, OutputIndex: new(idx), Item: &it})
}

func clonePartsForEvent(ps []Part) []Part {
	if ps == nil {
		return nil
	}
	return append([]Part(nil), ps...)
}
