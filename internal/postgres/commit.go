package postgres

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// A commit costs a fixed number of round trips whatever its size: BEGIN,
// one pipelined batch (the fence, then products, states, overrides and
// settings, each a single statement over arrays except the few override
// changes), one COPY for the history, one for the seen ids, and COMMIT.

// Commit writes b in one transaction, together with the slot's fence (see
// the package comment): all of it is durable when Commit returns nil, and
// none of it is visible when it returns an error, including when ctx ends
// part-way. An error wrapping ErrFenced means another process owns the
// slot now.
//
// A Store that has not loaded adopts the slot's generation at its first
// Commit. The engine always loads first; this serves tools and tests.
//
// If the connection fails during COMMIT itself, the outcome is unknown to
// the client and Commit returns an error; should the transaction have
// committed, the slot's generation has moved and the next Commit fails with
// ErrFenced, so the engine reloads rather than applying events twice.
func (s *Store) Commit(ctx context.Context, b *engine.Batch) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	if b == nil || b.Empty() {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	gen, err := s.commit(ctx, b)
	if err != nil {
		return fmt.Errorf("postgres: commit (slot %d): %w", s.slot, unreachable(err))
	}
	s.gen, s.known = gen, true
	return nil
}

// commit runs the transaction and returns the slot's new generation.
func (s *Store) commit(ctx context.Context, b *engine.Batch) (int64, error) {
	// Everything that can be prepared in memory is, before BEGIN: the
	// transaction holds the slot's checkpoint row locked from its first
	// statement.
	batch, gen, err := s.buildBatch(b)
	if err != nil {
		return 0, err
	}
	tx, err := s.db.pool.BeginTx(ctx, pgx.TxOptions{})
	if err != nil {
		return 0, err
	}
	defer rollback(ctx, tx)

	if err := tx.SendBatch(ctx, batch.Batch).Close(); err != nil {
		return 0, err
	}
	if len(b.History) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"price_history"},
			[]string{"product_id", "event_time", "version", "price", "demand", "source"},
			&historyRows{rows: b.History}); err != nil {
			return 0, fmt.Errorf("history: %w", err)
		}
	}
	if len(b.Seen) > 0 {
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"seen_hashes"},
			[]string{"slot", "seen_at", "hash"}, &seenRows{slot: int32(s.slot), ids: b.Seen}); err != nil {
			return 0, fmt.Errorf("seen: %w", err)
		}
	}
	if err := copyAnalytics(ctx, tx, b.Analytics); err != nil {
		return 0, fmt.Errorf("analytics: %w", err)
	}
	// The last look at ctx. COMMIT itself runs without its cancellation:
	// cancelling a COMMIT in flight would leave the outcome unknown, when
	// the caller only asked to stop early.
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	fctx, cancel := finishCtx(ctx)
	defer cancel()
	if err := tx.Commit(fctx); err != nil {
		return 0, err
	}
	return *gen, nil
}

// labelledBatch is a pgx.Batch whose statements' errors say which part of
// the commit they are.
type labelledBatch struct {
	*pgx.Batch
}

// exec queues a statement whose result is only its error.
func (lb labelledBatch) exec(label, sql string, args ...any) {
	lb.Queue(sql, args...).Fn = func(br pgx.BatchResults) error {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("%s: %w", label, err)
		}
		return nil
	}
}

