// Package provider defines what the gateway needs from an upstream model
// service: a small interface speaking OpenAI wire types, the request it
// takes, and the one error type every adapter translates upstream failures
// into. It holds no implementations.
package provider

import (
	"context"
	"encoding/json"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
)

// A Provider sends chat requests to one upstream.
type Provider interface {
	// Chat returns the complete response.
	Chat(ctx context.Context, req *Request) (*openai.ChatCompletion, error)
	// ChatStream opens a stream. A non-nil error means nothing has been
	// sent to the client yet, so it can still become a plain HTTP error.
	ChatStream(ctx context.Context, req *Request) (Stream, error)
}

// A Stream yields chunks until Next returns io.EOF. Any other error ends
// the stream; the caller reports it in-band. Close releases the upstream
// connection and may be called at any time, also after an error.
type Stream interface {
	Next() (*openai.ChatCompletionChunk, error)
	Close() error
}

// Request is a validated chat request addressed to one upstream model.
type Request struct {
	// Model is the provider_model_id the upstream knows the model by.
	Model string
	// ClientModel is the model id the client asked for; responses carry it.
	ClientModel string
	// Chat is the parsed request, for validation, limits and translation.
	Chat *openai.ChatCompletionRequest
	// Raw is the client's body, for passthrough adapters.
	Raw json.RawMessage
	// Data is the caller's X-LlamaStack-Provider-Data.
	Data Data
	// Metadata is the model's registry metadata, where per-model settings
	// live.
	Metadata map[string]any
}
