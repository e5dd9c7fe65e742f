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

-- price_history gets one row per published price change: the hottest table.
-- It deliberately has no foreign key on product_id, because checking one
-- costs a lookup per inserted row; the engine only records history for
-- products it knows. The index is ascending: History reads it backwards,
-- and its implicit trailing rowid then gives insertion order among rows
-- with the same event_time, with no sort step.
CREATE TABLE price_history (
	id         INTEGER PRIMARY KEY,
	product_id TEXT    NOT NULL,
	price      REAL    NOT NULL,
	demand     REAL    NOT NULL,
	source     TEXT    NOT NULL CHECK (source IN ('base', 'dynamic', 'override')),
	event_time INTEGER NOT NULL,
	version    INTEGER NOT NULL
);
CREATE INDEX price_history_product_time ON price_history (product_id, event_time);

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
-- not applied twice. WITHOUT ROWID stores each id once, in the primary key
-- b-tree, instead of in a rowid table plus a unique index.
CREATE TABLE seen_events (
	event_id TEXT    NOT NULL PRIMARY KEY,
	seen_at  INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX seen_events_seen_at ON seen_events (seen_at);

-- settings holds catalog-wide values such as the default strategy.
CREATE TABLE settings (
	key   TEXT NOT NULL PRIMARY KEY,
	value TEXT NOT NULL
);
