package provider

import (
	"context"
	"encoding/json"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
)

// Data is the caller's per-request provider data: the JSON object of the
// X-LlamaStack-Provider-Data header, string members only (keys such as
// "openai_api_key" or "aws_bearer_token_bedrock"). Providers read the
// members they know; nil means none were sent.
type Data map[string]string

// Embedder is implemented by providers that serve /v1/embeddings.
type Embedder interface {
	Embed(ctx context.Context, req *EmbedRequest) (*openai.EmbeddingList, error)
}

// Completer is implemented by providers that serve the legacy
// /v1/completions route.
type Completer interface {
	Complete(ctx context.Context, req *CompletionRequest) (*openai.Completion, error)
	// CompleteStream opens a streamed completion; as with ChatStream, an
	// error means nothing was sent yet.
	CompleteStream(ctx context.Context, req *CompletionRequest) (CompletionStream, error)
}

// CompletionStream yields legacy completion chunks until io.EOF.
type CompletionStream interface {
	Next() (*openai.Completion, error)
	Close() error
}

// ModelLister is implemented by providers that can say which models they
// serve (discovery).
type ModelLister interface {
	ListModels(ctx context.Context) ([]openai.Model, error)
}

// EmbedRequest is a validated embeddings request for one upstream model.
type EmbedRequest struct {
	Model       string
	ClientModel string
	Embed       *openai.EmbeddingRequest
	Raw         json.RawMessage
	Data        Data
}

// CompletionRequest is a validated legacy completions request for one
// upstream model.
type CompletionRequest struct {
	Model       string
	ClientModel string
	Completion  *openai.CompletionRequest
	Raw         json.RawMessage
	Data        Data
}
