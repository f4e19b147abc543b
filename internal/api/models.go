package api

import (
	"net/http"
	"net/url"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
)

// modelResource is the Llama Stack model resource of GET /v1/models/{id},
// with OpenAI's model fields beside it so that both kinds of client read
// it (llama-stack-client's models.retrieve, openai's models.retrieve).
type modelResource struct {
	ID                 string         `json:"id"`
	Object             string         `json:"object"`
	Created            int64          `json:"created"`
	OwnedBy            string         `json:"owned_by"`
	Identifier         string         `json:"identifier"`
	ProviderResourceID string         `json:"provider_resource_id"`
	ProviderID         string         `json:"provider_id"`
	Type               string         `json:"type"`
	Metadata           map[string]any `json:"metadata"`
	ModelType          string         `json:"model_type"`
}

// listModels serves GET /v1/models: the OpenAI list, with the Llama Stack
// fields in custom_metadata.
func (s *Server) listModels(w http.ResponseWriter, r *http.Request) error {
	models := s.reg.List()
	out := openai.ModelList{Object: "list", Data: make([]openai.Model, 0, len(models))}
	for _, m := range models {
		if !s.canSee(r, m.Identifier) {
			continue
		}
		meta := make(map[string]any, len(m.Metadata)+3)
		for k, v := range m.Metadata {
			meta[k] = v
		}
		meta["provider_id"] = m.ProviderID
		meta["provider_resource_id"] = m.ProviderResourceID
		meta["model_type"] = m.ModelType
		out.Data = append(out.Data, openai.Model{
			ID:             m.Identifier,
			Object:         "model",
			Created:        m.Created.Unix(),
			OwnedBy:        "llama_stack",
			CustomMetadata: meta,
		})
	}
	return writeJSON(w, out)
}

// getModel serves GET /v1/models/{model_id...}. Ids hold '/' and ':', so
// the wildcard takes the rest of the path, raw or percent-encoded.
func (s *Server) getModel(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("model_id")
	if u, err := url.PathUnescape(id); err == nil {
		id = u
	}
	m, ok := s.reg.Get(id)
	if !ok || !s.canSee(r, id) {
		return &registry.NotFoundError{ID: id}
	}
	return writeJSON(w, toModelResource(m))
}
