package registry

import (
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

// BenchmarkLookup routes a request: a registered model id, and an
// unregistered <provider_id>/<provider_model_id> that falls back to the
// provider.
func BenchmarkLookup(b *testing.B) {
	var p provider.Provider // identity is all the registry needs
	r := New(map[string]provider.Provider{"bedrock": p})
	for _, id := range []string{"openai.gpt-oss-20b-1:0", "openai.gpt-oss-120b-1:0", "amazon.nova-micro-v1:0", "meta.llama3-8b-instruct-v1:0"} {
		if err := r.Register(Model{Identifier: "bedrock/" + id, ProviderID: "bedrock", ProviderResourceID: id}); err != nil {
			b.Fatal(err)
		}
	}
	for _, c := range []struct{ name, id string }{
		{"registered", "bedrock/openai.gpt-oss-20b-1:0"},
		{"provider fallback", "bedrock/mistral.mistral-large-2407-v1:0"},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Lookup(c.id); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
