package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat"
	"github.com/llama-stack-go/llama-stack-go/internal/registry"
	"github.com/llama-stack-go/llama-stack-go/internal/store"
	"github.com/llama-stack-go/llama-stack-go/internal/store/sqlite"
)

// storedGateway is a handler over an upstream double with the metadata and
// inference stores on a SQLite file.
type storedGateway struct {
	url    string
	db     *sqlite.DB
	writer *store.Writer
}

func newStoredGateway(t *testing.T, upstream http.HandlerFunc) *storedGateway {
	t.Helper()
	up := httptest.NewServer(upstream)
	t.Cleanup(up.Close)
	reg := registry.New(map[string]provider.Provider{
		"up":    openaicompat.New(openaicompat.Options{ProviderID: "up", BaseURL: up.URL + "/v1", HTTPClient: up.Client()}),
		"other": openaicompat.New(openaicompat.Options{ProviderID: "other", BaseURL: up.URL + "/v1", HTTPClient: up.Client()}),
	})
	if err := reg.Register(registry.Model{Identifier: modelID, ProviderID: "up", ProviderResourceID: "m-1:0"}); err != nil {
		t.Fatal(err)
	}
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "store.db"), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	w := store.NewWriter(db, store.WriterOptions{FlushInterval: time.Millisecond})
	t.Cleanup(func() {
		_ = w.Close(context.Background())
		_ = db.Close()
	})
	gw := httptest.NewServer(NewHandler(Options{Registry: reg, Version: "test",
		Models:    registry.NewPersistent(reg, db, "registry", nil),
		Inference: InferenceStore{Records: db, Recorder: w},
		Stores:    map[string]StoreHealth{"metadata": db, "inference": db},
	}))
	t.Cleanup(gw.Close)
	return &storedGateway{url: gw.URL, db: db, writer: w}
}

func doJSON(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var m map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatalf("%s %s: not JSON: %s", method, url, b)
		}
	}
	return resp.StatusCode, m
}

// waitStored polls until the store holds n chat completions.
func (g *storedGateway) waitStored(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		recs, _, err := g.db.ListRecords(t.Context(), store.ListQuery{Kind: store.KindChatCompletion, Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d completions stored, want %d", len(recs), n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRegisterAndUnregisterModel(t *testing.T) {
	var lastModel atomic.Value
	g := newStoredGateway(t, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		lastModel.Store(body["model"])
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, completionJSON(body["model"].(string)))
	})
	code, m := doJSON(t, "POST", g.url+"/v1/models", `{"model_id":"my-model","provider_id":"other","provider_model_id":"vendor/real-1","metadata":{"team":"a"}}`)
	if code != 200 || m["identifier"] != "my-model" || m["provider_resource_id"] != "vendor/real-1" || m["model_type"] != "llm" || m["type"] != "model" {
		t.Fatalf("register: %d %v", code, m)
	}
	if code, m := doJSON(t, "GET", g.url+"/v1/models/my-model", ""); code != 200 || m["metadata"].(map[string]any)["team"] != "a" {
		t.Errorf("get registered: %d %v", code, m)
	}
	resp, _ := post(t, g.url, `{"model":"my-model","messages":[{"role":"user","content":"hi"}]}`)
	if resp.StatusCode != 200 || lastModel.Load() != "vendor/real-1" {
		t.Errorf("chat with registered model: %d, upstream got %v", resp.StatusCode, lastModel.Load())
	}
	tests := []struct {
		name, method, path, body string
		code                     int
		param                    string
	}{
		{"duplicate", "POST", "/v1/models", `{"model_id":"my-model","provider_id":"up"}`, 409, "model_id"},
		{"config model taken", "POST", "/v1/models", `{"model_id":"` + modelID + `","provider_id":"up"}`, 409, "model_id"},
		{"unknown provider", "POST", "/v1/models", `{"model_id":"x","provider_id":"nope"}`, 400, "provider_id"},
		{"provider needed", "POST", "/v1/models", `{"model_id":"x"}`, 400, "provider_id"},
		{"bad type", "POST", "/v1/models", `{"model_id":"x","provider_id":"up","model_type":"tts"}`, 400, "model_type"},
		{"no id", "POST", "/v1/models", `{"provider_id":"up"}`, 400, "model_id"},
		{"wrong json type", "POST", "/v1/models", `{"model_id":5}`, 400, "model_id"},
		{"unregister config model", "DELETE", "/v1/models/" + modelID, "", 400, "model_id"},
		{"unregister unknown", "DELETE", "/v1/models/nope", "", 404, "model"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, m := doJSON(t, tt.method, g.url+tt.path, tt.body)
			if code != tt.code {
				t.Fatalf("%d %v, want %d", code, m, tt.code)
			}
			e, _ := m["error"].(map[string]any)
			if e == nil || e["param"] != tt.param || e["message"] == "" {
				t.Errorf("error body %v, want param %q", m, tt.param)
			}
		})
	}
	if code, _ := doJSON(t, "DELETE", g.url+"/v1/models/my-model", ""); code != 204 {
		t.Fatalf("unregister: %d", code)
	}
	if code, _ := doJSON(t, "GET", g.url+"/v1/models/my-model", ""); code != 404 {
		t.Errorf("get after unregister: %d", code)
	}
	if _, err := g.db.Get(t.Context(), "registry/model/my-model"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("store still holds the model: %v", err)
	}
}

