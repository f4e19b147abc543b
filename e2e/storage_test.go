package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	oai "github.com/openai/openai-go/v3"

	"github.com/llama-stack-go/llama-stack-go/internal/provider/bedrock/bedrocktest"
)

// storeFlushWindow is what the README promises a kill -9 may lose: the
// completions acknowledged within the write queue's flush interval
// (100 ms by default) plus the time one batch takes to commit. The test
// allows a generous multiple of it so a slow CI machine does not flake.
const storeFlushWindow = time.Second

func httpDo(t *testing.T, method, url, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// eventually polls f until it reports true or the deadline passes.
func eventually(t *testing.T, within time.Duration, what string, f func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !f() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, within)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// storedIDs lists every stored chat completion id through the API.
func storedIDs(t *testing.T, base string) map[string]bool {
	t.Helper()
	ids := map[string]bool{}
	after := ""
	for {
		url := base + "/v1/chat/completions?limit=100&order=asc"
		if after != "" {
			url += "&after=" + after
		}
		code, b := httpDo(t, "GET", url, "")
		if code != 200 {
			t.Fatalf("list: %d %s", code, b)
		}
		var page struct {
			Data []struct {
				ID            string            `json:"id"`
				InputMessages []json.RawMessage `json:"input_messages"`
				Choices       []json.RawMessage `json:"choices"`
			} `json:"data"`
			HasMore bool   `json:"has_more"`
			LastID  string `json:"last_id"`
		}
		if err := json.Unmarshal(b, &page); err != nil {
			t.Fatalf("list: %v: %s", err, b)
		}
		for _, d := range page.Data {
			if d.ID == "" || len(d.InputMessages) == 0 || len(d.Choices) == 0 {
				t.Fatalf("a stored completion is incomplete: %+v", d)
			}
			ids[d.ID] = true
		}
		if !page.HasMore {
			return ids
		}
		after = page.LastID
	}
}

// TestStoredCompletionsSurviveRestart: completions and registered models
// written through one server process are there after a restart on the same
// SQLite files, read with openai-go.
func TestStoredCompletionsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	double := bedrocktest.New(t, bedrocktest.Options{})
	cfg := writeFile(t, "config.yaml", notebookConfig)
	env := []string{"AWS_BEARER_TOKEN_BEDROCK=" + bedrocktest.DefaultKey, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL(), "SQLITE_STORE_DIR=" + dir}
	srv := startServer(t, env, cfg)
	client := newClient(srv.URL)
	ctx := t.Context()

	c1, err := client.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: modelID,
		Messages: []oai.ChatCompletionMessageParamUnion{oai.SystemMessage("be brief"), oai.UserMessage("What is Bedrock?")}})
	if err != nil {
		t.Fatal(err)
	}
	st := client.Chat.Completions.NewStreaming(ctx, oai.ChatCompletionNewParams{Model: modelID,
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("Stream please")}})
	var acc oai.ChatCompletionAccumulator
	for st.Next() {
		acc.AddChunk(st.Current())
	}
	if err := st.Err(); err != nil {
		t.Fatal(err)
	}
	code, b := httpDo(t, "POST", srv.URL+"/v1/models", `{"model_id":"my-gpt","provider_id":"bedrock","provider_model_id":"openai.gpt-oss-120b-1:0"}`)
	if code != 200 {
		t.Fatalf("register: %d %s", code, b)
	}
	eventually(t, 10*time.Second, "both completions stored", func() bool { return len(storedIDs(t, srv.URL)) == 2 })
	srv.Stop(t)

	if _, err := os.Stat(filepath.Join(dir, "sql_store.db")); err != nil {
		t.Errorf("the inference store is not in SQLITE_STORE_DIR: %v", err)
	}
	srv = startServer(t, env, cfg)
	client = newClient(srv.URL)
	got, err := client.Chat.Completions.Get(ctx, c1.ID)
	if err != nil {
		t.Fatalf("get after restart: %v", err)
	}
	if got.Choices[0].Message.Content != c1.Choices[0].Message.Content || got.Model != modelID {
		t.Errorf("stored completion = %+v, want %+v", got.Choices, c1.Choices)
	}
	streamed, err := client.Chat.Completions.Get(ctx, acc.ID)
	if err != nil {
		t.Fatalf("get streamed: %v", err)
	}
	if streamed.Choices[0].Message.Content != acc.Choices[0].Message.Content {
		t.Errorf("streamed completion stored as %q, client saw %q", streamed.Choices[0].Message.Content, acc.Choices[0].Message.Content)
	}
	page, err := client.Chat.Completions.List(ctx, oai.ChatCompletionListParams{Limit: oai.Int(1), Order: oai.ChatCompletionListParamsOrderAsc})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Data) != 1 || page.Data[0].ID != c1.ID || !page.HasMore {
		t.Errorf("first page = %d items, has_more %v", len(page.Data), page.HasMore)
	}
	all := client.Chat.Completions.ListAutoPaging(ctx, oai.ChatCompletionListParams{Limit: oai.Int(1)})
	n := 0
	for all.Next() {
		n++
	}
	if err := all.Err(); err != nil || n != 2 {
		t.Errorf("auto-paging listed %d (%v), want 2", n, err)
	}
	m, err := client.Models.Get(ctx, "my-gpt")
	if err != nil || m.ID != "my-gpt" {
		t.Errorf("registered model after restart: %v %v", m, err)
	}
	if _, err := client.Chat.Completions.New(ctx, oai.ChatCompletionNewParams{Model: "my-gpt",
		Messages: []oai.ChatCompletionMessageParamUnion{oai.UserMessage("hi")}}); err != nil {
		t.Errorf("chat with the registered model: %v", err)
	}
	var upstream string
	for _, r := range double.Requests() {
		if r.Chat != nil {
			upstream = r.Chat.Model
		}
	}
	if upstream != "openai.gpt-oss-120b-1:0" {
		t.Errorf("upstream model for my-gpt = %q", upstream)
	}
}

