-- 0006: price history and product states are appended, never updated in
-- place, so that what a commit writes does not grow with the number of
-- distinct products it touched.
--
-- Before, price_history was clustered by (product_id, ...) and
-- product_state keyed by product_id: a commit whose events were spread
-- over a large catalog rewrote about one 16 KiB page of each per touched
-- product (26-29 KB of disk writes per event at a million products).
-- Appended at the right edge of rowid tables, a commit writes about the
-- bytes of its rows.

-- price_history: one row per published price change, in the order the
-- changes were committed. prev is the seq of the same product's previous
-- row (0 for its first): a product's history is read newest first by
-- following prev from its newest row (state_log.head), one rowid lookup
-- per row, instead of through an index on (product_id, event_time),
-- which would again take one page per product per commit. The engine
-- appends a product's changes in (event_time, version) order, so the
-- chain is that order. Rows are numbered here in time order.
CREATE TABLE price_history_0006 (
	seq        INTEGER PRIMARY KEY,
	product_id TEXT    NOT NULL,
	event_time INTEGER NOT NULL,
	version    INTEGER NOT NULL,
	price      REAL    NOT NULL,
	demand     REAL    NOT NULL,
	source     TEXT    NOT NULL CHECK (source IN ('base', 'dynamic', 'override')),
	prev       INTEGER NOT NULL
);
INSERT INTO price_history_0006 (seq, product_id, event_time, version, price, demand, source, prev)
SELECT seq, product_id, event_time, version, price, demand, source,
	coalesce(lag(seq) OVER (PARTITION BY product_id ORDER BY event_time, version), 0)
FROM (SELECT row_number() OVER (ORDER BY event_time, version, product_id) AS seq, * FROM price_history)
ORDER BY seq;
DROP TABLE price_history;
ALTER TABLE price_history_0006 RENAME TO price_history;

-- state_log: each product's state, appended by every commit that changed
-- it. A product's newest row (highest seq) is its current state and
-- holds the seq of its newest price_history row (head). state is
-- pricing.State's binary encoding (a version byte first), or the JSON
-- written before this migration (starting with '{'), which Load still
-- reads; NULL for a product with history but no state. price and version
-- repeat parts of it for plain SQL (see the product_state view).
--
-- The store keeps the log at about twice the number of products: each
-- commit copies the still-current rows among the oldest ones to the end
-- and deletes the oldest range (see the Store's cleaner), so the table
-- is written only at its two edges.
CREATE TABLE state_log (
	seq        INTEGER PRIMARY KEY,
	product_id TEXT    NOT NULL,
	head       INTEGER NOT NULL,
	price      REAL,
	version    INTEGER,
	state      BLOB
);
INSERT INTO state_log (product_id, head, price, version, state)
SELECT ids.id, coalesce(h.head, 0), s.price, s.version, s.state
FROM (SELECT product_id AS id FROM product_state UNION SELECT product_id FROM price_history) AS ids
LEFT JOIN product_state AS s ON s.product_id = ids.id
LEFT JOIN (SELECT product_id, max(seq) AS head FROM price_history GROUP BY product_id) AS h ON h.product_id = ids.id
ORDER BY ids.id;
DROP TABLE product_state;

-- product_state keeps its name for operators' queries: each product's
-- current price and version, and its encoded state.
CREATE VIEW product_state AS
SELECT product_id, price, version, state FROM state_log
WHERE seq IN (SELECT max(seq) FROM state_log GROUP BY product_id);