func TestStoredChatCompletions(t *testing.T) {
	var n atomic.Int64
	g := newStoredGateway(t, func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		i := n.Add(1)
		if body["stream"] == true {
			w.Header().Set("Content-Type", "text/event-stream")
			for _, c := range []string{chunkJSON("m-1:0", "Hel", ""), chunkJSON("m-1:0", "lo", "stop")} {
				fmt.Fprintf(w, "data: %s\n\n", strings.Replace(c, `"id":"c"`, fmt.Sprintf(`"id":"chatcmpl-%d"`, i), 1))
			}
			io.WriteString(w, "data: [DONE]\n\n")
			return
		}
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, strings.Replace(completionJSON(body["model"].(string)), "chatcmpl-1", fmt.Sprintf("chatcmpl-%d", i), 1))
	})
	for i := range 4 {
		stream := i == 3
		resp, _ := post(t, g.url, fmt.Sprintf(`{"model":"%s","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"q%d","x_extra":true}],"stream":%v}`, modelID, i, stream))
		if resp.StatusCode != 200 {
			t.Fatalf("chat %d: %d", i, resp.StatusCode)
		}
	}
	g.waitStored(t, 4)

	code, got := doJSON(t, "GET", g.url+"/v1/chat/completions/chatcmpl-1", "")
	if code != 200 || got["object"] != "chat.completion" || got["model"] != modelID {
		t.Fatalf("get: %d %v", code, got)
	}
	msgs := got["input_messages"].([]any)
	if len(msgs) != 2 || msgs[1].(map[string]any)["content"] != "q0" || msgs[1].(map[string]any)["x_extra"] != true {
		t.Errorf("input_messages = %v, want the messages as sent", msgs)
	}
	code, got = doJSON(t, "GET", g.url+"/v1/chat/completions/chatcmpl-4", "")
	choice := got["choices"].([]any)[0].(map[string]any)
	if code != 200 || choice["message"].(map[string]any)["content"] != "Hello" || choice["finish_reason"] != "stop" {
		t.Errorf("streamed completion stored as %d %v", code, got)
	}

	code, list := doJSON(t, "GET", g.url+"/v1/chat/completions?limit=3", "")
	data := list["data"].([]any)
	if code != 200 || list["object"] != "list" || len(data) != 3 || list["has_more"] != true ||
		list["first_id"] != "chatcmpl-4" || list["last_id"] != "chatcmpl-2" {
		t.Fatalf("list desc: %d %v", code, list)
	}
	code, list = doJSON(t, "GET", g.url+"/v1/chat/completions?limit=3&order=desc&after=chatcmpl-2", "")
	if data := list["data"].([]any); code != 200 || len(data) != 1 || list["has_more"] != false || list["first_id"] != "chatcmpl-1" {
		t.Errorf("list after: %d %v", code, list)
	}
	code, list = doJSON(t, "GET", g.url+"/v1/chat/completions?order=asc&model="+modelID, "")
	if data := list["data"].([]any); code != 200 || len(data) != 4 || list["first_id"] != "chatcmpl-1" {
		t.Errorf("list asc by model: %d %v", code, list)
	}
	code, list = doJSON(t, "GET", g.url+"/v1/chat/completions?model=other", "")
	if data := list["data"].([]any); code != 200 || len(data) != 0 || list["first_id"] != nil {
		t.Errorf("list other model: %d %v", code, list)
	}
	for _, bad := range []struct{ q, param string }{{"limit=0", "limit"}, {"limit=x", "limit"}, {"order=up", "order"}, {"after=nope", "after"}} {
		code, m := doJSON(t, "GET", g.url+"/v1/chat/completions?"+bad.q, "")
		if e, _ := m["error"].(map[string]any); code != 400 || e["param"] != bad.param {
			t.Errorf("?%s: %d %v", bad.q, code, m)
		}
	}
	if code, m := doJSON(t, "GET", g.url+"/v1/chat/completions/chatcmpl-99", ""); code != 404 || m["error"] == nil {
		t.Errorf("missing: %d %v", code, m)
	}
}

