package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Load reads what the engine resumes from for this slot: the products it
// owns (in catalog order) and their states, the slot's remembered event
// ids and cursor, and all settings. It creates the slot's checkpoint row if
// missing and remembers the slot's generation, which the next Commit
// expects.
func (s *Store) Load(ctx context.Context) (engine.Snapshot, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	snap, gen, err := s.load(ctx)
	if err != nil {
		return engine.Snapshot{}, fmt.Errorf("postgres: load (slot %d): %w", s.slot, unreachable(err))
	}
	s.gen, s.known = gen, true
	return snap, nil
}

func (s *Store) load(ctx context.Context) (engine.Snapshot, int64, error) {
	snap := engine.Snapshot{Settings: map[string]string{}}
	// Its own transaction: created inside the snapshot below, a row
	// another process created concurrently would be a serialization error.
	if _, err := s.db.pool.Exec(ctx, "INSERT INTO checkpoints (slot) VALUES ($1) ON CONFLICT (slot) DO NOTHING", s.slot); err != nil {
		return snap, 0, fmt.Errorf("checkpoint: %w", err)
	}
	// One snapshot for everything, so that the generation read is the one
	// the state read belongs to: if another process commits for the slot
	// after it, this Store's next Commit is fenced.
	tx, err := s.db.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return snap, 0, err
	}
	defer rollback(ctx, tx)

	var gen int64
	if err := tx.QueryRow(ctx, "SELECT cursor, generation FROM checkpoints WHERE slot = $1", s.slot).Scan(&snap.Cursor, &gen); err != nil {
		return snap, 0, fmt.Errorf("checkpoint: %w", err)
	}
	all, err := queryProducts(ctx, tx)
	if err != nil {
		return snap, 0, fmt.Errorf("products: %w", err)
	}
	for _, p := range all {
		if s.owns == nil || s.owns(p.ID) {
			snap.Products = append(snap.Products, p)
		}
	}
	// The states of the owned products, as owns decides: the slot column
	// only records the last writer, and ownership moves when partitions do.
	// A join rather than "= ANY": its cost stays linear with thousands of
	// ids.
	var id string
	var blob []byte
	var rows pgx.Rows
	if s.owns == nil {
		rows, _ = tx.Query(ctx, "SELECT product_id, state FROM product_state")
	} else {
		ids := make([]string, len(snap.Products))
		for i, p := range snap.Products {
			ids[i] = p.ID
		}
		rows, _ = tx.Query(ctx, `SELECT s.product_id, s.state FROM product_state s
			JOIN unnest($1::text[]) AS o (id) ON o.id = s.product_id`, ids)
	}
	var states []engine.ProductState
	_, err = pgx.ForEachRow(rows, []any{&id, &blob}, func() error {
		var st pricing.State
		if err := json.Unmarshal(blob, &st); err != nil {
			return fmt.Errorf("state of %q: %w", id, err)
		}
		states = append(states, engine.ProductState{ID: id, State: st})
		return nil
	})
	if err != nil {
		return snap, 0, fmt.Errorf("states: %w", err)
	}
	snap.Align(states, nil)
	if snap.Seen, err = s.loadSeen(ctx, tx); err != nil {
		return snap, 0, fmt.Errorf("seen: %w", err)
	}
	if snap.Settings, err = querySettings(ctx, tx); err != nil {
		return snap, 0, fmt.Errorf("settings: %w", err)
	}
	if snap.Experiments, err = queryExperiments(ctx, tx); err != nil {
		return snap, 0, fmt.Errorf("experiments: %w", err)
	}
	return snap, gen, nil
}

