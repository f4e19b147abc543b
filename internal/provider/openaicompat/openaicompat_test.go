package openaicompat

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/provider"
	"github.com/llama-stack-go/llama-stack-go/internal/provider/openaicompat/openaitest"
)

func bearer(key string) func(r *http.Request, d provider.Data) error {
	return func(r *http.Request, d provider.Data) error {
		if k := d["test_api_key"]; k != "" {
			key = k
		}
		r.Header.Set("Authorization", "Bearer "+key)
		return nil
	}
}

func TestClientRoutes(t *testing.T) {
	up := openaitest.New(t, openaitest.Options{Key: "k", Scheme: "Bearer"})
	c := New(Options{ProviderID: "p", BaseURL: up.URL() + "/v1", Authorize: bearer("k"), Completions: true, Embeddings: true, ListModels: true})
	ctx := t.Context()

	models, err := c.ListModels(ctx)
	if err != nil || len(models) != 2 || models[0].ID != "test-chat" {
		t.Fatalf("ListModels = %v, %v", models, err)
	}
	resp, err := c.Chat(ctx, &provider.Request{Model: "test-chat", ClientModel: "p/test-chat", Raw: []byte(`{"model":"p/test-chat","messages":[{"role":"user","content":"hi there"}]}`)})
	if err != nil || resp.Model != "p/test-chat" || !strings.Contains(string(resp.Raw), `"model":"p/test-chat"`) {
		t.Fatalf("Chat = %+v, %v", resp, err)
	}
	cmp, err := c.Complete(ctx, &provider.CompletionRequest{Model: "test-chat", ClientModel: "p/test-chat", Raw: []byte(`{"model":"x","prompt":"say"}`)})
	if err != nil || cmp.Choices[0].Text != "echo: say" || cmp.Model != "p/test-chat" {
		t.Fatalf("Complete = %+v, %v", cmp, err)
	}
	st, err := c.CompleteStream(ctx, &provider.CompletionRequest{Model: "test-chat", ClientModel: "p/test-chat", Raw: []byte(`{"model":"x","prompt":"a b c","stream":true}`)})
	if err != nil {
		t.Fatal(err)
	}
	var text strings.Builder
	for {
		ch, err := st.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ch.Model != "p/test-chat" || !strings.Contains(string(ch.Raw), `"model":"p/test-chat"`) {
			t.Errorf("chunk model: %s", ch.Raw)
		}
		text.WriteString(ch.Choices[0].Text)
	}
	st.Close()
	if text.String() != "echo: a b c" {
		t.Errorf("streamed text %q", text.String())
	}
	emb, err := c.Embed(ctx, &provider.EmbedRequest{Model: "test-embed", ClientModel: "p/test-embed", Raw: []byte(`{"model":"x","input":["a","b"]}`)})
	if err != nil || len(emb.Data) != 2 || emb.Model != "p/test-embed" {
		t.Fatalf("Embed = %+v, %v", emb, err)
	}
	// A per-request key replaces the server's.
	_, err = c.Chat(ctx, &provider.Request{Model: "test-chat", ClientModel: "c", Raw: []byte(`{"model":"c","messages":[{"role":"user","content":"x"}]}`), Data: provider.Data{"test_api_key": "wrong"}})
	var pe *provider.Error
	if !errors.As(err, &pe) || pe.StatusCode != 401 {
		t.Fatalf("caller key: %v", err)
	}
	reqs := up.Requests()
	if got := reqs[len(reqs)-1].Header.Get("Authorization"); got != "Bearer wrong" {
		t.Errorf("caller key not sent: %q", got)
	}
}

func TestClientUnsupported(t *testing.T) {
	c := New(Options{ProviderID: "p", BaseURL: "http://127.0.0.1:1"})
	ctx := t.Context()
	if _, err := c.Embed(ctx, &provider.EmbedRequest{}); !errors.Is(err, provider.ErrUnsupported) {
		t.Errorf("Embed: %v", err)
	}
	if _, err := c.Complete(ctx, &provider.CompletionRequest{}); !errors.Is(err, provider.ErrUnsupported) {
		t.Errorf("Complete: %v", err)
	}
	if _, err := c.ListModels(ctx); !errors.Is(err, provider.ErrUnsupported) {
		t.Errorf("ListModels: %v", err)
	}
}

func TestClientQueryAndHeader(t *testing.T) {
	up := openaitest.New(t, openaitest.Options{Prefix: "/openai/v1", AuthHeader: "api-key", Key: "az", Query: map[string]string{"api-version": "2024-10-21"}})
	c := New(Options{ProviderID: "azure", BaseURL: up.URL() + "/openai/v1", Query: url.Values{"api-version": {"2024-10-21"}},
		Authorize: func(r *http.Request, _ provider.Data) error { r.Header.Set("api-key", "az"); return nil }})
	resp, err := c.Chat(t.Context(), &provider.Request{Model: "gpt", ClientModel: "azure/gpt", Raw: []byte(`{"model":"x","messages":[{"role":"user","content":"hi"}]}`)})
	if err != nil || *resp.Choices[0].Message.Content != "echo: hi" {
		t.Fatalf("%+v %v", resp, err)
	}
}
