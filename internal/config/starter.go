package config

import (
	"bytes"
	_ "embed"
)

//go:embed starter.yaml
var starter []byte

// Starter returns the built-in starter config: the Bedrock part of the Llama
// Stack starter distribution. The Bedrock provider is enabled by
// AWS_BEARER_TOKEN_BEDROCK (its API key) and uses AWS_DEFAULT_REGION, default
// us-west-2; it registers bedrock/openai.gpt-oss-20b-1:0 and
// bedrock/openai.gpt-oss-120b-1:0. Without the token the provider is disabled
// and both models are dropped. The caller owns the returned slice.
func Starter() []byte { return bytes.Clone(starter) }
