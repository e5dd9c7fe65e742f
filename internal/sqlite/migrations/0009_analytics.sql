-- 0009: revenue analytics. One row per product and UTC hour of the
-- engine's clock in which it had shoppers: the counts the product's state
-- kept while the hour ran (pricing.Tally), written once the hour is over,
-- in the commit that resets the state (engine.AnalyticsRow). strategy is
-- the strategy that priced the product; arm the price experiment's arm
-- ('' outside one).
--
-- Appended to, in about hour order, and read by ranges of hours, so the
-- one index is on hour and is written at its right edge. There is no
-- index by product: one would cost a page per product per commit at a
-- million products (see 0006); a query for one product reads its range
-- of hours.
CREATE TABLE analytics_hourly (
	seq        INTEGER PRIMARY KEY,
	hour       INTEGER NOT NULL,
	product_id TEXT    NOT NULL,
	strategy   TEXT    NOT NULL,
	arm        TEXT    NOT NULL DEFAULT '',
	views      INTEGER NOT NULL,
	carts      INTEGER NOT NULL,
	purchases  INTEGER NOT NULL,
	units      INTEGER NOT NULL,
	revenue    REAL    NOT NULL,
	cost       REAL    NOT NULL,
	list       REAL    NOT NULL
);
CREATE INDEX analytics_hourly_hour ON analytics_hourly (hour);
