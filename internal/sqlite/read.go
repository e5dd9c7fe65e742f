package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Load reads everything the engine resumes from, in one read transaction so
// that the parts are consistent with each other.
func (s *Store) Load(ctx context.Context) (engine.Snapshot, error) {
	snap, err := s.load(ctx)
	if err != nil {
		return engine.Snapshot{}, fmt.Errorf("sqlite: load: %w", err)
	}
	return snap, nil
}

func (s *Store) load(ctx context.Context) (engine.Snapshot, error) {
	snap := engine.Snapshot{States: map[string]pricing.State{}, Settings: map[string]string{}}
	// No commit runs while Load reads: the index of the logs it rebuilds
	// must describe what it read.
	s.wmu.Lock()
	defer s.wmu.Unlock()
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return snap, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only

	// Catalog order is insertion order: the rowid of a products row is
	// assigned when it is first inserted and kept by later updates.
	err = query(ctx, tx, `SELECT id, name, base_price, strategy, floor, ceiling, max_change_pct, rounding,
			unit_cost, min_margin_pct, plans, max_quantity, max_move_pct, move_window
		FROM products ORDER BY rowid`, nil, func(r *sql.Rows) error {
		var p pricing.Product
		var plans string
		var window int64
		if err := r.Scan(&p.ID, &p.Name, &p.BasePrice, &p.Strategy, &p.Floor, &p.Ceiling, &p.MaxChangePct, &p.Rounding,
			&p.UnitCost, &p.MinMarginPct, &plans, &p.MaxQuantity, &p.MaxMovePct, &window); err != nil {
			return err
		}
		p.MoveWindow = pricing.Duration(window)
		if err := p.SetPlansJSON(plans); err != nil {
			return err
		}
		snap.Products = append(snap.Products, p)
		return nil
	})
	if err != nil {
		return snap, fmt.Errorf("products: %w", err)
	}
	// Newest first: a product's first row is its state and position; its
	// older rows are skipped without decoding.
	pos := make(map[string]logPos, len(snap.Products))
	err = query(ctx, tx, "SELECT seq, product_id, head, state FROM state_log ORDER BY seq DESC", nil, func(r *sql.Rows) error {
		var p logPos
		var id, blob sql.RawBytes
		if err := r.Scan(&p.seq, &id, &p.head, &blob); err != nil {
			return err
		}
		if _, ok := pos[string(id)]; ok {
			return nil
		}
		key := string(id)
		pos[key] = p
		if blob == nil {
			return nil // history but no state yet
		}
		var st pricing.State
		if err := pricing.UnmarshalState(blob, &st); err != nil {
			return fmt.Errorf("state of %q: %w", key, err)
		}
		snap.States[key] = st
		return nil
	})
	if err != nil {
		return snap, fmt.Errorf("states: %w", err)
	}
	if err := s.setLog(ctx, tx, pos); err != nil {
		return snap, err
	}
	if snap.Seen, err = loadSeen(ctx, tx); err != nil {
		return snap, fmt.Errorf("seen: %w", err)
	}
	err = query(ctx, tx, "SELECT key, value FROM settings", nil, func(r *sql.Rows) error {
		var k, v string
		if err := r.Scan(&k, &v); err != nil {
			return err
		}
		snap.Settings[k] = v
		return nil
	})
	if err != nil {
		return snap, fmt.Errorf("settings: %w", err)
	}
	err = tx.QueryRowContext(ctx, "SELECT value FROM cursor WHERE id = 1").Scan(&snap.Cursor)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return snap, fmt.Errorf("cursor: %w", err)
	}
	return snap, nil
}

// historyQuery reads a product's chain of price_history rows from its
// newest (?1, the product's head) back through prev, at most ?2 of them:
// one rowid lookup per row, in the chain's order. A row committed after
// the head was read is not in it, as if History had run just before that
// commit.
const historyQuery = `WITH RECURSIVE chain (prev, n, price, demand, source, event_time, version) AS (
		SELECT prev, 1, price, demand, source, event_time, version FROM price_history WHERE seq = ?1
		UNION ALL
		SELECT h.prev, chain.n + 1, h.price, h.demand, h.source, h.event_time, h.version
		FROM chain JOIN price_history AS h ON h.seq = chain.prev
		WHERE chain.prev > 0 AND chain.n < ?2
	)
	SELECT price, demand, source, event_time, version FROM chain`

