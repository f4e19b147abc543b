package responses

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strings"

	"github.com/llama-stack-go/llama-stack-go/internal/store"
)

// maxItemsPerAdd is OpenAI's limit on the items one call adds to a
// conversation.
const maxItemsPerAdd = 20

// itemRecordID is the record id of a conversation item: item ids are
// unique within a conversation, not across them.
func itemRecordID(convID, itemID string) string { return convID + "/" + itemID }

// CreateConversation creates a conversation with its first items.
func (e *Engine) CreateConversation(ctx context.Context, items []Item, metadata map[string]string, owner string) (*Conversation, error) {
	if e.records == nil {
		return nil, storageOff("conversations")
	}
	if err := ValidateMetadata(metadata); err != nil {
		return nil, err
	}
	if len(items) > maxItemsPerAdd {
		return nil, invalid("items", "a conversation starts with at most %d items; add the rest with POST /v1/conversations/{id}/items", maxItemsPerAdd)
	}
	now := e.now()
	c := &Conversation{ID: newID(prefixConversation), Object: "conversation", CreatedAt: now.Unix(), Metadata: map[string]string{}}
	maps.Copy(c.Metadata, metadata)
	body, err := json.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("encode conversation: %w", err)
	}
	recs := []store.Record{{Kind: store.KindConversation, ID: c.ID, SortKey: now.UnixNano(), Owner: owner, Body: body}}
	for i := range items {
		normalize(&items[i])
		b, err := json.Marshal(items[i])
		if err != nil {
			return nil, fmt.Errorf("encode item: %w", err)
		}
		recs = append(recs, store.Record{Kind: store.KindConversationItem, ID: itemRecordID(c.ID, items[i].ID), Parent: c.ID, SortKey: now.UnixNano() + int64(i), Owner: owner, Body: b})
	}
	if err := e.records.PutRecords(ctx, recs...); err != nil {
		return nil, storeError("store conversation", err)
	}
	return c, nil
}

// getConversation reads a conversation of owner.
func (e *Engine) getConversation(ctx context.Context, id, owner, param string) (*Conversation, error) {
	if e.records == nil {
		return nil, storageOff("conversations")
	}
	if !validConversationID(id) {
		return nil, notFound(param, "Conversation with id '%s' not found.", truncate(id, 80))
	}
	rec, err := e.records.GetRecord(ctx, store.KindConversation, id)
	if errors.Is(err, store.ErrNotFound) || (err == nil && !owns(rec, owner)) {
		return nil, notFound(param, "Conversation with id '%s' not found.", truncate(id, 80))
	}
	if err != nil {
		return nil, storeError("read conversation", err)
	}
	var c Conversation
	if err := json.Unmarshal(rec.Body, &c); err != nil {
		return nil, fmt.Errorf("decode conversation %s: %w", id, err)
	}
	return &c, nil
}

// GetConversation returns a conversation.
func (e *Engine) GetConversation(ctx context.Context, id, owner string) (*Conversation, error) {
	return e.getConversation(ctx, id, owner, "conversation_id")
}

// UpdateConversation replaces a conversation's metadata.
func (e *Engine) UpdateConversation(ctx context.Context, id string, metadata map[string]string, owner string) (*Conversation, error) {
	c, err := e.getConversation(ctx, id, owner, "conversation_id")
	if err != nil {
		return nil, err
	}
	if err := ValidateMetadata(metadata); err != nil {
		return nil, err
	}
	c.Metadata = map[string]string{}
	maps.Copy(c.Metadata, metadata)
	rec, err := e.records.GetRecord(ctx, store.KindConversation, id)
	if err != nil {
		return nil, storeError("read conversation", err)
	}
	if rec.Body, err = json.Marshal(c); err != nil {
		return nil, fmt.Errorf("encode conversation: %w", err)
	}
	if err := e.records.PutRecords(ctx, rec); err != nil {
		return nil, storeError("store conversation", err)
	}
	return c, nil
}

// DeleteConversation deletes a conversation and its items.
func (e *Engine) DeleteConversation(ctx context.Context, id, owner string) (*Deleted, error) {
	if _, err := e.getConversation(ctx, id, owner, "conversation_id"); err != nil {
		return nil, err
	}
	if err := e.records.DeleteRecord(ctx, store.KindConversation, id); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound("conversation_id", "Conversation with id '%s' not found.", truncate(id, 80))
		}
		return nil, storeError("delete conversation", err)
	}
	return &Deleted{ID: id, Object: "conversation.deleted", Deleted: true}, nil
}

// itemRecords turns items into records appended to a conversation, after
// its last item.
func (e *Engine) itemRecords(ctx context.Context, convID, owner string, items []Item) ([]store.Record, error) {
	last, _, err := e.records.ListRecords(ctx, store.ListQuery{Kind: store.KindConversationItem, Parent: convID, Limit: 1, Desc: true})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, storeError("read conversation items", err)
	}
	next := e.now().UnixNano()
	if len(last) > 0 && last[0].SortKey >= next {
		next = last[0].SortKey + 1
	}
	recs := make([]store.Record, 0, len(items))
	for i := range items {
		b, err := json.Marshal(items[i])
		if err != nil {
			return nil, fmt.Errorf("encode item: %w", err)
		}
		recs = append(recs, store.Record{Kind: store.KindConversationItem, ID: itemRecordID(convID, items[i].ID), Parent: convID, SortKey: next + int64(i), Owner: owner, Body: b})
	}
	return recs, nil
}

