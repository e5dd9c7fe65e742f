-- 0002: the input position committed with the state (engine.Batch.Cursor).
-- One row at most; serve has no stream to resume from and leaves it empty,
-- but the store keeps the port's whole contract.
CREATE TABLE cursor (
	id    INTEGER NOT NULL PRIMARY KEY CHECK (id = 1),
	value TEXT    NOT NULL
);
