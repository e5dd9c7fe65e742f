package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/retry"
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
	snap := engine.Snapshot{Settings: map[string]string{}}
	// No commit runs while Load reads: the index of the logs it rebuilds
	// must describe what it read. Holding wmu also makes the reads below
	// consistent with each other although they run on separate
	// connections, outside one transaction: only this Store writes the
	// file (it holds the writer connection), and nothing commits until wmu
	// is released.
	s.wmu.Lock()
	defer s.wmu.Unlock()

	// The catalog and the states are the bulk of a large store (a million
	// rows each, two million in the state log): from the snapshot of the
	// last clean shutdown when there is one (snapshot.go), else from the
	// tables, both at once, one core each.
	var fast bool
	var err error
	snap.Products, snap.States, snap.Stated, fast, err = s.takeSnapshot(ctx)
	if err != nil {
		return snap, err
	}
	s.fromSnapshot = fast
	if !fast {
		var catErr error
		done := make(chan struct{})
		go func() {
			defer close(done)
			snap.Products, catErr = s.loadProducts(ctx)
		}()
		states, pos, err := s.loadStates(ctx)
		<-done
		if err = errors.Join(catErr, err); err != nil {
			return snap, err
		}
		s.logs.build(snap.Products, nil, pos)
		// The index's slots are the catalog's places (build).
		snap.Align(states, func(id string) (int, bool) {
			k, ok := s.logs.slot[id]
			return int(k), ok
		})
	}
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return snap, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	if err := s.setEnds(ctx, tx); err != nil {
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
	if snap.Experiments, err = loadExperiments(ctx, tx); err != nil {
		return snap, fmt.Errorf("experiments: %w", err)
	}
	return snap, nil
}

// loadExperiments reads the experiments, oldest first, with their arms'
// totals. They are read from the tables even after a snapshot: they are
// few, and the snapshot file does not hold them.
func loadExperiments(ctx context.Context, tx *sql.Tx) ([]engine.ExperimentState, error) {
	var out []engine.ExperimentState
	at := map[string]int{}
	err := query(ctx, tx, "SELECT id, record FROM experiments ORDER BY created_at, id", nil, func(r *sql.Rows) error {
		var id, js string
		if err := r.Scan(&id, &js); err != nil {
			return err
		}
		var rec engine.ExperimentRecord
		if err := json.Unmarshal([]byte(js), &rec); err != nil {
			return fmt.Errorf("%q: %w", id, err)
		}
		at[id] = len(out)
		out = append(out, engine.NewExperimentState(rec))
		return nil
	})
	if err != nil {
		return nil, err
	}
	err = query(ctx, tx, `SELECT experiment_id, arm, views, purchases, units, revenue, revenue_sq, profit, profit_sq, p_value
		FROM experiment_arms`, nil, func(r *sql.Rows) error {
		var id string
		var arm int
		var t engine.ArmTotal
		if err := r.Scan(&id, &arm, &t.Views, &t.Purchases, &t.Units, &t.Revenue, &t.RevenueSq, &t.Profit, &t.ProfitSq, &t.PValue); err != nil {
			return err
		}
		if k, ok := at[id]; ok && arm >= 0 && arm < len(out[k].Arms) {
			out[k].Arms[arm] = t
		}
		return nil
	})
	return out, err
}

// loadProducts reads the catalog in catalog order, which is insertion
// order: the rowid of a products row is assigned when it is first
// inserted and kept by later updates.
func (s *Store) loadProducts(ctx context.Context) ([]pricing.Product, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM products").Scan(&n); err != nil {
		return nil, fmt.Errorf("products: %w", err)
	}
	out := make([]pricing.Product, 0, n)
	err := s.scan(ctx, `SELECT id, name, base_price, strategy, floor, ceiling, max_change_pct, rounding,
			unit_cost, min_margin_pct, plans, max_quantity, max_move_pct, move_window
		FROM products ORDER BY rowid`, func(v []driver.Value) error {
		p := pricing.Product{ID: colText(v[0]), Name: colText(v[1]), BasePrice: colReal(v[2]), Strategy: colText(v[3])}
		p.Floor, p.Ceiling, p.MaxChangePct, p.Rounding = colReal(v[4]), colReal(v[5]), colReal(v[6]), colText(v[7])
		p.UnitCost, p.MinMarginPct = colReal(v[8]), colReal(v[9])
		p.MaxQuantity, p.MaxMovePct, p.MoveWindow = int32(colInt(v[11])), colReal(v[12]), pricing.Duration(colInt(v[13]))
		if plans := colText(v[10]); plans != "" {
			if err := p.SetPlansJSON(plans); err != nil {
				return err
			}
		}
		out = append(out, p)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("products: %w", err)
	}
	return out, nil
}

