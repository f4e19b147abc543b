// Package openai holds the OpenAI wire types the gateway speaks to its
// clients and to OpenAI-compatible upstreams: chat requests, completions,
// stream chunks, models and error bodies, plus small JSON helpers for
// passing bodies through without decoding and re-encoding them whole.
package openai
