package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
)

// providerDataHeader carries per-request provider keys, as Llama Stack
// clients send them; OGX clients send the same JSON as X-OGX-Provider-Data.
const (
	providerDataHeader    = "X-LlamaStack-Provider-Data"
	ogxProviderDataHeader = "X-OGX-Provider-Data"
)

// providerData parses the X-LlamaStack-Provider-Data (or
// X-OGX-Provider-Data) header: a JSON object whose string members are
// kept. Its value is never logged.
func providerData(r *http.Request) (provider.Data, error) {
	v := r.Header.Get(providerDataHeader)
	if v == "" {
		v = r.Header.Get(ogxProviderDataHeader)
	}
	if v == "" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(v), &m); err != nil || m == nil {
		return nil, &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "invalid_provider_data",
			Message: "header " + providerDataHeader + " must be a JSON object, such as {\"aws_bearer_token_bedrock\": \"...\"}"}
	}
	d := make(provider.Data, len(m))
	for k, val := range m {
		if s, ok := val.(string); ok {
			d[k] = s
		}
	}
	return d, nil
}

// lookup routes a model id and checks it is of the type the route serves.
func (s *Server) lookup(model, wantType, route string) (*registry.Route, error) {
	rt, err := s.reg.Lookup(model)
	if err != nil {
		return nil, err
	}
	if rt.Model.ModelType != wantType {
		return nil, badRequest("model", "model '%s' has model_type '%s' and cannot serve %s", model, rt.Model.ModelType, route)
	}
	return rt, nil
}

// unsupported turns provider.ErrUnsupported into a 400 naming the model.
func unsupported(err error, model, providerID, route string) error {
	if errors.Is(err, provider.ErrUnsupported) {
		return &Error{Status: http.StatusBadRequest, Type: "invalid_request_error", Code: "unsupported_by_provider", Param: "model",
			Message: "model '" + model + "' is served by provider '" + providerID + "', which does not support " + route, Err: err}
	}
	return err
}

// completions serves POST /v1/completions (the legacy text completions).
func (s *Server) completions(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, s.maxBody)
	if err != nil {
		return err
	}
	var req openai.CompletionRequest
	if body, err = decodeJSON(body, &req); err != nil {
		return err
	}
	if err := validateCompletion(&req); err != nil {
		return err
	}
	rt, err := s.resolve(r, req.Model, registry.TypeLLM, "completions")
	if err != nil {
		return err
	}
	c, ok := rt.Provider.(provider.Completer)
	if !ok {
		return unsupported(provider.ErrUnsupported, req.Model, rt.Model.ProviderID, "/v1/completions")
	}
	data, err := providerData(r)
	if err != nil {
		return err
	}
	preq := &provider.CompletionRequest{Model: rt.Model.ProviderResourceID, ClientModel: req.Model, Completion: &req, Raw: body, Data: data}
	if !req.Stream {
		resp, err := c.Complete(r.Context(), preq)
		if err != nil {
			return unsupported(err, req.Model, rt.Model.ProviderID, "/v1/completions")
		}
		s.used(r, resp.Usage)
		return writeBody(w, resp)
	}
	st, err := c.CompleteStream(r.Context(), preq)
	if err != nil {
		return unsupported(err, req.Model, rt.Model.ProviderID, "/v1/completions")
	}
	var usage *openai.Usage
	err = relay(s, w, r, st, rt.Model.ProviderID, func(c *openai.Completion, done bool) (skip bool) {
		if !done && c.Usage != nil {
			usage = c.Usage
		}
		return false
	})
	s.used(r, usage)
	return err
}

func validateCompletion(req *openai.CompletionRequest) error {
	if req.Model == "" {
		return badRequest("model", "field 'model' is required; GET /v1/models lists the models")
	}
	p := bytes.TrimSpace(req.Prompt)
	if len(p) == 0 || string(p) == "null" {
		return badRequest("prompt", "field 'prompt' is required")
	}
	if p[0] != '"' && p[0] != '[' {
		return badRequest("prompt", "field 'prompt' must be a string, an array of strings or an array of token arrays")
	}
	if t := req.Temperature; t != nil && (*t < 0 || *t > 2) {
		return badRequest("temperature", "field 'temperature' must be between 0 and 2, got %g", *t)
	}
	if n := req.MaxTokens; n != nil && *n < 0 {
		return badRequest("max_tokens", "field 'max_tokens' must not be negative, got %d", *n)
	}
	if req.StreamOptions != nil && !req.Stream {
		return badRequest("stream_options", "field 'stream_options' is only allowed when 'stream' is true")
	}
	return validateStop(req.Stop)
}

// embeddings serves POST /v1/embeddings.
func (s *Server) embeddings(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(w, r, s.maxBody)
	if err != nil {
		return err
	}
	var req openai.EmbeddingRequest
	if body, err = decodeJSON(body, &req); err != nil {
		return err
	}
	if err := validateEmbedding(&req); err != nil {
		return err
	}
	rt, err := s.resolve(r, req.Model, registry.TypeEmbedding, "embeddings")
	if err != nil {
		return err
	}
	e, ok := rt.Provider.(provider.Embedder)
	if !ok {
		return unsupported(provider.ErrUnsupported, req.Model, rt.Model.ProviderID, "/v1/embeddings")
	}
	data, err := providerData(r)
	if err != nil {
		return err
	}
	resp, err := e.Embed(r.Context(), &provider.EmbedRequest{Model: rt.Model.ProviderResourceID, ClientModel: req.Model, Embed: &req, Raw: body, Data: data})
	if err != nil {
		return unsupported(err, req.Model, rt.Model.ProviderID, "/v1/embeddings")
	}
	if u := resp.Usage; u != nil {
		s.used(r, &openai.Usage{PromptTokens: u.PromptTokens, TotalTokens: u.TotalTokens})
	}
	return writeBody(w, resp)
}

func validateEmbedding(req *openai.EmbeddingRequest) error {
	if req.Model == "" {
		return badRequest("model", "field 'model' is required; GET /v1/models lists the models")
	}
	in := bytes.TrimSpace(req.Input)
	switch {
	case len(in) == 0 || string(in) == "null":
		return badRequest("input", "field 'input' is required")
	case in[0] == '"':
	case in[0] == '[':
		var items []json.RawMessage
		if json.Unmarshal(in, &items) != nil {
			return badRequest("input", "field 'input' must be a string or an array")
		}
		if len(items) == 0 {
			return badRequest("input", "field 'input' must not be empty")
		}
	default:
		return badRequest("input", "field 'input' must be a string or an array of strings or token ids")
	}
	switch req.EncodingFormat {
	case "", "float", "base64":
	default:
		return badRequest("encoding_format", "field 'encoding_format' must be 'float' or 'base64', got '%s'", req.EncodingFormat)
	}
	if d := req.Dimensions; d != nil && *d < 1 {
		return badRequest("dimensions", "field 'dimensions' must be at least 1, got %d", *d)
	}
	return nil
}
