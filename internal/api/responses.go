package api

import (
	"errors"
	"log/slog"
	"net/http"
	"strconv"

	"github.com/llama-stack-go/llama-stack-go/internal/registry"
	"github.com/llama-stack-go/llama-stack-go/internal/responses"
)

// responsesAPI serves the Responses and Conversations routes over the
// responses engine.
type responsesAPI struct {
	s *Server
	e *responses.Engine
}

// addResponsesRoutes adds the Responses and Conversations routes.
func (s *Server) addResponsesRoutes() {
	e := s.responses
	if e == nil {
		e = responses.New(responses.Options{Records: s.records, Logger: s.log.With(slog.String("component", "responses")), Version: s.version})
	}
	h := &responsesAPI{s: s, e: e}
	s.add("POST", "/v1/responses", "responses", s.handle(h.create))
	s.add("GET", "/v1/responses", "responses", s.handle(h.list))
	s.add("GET", "/v1/responses/{response_id}", "responses", s.handle(h.get))
	s.add("DELETE", "/v1/responses/{response_id}", "responses", s.handle(h.delete))
	s.add("GET", "/v1/responses/{response_id}/input_items", "responses", s.handle(h.inputItems))
	s.add("POST", "/v1/responses/{response_id}/cancel", "responses", s.handle(h.cancel))
	h.addConversationRoutes()
	for _, rt := range []struct{ method, path string }{
		{"POST", "/v1/responses"},
		{"GET", "/v1/responses"},
		{"GET", "/v1/responses/{response_id}"},
		{"DELETE", "/v1/responses/{response_id}"},
		{"GET", "/v1/responses/{response_id}/input_items"},
		{"POST", "/v1/responses/{response_id}/cancel"},
		{"POST", "/v1/conversations"},
		{"GET", "/v1/conversations/{conversation_id}"},
		{"POST", "/v1/conversations/{conversation_id}"},
		{"DELETE", "/v1/conversations/{conversation_id}"},
		{"POST", "/v1/conversations/{conversation_id}/items"},
		{"GET", "/v1/conversations/{conversation_id}/items"},
		{"GET", "/v1/conversations/{conversation_id}/items/{item_id}"},
		{"DELETE", "/v1/conversations/{conversation_id}/items/{item_id}"},
	} {
		s.alias(rt.method, "/v1/openai"+rt.path, rt.path)
	}
}

// recordOwner is the principal that owns the records a request creates
// and may read: the same principal as for stored chat completions.
func recordOwner(r *http.Request) string { return principalID(r) }

// responsesError turns the engine's errors into the API's.
func responsesError(err error) error {
	var re *responses.Error
	if errors.As(err, &re) {
		return &Error{Status: re.Status, Type: re.Type, Code: re.Code, Param: re.Param, Message: re.Message, Err: err}
	}
	return err
}

// create serves POST /v1/responses.
func (h *responsesAPI) create(w http.ResponseWriter, r *http.Request) error {
	s := h.s
	body, err := readBody(w, r, s.maxBody)
	if err != nil {
		return err
	}
	var req responses.CreateRequest
	if _, err := decodeJSON(body, &req); err != nil {
		return err
	}
	if req.Model == "" {
		return badRequest("model", "field 'model' is required; GET /v1/models lists the models")
	}
	rt, err := s.resolve(r, req.Model, registry.TypeLLM, "responses")
	if err != nil {
		return err
	}
	data, err := providerData(r)
	if err != nil {
		return err
	}
	t := responses.Target{Provider: rt.Provider, ProviderID: rt.Model.ProviderID, ProviderModel: rt.Model.ProviderResourceID,
		ClientModel: req.Model, Metadata: rt.Model.Metadata, Data: data}
	run, err := h.e.Prepare(r.Context(), &req, t, recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	if !run.Stream() {
		resp, err := h.e.Start(r.Context(), run, nil)
		if err != nil {
			return responsesError(err)
		}
		return writeJSON(w, resp)
	}
	// Headers go out with the first event (response.created, sent at
	// once), so a failure before it is still a plain HTTP error.
	var ew *responses.EventWriter
	sink := func(ev responses.Event) error {
		if ew == nil {
			hd := w.Header()
			hd.Set("Content-Type", "text/event-stream; charset=utf-8")
			hd.Set("Cache-Control", "no-cache")
			hd.Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
			ew = responses.NewEventWriter(w)
		}
		return ew.Write(ev)
	}
	if _, err := h.e.Start(r.Context(), run, sink); err != nil {
		if ew == nil {
			return responsesError(err)
		}
		s.log.LogAttrs(r.Context(), slog.LevelDebug, "response stream ended early", slog.String("request_id", requestID(r.Context())), slog.String("error", err.Error()))
	}
	return nil
}

// get serves GET /v1/responses/{response_id}.
func (h *responsesAPI) get(w http.ResponseWriter, r *http.Request) error {
	resp, err := h.e.GetResponse(r.Context(), r.PathValue("response_id"), recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	return writeJSON(w, resp)
}

// delete serves DELETE /v1/responses/{response_id}.
func (h *responsesAPI) delete(w http.ResponseWriter, r *http.Request) error {
	d, err := h.e.DeleteResponse(r.Context(), r.PathValue("response_id"), recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	return writeJSON(w, d)
}

// list serves GET /v1/responses.
func (h *responsesAPI) list(w http.ResponseWriter, r *http.Request) error {
	p, err := listParams(r)
	if err != nil {
		return err
	}
	out, err := h.e.ListResponses(r.Context(), p, recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	return writeJSON(w, out)
}

// inputItems serves GET /v1/responses/{response_id}/input_items.
func (h *responsesAPI) inputItems(w http.ResponseWriter, r *http.Request) error {
	p, err := listParams(r)
	if err != nil {
		return err
	}
	out, err := h.e.InputItems(r.Context(), r.PathValue("response_id"), p, recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	return writeJSON(w, out)
}

// cancel serves POST /v1/responses/{response_id}/cancel.
func (h *responsesAPI) cancel(w http.ResponseWriter, r *http.Request) error {
	resp, err := h.e.CancelResponse(r.Context(), r.PathValue("response_id"), recordOwner(r))
	if err != nil {
		return responsesError(err)
	}
	return writeJSON(w, resp)
}

// listParams reads the paging query parameters.
func listParams(r *http.Request) (responses.ListParams, error) {
	q := r.URL.Query()
	p := responses.ListParams{After: q.Get("after"), Before: q.Get("before"), Order: q.Get("order"), Model: q.Get("model")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return p, badRequest("limit", "query parameter 'limit' must be an integer, got '%s'", v)
		}
		if n == 0 {
			return p, badRequest("limit", "query parameter 'limit' must be between 1 and 100, got 0")
		}
		p.Limit = n
	}
	return p, nil
}
