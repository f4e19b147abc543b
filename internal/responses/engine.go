package responses

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/responses/mcp"
	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// DefaultMaxIterations bounds the model calls of one response: a loop of
// MCP tool calls ends with a call that offers no tools.
const DefaultMaxIterations = 10

// backgroundTimeout bounds one background response.
const backgroundTimeout = 30 * time.Minute

// storeTimeout bounds the final write of a response, which runs even when
// the client has gone.
const storeTimeout = 30 * time.Second

// Options configure an Engine.
type Options struct {
	// Records holds responses, conversations and items; nil switches
	// storage off (store:false responses still work).
	Records store.Records
	// Logger receives the engine's warnings; nil discards them.
	Logger *slog.Logger
	// HTTPClient calls MCP servers; nil means a client that honours the
	// proxy environment and refuses link-local addresses (cloud metadata
	// services), without an overall timeout.
	HTTPClient *http.Client
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Version is sent to MCP servers as the client version.
	Version string
	// MaxIterations bounds the model calls of one response; 0 means
	// DefaultMaxIterations.
	MaxIterations int
}

// Engine runs responses and keeps their state.
type Engine struct {
	records store.Records
	log     *slog.Logger
	hc      *http.Client
	now     func() time.Time
	version string
	maxIter int

	base context.Context // canceled by Close
	stop context.CancelFunc
	wg   sync.WaitGroup
	mu   sync.Mutex
	bg   map[string]*bgRun // running background responses by id
}

// bgRun is a background response running in this process.
type bgRun struct {
	cancel    context.CancelFunc
	cancelled atomic.Bool
}

// New returns an Engine.
func New(o Options) *Engine {
	e := &Engine{records: o.Records, log: o.Logger, hc: o.HTTPClient, now: o.Now, version: o.Version, maxIter: o.MaxIterations, bg: map[string]*bgRun{}}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.hc == nil {
		e.hc = newMCPClient()
	}
	if e.now == nil {
		e.now = time.Now
	}
	if e.maxIter <= 0 {
		e.maxIter = DefaultMaxIterations
	}
	e.base, e.stop = context.WithCancel(context.Background())
	return e
}

// Close cancels the background responses still running and waits for them
// to end (each records its state first).
func (e *Engine) Close() {
	e.stop()
	e.wg.Wait()
}

// StorageEnabled reports whether the engine has storage.
func (e *Engine) StorageEnabled() bool { return e.records != nil }

// Target is the model a response runs on, as the registry resolved it.
type Target struct {
	// Provider serves the model.
	Provider provider.Provider
	// ProviderID names the provider in errors.
	ProviderID string
	// ProviderModel is the provider_model_id.
	ProviderModel string
	// ClientModel is the id the client asked for; the response shows it.
	ClientModel string
	// Metadata is the model's registry metadata.
	Metadata map[string]any
	// Data is the caller's provider data.
	Data provider.Data
}

// Run is one prepared response: validated, with its history loaded.
// Start it once.
type Run struct {
	e          *Engine
	t          Target
	owner      string
	req        *CreateRequest
	resp       *Response
	created    time.Time
	store      bool
	background bool

	history []Item
	input   []Item // this response's input, with ids
	fresh   []Item // input items not already in the history
	tools   *toolSet
	choice  *toolChoice
	format  json.RawMessage
	conv    *Conversation

	// Execution state.
	sink     func(Event) error
	seq      int64
	st       *stitcher
	bindings map[string]mcpBinding // chat name → MCP tool
	names    map[string]string     // label\x00tool → chat name
	listed   map[string][]MCPTool  // label → allowed tools
	clients  map[string]*mcp.Client
	mcpCalls int
	usage    Usage
	bgr      *bgRun
}

// Stream reports whether the client asked for a stream.
func (r *Run) Stream() bool { return r.req.Stream }

// Background reports whether the response runs in the background.
func (r *Run) Background() bool { return r.background }