// queryExperiments returns the experiments, oldest first, with their
// arms' totals.
func queryExperiments(ctx context.Context, q querier) ([]engine.ExperimentState, error) {
	var out []engine.ExperimentState
	at := map[string]int{}
	var id string
	var js []byte
	rows, _ := q.Query(ctx, "SELECT id, record FROM experiments ORDER BY created_at, id")
	_, err := pgx.ForEachRow(rows, []any{&id, &js}, func() error {
		var rec engine.ExperimentRecord
		if err := json.Unmarshal(js, &rec); err != nil {
			return fmt.Errorf("%q: %w", id, err)
		}
		at[id] = len(out)
		out = append(out, engine.NewExperimentState(rec))
		return nil
	})
	if err != nil {
		return nil, err
	}
	var arm int
	var t engine.ArmTotal
	rows, _ = q.Query(ctx, `SELECT experiment_id, arm, views, purchases, units, revenue, revenue_sq, profit, profit_sq, p_value
		FROM experiment_arms`)
	_, err = pgx.ForEachRow(rows, []any{&id, &arm, &t.Views, &t.Purchases, &t.Units, &t.Revenue, &t.RevenueSq, &t.Profit, &t.ProfitSq, &t.PValue}, func() error {
		if k, ok := at[id]; ok && arm >= 0 && arm < len(out[k].Arms) {
			out[k].Arms[arm] = t
		}
		return nil
	})
	return out, err
}

// querier is what the pool and a transaction share.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// productSelect lists the products columns in productDest's order, for
// queries that alias products as p. plans comes back as text, "" when NULL.
const productSelect = `p.id, p.name, p.base_price, p.strategy, p.floor, p.ceiling, p.max_change_pct, p.rounding,
	p.unit_cost, p.min_margin_pct, coalesce(p.plans::text, ''), p.max_quantity, p.max_move_pct, p.move_window`

// productDest returns the scan destinations for productSelect's columns
// into p and plans, which the caller then decodes with p.SetPlansJSON.
func productDest(p *pricing.Product, plans *string) []any {
	return []any{&p.ID, &p.Name, &p.BasePrice, &p.Strategy, &p.Floor, &p.Ceiling, &p.MaxChangePct, &p.Rounding,
		&p.UnitCost, &p.MinMarginPct, plans, &p.MaxQuantity, &p.MaxMovePct, (*int64)(&p.MoveWindow)}
}

// queryProducts returns the catalog in insertion order.
func queryProducts(ctx context.Context, q querier) ([]pricing.Product, error) {
	var p pricing.Product
	var plans string
	var out []pricing.Product
	rows, _ := q.Query(ctx, "SELECT "+productSelect+" FROM products p ORDER BY p.seq")
	_, err := pgx.ForEachRow(rows, productDest(&p, &plans), func() error {
		// SetPlansJSON gives every product plans of its own, although p is
		// reused for each row.
		if err := p.SetPlansJSON(plans); err != nil {
			return err
		}
		out = append(out, p)
		return nil
	})
	return out, err
}

func querySettings(ctx context.Context, q querier) (map[string]string, error) {
	var k, v string
	out := map[string]string{}
	rows, _ := q.Query(ctx, "SELECT key, value FROM settings")
	_, err := pgx.ForEachRow(rows, []any{&k, &v}, func() error {
		out[k] = v
		return nil
	})
	return out, err
}

// History returns productID's price changes, newest first (by event time,
// then by version), at most limit of them; none when limit <= 0. Changes
// the history retention rolled into hourly summaries are not among them
// (HistoryPage), even before their partition is dropped. It reads the
// last committed state and may run during a Commit.
func (db *DB) History(ctx context.Context, productID string, limit int) ([]engine.HistoryRow, error) {
	if limit <= 0 {
		return nil, nil
	}
	out, err := queryChanges(ctx, db.pool, productID, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: history: %w", unreachable(err))
	}
	return out, nil
}