// loadStates reads each product's newest state_log row: its state and
// its position in the logs. The log is read newest first, so a
// product's first row is the one that counts and its older rows are
// skipped undecoded.
func (s *Store) loadStates(ctx context.Context) ([]engine.ProductState, map[string]logPos, error) {
	var n int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*) FROM products").Scan(&n); err != nil {
		return nil, nil, fmt.Errorf("states: %w", err)
	}
	states := make([]engine.ProductState, 0, n)
	pos := make(map[string]logPos, n)
	err := s.scan(ctx, "SELECT seq, product_id, head, hourly, state FROM state_log ORDER BY seq DESC", func(v []driver.Value) error {
		id := colText(v[1])
		if _, ok := pos[id]; ok {
			return nil
		}
		pos[id] = logPos{seq: colInt(v[0]), head: colInt(v[2]), hourly: colInt(v[3])}
		var blob []byte
		switch x := v[4].(type) {
		case nil:
			return nil // history but no state yet
		case []byte:
			blob = x
		case string:
			blob = []byte(x) // JSON written before 0006, as TEXT
		default:
			return fmt.Errorf("state of %q: a %T", id, x)
		}
		states = append(states, engine.ProductState{ID: id})
		if err := pricing.UnmarshalState(blob, &states[len(states)-1].State); err != nil {
			return fmt.Errorf("state of %q: %w", id, err)
		}
		return nil
	})
	if err != nil {
		return nil, nil, fmt.Errorf("states: %w", err)
	}
	return states, pos, nil
}

// scan runs q on a reader connection through the driver itself and calls
// row with each result row's values (int64, float64, string, []byte or
// nil; row must not keep the slice). database/sql's per-row locking and
// conversions cost more than SQLite's own work: at a million products,
// Load spent 10.8 s of CPU reading through Rows.Scan (decoding included),
// and the driver alone returns the catalog and the state log's rows in
// 3.1 s.
func (s *Store) scan(ctx context.Context, q string, row func([]driver.Value) error) error {
	conn, err := s.r.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	return conn.Raw(func(dc any) error {
		prep, ok := dc.(driver.ConnPrepareContext)
		if !ok {
			return errors.New("driver cannot prepare with a context")
		}
		st, err := prep.PrepareContext(ctx, q)
		if err != nil {
			return err
		}
		defer st.Close()
		sq, ok := st.(driver.StmtQueryContext)
		if !ok {
			return errors.New("driver cannot query with a context")
		}
		rows, err := sq.QueryContext(ctx, nil)
		if err != nil {
			return err
		}
		defer rows.Close()
		dest := make([]driver.Value, len(rows.Columns()))
		for {
			if err := rows.Next(dest); err == io.EOF {
				return nil
			} else if err != nil {
				return err
			}
			if err := row(dest); err != nil {
				return err
			}
		}
	})
}

// colText, colReal and colInt read a driver value of a TEXT, REAL or INTEGER
// column. SQLite may hand a REAL column's whole number back as an
// integer, and a TEXT as bytes; NULL reads as the zero value.
func colText(v driver.Value) string {
	switch x := v.(type) {
	case string:
		return x
	case []byte:
		return string(x)
	}
	return ""
}

func colReal(v driver.Value) float64 {
	switch x := v.(type) {
	case float64:
		return x
	case int64:
		return float64(x)
	}
	return 0
}

func colInt(v driver.Value) int64 {
	switch x := v.(type) {
	case int64:
		return x
	case float64:
		return int64(x)
	}
	return 0
}

// historyQuery reads a product's chain of price_history rows from its
// newest (?1, the product's head) back through prev, at most ?2 of them:
// one rowid lookup per row, in the chain's order. A row committed after
// the head was read is not in it, as if History had run just before that
// commit. The chain ends where a row is missing: the history retention
// deletes each product's oldest rows (PruneHistory). Every row must be
// the product's (?3), which a seq never given twice already ensures; the
// check costs nothing and stops a chain that would cross to another
// product's rows rather than serve them.
const historyQuery = `WITH RECURSIVE chain (prev, n, price, demand, source, event_time, version) AS (
		SELECT prev, 1, price, demand, source, event_time, version FROM price_history WHERE seq = ?1 AND product_id = ?3
		UNION ALL
		SELECT h.prev, chain.n + 1, h.price, h.demand, h.source, h.event_time, h.version
		FROM chain JOIN price_history AS h ON h.seq = chain.prev AND h.product_id = ?3
		WHERE chain.prev > 0 AND chain.n < ?2
	)
	SELECT price, demand, source, event_time, version FROM chain`

