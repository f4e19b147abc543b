package e2e

import (
	"errors"
	"strings"
	"testing"

	oai "github.com/openai/openai-go/v3"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// TestBedrockEmbeddings registers Bedrock embedding models and calls them
// with openai-go through the built binary.
func TestBedrockEmbeddings(t *testing.T) {
	double := bedrocktest.New(t, bedrocktest.Options{})
	cfg := writeFile(t, "config.yaml", notebookConfig+`    - model_id: bedrock/amazon.titan-embed-text-v2:0
      provider_id: bedrock
      provider_model_id: amazon.titan-embed-text-v2:0
      model_type: embedding
      metadata: {embedding_dimension: 1024}
    - model_id: bedrock/cohere.embed-english-v3
      provider_id: bedrock
      provider_model_id: cohere.embed-english-v3
      model_type: embedding
      metadata: {embedding_dimension: 1024}
`)
	srv := startServer(t, []string{"AWS_BEARER_TOKEN_BEDROCK=" + bedrocktest.DefaultKey, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL()}, cfg)
	client := newClient(srv.URL)
	for _, model := range []string{"bedrock/amazon.titan-embed-text-v2:0", "bedrock/cohere.embed-english-v3"} {
		resp, err := client.Embeddings.New(t.Context(), oai.EmbeddingNewParams{
			Model: model,
			Input: oai.EmbeddingNewParamsInputUnion{OfArrayOfStrings: []string{"first text", "second text", "third"}},
		})
		if err != nil {
			t.Fatalf("%s: %v", model, err)
		}
		if resp.Model != model || len(resp.Data) != 3 || len(resp.Data[2].Embedding) != 1024 || resp.Data[2].Index != 2 || resp.Usage.PromptTokens == 0 {
			t.Errorf("%s: model %q, %d vectors, usage %+v", model, resp.Model, len(resp.Data), resp.Usage)
		}
	}
	var list struct {
		Data []struct {
			ID             string         `json:"id"`
			CustomMetadata map[string]any `json:"custom_metadata"`
		} `json:"data"`
	}
	getJSON(t, srv.URL+"/v1/models", &list)
	for _, m := range list.Data {
		if strings.Contains(m.ID, "embed") && (m.CustomMetadata["model_type"] != "embedding" || m.CustomMetadata["embedding_dimension"] != float64(1024)) {
			t.Errorf("%s metadata %v", m.ID, m.CustomMetadata)
		}
	}
	// A chat model on /v1/embeddings is a 400 naming the model.
	_, err := client.Embeddings.New(t.Context(), oai.EmbeddingNewParams{Model: modelID, Input: oai.EmbeddingNewParamsInputUnion{OfString: oai.String("x")}})
	var apiErr *oai.Error
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 400 || !strings.Contains(apiErr.Message, modelID) {
		t.Errorf("chat model on embeddings: %v", err)
	}
}