// Prepare validates a create request, loads the history it continues
// (previous_response_id or conversation) and returns the run. Errors are
// *Error values with the status to answer; nothing has been sent upstream.
func (e *Engine) Prepare(ctx context.Context, req *CreateRequest, t Target, owner string) (*Run, error) {
	if err := validateScalars(req); err != nil {
		return nil, err
	}
	store := e.records != nil
	if req.Store != nil {
		store = *req.Store
		if store && e.records == nil {
			return nil, storageOff("store: true")
		}
	}
	if req.Background {
		if e.records == nil {
			return nil, storageOff("background: true")
		}
		if !store {
			return nil, invalid("background", "background responses must be stored; drop store: false")
		}
	}
	input, err := DecodeInput(req.Input)
	if err != nil {
		return nil, err
	}
	ts, err := parseTools(req.Tools)
	if err != nil {
		return nil, err
	}
	choice, err := parseToolChoice(req.ToolChoice, ts)
	if err != nil {
		return nil, err
	}
	format, err := responseFormat(req.Text)
	if err != nil {
		return nil, err
	}
	r := &Run{e: e, t: t, owner: owner, req: req, created: e.now(), store: store, background: req.Background,
		input: input, tools: ts, choice: choice, format: format}

	switch {
	case req.PreviousResponseID != "":
		if e.records == nil {
			return nil, storageOff("previous_response_id")
		}
		prev, err := e.loadResponse(ctx, req.PreviousResponseID, owner, "previous_response_id")
		if err != nil {
			return nil, err
		}
		switch prev.Response.Status {
		case StatusQueued, StatusInProgress:
			return nil, invalid("previous_response_id", "response '%s' is still %s; wait for it to finish", req.PreviousResponseID, prev.Response.Status)
		}
		r.history = slices.Concat(prev.History, prev.Input, prev.Response.Output)
	case len(bytes.TrimSpace(req.Conversation)) > 0 && string(bytes.TrimSpace(req.Conversation)) != "null":
		if e.records == nil {
			return nil, storageOff("conversation")
		}
		id, err := conversationRef(req.Conversation)
		if err != nil {
			return nil, err
		}
		conv, err := e.getConversation(ctx, id, owner, "conversation")
		if err != nil {
			return nil, err
		}
		items, err := e.allItems(ctx, id)
		if err != nil {
			return nil, err
		}
		r.conv, r.history = conv, items
	}

	// Give the input ids; drop from the model's view the items the
	// history already holds (clients resend output items they got).
	seen := map[string]bool{}
	for _, it := range r.history {
		if it.ID != "" {
			seen[it.ID] = true
		}
	}
	for i := range r.input {
		it := &r.input[i]
		dup := it.ID != "" && seen[it.ID]
		normalize(it)
		if !dup {
			r.fresh = append(r.fresh, *it)
		}
	}
	if err := r.checkApprovals(); err != nil {
		return nil, err
	}
	r.resp = r.newResponse()
	return r, nil
}

// normalize gives an item an id and a status.
func normalize(it *Item) {
	if it.ID == "" {
		it.ID = newID(itemPrefix(it.Type))
	}
	switch it.Type {
	case TypeMessage, TypeFunctionCall, TypeFunctionCallOutput:
		if it.Status == "" {
			it.Status = StatusCompleted
		}
	}
}

// checkApprovals checks that each approval response answers a request the
// history holds, of a server among the tools.
func (r *Run) checkApprovals() error {
	for i, it := range r.input {
		if it.Type != TypeMCPApprovalResponse {
			continue
		}
		id := derefStr(it.ApprovalRequestID)
		req, ok := r.findApproval(id)
		if !ok {
			return invalid(fmt.Sprintf("input[%d].approval_request_id", i), "no mcp_approval_request with id '%s' precedes this approval response", truncate(id, 80))
		}
		if r.server(req.ServerLabel) == nil {
			return invalid("tools", "the approved call is to MCP server '%s', which is not among the tools; send the mcp tool again", req.ServerLabel)
		}
	}
	return nil
}

func (r *Run) findApproval(id string) (Item, bool) {
	for _, list := range [][]Item{r.history, r.input} {
		for _, it := range list {
			if it.Type == TypeMCPApprovalRequest && it.ID == id {
				return it, true
			}
		}
	}
	return Item{}, false
}

func (r *Run) server(label string) *mcpServer {
	for _, m := range r.tools.mcp {
		if m.Label == label {
			return m
		}
	}
	return nil
}

var validEfforts = map[string]bool{"none": true, "minimal": true, "low": true, "medium": true, "high": true, "xhigh": true}

