package api

import (
	"context"
	"net/http"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/auth"
	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
	"github.com/llama-stack-go/llama-stack-go/internal/telemetry"
)

// reqInfo is what a request's handler learns that its access-log line,
// metrics and span report: the route, the caller, the model and provider,
// the time to the first token and the tokens used. The middleware makes
// one per request; handlers fill it through infoOf.
type reqInfo struct {
	start     time.Time
	route     string
	principal string
	model     string // a registered model id, "" otherwise (bounded label values)
	provider  string
	ttft      time.Duration
	usage     *openai.Usage
}

type infoKeyType struct{}

var infoKey infoKeyType

// infoOf returns the request's reqInfo; a detached one when the request
// did not come through the middleware (tests calling handlers directly).
func infoOf(ctx context.Context) *reqInfo {
	if ri, ok := ctx.Value(infoKey).(*reqInfo); ok {
		return ri
	}
	return &reqInfo{start: time.Now()}
}

// resolve routes a request's model: the registry lookup, the model type
// check, and the caller's access policy; it records the model and provider
// for the access log, metrics and trace.
func (s *Server) resolve(r *http.Request, model, wantType, what string) (*registry.Route, error) {
	rt, err := s.lookup(model, wantType, what)
	if err != nil {
		return nil, err
	}
	if s.policy != nil {
		p, _ := auth.FromContext(r.Context())
		if !s.policy.Allowed(p, auth.ActionRead, auth.Resource{Type: "model", ID: rt.Model.Identifier}) {
			return nil, auth.Forbidden("User '" + principalName(p) + "' cannot perform action 'read' on resource 'model::" + rt.Model.Identifier + "'")
		}
	}
	ri := infoOf(r.Context())
	ri.provider = rt.Model.ProviderID
	if _, registered := s.reg.Get(rt.Model.Identifier); registered {
		ri.model = rt.Model.Identifier
	}
	telemetry.SetModel(r.Context(), rt.Model.Identifier, rt.Model.ProviderID)
	if what == "chat completions" || what == "responses" {
		rt = s.withFallbacks(r, rt)
	}
	return rt, nil
}

func principalName(p *auth.Principal) string {
	if p == nil {
		return "anonymous"
	}
	return p.ID
}

// canSee reports whether the caller may list or read a model.
func (s *Server) canSee(r *http.Request, id string) bool {
	if s.policy == nil {
		return true
	}
	p, _ := auth.FromContext(r.Context())
	return s.policy.Allowed(p, auth.ActionRead, auth.Resource{Type: "model", ID: id})
}

// firstToken records the time to the first chunk of a stream.
func (s *Server) firstToken(r *http.Request) {
	ri := infoOf(r.Context())
	ri.ttft = time.Since(ri.start)
	s.metrics.ObserveTimeToFirstToken(ri.model, ri.provider, ri.ttft)
}

// used records the tokens an answer reports, for metrics, the trace, the
// access log and the caller's token quota.
func (s *Server) used(r *http.Request, u *openai.Usage) {
	if u == nil {
		return
	}
	ri := infoOf(r.Context())
	ri.usage = u
	s.metrics.AddTokens(ri.model, ri.provider, int(u.PromptTokens), int(u.CompletionTokens))
	telemetry.SetUsage(r.Context(), int(u.PromptTokens), int(u.CompletionTokens))
	if s.quota != nil {
		s.quota.AddTokens(r.Context(), s.quota.KeyOf(r), u.TotalTokens)
	}
}