// burst sends n chat completions from conc goroutines until stop closes and
// returns the ids the server acknowledged (a 200 with a body) and when.
func burst(t *testing.T, base string, conc int, stop <-chan struct{}) map[string]time.Time {
	var mu sync.Mutex
	acked := map[string]time.Time{}
	var wg sync.WaitGroup
	for w := range conc {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"burst %d-%d"}]}`, modelID, w, i)
				req, _ := http.NewRequest("POST", base+"/v1/chat/completions", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					return // the server is gone
				}
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				var c struct {
					ID string `json:"id"`
				}
				if resp.StatusCode == 200 && json.Unmarshal(b, &c) == nil && c.ID != "" {
					mu.Lock()
					acked[c.ID] = time.Now()
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	return acked
}

// TestStoreCrashAndGracefulStop: kill -9 during a burst loses at most the
// completions acknowledged within the flush window, and the store reopens
// clean; SIGTERM during a burst loses nothing.
func TestStoreCrashAndGracefulStop(t *testing.T) {
	dir := t.TempDir()
	double := bedrocktest.New(t, bedrocktest.Options{})
	cfg := writeFile(t, "config.yaml", notebookConfig)
	env := []string{"AWS_BEARER_TOKEN_BEDROCK=" + bedrocktest.DefaultKey, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL(), "SQLITE_STORE_DIR=" + dir}

	t.Run("kill -9", func(t *testing.T) {
		srv := startServer(t, env, cfg)
		stop := make(chan struct{})
		var acked map[string]time.Time
		done := make(chan struct{})
		go func() { acked = burst(t, srv.URL, 4, stop); close(done) }()
		started := time.Now()
		eventually(t, 20*time.Second, "burst under way", func() bool { return len(storedIDs(t, srv.URL)) >= 50 })
		// Let the burst run well past the flush window, so that most of
		// what was acknowledged must have been stored before the kill.
		<-time.After(time.Until(started.Add(3 * storeFlushWindow)))
		srv.Kill(t)
		killedAt := time.Now()
		close(stop)
		<-done

		srv = startServer(t, env, cfg)
		stored := storedIDs(t, srv.URL) // every record parses and is complete
		var missingOld, missing int
		for id, at := range acked {
			if stored[id] {
				continue
			}
			missing++
			if killedAt.Sub(at) > storeFlushWindow {
				missingOld++
			}
		}
		t.Logf("acknowledged %d, stored %d, missing %d (all within the last %s)", len(acked), len(stored), missing, storeFlushWindow)
		if len(acked)-missing < len(acked)/2 {
			t.Errorf("only %d of %d acknowledged completions were stored: the burst did not outlast the flush window", len(acked)-missing, len(acked))
		}
		if missingOld > 0 {
			t.Errorf("%d completions acknowledged more than %s before the kill are missing", missingOld, storeFlushWindow)
		}
		srv.Stop(t)
	})

	t.Run("SIGTERM", func(t *testing.T) {
		srv := startServer(t, env, cfg)
		before := storedIDs(t, srv.URL)
		stop := make(chan struct{})
		var acked map[string]time.Time
		done := make(chan struct{})
		go func() { acked = burst(t, srv.URL, 4, stop); close(done) }()
		eventually(t, 20*time.Second, "burst under way", func() bool { return len(storedIDs(t, srv.URL)) >= len(before)+50 })
		srv.Stop(t)
		close(stop)
		<-done

		srv = startServer(t, env, cfg)
		stored := storedIDs(t, srv.URL)
		lost := 0
		for id := range acked {
			if !stored[id] {
				lost++
			}
		}
		if lost > 0 {
			t.Errorf("a graceful stop lost %d of %d acknowledged completions", lost, len(acked))
		}
		t.Logf("SIGTERM during the burst: %d acknowledged, all stored", len(acked))
	})
}

// TestStorageLlamaStackClient runs e2e/js/storage.test.mjs (the
// llama-stack-client npm package: stored completions, model registration).
func TestStorageLlamaStackClient(t *testing.T) {
	_, srv := notebookServer(t, bedrocktest.Options{})
	dir := filepath.Join(repoRoot(), "e2e", "js")
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "llama-stack-client-v0-3")); err != nil {
		if os.Getenv("LLAMA_E2E_SKIP_JS") == "1" {
			t.Skip("LLAMA_E2E_SKIP_JS=1 and e2e/js/node_modules is incomplete")
		}
		t.Fatalf("e2e/js/node_modules is incomplete: run `npm ci` in e2e/js (make test does)")
	}
	runSuite(t, dir, []string{"LLAMA_STACK_BASE_URL=" + srv.URL, "MODEL_ID=" + modelID}, "node", "--test", "--test-concurrency=1", "storage.test.mjs")
}

// postgresConfig is the notebook's config with both stores on PostgreSQL,
// named the Llama Stack way.
const postgresConfig = notebookConfig + `
storage:
  backends:
    kv_default:
      type: kv_postgres
      host: ${env.POSTGRES_HOST}
      port: ${env.POSTGRES_PORT}
      db: ${env.POSTGRES_DB}
      user: ${env.POSTGRES_USER}
      password: ${env.POSTGRES_PASSWORD:=}
    sql_default:
      type: sql_postgres
      host: ${env.POSTGRES_HOST}
      port: ${env.POSTGRES_PORT}
      db: ${env.POSTGRES_DB}
      user: ${env.POSTGRES_USER}
      password: ${env.POSTGRES_PASSWORD:=}
  stores:
    metadata:
      backend: kv_default
      namespace: registry
    inference:
      backend: sql_default
      table_name: inference_store
