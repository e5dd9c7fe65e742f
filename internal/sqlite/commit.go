package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
)

// bulk is a multi-row INSERT prepared in every power-of-two size up to
// its maximum, so that any number of rows is written with full-size
// statements plus at most one statement of each smaller size, and nothing
// is ever prepared during a commit.
type bulk struct {
	cols  int
	stmts []*sql.Stmt // stmts[k] inserts 1<<k rows
}

// prepareBulk prepares head + "(?,…),(?,…)…" + tail for 1, 2, 4 … maxRows rows.
func prepareBulk(ctx context.Context, db *sql.DB, head string, cols int, tail string, maxRows int) (*bulk, error) {
	if maxRows <= 0 || maxRows&(maxRows-1) != 0 {
		return nil, fmt.Errorf("bulk insert size %d is not a power of two", maxRows)
	}
	b := &bulk{cols: cols}
	tuple := "(" + strings.TrimSuffix(strings.Repeat("?,", cols), ",") + ")"
	for n := 1; n <= maxRows; n *= 2 {
		var q strings.Builder
		q.Grow(len(head) + n*(len(tuple)+1) + len(tail) + 2)
		q.WriteString(head)
		q.WriteString(" VALUES ")
		for i := range n {
			if i > 0 {
				q.WriteByte(',')
			}
			q.WriteString(tuple)
		}
		q.WriteByte(' ')
		q.WriteString(tail)
		st, err := db.PrepareContext(ctx, q.String())
		if err != nil {
			b.close()
			return nil, err
		}
		b.stmts = append(b.stmts, st)
	}
	return b, nil
}

// exec inserts n rows; fill appends row i's cols values to args.
func (b *bulk) exec(ctx context.Context, tx *sql.Tx, args *[]any, n int, fill func(args []any, i int) []any) error {
	maxRows := 1 << (len(b.stmts) - 1)
	for i := 0; i < n; {
		k := len(b.stmts) - 1
		size := maxRows
		for size > n-i {
			k, size = k-1, size/2
		}
		a := (*args)[:0]
		for j := i; j < i+size; j++ {
			a = fill(a, j)
		}
		*args = a
		if _, err := tx.StmtContext(ctx, b.stmts[k]).ExecContext(ctx, a...); err != nil {
			return err
		}
		i += size
	}
	clear(*args) // do not pin the batch's strings until the next commit
	return nil
}

