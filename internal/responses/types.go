package responses

import (
	"encoding/json"
)

// Item types of input and output items.
const (
	TypeMessage             = "message"
	TypeFunctionCall        = "function_call"
	TypeFunctionCallOutput  = "function_call_output"
	TypeReasoning           = "reasoning"
	TypeMCPListTools        = "mcp_list_tools"
	TypeMCPCall             = "mcp_call"
	TypeMCPApprovalRequest  = "mcp_approval_request"
	TypeMCPApprovalResponse = "mcp_approval_response"
)

// Content part types.
const (
	PartInputText     = "input_text"
	PartOutputText    = "output_text"
	PartRefusal       = "refusal"
	PartInputImage    = "input_image"
	PartReasoningText = "reasoning_text"
	PartSummaryText   = "summary_text"
)

// Response statuses.
const (
	StatusQueued     = "queued"
	StatusInProgress = "in_progress"
	StatusCompleted  = "completed"
	StatusIncomplete = "incomplete"
	StatusFailed     = "failed"
	StatusCancelled  = "cancelled"
)

// CreateRequest is the body of POST /v1/responses. Union-typed members
// stay raw until the engine validates them.
type CreateRequest struct {
	Model              string            `json:"model"`
	Input              json.RawMessage   `json:"input"`
	Instructions       *string           `json:"instructions"`
	Tools              []json.RawMessage `json:"tools"`
	ToolChoice         json.RawMessage   `json:"tool_choice"`
	ParallelToolCalls  *bool             `json:"parallel_tool_calls"`
	MaxOutputTokens    *int64            `json:"max_output_tokens"`
	MaxToolCalls       *int64            `json:"max_tool_calls"`
	Temperature        *float64          `json:"temperature"`
	TopP               *float64          `json:"top_p"`
	Text               *TextConfig       `json:"text"`
	Reasoning          *ReasoningConfig  `json:"reasoning"`
	Metadata           map[string]string `json:"metadata"`
	Store              *bool             `json:"store"`
	Stream             bool              `json:"stream"`
	Background         bool              `json:"background"`
	PreviousResponseID string            `json:"previous_response_id"`
	Conversation       json.RawMessage   `json:"conversation"`
	Truncation         string            `json:"truncation"`
	User               string            `json:"user"`
	Include            []string          `json:"include"`
	Prompt             json.RawMessage   `json:"prompt"`
	ServiceTier        string            `json:"service_tier"`
	SafetyIdentifier   string            `json:"safety_identifier"`
	PromptCacheKey     string            `json:"prompt_cache_key"`
}

// TextConfig is the "text" member: the output format.
type TextConfig struct {
	Format    *TextFormat `json:"format,omitempty"`
	Verbosity string      `json:"verbosity,omitempty"`
}

// TextFormat is text.format: "text", "json_object" or "json_schema" with
// its schema.
type TextFormat struct {
	Type        string          `json:"type"`
	Name        string          `json:"name,omitempty"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

// ReasoningConfig is the "reasoning" member.
type ReasoningConfig struct {
	Effort  *string `json:"effort"`
	Summary *string `json:"summary"`
}

// ConversationRef names the conversation a response belongs to.
type ConversationRef struct {
	ID string `json:"id"`
}

// Response is a response object as clients see it.
type Response struct {
	ID                 string             `json:"id"`
	Object             string             `json:"object"`
	CreatedAt          int64              `json:"created_at"`
	Status             string             `json:"status"`
	Background         bool               `json:"background"`
	CompletedAt        *int64             `json:"completed_at"`
	Conversation       *ConversationRef   `json:"conversation"`
	Error              *ResponseError     `json:"error"`
	IncompleteDetails  *IncompleteDetails `json:"incomplete_details"`
	Instructions       *string            `json:"instructions"`
	MaxOutputTokens    *int64             `json:"max_output_tokens"`
	MaxToolCalls       *int64             `json:"max_tool_calls"`
	Model              string             `json:"model"`
	Output             []Item             `json:"output"`
	ParallelToolCalls  bool               `json:"parallel_tool_calls"`
	PreviousResponseID *string            `json:"previous_response_id"`
	Reasoning          ReasoningConfig    `json:"reasoning"`
	ServiceTier        string             `json:"service_tier"`
	Store              bool               `json:"store"`
	Temperature        float64            `json:"temperature"`
	Text               TextConfig         `json:"text"`
	ToolChoice         json.RawMessage    `json:"tool_choice"`
	Tools              []json.RawMessage  `json:"tools"`
	TopP               float64            `json:"top_p"`
	Truncation         string             `json:"truncation"`
	Usage              *Usage             `json:"usage"`
	User               *string            `json:"user"`
	SafetyIdentifier   *string            `json:"safety_identifier,omitempty"`
	PromptCacheKey     *string            `json:"prompt_cache_key,omitempty"`
	Metadata           map[string]string  `json:"metadata"`
}

// ResponseError is the error of a failed response; Code is one of the
// codes OpenAI's spec lists (server_error, rate_limit_exceeded,
// invalid_prompt, ...).
type ResponseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// IncompleteDetails says why a response is incomplete:
// "max_output_tokens" or "content_filter".
type IncompleteDetails struct {
	Reason string `json:"reason"`
}

// Usage counts a response's tokens over all its model calls.
type Usage struct {
	InputTokens         int64               `json:"input_tokens"`
	InputTokensDetails  InputTokensDetails  `json:"input_tokens_details"`
	OutputTokens        int64               `json:"output_tokens"`
	OutputTokensDetails OutputTokensDetails `json:"output_tokens_details"`
	TotalTokens         int64               `json:"total_tokens"`
}

// InputTokensDetails breaks input tokens down.
type InputTokensDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
}

// OutputTokensDetails breaks output tokens down.
type OutputTokensDetails struct {
	ReasoningTokens int64 `json:"reasoning_tokens"`
}

// Part is one content part of a message or reasoning item.
type Part struct {
	// Type is one of the Part* constants.
	Type string
	// Text is the text of text, reasoning and summary parts.
	Text string
	// Refusal is the text of a refusal part.
	Refusal string
	// ImageURL and FileID locate an input image; Detail is its detail
	// level ("auto" when unset).
	ImageURL, FileID *string
	Detail           string
}

// MCPTool is one tool an MCP server lists.
type MCPTool struct {
	Name        string          `json:"name"`
	Description *string         `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
	Annotations json.RawMessage `json:"annotations"`
}

