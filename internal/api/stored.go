package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/llama-stack-go/llama-stack-go/internal/auth"
	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// ModelRegistrar registers and unregisters models for every replica
// (registry.Persistent).
type ModelRegistrar interface {
	Register(ctx context.Context, m registry.Model) (registry.Model, error)
	Unregister(ctx context.Context, id string) error
}

// Recorder takes records to store off the request path (store.Writer).
type Recorder interface {
	Enqueue(rec store.Record) bool
}

// InferenceStore is where chat completions are recorded and read back.
type InferenceStore struct {
	// Records reads stored completions.
	Records store.Records
	// Recorder writes them.
	Recorder Recorder
}

// StoreHealth reports the state of one store for /v1/health.
type StoreHealth interface {
	Ping(ctx context.Context) error
}

// errStorageOff is the answer of routes whose store is switched off.
func errStorageOff(what, key string) error {
	return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "storage_disabled",
		Message: what + " needs the " + key + " store, which is switched off in this server's run config (storage.stores." + key + ")"}
}

// registerRequest is the body of POST /v1/models (Llama Stack's
// RegisterModelRequest).
type registerRequest struct {
	ModelID         string         `json:"model_id"`
	ProviderModelID string         `json:"provider_model_id"`
	ProviderID      string         `json:"provider_id"`
	Metadata        map[string]any `json:"metadata"`
	ModelType       string         `json:"model_type"`
}

// registerModel serves POST /v1/models.
func (s *Server) registerModel(w http.ResponseWriter, r *http.Request) error {
	if s.models == nil {
		return errStorageOff("registering a model", "metadata")
	}
	body, err := readBody(w, r, s.maxBody)
	if err != nil {
		return err
	}
	var req registerRequest
	if _, err := decodeJSON(body, &req); err != nil {
		return err
	}
	m, err := s.models.Register(r.Context(), registry.Model{
		Identifier: req.ModelID, ProviderID: req.ProviderID, ProviderResourceID: req.ProviderModelID,
		ModelType: req.ModelType, Metadata: req.Metadata,
	})
	if err != nil {
		return err
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "model registered", slog.String("request_id", requestID(r.Context())),
		slog.String("model_id", m.Identifier), slog.String("provider_id", m.ProviderID), slog.String("provider_model_id", m.ProviderResourceID))
	return writeJSON(w, toModelResource(m))
}

// unregisterModel serves DELETE /v1/models/{model_id...}.
func (s *Server) unregisterModel(w http.ResponseWriter, r *http.Request) error {
	if s.models == nil {
		return errStorageOff("unregistering a model", "metadata")
	}
	id := r.PathValue("model_id")
	if u, err := url.PathUnescape(id); err == nil {
		id = u
	}
	if err := s.models.Unregister(r.Context(), id); err != nil {
		return err
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "model unregistered", slog.String("request_id", requestID(r.Context())), slog.String("model_id", id))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func toModelResource(m registry.Model) modelResource {
	return modelResource{ID: m.Identifier, Object: "model", Created: m.Created.Unix(), OwnedBy: "llama_stack", Identifier: m.Identifier, ProviderResourceID: m.ProviderResourceID, ProviderID: m.ProviderID,
		Type: "model", Metadata: m.Metadata, ModelType: m.ModelType}
}

// recordCompletion queues a finished chat completion for the inference
// store: the completion as the client received it plus the input messages
// as the client sent them. It runs after the answer went out.
func (s *Server) recordCompletion(r *http.Request, reqBody []byte, model string, completion []byte) {
	if s.inference.Recorder == nil || len(completion) == 0 {
		return
	}
	raw, ok := openai.TopLevel(completion, "id")
	if !ok {
		return
	}
	id, ok := jsonString(raw)
	if !ok || id == "" {
		return
	}
	if msgs, ok := openai.TopLevel(reqBody, "messages"); ok {
		if withInput, err := openai.SetTopLevel(completion, "input_messages", msgs); err == nil {
			completion = withInput
		}
	}
	s.inference.Recorder.Enqueue(store.Record{
		Kind: store.KindChatCompletion, ID: id, SortKey: time.Now().UnixNano(),
		Model: model, Owner: principalID(r), Body: completion,
	})
}

// jsonString decodes a JSON string value as json.Unmarshal into a string
// would, without reflection when it has no escapes; ok is false for
// anything that is not a string.
func jsonString(raw []byte) (string, bool) {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		inner := raw[1 : len(raw)-1]
		plain := true
		for _, c := range inner {
			if c == '\\' || c == '"' || c < 0x20 || c >= utf8.RuneSelf {
				plain = false
				break
			}
		}
		if plain {
			return string(inner), true
		}
	}
	var s string
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}

