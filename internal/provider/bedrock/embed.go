package bedrock

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
)

// maxTitanConcurrency bounds the InvokeModel calls one embeddings request
// fans out to (Titan takes one text per call).
const maxTitanConcurrency = 8

// maxEmbedResponse bounds one InvokeModel response body.
const maxEmbedResponse = 32 << 20

// embedFamily is the request/response shape of a Bedrock embedding model.
type embedFamily int

const (
	familyUnknown embedFamily = iota
	familyTitanV1
	familyTitanV2
	familyCohereV3
	familyCohereV4
)

// familyOf recognises the embedding models whose wire shape is known,
// with or without a cross-region prefix ("us.", "eu.", "global.").
func familyOf(model string) embedFamily {
	id := model
	for _, p := range []string{"global.", "us.", "eu.", "apac.", "us-gov."} {
		id = strings.TrimPrefix(id, p)
	}
	switch {
	case strings.HasPrefix(id, "amazon.titan-embed-text-v2"):
		return familyTitanV2
	case strings.HasPrefix(id, "amazon.titan-embed-text-v1"), strings.HasPrefix(id, "amazon.titan-embed-g1-text"):
		return familyTitanV1
	case strings.HasPrefix(id, "cohere.embed-v4"):
		return familyCohereV4
	case strings.HasPrefix(id, "cohere.embed-english-v3"), strings.HasPrefix(id, "cohere.embed-multilingual-v3"):
		return familyCohereV3
	}
	return familyUnknown
}

// Embed serves /v1/embeddings through InvokeModel for Amazon Titan Text
// Embeddings v1 and v2 and Cohere Embed v3 and v4.
func (p *Provider) Embed(ctx context.Context, req *provider.EmbedRequest) (*openai.EmbeddingList, error) {
	fam := familyOf(req.Model)
	if fam == familyUnknown {
		return nil, fmt.Errorf("provider %s: embeddings with %s (known: Titan Text Embeddings v1/v2, Cohere Embed v3/v4): %w", p.id, req.Model, provider.ErrUnsupported)
	}
	texts, err := embedInputs(req.Embed.Input)
	if err != nil {
		return nil, err
	}
	dims := 0
	if req.Embed.Dimensions != nil {
		dims = int(*req.Embed.Dimensions)
	}
	if err := checkDimensions(fam, dims); err != nil {
		return nil, err
	}
	var (
		vectors [][]float64
		tokens  int64
	)
	switch fam {
	case familyTitanV1, familyTitanV2:
		vectors, tokens, err = p.embedTitan(ctx, req, fam, texts, dims)
	default:
		vectors, tokens, err = p.embedCohere(ctx, req, fam, texts, dims)
	}
	if err != nil {
		return nil, err
	}
	out := &openai.EmbeddingList{Object: "list", Model: req.ClientModel, Data: make([]openai.Embedding, len(vectors)),
		Usage: &openai.EmbeddingUsage{PromptTokens: tokens, TotalTokens: tokens}}
	for i, v := range vectors {
		enc, err := encodeVector(v, req.Embed.EncodingFormat)
		if err != nil {
			return nil, err
		}
		out.Data[i] = openai.Embedding{Object: "embedding", Index: i, Embedding: enc}
	}
	return out, nil
}

// embedInputs reads the input: a string or an array of strings. Token
// arrays are OpenAI-only.
func embedInputs(raw json.RawMessage) ([]string, error) {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		return []string{one}, nil
	}
	var many []string
	if err := json.Unmarshal(raw, &many); err != nil {
		return nil, &provider.Error{StatusCode: http.StatusBadRequest, Type: "invalid_request_error", Param: "input",
			Message: "Bedrock embedding models take 'input' as a string or an array of strings, not token ids"}
	}
	return many, nil
}

func checkDimensions(fam embedFamily, dims int) error {
	var allowed []int
	switch fam {
	case familyTitanV2:
		allowed = []int{256, 512, 1024}
	case familyCohereV4:
		allowed = []int{256, 512, 1024, 1536}
	}
	if dims == 0 {
		return nil
	}
	for _, a := range allowed {
		if dims == a {
			return nil
		}
	}
	msg := "this model does not take 'dimensions'"
	if len(allowed) > 0 {
		msg = fmt.Sprintf("'dimensions' must be one of %v for this model, got %d", allowed, dims)
	}
	return &provider.Error{StatusCode: http.StatusBadRequest, Type: "invalid_request_error", Param: "dimensions", Message: msg}
}

