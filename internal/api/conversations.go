package api

import (
	"bytes"
	"encoding/json"
	"net/http"

	"github.com/llama-stack-go/llama-stack-go/internal/responses"
)

// addConversationRoutes adds the Conversations routes.
func (h *responsesAPI) addConversationRoutes() {
	s := h.s
	s.add("POST", "/v1/conversations", "conversations", s.handle(h.createConversation))
	s.add("GET", "/v1/conversations/{conversation_id}", "conversations", s.handle(h.getConversation))
	s.add("POST", "/v1/conversations/{conversation_id}", "conversations", s.handle(h.updateConversation))
	s.add("DELETE", "/v1/conversations/{conversation_id}", "conversations", s.handle(h.deleteConversation))
	s.add("POST", "/v1/conversations/{conversation_id}/items", "conversations", s.handle(h.addItems))
	s.add("GET", "/v1/conversations/{conversation_id}/items", "conversations", s.handle(h.listItems))
	s.add("GET", "/v1/conversations/{conversation_id}/items/{item_id}", "conversations", s.handle(h.getItem))
	s.add("DELETE", "/v1/conversations/{conversation_id}/items/{item_id}", "conversations", s.handle(h.deleteItem))
}

// conversationBody is the body of the conversation create, update and
// add-items routes.
type conversationBody struct {
	Items    json.RawMessage   `json:"items"`
	Metadata map[string]string `json:"metadata"`
}

// readConversationBody reads and decodes such a body; an empty body is
// allowed when allowEmpty.
func (h *responsesAPI) readConversationBody(w http.ResponseWriter, r *http.Request, allowEmpty bool) (*conversationBody, error) {
	body, err := readBody(w, r, h.s.maxBody)
	if err != nil {
		return nil, err
	}
	var b conversationBody
	if allowEmpty && len(bytes.TrimSpace(body)) == 0 {
		return &b, nil
	}
	if _, err := decodeJSON(body, &b); err != nil {
		return nil, err
	}
	return &b, nil
}

// items decodes the body's items; absent or null is none.
func (b *conversationBody) items() ([]responses.Item, error) {
	c := bytes.TrimSpace(b.Items)
	if len(c) == 0 || string(c) == "null" {
		return nil, nil
	}
	items, err := responses.DecodeItems(c, "items")
	if err != nil {
		return nil, responsesError(err)
	}
	return items, nil
}

// createConversation serves POST /v1/conversations.
func (h *responsesAPI) createConversation(w http.ResponseWriter, r *http.Request) error {
	b, err := h.readConversationBody(w, r, true)
	if err != nil {
		return err
	}
	items, err := b.items()
	if err != nil {
		return err
	}
	c, err := h.e.CreateConversation(r.Context(), items, b.Metadata, recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	return writeJSON(w, c)
}

// getConversation serves GET /v1/conversations/{conversation_id}.
func (h *responsesAPI) getConversation(w http.ResponseWriter, r *http.Request) error {
	c, err := h.e.GetConversation(r.Context(), r.PathValue("conversation_id"), recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	return writeJSON(w, c)
}

// updateConversation serves POST /v1/conversations/{conversation_id}: it
// replaces the metadata.
func (h *responsesAPI) updateConversation(w http.ResponseWriter, r *http.Request) error {
	b, err := h.readConversationBody(w, r, false)
	if err != nil {
		return err
	}
	if b.Metadata == nil {
		return badRequest("metadata", "field 'metadata' is required")
	}
	c, err := h.e.UpdateConversation(r.Context(), r.PathValue("conversation_id"), b.Metadata, recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	return writeJSON(w, c)
}

// deleteConversation serves DELETE /v1/conversations/{conversation_id}.
func (h *responsesAPI) deleteConversation(w http.ResponseWriter, r *http.Request) error {
	d, err := h.e.DeleteConversation(r.Context(), r.PathValue("conversation_id"), recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	return writeJSON(w, d)
}

// addItems serves POST /v1/conversations/{conversation_id}/items.
func (h *responsesAPI) addItems(w http.ResponseWriter, r *http.Request) error {
	b, err := h.readConversationBody(w, r, false)
	if err != nil {
		return err
	}
	if len(bytes.TrimSpace(b.Items)) == 0 || string(bytes.TrimSpace(b.Items)) == "null" {
		return badRequest("items", "field 'items' is required")
	}
	items, err := b.items()
	if err != nil {
		return err
	}
	out, err := h.e.AddItems(r.Context(), r.PathValue("conversation_id"), items, recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	return writeJSON(w, out)
}

// listItems serves GET /v1/conversations/{conversation_id}/items.
func (h *responsesAPI) listItems(w http.ResponseWriter, r *http.Request) error {
	p, err := listParams(r)
	if err != nil {
		return err
	}
	out, err := h.e.ListItems(r.Context(), r.PathValue("conversation_id"), p, recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	return writeJSON(w, out)
}

// getItem serves GET /v1/conversations/{conversation_id}/items/{item_id}.
func (h *responsesAPI) getItem(w http.ResponseWriter, r *http.Request) error {
	it, err := h.e.GetItem(r.Context(), r.PathValue("conversation_id"), r.PathValue("item_id"), recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	return writeJSON(w, it)
}

// deleteItem serves DELETE /v1/conversations/{conversation_id}/items/{item_id}.
func (h *responsesAPI) deleteItem(w http.ResponseWriter, r *http.Request) error {
	c, err := h.e.DeleteItem(r.Context(), r.PathValue("conversation_id"), r.PathValue("item_id"), recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	return writeJSON(w, c)
}
