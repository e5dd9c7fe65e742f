-- 0003: a product's unit cost, margin floor and strategy plans
-- (pricing.Product's UnitCost, MinMarginPct, Inventory and Competition).
--
-- unit_cost and min_margin_pct are columns of their own, like the other
-- guardrails, so that an operator can query cost and margin with plain
-- SQL (which products are priced near cost, say). plans is one JSON
-- document (pricing.Product.PlansJSON, '' when the product has none):
-- its shape belongs to the strategies that read it, and a new plan or
-- field should not need a migration. The defaults are what a product
-- written before this migration means: no cost, no margin, no plans.
ALTER TABLE products ADD COLUMN unit_cost      REAL NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN min_margin_pct REAL NOT NULL DEFAULT 0;
ALTER TABLE products ADD COLUMN plans          TEXT NOT NULL DEFAULT '';
