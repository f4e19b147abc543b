-- 0001: the key-value space, the fixed-window counters and the records.
-- Text columns use SQLite's default BINARY collation: keys and ids order by
-- their bytes, which for UTF-8 is code point order, as in PostgreSQL's "C".

CREATE TABLE kv (
	key   TEXT PRIMARY KEY NOT NULL,
	value BLOB NOT NULL
) STRICT;

-- reset_at is the end of the counter's window in Unix nanoseconds.
CREATE TABLE counters (
	key      TEXT PRIMARY KEY NOT NULL,
	count    INTEGER NOT NULL,
	reset_at INTEGER NOT NULL
) STRICT;

CREATE TABLE records (
	kind     TEXT NOT NULL,
	id       TEXT NOT NULL,
	parent   TEXT NOT NULL DEFAULT '',
	sort_key INTEGER NOT NULL,
	model    TEXT NOT NULL DEFAULT '',
	owner    TEXT NOT NULL DEFAULT '',
	body     BLOB NOT NULL,
	PRIMARY KEY (kind, id)
) STRICT;

-- One index per filter combination of ListRecords, each ending in the list
-- order (sort_key, id), so that a page is a range scan that stops after
-- Limit+1 rows, in either direction.
CREATE INDEX records_list             ON records (kind, parent, sort_key, id);
CREATE INDEX records_list_model       ON records (kind, parent, model, sort_key, id);
CREATE INDEX records_list_owner       ON records (kind, parent, owner, sort_key, id);
CREATE INDEX records_list_owner_model ON records (kind, parent, owner, model, sort_key, id);

-- DeleteRecord's cascade to the children of a record, whatever their kind.
CREATE INDEX records_by_parent ON records (parent) WHERE parent <> '';
