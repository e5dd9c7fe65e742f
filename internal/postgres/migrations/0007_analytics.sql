-- 0007: revenue analytics. One row per product and UTC hour of the
-- engine's clock in which it had shoppers: the counts the product's state
-- kept while the hour ran (pricing.Tally), written once the hour is over,
-- in the commit that resets the state (engine.AnalyticsRow). strategy is
-- the strategy that priced the product; arm the price experiment's arm
-- ('' outside one).
--
-- Not partitioned: a row is a product's whole hour, not a change, so the
-- table grows by at most the active products an hour; the retention
-- deletes the rows older than the hourly window in small steps, as it
-- does price_hourly's. Read by ranges of hours: a BRIN index, as rows
-- arrive in about hour order, and a B-tree by product for the reports
-- of one product.
CREATE TABLE analytics_hourly (
	hour       bigint           NOT NULL,
	product_id text COLLATE "C" NOT NULL,
	strategy   text             NOT NULL,
	arm        text             NOT NULL DEFAULT '',
	views      bigint           NOT NULL,
	carts      bigint           NOT NULL,
	purchases  bigint           NOT NULL,
	units      bigint           NOT NULL,
	revenue    double precision NOT NULL,
	cost       double precision NOT NULL,
	list       double precision NOT NULL
);
CREATE INDEX analytics_hourly_hour ON analytics_hourly USING brin (hour);
CREATE INDEX analytics_hourly_product ON analytics_hourly (product_id, hour);
