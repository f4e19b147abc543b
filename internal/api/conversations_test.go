package api

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

var convIDRE = regexp.MustCompile(`^conv_[0-9a-f]{48}$`)

type convObj struct {
	ID        string            `json:"id"`
	Object    string            `json:"object"`
	CreatedAt int64             `json:"created_at"`
	Metadata  map[string]string `json:"metadata"`
}

type itemPage struct {
	Object  string           `json:"object"`
	Data    []map[string]any `json:"data"`
	FirstID string           `json:"first_id"`
	LastID  string           `json:"last_id"`
	HasMore bool             `json:"has_more"`
}

func itemText(it map[string]any) string {
	c, _ := it["content"].([]any)
	if len(c) == 0 {
		return ""
	}
	p, _ := c[0].(map[string]any)
	s, _ := p["text"].(string)
	return s
}

func TestConversationsCRUDAndPaging(t *testing.T) {
	g := newRespGateway(t, true)
	var c convObj
	status, b := rdo(t, "POST", g.URL+"/v1/conversations", `{"metadata":{"topic":"demo"},"items":[{"type":"message","role":"user","content":"m0"}]}`, &c)
	if status != 200 || !convIDRE.MatchString(c.ID) || c.Object != "conversation" || c.Metadata["topic"] != "demo" || c.CreatedAt == 0 {
		t.Fatalf("create: %d %s", status, b)
	}
	// 24 more items in two calls; then 25 responses' worth is not needed:
	// paging is over the stored items.
	for batch := range 2 {
		var items []string
		for i := range 12 {
			items = append(items, fmt.Sprintf(`{"role":"user","content":"m%d"}`, 1+batch*12+i))
		}
		var added itemPage
		if status, b := rdo(t, "POST", g.URL+"/v1/conversations/"+c.ID+"/items", `{"items":[`+strings.Join(items, ",")+`]}`, &added); status != 200 || len(added.Data) != 12 || added.Object != "list" {
			t.Fatalf("add: %d %s", status, b)
		}
	}
	// Page through all 25 with after, oldest first.
	var texts []string
	after, pages := "", 0
	for {
		url := g.URL + "/v1/conversations/" + c.ID + "/items?order=asc&limit=10"
		if after != "" {
			url += "&after=" + after
		}
		var page itemPage
		if status, b := rdo(t, "GET", url, "", &page); status != 200 {
			t.Fatalf("list: %d %s", status, b)
		}
		pages++
		for _, it := range page.Data {
			texts = append(texts, itemText(it))
		}
		if page.FirstID != page.Data[0]["id"] || page.LastID != page.Data[len(page.Data)-1]["id"] {
			t.Errorf("first/last ids do not match the page")
		}
		if !page.HasMore {
			break
		}
		after = page.LastID
	}
	if pages != 3 || len(texts) != 25 || texts[0] != "m0" || texts[24] != "m24" {
		t.Fatalf("%d pages, %d items: %v", pages, len(texts), texts)
	}
	// Default order: newest first, 20 a page.
	var page itemPage
	rdo(t, "GET", g.URL+"/v1/openai/v1/conversations/"+c.ID+"/items", "", &page)
	if len(page.Data) != 20 || !page.HasMore || itemText(page.Data[0]) != "m24" {
		t.Errorf("default page: %d items, first %q", len(page.Data), itemText(page.Data[0]))
	}
	// One item.
	id := page.Data[0]["id"].(string)
	var it map[string]any
	if status, b := rdo(t, "GET", g.URL+"/v1/conversations/"+c.ID+"/items/"+id, "", &it); status != 200 || itemText(it) != "m24" || it["type"] != "message" || it["status"] != "completed" {
		t.Fatalf("get item: %d %s", status, b)
	}
	var after1 convObj
	if status, b := rdo(t, "DELETE", g.URL+"/v1/conversations/"+c.ID+"/items/"+id, "", &after1); status != 200 || after1.ID != c.ID {
		t.Fatalf("delete item: %d %s", status, b)
	}
	if status, _ := rdo(t, "GET", g.URL+"/v1/conversations/"+c.ID+"/items/"+id, "", nil); status != 404 {
		t.Errorf("deleted item: %d", status)
	}
	// Update metadata.
	var up convObj
	if status, b := rdo(t, "POST", g.URL+"/v1/conversations/"+c.ID, `{"metadata":{"topic":"new"}}`, &up); status != 200 || up.Metadata["topic"] != "new" {
		t.Fatalf("update: %d %s", status, b)
	}
	var got convObj
	rdo(t, "GET", g.URL+"/v1/conversations/"+c.ID, "", &got)
	if got.Metadata["topic"] != "new" || got.CreatedAt != c.CreatedAt {
		t.Errorf("get = %+v", got)
	}
	// Errors.
	for _, tt := range []struct {
		method, path, body string
		status             int
	}{
		{"GET", "/v1/conversations/conv_nope", "", 404},
		{"GET", "/v1/conversations/" + c.ID + "/items/msg_nope", "", 404},
		{"GET", "/v1/conversations/" + c.ID + "/items?limit=500", "", 400},
		{"GET", "/v1/conversations/" + c.ID + "/items?order=sideways", "", 400},
		{"POST", "/v1/conversations/" + c.ID + "/items", `{"items":[{"type":"web_search_call"}]}`, 400},
		{"POST", "/v1/conversations/" + c.ID + "/items", `{}`, 400},
		{"POST", "/v1/conversations", `{"items":[` + strings.Repeat(`{"role":"user","content":"x"},`, 20) + `{"role":"user","content":"x"}]}`, 400},
	} {
		if status, b := rdo(t, tt.method, g.URL+tt.path, tt.body, nil); status != tt.status {
			t.Errorf("%s %s: %d, want %d: %s", tt.method, tt.path, status, tt.status, b)
		}
	}
	// Delete.
	var del map[string]any
	if status, b := rdo(t, "DELETE", g.URL+"/v1/conversations/"+c.ID, "", &del); status != 200 || del["object"] != "conversation.deleted" || del["deleted"] != true {
		t.Fatalf("delete: %d %s", status, b)
	}
	if status, _ := rdo(t, "GET", g.URL+"/v1/conversations/"+c.ID+"/items", "", nil); status != 404 {
		t.Errorf("items of a deleted conversation: %d", status)
	}
}

