package e2e

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat/openaitest"
)

// TestStarterTwoProviders runs the built-in starter config with OpenAI and
// Ollama switched on by their usual variables (each pointed at a double),
// and uses models of both through the official openai npm package.
func TestStarterTwoProviders(t *testing.T) {
	openaiUp := openaitest.New(t, openaitest.Options{Key: "sk-test", Scheme: "Bearer"})
	ollamaUp := openaitest.New(t, openaitest.Options{})
	srv := startServer(t, []string{
		"OPENAI_API_KEY=sk-test",
		"OPENAI_BASE_URL=" + openaiUp.URL() + "/v1",
		"OLLAMA_URL=" + ollamaUp.URL() + "/v1",
	})
	want := []string{"openai/test-chat", "ollama/test-chat", "ollama/test-embed"}
	// Discovery runs in the background at start: wait for it.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var list struct {
			Data []struct {
				ID string `json:"id"`
			} `json:"data"`
		}
		getJSON(t, srv.URL+"/v1/models", &list)
		var ids []string
		for _, m := range list.Data {
			ids = append(ids, m.ID)
		}
		if !slices.ContainsFunc(want, func(w string) bool { return !slices.Contains(ids, w) }) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("models after 15s: %v, want %v", ids, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	dir := filepath.Join(repoRoot(), "e2e", "js")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		t.Fatalf("e2e/js/node_modules is missing: run `npm ci` in e2e/js (make test does)")
	}
	runSuite(t, dir, []string{
		"LLAMA_STACK_BASE_URL=" + srv.URL,
		"STARTER_CHAT_MODELS=openai/test-chat,ollama/test-chat",
		"STARTER_EMBED_MODEL=ollama/test-embed",
	}, "node", "--test", "--test-concurrency=1", "starter.test.mjs")
	for _, r := range openaiUp.Requests() {
		if got := r.Header.Get("Authorization"); got != "Bearer sk-test" {
			t.Errorf("OpenAI got Authorization %q on %s", got, r.Path)
		}
	}
	for _, r := range ollamaUp.Requests() {
		if got := r.Header.Get("Authorization"); got != "" {
			t.Errorf("Ollama got an Authorization header on %s", r.Path)
		}
		if strings.Contains(string(r.Body), `"ollama/`) {
			t.Errorf("client model id sent upstream: %s", r.Body)
		}
	}
}
