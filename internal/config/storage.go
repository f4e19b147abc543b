package config

import (
	"fmt"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Storage backend types, as OGX names them.
const (
	BackendKVSQLite    = "kv_sqlite"
	BackendSQLSQLite   = "sql_sqlite"
	BackendKVPostgres  = "kv_postgres"
	BackendSQLPostgres = "sql_postgres"
	backendKVRedis     = "kv_redis"
	backendKVMongoDB   = "kv_mongodb"
)

// Default backend names, as in OGX.
const (
	DefaultKVBackend  = "kv_default"
	DefaultSQLBackend = "sql_default"
)

// Storage is the storage section: named database backends and which
// backend holds each of the server's stores (OGX's StorageConfig).
type Storage struct {
	// Backends maps a name to a database.
	Backends map[string]*StorageBackend `yaml:"backends"`
	// Stores names the backend of each store.
	Stores Stores `yaml:"stores"`
}

// StorageBackend is one database: a SQLite file or a PostgreSQL server.
// Its fields are the union of OGX's backend configs; Type says which apply.
type StorageBackend struct {
	Type string `yaml:"type"`

	// SQLite.
	DBPath string `yaml:"db_path"`

	// PostgreSQL.
	Host           string   `yaml:"host"`
	Port           string   `yaml:"port"` // OGX accepts a number or a string
	DB             string   `yaml:"db"`
	User           string   `yaml:"user"`
	Password       Secret   `yaml:"password"`
	SSLMode        string   `yaml:"ssl_mode"`
	CACertPath     string   `yaml:"ca_cert_path"`
	TableName      string   `yaml:"table_name"` // OGX's kv table; this server keeps its own tables
	PoolSize       int      `yaml:"pool_size"`
	MaxOverflow    int      `yaml:"max_overflow"`
	PoolRecycle    int      `yaml:"pool_recycle"`
	PoolPrePing    *bool    `yaml:"pool_pre_ping"`
	CommandTimeout *float64 `yaml:"command_timeout"`

	// Namespace prefixes every key (key-value backends).
	Namespace string `yaml:"namespace"`

	// Redis and MongoDB fields, accepted so OGX configs load; those
	// backend types are refused by validation.
	CollectionName string `yaml:"collection_name"`
}

// Postgres reports whether the backend is a PostgreSQL one.
func (b *StorageBackend) Postgres() bool {
	return b.Type == BackendKVPostgres || b.Type == BackendSQLPostgres
}

// PortNumber returns the PostgreSQL port, 5432 when unset.
func (b *StorageBackend) PortNumber() int {
	if b.Port == "" {
		return 5432
	}
	n, err := strconv.Atoi(b.Port)
	if err != nil {
		return 0
	}
	return n
}

// Stores names the backend of each store. A store written as null is
// switched off; one left out gets OGX's default.
type Stores struct {
	// Metadata holds registered models (key-value).
	Metadata *StoreRef `yaml:"metadata"`
	// Inference holds stored chat completions.
	Inference *StoreRef `yaml:"inference"`
	// Conversations holds conversations and their items.
	Conversations *StoreRef `yaml:"conversations"`
	// Responses holds stored responses; when unset, the inference
	// store's backend holds them.
	Responses *StoreRef `yaml:"responses"`

	// Stores of APIs this server does not serve; accepted, unused.
	Prompts      *StoreRef `yaml:"prompts"`
	Connectors   *StoreRef `yaml:"connectors"`
	VectorStores *StoreRef `yaml:"vector_stores"`
}

// StoreRef points a store at a backend.
type StoreRef struct {
	Backend   string `yaml:"backend"`
	Namespace string `yaml:"namespace"`
	TableName string `yaml:"table_name"`
	// MaxWriteQueueSize bounds the writes waiting to be stored.
	MaxWriteQueueSize int `yaml:"max_write_queue_size"`
	// NumWriters is OGX's writer count; this server batches writes on
	// one writer per store, so it is accepted and unused.
	NumWriters int `yaml:"num_writers"`
	// FlushIntervalMS is how long a write may wait in the queue before it
	// is stored, in milliseconds (this server's addition).
	FlushIntervalMS int `yaml:"flush_interval_ms"`
}

// Defaults for a store's write queue.
const (
	DefaultWriteQueueSize  = 10000
	DefaultFlushIntervalMS = 100
)

// QueueSize returns MaxWriteQueueSize, or its default.
func (r *StoreRef) QueueSize() int {
	if r == nil || r.MaxWriteQueueSize <= 0 {
		return DefaultWriteQueueSize
	}
	return r.MaxWriteQueueSize
}

// FlushInterval returns FlushIntervalMS, or its default, in milliseconds.
func (r *StoreRef) FlushInterval() int {
	if r == nil || r.FlushIntervalMS <= 0 {
		return DefaultFlushIntervalMS
	}
	return r.FlushIntervalMS
}

var pgIdentifier = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)