// TestConversationWithResponses runs more than 20 items' worth of turns in
// a conversation and checks the model sees the history and the items
// page with after.
func TestConversationWithResponses(t *testing.T) {
	g := newRespGateway(t, true)
	var c convObj
	rdo(t, "POST", g.URL+"/v1/conversations", `{}`, &c)
	var r respObj
	rdo(t, "POST", g.URL+"/v1/responses", `{"model":"`+claude+`","conversation":"`+c.ID+`","input":"my name is Grace. hello"}`, &r)
	for i := range 10 {
		if status, b := rdo(t, "POST", g.URL+"/v1/responses", `{"model":"`+claude+`","conversation":{"id":"`+c.ID+`"},"input":"turn `+fmt.Sprint(i)+`"}`, &r); status != 200 {
			t.Fatalf("turn %d: %d %s", i, status, b)
		}
	}
	frames := stream(t, g.URL, `{"model":"`+claude+`","conversation":"`+c.ID+`","input":"what is my name?","stream":true}`)
	final := frames[len(frames)-1].Data["response"].(map[string]any)
	if final["conversation"].(map[string]any)["id"] != c.ID {
		t.Errorf("conversation not echoed: %v", final["conversation"])
	}
	var all []string
	after := ""
	for {
		url := g.URL + "/v1/conversations/" + c.ID + "/items?order=asc"
		if after != "" {
			url += "&after=" + after
		}
		var page itemPage
		rdo(t, "GET", url, "", &page)
		for _, it := range page.Data {
			all = append(all, it["role"].(string)+":"+itemText(it))
		}
		if !page.HasMore {
			break
		}
		after = page.LastID
	}
	if len(all) != 24 || all[0] != "user:my name is Grace. hello" || all[23] != "assistant:Your name is Grace." {
		t.Errorf("%d items: first %q last %q", len(all), all[0], all[len(all)-1])
	}
}
