-- 0003: applied event ids are remembered by their 64-bit hash
-- (engine.EventHash, stored as a bigint with the same bits), not by the id
-- string a client sent: every id costs the same few bytes whatever its
-- length, and the engine, which keeps the set in memory, can remember the
-- whole dedup window instead of a count sized to the strings.
--
-- Same layout as seen_events and for the same reasons (see 0001): nothing
-- unique, Load keeps an id's earliest row; the index is in time order
-- within a slot, so COPY appends at its right edge and pruning deletes
-- from the left.
--
-- seen_events, with the strings written before this migration, stays: an
-- upgrade must not forget ids already acknowledged, SQL cannot compute the
-- hash, and during a rolling upgrade engines of the previous release still
-- write to it (DEPLOY.md: add tables first, drop them a release later).
-- The store reads a slot's rows there at Load, hashing each id in Go, and
-- prunes them by age with the others, so once no old engine runs it
-- empties within one dedup window. A later migration drops it.
CREATE TABLE seen_hashes (
	slot    integer NOT NULL,
	seen_at bigint  NOT NULL,
	hash    bigint  NOT NULL
);
CREATE INDEX seen_hashes_slot_time ON seen_hashes (slot, seen_at, hash);