// resolveStorage fills c.Storage: the storage section as written, the
// older per-store keys translated into it, and OGX's defaults (SQLite files
// under SQLITE_STORE_DIR, else ~/.llama/distributions/<name>) for what is
// left out.
func resolveStorage(c *Config, env LookupEnv, probs *problems) {
	s := &Storage{Backends: map[string]*StorageBackend{}}
	if c.Storage.Kind != 0 && !isNull(&c.Storage) {
		newSchema(probs).check(&c.Storage, reflect.TypeFor[Storage](), "storage")
		if err := c.Storage.Decode(s); err != nil {
			probs.add(&c.Storage, "storage", err)
			return
		}
		if s.Backends == nil {
			s.Backends = map[string]*StorageBackend{}
		}
	}
	dir := storeDir(c, env)
	stores := lookup(deref(&c.Storage), "stores")
	explicit := func(key string) (present, null bool) {
		if stores == nil {
			return false, false
		}
		n := lookup(stores, key)
		return n != nil, n != nil && isNull(n)
	}
	legacy := []struct {
		key  string
		node *yaml.Node
		ref  **StoreRef
		kv   bool
		file string
	}{
		{"metadata_store", &c.MetadataStore, &s.Stores.Metadata, true, "kvstore.db"},
		{"inference_store", &c.InferenceStore, &s.Stores.Inference, false, "sql_store.db"},
		{"conversations_store", &c.ConversationsStore, &s.Stores.Conversations, false, "sql_store.db"},
	}
	for _, l := range legacy {
		if l.node.Kind == 0 || isNull(l.node) {
			continue
		}
		// The older per-store form: a backend inline, typed sqlite or
		// postgres.
		newSchema(probs).check(l.node, reflect.TypeFor[StorageBackend](), l.key)
		var b StorageBackend
		if err := l.node.Decode(&b); err != nil {
			probs.add(l.node, l.key, err)
			continue
		}
		switch b.Type {
		case "sqlite":
			b.Type = BackendSQLSQLite
			if l.kv {
				b.Type = BackendKVSQLite
			}
		case "postgres":
			b.Type = BackendSQLPostgres
			if l.kv {
				b.Type = BackendKVPostgres
			}
		default:
			probs.addf(lookup(l.node, "type"), l.key+".type", "must be sqlite or postgres, got %q", b.Type)
			continue
		}
		name := "legacy_" + l.key
		s.Backends[name] = &b
		*l.ref = &StoreRef{Backend: name}
	}
	if _, ok := s.Backends[DefaultKVBackend]; !ok {
		s.Backends[DefaultKVBackend] = &StorageBackend{Type: BackendKVSQLite, DBPath: filepath.Join(dir, "kvstore.db")}
	}
	if _, ok := s.Backends[DefaultSQLBackend]; !ok {
		s.Backends[DefaultSQLBackend] = &StorageBackend{Type: BackendSQLSQLite, DBPath: filepath.Join(dir, "sql_store.db")}
	}
	defaults := []struct {
		key string
		ref **StoreRef
		def StoreRef
	}{
		{"metadata", &s.Stores.Metadata, StoreRef{Backend: DefaultKVBackend, Namespace: "registry"}},
		{"inference", &s.Stores.Inference, StoreRef{Backend: DefaultSQLBackend, TableName: "inference_store"}},
		{"conversations", &s.Stores.Conversations, StoreRef{Backend: DefaultSQLBackend, TableName: "openai_conversations"}},
	}
	for _, d := range defaults {
		present, null := explicit(d.key)
		if null || *d.ref != nil || present {
			continue
		}
		def := d.def
		*d.ref = &def
	}
	for _, b := range s.Backends {
		if b == nil {
			continue
		}
		b.DBPath = expandUser(b.DBPath, env)
		if b.Postgres() {
			if b.Host == "" {
				b.Host = "localhost"
			}
			if b.DB == "" {
				b.DB = "ogx"
			}
		}
	}
	c.Store = s
}

