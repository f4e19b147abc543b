package bedrocktest

import (
	"net/http"
	"strings"
)

// serveFoundationModels answers the control plane's ListFoundationModels
// (GET /foundation-models) with the models the double serves, plus a
// legacy model and a provisioned-only one that discovery must skip.
func (s *Server) serveFoundationModels(w http.ResponseWriter, r *http.Request) {
	if fx := s.authFailure(r.Header.Get("Authorization")); fx != nil {
		fx.write(w)
		return
	}
	summary := func(id, out, status string, types ...string) map[string]any {
		provider, _, _ := strings.Cut(strings.TrimPrefix(id, "us."), ".")
		return map[string]any{
			"modelArn": "arn:aws:bedrock:us-west-2::foundation-model/" + id, "modelId": id, "modelName": id,
			"providerName": provider, "inputModalities": []string{"TEXT"}, "outputModalities": []string{out},
			"responseStreamingSupported": out == "TEXT", "inferenceTypesSupported": types,
			"modelLifecycle": map[string]any{"status": status},
		}
	}
	var list []map[string]any
	for _, m := range s.opts.Models {
		list = append(list, summary(m, "TEXT", "ACTIVE", "ON_DEMAND"))
	}
	for _, m := range invokeModels {
		list = append(list, summary(m, "EMBEDDING", "ACTIVE", "ON_DEMAND"))
	}
	list = append(list,
		summary("anthropic.claude-v2:1", "TEXT", "LEGACY", "ON_DEMAND"),
		summary("amazon.nova-premier-v1:0:300k", "TEXT", "ACTIVE", "PROVISIONED"),
		summary("amazon.titan-image-generator-v2:0", "IMAGE", "ACTIVE", "ON_DEMAND"))
	writeJSON(w, http.StatusOK, map[string]any{"modelSummaries": list})
}

// serveInferenceProfiles answers ListInferenceProfiles
// (GET /inference-profiles) with the cross-Region profiles the double
// serves through Converse.
func (s *Server) serveInferenceProfiles(w http.ResponseWriter, r *http.Request) {
	if fx := s.authFailure(r.Header.Get("Authorization")); fx != nil {
		fx.write(w)
		return
	}
	var list []map[string]any
	for _, id := range []string{ModelClaudeHaiku, ModelNovaMicro} {
		list = append(list, map[string]any{"inferenceProfileId": id, "inferenceProfileName": id, "status": "ACTIVE", "type": "SYSTEM_DEFINED"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"inferenceProfileSummaries": list})
}
