-- 0004: applied event ids are remembered by their 64-bit hash
-- (engine.EventHash, stored as a signed INTEGER with the same bits), not
-- by the id string a client sent: every id costs the same 16 bytes of row
-- whatever its length, and the engine, which keeps the set in memory, can
-- remember the whole dedup window instead of a count sized to the strings.
--
-- Same layout as seen_events and for the same reasons (see 0001):
-- clustered by time, so that inserts land on the right edge and pruning
-- deletes from the left; not unique, Load keeps an id's earliest row.
--
-- seen_events, with the strings written before this migration, stays: an
-- upgrade must not forget ids already acknowledged, and SQL cannot compute
-- the hash. The store reads its rows at Load, hashing each id in Go, and
-- prunes them by age with the others, so it empties within one dedup
-- window of the upgrade; nothing writes to it any more. A later migration
-- drops it.
CREATE TABLE seen_hashes (
	seen_at INTEGER NOT NULL,
	hash    INTEGER NOT NULL,
	PRIMARY KEY (seen_at, hash)
) WITHOUT ROWID;
