package responses

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"

	"github.com/llama-stack-go/llama-stack-go/internal/openai"
)

func TestConversationResponses(t *testing.T) {
	h := newHarness(t, func(n int, req *openai.ChatCompletionRequest) reply { return reply{text: "reply " + strconv.Itoa(n)} })
	items, err := DecodeItems(json.RawMessage(`[{"role":"system","content":"be nice"},{"role":"user","content":"hello"}]`), "items")
	if err != nil {
		t.Fatal(err)
	}
	c, err := h.e.CreateConversation(t.Context(), items, map[string]string{"topic": "t"}, "")
	if err != nil {
		t.Fatal(err)
	}
	if !validConversationID(c.ID) || c.Object != "conversation" || c.Metadata["topic"] != "t" {
		t.Fatalf("conversation = %+v", c)
	}
	r1, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"first","conversation":"`+c.ID+`"}`)
	r2, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"second","conversation":{"id":"`+c.ID+`"},"store":false}`)
	if r1.Conversation == nil || r1.Conversation.ID != c.ID || r2.Conversation.ID != c.ID {
		t.Errorf("conversation not echoed")
	}
	msgs := h.p.requests()[1].Messages
	var got []string
	for _, m := range msgs {
		got = append(got, m.Role+":"+strings.Trim(string(m.Content), `"`))
	}
	if want := "system:be nice|user:hello|user:first|assistant:reply 0|user:second"; strings.Join(got, "|") != want {
		t.Errorf("messages = %s, want %s", strings.Join(got, "|"), want)
	}
	list, err := h.e.ListItems(t.Context(), c.ID, ListParams{Order: "asc"}, "")
	if err != nil {
		t.Fatal(err)
	}
	var texts []string
	for _, it := range list.Data {
		texts = append(texts, it.Role+":"+it.Content[0].Text)
	}
	if want := "system:be nice|user:hello|user:first|assistant:reply 0|user:second|assistant:reply 1"; strings.Join(texts, "|") != want {
		t.Errorf("items = %s", strings.Join(texts, "|"))
	}
	// Default order is newest first.
	desc, _ := h.e.ListItems(t.Context(), c.ID, ListParams{Limit: 1}, "")
	if len(desc.Data) != 1 || desc.Data[0].Content[0].Text != "reply 1" || !desc.HasMore {
		t.Errorf("desc page = %s", mustJSON(t, desc))
	}
}