// hourlyQuery reads a product's chain of hourly summaries as historyQuery
// reads its changes, from its newest (?1, state_log.hourly).
const hourlyQuery = `WITH RECURSIVE chain (prev, n, hour, open, high, low, close, changes, close_at, version, source, demand) AS (
		SELECT prev, 1, hour, open, high, low, close, changes, close_at, version, source, demand
		FROM price_hourly WHERE seq = ?1 AND product_id = ?3
		UNION ALL
		SELECT h.prev, chain.n + 1, h.hour, h.open, h.high, h.low, h.close, h.changes, h.close_at, h.version, h.source, h.demand
		FROM chain JOIN price_hourly AS h ON h.seq = chain.prev AND h.product_id = ?3
		WHERE chain.prev > 0 AND chain.n < ?2
	)
	SELECT hour, open, high, low, close, changes, close_at, version, source, demand FROM chain`

// History returns productID's price changes, newest first (by event time,
// then by version), at most limit of them; none when limit <= 0. Changes
// the history retention rolled into hourly summaries are not among them
// (HistoryPage). It reads the last committed state and may run during a
// Commit.
func (s *Store) History(ctx context.Context, productID string, limit int) ([]engine.HistoryRow, error) {
	if limit <= 0 {
		return nil, nil
	}
	page, err := s.HistoryPage(ctx, productID, limit, 0)
	return page.Changes, err
}

// HistoryPage returns productID's newest changes, at most limit of them,
// and the hourly summaries of its changes older than those (the ones the
// history retention no longer keeps one by one), newest first, at most
// hourly of them; hourly < 0 means as many as limit leaves. Both come from
// one snapshot, so that no change is in both or in neither.
//
// The roll-up changes both at once in each of its steps (PruneHistory),
// and a product's newest summary is found from memory, as its newest
// change is: a read that a step's commit overlapped is read again (the
// step counter, rollGen, is odd while a step commits).
func (s *Store) HistoryPage(ctx context.Context, productID string, limit, hourly int) (engine.HistoryPage, error) {
	// Steps pause as long as they ran, so a read of a few milliseconds
	// overlaps one now and then, not a hundred times in a row.
	for range 100 {
		gen := s.rollGen.Load()
		if gen&1 == 1 {
			// A step is committing: a few milliseconds at most.
			if err := retry.Sleep(ctx, 100*time.Microsecond); err != nil {
				return engine.HistoryPage{}, fmt.Errorf("sqlite: history: %w", err)
			}
			continue
		}
		page, err := s.historyPage(ctx, productID, limit, hourly)
		if err != nil {
			return engine.HistoryPage{}, fmt.Errorf("sqlite: history: %w", err)
		}
		if s.rollGen.Load() == gen {
			return page, nil
		}
	}
	return engine.HistoryPage{}, errors.New("sqlite: history: the history retention kept changing it; try again")
}

func (s *Store) historyPage(ctx context.Context, productID string, limit, hourly int) (engine.HistoryPage, error) {
	var page engine.HistoryPage
	p, err := s.position(ctx, productID)
	if err != nil || (p.head == 0 && p.hourly == 0) {
		return page, err
	}
	// A read transaction: its snapshot starts with its first read.
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return page, err
	}
	defer tx.Rollback() //nolint:errcheck // read-only
	if p.head > 0 && limit > 0 {
		err = query(ctx, tx, historyQuery, []any{p.head, limit, productID}, func(r *sql.Rows) error {
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
			page.Changes = append(page.Changes, h)
			return nil
		})
		if err != nil {
			return page, err
		}
		// The chain's order already, as the engine appends a product's
		// rows in time order; sorted for certain, which costs nothing
		// when it is.
		slices.SortStableFunc(page.Changes, func(x, y engine.HistoryRow) int {
			return cmp.Or(cmp.Compare(y.At, x.At), cmp.Compare(y.Version, x.Version))
		})
	}
	if hourly < 0 {
		hourly = limit - len(page.Changes)
	}
	if p.hourly > 0 && hourly > 0 {
		err = query(ctx, tx, hourlyQuery, []any{p.hourly, hourly, productID}, func(r *sql.Rows) error {
			h := engine.HourlyRow{ProductID: productID}
			var src string
			var version int64
			if err := r.Scan(&h.Hour, &h.Open, &h.High, &h.Low, &h.Close, &h.Changes, &h.CloseAt, &version, &src, &h.Demand); err != nil {
				return err
			}
			var ok bool
			if h.Source, ok = pricing.ParseSource(src); !ok {
				return fmt.Errorf("unknown source %q", src)
			}
			h.Version = uint64(version)
			page.Hourly = append(page.Hourly, h)
			return nil
		})
		if err != nil {
			return page, err
		}
		slices.SortStableFunc(page.Hourly, func(x, y engine.HourlyRow) int { return cmp.Compare(y.Hour, x.Hour) })
	}
	return page, nil
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
