package api

import (
	"context"
	"errors"
	"log/slog"
	"net/http"

	"github.com/llama-stack-go/llama-stack-go/internal/auth"
	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/resilient"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
)

// FallbacksKey is the model metadata key that lists, in order, the
// registered models to try when the model's own provider fails before
// answering (throttled, 5xx, unreachable, circuit open, overloaded):
//
//	metadata: {fallbacks: [bedrock/us.anthropic.claude-3-5-haiku-20241022-v1:0]}
const FallbacksKey = "fallbacks"

// fallbackChain is a chat provider that tries a model and then its
// fallbacks. Each attempt goes to the fallback's provider with the
// fallback's provider_model_id; the answer still carries the model id the
// client asked for. A failure that another model cannot cure (bad input,
// auth) ends the chain at once, and nothing is tried after a stream has
// started.
type fallbackChain struct {
	routes []*registry.Route // the model first
	log    *slog.Logger
}

var _ provider.Provider = (*fallbackChain)(nil)

// withFallbacks returns rt, or, when its metadata lists fallbacks the
// caller may use, a route whose provider tries them.
func (s *Server) withFallbacks(r *http.Request, rt *registry.Route) *registry.Route {
	list, _ := rt.Model.Metadata[FallbacksKey].([]any)
	if len(list) == 0 {
		return rt
	}
	chain := &fallbackChain{routes: []*registry.Route{rt}, log: s.log}
	p, _ := auth.FromContext(r.Context())
	for _, v := range list {
		id, _ := v.(string)
		fb, err := s.reg.Lookup(id)
		if err != nil || id == rt.Model.Identifier || fb.Model.ModelType != registry.TypeLLM {
			s.log.LogAttrs(r.Context(), slog.LevelWarn, "fallback model skipped: not a registered chat model",
				slog.String("model_id", rt.Model.Identifier), slog.Any("fallback", v))
			continue
		}
		if s.policy != nil && !s.policy.Allowed(p, auth.ActionRead, auth.Resource{Type: "model", ID: fb.Model.Identifier}) {
			continue
		}
		chain.routes = append(chain.routes, fb)
	}
	if len(chain.routes) == 1 {
		return rt
	}
	out := *rt
	out.Provider = chain
	return &out
}

// curable reports whether another model might answer where this one
// failed.
func curable(err error) bool {
	return resilient.Retryable(err) || errors.Is(err, resilient.ErrCircuitOpen) || errors.Is(err, resilient.ErrOverloaded)
}

// attempt is req addressed to route i.
func (f *fallbackChain) attempt(req *provider.Request, i int) *provider.Request {
	rt := f.routes[i]
	out := *req
	out.Model, out.Metadata = rt.Model.ProviderResourceID, rt.Model.Metadata
	return &out
}

func (f *fallbackChain) next(ctx context.Context, i int, err error) bool {
	if i+1 >= len(f.routes) || ctx.Err() != nil || !curable(err) {
		return false
	}
	f.log.LogAttrs(ctx, slog.LevelWarn, "model failed; trying its fallback",
		slog.String("request_id", requestID(ctx)), slog.String("model_id", f.routes[i].Model.Identifier),
		slog.String("fallback", f.routes[i+1].Model.Identifier), slog.String("error", err.Error()))
	return true
}

// Chat tries each model in turn.
func (f *fallbackChain) Chat(ctx context.Context, req *provider.Request) (*openai.ChatCompletion, error) {
	for i := range f.routes {
		resp, err := f.routes[i].Provider.Chat(ctx, f.attempt(req, i))
		if err == nil || !f.next(ctx, i, err) {
			return resp, err
		}
	}
	panic("unreachable")
}

// ChatStream tries each model in turn until one opens its stream.
func (f *fallbackChain) ChatStream(ctx context.Context, req *provider.Request) (provider.Stream, error) {
	for i := range f.routes {
		st, err := f.routes[i].Provider.ChatStream(ctx, f.attempt(req, i))
		if err == nil || !f.next(ctx, i, err) {
			return st, err
		}
	}
	panic("unreachable")
}
