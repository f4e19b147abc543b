package responses

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// unsupportedItemTypes are OpenAI item types this server knows but does
// not serve; they get a 400 that names them, distinct from unknown types.
var unsupportedItemTypes = map[string]bool{
	"item_reference": true, "file_search_call": true, "web_search_call": true,
	"computer_call": true, "computer_call_output": true, "image_generation_call": true,
	"code_interpreter_call": true, "local_shell_call": true, "local_shell_call_output": true,
	"shell_call": true, "shell_call_output": true, "apply_patch_call": true,
	"apply_patch_call_output": true, "custom_tool_call": true, "custom_tool_call_output": true,
	"compaction": true, "tool_search_call": true, "tool_search_output": true,
}

// maxItems bounds the number of items one request may carry.
const maxItems = 10000

// DecodeInput decodes the "input" of a create request: a string (one user
// message) or an array of items. Every item is checked; an unknown or
// unsupported type, or a malformed member, is an *Error naming the item.
func DecodeInput(raw json.RawMessage) ([]Item, error) {
	c := bytes.TrimSpace(raw)
	if len(c) == 0 || string(c) == "null" {
		return nil, invalid("input", "field 'input' is required: a string or an array of input items")
	}
	if c[0] == '"' {
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return nil, invalid("input", "field 'input' is not a valid JSON string")
		}
		return []Item{{Type: TypeMessage, Role: "user", Content: []Part{{Type: PartInputText, Text: s}}}}, nil
	}
	if c[0] != '[' {
		return nil, invalid("input", "field 'input' must be a string or an array of input items")
	}
	return DecodeItems(c, "input")
}

// DecodeItems decodes a JSON array of items; field names the array in
// error messages ("input", "items").
func DecodeItems(raw json.RawMessage, field string) ([]Item, error) {
	var elems []json.RawMessage
	if err := json.Unmarshal(raw, &elems); err != nil {
		return nil, invalid(field, "field '%s' must be an array of items", field)
	}
	if len(elems) > maxItems {
		return nil, invalid(field, "field '%s' holds %d items; at most %d are allowed", field, len(elems), maxItems)
	}
	items := make([]Item, 0, len(elems))
	for i, e := range elems {
		it, err := decodeItem(e, fmt.Sprintf("%s[%d]", field, i))
		if err != nil {
			return nil, err
		}
		items = append(items, it)
	}
	return items, nil
}

// wireItem is an item as it arrives, every member any type may have.
type wireItem struct {
	Type              *string         `json:"type"`
	ID                string          `json:"id"`
	Status            string          `json:"status"`
	Role              string          `json:"role"`
	Content           json.RawMessage `json:"content"`
	Summary           json.RawMessage `json:"summary"`
	EncryptedContent  *string         `json:"encrypted_content"`
	CallID            string          `json:"call_id"`
	Name              string          `json:"name"`
	Arguments         *string         `json:"arguments"`
	Output            json.RawMessage `json:"output"`
	ServerLabel       string          `json:"server_label"`
	Tools             []MCPTool       `json:"tools"`
	Error             *string         `json:"error"`
	ApprovalRequestID *string         `json:"approval_request_id"`
	Approve           *bool           `json:"approve"`
	Reason            *string         `json:"reason"`
}

// wirePart is a content part as it arrives.
type wirePart struct {
	Type     string  `json:"type"`
	Text     *string `json:"text"`
	Refusal  *string `json:"refusal"`
	ImageURL *string `json:"image_url"`
	FileID   *string `json:"file_id"`
	Detail   string  `json:"detail"`
}

var validRoles = map[string]bool{"user": true, "system": true, "developer": true, "assistant": true}

var validStatuses = map[string]bool{"": true, StatusInProgress: true, StatusCompleted: true, StatusIncomplete: true, StatusFailed: true, "calling": true, "searching": true}

