package bedrock

import "strings"

// Which Bedrock API serves a model, chosen per model by the "api" key of
// its metadata, else by model family.
const (
	// APIOpenAI is Bedrock Runtime's OpenAI-compatible chat completions
	// (/openai/v1): gpt-oss and the other open-weight families.
	APIOpenAI = "openai"
	// APIConverse is the native Converse API: Claude, Nova, Llama,
	// Mistral, Cohere and the rest, tool calling on every model.
	APIConverse = "converse"
)

// MetadataAPI is the model metadata key that picks the API.
const MetadataAPI = "api"

// converseFamilies are the model families the OpenAI-compatible surface
// does not serve (a request for them there is a 404 model_not_found).
var converseFamilies = []string{"anthropic.", "amazon.", "meta.", "mistral.", "cohere.", "ai21.", "writer.", "twelvelabs.", "stability.", "luma."}

// regionPrefixes are the prefixes of cross-Region inference profile ids.
var regionPrefixes = []string{"global.", "us-gov.", "us.", "eu.", "apac.", "jp.", "au.", "ca."}

// apiFor picks the API for a model: the metadata's choice, else Converse
// for the families the OpenAI-compatible surface does not serve, else the
// OpenAI-compatible surface.
func apiFor(model string, meta map[string]any) string {
	switch v, _ := meta[MetadataAPI].(string); v {
	case APIOpenAI, APIConverse:
		return v
	}
	id := model
	for _, p := range regionPrefixes {
		if s, ok := strings.CutPrefix(id, p); ok {
			id = s
			break
		}
	}
	for _, f := range converseFamilies {
		if strings.HasPrefix(id, f) {
			return APIConverse
		}
	}
	return APIOpenAI
}
