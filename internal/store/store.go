// Package store defines the server's persistent state: a key-value space
// (registered models, quota counters) and JSON records (stored chat
// completions, responses, conversations and their items), and what every
// backend must provide to hold them. Implementations live in
// store/sqlite and store/postgres; store/storetest is the conformance suite
// both must pass.
package store

import (
	"context"
	"errors"
	"time"
)

// ErrNotFound reports a key or record that does not exist.
var ErrNotFound = errors.New("not found")

// ErrExists reports a create whose key is taken.
var ErrExists = errors.New("already exists")

// ErrUnavailable reports a backend that cannot be reached or opened right
// now; the operation may succeed later.
var ErrUnavailable = errors.New("storage unavailable")

// ErrInvalid reports a key, record or query a backend cannot hold or
// answer (an empty id, text that is not UTF-8 or holds NUL, a limit below
// 1). Retrying it cannot succeed.
var ErrInvalid = errors.New("invalid for the store")

// ErrSchemaTooNew reports a database whose schema was written by a newer
// version of this server than the running one.
var ErrSchemaTooNew = errors.New("database schema is newer than this server")

// Entry is one key and its value.
type Entry struct {
	Key   string
	Value []byte
}

// KV is a key-value space. Keys are opaque strings; callers prefix them by
// namespace ("models/", "quota/").
type KV interface {
	// Get returns the value of key, or ErrNotFound.
	Get(ctx context.Context, key string) ([]byte, error)
	// Set writes key, replacing any value.
	Set(ctx context.Context, key string, value []byte) error
	// Create writes key only if it is absent, else returns ErrExists.
	// Two replicas creating the same key at once: exactly one succeeds.
	Create(ctx context.Context, key string, value []byte) error
	// Delete removes key, or returns ErrNotFound.
	Delete(ctx context.Context, key string) error
	// List returns the entries whose key starts with prefix, in key order.
	List(ctx context.Context, prefix string) ([]Entry, error)
	// Incr adds by to the counter key within a fixed window and returns the
	// new count and when the window ends. The first Incr of a key, or the
	// first after its window ended, starts a new window of length window at
	// now with the count set to by. Atomic across replicas.
	Incr(ctx context.Context, key string, by int64, window time.Duration, now time.Time) (count int64, resetAt time.Time, err error)
}

// Record kinds.
const (
	KindChatCompletion   = "chat_completion"
	KindResponse         = "response"
	KindConversation     = "conversation"
	KindConversationItem = "conversation_item"
)

// Record is one JSON document: a stored chat completion, response,
// conversation or conversation item.
type Record struct {
	// Kind says what the record is (KindChatCompletion, ...).
	Kind string
	// ID is unique within Kind.
	ID string
	// Parent is the id of the record this one belongs to (a conversation
	// item's conversation), else "".
	Parent string
	// SortKey orders lists: creation time in Unix nanoseconds for top-level
	// records, position within the parent for items. Ties break on ID.
	SortKey int64
	// Model filters lists; may be "".
	Model string
	// Owner is the principal that created the record; "" when no
	// authentication is configured.
	Owner string
	// Body is the record's JSON.
	Body []byte
}

// ListQuery selects a page of records of one kind.
type ListQuery struct {
	Kind string
	// Parent, when set, lists the records of that parent only; when empty,
	// records with no parent.
	Parent string
	// Model, when set, keeps only records of that model.
	Model string
	// Owner, when set, keeps only records of that owner.
	Owner string
	// After starts the page after the record with this id (in list order);
	// Before ends it before that record. An id that does not exist (in Kind,
	// and Parent if set) is ErrNotFound.
	After, Before string
	// Limit is the page size; at least 1.
	Limit int
	// Desc lists newest (highest SortKey) first.
	Desc bool
}

// Records holds JSON records.
type Records interface {
	// PutRecords inserts or replaces records by (Kind, ID), all or none.
	PutRecords(ctx context.Context, recs ...Record) error
	// GetRecord returns one record, or ErrNotFound.
	GetRecord(ctx context.Context, kind, id string) (Record, error)
	// DeleteRecord removes a record and the records whose Parent is its id,
	// or returns ErrNotFound.
	DeleteRecord(ctx context.Context, kind, id string) error
	// ListRecords returns a page in (SortKey, ID) order (reversed with Desc)
	// and whether more records follow it.
	ListRecords(ctx context.Context, q ListQuery) (recs []Record, hasMore bool, err error)
}

// Backend is one opened database holding both a key-value space and
// records.
type Backend interface {
	KV
	Records
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}
