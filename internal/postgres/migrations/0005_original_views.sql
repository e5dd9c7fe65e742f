-- 0005: the original system's tables, as read-only views, so that a team
-- moving over keeps its SQL (docs/MIGRATING.md). The original kept, in
-- Oracle:
--
--   price_history   (id, product_id, price, price_source, event_time)
--   price_overrides (id, product_id UNIQUE, override_price, reason, set_time)
--
-- dynaprice's price_history has the same name but other columns (source,
-- event_time in unix nanoseconds, no id), and overrides keeps every
-- override ever set. The views live in a schema of their own, "original"
-- (or "<schema>_original" for a deployment in another schema than public),
-- next to the tables they read: a reporting role whose search_path starts
-- with it runs the original's queries unchanged:
--
--   SET search_path TO original, public;
--   SELECT * FROM price_history ORDER BY event_time DESC;
--
-- Times are UTC timestamps (the original ran with ORACLE_TIMEZONE=UTC),
-- to the microsecond. price_history.id is numbered on the fly, oldest
-- first: it is stable while history only grows, and costs a scan of the
-- history it numbers, so filter by product_id on a large table.
-- price_overrides shows the open overrides only, one per product, as the
-- original's table did; every override ever set stays in overrides.
--
-- They are views over the live tables, never written by dynaprice, and
-- refuse writes: overrides go through the API (POST /override), so that
-- the engine applies them, audits them and publishes the price.
DO $migration$
DECLARE
	base text := current_schema();
	compat text := CASE WHEN current_schema() = 'public' THEN 'original' ELSE current_schema() || '_original' END;
BEGIN
	EXECUTE format('CREATE SCHEMA IF NOT EXISTS %I', compat);
	EXECUTE format($sql$
		CREATE VIEW %1$I.price_history AS
		SELECT row_number() OVER (ORDER BY h.event_time, h.product_id, h.version) AS id,
			h.product_id, h.price, h.source AS price_source,
			to_timestamp(h.event_time / 1e9) AT TIME ZONE 'UTC' AS event_time,
			h.demand, h.version
		FROM %2$I.price_history h$sql$, compat, base);
	EXECUTE format($sql$
		CREATE VIEW %1$I.price_overrides AS
		SELECT o.id, o.product_id, o.override_price, o.reason,
			to_timestamp(o.created_at / 1e9) AT TIME ZONE 'UTC' AS set_time,
			CASE WHEN o.expires_at IS NULL THEN NULL ELSE to_timestamp(o.expires_at / 1e9) AT TIME ZONE 'UTC' END AS expires_at,
			o.set_by
		FROM %2$I.overrides o
		WHERE o.ended_at IS NULL$sql$, compat, base);
	EXECUTE format($sql$
		CREATE FUNCTION %1$I.read_only() RETURNS trigger LANGUAGE plpgsql AS $fn$
		BEGIN
			RAISE EXCEPTION '%%.%% is a read-only view of dynaprice''s data: set and remove overrides with POST /override and DELETE /override/{id}', TG_TABLE_SCHEMA, TG_TABLE_NAME;
		END $fn$$sql$, compat);
	EXECUTE format('CREATE TRIGGER read_only INSTEAD OF INSERT OR UPDATE OR DELETE ON %1$I.price_overrides FOR EACH ROW EXECUTE FUNCTION %1$I.read_only()', compat);
	EXECUTE format('CREATE TRIGGER read_only INSTEAD OF INSERT OR UPDATE OR DELETE ON %1$I.price_history FOR EACH ROW EXECUTE FUNCTION %1$I.read_only()', compat);
END
$migration$;