// Item is one input or output item. Which fields are meaningful depends on
// Type; JSON encoding writes exactly the members of that type.
type Item struct {
	Type   string
	ID     string
	Status string

	// Role and Content: message items; Content also holds reasoning text.
	Role    string
	Content []Part
	// Summary is a reasoning item's summary parts.
	Summary []Part
	// EncryptedContent is kept as sent on reasoning items.
	EncryptedContent *string

	// CallID, Name and Arguments: function_call items (Name and Arguments
	// also for mcp_call and mcp_approval_request).
	CallID    string
	Name      string
	Arguments string
	// Output is a function_call_output's output (a JSON string or array of
	// parts, raw) or an mcp_call's output text (JSON string or null).
	Output json.RawMessage

	// ServerLabel, Tools, Error, ApprovalRequestID, Approve and Reason:
	// the MCP items.
	ServerLabel       string
	Tools             []MCPTool
	Error             *string
	ApprovalRequestID *string
	Approve           *bool
	Reason            *string
}

// ItemList is a page of items.
type ItemList struct {
	Object  string  `json:"object"`
	Data    []Item  `json:"data"`
	FirstID *string `json:"first_id"`
	LastID  *string `json:"last_id"`
	HasMore bool    `json:"has_more"`
}

// ResponseWithInput is an element of GET /v1/responses: the response and
// its input items.
type ResponseWithInput struct {
	Response
	Input []Item `json:"input"`
}

// ResponseList is a page of responses.
type ResponseList struct {
	Object  string              `json:"object"`
	Data    []ResponseWithInput `json:"data"`
	FirstID *string             `json:"first_id"`
	LastID  *string             `json:"last_id"`
	HasMore bool                `json:"has_more"`
}

// Deleted is the answer to a delete.
type Deleted struct {
	ID      string `json:"id"`
	Object  string `json:"object"`
	Deleted bool   `json:"deleted"`
}

// Conversation is a conversation object.
type Conversation struct {
	ID        string            `json:"id"`
	Object    string            `json:"object"`
	CreatedAt int64             `json:"created_at"`
	Metadata  map[string]string `json:"metadata"`
}

// Event is one streaming event. Type and SequenceNumber are always set;
// the rest depends on Type.
type Event struct {
	Type           string          `json:"type"`
	SequenceNumber int64           `json:"sequence_number"`
	Response       *Response       `json:"response,omitempty"`
	OutputIndex    *int            `json:"output_index,omitempty"`
	ItemID         string          `json:"item_id,omitempty"`
	ContentIndex   *int            `json:"content_index,omitempty"`
	Item           *Item           `json:"item,omitempty"`
	Part           *Part           `json:"part,omitempty"`
	Delta          *string         `json:"delta,omitempty"`
	Text           *string         `json:"text,omitempty"`
	Arguments      *string         `json:"arguments,omitempty"`
	Name           string          `json:"name,omitempty"`
	Logprobs       json.RawMessage `json:"logprobs,omitempty"`
	Code           string          `json:"code,omitempty"`
	Message        string          `json:"message,omitempty"`
}
