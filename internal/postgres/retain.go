package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/retry"
)

// The history retention (engine.HistoryRetention) over the partitions of
// price_history (migration 0006). One engine at a time does it, the one
// that gets the advisory lock; the others find it taken and return. A run:
//
//  1. creates the partitions of the next partitionsAhead days that are
//     missing. It attaches a table made beside price_history, which takes
//     a SHARE UPDATE EXCLUSIVE lock on price_history, one that commits
//     (ROW EXCLUSIVE) do not wait for, and no scan (the table is empty;
//     the DEFAULT partition, normally empty too, is checked). Never
//     today's: a row being written to the DEFAULT partition for the range
//     being attached fails its commit (the partition it was routed to no
//     longer takes it), and today's rows are being written. Today's
//     partition was made ahead (by the migration, or a run of the last
//     seven days); if none was, today's rows go to the DEFAULT partition.
//  2. rolls the DEFAULT partition's rows older than the raw cut-off into
//     price_hourly, deleting them in the same statement, retainRows at a
//     time.
//  3. rolls each partition whose days are all older than the raw cut-off
//     into price_hourly, an hour per transaction, then drops it. Dropping
//     a partition takes an ACCESS EXCLUSIVE lock on price_history, which
//     waits for the commits and reads in flight and holds up the ones
//     that come meanwhile: the DROP waits at most dropLockTimeout, then
//     gives up and tries again later, so a commit waits at most that long,
//     once a day.
//  4. deletes the summaries older than the hourly cut-off, retainRows at
//     a time.
//
// Between steps it pauses as long as the step took, as PruneSeen's steps
// leave the database to the commits. A change stays in price_history
// until its whole day is older than the raw window: up to a day longer
// than it says.

const (
	// partitionsAhead is how many days after today get their partition
	// ahead of time: engines that stop for less than a week find them
	// there when they start again.
	partitionsAhead = 7
	// retainRows bounds the rows one step deletes.
	retainRows = 4096
	// dropLockTimeout bounds how long a DROP (or ATTACH) waits for its
	// locks, and so how long it can hold commits up; a run tries dropTries
	// times, dropPause apart, then leaves the partition (and the younger
	// ones) to the next run.
	dropLockTimeout = 100 * time.Millisecond
	dropTries       = 5
	dropPause       = 250 * time.Millisecond
	dayNS           = 24 * engine.HourNS
)

// partition is one partition of price_history: [lo, hi) of event_time.
type partition struct {
	name   string
	lo, hi int64
	def    bool
}

// boundRe reads a range partition's bound as pg_get_expr prints it.
var boundRe = regexp.MustCompile(`FROM \('?(-?\d+|MINVALUE)'?\) TO \('?(-?\d+|MAXVALUE)'?\)`)

// partitions lists price_history's partitions, oldest first, the DEFAULT
// one last.
func partitions(ctx context.Context, q querier) ([]partition, error) {
	rows, _ := q.Query(ctx, `SELECT c.relname, pg_get_expr(c.relpartbound, c.oid)
		FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
		WHERE i.inhparent = 'price_history'::regclass`)
	var out []partition
	var name, bound string
	_, err := pgx.ForEachRow(rows, []any{&name, &bound}, func() error {
		if bound == "DEFAULT" {
			out = append(out, partition{name: name, def: true, lo: math.MaxInt64, hi: math.MaxInt64})
			return nil
		}
		m := boundRe.FindStringSubmatch(bound)
		if m == nil {
			return fmt.Errorf("partition %s: cannot read its bound %q", name, bound)
		}
		p := partition{name: name, lo: math.MinInt64, hi: math.MaxInt64}
		if m[1] != "MINVALUE" {
			p.lo, _ = strconv.ParseInt(m[1], 10, 64)
		}
		if m[2] != "MAXVALUE" {
			p.hi, _ = strconv.ParseInt(m[2], 10, 64)
		}
		out = append(out, p)
		return nil
	})
	slices.SortFunc(out, func(x, y partition) int { return cmp.Compare(x.lo, y.lo) })
	return out, err
}

// PruneHistory applies r as of now for the whole database; see DB.PruneHistory.
func (s *Store) PruneHistory(ctx context.Context, now int64, r engine.HistoryRetention) (engine.HistoryPruned, error) {
	return s.db.PruneHistory(ctx, now, r)
}