// storeDir is where default SQLite files go: SQLITE_STORE_DIR, else
// ~/.llama/distributions/<name>.
func storeDir(c *Config, env LookupEnv) string {
	if d, ok := env("SQLITE_STORE_DIR"); ok && d != "" {
		return expandUser(d, env)
	}
	return expandUser(filepath.Join("~/.llama/distributions", c.Name()), env)
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == tagNull
}

// StoreBackend returns the backend a store reference names, or nil when the
// store is switched off.
func (s *Storage) StoreBackend(ref *StoreRef) *StorageBackend {
	if s == nil || ref == nil {
		return nil
	}
	return s.Backends[ref.Backend]
}

func (c *Config) validateStorage(p *problems) {
	s := c.Store
	if s == nil {
		return
	}
	names := make([]string, 0, len(s.Backends))
	for name := range s.Backends {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		b := s.Backends[name]
		path := "storage.backends." + name
		n := c.at("storage", "backends", name)
		if b == nil {
			p.addf(n, path, "must be a mapping with a type")
			continue
		}
		switch b.Type {
		case BackendKVSQLite, BackendSQLSQLite:
			if b.DBPath == "" {
				p.addf(n, path+".db_path", "required for %s", b.Type)
			}
		case BackendKVPostgres, BackendSQLPostgres:
			if b.User == "" {
				p.addf(n, path+".user", "required for %s", b.Type)
			}
			if port := b.PortNumber(); port < 1 || port > 65535 {
				p.addf(n, path+".port", "must be a port number, got %q", b.Port)
			}
			if b.TableName != "" && (!pgIdentifier.MatchString(b.TableName) || len(b.TableName) > 63) {
				p.addf(n, path+".table_name", "must start with a letter or underscore, hold only letters, digits and underscores, and be at most 63 characters")
			}
			switch b.SSLMode {
			case "", "disable", "allow", "prefer", "require", "verify-ca", "verify-full":
			default:
				p.addf(n, path+".ssl_mode", "must be one of disable, allow, prefer, require, verify-ca, verify-full; got %q", b.SSLMode)
			}
			if b.PoolSize < 0 {
				p.addf(n, path+".pool_size", "must be at least 1")
			}
		case backendKVRedis, backendKVMongoDB:
			p.addf(n, path+".type", "%s is not supported by this server; use kv_sqlite or kv_postgres", b.Type)
		case "":
			p.addf(n, path+".type", "required (one of kv_sqlite, sql_sqlite, kv_postgres, sql_postgres)")
		default:
			p.addf(n, path+".type", "unknown backend type %q (one of kv_sqlite, sql_sqlite, kv_postgres, sql_postgres)", b.Type)
		}
	}
	refs := []struct {
		key string
		ref *StoreRef
	}{
		{"metadata", s.Stores.Metadata}, {"inference", s.Stores.Inference},
		{"conversations", s.Stores.Conversations}, {"responses", s.Stores.Responses},
	}
	for _, r := range refs {
		if r.ref == nil {
			continue
		}
		path := "storage.stores." + r.key
		n := c.at("storage", "stores", r.key)
		if r.ref.Backend == "" {
			p.addf(n, path+".backend", "required: the name of a backend in storage.backends")
			continue
		}
		if _, ok := s.Backends[r.ref.Backend]; !ok {
			p.addf(n, path+".backend", "no backend named %q in storage.backends (have %s)", r.ref.Backend, strings.Join(names, ", "))
		}
		if r.ref.MaxWriteQueueSize < 0 {
			p.addf(n, path+".max_write_queue_size", "must not be negative")
		}
		if r.ref.FlushIntervalMS < 0 {
			p.addf(n, path+".flush_interval_ms", "must not be negative")
		}
	}
}

// String describes a backend without secrets, for logs.
func (b *StorageBackend) String() string {
	if b.Postgres() {
		return fmt.Sprintf("%s postgres://%s@%s:%d/%s", b.Type, b.User, b.Host, b.PortNumber(), b.DB)
	}
	return b.Type + " " + b.DBPath
}
