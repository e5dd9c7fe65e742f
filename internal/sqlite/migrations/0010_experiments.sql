-- 0010: price experiments (docs/EXPERIMENTS.md). An experiment is kept
-- whole as JSON (its definition and what became of it: stopped, promoted),
-- upserted by id; its arms' totals are plain sums that each commit adds
-- its events' share to, in the same transaction as those events' ids, so
-- that they count every event exactly once. p_value is the smallest
-- always-valid p-value the arm's comparison reached: it never rises.
CREATE TABLE experiments (
	id         TEXT    PRIMARY KEY,
	record     TEXT    NOT NULL,
	created_at INTEGER NOT NULL
);

CREATE TABLE experiment_arms (
	experiment_id TEXT    NOT NULL REFERENCES experiments (id),
	arm           INTEGER NOT NULL,
	views         INTEGER NOT NULL,
	purchases     INTEGER NOT NULL,
	units         INTEGER NOT NULL,
	revenue       REAL    NOT NULL,
	revenue_sq    REAL    NOT NULL,
	profit        REAL    NOT NULL,
	profit_sq     REAL    NOT NULL,
	p_value       REAL    NOT NULL,
	PRIMARY KEY (experiment_id, arm)
) WITHOUT ROWID;