// validateScalars checks the request's plain members.
func validateScalars(req *CreateRequest) error {
	if req.Model == "" {
		return invalid("model", "field 'model' is required; GET /v1/models lists the models")
	}
	if t := req.Temperature; t != nil && (*t < 0 || *t > 2) {
		return invalid("temperature", "field 'temperature' must be between 0 and 2, got %g", *t)
	}
	if t := req.TopP; t != nil && (*t < 0 || *t > 1) {
		return invalid("top_p", "field 'top_p' must be between 0 and 1, got %g", *t)
	}
	if n := req.MaxOutputTokens; n != nil && *n < 1 {
		return invalid("max_output_tokens", "field 'max_output_tokens' must be at least 1, got %d", *n)
	}
	if n := req.MaxToolCalls; n != nil && *n < 1 {
		return invalid("max_tool_calls", "field 'max_tool_calls' must be at least 1, got %d", *n)
	}
	if err := ValidateMetadata(req.Metadata); err != nil {
		return err
	}
	switch req.Truncation {
	case "", "auto", "disabled":
	default:
		return invalid("truncation", "field 'truncation' must be 'auto' or 'disabled', got '%s'", truncate(req.Truncation, 32))
	}
	if p := bytes.TrimSpace(req.Prompt); len(p) > 0 && string(p) != "null" {
		return unsupported("prompt", "prompt templates are not supported by this server; send instructions and input")
	}
	if req.Reasoning != nil && req.Reasoning.Effort != nil && !validEfforts[*req.Reasoning.Effort] {
		return invalid("reasoning.effort", "field 'reasoning.effort' must be one of none, minimal, low, medium, high, xhigh; got '%s'", truncate(*req.Reasoning.Effort, 32))
	}
	if req.PreviousResponseID != "" {
		if c := bytes.TrimSpace(req.Conversation); len(c) > 0 && string(c) != "null" {
			return invalid("conversation", "'previous_response_id' and 'conversation' cannot be used together")
		}
	}
	return nil
}

// ValidateMetadata checks OpenAI's metadata limits: at most 16 pairs, keys
// up to 64 characters, values up to 512.
func ValidateMetadata(m map[string]string) error {
	if len(m) > 16 {
		return invalid("metadata", "field 'metadata' holds %d pairs; at most 16 are allowed", len(m))
	}
	for k, v := range m {
		if len(k) > 64 {
			return invalid("metadata", "metadata key '%s' is longer than 64 characters", truncate(k, 64))
		}
		if len(v) > 512 {
			return invalid("metadata", "the value of metadata key '%s' is longer than 512 characters", truncate(k, 64))
		}
	}
	return nil
}

// conversationRef reads "conversation": an id or {"id": ...}.
func conversationRef(raw json.RawMessage) (string, error) {
	var id string
	if json.Unmarshal(raw, &id) != nil {
		var ref ConversationRef
		if json.Unmarshal(raw, &ref) != nil || ref.ID == "" {
			return "", invalid("conversation", "field 'conversation' must be a conversation id or {\"id\": ...}")
		}
		id = ref.ID
	}
	if id == "" {
		return "", invalid("conversation", "field 'conversation' must not be empty")
	}
	return id, nil
}

// newResponse builds the response object that echoes the request.
func (r *Run) newResponse() *Response {
	req := r.req
	resp := &Response{
		ID:                newID(prefixResponse),
		Object:            "response",
		CreatedAt:         r.created.Unix(),
		Status:            StatusInProgress,
		Background:        req.Background,
		Instructions:      req.Instructions,
		MaxOutputTokens:   req.MaxOutputTokens,
		MaxToolCalls:      req.MaxToolCalls,
		Model:             r.t.ClientModel,
		Output:            []Item{},
		ParallelToolCalls: req.ParallelToolCalls == nil || *req.ParallelToolCalls,
		ServiceTier:       "default",
		Store:             r.store,
		Temperature:       1,
		TopP:              1,
		Text:              TextConfig{Format: &TextFormat{Type: "text"}},
		ToolChoice:        r.choice.echo,
		Tools:             r.tools.echo,
		Truncation:        "disabled",
		Metadata:          map[string]string{},
	}
	if resp.Model == "" {
		resp.Model = req.Model
	}
	if req.Temperature != nil {
		resp.Temperature = *req.Temperature
	}
	if req.TopP != nil {
		resp.TopP = *req.TopP
	}
	if req.Text != nil {
		resp.Text.Verbosity = req.Text.Verbosity
		if req.Text.Format != nil {
			resp.Text.Format = req.Text.Format
		}
	}
	if req.Reasoning != nil {
		resp.Reasoning = *req.Reasoning
	}
	if req.Truncation != "" {
		resp.Truncation = req.Truncation
	}
	if req.PreviousResponseID != "" {
		resp.PreviousResponseID = new(req.PreviousResponseID)
	}
	if r.conv != nil {
		resp.Conversation = &ConversationRef{ID: r.conv.ID}
	}
	if req.User != "" {
		resp.User = new(req.User)
	}
	if req.SafetyIdentifier != "" {
		resp.SafetyIdentifier = new(req.SafetyIdentifier)
	}
	if req.PromptCacheKey != "" {
		resp.PromptCacheKey = new(req.PromptCacheKey)
	}
	maps.Copy(resp.Metadata, req.Metadata)
	if r.background {
		resp.Status = StatusQueued
	}
	return resp
}