// buildBatch queues the statements of b other than the COPYs. gen receives
// the slot's new generation when the batch runs; when the fence refuses,
// running the batch fails with ErrFenced, whatever the statements after
// it do.
func (s *Store) buildBatch(b *engine.Batch) (labelledBatch, *int64, error) {
	lb := labelledBatch{&pgx.Batch{}}
	gen := new(int64)

	// The fence comes first: it locks the slot's row until the transaction
	// ends, so a zombie waits for the owner's commit in progress and is
	// then refused, before the bulk of its batch (the COPYs) is sent.
	var cursor *string
	if b.Cursor != "" {
		cursor = &b.Cursor
	}
	fence := func(row pgx.Row) error {
		err := row.Scan(gen)
		if errors.Is(err, pgx.ErrNoRows) {
			return ErrFenced
		}
		if err != nil {
			return fmt.Errorf("fence: %w", err)
		}
		return nil
	}
	if s.known {
		lb.Queue(`UPDATE checkpoints SET generation = generation + 1,
				cursor = coalesce($3::text, cursor), updated_at = now()
			WHERE slot = $1 AND generation = $2
			RETURNING generation`, s.slot, s.gen, cursor).QueryRow(fence)
	} else {
		lb.Queue(`INSERT INTO checkpoints AS c (slot, cursor, generation) VALUES ($1, coalesce($2::text, ''), 1)
			ON CONFLICT (slot) DO UPDATE SET generation = c.generation + 1,
				cursor = coalesce($2::text, c.cursor), updated_at = now()
			RETURNING generation`, s.slot, cursor).QueryRow(fence)
	}

	// Products before what refers to them.
	if ps := lastOf(b.Products, func(p *pricing.Product) string { return p.ID }); len(ps) > 0 {
		var c productCols
		for i := range ps {
			c.add(&ps[i])
		}
		lb.exec("products", insertProducts+`
			ON CONFLICT (id) DO UPDATE SET name = excluded.name, base_price = excluded.base_price,
				strategy = excluded.strategy, floor = excluded.floor, ceiling = excluded.ceiling,
				max_change_pct = excluded.max_change_pct, rounding = excluded.rounding,
				unit_cost = excluded.unit_cost, min_margin_pct = excluded.min_margin_pct, plans = excluded.plans,
				max_quantity = excluded.max_quantity, max_move_pct = excluded.max_move_pct, move_window = excluded.move_window,
				updated_at = now()`,
			c.args()...)
	}

	if sts := lastOf(b.States, func(p *engine.ProductState) string { return p.ID }); len(sts) > 0 {
		n := len(sts)
		ids, sources, blobs := make([]string, n), make([]string, n), make([]string, n)
		prices, demands := make([]float64, n), make([]float64, n)
		versions, changed := make([]int64, n), make([]int64, n)
		for i := range sts {
			st := &sts[i].State
			j, err := json.Marshal(st)
			if err != nil {
				return lb, nil, fmt.Errorf("state of %q: %w: %w", sts[i].ID, engine.ErrUnencodable, err)
			}
			ids[i], sources[i], blobs[i] = sts[i].ID, st.Source.String(), string(j)
			prices[i], demands[i] = st.Price, st.DynDemand
			versions[i], changed[i] = int64(st.Version), st.ChangedAt
		}
		lb.exec("states", `INSERT INTO product_state AS s (product_id, slot, price, demand, source, version, changed_at, state)
			SELECT id, $1, price, demand, source, version, changed_at, state::jsonb
			FROM unnest($2::text[], $3::float8[], $4::float8[], $5::text[], $6::int8[], $7::int8[], $8::text[])
				AS t (id, price, demand, source, version, changed_at, state)
			ON CONFLICT (product_id) DO UPDATE SET slot = excluded.slot, price = excluded.price,
				demand = excluded.demand, source = excluded.source, version = excluded.version,
				changed_at = excluded.changed_at, state = excluded.state, updated_at = now()`,
			s.slot, ids, prices, demands, sources, versions, changed, blobs)
	}

	if err := queueOverrides(lb, b); err != nil {
		return lb, nil, err
	}

	if len(b.Settings) > 0 {
		// Sorted: two slots writing the same settings lock their rows in
		// the same order, and cannot deadlock.
		keys := make([]string, 0, len(b.Settings))
		for k := range b.Settings {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		vals := make([]string, len(keys))
		for i, k := range keys {
			vals[i] = b.Settings[k]
		}
		lb.exec("settings", `INSERT INTO settings (key, value) SELECT * FROM unnest($1::text[], $2::text[])
			ON CONFLICT (key) DO UPDATE SET value = excluded.value`, keys, vals)
	}
	if err := queueExperiments(lb, b); err != nil {
		return lb, nil, err
	}
	return lb, gen, nil
}

// queueExperiments queues b's experiment upserts, then its arm deltas,
// one statement each: a batch holds few. Deltas are added in the order
// of (experiment, arm), so that two engines adding to the same arms lock
// their rows in the same order and cannot deadlock.
func queueExperiments(lb labelledBatch, b *engine.Batch) error {
	for _, r := range b.Experiments {
		js, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("experiment %q: %w: %w", r.ID, engine.ErrUnencodable, err)
		}
		lb.exec("experiment "+r.ID, `INSERT INTO experiments (id, record, created_at) VALUES ($1, $2::jsonb, $3)
			ON CONFLICT (id) DO UPDATE SET record = excluded.record`, r.ID, string(js), r.CreatedAt)
	}
	ds := slices.Clone(b.ArmDeltas)
	slices.SortStableFunc(ds, func(x, y engine.ArmDelta) int {
		return cmp.Or(strings.Compare(x.ExperimentID, y.ExperimentID), cmp.Compare(x.Arm, y.Arm))
	})
	for _, d := range ds {
		a := &d.Delta
		lb.exec("experiment arm", `INSERT INTO experiment_arms AS t (experiment_id, arm, views, purchases, units,
				revenue, revenue_sq, profit, profit_sq, p_value)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
			ON CONFLICT (experiment_id, arm) DO UPDATE SET views = t.views + excluded.views,
				purchases = t.purchases + excluded.purchases, units = t.units + excluded.units,
				revenue = t.revenue + excluded.revenue, revenue_sq = t.revenue_sq + excluded.revenue_sq,
				profit = t.profit + excluded.profit, profit_sq = t.profit_sq + excluded.profit_sq,
				p_value = least(t.p_value, excluded.p_value)`,
			d.ExperimentID, d.Arm, a.Views, a.Purchases, a.Units, a.Revenue, a.RevenueSq, a.Profit, a.ProfitSq, d.PValue)
	}
	return nil
}

