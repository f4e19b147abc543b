package api

import (
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
)

// FuzzDecodeChat: any body either decodes and validates, or yields a 400
// (or 413) *Error; it never panics, and an accepted body is what goes
// upstream, so it must be a JSON object with a model.
func FuzzDecodeChat(f *testing.F) {
	f.Add([]byte(`{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}`))
	f.Add([]byte(`{"model": 'm', "messages": [{"role":"user","content":[{"type":"text","text":"x"}]}]}`))
	f.Add([]byte(`{"model":"m","messages":[{"role":"tool","content":"x","tool_call_id":"c"}],"tools":[{"type":"function","function":{"name":"f"}}],"tool_choice":"auto","stop":["a"]}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req openai.ChatCompletionRequest
		fwd, err := decodeJSON(body, &req)
		if err == nil {
			err = validateChat(&req)
		}
		if err != nil {
			if p := toProblem(err); p.status != 400 {
				t.Fatalf("status %d for %q", p.status, body)
			}
			return
		}
		if _, err := openai.SetTopLevelString(fwd, "model", "x"); err != nil {
			t.Fatalf("accepted body cannot be forwarded: %v: %q", err, fwd)
		}
	})
}