// snapshot is a copy of the response as it stands, safe to encode while
// the run goes on.
func (r *Run) snapshot() *Response {
	c := *r.resp
	c.Output = slices.Clone(r.resp.Output)
	if c.Output == nil {
		c.Output = []Item{}
	}
	if r.resp.Usage != nil {
		u := *r.resp.Usage
		c.Usage = &u
	}
	return &c
}

// Response returns a snapshot of the response object.
func (r *Run) Response() *Response { return r.snapshot() }

// errClientGone reports that the client stopped reading the stream.
var errClientGone = errors.New("the client went away")

// emit sends one event to the sink, numbering it. A background response
// outlives its client: a failed write drops the sink and the run goes on.
func (r *Run) emit(ev Event) error {
	if r.sink == nil {
		return nil
	}
	ev.SequenceNumber = r.seq
	r.seq++
	if err := r.sink(ev); err != nil {
		if r.background {
			r.sink = nil
			return nil
		}
		return fmt.Errorf("%w: %w", errClientGone, err)
	}
	return nil
}

// Start runs a prepared response. A foreground response runs on the
// caller's goroutine, sending events to sink (nil: no stream) and
// returning the final response. A background response is stored as
// queued first; without a sink it then runs on its own goroutine and Start
// returns the queued response at once; with a sink it streams here, and
// goes on to the end if the client leaves.
func (e *Engine) Start(ctx context.Context, r *Run, sink func(Event) error) (*Response, error) {
	if !r.background {
		return r.execute(ctx, sink)
	}
	if err := e.putResponse(ctx, r, nil); err != nil {
		return nil, err
	}
	bctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), backgroundTimeout)
	stop := context.AfterFunc(e.base, cancel)
	b := &bgRun{cancel: cancel}
	r.bgr = b
	e.mu.Lock()
	e.bg[r.resp.ID] = b
	e.mu.Unlock()
	done := func() {
		stop()
		cancel()
		e.mu.Lock()
		delete(e.bg, r.resp.ID)
		e.mu.Unlock()
	}
	if sink == nil {
		queued := r.snapshot()
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			defer done()
			if _, err := r.execute(bctx, nil); err != nil {
				e.log.LogAttrs(bctx, slog.LevelWarn, "background response failed", slog.String("response_id", r.resp.ID), slog.String("error", err.Error()))
			}
		}()
		return queued, nil
	}
	defer done()
	return r.execute(bctx, sink)
}

// execute runs the model loop and records the outcome. Errors it returns
// mean nothing was stored: a foreground response without a stream whose
// model call failed (the error is the upstream's), or a client that left.
// A streamed or background response that fails ends as status "failed".
func (r *Run) execute(ctx context.Context, sink func(Event) error) (*Response, error) {
	r.sink = sink
	if err := r.emit(Event{Type: "response.created", Response: r.snapshot()}); err != nil {
		return nil, err
	}
	if r.background && (r.bgr == nil || !r.bgr.cancelled.Load()) {
		r.resp.Status = StatusInProgress
		if err := r.e.putResponse(ctx, r, nil); err != nil {
			r.e.log.LogAttrs(ctx, slog.LevelWarn, "could not record a background response as in progress", slog.String("response_id", r.resp.ID), slog.String("error", err.Error()))
		}
	}
	if err := r.emit(Event{Type: "response.in_progress", Response: r.snapshot()}); err != nil {
		return nil, err
	}
	defer r.closeClients()
	err := r.loop(ctx)
	return r.end(ctx, err)
}