// decodeItem decodes and checks one item.
func decodeItem(raw json.RawMessage, field string) (Item, error) {
	c := bytes.TrimSpace(raw)
	if len(c) == 0 || c[0] != '{' {
		return Item{}, invalid(field, "%s must be an object", field)
	}
	var w wireItem
	if err := json.Unmarshal(c, &w); err != nil {
		return Item{}, memberError(field, err)
	}
	typ := ""
	if w.Type != nil {
		typ = *w.Type
	} else if w.Role != "" {
		typ = TypeMessage // an easy input message: {"role": ..., "content": ...}
	}
	if !validStatuses[w.Status] {
		return Item{}, invalid(field+".status", "field '%s.status' has an unknown value '%s'", field, w.Status)
	}
	it := Item{Type: typ, ID: w.ID, Status: w.Status}
	switch typ {
	case "":
		return Item{}, invalid(field+".type", "field '%s.type' is required", field)
	case TypeMessage:
		if !validRoles[w.Role] {
			if w.Role == "" {
				return Item{}, invalid(field+".role", "field '%s.role' is required for message items", field)
			}
			return Item{}, invalid(field+".role", "field '%s.role' must be one of user, system, developer, assistant; got '%s'", field, w.Role)
		}
		parts, err := decodeContent(w.Content, w.Role, field+".content")
		if err != nil {
			return Item{}, err
		}
		it.Role, it.Content = w.Role, parts
	case TypeFunctionCall:
		if w.CallID == "" {
			return Item{}, invalid(field+".call_id", "field '%s.call_id' is required for function_call items", field)
		}
		if w.Name == "" {
			return Item{}, invalid(field+".name", "field '%s.name' is required for function_call items", field)
		}
		if w.Arguments == nil {
			return Item{}, invalid(field+".arguments", "field '%s.arguments' is required for function_call items (a string of JSON)", field)
		}
		it.CallID, it.Name, it.Arguments = w.CallID, w.Name, *w.Arguments
	case TypeFunctionCallOutput:
		if w.CallID == "" {
			return Item{}, invalid(field+".call_id", "field '%s.call_id' is required for function_call_output items", field)
		}
		out, err := decodeCallOutput(w.Output, field+".output")
		if err != nil {
			return Item{}, err
		}
		it.CallID, it.Output = w.CallID, out
	case TypeReasoning:
		summary, err := decodeTextParts(w.Summary, PartSummaryText, field+".summary")
		if err != nil {
			return Item{}, err
		}
		content, err := decodeTextParts(w.Content, PartReasoningText, field+".content")
		if err != nil {
			return Item{}, err
		}
		it.Summary, it.Content, it.EncryptedContent = summary, content, w.EncryptedContent
	case TypeMCPListTools:
		if w.ServerLabel == "" {
			return Item{}, invalid(field+".server_label", "field '%s.server_label' is required for mcp_list_tools items", field)
		}
		for j, t := range w.Tools {
			if t.Name == "" {
				return Item{}, invalid(fmt.Sprintf("%s.tools[%d].name", field, j), "field '%s.tools[%d].name' is required", field, j)
			}
		}
		it.ServerLabel, it.Tools, it.Error = w.ServerLabel, w.Tools, w.Error
		if it.Tools == nil {
			it.Tools = []MCPTool{}
		}
	case TypeMCPCall, TypeMCPApprovalRequest:
		if w.ServerLabel == "" {
			return Item{}, invalid(field+".server_label", "field '%s.server_label' is required for %s items", field, typ)
		}
		if w.Name == "" {
			return Item{}, invalid(field+".name", "field '%s.name' is required for %s items", field, typ)
		}
		it.ServerLabel, it.Name = w.ServerLabel, w.Name
		if w.Arguments != nil {
			it.Arguments = *w.Arguments
		}
		if typ == TypeMCPApprovalRequest {
			if w.ID == "" {
				return Item{}, invalid(field+".id", "field '%s.id' is required for mcp_approval_request items", field)
			}
			break
		}
		if o := bytes.TrimSpace(w.Output); len(o) > 0 && string(o) != "null" {
			var s string
			if json.Unmarshal(o, &s) != nil {
				return Item{}, invalid(field+".output", "field '%s.output' must be a string or null", field)
			}
			it.Output, _ = json.Marshal(s)
		}
		it.Error, it.ApprovalRequestID = w.Error, w.ApprovalRequestID
	case TypeMCPApprovalResponse:
		if w.ApprovalRequestID == nil || *w.ApprovalRequestID == "" {
			return Item{}, invalid(field+".approval_request_id", "field '%s.approval_request_id' is required for mcp_approval_response items", field)
		}
		if w.Approve == nil {
			return Item{}, invalid(field+".approve", "field '%s.approve' is required for mcp_approval_response items", field)
		}
		it.ApprovalRequestID, it.Approve, it.Reason = w.ApprovalRequestID, w.Approve, w.Reason
	default:
		if unsupportedItemTypes[typ] {
			return Item{}, unsupported(field+".type", "%s: item type '%s' is not supported by this server (supported: message, function_call, function_call_output, reasoning, mcp_list_tools, mcp_call, mcp_approval_request, mcp_approval_response)", field, typ)
		}
		return Item{}, invalid(field+".type", "%s: unknown item type '%s'", field, truncate(typ, 64))
	}
	return it, nil
}