// lastOf returns xs with only the last of the elements sharing a key, in
// the order of their first occurrence. A batch may name a product twice;
// one INSERT .. ON CONFLICT DO UPDATE cannot update a row twice.
func lastOf[T any](xs []T, key func(*T) string) []T {
	if len(xs) < 2 {
		return xs
	}
	at := make(map[string]int, len(xs))
	var out []T
	for i := range xs {
		k := key(&xs[i])
		if j, ok := at[k]; ok {
			if out == nil {
				out = slices.Clone(xs[:i])
			}
			out[j] = xs[i]
			continue
		}
		at[k] = len(at)
		if out != nil {
			out = append(out, xs[i])
		}
	}
	if out == nil {
		return xs
	}
	return out
}

// insertProducts inserts productCols' arrays (its args, in order); the
// caller appends the ON CONFLICT clause. Commit and SeedCatalog share it so
// that a new column cannot reach one and not the other. ORDER BY ord: new
// products get their catalog position (seq) in the order given. A
// product's plans travel as text, "" when it has none, which is stored as
// NULL (see the product_plans migration).
const insertProducts = `INSERT INTO products (id, name, base_price, strategy, floor, ceiling, max_change_pct, rounding,
		unit_cost, min_margin_pct, plans, max_quantity, max_move_pct, move_window)
	SELECT id, name, base_price, strategy, floor, ceiling, max_change_pct, rounding,
		unit_cost, min_margin_pct, nullif(plans, '')::jsonb, max_quantity, max_move_pct, move_window
	FROM unnest($1::text[], $2::text[], $3::float8[], $4::text[], $5::float8[], $6::float8[], $7::float8[], $8::text[],
			$9::float8[], $10::float8[], $11::text[], $12::int4[], $13::float8[], $14::int8[])
		WITH ORDINALITY AS t (id, name, base_price, strategy, floor, ceiling, max_change_pct, rounding,
			unit_cost, min_margin_pct, plans, max_quantity, max_move_pct, move_window, ord)
	ORDER BY ord`

// productCols are products as column arrays, for unnest.
type productCols struct {
	ids, names, strategies, roundings, plans                         []string
	bases, floors, ceilings, maxChanges, costs, minMargins, maxMoves []float64
	maxQtys                                                          []int32
	windows                                                          []int64
}

