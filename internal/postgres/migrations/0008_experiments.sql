-- 0008: price experiments (docs/EXPERIMENTS.md). An experiment is kept
-- whole as jsonb (its definition and what became of it), upserted by id;
-- its arms' totals are plain sums each commit adds its events' share to,
-- in the same transaction as those events' ids and the consumed offsets,
-- so that several engines add to one arm and every event counts once.
-- p_value is the smallest always-valid p-value the arm's comparison
-- reached: it never rises.
CREATE TABLE experiments (
	id         text   PRIMARY KEY,
	record     jsonb  NOT NULL,
	created_at bigint NOT NULL
);

CREATE TABLE experiment_arms (
	experiment_id text             NOT NULL REFERENCES experiments (id),
	arm           integer          NOT NULL,
	views         bigint           NOT NULL,
	purchases     bigint           NOT NULL,
	units         bigint           NOT NULL,
	revenue       double precision NOT NULL,
	revenue_sq    double precision NOT NULL,
	profit        double precision NOT NULL,
	profit_sq     double precision NOT NULL,
	p_value       double precision NOT NULL,
	PRIMARY KEY (experiment_id, arm)
);
