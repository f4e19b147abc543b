// Package responses serves OpenAI's Responses and Conversations APIs over
// chat completions: it decodes Responses requests and input items, runs the
// model loop (function tools returned to the client, MCP tools called by the
// server, reasoning and text items), generates the streaming events, and
// keeps responses, conversations and their items in a store.Records.
//
// It knows nothing of HTTP routing: internal/api decodes the request body,
// resolves the model to a provider, and hands the engine a Target and an
// event sink.
package responses