func (b *bulk) close() error {
	var errs []error
	for _, st := range b.stmts {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

// writeStmts are the statements Commit and PruneSeen use, prepared once on
// the writer's only connection.
type writeStmts struct {
	history, seen, states *bulk

	product, setting              *sql.Stmt
	overrideClose, overrideInsert *sql.Stmt
	pruneBefore, pruneKeep        *sql.Stmt
	args                          []any
	overrideOps                   []overrideOp
}

func prepareWriteStmts(ctx context.Context, db *sql.DB, tun tuning) (_ *writeStmts, err error) {
	ws := &writeStmts{}
	defer func() {
		if err != nil {
			ws.close()
		}
	}()
	if ws.history, err = prepareBulk(ctx, db,
		"INSERT OR FAIL INTO price_history (product_id, price, demand, source, event_time, version)", 6, "",
		tun.historyRows); err != nil {
		return nil, err
	}
	// A redelivered id keeps the time it was first seen.
	if ws.seen, err = prepareBulk(ctx, db,
		"INSERT OR IGNORE INTO seen_events (event_id, seen_at)", 2, "",
		tun.seenRows); err != nil {
		return nil, err
	}
	if ws.states, err = prepareBulk(ctx, db,
		"INSERT INTO product_state (product_id, price, demand, source, version, changed_at, state)", 7,
		`ON CONFLICT (product_id) DO UPDATE SET price = excluded.price, demand = excluded.demand,
			source = excluded.source, version = excluded.version, changed_at = excluded.changed_at,
			state = excluded.state`,
		tun.stateRows); err != nil {
		return nil, err
	}
	for _, p := range []struct {
		st **sql.Stmt
		q  string
	}{
		{&ws.product, `INSERT INTO products (id, name, base_price, strategy, floor, ceiling, max_change_pct, rounding, created_at, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, base_price = excluded.base_price,
				strategy = excluded.strategy, floor = excluded.floor, ceiling = excluded.ceiling,
				max_change_pct = excluded.max_change_pct, rounding = excluded.rounding,
				updated_at = excluded.updated_at`},
		{&ws.setting, "INSERT INTO settings (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value"},
		{&ws.overrideClose, "UPDATE overrides SET ended_at = ?, ended_by = ?, end_reason = ? WHERE product_id = ? AND ended_at IS NULL"},
		{&ws.overrideInsert, `INSERT INTO overrides (product_id, override_price, reason, set_by, created_at, expires_at, ended_at, ended_by, end_reason)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`},
		{&ws.pruneBefore, "DELETE FROM seen_events WHERE seen_at < ?"},
		// Row values select the cut-off in (seen_at, event_id) order, which
		// the seen_at index (whose entries end with the key) delivers
		// without sorting, and then delete a range of that index.
		{&ws.pruneKeep, `DELETE FROM seen_events WHERE (seen_at, event_id) <= (
			SELECT seen_at, event_id FROM seen_events ORDER BY seen_at DESC, event_id DESC LIMIT 1 OFFSET ?)`},
	} {
		if *p.st, err = db.PrepareContext(ctx, p.q); err != nil {
			return nil, err
		}
	}
	return ws, nil
}

func (ws *writeStmts) close() error {
	var errs []error
	for _, b := range []*bulk{ws.history, ws.seen, ws.states} {
		if b != nil {
			errs = append(errs, b.close())
		}
	}
	for _, st := range []*sql.Stmt{ws.product, ws.setting, ws.overrideClose, ws.overrideInsert, ws.pruneBefore, ws.pruneKeep} {
		if st != nil {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(errs...)
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
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.ws == nil {
		return errors.New("sqlite: commit: store is closed")
	}
	if err := s.commit(ctx, b); err != nil {
		return fmt.Errorf("sqlite: commit: %w", err)
	}
	return nil
}

func (s *Store) commit(ctx context.Context, b *engine.Batch) error {
	ws := s.ws
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit

	// Products first: states and overrides reference them.
	if len(b.Products) > 0 {
		st := tx.StmtContext(ctx, ws.product)
		now := time.Now().UnixNano()
		for _, p := range b.Products {
			if _, err := st.ExecContext(ctx, p.ID, p.Name, p.BasePrice, p.Strategy,
				p.Floor, p.Ceiling, p.MaxChangePct, p.Rounding, now, now); err != nil {
				return fmt.Errorf("product %q: %w", p.ID, err)
			}
		}
	}
	if len(b.States) > 0 {
		blobs := make([]string, len(b.States))
		for i := range b.States {
			j, err := json.Marshal(&b.States[i].State)
			if err != nil {
				return fmt.Errorf("state of %q: %w", b.States[i].ID, err)
			}
			blobs[i] = string(j)
		}
		if err := ws.states.exec(ctx, tx, &ws.args, len(b.States), func(a []any, i int) []any {
			ps := &b.States[i]
			st := &ps.State
			return append(a, ps.ID, st.Price, st.DynDemand, st.Source.String(), int64(st.Version), st.ChangedAt, blobs[i])
		}); err != nil {
			return fmt.Errorf("states: %w", err)
		}
	}
	if err := ws.history.exec(ctx, tx, &ws.args, len(b.History), func(a []any, i int) []any {
		h := &b.History[i]
		return append(a, h.ProductID, h.Price, h.Demand, h.Source.String(), h.At, int64(h.Version))
	}); err != nil {
		return fmt.Errorf("history: %w", err)
	}
	if err := ws.seen.exec(ctx, tx, &ws.args, len(b.Seen), func(a []any, i int) []any {
		return append(a, b.Seen[i].ID, b.Seen[i].At)
	}); err != nil {
		return fmt.Errorf("seen: %w", err)
	}
	if err := s.writeOverrides(ctx, tx, b); err != nil {
		return err
	}
	if len(b.Settings) > 0 {
		st := tx.StmtContext(ctx, ws.setting)
		for k, v := range b.Settings {
			if _, err := st.ExecContext(ctx, k, v); err != nil {
				return fmt.Errorf("setting %q: %w", k, err)
			}
		}
	}
	return tx.Commit()
}

// overrideOp is one override change: set (set != nil) or end.
type overrideOp struct {
	at  int64
	set *engine.OverrideRecord
	end *engine.OverrideEnd
}

// writeOverrides applies b's override changes in time order.
//
// The batch keeps sets and ends in two slices, which loses their relative
// order; replaying all sets before all ends would close an override set
// after a removal in the same batch. Ordering by time recovers the
// sequence; at equal times an end goes first, so that "remove, then set"
// leaves the new override open.
func (s *Store) writeOverrides(ctx context.Context, tx *sql.Tx, b *engine.Batch) error {
	if len(b.OverridesSet) == 0 && len(b.OverridesEnded) == 0 {
		return nil
	}
	ws := s.ws
	ops := ws.overrideOps[:0]
	for i := range b.OverridesEnded {
		ops = append(ops, overrideOp{at: b.OverridesEnded[i].At, end: &b.OverridesEnded[i]})
	}
	for i := range b.OverridesSet {
		ops = append(ops, overrideOp{at: b.OverridesSet[i].CreatedAt, set: &b.OverridesSet[i]})
	}
	slices.SortStableFunc(ops, func(x, y overrideOp) int { return cmp.Compare(x.at, y.at) })
	defer func() { clear(ops); ws.overrideOps = ops[:0] }()

	closeOpen := tx.StmtContext(ctx, ws.overrideClose)
	insert := tx.StmtContext(ctx, ws.overrideInsert)
	for _, op := range ops {
		if e := op.end; e != nil {
			if _, err := closeOpen.ExecContext(ctx, e.At, e.By, e.Reason, e.ProductID); err != nil {
				return fmt.Errorf("end override of %q: %w", e.ProductID, err)
			}
			continue
		}
		o := op.set
		if _, err := closeOpen.ExecContext(ctx, o.CreatedAt, o.By, "replaced", o.ProductID); err != nil {
			return fmt.Errorf("replace override of %q: %w", o.ProductID, err)
		}
		var endedAt, endedBy, endReason any
		if o.EndedAt != 0 {
			endedAt, endedBy, endReason = o.EndedAt, o.EndedBy, o.EndReason
		}
		if _, err := insert.ExecContext(ctx, o.ProductID, o.Price, o.Reason, o.By, o.CreatedAt,
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
// caller computing a limit means.
func (s *Store) PruneSeen(ctx context.Context, before int64, keep int) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if s.ws == nil {
		return errors.New("sqlite: prune seen: store is closed")
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: prune seen: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after Commit
	if _, err := tx.StmtContext(ctx, s.ws.pruneBefore).ExecContext(ctx, before); err != nil {
		return fmt.Errorf("sqlite: prune seen: %w", err)
	}
	if keep > 0 {
		if _, err := tx.StmtContext(ctx, s.ws.pruneKeep).ExecContext(ctx, keep); err != nil {
			return fmt.Errorf("sqlite: prune seen: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("sqlite: prune seen: %w", err)
	}
	return nil
}
