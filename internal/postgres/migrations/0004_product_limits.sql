-- 0004: a product's limits on what shoppers' events can do to its price
-- (pricing.Limits): the largest quantity of one event and the
-- price-velocity breaker (the largest move, in percent, within a window).
--
-- Columns of their own, like the guardrails, so an operator can ask which
-- products are protected with plain SQL. move_window is in nanoseconds,
-- like every time in this schema. 0 means "the catalog default", which is
-- what a product written before this migration means.
ALTER TABLE products
	ADD COLUMN max_quantity integer          NOT NULL DEFAULT 0,
	ADD COLUMN max_move_pct double precision NOT NULL DEFAULT 0,
	ADD COLUMN move_window  bigint           NOT NULL DEFAULT 0;