`

// postgresEnv turns LLAMA_TEST_POSTGRES_DSN into the POSTGRES_* variables
// of postgresConfig, with a fresh database per test so runs do not see
// each other's state; it skips the test when no server is configured.
func postgresEnv(t *testing.T) []string {
	t.Helper()
	dsn := os.Getenv("LLAMA_TEST_POSTGRES_DSN")
	if dsn == "" {
		t.Skip("LLAMA_TEST_POSTGRES_DSN is not set (make test starts PostgreSQL and sets it)")
	}
	return freshPostgresDB(t, dsn)
}

// TestReplicasSharePostgres: two server processes on one PostgreSQL see one
// registry and one inference store.
func TestReplicasSharePostgres(t *testing.T) {
	pg := postgresEnv(t)
	double := bedrocktest.New(t, bedrocktest.Options{})
	cfg := writeFile(t, "config.yaml", postgresConfig)
	env := append([]string{"AWS_BEARER_TOKEN_BEDROCK=" + bedrocktest.DefaultKey, "AWS_ENDPOINT_URL_BEDROCK_RUNTIME=" + double.URL()}, pg...)
	a := startServer(t, env, cfg)
	b := startServer(t, env, cfg)

	code, body := httpDo(t, "POST", a.URL+"/v1/models", `{"model_id":"shared-model","provider_id":"bedrock","provider_model_id":"openai.gpt-oss-120b-1:0"}`)
	if code != 200 {
		t.Fatalf("register on A: %d %s", code, body)
	}
	start := time.Now()
	eventually(t, 10*time.Second, "replica B serves the model registered on A", func() bool {
		code, _ := httpDo(t, "GET", b.URL+"/v1/models/shared-model", "")
		return code == 200
	})
	t.Logf("replica B saw the registration after %s", time.Since(start).Round(time.Millisecond))
	if code, body := httpDo(t, "POST", b.URL+"/v1/chat/completions", `{"model":"shared-model","messages":[{"role":"user","content":"hi"}]}`); code != 200 {
		t.Fatalf("chat on B with the model registered on A: %d %s", code, body)
	}
	if code, _ := httpDo(t, "POST", b.URL+"/v1/models", `{"model_id":"shared-model","provider_id":"bedrock"}`); code != 409 {
		t.Errorf("register the same id on B: %d, want 409", code)
	}

	var ids []string
	for i, srv := range []*server{a, b, a, b} {
		code, body := httpDo(t, "POST", srv.URL+"/v1/chat/completions", fmt.Sprintf(`{"model":%q,"messages":[{"role":"user","content":"replica question %d"}]}`, modelID, i))
		var c struct {
			ID string `json:"id"`
		}
		if code != 200 || json.Unmarshal(body, &c) != nil {
			t.Fatalf("chat %d: %d %s", i, code, body)
		}
		ids = append(ids, c.ID)
	}
	for _, srv := range []*server{a, b} {
		eventually(t, 10*time.Second, "every completion listed by "+srv.URL, func() bool {
			stored := storedIDs(t, srv.URL)
			for _, id := range ids {
				if !stored[id] {
					return false
				}
			}
			return true
		})
		for _, id := range ids {
			if code, body := httpDo(t, "GET", srv.URL+"/v1/chat/completions/"+id, ""); code != 200 {
				t.Errorf("get %s from %s: %d %s", id, srv.URL, code, body)
			}
		}
	}

	if code, _ := httpDo(t, "DELETE", b.URL+"/v1/models/shared-model", ""); code != 204 {
		t.Fatalf("unregister on B: %d", code)
	}
	eventually(t, 10*time.Second, "replica A drops the model unregistered on B", func() bool {
		code, _ := httpDo(t, "GET", a.URL+"/v1/models/shared-model", "")
		return code == 404
	})
	var health map[string]any
	if code := getJSON(t, a.URL+"/v1/health", &health); code != 200 || health["status"] != "OK" {
		t.Errorf("health: %d %v", code, health)
	}
}