// queryChanges reads productID's newest changes. The partitions whose
// rows are all before rolled_before are pruned when the query starts.
func queryChanges(ctx context.Context, q querier, productID string, limit int) ([]engine.HistoryRow, error) {
	var out []engine.HistoryRow
	h := engine.HistoryRow{ProductID: productID}
	var src string
	var version int64
	rows, _ := q.Query(ctx, `SELECT price, demand, source, event_time, version FROM price_history
		WHERE product_id = $1 AND event_time >= (SELECT rolled_before FROM history_rollup)
		ORDER BY event_time DESC, version DESC LIMIT $2`, productID, limit)
	_, err := pgx.ForEachRow(rows, []any{&h.Price, &h.Demand, &src, &h.At, &version}, func() error {
		var ok bool
		if h.Source, ok = pricing.ParseSource(src); !ok {
			return fmt.Errorf("unknown source %q", src)
		}
		h.Version = uint64(version)
		out = append(out, h)
		return nil
	})
	return out, err
}

// HistoryPage returns productID's newest changes, at most limit of them,
// and the hourly summaries of its changes older than those (the ones the
// history retention no longer keeps one by one), newest first, at most
// hourly of them; hourly < 0 means as many as limit leaves. Both come from
// one snapshot (a repeatable-read transaction), so that no change is in
// both or in neither.
func (db *DB) HistoryPage(ctx context.Context, productID string, limit, hourly int) (engine.HistoryPage, error) {
	var page engine.HistoryPage
	err := pgx.BeginTxFunc(ctx, db.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var err error
		if limit > 0 {
			if page.Changes, err = queryChanges(ctx, tx, productID, limit); err != nil {
				return err
			}
		}
		if hourly < 0 {
			hourly = limit - len(page.Changes)
		}
		if hourly <= 0 {
			return nil
		}
		h := engine.HourlyRow{ProductID: productID}
		var src string
		var version int64
		rows, _ := tx.Query(ctx, `SELECT hour, open, high, low, close, changes, close_at, version, source, demand
			FROM price_hourly WHERE product_id = $1 ORDER BY hour DESC LIMIT $2`, productID, hourly)
		_, err = pgx.ForEachRow(rows, []any{&h.Hour, &h.Open, &h.High, &h.Low, &h.Close, &h.Changes, &h.CloseAt, &version, &src, &h.Demand}, func() error {
			var ok bool
			if h.Source, ok = pricing.ParseSource(src); !ok {
				return fmt.Errorf("unknown source %q", src)
			}
			h.Version = uint64(version)
			page.Hourly = append(page.Hourly, h)
			return nil
		})
		return err
	})
	if err != nil {
		return engine.HistoryPage{}, fmt.Errorf("postgres: history: %w", unreachable(err))
	}
	return page, nil
}