// History returns productID's price changes, newest first (by event time,
// then by version), at most limit of them; none when limit <= 0.
// It reads the last committed state and may run during a Commit.
func (s *Store) History(ctx context.Context, productID string, limit int) ([]engine.HistoryRow, error) {
	if limit <= 0 {
		return nil, nil
	}
	head, err := s.head(ctx, productID)
	if err != nil {
		return nil, fmt.Errorf("sqlite: history: %w", err)
	}
	if head == 0 {
		return nil, nil
	}
	var out []engine.HistoryRow
	err = query(ctx, s.r, historyQuery,
		[]any{head, limit}, func(r *sql.Rows) error {
			h := engine.HistoryRow{ProductID: productID}
			var src string
			var version int64
			if err := r.Scan(&h.Price, &h.Demand, &src, &h.At, &version); err != nil {
				return err
			}
			var ok bool
			if h.Source, ok = pricing.ParseSource(src); !ok {
				return fmt.Errorf("unknown source %q", src)
			}
			h.Version = uint64(version)
			out = append(out, h)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: history: %w", err)
	}
	// The chain's order already, as the engine appends a product's rows
	// in time order; sorted for certain, which costs nothing when it is.
	slices.SortStableFunc(out, func(x, y engine.HistoryRow) int {
		return cmp.Or(cmp.Compare(y.At, x.At), cmp.Compare(y.Version, x.Version))
	})
	return out, nil
}

// OverrideAudit returns productID's overrides, newest first, at most limit
// of them; none when limit <= 0. Zero times mean "never" (ExpiresAt) and
// "still active" (EndedAt).
func (s *Store) OverrideAudit(ctx context.Context, productID string, limit int) ([]engine.OverrideRecord, error) {
	if limit <= 0 {
		return nil, nil
	}
	var out []engine.OverrideRecord
	err := query(ctx, s.r, `SELECT override_price, reason, set_by, created_at, coalesce(expires_at, 0),
			coalesce(ended_at, 0), coalesce(ended_by, ''), coalesce(end_reason, '')
		FROM overrides WHERE product_id = ? ORDER BY created_at DESC, id DESC LIMIT ?`,
		[]any{productID, limit}, func(r *sql.Rows) error {
			o := engine.OverrideRecord{ProductID: productID}
			if err := r.Scan(&o.Price, &o.Reason, &o.By, &o.CreatedAt, &o.ExpiresAt, &o.EndedAt, &o.EndedBy, &o.EndReason); err != nil {
				return err
			}
			out = append(out, o)
			return nil
		})
	if err != nil {
		return nil, fmt.Errorf("sqlite: override audit: %w", err)
	}
	return out, nil
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// query runs q and calls row for each result row.
func query(ctx context.Context, db querier, q string, args []any, row func(*sql.Rows) error) error {
	rows, err := db.QueryContext(ctx, q, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// loadSeen reads the remembered event ids, oldest first (the primary keys'
// order): the hashes, and the id strings written before migration 0004,
// hashed here. Repeats are left to the engine, which keeps an id's
// earliest time: dropping them here would take a second set as large as
// the engine's.
func loadSeen(ctx context.Context, tx *sql.Tx) ([]engine.SeenID, error) {
	var legacy []engine.SeenID
	err := query(ctx, tx, "SELECT seen_at, event_id FROM seen_events ORDER BY seen_at, event_id", nil, func(r *sql.Rows) error {
		var at int64
		var id string
		if err := r.Scan(&at, &id); err != nil {
			return err
		}
		legacy = append(legacy, engine.SeenID{Hash: engine.EventHash(id), At: at})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("ids before 0004: %w", err)
	}
	var n int
	if err := tx.QueryRowContext(ctx, "SELECT count(*) FROM seen_hashes").Scan(&n); err != nil {
		return nil, err
	}
	seen := make([]engine.SeenID, 0, n)
	err = query(ctx, tx, "SELECT seen_at, hash FROM seen_hashes ORDER BY seen_at, hash", nil, func(r *sql.Rows) error {
		var id engine.SeenID
		var h int64
		if err := r.Scan(&id.At, &h); err != nil {
			return err
		}
		id.Hash = uint64(h)
		seen = append(seen, id)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return engine.MergeSeen(legacy, seen), nil
}