// principalID is the caller the stored records belong to; "" when no
// authentication is configured.
func principalID(r *http.Request) string {
	if p, ok := auth.FromContext(r.Context()); ok && p != nil {
		return p.ID
	}
	return ""
}

// completionList is GET /v1/chat/completions's answer.
type completionList struct {
	Object  string            `json:"object"`
	Data    []json.RawMessage `json:"data"`
	FirstID *string           `json:"first_id"`
	LastID  *string           `json:"last_id"`
	HasMore bool              `json:"has_more"`
}

// listCompletions serves GET /v1/chat/completions: after, limit (1-100,
// default 20), order (asc or desc, default desc), model.
func (s *Server) listCompletions(w http.ResponseWriter, r *http.Request) error {
	if s.inference.Records == nil {
		return errStorageOff("listing chat completions", "inference")
	}
	q, err := listQuery(r, store.KindChatCompletion)
	if err != nil {
		return err
	}
	recs, more, err := s.inference.Records.ListRecords(r.Context(), q)
	if errors.Is(err, store.ErrNotFound) {
		return badRequest("after", "no chat completion with id '%s' to list after", q.After)
	}
	if err != nil {
		return fmt.Errorf("list chat completions: %w", err)
	}
	out := completionList{Object: "list", Data: make([]json.RawMessage, 0, len(recs)), HasMore: more}
	for _, rec := range recs {
		out.Data = append(out.Data, rec.Body)
	}
	if len(recs) > 0 {
		first, last := recs[0].ID, recs[len(recs)-1].ID
		out.FirstID, out.LastID = &first, &last
	}
	return writeJSON(w, out)
}

// getCompletion serves GET /v1/chat/completions/{completion_id}.
func (s *Server) getCompletion(w http.ResponseWriter, r *http.Request) error {
	if s.inference.Records == nil {
		return errStorageOff("retrieving a chat completion", "inference")
	}
	id := r.PathValue("completion_id")
	rec, err := s.inference.Records.GetRecord(r.Context(), store.KindChatCompletion, id)
	if err == nil && owns(r, rec) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(rec.Body)
		return nil
	}
	if err == nil || errors.Is(err, store.ErrNotFound) {
		return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found", Param: "completion_id",
			Message: fmt.Sprintf("Chat completion '%s' not found. Use 'GET /v1/chat/completions' to list stored completions.", id)}
	}
	return fmt.Errorf("get chat completion: %w", err)
}

// owns reports whether the caller may read rec.
func owns(r *http.Request, rec store.Record) bool {
	return rec.Owner == "" || rec.Owner == principalID(r)
}

// listQuery reads the OpenAI list parameters after, before, limit, order
// and model.
func listQuery(r *http.Request, kind string) (store.ListQuery, error) {
	v := r.URL.Query()
	q := store.ListQuery{Kind: kind, After: v.Get("after"), Before: v.Get("before"), Model: v.Get("model"), Owner: principalID(r), Limit: 20, Desc: true}
	if l := v.Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100 {
			return q, badRequest("limit", "query parameter 'limit' must be an integer from 1 to 100, got '%s'", l)
		}
		q.Limit = n
	}
	switch o := v.Get("order"); o {
	case "", "desc":
	case "asc":
		q.Desc = false
	default:
		return q, badRequest("order", "query parameter 'order' must be 'asc' or 'desc', got '%s'", o)
	}
	return q, nil
}

// deleteCompletion serves DELETE /v1/chat/completions/{completion_id}.
func (s *Server) deleteCompletion(w http.ResponseWriter, r *http.Request) error {
	if s.inference.Records == nil {
		return errStorageOff("deleting a chat completion", "inference")
	}
	id := r.PathValue("completion_id")
	rec, err := s.inference.Records.GetRecord(r.Context(), store.KindChatCompletion, id)
	if err == nil && owns(r, rec) {
		err = s.inference.Records.DeleteRecord(r.Context(), store.KindChatCompletion, id)
	} else if err == nil {
		err = store.ErrNotFound
	}
	switch {
	case errors.Is(err, store.ErrNotFound):
		return &Error{Status: http.StatusNotFound, Type: "invalid_request_error", Code: "not_found", Param: "completion_id",
			Message: fmt.Sprintf("Chat completion '%s' not found. Use 'GET /v1/chat/completions' to list stored completions.", id)}
	case err != nil:
		return fmt.Errorf("delete chat completion: %w", err)
	}
	return writeJSON(w, map[string]any{"id": id, "object": "chat.completion.deleted", "deleted": true})
}
