package bedrocktest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"math"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Embedding model ids the double serves through InvokeModel
// (POST /model/{id}/invoke).
const (
	ModelTitanEmbedV1  = "amazon.titan-embed-text-v1"
	ModelTitanEmbedV2  = "amazon.titan-embed-text-v2:0"
	ModelCohereEmbedV3 = "cohere.embed-english-v3"
	ModelCohereEmbedV4 = "cohere.embed-v4:0"
)

// invokeModels are the embedding models InvokeModel answers for.
var invokeModels = []string{ModelTitanEmbedV1, ModelTitanEmbedV2, ModelCohereEmbedV3, ModelCohereEmbedV4}

// serveInvoke answers InvokeModel for the embedding models. A request
// equal to a recorded one gets the recorded body back byte for byte;
// others get deterministic vectors derived from the text, in the model's
// wire shape, with the token-count header real Bedrock sends.
func (s *Server) serveInvoke(w http.ResponseWriter, r *http.Request, body []byte) {
	if fx := s.authFailure(r.Header.Get("Authorization")); fx != nil {
		fx.write(w)
		return
	}
	escaped := strings.TrimSuffix(strings.TrimPrefix(r.URL.EscapedPath(), "/model/"), "/invoke")
	model, err := url.PathUnescape(escaped)
	if err != nil || !slices.Contains(invokeModels, model) {
		writeAWSError(w, http.StatusBadRequest, "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/", "message", "The provided model identifier is invalid.")
		return
	}
	if _, faulted := s.faults(w, false, false); faulted {
		return
	}
	if b := s.recordedInvoke(model, body); b != nil {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", "4")
		_, _ = w.Write(b)
		return
	}
	var in map[string]json.RawMessage
	if json.Unmarshal(body, &in) != nil {
		malformed(w, "Malformed input request, please reformat your input and try again.")
		return
	}
	allowed := map[string][]string{
		ModelTitanEmbedV1:  {"inputText"},
		ModelTitanEmbedV2:  {"inputText", "dimensions", "normalize", "embeddingTypes"},
		ModelCohereEmbedV3: {"texts", "input_type", "truncate", "embedding_types", "images"},
		ModelCohereEmbedV4: {"texts", "input_type", "truncate", "embedding_types", "output_dimension", "max_tokens", "images", "inputs"},
	}[model]
	for k := range in {
		if !slices.Contains(allowed, k) {
			malformed(w, "Malformed input request: #: extraneous key ["+k+"] is not permitted, please reformat your input and try again.")
			return
		}
	}
	switch model {
	case ModelTitanEmbedV1, ModelTitanEmbedV2:
		var text string
		if json.Unmarshal(in["inputText"], &text) != nil || text == "" {
			malformed(w, "Malformed input request: #: required key [inputText] not found, please reformat your input and try again.")
			return
		}
		dims := 1536
		if model == ModelTitanEmbedV2 {
			dims = 1024
			if raw, ok := in["dimensions"]; ok {
				if json.Unmarshal(raw, &dims) != nil || (dims != 256 && dims != 512 && dims != 1024) {
					malformed(w, "Malformed input request: #/dimensions: 256, 512 or 1024 expected, please reformat your input and try again.")
					return
				}
			}
		}
		n := len(strings.Fields(text))
		vec := vector(text, dims)
		out := map[string]any{"embedding": vec, "inputTextTokenCount": n}
		if model == ModelTitanEmbedV2 {
			out["embeddingsByType"] = map[string]any{"float": vec}
		}
		w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", strconv.Itoa(n))
		writeJSON(w, http.StatusOK, out)
	default:
		var texts []string
		var inputType string
		if json.Unmarshal(in["texts"], &texts) != nil || len(texts) == 0 || json.Unmarshal(in["input_type"], &inputType) != nil {
			malformed(w, "Malformed input request: #: required key [texts] or [input_type] not found, please reformat your input and try again.")
			return
		}
		dims := 1024
		if model == ModelCohereEmbedV4 {
			dims = 1536
			if raw, ok := in["output_dimension"]; ok {
				_ = json.Unmarshal(raw, &dims)
			}
		}
		vecs := make([][]float64, len(texts))
		n := 0
		for i, t := range texts {
			vecs[i] = vector(t, dims)
			n += len(strings.Fields(t))
		}
		out := map[string]any{"id": newUUID(), "texts": texts}
		if model == ModelCohereEmbedV4 {
			out["embeddings"] = map[string]any{"float": vecs}
			out["response_type"] = "embeddings_by_type"
		} else {
			out["embeddings"] = vecs
			out["response_type"] = "embeddings_floats"
		}
		w.Header().Set("X-Amzn-Bedrock-Input-Token-Count", strconv.Itoa(n))
		writeJSON(w, http.StatusOK, out)
	}
}

// recordedInvoke returns the recorded response for a request that equals
// a recorded one (compared as JSON values).
func (s *Server) recordedInvoke(model string, body []byte) []byte {
	name := map[string]string{ModelTitanEmbedV2: "invoke-titan-embed-text-v2-256d", ModelCohereEmbedV3: "invoke-cohere-embed-english-v3"}[model]
	if name == "" {
		return nil
	}
	req, err := os.ReadFile(filepath.Join(s.opts.FixturesDir, name+".request.json"))
	if err != nil || !sameJSON(req, body) {
		return nil
	}
	resp, err := os.ReadFile(filepath.Join(s.opts.FixturesDir, name+".response.json"))
	if err != nil {
		return nil
	}
	return resp
}

func sameJSON(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	ea, _ := json.Marshal(x)
	eb, _ := json.Marshal(y)
	return string(ea) == string(eb)
}

// vector is a deterministic unit vector derived from the text.
func vector(text string, dims int) []float64 {
	v := make([]float64, dims)
	var norm float64
	seed := sha256.Sum256([]byte(text))
	for i := range v {
		h := sha256.Sum256(append(seed[:], byte(i), byte(i>>8)))
		x := float64(int32(binary.LittleEndian.Uint32(h[:4]))) / math.MaxInt32
		v[i] = x
		norm += x * x
	}
	norm = math.Sqrt(norm)
	for i := range v {
		v[i] /= norm
	}
	return v
}

func malformed(w http.ResponseWriter, msg string) {
	writeAWSError(w, http.StatusBadRequest, "ValidationException:http://internal.amazon.com/coral/com.amazon.bedrock/", "message", msg)
}