func TestStoreNotRecordedOnFailedStream(t *testing.T) {
	g := newStoredGateway(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "data: %s\n\n", chunkJSON("m-1:0", "Hel", ""))
		// The upstream dies mid-stream: no finish, no [DONE].
	})
	resp, _ := post(t, g.url, `{"model":"`+modelID+`","messages":[{"role":"user","content":"hi"}],"stream":true}`)
	if resp.StatusCode != 200 {
		t.Fatal(resp.StatusCode)
	}
	if err := g.writer.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if recs, _, _ := g.db.ListRecords(t.Context(), store.ListQuery{Kind: store.KindChatCompletion, Limit: 10}); len(recs) != 0 {
		t.Errorf("a broken stream was stored: %d records", len(recs))
	}
}

func TestStorageSwitchedOff(t *testing.T) {
	url, _ := newGateway(t, okUpstream)
	for _, c := range []struct{ method, path, body string }{
		{"POST", "/v1/models", `{"model_id":"x","provider_id":"up"}`},
		{"DELETE", "/v1/models/x", ""},
		{"GET", "/v1/chat/completions", ""},
		{"GET", "/v1/chat/completions/c1", ""},
	} {
		code, m := doJSON(t, c.method, url+c.path, c.body)
		if e, _ := m["error"].(map[string]any); code != 400 || e["code"] != "storage_disabled" {
			t.Errorf("%s %s: %d %v", c.method, c.path, code, m)
		}
	}
}

type downStore struct{}

func (downStore) Ping(context.Context) error {
	return fmt.Errorf("connect 127.0.0.1:5432: %w", store.ErrUnavailable)
}

func TestHealthDegraded(t *testing.T) {
	reg := registry.New(nil)
	gw := httptest.NewServer(NewHandler(Options{Registry: reg, Stores: map[string]StoreHealth{"inference": downStore{}}}))
	defer gw.Close()
	code, m := doJSON(t, "GET", gw.URL+"/v1/health", "")
	if code != 200 || m["status"] != "Degraded" || m["storage"].(map[string]any)["inference"].(map[string]any)["status"] != "Error" {
		t.Errorf("health: %d %v", code, m)
	}
}