// PruneHistory creates the partitions ahead of now and applies r as of
// now (see the steps above); with the zero r it only creates partitions.
// History is shared by every slot, so the first caller of a run does it
// and the others (in this process, or in other engines: an advisory lock)
// return at once with nothing done.
func (db *DB) PruneHistory(ctx context.Context, now int64, r engine.HistoryRetention) (n engine.HistoryPruned, err error) {
	if !db.retaining.CompareAndSwap(false, true) {
		return n, nil
	}
	defer db.retaining.Store(false)
	c, err := db.pool.Acquire(ctx)
	if err != nil {
		return n, fmt.Errorf("postgres: prune history: %w", unreachable(err))
	}
	defer c.Release()
	var locked bool
	if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock("+lockKey("retention")+")").Scan(&locked); err != nil {
		return n, fmt.Errorf("postgres: prune history: lock: %w", unreachable(err))
	}
	if !locked {
		return n, nil // another engine's run
	}
	defer unlockSession(ctx, c, "retention")
	err = db.retain(ctx, c, now, r, &n)
	if err != nil {
		return n, fmt.Errorf("postgres: prune history: %w", unreachable(err))
	}
	return n, nil
}

func (db *DB) retain(ctx context.Context, c *pgxpool.Conn, now int64, r engine.HistoryRetention, n *engine.HistoryPruned) error {
	parts, err := partitions(ctx, c)
	if err != nil {
		return err
	}
	if err := db.createAhead(ctx, c, parts, now, n); err != nil {
		return err
	}
	if !r.Enabled() {
		return nil
	}
	raw, hourly := r.Cutoffs(now)
	sums := r.Summaries()
	for _, p := range parts {
		if p.def {
			if err := db.rollDefault(ctx, c, p.name, raw, sums, n); err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
		}
	}
	for _, p := range parts {
		if p.def || p.hi > raw {
			continue
		}
		dropped, err := db.rollPartition(ctx, c, p, sums, n)
		if err != nil {
			return fmt.Errorf("%s: %w", p.name, err)
		}
		if !dropped {
			break // the lock is in demand: the next run goes on
		}
	}
	if hourly > 0 {
		del := `DELETE FROM price_hourly WHERE ctid = ANY(ARRAY(SELECT ctid FROM price_hourly WHERE hour < $1 LIMIT $2))`
		for {
			t0 := time.Now()
			tag, err := c.Exec(ctx, del, hourly, retainRows)
			if err != nil {
				return fmt.Errorf("expire summaries: %w", err)
			}
			n.Expired += tag.RowsAffected()
			if tag.RowsAffected() < retainRows {
				break
			}
			if err := retry.Sleep(ctx, time.Since(t0)); err != nil {
				return err
			}
		}
		// Analytics rows are kept as long as the hourly summaries.
		if err := expireAnalytics(ctx, c, hourly, n); err != nil {
			return err
		}
	}
	return nil
}

// createAhead creates the partitions of the partitionsAhead days after
// today that no partition covers yet. A day it cannot
// create because the DEFAULT partition holds rows of it (no engine
// created it in time) is skipped: its rows stay in the DEFAULT
// partition, whose old rows are rolled up all the same.
func (db *DB) createAhead(ctx context.Context, c *pgxpool.Conn, parts []partition, now int64, n *engine.HistoryPruned) error {
	today := now - ((now%dayNS)+dayNS)%dayNS
	for d := today + dayNS; d <= today+partitionsAhead*dayNS; d += dayNS {
		covered := false
		for _, p := range parts {
			if !p.def && p.lo < d+dayNS && d < p.hi {
				covered = true
				break
			}
		}
		if covered {
			continue
		}
		name := "price_history_p" + time.Unix(0, d).UTC().Format("20060102")
		id := pgx.Identifier{name}.Sanitize()
		err := withLockTimeout(ctx, c, func(tx pgx.Tx) error {
			// Made beside the table and attached: CREATE TABLE ..
			// PARTITION OF would lock price_history against the commits.
			if _, err := tx.Exec(ctx, "CREATE TABLE "+id+" (LIKE price_history INCLUDING DEFAULTS INCLUDING CONSTRAINTS)"); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, fmt.Sprintf("ALTER TABLE price_history ATTACH PARTITION %s FOR VALUES FROM (%d) TO (%d)", id, d, d+dayNS))
			return err
		})
		var pe *pgconn.PgError
		switch {
		case err == nil:
			n.Created++
			db.log.Info("postgres: created a history partition", "partition", name)
		case errors.As(err, &pe) && pe.Code == "23514": // check_violation: the DEFAULT partition has rows of the day
			db.warnOnce(name, "postgres: a day's history partition cannot be created: the DEFAULT partition already holds rows of that day, which stay there",
				"partition", name)
		case errors.As(err, &pe) && pe.Code == "55P03": // lock_not_available: try again next run
			db.log.Debug("postgres: creating a history partition waited too long for its lock; trying again next time", "partition", name)
		default:
			return fmt.Errorf("create partition %s: %w", name, err)
		}
	}
	return nil
}