// OverrideAudit returns productID's overrides, newest first, at most limit
// of them; none when limit <= 0. Zero times mean "never" (ExpiresAt) and
// "still active" (EndedAt).
func (db *DB) OverrideAudit(ctx context.Context, productID string, limit int) ([]engine.OverrideRecord, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []engine.OverrideRecord
	o := engine.OverrideRecord{ProductID: productID}
	rows, _ := db.pool.Query(ctx, `SELECT override_price, reason, set_by, created_at, coalesce(expires_at, 0),
			coalesce(ended_at, 0), coalesce(ended_by, ''), coalesce(end_reason, '')
		FROM overrides WHERE product_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, productID, limit)
	_, err := pgx.ForEachRow(rows, []any{&o.Price, &o.Reason, &o.By, &o.CreatedAt, &o.ExpiresAt, &o.EndedAt, &o.EndedBy, &o.EndReason},
		func() error {
			out = append(out, o)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("postgres: override audit: %w", unreachable(err))
	}
	return out, nil
}

// Products returns the whole catalog, in insertion order, whichever slots
// own the products.
func (db *DB) Products(ctx context.Context) ([]pricing.Product, error) {
	ps, err := queryProducts(ctx, db.pool)
	if err != nil {
		return nil, fmt.Errorf("postgres: products: %w", unreachable(err))
	}
	return ps, nil
}

// ProductIDs returns every product id in catalog (insertion) order: what
// an API replica lists prices in.
func (db *DB) ProductIDs(ctx context.Context) ([]string, error) {
	rows, _ := db.pool.Query(ctx, "SELECT id FROM products ORDER BY seq")
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: product ids: %w", unreachable(err))
	}
	return ids, nil
}

// Product returns the product id and its persisted state (the zero State
// if it has none yet), for explaining a price outside the engine that owns
// it. ok is false when there is no such product.
func (db *DB) Product(ctx context.Context, id string) (p pricing.Product, st pricing.State, ok bool, err error) {
	var blob []byte
	var plans string
	err = db.pool.QueryRow(ctx, "SELECT "+productSelect+`, s.state
		FROM products p LEFT JOIN product_state s ON s.product_id = p.id WHERE p.id = $1`, id).
		Scan(append(productDest(&p, &plans), &blob)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return pricing.Product{}, pricing.State{}, false, nil
	}
	if err != nil {
		return pricing.Product{}, pricing.State{}, false, fmt.Errorf("postgres: product %q: %w", id, unreachable(err))
	}
	if err := p.SetPlansJSON(plans); err != nil {
		return pricing.Product{}, pricing.State{}, false, fmt.Errorf("postgres: %w", err)
	}
	if blob != nil {
		if err := json.Unmarshal(blob, &st); err != nil {
			return pricing.Product{}, pricing.State{}, false, fmt.Errorf("postgres: product %q: state: %w", id, err)
		}
	}
	return p, st, true, nil
}

// States returns every product's persisted state, by product id, in one
// query (API replicas list the catalog with it).
func (db *DB) States(ctx context.Context) (map[string]pricing.State, error) {
	rows, err := db.pool.Query(ctx, "SELECT product_id, state FROM product_state")
	if err != nil {
		return nil, fmt.Errorf("postgres: states: %w", unreachable(err))
	}
	defer rows.Close()
	out := make(map[string]pricing.State)
	for rows.Next() {
		var id string
		var blob []byte
		if err := rows.Scan(&id, &blob); err != nil {
			return nil, fmt.Errorf("postgres: states: %w", unreachable(err))
		}
		var st pricing.State
		if err := json.Unmarshal(blob, &st); err != nil {
			return nil, fmt.Errorf("postgres: state of %q: %w", id, err)
		}
		out[id] = st
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("postgres: states: %w", unreachable(err))
	}
	return out, nil
}

// Settings returns the catalog-wide settings.
func (db *DB) Settings(ctx context.Context) (map[string]string, error) {
	m, err := querySettings(ctx, db.pool)
	if err != nil {
		return nil, fmt.Errorf("postgres: settings: %w", unreachable(err))
	}
	return m, nil
}

// loadSeen reads the slot's remembered event ids, oldest first (the
// indexes' order): the hashes, and the id strings in seen_events, written
// before migration 0003 or, during a rolling upgrade, by engines of the
// previous release, hashed here. Repeats are left to the engine, which
// keeps an id's earliest time: dropping them here would take a second set
// as large as the engine's.
func (s *Store) loadSeen(ctx context.Context, tx pgx.Tx) ([]engine.SeenID, error) {
	var legacy []engine.SeenID
	var at int64
	var id string
	rows, _ := tx.Query(ctx, "SELECT seen_at, event_id FROM seen_events WHERE slot = $1 ORDER BY seen_at, event_id", s.slot)
	_, err := pgx.ForEachRow(rows, []any{&at, &id}, func() error {
		legacy = append(legacy, engine.SeenID{Hash: engine.EventHash(id), At: at})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ids before 0003: %w", err)
	}
	var n int
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM seen_hashes WHERE slot = $1", s.slot).Scan(&n); err != nil {
		return nil, err
	}
	seen := make([]engine.SeenID, 0, n)
	var h int64
	rows, _ = tx.Query(ctx, "SELECT seen_at, hash FROM seen_hashes WHERE slot = $1 ORDER BY seen_at, hash", s.slot)
	_, err = pgx.ForEachRow(rows, []any{&at, &h}, func() error {
		seen = append(seen, engine.SeenID{Hash: uint64(h), At: at})
		return nil
	})
	if err != nil {
		return nil, err
	}
	return engine.MergeSeen(legacy, seen), nil
}