// decodeContent reads a message's content: a string or an array of parts.
func decodeContent(raw json.RawMessage, role, field string) ([]Part, error) {
	c := bytes.TrimSpace(raw)
	if len(c) == 0 || string(c) == "null" {
		return nil, invalid(field, "field '%s' is required for message items", field)
	}
	textType := PartInputText
	if role == "assistant" {
		textType = PartOutputText
	}
	if c[0] == '"' {
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return nil, invalid(field, "field '%s' is not a valid JSON string", field)
		}
		return []Part{{Type: textType, Text: s}}, nil
	}
	var wps []json.RawMessage
	if c[0] != '[' || json.Unmarshal(c, &wps) != nil {
		return nil, invalid(field, "field '%s' must be a string or an array of content parts", field)
	}
	parts := make([]Part, 0, len(wps))
	for j, raw := range wps {
		pf := fmt.Sprintf("%s[%d]", field, j)
		var wp wirePart
		if err := json.Unmarshal(raw, &wp); err != nil {
			return nil, memberError(pf, err)
		}
		switch wp.Type {
		case PartInputText, PartOutputText, "text":
			if wp.Text == nil {
				return nil, invalid(pf+".text", "field '%s.text' is required for %s parts", pf, wp.Type)
			}
			t := wp.Type
			if t == "text" {
				t = textType
			}
			parts = append(parts, Part{Type: t, Text: *wp.Text})
		case PartRefusal:
			if role != "assistant" {
				return nil, invalid(pf+".type", "%s: refusal parts belong to assistant messages", pf)
			}
			if wp.Refusal == nil {
				return nil, invalid(pf+".refusal", "field '%s.refusal' is required for refusal parts", pf)
			}
			parts = append(parts, Part{Type: PartRefusal, Refusal: *wp.Refusal})
		case PartInputImage:
			if role == "assistant" {
				return nil, invalid(pf+".type", "%s: input_image parts belong to user messages", pf)
			}
			p, err := decodeImage(wp, pf)
			if err != nil {
				return nil, err
			}
			parts = append(parts, p)
		case "input_file", "input_audio", "input_video":
			return nil, unsupported(pf+".type", "%s: content part type '%s' is not supported by this server (supported: input_text, input_image, output_text, refusal)", pf, wp.Type)
		case "":
			return nil, invalid(pf+".type", "field '%s.type' is required", pf)
		default:
			return nil, invalid(pf+".type", "%s: unknown content part type '%s'", pf, truncate(wp.Type, 64))
		}
	}
	return parts, nil
}

// decodeImage checks an input_image part.
func decodeImage(wp wirePart, pf string) (Part, error) {
	switch {
	case wp.FileID != nil && *wp.FileID != "":
		return Part{}, unsupported(pf+".file_id", "%s: images by file_id are not supported by this server; send image_url (an https or data: URL)", pf)
	case wp.ImageURL == nil || *wp.ImageURL == "":
		return Part{}, invalid(pf+".image_url", "field '%s.image_url' is required for input_image parts", pf)
	}
	detail := wp.Detail
	switch detail {
	case "":
		detail = "auto"
	case "auto", "low", "high", "original":
	default:
		return Part{}, invalid(pf+".detail", "field '%s.detail' must be one of auto, low, high; got '%s'", pf, truncate(detail, 32))
	}
	return Part{Type: PartInputImage, ImageURL: wp.ImageURL, Detail: detail}, nil
}

// decodeCallOutput reads a function_call_output's output: a string, or an
// array of input_text/input_image parts. It returns the raw JSON to keep.
func decodeCallOutput(raw json.RawMessage, field string) (json.RawMessage, error) {
	c := bytes.TrimSpace(raw)
	if len(c) == 0 || string(c) == "null" {
		return nil, invalid(field, "field '%s' is required for function_call_output items", field)
	}
	if c[0] == '"' {
		var s string
		if err := json.Unmarshal(c, &s); err != nil {
			return nil, invalid(field, "field '%s' is not a valid JSON string", field)
		}
		out, _ := json.Marshal(s)
		return out, nil
	}
	if c[0] != '[' {
		return nil, invalid(field, "field '%s' must be a string or an array of content parts", field)
	}
	parts, err := decodeContent(c, "user", field)
	if err != nil {
		return nil, err
	}
	out, err := json.Marshal(parts)
	if err != nil {
		return nil, fmt.Errorf("encode output parts: %w", err)
	}
	return out, nil
}

// decodeTextParts reads a reasoning item's summary or content: an array of
// parts of one text type; absent or null is none.
func decodeTextParts(raw json.RawMessage, want, field string) ([]Part, error) {
	c := bytes.TrimSpace(raw)
	if len(c) == 0 || string(c) == "null" {
		return nil, nil
	}
	var wps []wirePart
	if err := json.Unmarshal(c, &wps); err != nil {
		return nil, invalid(field, "field '%s' must be an array of %s parts", field, want)
	}
	parts := make([]Part, 0, len(wps))
	for j, wp := range wps {
		if wp.Type != want {
			return nil, invalid(fmt.Sprintf("%s[%d].type", field, j), "field '%s[%d].type' must be '%s'", field, j, want)
		}
		if wp.Text == nil {
			return nil, invalid(fmt.Sprintf("%s[%d].text", field, j), "field '%s[%d].text' is required", field, j)
		}
		parts = append(parts, Part{Type: want, Text: *wp.Text})
	}
	return parts, nil
}

// memberError names the member of a decode type error.
func memberError(field string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		return invalid(field+"."+te.Field, "field '%s.%s' must not be %s", field, te.Field, te.Value)
	}
	return invalid(field, "%s is not a valid item: %s", field, err.Error())
}

// truncate cuts s to n bytes for error messages.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}
