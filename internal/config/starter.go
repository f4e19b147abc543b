package config

import (
	"bytes"
	_ "embed"
)

//go:embed starter.yaml
var starter []byte

// Starter returns the built-in starter config, after the Llama Stack (OGX)
// starter distribution: its remote inference providers that this server
// knows, each disabled until the environment variable that enables it is
// set (see the list at the top of starter.yaml): Bedrock by
// AWS_BEARER_TOKEN_BEDROCK (its API key; region AWS_DEFAULT_REGION, default
// us-west-2), OpenAI by OPENAI_API_KEY, Ollama by OLLAMA_URL, vLLM by
// VLLM_URL, and so on. It registers bedrock/openai.gpt-oss-20b-1:0 and
// bedrock/openai.gpt-oss-120b-1:0; without the Bedrock token both are
// dropped. The caller owns the returned slice.
func Starter() []byte { return bytes.Clone(starter) }
