package openai

// Model is an entry of the OpenAI model list. CustomMetadata carries the
// Llama Stack fields (provider_id, provider_resource_id, model_type and the
// model's metadata).
type Model struct {
	ID             string         `json:"id"`
	Object         string         `json:"object"`
	Created        int64          `json:"created"`
	OwnedBy        string         `json:"owned_by"`
	CustomMetadata map[string]any `json:"custom_metadata,omitempty"`
}

// ModelList is the body of GET /v1/models.
type ModelList struct {
	Object string  `json:"object"`
	Data   []Model `json:"data"`
}

// ErrorBody is OpenAI's error envelope: {"error":{...}}.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail is the inside of an error envelope. Param and Code are null
// when unknown, as OpenAI sends them.
type ErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}
