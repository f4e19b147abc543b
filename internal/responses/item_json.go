package responses

import (
	"encoding/json"
	"fmt"
)

// emptyList is the JSON of an empty array, for members the spec requires.
var emptyList = json.RawMessage("[]")

// MarshalJSON writes the members of the part's type.
func (p Part) MarshalJSON() ([]byte, error) {
	switch p.Type {
	case PartOutputText:
		return json.Marshal(struct {
			Type        string          `json:"type"`
			Text        string          `json:"text"`
			Annotations json.RawMessage `json:"annotations"`
			Logprobs    json.RawMessage `json:"logprobs"`
		}{p.Type, p.Text, emptyList, emptyList})
	case PartRefusal:
		return json.Marshal(struct {
			Type    string `json:"type"`
			Refusal string `json:"refusal"`
		}{p.Type, p.Refusal})
	case PartInputImage:
		return json.Marshal(struct {
			Type     string  `json:"type"`
			ImageURL *string `json:"image_url"`
			FileID   *string `json:"file_id"`
			Detail   string  `json:"detail"`
		}{p.Type, p.ImageURL, p.FileID, p.Detail})
	default:
		return json.Marshal(struct {
			Type string `json:"type"`
			Text string `json:"text"`
		}{p.Type, p.Text})
	}
}

// UnmarshalJSON reads a part of any type without checking it against a
// role (stored parts were checked when they arrived).
func (p *Part) UnmarshalJSON(b []byte) error {
	var wp wirePart
	if err := json.Unmarshal(b, &wp); err != nil {
		return err
	}
	*p = Part{Type: wp.Type, ImageURL: wp.ImageURL, FileID: wp.FileID, Detail: wp.Detail}
	if wp.Text != nil {
		p.Text = *wp.Text
	}
	if wp.Refusal != nil {
		p.Refusal = *wp.Refusal
	}
	return nil
}

// parts returns ps, or an empty list for nil, so required arrays are
// never null.
func parts(ps []Part) []Part {
	if ps == nil {
		return []Part{}
	}
	return ps
}

// MarshalJSON writes the members of the item's type, in OpenAI's order.
func (it Item) MarshalJSON() ([]byte, error) {
	id := it.ID
	switch it.Type {
	case TypeMessage:
		return json.Marshal(struct {
			ID      string `json:"id,omitempty"`
			Type    string `json:"type"`
			Role    string `json:"role"`
			Status  string `json:"status,omitempty"`
			Content []Part `json:"content"`
		}{id, it.Type, it.Role, it.Status, parts(it.Content)})
	case TypeFunctionCall:
		return json.Marshal(struct {
			ID        string `json:"id,omitempty"`
			Type      string `json:"type"`
			CallID    string `json:"call_id"`
			Name      string `json:"name"`
			Arguments string `json:"arguments"`
			Status    string `json:"status,omitempty"`
		}{id, it.Type, it.CallID, it.Name, it.Arguments, it.Status})
	case TypeFunctionCallOutput:
		out := it.Output
		if len(out) == 0 {
			out = json.RawMessage(`""`)
		}
		return json.Marshal(struct {
			ID     string          `json:"id,omitempty"`
			Type   string          `json:"type"`
			CallID string          `json:"call_id"`
			Output json.RawMessage `json:"output"`
			Status string          `json:"status,omitempty"`
		}{id, it.Type, it.CallID, out, it.Status})
	case TypeReasoning:
		return json.Marshal(struct {
			ID               string  `json:"id,omitempty"`
			Type             string  `json:"type"`
			Summary          []Part  `json:"summary"`
			Content          []Part  `json:"content,omitempty"`
			EncryptedContent *string `json:"encrypted_content,omitempty"`
			Status           string  `json:"status,omitempty"`
		}{id, it.Type, parts(it.Summary), it.Content, it.EncryptedContent, it.Status})
	case TypeMCPListTools:
		tools := it.Tools
		if tools == nil {
			tools = []MCPTool{}
		}
		return json.Marshal(struct {
			ID          string    `json:"id,omitempty"`
			Type        string    `json:"type"`
			ServerLabel string    `json:"server_label"`
			Tools       []MCPTool `json:"tools"`
			Error       *string   `json:"error"`
		}{id, it.Type, it.ServerLabel, tools, it.Error})
	case TypeMCPCall:
		out := it.Output
		if len(out) == 0 {
			out = json.RawMessage("null")
		}
		return json.Marshal(struct {
			ID                string          `json:"id,omitempty"`
			Type              string          `json:"type"`
			ServerLabel       string          `json:"server_label"`
			Name              string          `json:"name"`
			Arguments         string          `json:"arguments"`
			Output            json.RawMessage `json:"output"`
			Error             *string         `json:"error"`
			Status            string          `json:"status,omitempty"`
			ApprovalRequestID *string         `json:"approval_request_id"`
		}{id, it.Type, it.ServerLabel, it.Name, it.Arguments, out, it.Error, it.Status, it.ApprovalRequestID})
	case TypeMCPApprovalRequest:
		return json.Marshal(struct {
			ID          string `json:"id"`
			Type        string `json:"type"`
			ServerLabel string `json:"server_label"`
			Name        string `json:"name"`
			Arguments   string `json:"arguments"`
		}{id, it.Type, it.ServerLabel, it.Name, it.Arguments})
	case TypeMCPApprovalResponse:
		return json.Marshal(struct {
			ID                string  `json:"id,omitempty"`
			Type              string  `json:"type"`
			ApprovalRequestID *string `json:"approval_request_id"`
			Approve           *bool   `json:"approve"`
			Reason            *string `json:"reason,omitempty"`
		}{id, it.Type, it.ApprovalRequestID, it.Approve, it.Reason})
	default:
		return nil, fmt.Errorf("encode item: unknown item type %q", it.Type)
	}
}

// UnmarshalJSON decodes and checks an item, as DecodeItems does.
func (it *Item) UnmarshalJSON(b []byte) error {
	v, err := decodeItem(b, "item")
	if err != nil {
		return err
	}
	*it = v
	return nil
}