// AddItems appends items to a conversation and returns them.
func (e *Engine) AddItems(ctx context.Context, convID string, items []Item, owner string) (*ItemList, error) {
	if _, err := e.getConversation(ctx, convID, owner, "conversation_id"); err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, invalid("items", "field 'items' must hold at least one item")
	}
	if len(items) > maxItemsPerAdd {
		return nil, invalid("items", "at most %d items can be added at a time, got %d", maxItemsPerAdd, len(items))
	}
	for i := range items {
		normalize(&items[i])
	}
	recs, err := e.itemRecords(ctx, convID, owner, items)
	if err != nil {
		return nil, err
	}
	if err := e.records.PutRecords(ctx, recs...); err != nil {
		return nil, storeError("store conversation items", err)
	}
	return itemList(items, false), nil
}

// ListItems returns a page of a conversation's items (default order desc,
// page 20).
func (e *Engine) ListItems(ctx context.Context, convID string, p ListParams, owner string) (*ItemList, error) {
	if _, err := e.getConversation(ctx, convID, owner, "conversation_id"); err != nil {
		return nil, err
	}
	limit, err := p.pageSize(20)
	if err != nil {
		return nil, err
	}
	desc, err := p.desc()
	if err != nil {
		return nil, err
	}
	q := store.ListQuery{Kind: store.KindConversationItem, Parent: convID, Limit: limit, Desc: desc}
	if p.After != "" {
		q.After = itemRecordID(convID, p.After)
	}
	recs, more, err := e.records.ListRecords(ctx, q)
	if errors.Is(err, store.ErrNotFound) {
		return nil, notFound("after", "item '%s' not found in conversation '%s'", truncate(p.After, 80), convID)
	}
	if err != nil {
		return nil, storeError("list conversation items", err)
	}
	items, err := decodeRecords(recs)
	if err != nil {
		return nil, err
	}
	return itemList(items, more), nil
}

// allItems returns every item of a conversation, oldest first.
func (e *Engine) allItems(ctx context.Context, convID string) ([]Item, error) {
	var all []Item
	after := ""
	for {
		recs, more, err := e.records.ListRecords(ctx, store.ListQuery{Kind: store.KindConversationItem, Parent: convID, After: after, Limit: 100})
		if err != nil {
			return nil, storeError("read conversation items", err)
		}
		items, err := decodeRecords(recs)
		if err != nil {
			return nil, err
		}
		all = append(all, items...)
		if !more || len(recs) == 0 {
			return all, nil
		}
		after = recs[len(recs)-1].ID
	}
}

func decodeRecords(recs []store.Record) ([]Item, error) {
	items := make([]Item, 0, len(recs))
	for _, rec := range recs {
		var it Item
		if err := json.Unmarshal(rec.Body, &it); err != nil {
			return nil, fmt.Errorf("decode conversation item %s: %w", rec.ID, err)
		}
		items = append(items, it)
	}
	return items, nil
}

// GetItem returns one item of a conversation.
func (e *Engine) GetItem(ctx context.Context, convID, itemID, owner string) (*Item, error) {
	if _, err := e.getConversation(ctx, convID, owner, "conversation_id"); err != nil {
		return nil, err
	}
	rec, err := e.getItemRecord(ctx, convID, itemID)
	if err != nil {
		return nil, err
	}
	var it Item
	if err := json.Unmarshal(rec.Body, &it); err != nil {
		return nil, fmt.Errorf("decode conversation item %s: %w", rec.ID, err)
	}
	return &it, nil
}

func (e *Engine) getItemRecord(ctx context.Context, convID, itemID string) (store.Record, error) {
	if strings.Contains(itemID, "/") {
		return store.Record{}, notFound("item_id", "item '%s' not found in conversation '%s'", truncate(itemID, 80), convID)
	}
	rec, err := e.records.GetRecord(ctx, store.KindConversationItem, itemRecordID(convID, itemID))
	if errors.Is(err, store.ErrNotFound) || (err == nil && rec.Parent != convID) {
		return store.Record{}, notFound("item_id", "item '%s' not found in conversation '%s'", truncate(itemID, 80), convID)
	}
	if err != nil {
		return store.Record{}, storeError("read conversation item", err)
	}
	return rec, nil
}

// DeleteItem deletes one item of a conversation and returns the
// conversation.
func (e *Engine) DeleteItem(ctx context.Context, convID, itemID, owner string) (*Conversation, error) {
	c, err := e.getConversation(ctx, convID, owner, "conversation_id")
	if err != nil {
		return nil, err
	}
	if _, err := e.getItemRecord(ctx, convID, itemID); err != nil {
		return nil, err
	}
	if err := e.records.DeleteRecord(ctx, store.KindConversationItem, itemRecordID(convID, itemID)); err != nil {
		if errors.Is(err, store.ErrNotFound) {
			return nil, notFound("item_id", "item '%s' not found in conversation '%s'", truncate(itemID, 80), convID)
		}
		return nil, storeError("delete conversation item", err)
	}
	return c, nil
}
