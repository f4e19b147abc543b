package bedrock

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
)

var _ provider.ModelLister = (*Provider)(nil)

// controlEndpoint resolves the Bedrock control plane the way the AWS SDKs
// do: AWS_ENDPOINT_URL_BEDROCK, then AWS_ENDPOINT_URL (unless configured
// endpoints are ignored), then https://bedrock.{region}.amazonaws.com.
func controlEndpoint(region string, env config.LookupEnv) string {
	if !strings.EqualFold(getenv(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"), "true") {
		if u := firstNonEmpty(getenv(env, "AWS_ENDPOINT_URL_BEDROCK"), getenv(env, "AWS_ENDPOINT_URL")); u != "" {
			return strings.TrimRight(u, "/")
		}
	}
	suffix := "amazonaws.com"
	if strings.HasPrefix(region, "cn-") {
		suffix = "amazonaws.com.cn"
	}
	return "https://bedrock." + region + "." + suffix
}

// foundationModels is the part of ListFoundationModels' answer discovery
// reads.
type foundationModels struct {
	ModelSummaries []struct {
		ModelID                 string   `json:"modelId"`
		ProviderName            string   `json:"providerName"`
		OutputModalities        []string `json:"outputModalities"`
		InferenceTypesSupported []string `json:"inferenceTypesSupported"`
		ModelLifecycle          struct {
			Status string `json:"status"`
		} `json:"modelLifecycle"`
	} `json:"modelSummaries"`
}

// ListModels lists the foundation models the account can call on demand
// (ListFoundationModels, ACTIVE only, text and embedding models), with the
// provider's credentials.
func (p *Provider) ListModels(ctx context.Context) ([]openai.Model, error) {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, p.control+"/foundation-models?byInferenceType=ON_DEMAND", nil)
	if err != nil {
		return nil, fmt.Errorf("build list request: %w", err)
	}
	hreq.Header.Set("Accept", "application/json")
	if err := p.authorize(hreq, nil); err != nil {
		return nil, err
	}
	resp, err := p.hc.Do(hreq)
	if err != nil {
		return nil, fmt.Errorf("list foundation models: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxEmbedResponse))
	if err != nil {
		return nil, fmt.Errorf("read foundation models: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		e := openaicompat.ParseError(resp.StatusCode, resp.Header, body)
		e.Provider = p.id
		p.translateError(e)
		return nil, e
	}
	var fm foundationModels
	if err := json.Unmarshal(body, &fm); err != nil {
		return nil, fmt.Errorf("decode foundation models: %w", err)
	}
	var out []openai.Model
	for _, m := range fm.ModelSummaries {
		if m.ModelID == "" || (m.ModelLifecycle.Status != "" && m.ModelLifecycle.Status != "ACTIVE") ||
			(len(m.InferenceTypesSupported) > 0 && !slices.Contains(m.InferenceTypesSupported, "ON_DEMAND")) ||
			!(slices.Contains(m.OutputModalities, "TEXT") || slices.Contains(m.OutputModalities, "EMBEDDING")) {
			continue
		}
		out = append(out, openai.Model{ID: m.ModelID, Object: "model", OwnedBy: strings.ToLower(m.ProviderName)})
	}
	return out, nil
}