// withLockTimeout runs f in a transaction whose statements wait at most
// dropLockTimeout for a lock.
func withLockTimeout(ctx context.Context, c *pgxpool.Conn, f func(pgx.Tx) error) error {
	return pgx.BeginFunc(ctx, c, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, fmt.Sprintf("SET LOCAL lock_timeout = %d", dropLockTimeout.Milliseconds())); err != nil {
			return err
		}
		return f(tx)
	})
}

// warnOnce logs msg at most once per key for the life of db.
func (db *DB) warnOnce(key, msg string, args ...any) {
	db.warnMu.Lock()
	defer db.warnMu.Unlock()
	if db.warned == nil {
		db.warned = map[string]bool{}
	}
	if !db.warned[key] {
		db.warned[key] = true
		db.log.Warn(msg, args...)
	}
}

// summarize is the SQL of the summaries of the rows of src (a FROM item
// with price_history's columns), per product and UTC hour: the open is
// the first change's price, the close and its details the last change's,
// by (event_time, version).
func summarize(src string) string {
	h := strconv.FormatInt(engine.HourNS, 10)
	return `SELECT product_id, hr AS hour,
			(array_agg(price ORDER BY event_time, version))[1] AS open,
			max(price) AS high, min(price) AS low,
			(array_agg(price ORDER BY event_time DESC, version DESC))[1] AS close,
			count(*) AS changes, max(event_time) AS close_at,
			(array_agg(version ORDER BY event_time DESC, version DESC))[1] AS version,
			(array_agg(source ORDER BY event_time DESC, version DESC))[1] AS source,
			(array_agg(demand ORDER BY event_time DESC, version DESC))[1] AS demand
		FROM (SELECT *, event_time - ((event_time % ` + h + `) + ` + h + `) % ` + h + ` AS hr FROM ` + src + `) AS t
		GROUP BY product_id, hr`
}

// upsertSummaries writes the summaries of the CTE s. A summary already
// there for the product and hour (its changes were split between the
// DEFAULT partition's steps) is merged with the new one, whose changes
// come after its own.
const upsertSummaries = `INSERT INTO price_hourly AS h (product_id, hour, open, high, low, close, changes, close_at, version, source, demand)
	SELECT product_id, hour, open, high, low, close, changes, close_at, version, source, demand FROM s
	ON CONFLICT (product_id, hour) DO UPDATE SET
		high = greatest(h.high, excluded.high), low = least(h.low, excluded.low), changes = h.changes + excluded.changes,
		open = CASE WHEN (excluded.close_at, excluded.version) >= (h.close_at, h.version) THEN h.open ELSE excluded.open END,
		close = CASE WHEN (excluded.close_at, excluded.version) >= (h.close_at, h.version) THEN excluded.close ELSE h.close END,
		source = CASE WHEN (excluded.close_at, excluded.version) >= (h.close_at, h.version) THEN excluded.source ELSE h.source END,
		demand = CASE WHEN (excluded.close_at, excluded.version) >= (h.close_at, h.version) THEN excluded.demand ELSE h.demand END,
		version = CASE WHEN (excluded.close_at, excluded.version) >= (h.close_at, h.version) THEN excluded.version ELSE h.version END,
		close_at = greatest(h.close_at, excluded.close_at)
	RETURNING 1`

