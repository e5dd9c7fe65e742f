-- 0007: history retention. Changes older than the raw window
-- (engine.HistoryRetention.Raw) are rolled into one summary per product
-- and UTC hour and deleted from price_history; summaries older than the
-- hourly window are deleted in turn (the Store's PruneHistory, retain.go).

-- price_hourly: a product's changes of one hour: the first and last
-- price, the highest and lowest, how many changes, and the last change's
-- time, version, source and demand (the close's). hour is the hour's
-- start, unix ns.
--
-- Like price_history it is appended to, in the order the summaries are
-- made (hour order), and chained per product through prev, the seq of the
-- product's previous summary, from its newest one (state_log.hourly). A
-- table keyed by (product_id, hour) would cost a page per product per
-- step of the roll-up, as price_history once did per commit (0006): at a
-- million products, 16 KiB written per change rolled up, instead of the
-- few dozen bytes of an appended row. AUTOINCREMENT: a seq is never used
-- twice, even once every summary has been deleted, so a pointer left at a
-- deleted summary never leads to another product's.
--
-- One row per product and hour: when the roll-up comes back to an hour
-- (a step ended in the middle of it), it updates the product's newest
-- summary in place, a row it appended moments before.
CREATE TABLE price_hourly (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	product_id TEXT    NOT NULL,
	hour       INTEGER NOT NULL,
	open       REAL    NOT NULL,
	high       REAL    NOT NULL,
	low        REAL    NOT NULL,
	close      REAL    NOT NULL,
	changes    INTEGER NOT NULL,
	close_at   INTEGER NOT NULL,
	version    INTEGER NOT NULL,
	source     TEXT    NOT NULL CHECK (source IN ('base', 'dynamic', 'override')),
	demand     REAL    NOT NULL,
	prev       INTEGER NOT NULL
);

-- state_log.hourly: the seq of the product's newest summary (0: none),
-- kept like head: a product's newest state_log row holds it, and the
-- roll-up appends a copy of that row when it starts a new summary for the
-- product, as a commit does for history without a new state. Load reads
-- it in the pass it already makes.
ALTER TABLE state_log ADD COLUMN hourly INTEGER NOT NULL DEFAULT 0;
