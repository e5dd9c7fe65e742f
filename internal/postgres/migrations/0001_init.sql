-- 0001: the initial schema.
--
-- Times the engine produces (event, override and seen times) are bigint
-- unix nanoseconds, as in the SQLite store: that is what the engine works
-- in, and timestamptz only keeps microseconds, so a round trip would not be
-- exact. Times only the database writes, for operators to read (updated_at
-- and the like), are timestamptz from now().
--
-- Identifier columns are COLLATE "C": byte order is the same whatever
-- locale the database was created with, and comparing bytes is much
-- cheaper than a locale's collation in the indexes every commit writes.

-- products is the catalog, shared by every slot. seq records insertion
-- order: an upsert that updates a row keeps the seq it was first given.
CREATE TABLE products (
	id             text COLLATE "C" PRIMARY KEY,
	seq            bigint GENERATED ALWAYS AS IDENTITY UNIQUE,
	name           text             NOT NULL DEFAULT '',
	base_price     double precision NOT NULL,
	strategy       text             NOT NULL DEFAULT '',
	floor          double precision NOT NULL DEFAULT 0,
	ceiling        double precision NOT NULL DEFAULT 0,
	max_change_pct double precision NOT NULL DEFAULT 0,
	rounding       text             NOT NULL DEFAULT '',
	created_at     timestamptz      NOT NULL DEFAULT now(),
	updated_at     timestamptz      NOT NULL DEFAULT now()
);

-- product_state is each product's pricing state. state is the
-- authoritative copy (json.Marshal of pricing.State); jsonb keeps numbers
-- as exact decimals, so floats survive the round trip, and lets an
-- operator query inside it. price .. changed_at duplicate parts of it for
-- plain SQL, and slot records which engine slot last wrote the row, for
-- diagnosing a partition handover.
CREATE TABLE product_state (
	product_id text COLLATE "C" PRIMARY KEY REFERENCES products (id),
	slot       integer          NOT NULL,
	price      double precision NOT NULL,
	demand     double precision NOT NULL,
	source     text             NOT NULL,
	version    bigint           NOT NULL,
	changed_at bigint           NOT NULL,
	state      jsonb            NOT NULL,
	updated_at timestamptz      NOT NULL DEFAULT now()
);

-- price_history gets one row per published price change: the hottest
-- table, filled by COPY at the ingest rate.
--
-- It has no primary key, so that each row costs one heap tuple and one
-- index entry: the engine's per-product version, strictly increasing,
-- already makes rows unique, and a unique index would only add a check per
-- row. The one index serves History (a product's rows, newest first) as a
-- forward scan. There is no foreign key on product_id either: checking it
-- would cost a lookup per row, and the engine only records history for
-- products it knows. version holds the engine's uint64 bit for bit.
CREATE TABLE price_history (
	product_id text COLLATE "C" NOT NULL,
	event_time bigint           NOT NULL,
	version    bigint           NOT NULL,
	price      double precision NOT NULL,
	demand     double precision NOT NULL,
	source     text             NOT NULL CHECK (source IN ('base', 'dynamic', 'override'))
);
CREATE INDEX price_history_product_time ON price_history (product_id, event_time DESC, version DESC);

-- overrides is the audit trail of manual prices, kept forever. A row with a
-- NULL ended_at is the product's open override; the partial unique index
-- makes "at most one open override per product" a fact of the schema.
CREATE TABLE overrides (
	id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	product_id     text COLLATE "C" NOT NULL REFERENCES products (id),
	override_price double precision NOT NULL,
	reason         text             NOT NULL DEFAULT '',
	set_by         text             NOT NULL DEFAULT '',
	created_at     bigint           NOT NULL,
	expires_at     bigint,          -- NULL: never
	ended_at       bigint,          -- NULL: still active
	ended_by       text,
	end_reason     text             -- 'removed', 'expired' or 'replaced'
);
CREATE INDEX overrides_product ON overrides (product_id, created_at DESC, id DESC);
CREATE UNIQUE INDEX overrides_open ON overrides (product_id) WHERE ended_at IS NULL;

-- seen_events remembers applied event ids per slot, so that an event
-- redelivered to the slot's new owner after a restart or a handover is not
-- applied twice.
--
-- Nothing is unique here, on purpose: the engine keeps the set in memory
-- and filters repeats before they reach a batch, so the store never looks
-- an id up; a unique index would cost a check per row and turn one repeat
-- into a failed COPY. Load keeps an id's earliest row. The index is in
-- time order within a slot, so COPY appends at its right edge, Load reads
-- a slot oldest first, and pruning deletes from the left.
CREATE TABLE seen_events (
	slot     integer          NOT NULL,
	seen_at  bigint           NOT NULL,
	event_id text COLLATE "C" NOT NULL
);
CREATE INDEX seen_events_slot_time ON seen_events (slot, seen_at, event_id);

-- settings holds catalog-wide values such as the default strategy.
CREATE TABLE settings (
	key   text COLLATE "C" PRIMARY KEY,
	value text NOT NULL
);

-- checkpoints holds, per slot (input partition), the input position
-- committed with the state (engine.Batch.Cursor) and the fence: every
-- commit increments generation, on the condition that it is still the
-- generation the committing process loaded. A process that lost the slot
-- to another finds it moved and its commit refused.
CREATE TABLE checkpoints (
	slot       integer     PRIMARY KEY CHECK (slot >= 0),
	cursor     text        NOT NULL DEFAULT '',
	generation bigint      NOT NULL DEFAULT 0,
	updated_at timestamptz NOT NULL DEFAULT now()
);