func (c *productCols) add(p *pricing.Product) {
	c.ids, c.names = append(c.ids, p.ID), append(c.names, p.Name)
	c.strategies, c.roundings = append(c.strategies, p.Strategy), append(c.roundings, p.Rounding)
	c.bases, c.floors = append(c.bases, p.BasePrice), append(c.floors, p.Floor)
	c.ceilings, c.maxChanges = append(c.ceilings, p.Ceiling), append(c.maxChanges, p.MaxChangePct)
	c.costs, c.minMargins = append(c.costs, p.UnitCost), append(c.minMargins, p.MinMarginPct)
	c.plans = append(c.plans, p.PlansJSON())
	c.maxQtys, c.maxMoves, c.windows = append(c.maxQtys, p.MaxQuantity), append(c.maxMoves, p.MaxMovePct), append(c.windows, int64(p.MoveWindow))
}

// args returns the arrays in insertProducts' parameter order.
func (c *productCols) args() []any {
	return []any{c.ids, c.names, c.bases, c.strategies, c.floors, c.ceilings, c.maxChanges, c.roundings,
		c.costs, c.minMargins, c.plans, c.maxQtys, c.maxMoves, c.windows}
}

// queueOverrides queues b's override changes in the batch's order.
// Changes are few (operators make them), so a statement each, pipelined,
// costs no round trip.
func queueOverrides(lb labelledBatch, b *engine.Batch) error {
	const closeOpen = "UPDATE overrides SET ended_at = $1, ended_by = $2, end_reason = $3 WHERE product_id = $4 AND ended_at IS NULL"
	for _, c := range b.Overrides {
		if e := c.End; e != nil {
			lb.exec(fmt.Sprintf("end override of %q", e.ProductID), closeOpen, e.At, e.By, e.Reason, e.ProductID)
			continue
		}
		o := c.Set
		if o == nil {
			return errors.New("an override change with neither Set nor End")
		}
		lb.exec(fmt.Sprintf("replace override of %q", o.ProductID), closeOpen, o.CreatedAt, o.By, "replaced", o.ProductID)
		var endedAt *int64
		var endedBy, endReason *string
		if o.EndedAt != 0 {
			endedAt, endedBy, endReason = &o.EndedAt, &o.EndedBy, &o.EndReason
		}
		var expires *int64
		if o.ExpiresAt != 0 {
			expires = &o.ExpiresAt
		}
		lb.exec(fmt.Sprintf("set override of %q", o.ProductID),
			`INSERT INTO overrides (product_id, override_price, reason, set_by, created_at, expires_at, ended_at, ended_by, end_reason)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
			o.ProductID, o.Price, o.Reason, o.By, o.CreatedAt, expires, endedAt, endedBy, endReason)
	}
	return nil
}

// sources holds the names of pricing.Source values already converted to
// interface values, which saves an allocation per history row.
var sources = [...]any{pricing.SourceBase.String(), pricing.SourceDynamic.String(), pricing.SourceOverride.String()}

// historyRows feeds history rows to COPY, in the batch's order, which is
// the index's: consecutive rows land on the same index page. pgx encodes
// each row's values before asking for the next, so one values array
// serves every row.
type historyRows struct {
	rows []engine.HistoryRow
	i    int
	vals [6]any
}

func (r *historyRows) Next() bool {
	r.i++
	return r.i <= len(r.rows)
}

func (r *historyRows) Values() ([]any, error) {
	h := &r.rows[r.i-1]
	src := any(h.Source.String())
	if int(h.Source) < len(sources) {
		src = sources[h.Source]
	}
	r.vals = [6]any{h.ProductID, h.At, int64(h.Version), h.Price, h.Demand, src}
	return r.vals[:], nil
}

func (r *historyRows) Err() error { return nil }

// seenRows feeds a slot's seen ids to COPY, each hash as the bigint with
// the same bits.
type seenRows struct {
	slot int32
	ids  []engine.SeenID
	i    int
	vals [3]any
}

func (r *seenRows) Next() bool {
	r.i++
	return r.i <= len(r.ids)
}

func (r *seenRows) Values() ([]any, error) {
	id := &r.ids[r.i-1]
	r.vals = [3]any{r.slot, id.At, int64(id.Hash)}
	return r.vals[:], nil
}

func (r *seenRows) Err() error { return nil }

// PruneSeen forgets this slot's event ids seen before before (unix ns),
// then all but its newest keep. keep <= 0 sets no count limit: forgetting
// every id would let any redelivered event apply twice, which is never
// what a caller computing a limit means. The id strings of seen_events
// (written before migration 0003) are pruned by age only: only engines of
// the previous release write them, so they are gone one window after an
// upgrade, and counting them against keep would cost a count of all the
// slot's hashes at every prune.
//
// It deletes in steps of at most pruneStep rows, each its own short
// transaction, so that the slot's commits, which it holds up while a step
// runs (the Store's lock, and the checkpoint row it shares), wait for one
// step at most, never for the whole prune. Every step is fenced: a process
// that lost the slot must not change what the new owner will load. A
// prune cut short (ctx, an error) has deleted only whole steps.
func (s *Store) PruneSeen(ctx context.Context, before int64, keep int) error {
	// drain deletes, step by step, the rows q selects (by ctid, at most
	// pruneStep of them, from the slot's index range $1…$3).
	drain := func(table, q string, args ...any) error {
		del := "DELETE FROM " + table + " WHERE ctid = ANY(ARRAY(" + q + "))"
		for {
			n, err := s.pruneOnce(ctx, del, args...)
			if err != nil {
				return fmt.Errorf("%s: %w", table, err)
			}
			if n < pruneStep {
				return nil
			}
		}
	}
	err := drain("seen_hashes", `SELECT ctid FROM seen_hashes WHERE slot = $1 AND seen_at < $2 ORDER BY seen_at LIMIT $3`,
		s.slot, before, pruneStep)
	if err == nil {
		err = drain("seen_events", `SELECT ctid FROM seen_events WHERE slot = $1 AND seen_at < $2 ORDER BY seen_at LIMIT $3`,
			s.slot, before, pruneStep)
	}
	if err == nil && keep > 0 {
		// The cut-off is found by walking the index backwards from the
		// newest id, outside any transaction that holds a commit up.
		var at, hash int64
		switch qerr := s.db.pool.QueryRow(ctx, `SELECT seen_at, hash FROM seen_hashes WHERE slot = $1
			ORDER BY seen_at DESC, hash DESC LIMIT 1 OFFSET $2`, s.slot, keep).Scan(&at, &hash); {
		case errors.Is(qerr, pgx.ErrNoRows): // no more than keep
		case qerr != nil:
			err = fmt.Errorf("newest %d: %w", keep, qerr)
		default:
			err = drain("seen_hashes", `SELECT ctid FROM seen_hashes WHERE slot = $1 AND (seen_at, hash) <= ($2, $3)
				ORDER BY seen_at, hash LIMIT $4`, s.slot, at, hash, pruneStep)
		}
	}
	if err != nil {
		return fmt.Errorf("postgres: prune seen (slot %d): %w", s.slot, unreachable(err))
	}
	return nil
}

// pruneStep is the most rows one step of PruneSeen deletes.
const pruneStep = 4096

// pruneOnce runs del, one step of PruneSeen, in a fenced transaction of its
// own and returns how many rows it deleted.
func (s *Store) pruneOnce(ctx context.Context, del string, args ...any) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	err := pgx.BeginFunc(ctx, s.db.pool, func(tx pgx.Tx) error {
		if s.known {
			// FOR SHARE: the owner's next commit waits for this step, and
			// this step for the owner's commit in progress.
			var one int
			err := tx.QueryRow(ctx, "SELECT 1 FROM checkpoints WHERE slot = $1 AND generation = $2 FOR SHARE",
				s.slot, s.gen).Scan(&one)
			if errors.Is(err, pgx.ErrNoRows) {
				return ErrFenced
			}
			if err != nil {
				return err
			}
		}
		tag, err := tx.Exec(ctx, del, args...)
		n = tag.RowsAffected()
		return err
	})
	return n, err
}
