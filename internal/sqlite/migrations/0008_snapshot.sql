-- 0008: the tag of the snapshot file written at a clean shutdown (see the
-- Store's SaveSnapshot). The file holds the whole loaded state in one
-- piece; it is used by the next Load only while this row names it, and
-- Load deletes the row, so a snapshot is used once and never after a
-- commit that it does not hold.
CREATE TABLE snapshot_tag (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	token BLOB    NOT NULL
);
