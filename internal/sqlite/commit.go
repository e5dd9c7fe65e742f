package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/retry"
)

// The write path talks to the driver directly (database/sql's Conn.Raw)
// rather than through *sql.Tx and *sql.Stmt. For a 10,000-event batch
// database/sql would allocate a fresh []driver.NamedValue for every
// statement and convert every argument; here one argument slice is reused
// by every statement of every commit. The connection is the writer pool's
// only one, held by the Store for its whole life, so nothing else can use
// it concurrently.

// writeConn is what the write path needs of a driver connection.
type writeConn interface {
	driver.ConnPrepareContext
	driver.ConnBeginTx
}

// bulk is a multi-row INSERT prepared in every power-of-two size up to its
// maximum, so that any number of rows is written with full-size statements
// plus at most one statement of each smaller size, and nothing is prepared
// during a commit. One statement carrying hundreds of rows costs one
// bind-step-reset round trip into SQLite instead of one per row.
type bulk struct {
	cols  int
	stmts []driver.Stmt // stmts[k] inserts 1<<k rows
}

// prepareBulk prepares head + " VALUES (?,…),(?,…)…" for 1, 2, 4 … maxRows
// rows. maxRows*cols must stay below SQLite's 32766 variables.
func prepareBulk(ctx context.Context, c writeConn, head string, cols, maxRows int) (*bulk, error) {
	if maxRows <= 0 || maxRows&(maxRows-1) != 0 {
		return nil, fmt.Errorf("bulk insert size %d is not a power of two", maxRows)
	}
	if maxRows*cols > 32766 {
		return nil, fmt.Errorf("bulk insert of %d rows of %d columns has too many variables", maxRows, cols)
	}
	b := &bulk{cols: cols}
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	for n := 1; n <= maxRows; n *= 2 {
		var q strings.Builder
		q.Grow(len(head) + 8 + n*(len(tuple)+1))
		q.WriteString(head)
		q.WriteString(" VALUES ")
		for i := range n {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString(tuple)
		}
		st, err := c.PrepareContext(ctx, q.String())
		if err != nil {
			b.close()
			return nil, err
		}
		b.stmts = append(b.stmts, st)
	}
	return b, nil
}

// exec inserts n rows; fill sets row i's cols values in vals.
func (b *bulk) exec(ctx context.Context, ws *writeStmts, n int, fill func(vals []driver.NamedValue, i int)) error {
	maxRows := 1 << (len(b.stmts) - 1)
	for i := 0; i < n; {
		k, size := len(b.stmts)-1, maxRows
		for size > n-i {
			k, size = k-1, size/2
		}
		args := ws.argBuf(size * b.cols)
		for j := range size {
			fill(args[j*b.cols:(j+1)*b.cols], i+j)
		}
		if _, err := b.stmts[k].(driver.StmtExecContext).ExecContext(ctx, args); err != nil {
			return err
		}
		i += size
	}
	return nil
}