// end records the outcome and sends the terminal event.
func (r *Run) end(ctx context.Context, err error) (*Response, error) {
	r.resp.Usage = &r.usage
	r.usage.TotalTokens = r.usage.InputTokens + r.usage.OutputTokens
	if r.bgr != nil && (r.bgr.cancelled.Load() || r.e.storedGone(ctx, r.resp.ID)) {
		r.resp.Status = StatusCancelled
		return r.snapshot(), nil
	}
	if err != nil && r.background && r.e.base.Err() != nil {
		err = &Error{Status: http.StatusServiceUnavailable, Type: "api_error", Message: "the server shut down before the response finished", Err: err}
	}
	if err != nil {
		if !r.background && (r.sink == nil || errors.Is(err, errClientGone) || ctx.Err() != nil) {
			return nil, err
		}
		code, msg := failure(err)
		r.e.log.LogAttrs(ctx, slog.LevelWarn, "response failed", slog.String("response_id", r.resp.ID), slog.String("code", code), slog.String("error", err.Error()))
		r.resp.Status, r.resp.Error = StatusFailed, &ResponseError{Code: code, Message: msg}
		if perr := r.persist(ctx); perr != nil {
			r.e.log.LogAttrs(ctx, slog.LevelError, "could not record a failed response", slog.String("response_id", r.resp.ID), slog.String("error", perr.Error()))
		}
		_ = r.emit(Event{Type: "response.failed", Response: r.snapshot()})
		return r.snapshot(), nil
	}
	if r.resp.Status == StatusCompleted {
		r.resp.CompletedAt = new(r.e.now().Unix())
	}
	if perr := r.persist(ctx); perr != nil {
		if r.sink == nil && !r.background {
			return nil, perr
		}
		r.e.log.LogAttrs(ctx, slog.LevelError, "could not record a response", slog.String("response_id", r.resp.ID), slog.String("error", perr.Error()))
		r.resp.Status, r.resp.CompletedAt = StatusFailed, nil
		r.resp.Error = &ResponseError{Code: "server_error", Message: "the response could not be stored"}
		_ = r.emit(Event{Type: "response.failed", Response: r.snapshot()})
		return r.snapshot(), nil
	}
	typ := "response.completed"
	if r.resp.Status == StatusIncomplete {
		typ = "response.incomplete"
	}
	_ = r.emit(Event{Type: typ, Response: r.snapshot()})
	return r.snapshot(), nil
}

// failure maps an error that ended a response to a spec error code and a
// message safe to show.
func failure(err error) (code, msg string) {
	var (
		pe *provider.Error
		ee *Error
		me *mcpListError
	)
	switch {
	case errors.As(err, &pe):
		switch {
		case pe.StatusCode == http.StatusTooManyRequests:
			code = "rate_limit_exceeded"
		case pe.StatusCode == http.StatusBadRequest || pe.StatusCode == http.StatusUnprocessableEntity || pe.StatusCode == http.StatusRequestEntityTooLarge:
			code = "invalid_prompt"
		default:
			code = "server_error"
		}
		return code, pe.Message
	case errors.As(err, &me):
		return "server_error", me.Error()
	case errors.As(err, &ee):
		return "server_error", ee.Message
	case errors.Is(err, context.DeadlineExceeded):
		return "server_error", "the response timed out"
	default:
		return "server_error", "the model call failed"
	}
}

// persist writes the response (when stored) and, for a response in a
// conversation that did not fail, its items to the conversation; all in
// one write, before the terminal event. The write outlives a client that
// left.
func (r *Run) persist(ctx context.Context) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	var extra []store.Record
	if r.conv != nil && r.resp.Status != StatusFailed {
		recs, err := r.e.itemRecords(wctx, r.conv.ID, r.owner, slices.Concat(r.fresh, r.resp.Output))
		if err != nil {
			return err
		}
		extra = recs
	}
	switch {
	case r.store:
		return r.e.putResponse(wctx, r, extra)
	case len(extra) > 0:
		if err := r.e.records.PutRecords(wctx, extra...); err != nil {
			return storeError("store conversation items", err)
		}
	}
	return nil
}
