package bedrock

import (
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/config"
	"github.com/llama-stack-go/llama-stack-go/internal/openai"
	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

func embedProvider(t *testing.T, key string) (*Provider, *bedrocktest.Server) {
	t.Helper()
	double := bedrocktest.New(t, bedrocktest.Options{})
	p, err := New("bedrock", &config.BedrockConfig{APIKey: config.Secret(key), BaseURL: double.URL()}, Options{LookupEnv: envOf()})
	if err != nil {
		t.Fatal(err)
	}
	return p, double
}

func embedReq(model, input string, dims int, format string) *provider.EmbedRequest {
	r := &openai.EmbeddingRequest{Model: "bedrock/" + model, Input: json.RawMessage(input), EncodingFormat: format}
	if dims > 0 {
		d := int64(dims)
		r.Dimensions = &d
	}
	return &provider.EmbedRequest{Model: model, ClientModel: "bedrock/" + model, Embed: r}
}

func vectors(t *testing.T, l *openai.EmbeddingList) [][]float64 {
	t.Helper()
	out := make([][]float64, len(l.Data))
	for i, d := range l.Data {
		if d.Index != i {
			t.Fatalf("data[%d].index = %d", i, d.Index)
		}
		if err := json.Unmarshal(d.Embedding, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// TestEmbedTitanRecorded replays the recorded Titan v2 answer: the request
// the provider builds is the recorded one, and the vector comes back exact.
func TestEmbedTitanRecorded(t *testing.T) {
	p, double := embedProvider(t, bedrocktest.DefaultKey)
	got, err := p.Embed(t.Context(), embedReq(bedrocktest.ModelTitanEmbedV2, `"Test embedding dimensions"`, 256, ""))
	if err != nil {
		t.Fatal(err)
	}
	dir, _ := bedrocktest.Fixtures()
	raw, _ := os.ReadFile(filepath.Join(dir, "invoke-titan-embed-text-v2-256d.response.json"))
	var want struct{ Embedding []float64 }
	_ = json.Unmarshal(raw, &want)
	v := vectors(t, got)
	if len(v) != 1 || len(v[0]) != 256 || v[0][0] != want.Embedding[0] || v[0][255] != want.Embedding[255] {
		t.Fatalf("vector does not match the recording")
	}
	if got.Usage.PromptTokens != 4 || got.Model != "bedrock/"+bedrocktest.ModelTitanEmbedV2 || got.Object != "list" {
		t.Errorf("usage %+v model %q", got.Usage, got.Model)
	}
	if r := double.Requests()[0]; r.Path != "/model/amazon.titan-embed-text-v2:0/invoke" || r.Header.Get("Authorization") != "Bearer "+bedrocktest.DefaultKey {
		t.Errorf("request %s %v", r.Path, r.Header)
	}
}

func TestEmbedFamilies(t *testing.T) {
	p, _ := embedProvider(t, bedrocktest.DefaultKey)
	inputs := make([]string, 20)
	for i := range inputs {
		inputs[i] = fmt.Sprintf("text number %d", i)
	}
	many, _ := json.Marshal(inputs)
	tests := []struct {
		model string
		input string
		dims  int
		n, d  int
	}{
		{bedrocktest.ModelTitanEmbedV2, string(many), 512, 20, 512},
		{bedrocktest.ModelTitanEmbedV1, `["a b","c"]`, 0, 2, 1536},
		{bedrocktest.ModelCohereEmbedV3, string(many), 0, 20, 1024},
		{bedrocktest.ModelCohereEmbedV4, `"one"`, 256, 1, 256},
	}
	for _, tt := range tests {
		t.Run(tt.model, func(t *testing.T) {
			req := embedReq(tt.model, tt.input, tt.dims, "")
			got, err := p.Embed(t.Context(), req)
			if err != nil {
				t.Fatal(err)
			}
			v := vectors(t, got)
			if len(v) != tt.n || len(v[0]) != tt.d {
				t.Fatalf("%d vectors of %d, want %d of %d", len(v), len(v[0]), tt.n, tt.d)
			}
			if got.Usage == nil || got.Usage.PromptTokens == 0 {
				t.Errorf("usage %+v", got.Usage)
			}
			// Order is kept: each vector equals that of its text alone.
			if tt.n > 1 {
				single, err := p.Embed(t.Context(), embedReq(tt.model, fmt.Sprintf("%q", inputsOf(tt.input)[tt.n-1]), tt.dims, ""))
				if err != nil {
					t.Fatal(err)
				}
				if vectors(t, single)[0][0] != v[tt.n-1][0] {
					t.Errorf("order not kept")
				}
			}
		})
	}
	if familyOf("us.cohere.embed-v4:0") != familyCohereV4 || familyOf("global.amazon.titan-embed-text-v2:0") != familyTitanV2 {
		t.Error("cross-region ids not recognised")
	}
}

func inputsOf(raw string) []string {
	var s []string
	_ = json.Unmarshal([]byte(raw), &s)
	return s
}

func TestEmbedBase64(t *testing.T) {
	p, _ := embedProvider(t, bedrocktest.DefaultKey)
	f, err := p.Embed(t.Context(), embedReq(bedrocktest.ModelTitanEmbedV2, `"hello"`, 256, "float"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := p.Embed(t.Context(), embedReq(bedrocktest.ModelTitanEmbedV2, `"hello"`, 256, "base64"))
	if err != nil {
		t.Fatal(err)
	}
	var s string
	if err := json.Unmarshal(b.Data[0].Embedding, &s); err != nil {
		t.Fatalf("base64 embedding is not a string: %s", b.Data[0].Embedding)
	}
	buf, _ := base64.StdEncoding.DecodeString(s)
	floats := vectors(t, f)[0]
	if len(buf) != 4*len(floats) {
		t.Fatalf("%d bytes for %d floats", len(buf), len(floats))
	}
	for i, want := range floats {
		if got := math.Float32frombits(binary.LittleEndian.Uint32(buf[4*i:])); got != float32(want) {
			t.Fatalf("float %d: %v != %v", i, got, want)
		}
	}
}

func TestEmbedErrors(t *testing.T) {
	p, _ := embedProvider(t, bedrocktest.DefaultKey)
	bad, _ := embedProvider(t, "wrong-key")
	tests := []struct {
		name       string
		p          *Provider
		req        *provider.EmbedRequest
		status     int
		unsupprted bool
	}{
		{"unknown family", p, embedReq("amazon.nova-2-multimodal-embeddings-v1:0", `"x"`, 0, ""), 0, true},
		{"bad dimensions", p, embedReq(bedrocktest.ModelTitanEmbedV2, `"x"`, 300, ""), 400, false},
		{"dimensions on v1", p, embedReq(bedrocktest.ModelTitanEmbedV1, `"x"`, 256, ""), 400, false},
		{"token ids", p, embedReq(bedrocktest.ModelTitanEmbedV2, `[1,2,3]`, 0, ""), 400, false},
		{"too many cohere texts", p, embedReq(bedrocktest.ModelCohereEmbedV3, string(must(json.Marshal(make([]string, 97)))), 0, ""), 400, false},
		{"invalid key", bad, embedReq(bedrocktest.ModelTitanEmbedV2, `["a","b","c"]`, 0, ""), 401, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.p.Embed(t.Context(), tt.req)
			if tt.unsupprted {
				if !errors.Is(err, provider.ErrUnsupported) {
					t.Fatalf("err = %v", err)
				}
				return
			}
			var pe *provider.Error
			if !errors.As(err, &pe) || pe.StatusCode != tt.status {
				t.Fatalf("err = %v, want status %d", err, tt.status)
			}
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestListModels(t *testing.T) {
	double := bedrocktest.New(t, bedrocktest.Options{})
	p, err := New("bedrock", &config.BedrockConfig{APIKey: bedrocktest.DefaultKey}, Options{LookupEnv: envOf("AWS_ENDPOINT_URL", double.URL())})
	if err != nil {
		t.Fatal(err)
	}
	models, err := p.ListModels(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, m := range models {
		ids = append(ids, m.ID)
	}
	got := fmt.Sprint(ids)
	for _, want := range []string{bedrocktest.ModelGptOss20B, bedrocktest.ModelTitanEmbedV2, bedrocktest.ModelClaudeHaiku} {
		if !strings.Contains(got, want) {
			t.Errorf("%s missing from %s", want, got)
		}
	}
	for _, skip := range []string{"claude-v2", "nova-premier", "image-generator"} {
		if strings.Contains(got, skip) {
			t.Errorf("%s should be skipped: %s", skip, got)
		}
	}
	bad, _ := New("bedrock", &config.BedrockConfig{APIKey: "wrong"}, Options{LookupEnv: envOf("AWS_ENDPOINT_URL", double.URL())})
	if _, err := bad.ListModels(t.Context()); err == nil {
		t.Error("a rejected key listed models")
	}
}
