-- 0001: the initial schema.
--
-- Timestamps are INTEGER unix nanoseconds throughout: they are what the
-- engine works in, they sort correctly, and they cost one varint each.

-- products is the catalog. Guardrails get their own columns rather than a
-- JSON blob so that an operator can read and query them with the sqlite3
-- shell. The rowid (implicit) keeps catalog insertion order for Load.
CREATE TABLE products (
	id             TEXT    NOT NULL PRIMARY KEY,
	name           TEXT    NOT NULL DEFAULT '',
	base_price     REAL    NOT NULL,
	strategy       TEXT    NOT NULL DEFAULT '',
	floor          REAL    NOT NULL DEFAULT 0,
	ceiling        REAL    NOT NULL DEFAULT 0,
	max_change_pct REAL    NOT NULL DEFAULT 0,
	rounding       TEXT    NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL,
	updated_at     INTEGER NOT NULL
);

-- product_state is each product's pricing state. The state column is the
-- authoritative copy (json.Marshal of pricing.State, which Load decodes);
-- price, demand, source, version and changed_at duplicate parts of it so
-- that they can be read with plain SQL.
CREATE TABLE product_state (
	product_id TEXT    NOT NULL PRIMARY KEY REFERENCES products (id),
	price      REAL    NOT NULL,
	demand     REAL    NOT NULL,
	source     TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	changed_at INTEGER NOT NULL,
	state      TEXT    NOT NULL
);

-- price_history gets one row per published price change: the hottest
-- table, written at the ingest rate.
--
-- It is a WITHOUT ROWID table clustered by (product_id, event_time,
-- version), which is exactly the order History reads, instead of a rowid
-- table plus an index on (product_id, event_time): that is one b-tree
-- insert per row instead of two, and a product's history is read as one
-- contiguous range. version (per product, strictly increasing) orders
-- changes within the same nanosecond and makes the key unique. There is
-- deliberately no foreign key on product_id: checking it would cost a
-- lookup per row, and the engine only records history for products it
-- knows.
CREATE TABLE price_history (
	product_id TEXT    NOT NULL,
	event_time INTEGER NOT NULL,
	version    INTEGER NOT NULL,
	price      REAL    NOT NULL,
	demand     REAL    NOT NULL,
	source     TEXT    NOT NULL CHECK (source IN ('base', 'dynamic', 'override')),
	PRIMARY KEY (product_id, event_time, version)
) WITHOUT ROWID;

-- overrides is the audit trail of manual prices, kept forever. A row with a
-- NULL ended_at is the product's open override; the partial unique index
-- makes "at most one open override per product" a fact of the schema.
CREATE TABLE overrides (
	id             INTEGER PRIMARY KEY,
	product_id     TEXT    NOT NULL REFERENCES products (id),
	override_price REAL    NOT NULL,
	reason         TEXT    NOT NULL DEFAULT '',
	set_by         TEXT    NOT NULL DEFAULT '',
	created_at     INTEGER NOT NULL,
	expires_at     INTEGER,          -- NULL: never
	ended_at       INTEGER,          -- NULL: still active
	ended_by       TEXT,
	end_reason     TEXT              -- 'removed', 'expired' or 'replaced'
);
CREATE INDEX overrides_product ON overrides (product_id, created_at);
CREATE UNIQUE INDEX overrides_open ON overrides (product_id) WHERE ended_at IS NULL;

-- seen_events remembers applied event ids so that a redelivered event is
-- not applied twice after a restart.
--
-- It is clustered by time, not keyed by event_id, on purpose: ids are
-- random (UUIDs), so a b-tree keyed by them takes every insert at a random
-- leaf, and with the million ids the engine remembers a 10,000-id commit
-- dirties thousands of pages, each written to the WAL and again at the
-- checkpoint; measured, that made Commit six times slower.
-- Keyed by (seen_at, event_id) every insert lands on the right edge, and
-- pruning by age deletes a range at the left edge. The store never looks
-- an id up: the engine keeps the set in memory and filters repeats before
-- they reach a batch, so uniqueness is enforced where it is read (Load
-- keeps an id's earliest row) instead of by an index on every write.
CREATE TABLE seen_events (
	seen_at  INTEGER NOT NULL,
	event_id TEXT    NOT NULL,
	PRIMARY KEY (seen_at, event_id)
) WITHOUT ROWID;

-- settings holds catalog-wide values such as the default strategy.
CREATE TABLE settings (
	key   TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
);