func (b *bulk) close() error {
	var errs []error
	for _, st := range b.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// writeStmts are the statements Commit uses, prepared once on
// the writer's connection.
type writeStmts struct {
	conn any // the driver connection they belong to

	history, seen, states *bulk
	// hourly appends summaries (retain.go); analytics the analytics rows
	// (analytics.go).
	hourly, analytics *bulk

	product, setting, cursor      driver.Stmt
	overrideClose, overrideInsert driver.Stmt
	// state_log: copy a product's newest row (for history without a new
	// state), and the cleaner's statements (log.go).
	stateCopy, cleanScan   driver.Stmt
	cleanCopy, cleanDelete driver.Stmt
	// The history retention's (retain.go).
	rollScan, rollDelete                  driver.Stmt
	hourlyNewest, hourlyNext, hourlyMerge driver.Stmt
	stateRepoint                          driver.Stmt
	expireScan, expireDelete              driver.Stmt
	analyticsExpire                       driver.Stmt
	// Price experiments: a record upserted whole, an arm's delta added.
	expUpsert, armAdd driver.Stmt

	args []driver.NamedValue
	// sources holds the names of pricing.Source values already converted
	// to interface values, which saves an allocation per history row.
	sources [3]any
}

// source returns src's name as a statement argument.
func (ws *writeStmts) source(src pricing.Source) any {
	if int(src) < len(ws.sources) {
		return ws.sources[src]
	}
	return src.String()
}

// argBuf returns n reusable arguments with their ordinals set.
func (ws *writeStmts) argBuf(n int) []driver.NamedValue {
	if cap(ws.args) < n {
		ws.args = make([]driver.NamedValue, n)
		for i := range ws.args {
			ws.args[i].Ordinal = i + 1
		}
	}
	return ws.args[:n]
}

// exec runs a single-row statement.
func (ws *writeStmts) exec(ctx context.Context, st driver.Stmt, vals ...any) error {
	args := ws.argBuf(len(vals))
	for i, v := range vals {
		args[i].Value = v
	}
	_, err := st.(driver.StmtExecContext).ExecContext(ctx, args)
	return err
}

// release drops the references the argument buffer holds into the last
// batch, so that it can be collected before the next commit.
func (ws *writeStmts) release() {
	for i := range ws.args {
		ws.args[i].Value = nil
	}
}

func prepareWriteStmts(ctx context.Context, c writeConn, tun tuning) (_ *writeStmts, err error) {
	ws := &writeStmts{conn: c}
	for i := range ws.sources {
		ws.sources[i] = pricing.Source(i).String()
	}
	defer func() {
		if err != nil {
			ws.close()
		}
	}()
	// OR IGNORE, here and for seen_hashes: a row with the same key is the
	// same fact recorded again. It also spares SQLite the statement journal
	// a multi-row INSERT that may abort half-way needs, which measured as a
	// sixth of Commit's time. Nothing else can make these inserts fail: no
	// value bound is ever NULL and the source is always a valid name.
	if ws.history, err = prepareBulk(ctx, c,
		"INSERT INTO price_history (seq, product_id, event_time, version, price, demand, source, prev)", 8,
		tun.historyRows); err != nil {
		return nil, err
	}
	if ws.seen, err = prepareBulk(ctx, c,
		"INSERT OR IGNORE INTO seen_hashes (seen_at, hash)", 2, tun.seenRows); err != nil {
		return nil, err
	}
	if ws.states, err = prepareBulk(ctx, c,
		"INSERT INTO state_log (seq, product_id, head, price, version, state, hourly)", 7,
		tun.stateRows); err != nil {
		return nil, err
	}
	if ws.hourly, err = prepareBulk(ctx, c,
		"INSERT INTO price_hourly (seq, product_id, hour, open, high, low, close, changes, close_at, version, source, demand, prev)", 13,
		tun.historyRows); err != nil {
		return nil, err
	}
	if ws.analytics, err = prepareBulk(ctx, c,
		"INSERT INTO analytics_hourly (hour, product_id, strategy, arm, views, carts, purchases, units, revenue, cost, list)", 11,
		tun.historyRows); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		st *driver.Stmt
		q  string
	}{
		{&ws.product, `INSERT INTO products (id, name, base_price, strategy, floor, ceiling, max_change_pct, rounding,
				unit_cost, min_margin_pct, plans, max_quantity, max_move_pct, move_window, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, base_price = excluded.base_price,
				strategy = excluded.strategy, floor = excluded.floor, ceiling = excluded.ceiling,
				max_change_pct = excluded.max_change_pct, rounding = excluded.rounding,
				unit_cost = excluded.unit_cost, min_margin_pct = excluded.min_margin_pct, plans = excluded.plans,
				max_quantity = excluded.max_quantity, max_move_pct = excluded.max_move_pct, move_window = excluded.move_window,
				updated_at = excluded.updated_at`},
		{&ws.setting, "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"},
		{&ws.cursor, "INSERT INTO cursor (id, value) VALUES (1, ?) ON CONFLICT (id) DO UPDATE SET value = excluded.value"},
		{&ws.expUpsert, "INSERT INTO experiments (id, record, created_at) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET record = excluded.record"},
		{&ws.armAdd, `INSERT INTO experiment_arms (experiment_id, arm, views, purchases, units, revenue, revenue_sq, profit, profit_sq, p_value)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (experiment_id, arm) DO UPDATE SET views = views + excluded.views, purchases = purchases + excluded.purchases,
				units = units + excluded.units, revenue = revenue + excluded.revenue, revenue_sq = revenue_sq + excluded.revenue_sq,
				profit = profit + excluded.profit, profit_sq = profit_sq + excluded.profit_sq, p_value = min(p_value, excluded.p_value)`},
		{&ws.overrideClose, "UPDATE overrides SET ended_at = ?, ended_by = ?, end_reason = ? WHERE product_id = ? AND ended_at IS NULL"},
		{&ws.overrideInsert, `INSERT INTO overrides (product_id, override_price, reason, set_by, created_at, expires_at, ended_at, ended_by, end_reason)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&ws.stateCopy, `INSERT INTO state_log (seq, product_id, head, price, version, state, hourly)
			SELECT ?, product_id, ?, price, version, state, ? FROM state_log WHERE seq = ?`},
		{&ws.cleanScan, "SELECT seq, product_id FROM state_log WHERE seq >= ? ORDER BY seq LIMIT ?"},
		// The k-th seq of the JSON array (k from 0) is copied to seq ? + k.
		{&ws.cleanCopy, `INSERT INTO state_log (seq, product_id, head, price, version, state, hourly)
			SELECT ?1 + k.key, l.product_id, l.head, l.price, l.version, l.state, l.hourly
			FROM json_each(?2) AS k JOIN state_log AS l ON l.seq = k.value`},
		{&ws.cleanDelete, "DELETE FROM state_log WHERE seq < ?"},
		{&ws.rollScan, "SELECT seq, product_id, event_time, version, price, demand, source FROM price_history ORDER BY seq LIMIT ?"},
		{&ws.rollDelete, "DELETE FROM price_history WHERE seq <= ?"},
		{&ws.hourlyNewest, "SELECT h.seq, h.hour, h.product_id FROM json_each(?) AS k JOIN price_hourly AS h ON h.seq = k.value"},
		// AUTOINCREMENT's high-water mark: never a seq used before.
		{&ws.hourlyNext, `SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'price_hourly'), 0),
			coalesce((SELECT max(seq) FROM price_hourly), 0))`},
		{&ws.hourlyMerge, `UPDATE price_hourly SET high = max(high, ?2), low = min(low, ?3), close = ?4, changes = changes + ?5,
			close_at = ?6, version = ?7, source = ?8, demand = ?9 WHERE seq = ?1`},
		// The k-th pair [seq, summary] of the JSON array: the row seq
		// copied to seq ?1 + k, naming the summary.
		{&ws.stateRepoint, `INSERT INTO state_log (seq, product_id, head, price, version, state, hourly)
			SELECT ?1 + k.key, l.product_id, l.head, l.price, l.version, l.state, k.value ->> 1
			FROM json_each(?2) AS k JOIN state_log AS l ON l.seq = k.value ->> 0`},
		{&ws.expireScan, "SELECT seq, hour FROM price_hourly ORDER BY seq LIMIT ?"},
		{&ws.expireDelete, "DELETE FROM price_hourly WHERE seq <= ?"},
		{&ws.analyticsExpire, "DELETE FROM analytics_hourly WHERE seq IN (SELECT seq FROM analytics_hourly WHERE hour < ? ORDER BY hour LIMIT ?)"},
	} {
		if *p.st, err = c.PrepareContext(ctx, p.q); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

func (ws *writeStmts) close() error {
	var errs []error
	for _, b := range []*bulk{ws.history, ws.seen, ws.states, ws.hourly, ws.analytics} {
		if b != nil {
			errs = append(errs, b.close())
		}
	}
	for _, st := range []driver.Stmt{ws.product, ws.setting, ws.cursor, ws.overrideClose, ws.overrideInsert,
		ws.stateCopy, ws.cleanScan, ws.cleanCopy, ws.cleanDelete,
		ws.rollScan, ws.rollDelete, ws.hourlyNewest, ws.hourlyNext, ws.hourlyMerge, ws.stateRepoint, ws.expireScan, ws.expireDelete, ws.analyticsExpire,
		ws.expUpsert, ws.armAdd} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
}

// withWriter runs f on the writer's connection, with the write statements
// prepared on it.
func (s *Store) withWriter(ctx context.Context, f func(c writeConn, ws *writeStmts) error) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.wc == nil {
		return errors.New("store is closed")
	}
	return s.wc.Raw(func(dc any) (err error) {
		c, ok := dc.(writeConn)
		if !ok {
			return fmt.Errorf("driver connection %T cannot prepare or begin with a context", dc)
		}
		if s.ws == nil || s.ws.conn != dc {
			// First use, or database/sql replaced a broken connection.
			if s.ws != nil {
				s.ws.close() //nolint:errcheck // their connection is gone
				s.ws = nil
			}
			if s.ws, err = prepareWriteStmts(ctx, c, s.tun); err != nil {
				return fmt.Errorf("prepare: %w", err)
			}
		}
		defer s.ws.release()
		return f(c, s.ws)
	})
}

// inWriteTx runs f in a transaction on the writer's connection and commits
// if f succeeds. Any error rolls the transaction back, so nothing f did
// becomes visible.
func (s *Store) inWriteTx(ctx context.Context, f func(ws *writeStmts) error) error {
	return s.withWriter(ctx, func(c writeConn, ws *writeStmts) error {
		tx, err := c.BeginTx(ctx, driver.TxOptions{})
		if err != nil {
			return err
		}
		if err := f(ws); err != nil {
			// The ROLLBACK runs even when ctx is done; its error is
			// secondary to the one that caused it.
			tx.Rollback() //nolint:errcheck
			return err
		}
		return tx.Commit()
	})
}

// Commit writes b in one transaction: all of it is durable when Commit
// returns nil (to the level Config.Synchronous promises), and none of it is
// visible when it returns an error, including when ctx ends part-way.
func (s *Store) Commit(ctx context.Context, b *engine.Batch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	if b == nil || b.Empty() {
		return nil
	}
	states := encodeStates(b.States)
	defer states.wait() // b may be reused once Commit returns
	// All of it under wmu, the positions moved included: the history
	// retention's steps (retain.go) use the same index of the logs
	// between commits.
	err := s.withWriter(ctx, func(c writeConn, ws *writeStmts) error {
		if err := s.ensureLog(ctx); err != nil {
			return err
		}
		l := &s.logs
		// The ends before the commit, restored if it fails.
		nextHist, nextLog, tail := l.nextHist, l.nextLog, l.tail
		tx, err := c.BeginTx(ctx, driver.TxOptions{})
		if err == nil && s.tagged {
			// A commit after SaveSnapshot: the snapshot no longer holds
			// everything, so it must not be loaded (see snapshot.go).
			err = execDriver(ctx, c, "DELETE FROM snapshot_tag")
			if err != nil {
				tx.Rollback() //nolint:errcheck // secondary to err
			}
		}
		if err == nil {
			if err = writeBatch(ctx, ws, b, states, l); err != nil {
				// The ROLLBACK runs even when ctx is done; its error is
				// secondary to the one that caused it.
				tx.Rollback() //nolint:errcheck
			} else {
				err = tx.Commit()
			}
		}
		if err != nil {
			l.nextHist, l.nextLog, l.tail = nextHist, nextLog, tail
			l.discard()
			return err
		}
		s.tagged = false
		l.mu.Lock()
		l.settle()
		l.mu.Unlock()
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	s.ckpt.kick()
	return nil
}

// execDriver runs q, which takes no arguments, on the writer's driver
// connection c.
func execDriver(ctx context.Context, c writeConn, q string) error {
	st, err := c.PrepareContext(ctx, q)
	if err != nil {
		return err
	}
	defer st.Close()
	_, err = st.(driver.StmtExecContext).ExecContext(ctx, nil)
	return err
}

// encodedStates are a batch's states in their binary encoding
// (pricing.State.AppendBinary), all in one buffer, encoded concurrently
// with the first inserts when there are many of them, so that another
// core does it while SQLite writes the history.
type encodedStates struct {
	buf  []byte
	ends []int // blob i is buf[ends[i-1]:ends[i]]
	err  error
	done chan struct{} // nil when encoded synchronously
}

// blob returns state i's encoding.
func (e *encodedStates) blob(i int) []byte {
	start := 0
	if i > 0 {
		start = e.ends[i-1]
	}
	return e.buf[start:e.ends[i]:e.ends[i]]
}

// parallelStates is the number of states from which encoding them gets a
// goroutine of its own.
const parallelStates = 256

func encodeStates(states []engine.ProductState) *encodedStates {
	e := &encodedStates{}
	if len(states) == 0 {
		return e
	}
	enc := func() {
		e.buf = make([]byte, 0, 128*len(states))
		e.ends = make([]int, len(states))
		for i := range states {
			var err error
			if e.buf, err = states[i].State.AppendBinary(e.buf); err != nil {
				e.err = fmt.Errorf("state of %q: %w: %w", states[i].ID, engine.ErrUnencodable, err)
				return
			}
			e.ends[i] = len(e.buf)
		}
	}
	if len(states) < parallelStates {
		enc()
		return e
	}
	e.done = make(chan struct{})
	go func() {
		defer close(e.done)
		enc()
	}()
	return e
}

// wait waits for the encoding to finish and returns its error.
func (e *encodedStates) wait() error {
	if e.done != nil {
		<-e.done
	}
	return e.err
}

// writeBatch writes b inside the commit's transaction, appending to the
// logs at l's ends and recording the products' new positions in l.pend.
func writeBatch(ctx context.Context, ws *writeStmts, b *engine.Batch, states *encodedStates, l *logState) error {
	// Products first: states and overrides reference them.
	if len(b.Products) > 0 {
		now := time.Now().UnixNano()
		for _, p := range b.Products {
			if err := ws.exec(ctx, ws.product, p.ID, p.Name, p.BasePrice, p.Strategy,
				p.Floor, p.Ceiling, p.MaxChangePct, p.Rounding,
				p.UnitCost, p.MinMarginPct, p.PlansJSON(), int64(p.MaxQuantity), p.MaxMovePct, int64(p.MoveWindow), now, now); err != nil {
				return fmt.Errorf("product %q: %w", p.ID, err)
			}
		}
	}
	// Each row is chained to its product's previous one (prev), so a
	// product's rows must come in (At, Version) order, as the engine
	// sorts them (engine.SortHistory); a batch in another order is sorted
	// here.
	hist := b.History
	if !slices.IsSortedFunc(hist, historyOrder) {
		hist = slices.Clone(hist)
		engine.SortHistory(hist)
	}
	if err := ws.history.exec(ctx, ws, len(hist), func(v []driver.NamedValue, i int) {
		h := &hist[i]
		k := l.find(h.ProductID, h.Hint)
		p := l.at(k)
		seq := l.nextHist
		l.nextHist++
		v[0].Value, v[1].Value, v[2].Value, v[3].Value = seq, h.ProductID, h.At, int64(h.Version)
		v[4].Value, v[5].Value, v[6].Value, v[7].Value = h.Price, h.Demand, ws.source(h.Source), p.head
		p.head = seq
		l.set(k, p)
	}); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if err := ws.seen.exec(ctx, ws, len(b.Seen), func(v []driver.NamedValue, i int) {
		v[0].Value, v[1].Value = b.Seen[i].At, int64(b.Seen[i].Hash)
	}); err != nil {
		return fmt.Errorf("seen: %w", err)
	}
	if err := states.wait(); err != nil {
		return err
	}
	appended := len(b.States)
	if err := ws.states.exec(ctx, ws, len(b.States), func(v []driver.NamedValue, i int) {
		ps := &b.States[i]
		k := l.find(ps.ID, ps.Hint)
		p := l.at(k)
		p.seq, p.logged = l.nextLog, true
		l.nextLog++
		l.set(k, p)
		v[0].Value, v[1].Value, v[2].Value = p.seq, ps.ID, p.head
		v[3].Value, v[4].Value, v[5].Value = ps.State.Price, int64(ps.State.Version), states.blob(i)
		v[6].Value = p.hourly
	}); err != nil {
		return fmt.Errorf("states: %w", err)
	}
	// A product with new history but no new state gets a row all the
	// same, its newest state with the new head: a product's newest row is
	// always the whole of what Load needs.
	for i := range hist {
		id := hist[i].ProductID
		k := l.find(id, hist[i].Hint)
		p := l.at(k)
		if p.logged {
			continue
		}
		var err error
		if p.seq == 0 { // no state yet
			err = ws.states.exec(ctx, ws, 1, func(v []driver.NamedValue, _ int) {
				v[0].Value, v[1].Value, v[2].Value = l.nextLog, id, p.head
				v[3].Value, v[4].Value, v[5].Value, v[6].Value = nil, nil, nil, p.hourly
			})
		} else {
			err = ws.exec(ctx, ws.stateCopy, l.nextLog, p.head, p.hourly, p.seq)
		}
		if err != nil {
			return fmt.Errorf("state of %q: %w", id, err)
		}
		p.seq, p.logged = l.nextLog, true
		l.nextLog++
		l.set(k, p)
		appended++
	}
	if err := l.clean(ctx, ws, 2*appended); err != nil {
		return fmt.Errorf("state log cleaner: %w", err)
	}
	if err := writeAnalytics(ctx, ws, b.Analytics); err != nil {
		return fmt.Errorf("analytics: %w", err)
	}
	if err := writeOverrides(ctx, ws, b); err != nil {
		return err
	}
	for k, v := range b.Settings {
		if err := ws.exec(ctx, ws.setting, k, v); err != nil {
			return fmt.Errorf("setting %q: %w", k, err)
		}
	}
	if b.Cursor != "" {
		if err := ws.exec(ctx, ws.cursor, b.Cursor); err != nil {
			return fmt.Errorf("cursor: %w", err)
		}
	}
	return writeExperiments(ctx, ws, b)
}

// writeExperiments upserts b's experiment records, then adds its arm
// deltas.
func writeExperiments(ctx context.Context, ws *writeStmts, b *engine.Batch) error {
	for _, r := range b.Experiments {
		js, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("experiment %q: %w: %v", r.ID, engine.ErrUnencodable, err)
		}
		if err := ws.exec(ctx, ws.expUpsert, r.ID, string(js), r.CreatedAt); err != nil {
			return fmt.Errorf("experiment %q: %w", r.ID, err)
		}
	}
	for _, d := range b.ArmDeltas {
		a := &d.Delta
		if err := ws.exec(ctx, ws.armAdd, d.ExperimentID, int64(d.Arm), a.Views, a.Purchases, a.Units,
			a.Revenue, a.RevenueSq, a.Profit, a.ProfitSq, d.PValue); err != nil {
			return fmt.Errorf("experiment %q arm %d: %w", d.ExperimentID, d.Arm, err)
		}
	}
	return nil
}

// historyOrder is engine.SortHistory's order, in which a product's rows
// are in the order of its chain.
func historyOrder(x, y engine.HistoryRow) int {
	return cmp.Or(strings.Compare(x.ProductID, y.ProductID), cmp.Compare(x.At, y.At), cmp.Compare(x.Version, y.Version))
}

// writeOverrides applies b's override changes in the batch's order.
func writeOverrides(ctx context.Context, ws *writeStmts, b *engine.Batch) error {
	for _, c := range b.Overrides {
		if e := c.End; e != nil {
			if err := ws.exec(ctx, ws.overrideClose, e.At, e.By, e.Reason, e.ProductID); err != nil {
				return fmt.Errorf("end override of %q: %w", e.ProductID, err)
			}
			continue
		}
		o := c.Set
		if o == nil {
			return errors.New("an override change with neither Set nor End")
		}
		if err := ws.exec(ctx, ws.overrideClose, o.CreatedAt, o.By, "replaced", o.ProductID); err != nil {
			return fmt.Errorf("replace override of %q: %w", o.ProductID, err)
		}
		var endedAt, endedBy, endReason any
		if o.EndedAt != 0 {
			endedAt, endedBy, endReason = o.EndedAt, o.EndedBy, o.EndReason
		}
		if err := ws.exec(ctx, ws.overrideInsert, o.ProductID, o.Price, o.Reason, o.By, o.CreatedAt,
			nullZero(o.ExpiresAt), endedAt, endedBy, endReason); err != nil {
			return fmt.Errorf("set override of %q: %w", o.ProductID, err)
		}
	}
	return nil
}

// nullZero maps the port's "0 = none" to NULL.
func nullZero(v int64) any {
	if v == 0 {
		return nil
	}
	return v
}

// PruneSeen forgets the event ids seen before before (unix ns), then all
// but the newest keep. keep <= 0 sets no count limit: forgetting every id
// would let any redelivered event apply twice, which is never what a
// caller computing a limit means. The id strings written before migration
// 0004 are pruned by age only: none is written any more, so they are gone
// one window after the upgrade, and counting them against keep would cost
// a count of all the hashes at every prune.
//
// It deletes in steps of at most pruneStep rows, each its own short
// transaction on the writer's connection, which it gives back between
// steps: a Commit running alongside (from another goroutine) waits for one
// step at most, a few milliseconds, never for the whole prune (at 30,000
// ids/s a minute's ids are 1.8M rows). The newest keep are found on a
// reader connection, which does not hold the writer up either. A prune cut
// short (ctx, an error) has deleted only whole steps; the next one goes on.
func (s *Store) PruneSeen(ctx context.Context, before int64, keep int) error {
	const pruneStep = 1024
	// step runs q (which deletes at most pruneStep rows) in a transaction
	// of its own and returns how many rows it deleted.
	step := func(q string, args ...any) (n int64, err error) {
		err = s.withWriter(ctx, func(c writeConn, ws *writeStmts) error {
			st, err := c.PrepareContext(ctx, q)
			if err != nil {
				return err
			}
			defer st.Close()
			tx, err := c.BeginTx(ctx, driver.TxOptions{})
			if err != nil {
				return err
			}
			vals := make([]driver.NamedValue, len(args))
			for i, a := range args {
				vals[i] = driver.NamedValue{Ordinal: i + 1, Value: a}
			}
			res, err := st.(driver.StmtExecContext).ExecContext(ctx, vals)
			if err == nil {
				n, err = res.RowsAffected()
			}
			if err != nil {
				tx.Rollback() //nolint:errcheck // secondary to err
				return err
			}
			return tx.Commit()
		})
		return n, err
	}
	// drain deletes, step by step, every row of table up to the key
	// (seen_at, col) <= (at, last): a range of its primary key. A step
	// finds the pruneStep-th row of the range and deletes up to it, a
	// range again; past the last full step, the rest.
	drain := func(table, col string, at int64, last any) error {
		full := fmt.Sprintf(`DELETE FROM %[1]s WHERE (seen_at, %[2]s) <= (SELECT seen_at, %[2]s FROM %[1]s
			WHERE (seen_at, %[2]s) <= (?, ?) ORDER BY seen_at, %[2]s LIMIT 1 OFFSET %[3]d)`, table, col, pruneStep-1)
		for {
			t0 := time.Now()
			n, err := step(full, at, last)
			if err == nil {
				// As long again for the commits and the checkpointer,
				// which copies the log these deletes grow back into the
				// database: a prune running flat out grows the log faster
				// than it is copied, and a commit then checkpoints it.
				err = retry.Sleep(ctx, time.Since(t0))
			}
			if err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
			if n == 0 { // fewer than pruneStep left
				_, err := step(fmt.Sprintf("DELETE FROM %s WHERE (seen_at, %s) <= (?, ?)", table, col), at, last)
				if err != nil {
					return fmt.Errorf("%s: %w", table, err)
				}
				return nil
			}
		}
	}
	// seen_at < before is the key range up to (before-1, the largest
	// hash); for the strings, up to (before-1, a blob): SQLite sorts
	// every text below every blob.
	err := drain("seen_hashes", "hash", before-1, int64(math.MaxInt64))
	if err == nil {
		err = drain("seen_events", "event_id", before-1, []byte{0xff})
	}
	if err == nil && keep > 0 {
		var at, hash int64
		switch qerr := s.r.QueryRowContext(ctx, "SELECT seen_at, hash FROM seen_hashes ORDER BY seen_at DESC, hash DESC LIMIT 1 OFFSET ?",
			keep).Scan(&at, &hash); {
		case errors.Is(qerr, sql.ErrNoRows): // no more than keep
		case qerr != nil:
			err = fmt.Errorf("newest %d: %w", keep, qerr)
		default:
			err = drain("seen_hashes", "hash", at, hash)
		}
	}
	if err != nil {
		return fmt.Errorf("sqlite: prune seen: %w", err)
	}
	return nil
}