// embedTitan calls InvokeModel once per text, at most
// maxTitanConcurrency at a time, and keeps the input order.
func (p *Provider) embedTitan(ctx context.Context, req *provider.EmbedRequest, fam embedFamily, texts []string, dims int) ([][]float64, int64, error) {
	type titanIn struct {
		InputText  string `json:"inputText"`
		Dimensions int    `json:"dimensions,omitempty"`
		Normalize  *bool  `json:"normalize,omitempty"`
	}
	type titanOut struct {
		Embedding           []float64 `json:"embedding"`
		InputTextTokenCount int64     `json:"inputTextTokenCount"`
	}
	vectors := make([][]float64, len(texts))
	counts := make([]int64, len(texts))
	errs := make([]error, len(texts))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, maxTitanConcurrency)
	var wg sync.WaitGroup
	for i, text := range texts {
		in := titanIn{InputText: text}
		if fam == familyTitanV2 {
			in.Dimensions = dims
			t := true
			in.Normalize = &t
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			errs[i] = ctx.Err()
			continue
		}
		wg.Go(func() {
			defer func() { <-sem }()
			var out titanOut
			if _, err := p.invoke(ctx, req, in, &out); err != nil {
				errs[i] = err
				cancel()
				return
			}
			if len(out.Embedding) == 0 {
				errs[i] = p.malformed("the model returned no embedding")
				cancel()
				return
			}
			vectors[i], counts[i] = out.Embedding, out.InputTextTokenCount
		})
	}
	wg.Wait()
	var tokens int64
	for i := range texts {
		if errs[i] != nil {
			return nil, 0, firstRealError(errs)
		}
		tokens += counts[i]
	}
	return vectors, tokens, nil
}

// firstRealError prefers an upstream failure over the cancellations it
// caused in the calls beside it.
func firstRealError(errs []error) error {
	var first error
	for _, err := range errs {
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		if err != context.Canceled {
			return err
		}
	}
	return first
}

// embedCohere sends all texts in one call (Cohere takes up to 96).
func (p *Provider) embedCohere(ctx context.Context, req *provider.EmbedRequest, fam embedFamily, texts []string, dims int) ([][]float64, int64, error) {
	if len(texts) > 96 {
		return nil, 0, &provider.Error{StatusCode: http.StatusBadRequest, Type: "invalid_request_error", Param: "input",
			Message: fmt.Sprintf("Cohere embedding models take at most 96 texts per request, got %d", len(texts))}
	}
	in := map[string]any{"texts": texts, "input_type": "search_document"}
	if fam == familyCohereV4 {
		in["embedding_types"] = []string{"float"}
		if dims > 0 {
			in["output_dimension"] = dims
		}
	}
	var out struct {
		Embeddings json.RawMessage `json:"embeddings"`
	}
	h, err := p.invoke(ctx, req, in, &out)
	if err != nil {
		return nil, 0, err
	}
	var vectors [][]float64
	if fam == familyCohereV4 {
		var byType struct {
			Float [][]float64 `json:"float"`
		}
		err = json.Unmarshal(out.Embeddings, &byType)
		vectors = byType.Float
	} else {
		err = json.Unmarshal(out.Embeddings, &vectors)
	}
	if err != nil || len(vectors) != len(texts) {
		return nil, 0, p.malformed(fmt.Sprintf("the model returned %d embeddings for %d texts", len(vectors), len(texts)))
	}
	tokens, _ := strconv.ParseInt(h.Get("X-Amzn-Bedrock-Input-Token-Count"), 10, 64)
	return vectors, tokens, nil
}

// invoke POSTs one InvokeModel call and decodes its JSON answer.
func (p *Provider) invoke(ctx context.Context, req *provider.EmbedRequest, in, out any) (http.Header, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return nil, fmt.Errorf("encode invoke body: %w", err)
	}
	resp, err := p.postModel(ctx, req.Model, "/invoke", body, "application/json", req.Data)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxEmbedResponse))
	if err != nil {
		return nil, &provider.Error{Provider: p.id, StatusCode: http.StatusBadGateway, Type: "api_error", Code: "upstream_stream_broken", Message: "Bedrock's answer was cut off", Err: err}
	}
	if err := json.Unmarshal(b, out); err != nil {
		return nil, p.malformed("Bedrock sent a malformed embeddings response")
	}
	return resp.Header, nil
}

func (p *Provider) malformed(msg string) error {
	return &provider.Error{Provider: p.id, StatusCode: http.StatusBadGateway, Type: "api_error", Message: msg}
}

// encodeVector renders a vector as OpenAI does: a JSON array of floats,
// or for "base64" the little-endian float32 bytes in standard base64.
func encodeVector(v []float64, format string) (json.RawMessage, error) {
	if format != "base64" {
		return json.Marshal(v)
	}
	buf := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(float32(f)))
	}
	return json.Marshal(base64.StdEncoding.EncodeToString(buf))
}
