-- 0002: a product's unit cost, margin floor and strategy plans
-- (pricing.Product's UnitCost, MinMarginPct, Inventory and Competition).
--
-- unit_cost and min_margin_pct are columns of their own, like the other
-- guardrails, so that an operator can query cost and margin with plain
-- SQL. plans is one JSON document (pricing.Product.PlansJSON): its shape
-- belongs to the strategies that read it, and a new plan or field should
-- not need a migration. It is jsonb, as product_state.state is: the
-- server checks it is JSON on the way in, and an operator can query inside
-- it (plans->'inventory'->>'period_end'). jsonb reorders keys and drops
-- whitespace, which does not matter to a reader that decodes it, and keeps
-- numbers and strings (the RFC 3339 times) exact. It is NULL when the
-- product has no plans, so that "plans IS NULL" is the plain question;
-- the defaults are what a product written before this migration means: no
-- cost, no margin, no plans.
ALTER TABLE products
	ADD COLUMN unit_cost      double precision NOT NULL DEFAULT 0,
	ADD COLUMN min_margin_pct double precision NOT NULL DEFAULT 0,
	ADD COLUMN plans          jsonb;
