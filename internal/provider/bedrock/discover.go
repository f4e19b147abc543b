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

// inferenceProfiles is the part of ListInferenceProfiles' answer
// discovery reads.
type inferenceProfiles struct {
	InferenceProfileSummaries []struct {
		InferenceProfileID string `json:"inferenceProfileId"`
		Status             string `json:"status"`
	} `json:"inferenceProfileSummaries"`
}

// ListModels lists what the account can call: the foundation models it
// can call on demand (ListFoundationModels, ACTIVE text and embedding
// models) and the system-defined cross-Region inference profiles
// (ListInferenceProfiles, ACTIVE), which newer models such as Claude 4
// require. It uses the provider's credentials.
func (p *Provider) ListModels(ctx context.Context) ([]openai.Model, error) {
	var fm foundationModels
	if err := p.control(ctx, "/foundation-models?byInferenceType=ON_DEMAND", &fm); err != nil {
		return nil, err
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
	var ip inferenceProfiles
	if err := p.control(ctx, "/inference-profiles?typeEquals=SYSTEM_DEFINED&maxResults=1000", &ip); err != nil {
		return nil, err
	}
	for _, pr := range ip.InferenceProfileSummaries {
		if pr.InferenceProfileID != "" && (pr.Status == "" || pr.Status == "ACTIVE") {
			out = append(out, openai.Model{ID: pr.InferenceProfileID, Object: "model", OwnedBy: "bedrock"})
		}
	}
	return out, nil
}

// control GETs a control-plane path with the provider's credentials and
// decodes the JSON answer into out.
func (p *Provider) control(ctx context.Context, path string, out any) error {
	hreq, err := http.NewRequestWithContext(ctx, http.MethodGet, p.controlURL+path, nil)
	if err != nil {
		return fmt.Errorf("build control-plane request: %w", err)
	}
	hreq.Header.Set("Accept", "application/json")
	if err := p.authorize(hreq, nil); err != nil {
		return err
	}
	resp, err := p.hc.Do(hreq)
	if err != nil {
		return fmt.Errorf("call the Bedrock control plane: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxEmbedResponse))
	if err != nil {
		return fmt.Errorf("read the control plane's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		e := openaicompat.ParseError(resp.StatusCode, resp.Header, body)
		e.Provider = p.id
		p.translateError(e)
		return e
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("decode the control plane's answer: %w", err)
	}
	return nil
}
