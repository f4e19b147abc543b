package bedrocktest

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws/protocol/eventstream"
)

func postConverse(t *testing.T, s *Server, model, op, key, body string) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, s.URL()+"/model/"+strings.ReplaceAll(model, ":", "%3A")+"/"+op, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestConverseRecorded(t *testing.T) {
	s := New(t, Options{})
	dir := s.opts.FixturesDir
	for _, name := range converseFixtures {
		req, _ := os.ReadFile(filepath.Join(dir, name+".request.json"))
		want, _ := os.ReadFile(filepath.Join(dir, name+".response.json"))
		resp, got := postConverse(t, s, ModelNovaMicro, "converse", DefaultKey, string(req))
		if resp.StatusCode != 200 || !bytes.Equal(got, want) {
			t.Errorf("%s: %d %s", name, resp.StatusCode, got)
		}
	}
	for _, name := range converseStreamFixtures {
		req, _ := os.ReadFile(filepath.Join(dir, name+".request.json"))
		want, _ := os.ReadFile(filepath.Join(dir, name+".eventstream"))
		resp, got := postConverse(t, s, ModelNovaMicro, "converse-stream", DefaultKey, string(req))
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/vnd.amazon.eventstream" || !bytes.Equal(got, want) {
			t.Errorf("%s: %d %q %d bytes", name, resp.StatusCode, resp.Header.Get("Content-Type"), len(got))
		}
	}
}

func TestConverseGenerated(t *testing.T) {
	s := New(t, Options{})
	resp, b := postConverse(t, s, ModelNovaMicro, "converse", DefaultKey, `{"messages":[{"role":"user","content":[{"text":"What is the capital of France?"}]}]}`)
	var out cvResponse
	if resp.StatusCode != 200 || json.Unmarshal(b, &out) != nil || out.StopReason != "end_turn" || len(out.Output.Message.Content) != 1 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	resp, b = postConverse(t, s, ModelNovaMicro, "converse-stream", DefaultKey,
		`{"messages":[{"role":"user","content":[{"text":"weather in Paris"}]}],"toolConfig":{"tools":[{"toolSpec":{"name":"get_weather","inputSchema":{"json":{"type":"object","properties":{"city":{"type":"string"}},"required":["city"]}}}}]}}`)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, b)
	}
	var events []string
	r := bytes.NewReader(b)
	dec := eventstream.NewDecoder()
	for r.Len() > 0 {
		m, err := dec.Decode(r, nil)
		if err != nil {
			t.Fatal(err)
		}
		var payload map[string]json.RawMessage
		if err := json.Unmarshal(m.Payload, &payload); err != nil || payload["p"] == nil {
			t.Fatalf("payload %s", m.Payload)
		}
		events = append(events, m.Headers.Get(":event-type").String())
	}
	want := "messageStart contentBlockStart contentBlockDelta"
	if got := strings.Join(events, " "); !strings.HasPrefix(got, want) || !strings.HasSuffix(got, "contentBlockStop messageStop metadata") {
		t.Errorf("events = %s", got)
	}
	for _, tt := range []struct {
		model, key, body string
		status           int
	}{
		{"no.such", DefaultKey, `{"messages":[{"role":"user","content":[{"text":"x"}]}]}`, 400},
		{ModelNovaMicro, "wrong", `{"messages":[{"role":"user","content":[{"text":"x"}]}]}`, 403},
		{ModelNovaMicro, DefaultKey, `{"messages":[{"role":"assistant","content":[{"text":"x"}]}]}`, 400},
		{ModelNovaMicro, DefaultKey, `{"messages":[{"role":"user","content":[{"text":"x"}]},{"role":"user","content":[{"text":"y"}]}]}`, 400},
		{ModelNovaMicro, DefaultKey, `{"messages":[{"role":"user","content":[{"toolResult":{"toolUseId":"a","content":[{"text":"x"}]}}]}]}`, 400},
	} {
		if resp, b := postConverse(t, s, tt.model, "converse", tt.key, tt.body); resp.StatusCode != tt.status {
			t.Errorf("%s %s: %d %s", tt.model, tt.body, resp.StatusCode, b)
		}
	}
}
