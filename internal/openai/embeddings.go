package openai

import "encoding/json"

// EmbeddingRequest is the part of an embeddings request the gateway reads.
// Input is a string, an array of strings, an array of token ids or an
// array of token-id arrays; it stays raw for passthrough.
type EmbeddingRequest struct {
	Model          string          `json:"model"`
	Input          json.RawMessage `json:"input"`
	EncodingFormat string          `json:"encoding_format,omitempty"`
	Dimensions     *int64          `json:"dimensions,omitempty"`
	User           string          `json:"user,omitempty"`
}

// EmbeddingList is the response of /v1/embeddings. Raw plays the same role
// as in ChatCompletion.
type EmbeddingList struct {
	Object string          `json:"object"`
	Data   []Embedding     `json:"data"`
	Model  string          `json:"model"`
	Usage  *EmbeddingUsage `json:"usage,omitempty"`
	Raw    json.RawMessage `json:"-"`
}

// Embedding is one vector: a JSON array of floats, or a base64 string when
// encoding_format is base64; kept raw.
type Embedding struct {
	Object    string          `json:"object"`
	Index     int             `json:"index"`
	Embedding json.RawMessage `json:"embedding"`
}

// EmbeddingUsage counts the tokens of an embeddings request.
type EmbeddingUsage struct {
	PromptTokens int64 `json:"prompt_tokens"`
	TotalTokens  int64 `json:"total_tokens"`
}

// Body returns the JSON to send: Raw when set, else the typed fields.
func (e *EmbeddingList) Body() ([]byte, error) {
	if e.Raw != nil {
		return e.Raw, nil
	}
	return json.Marshal(e)
}

// CompletionRequest is the part of a legacy completions request the
// gateway reads. Prompt is a string, an array of strings or token arrays.
type CompletionRequest struct {
	Model         string          `json:"model"`
	Prompt        json.RawMessage `json:"prompt"`
	Stream        bool            `json:"stream,omitempty"`
	StreamOptions *StreamOptions  `json:"stream_options,omitempty"`
	MaxTokens     *int64          `json:"max_tokens,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	N             *int64          `json:"n,omitempty"`
	Stop          json.RawMessage `json:"stop,omitempty"`
}

// Completion is a legacy completion, or one chunk of a streamed one.
type Completion struct {
	ID      string             `json:"id"`
	Object  string             `json:"object"`
	Created int64              `json:"created"`
	Model   string             `json:"model"`
	Choices []CompletionChoice `json:"choices"`
	Usage   *Usage             `json:"usage,omitempty"`
	Raw     json.RawMessage    `json:"-"`
}

// CompletionChoice is one alternative of a legacy completion.
type CompletionChoice struct {
	Index        int             `json:"index"`
	Text         string          `json:"text"`
	FinishReason *string         `json:"finish_reason"`
	Logprobs     json.RawMessage `json:"logprobs,omitempty"`
}

// Body returns the JSON to send: Raw when set, else the typed fields.
func (c *Completion) Body() ([]byte, error) {
	if c.Raw != nil {
		return c.Raw, nil
	}
	return json.Marshal(c)
}

// Finished reports whether any choice carries a finish reason.
func (c *Completion) Finished() bool {
	for i := range c.Choices {
		if f := c.Choices[i].FinishReason; f != nil && *f != "" {
			return true
		}
	}
	return false
}
