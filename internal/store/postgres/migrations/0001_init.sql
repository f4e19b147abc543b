-- 0001: the key-value space, the fixed-window counters and the records.
-- Keys and ids collate "C": they order by their bytes (code point order for
-- UTF-8) whatever the database's locale, as in SQLite and in Go, and
-- range scans on them can use their indexes.

CREATE TABLE kv (
	key   text COLLATE "C" PRIMARY KEY,
	value bytea NOT NULL
);

-- reset_at is the end of the counter's window in Unix nanoseconds.
CREATE TABLE counters (
	key      text COLLATE "C" PRIMARY KEY,
	count    bigint NOT NULL,
	reset_at bigint NOT NULL
);

-- body is bytea, not jsonb: records come back byte for byte as written.
CREATE TABLE records (
	kind     text COLLATE "C" NOT NULL,
	id       text COLLATE "C" NOT NULL,
	parent   text COLLATE "C" NOT NULL DEFAULT '',
	sort_key bigint NOT NULL,
	model    text COLLATE "C" NOT NULL DEFAULT '',
	owner    text COLLATE "C" NOT NULL DEFAULT '',
	body     bytea NOT NULL,
	PRIMARY KEY (kind, id)
);

-- One index per filter combination of ListRecords, each ending in the list
-- order (sort_key, id), so that a page is a range scan that stops after
-- Limit+1 rows, in either direction.
CREATE INDEX records_list             ON records (kind, parent, sort_key, id);
CREATE INDEX records_list_model       ON records (kind, parent, model, sort_key, id);
CREATE INDEX records_list_owner       ON records (kind, parent, owner, sort_key, id);
CREATE INDEX records_list_owner_model ON records (kind, parent, owner, model, sort_key, id);

-- DeleteRecord's cascade to the children of a record, whatever their kind.
CREATE INDEX records_by_parent ON records (parent) WHERE parent <> '';