// rollDefault rolls up and deletes the rows of the DEFAULT partition
// older than cut, oldest first, retainRows per statement (deleting and
// summarising them in one): a product's rows of a later step come after
// its rows of an earlier one.
func (db *DB) rollDefault(ctx context.Context, c *pgxpool.Conn, name string, cut int64, sums bool, n *engine.HistoryPruned) error {
	id := pgx.Identifier{name}.Sanitize()
	gone := `gone AS (DELETE FROM ` + id + ` WHERE ctid = ANY(ARRAY(SELECT ctid FROM ` + id + `
			WHERE event_time < $1 ORDER BY event_time, version LIMIT $2))
		RETURNING product_id, event_time, version, price, demand, source)`
	q := `WITH ` + gone + ` SELECT count(*), 0 FROM gone`
	if sums {
		q = `WITH ` + gone + `, s AS (` + summarize("gone") + `), ins AS (` + upsertSummaries + `)
			SELECT (SELECT count(*) FROM gone), (SELECT count(*) FROM ins)`
	}
	for {
		t0 := time.Now()
		var rolled, written int64
		if err := c.QueryRow(ctx, q, cut, retainRows).Scan(&rolled, &written); err != nil {
			return err
		}
		n.Rolled += rolled
		n.Summaries += written
		if rolled < retainRows {
			return nil
		}
		if err := retry.Sleep(ctx, time.Since(t0)); err != nil {
			return err
		}
	}
}

// rollPartition rolls up the partition p, whose days are all older than
// the raw cut-off, an hour per transaction from where the last run
// stopped (history_rollup), then drops it, unless its lock cannot be had
// in time (dropped is false).
func (db *DB) rollPartition(ctx context.Context, c *pgxpool.Conn, p partition, sums bool, n *engine.HistoryPruned) (dropped bool, err error) {
	id := pgx.Identifier{p.name}.Sanitize()
	if sums {
		var from int64
		if err := c.QueryRow(ctx, "SELECT rolled_before FROM history_rollup").Scan(&from); err != nil {
			return false, err
		}
		from = max(from, p.lo)
		q := `WITH s AS (` + summarize("(SELECT * FROM "+id+" WHERE event_time >= $1 AND event_time < $2) AS r") + `),
				ins AS (` + upsertSummaries + `),
				moved AS (UPDATE history_rollup SET rolled_before = greatest(rolled_before, $2) RETURNING 1)
			SELECT coalesce((SELECT sum(changes) FROM s), 0), (SELECT count(*) FROM ins), (SELECT count(*) FROM moved)`
		for h := from; h < p.hi; h += engine.HourNS {
			t0 := time.Now()
			var rolled, written, moved int64
			if err := c.QueryRow(ctx, q, h, h+engine.HourNS).Scan(&rolled, &written, &moved); err != nil {
				return false, err
			}
			n.Rolled += rolled
			n.Summaries += written
			if err := retry.Sleep(ctx, time.Since(t0)); err != nil {
				return false, err
			}
		}
	} else {
		// Nothing to write: the rows go with the partition. Counted from
		// the planner's estimate, rather than a scan of the partition.
		var est float64
		if err := c.QueryRow(ctx, "SELECT reltuples FROM pg_class WHERE oid = $1::regclass", id).Scan(&est); err != nil {
			return false, err
		}
		n.Rolled += int64(max(est, 0))
	}
	for try := range dropTries {
		if try > 0 {
			if err := retry.Sleep(ctx, dropPause); err != nil {
				return false, err
			}
		}
		err = withLockTimeout(ctx, c, func(tx pgx.Tx) error {
			_, err := tx.Exec(ctx, "DROP TABLE "+id)
			return err
		})
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "55P03" {
			break
		}
	}
	var pe *pgconn.PgError
	switch {
	case err == nil:
		n.Dropped++
		db.log.Info("postgres: dropped a history partition older than the raw retention", "partition", p.name)
		return true, nil
	case errors.As(err, &pe) && pe.Code == "55P03":
		db.warnOnce("drop "+p.name, "postgres: dropping a history partition waited too long for its lock (long transactions reading price_history?); each run tries again",
			"partition", p.name, "tries", dropTries, "lock_timeout", dropLockTimeout)
		return false, nil
	default:
		return false, fmt.Errorf("drop: %w", err)
	}
}