func TestConversationItemsPaging(t *testing.T) {
	h := newHarness(t, answer("x"))
	c, err := h.e.CreateConversation(t.Context(), nil, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	var added []string
	for batch := range 3 {
		var raw []string
		for i := range 10 {
			raw = append(raw, `{"role":"user","content":"m`+strconv.Itoa(batch*10+i)+`"}`)
		}
		items, err := DecodeItems(json.RawMessage("["+strings.Join(raw, ",")+"]"), "items")
		if err != nil {
			t.Fatal(err)
		}
		out, err := h.e.AddItems(t.Context(), c.ID, items, "")
		if err != nil {
			t.Fatal(err)
		}
		if len(out.Data) != 10 || *out.FirstID != out.Data[0].ID {
			t.Fatalf("added = %s", mustJSON(t, out))
		}
		for _, it := range out.Data {
			added = append(added, it.ID)
		}
	}
	var seen []string
	after := ""
	pages := 0
	for {
		page, err := h.e.ListItems(t.Context(), c.ID, ListParams{Order: "asc", After: after, Limit: 7}, "")
		if err != nil {
			t.Fatal(err)
		}
		pages++
		for _, it := range page.Data {
			seen = append(seen, it.ID)
		}
		if !page.HasMore {
			break
		}
		after = *page.LastID
	}
	if strings.Join(seen, ",") != strings.Join(added, ",") || pages != 5 {
		t.Errorf("paged %d pages: %v, want %v", pages, seen, added)
	}
	// One item: get, delete.
	it, err := h.e.GetItem(t.Context(), c.ID, added[3], "")
	if err != nil || it.Content[0].Text != "m3" {
		t.Fatalf("get item = %v, %v", it, err)
	}
	if _, err := h.e.DeleteItem(t.Context(), c.ID, added[3], ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.GetItem(t.Context(), c.ID, added[3], ""); err == nil {
		t.Errorf("deleted item still there")
	}
	// More than 20 at once is refused.
	var many []Item
	for range 21 {
		many = append(many, Item{Type: TypeMessage, Role: "user", Content: []Part{{Type: PartInputText, Text: "x"}}})
	}
	if _, err := h.e.AddItems(t.Context(), c.ID, many, ""); err == nil || !strings.Contains(err.Error(), "at most 20") {
		t.Errorf("21 items: %v", err)
	}
	// Update, delete.
	u, err := h.e.UpdateConversation(t.Context(), c.ID, map[string]string{"a": "b"}, "")
	if err != nil || u.Metadata["a"] != "b" {
		t.Fatalf("update = %v, %v", u, err)
	}
	if g, _ := h.e.GetConversation(t.Context(), c.ID, ""); g.Metadata["a"] != "b" {
		t.Errorf("update not stored")
	}
	d, err := h.e.DeleteConversation(t.Context(), c.ID, "")
	if err != nil || d.Object != "conversation.deleted" || !d.Deleted {
		t.Fatalf("delete = %v, %v", d, err)
	}
	if _, err := h.e.ListItems(t.Context(), c.ID, ListParams{}, ""); err == nil {
		t.Errorf("items of a deleted conversation listed")
	}
	if n := h.st.count("conversation_item"); n != 0 {
		t.Errorf("%d items left after delete", n)
	}
	owned, err := h.e.CreateConversation(t.Context(), nil, nil, "alice")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.e.GetConversation(t.Context(), owned.ID, "bob"); err == nil {
		t.Errorf("bob read alice's conversation")
	}
	if _, err := h.e.ListItems(t.Context(), owned.ID, ListParams{}, "bob"); err == nil {
		t.Errorf("bob listed alice's items")
	}
}

func TestConversationFunctionCalls(t *testing.T) {
	// A response in a conversation that ends in a function call; the next
	// one sends the output; the model sees the call and its output once.
	h := newHarness(t, func(n int, req *openai.ChatCompletionRequest) reply {
		if n == 0 {
			return reply{calls: []openai.ToolCall{{ID: "call_0", Type: "function", Function: openai.FunctionCall{Name: "get_weather", Arguments: `{"city":"Oslo"}`}}}}
		}
		return reply{text: "cold"}
	})
	c, _ := h.e.CreateConversation(t.Context(), nil, nil, "")
	r1, _ := mustCreate(t, h, `{"model":"`+testModel+`","input":"weather?","conversation":"`+c.ID+`","tools":[`+weatherTool+`]}`)
	fc := r1.Output[0]
	// The client sends the call item back as well as the output, as the
	// SDK samples do.
	fcJSON := mustJSON(t, fc)
	mustCreate(t, h, `{"model":"`+testModel+`","conversation":"`+c.ID+`","input":[`+fcJSON+`,{"type":"function_call_output","call_id":"`+fc.CallID+`","output":"-5C"}]}`)
	msgs := h.p.requests()[1].Messages
	if len(msgs) != 3 || len(msgs[1].ToolCalls) != 1 || msgs[2].ToolCallID != msgs[1].ToolCalls[0].ID {
		t.Errorf("messages = %s", mustJSON(t, msgs))
	}
	list, _ := h.e.ListItems(t.Context(), c.ID, ListParams{Order: "asc"}, "")
	if got := strings.Join(types(list.Data), ","); got != "message,function_call,function_call_output,message" {
		t.Errorf("conversation items = %s", got)
	}
}
