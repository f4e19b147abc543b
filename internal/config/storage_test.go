package config

import (
	"strings"
	"testing"
)

const storageProviders = `
providers:
  inference:
  - provider_id: bedrock
    provider_type: remote::bedrock
    config:
      api_key: k
`

func TestStorageDefaults(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		doc  string
		kv   string
		sql  string
	}{
		{name: "home", env: map[string]string{"HOME": "/home/u"}, doc: "distro_name: demo\n",
			kv: "/home/u/.llama/distributions/demo/kvstore.db", sql: "/home/u/.llama/distributions/demo/sql_store.db"},
		{name: "SQLITE_STORE_DIR", env: map[string]string{"HOME": "/home/u", "SQLITE_STORE_DIR": "/data"}, doc: "",
			kv: "/data/kvstore.db", sql: "/data/sql_store.db"},
		{name: "SQLITE_STORE_DIR with tilde", env: map[string]string{"HOME": "/h", "SQLITE_STORE_DIR": "~/s"}, doc: "",
			kv: "/h/s/kvstore.db", sql: "/h/s/sql_store.db"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.doc+storageProviders), mapEnv(tt.env))
			if err != nil {
				t.Fatal(err)
			}
			s := c.Store
			if got := s.StoreBackend(s.Stores.Metadata); got == nil || got.Type != BackendKVSQLite || got.DBPath != tt.kv {
				t.Errorf("metadata backend = %+v, want kv_sqlite %s", got, tt.kv)
			}
			if got := s.StoreBackend(s.Stores.Inference); got == nil || got.Type != BackendSQLSQLite || got.DBPath != tt.sql {
				t.Errorf("inference backend = %+v, want sql_sqlite %s", got, tt.sql)
			}
			if s.Stores.Inference.QueueSize() != DefaultWriteQueueSize {
				t.Errorf("queue size = %d", s.Stores.Inference.QueueSize())
			}
		})
	}
}

func TestStorageSection(t *testing.T) {
	doc := `
storage:
  backends:
    kv_pg:
      type: kv_postgres
      host: db.internal
      port: "6543"
      db: stack
      user: ogx
      password: hunter2
      table_name: ogx_kvstore
    sql_pg:
      type: sql_postgres
      user: ogx
      password: hunter2
  stores:
    metadata:
      backend: kv_pg
      namespace: registry
    inference:
      backend: sql_pg
      table_name: inference_store
      max_write_queue_size: 500
      flush_interval_ms: 50
    conversations: null
` + storageProviders
	c, err := Parse([]byte(doc), mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Store
	kv := s.StoreBackend(s.Stores.Metadata)
	if kv == nil || kv.Type != BackendKVPostgres || kv.Host != "db.internal" || kv.PortNumber() != 6543 || kv.DB != "stack" {
		t.Fatalf("metadata backend = %+v", kv)
	}
	sql := s.StoreBackend(s.Stores.Inference)
	if sql == nil || sql.Host != "localhost" || sql.PortNumber() != 5432 || sql.DB != "ogx" {
		t.Fatalf("inference backend = %+v (want OGX's defaults)", sql)
	}
	if got := s.Stores.Inference.QueueSize(); got != 500 {
		t.Errorf("queue size = %d, want 500", got)
	}
	if got := s.Stores.Inference.FlushInterval(); got != 50 {
		t.Errorf("flush interval = %d, want 50", got)
	}
	if s.Stores.Conversations != nil {
		t.Errorf("conversations store = %+v, want switched off by null", s.Stores.Conversations)
	}
	if str := kv.String(); strings.Contains(str, "hunter2") {
		t.Errorf("String() leaks the password: %s", str)
	}
}

func TestStorageInferenceOff(t *testing.T) {
	doc := "storage:\n  stores:\n    inference: null\n" + storageProviders
	c, err := Parse([]byte(doc), mapEnv(map[string]string{"HOME": "/h"}))
	if err != nil {
		t.Fatal(err)
	}
	if c.Store.Stores.Inference != nil {
		t.Errorf("inference store = %+v, want off", c.Store.Stores.Inference)
	}
	if c.Store.Stores.Metadata == nil {
		t.Error("metadata store switched off too")
	}
}

func TestStorageLegacyKeys(t *testing.T) {
	doc := `
metadata_store:
  type: sqlite
  db_path: /var/lib/stack/registry.db
inference_store:
  type: postgres
  host: pg
  user: u
  password: p
` + storageProviders
	c, err := Parse([]byte(doc), mapEnv(nil))
	if err != nil {
		t.Fatal(err)
	}
	s := c.Store
	if b := s.StoreBackend(s.Stores.Metadata); b == nil || b.Type != BackendKVSQLite || b.DBPath != "/var/lib/stack/registry.db" {
		t.Errorf("metadata = %+v", b)
	}
	if b := s.StoreBackend(s.Stores.Inference); b == nil || b.Type != BackendSQLPostgres || b.Host != "pg" {
		t.Errorf("inference = %+v", b)
	}
}

func TestStorageBad(t *testing.T) {
	tests := []struct {
		name, doc string
		errs      []string
	}{
		{"unknown backend field", "storage:\n  backends:\n    x:\n      type: kv_sqlite\n      db_pth: /a\n",
			[]string{"storage.backends.x.db_pth: unknown field", "storage.backends.x.db_path: required for kv_sqlite"}},
		{"unknown type", "storage:\n  backends:\n    x:\n      type: kv_etcd\n",
			[]string{`storage.backends.x.type: unknown backend type "kv_etcd"`}},
		{"redis", "storage:\n  backends:\n    x:\n      type: kv_redis\n",
			[]string{"storage.backends.x.type: kv_redis is not supported"}},
		{"postgres without user", "storage:\n  backends:\n    x:\n      type: sql_postgres\n",
			[]string{"storage.backends.x.user: required for sql_postgres"}},
		{"bad port", "storage:\n  backends:\n    x:\n      type: sql_postgres\n      user: u\n      port: abc\n",
			[]string{`storage.backends.x.port: must be a port number, got "abc"`}},
		{"bad table", "storage:\n  backends:\n    x:\n      type: kv_postgres\n      user: u\n      table_name: drop-table\n",
			[]string{"storage.backends.x.table_name: must start with a letter"}},
		{"missing backend", "storage:\n  stores:\n    inference:\n      backend: nope\n",
			[]string{`storage.stores.inference.backend: no backend named "nope"`}},
		{"legacy type", "inference_store:\n  type: redis\n",
			[]string{`inference_store.type: must be sqlite or postgres, got "redis"`}},
		{"unknown store field", "storage:\n  stores:\n    inference:\n      backend: sql_default\n      queue: 3\n",
			[]string{"storage.stores.inference.queue: unknown field"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc+storageProviders), mapEnv(map[string]string{"HOME": "/h"}))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			for _, want := range tt.errs {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q\ndoes not contain %q", err, want)
				}
			}
		})
	}
}
