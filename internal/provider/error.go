package provider

import (
	"errors"
	"fmt"
	"time"
)

// Error is an upstream failure, already translated from the upstream's own
// shape by the adapter that met it. Nothing above the adapter parses
// upstream error bodies.
type Error struct {
	// Provider is the provider_id of the upstream.
	Provider string
	// StatusCode is the upstream's HTTP status, or the status the adapter
	// chose for a failure without one (0 when the upstream was not reached).
	StatusCode int
	// Type, Code and Param follow OpenAI's error fields where known.
	Type, Code, Param string
	// Message is safe to show to the client: it never holds secrets.
	Message string
	// RetryAfter is the upstream's requested back-off, if any.
	RetryAfter time.Duration
	// Err is the underlying cause, for logs.
	Err error
}

// Error returns the message with the provider and status.
func (e *Error) Error() string {
	if e.StatusCode != 0 {
		return fmt.Sprintf("provider %s: upstream status %d: %s", e.Provider, e.StatusCode, e.Message)
	}
	return fmt.Sprintf("provider %s: %s", e.Provider, e.Message)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// ErrUnsupported reports a request for something the provider does not
// serve (embeddings from a chat-only upstream, say). The handler turns it
// into a 400 that names the model.
var ErrUnsupported = errors.New("not supported by the provider")
