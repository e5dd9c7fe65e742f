-- 0006: price_history partitioned by time, and hourly summaries, for the
-- history retention (engine.HistoryRetention): changes older than the raw
-- window are rolled into one summary per product and UTC hour
-- (price_hourly) a partition at a time, and the partition is dropped;
-- summaries older than the hourly window are deleted. The engines do it
-- (retain.go), one at a time under an advisory lock, and create the
-- partitions of the coming days ahead.
--
-- Partitions are UTC days of event_time (unix ns), named
-- price_history_pYYYYMMDD. Dropping a day is one catalog change, where
-- deleting its rows would leave dead tuples for vacuum to find and the
-- index to shrink. A DEFAULT partition takes any row no day's partition
-- covers (a time far in the past or future, days that no engine created
-- ahead): commits never fail for want of a partition. Its old rows are
-- rolled up and deleted in small steps instead.
--
-- The rows already there are kept where they are: the table becomes the
-- partition price_history_legacy, covering the days they span (attaching
-- it reads it once, to check the bound). It is rolled up and dropped like
-- the others once its last day is older than the raw window.

ALTER TABLE price_history RENAME TO price_history_legacy;
ALTER INDEX price_history_product_time RENAME TO price_history_legacy_product_time;

-- The same columns, constraint and index as 0001's table (a partition
-- must match them), plus a BRIN index on event_time: a few pages per
-- gigabyte, with which the roll-up reads one hour of a partition without
-- scanning all of it (rows arrive in about time order).
CREATE TABLE price_history (
	product_id text COLLATE "C" NOT NULL,
	event_time bigint           NOT NULL,
	version    bigint           NOT NULL,
	price      double precision NOT NULL,
	demand     double precision NOT NULL,
	source     text             NOT NULL CONSTRAINT price_history_source_check CHECK (source IN ('base', 'dynamic', 'override'))
) PARTITION BY RANGE (event_time);
CREATE INDEX price_history_product_time ON price_history (product_id, event_time DESC, version DESC);
CREATE INDEX price_history_time ON price_history USING brin (event_time);
CREATE TABLE price_history_default PARTITION OF price_history DEFAULT;

-- price_hourly: a product's changes of one UTC hour (hour: its start,
-- unix ns): the first and last price, the highest and lowest, how many
-- changes, and the last change's time, version, source and demand (the
-- close's). The primary key serves GET /history; the BRIN index the
-- deletion of old summaries (they are written in about hour order).
CREATE TABLE price_hourly (
	product_id text COLLATE "C" NOT NULL,
	hour       bigint           NOT NULL,
	open       double precision NOT NULL,
	high       double precision NOT NULL,
	low        double precision NOT NULL,
	close      double precision NOT NULL,
	changes    bigint           NOT NULL,
	close_at   bigint           NOT NULL,
	version    bigint           NOT NULL,
	source     text             NOT NULL CHECK (source IN ('base', 'dynamic', 'override')),
	demand     double precision NOT NULL,
	PRIMARY KEY (product_id, hour)
);
CREATE INDEX price_hourly_hour ON price_hourly USING brin (hour);

-- history_rollup: one row. Every change before rolled_before (unix ns) is
-- in price_hourly: the roll-up moves it forward in the transaction that
-- writes an hour's summaries, and readers ignore the raw rows before it,
-- which the partition's drop deletes a moment later, so that no change
-- shows twice.
CREATE TABLE history_rollup (
	id            integer PRIMARY KEY CHECK (id = 1),
	rolled_before bigint  NOT NULL
);
INSERT INTO history_rollup (id, rolled_before) VALUES (1, 0);

DO $migration$
DECLARE
	day      constant bigint := 86400 * 1000000000::bigint;
	compat   text := CASE WHEN current_schema() = 'public' THEN 'original' ELSE current_schema() || '_original' END;
	lo       bigint;
	hi       bigint;
	today    bigint := floor(extract(epoch FROM now()) / 86400)::bigint * day;
	d        bigint;
BEGIN
	-- The compatibility view of 0005 follows the table it was created on,
	-- now the legacy partition: point it at the partitioned table.
	IF to_regclass(format('%I.price_history', compat)) IS NOT NULL THEN
		EXECUTE format($sql$
			CREATE OR REPLACE VIEW %1$I.price_history AS
			SELECT row_number() OVER (ORDER BY h.event_time, h.product_id, h.version) AS id,
				h.product_id, h.price, h.source AS price_source,
				to_timestamp(h.event_time / 1e9) AT TIME ZONE 'UTC' AS event_time,
				h.demand, h.version
			FROM %2$I.price_history h$sql$, compat, current_schema());
	END IF;

	SELECT min(event_time), max(event_time) INTO lo, hi FROM price_history_legacy;
	IF lo IS NULL THEN
		DROP TABLE price_history_legacy;
		hi := today;
	ELSE
		lo := lo - (((lo % day) + day) % day);
		hi := hi - (((hi % day) + day) % day) + day;
		EXECUTE format('ALTER TABLE price_history ATTACH PARTITION price_history_legacy FOR VALUES FROM (%s) TO (%s)', lo, hi);
	END IF;

	-- Today and the next seven days; the engines keep a week ahead.
	d := greatest(hi, today);
	WHILE d < today + 8 * day LOOP
		EXECUTE format('CREATE TABLE %I PARTITION OF price_history FOR VALUES FROM (%s) TO (%s)',
			'price_history_p' || to_char(to_timestamp(d / 1e9) AT TIME ZONE 'UTC', 'YYYYMMDD'), d, d + day);
		d := d + day;
	END LOOP;
END
$migration$;
