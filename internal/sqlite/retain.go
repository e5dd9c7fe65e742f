package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/retry"
)

// The history retention (engine.HistoryRetention) keeps price_history to
// the raw window and price_hourly to the hourly one, in steps beside the
// commits, as PruneSeen does for the event ids.
//
// price_history is in commit order (seq), which is time order but for the
// jitter of one commit's rows (sorted by product, then time). A step takes
// its oldest rows, up to the first one not older than the raw cut-off, so
// what is deleted is always a prefix of the table, and of every product's
// chain: a chain ends at its first missing row, where the product's
// summaries go on (state_log.hourly). The step summarises the rows per
// product and hour (engine.Summarize), writes the summaries, deletes the
// rows and moves the products' pointers to their newest summary, all in
// one transaction on the writer's connection: a reader sees the rows or
// their summaries, never both, never neither, and a step cut short by a
// crash did nothing. Everything it writes is at the right edge of the
// appended tables, or the product's newest summary (the previous step's,
// when an hour is split between two steps), never one page per product.
//
// Freed pages are kept in the file and reused by later appends, so the
// file stops growing at what the windows hold; it is not shrunk (see
// docs/DEPLOY.md, "History retention", for why, and for shrinking it).

// PruneHistory rolls the changes older than r.Raw into hourly summaries
// (or deletes them when r keeps none) and deletes the summaries older
// than r.Hourly, as of now, in steps of tuning.retainRows rows, each its
// own transaction, with a pause as long as the step between steps (see
// PruneSeen). Runs do not overlap; a run cut short leaves whole steps
// done, and the next goes on from there.
func (s *Store) PruneHistory(ctx context.Context, now int64, r engine.HistoryRetention) (engine.HistoryPruned, error) {
	var n engine.HistoryPruned
	if !r.Enabled() {
		return n, nil
	}
	s.retainMu.Lock()
	defer s.retainMu.Unlock()
	raw, hourly := r.Cutoffs(now)
	err := s.steps(ctx, func() (bool, error) { return s.rollStep(ctx, raw, r.Summaries(), &n) })
	if err == nil && hourly > 0 {
		err = s.steps(ctx, func() (bool, error) { return s.expireStep(ctx, hourly, &n) })
	}
	if err == nil && hourly > 0 {
		err = s.steps(ctx, func() (bool, error) { return s.expireAnalytics(ctx, hourly, &n) })
	}
	if err != nil {
		return n, fmt.Errorf("sqlite: prune history: %w", err)
	}
	if n != (engine.HistoryPruned{}) {
		var free, pages int64
		if err := s.r.QueryRowContext(ctx, "SELECT freelist_count, page_count FROM pragma_freelist_count, pragma_page_count").Scan(&free, &pages); err == nil {
			s.log.Debug("sqlite: history retention", "rolled", n.Rolled, "summaries", n.Summaries, "expired", n.Expired,
				"free_pages", free, "pages", pages)
		}
	}
	return n, nil
}

// steps runs step until it reports that nothing is left, pausing after
// each as long as it took: as long again for the commits and for the
// checkpointer, which copies the log the step grew back into the file.
func (s *Store) steps(ctx context.Context, step func() (more bool, err error)) error {
	for {
		t0 := time.Now()
		more, err := step()
		if err != nil || !more {
			return err
		}
		s.ckpt.kick()
		if err := retry.Sleep(ctx, time.Since(t0)); err != nil {
			return err
		}
	}
}

// rollStep rolls up and deletes the oldest rows of price_history older
// than cut, at most tuning.retainRows of them, in one transaction; more
// reports a full step (there may be more).
func (s *Store) rollStep(ctx context.Context, cut int64, summaries bool, n *engine.HistoryPruned) (more bool, err error) {
	err = s.withWriter(ctx, func(c writeConn, ws *writeStmts) error {
		if err := s.ensureLog(ctx); err != nil { // the caller holds wmu
			return err
		}
		tx, err := c.BeginTx(ctx, driver.TxOptions{})
		if err != nil {
			return err
		}
		l := &s.logs
		nextLog, tail := l.nextLog, l.tail
		rows, last, full, err := scanOldest(ctx, ws, s.tun.retainRows, cut)
		var sums int
		if err == nil && len(rows) > 0 {
			sums, err = rollUp(ctx, ws, l, rows, last, summaries)
		}
		if err != nil || len(rows) == 0 {
			tx.Rollback() //nolint:errcheck // secondary to err, or nothing done
			l.nextLog, l.tail = nextLog, tail
			l.discard()
			return err
		}
		more = full
		// Readers find a product's summaries from memory: the commit and
		// the pointers it moves are one event to them (HistoryPage).
		s.rollGen.Add(1)
		l.mu.Lock()
		err = tx.Commit()
		if err == nil {
			l.settle()
		} else {
			l.nextLog, l.tail = nextLog, tail
			l.discard()
		}
		l.mu.Unlock()
		s.rollGen.Add(1)
		if err == nil {
			n.Rolled += int64(len(rows))
			n.Summaries += int64(sums)
		}
		return err
	})
	return more, err
}

// scanOldest reads the oldest max rows of price_history, up to the first
// one at or after cut; last is the seq of the last row returned, full
// whether max rows were all older than cut.
func scanOldest(ctx context.Context, ws *writeStmts, limit int, cut int64) (out []engine.HistoryRow, last int64, full bool, err error) {
	rs, err := ws.rollScan.(driver.StmtQueryContext).QueryContext(ctx, []driver.NamedValue{{Ordinal: 1, Value: int64(limit)}})
	if err != nil {
		return nil, 0, false, fmt.Errorf("scan: %w", err)
	}
	defer rs.Close()
	dest := make([]driver.Value, 7)
	for {
		if err := rs.Next(dest); err == io.EOF {
			break
		} else if err != nil {
			return nil, 0, false, fmt.Errorf("scan: %w", err)
		}
		at, _ := dest[2].(int64)
		if at >= cut {
			return out, last, false, nil
		}
		h := engine.HistoryRow{ProductID: text(dest[1]), At: at}
		last, _ = dest[0].(int64)
		version, _ := dest[3].(int64)
		h.Version = uint64(version)
		h.Price, _ = dest[4].(float64)
		h.Demand, _ = dest[5].(float64)
		var ok bool
		if h.Source, ok = pricing.ParseSource(text(dest[6])); !ok {
			return nil, 0, false, fmt.Errorf("scan: row %d: unknown source %q", last, text(dest[6]))
		}
		out = append(out, h)
	}
	return out, last, len(out) == limit, nil
}

// text returns a TEXT column's value.
func text(v driver.Value) string {
	switch v := v.(type) {
	case string:
		return v
	case []byte:
		return string(v)
	}
	return ""
}

// rollUp writes the summaries of rows (the oldest of price_history, up to
// seq last) inside the step's transaction, deletes the rows, records in
// l.pend the products whose newest summary is a new one, and returns how
// many summaries it wrote or merged into.
func rollUp(ctx context.Context, ws *writeStmts, l *logState, rows []engine.HistoryRow, last int64, summaries bool) (int, error) {
	var sums []engine.HourlyRow
	if summaries {
		sums = engine.Summarize(rows)
		if err := writeSummaries(ctx, ws, l, sums); err != nil {
			return 0, err
		}
	}
	if err := ws.exec(ctx, ws.rollDelete, last); err != nil {
		return 0, fmt.Errorf("delete: %w", err)
	}
	return len(sums), nil
}

// summaryAt is where a product's newest summary is, and its hour.
type summaryAt struct {
	product string
	hour    int64
}

// writeSummaries writes sums (sorted by product, then hour): a summary of
// the hour of its product's newest summary is merged into it (the hour was
// split between two steps), any other is appended after it in the
// product's chain.
func writeSummaries(ctx context.Context, ws *writeStmts, l *logState, sums []engine.HourlyRow) error {
	// The products' newest summaries, in one statement.
	newest := map[int64]summaryAt{}
	var ids []byte
	for i := range sums {
		if i > 0 && sums[i].ProductID == sums[i-1].ProductID {
			continue
		}
		if p := l.at(l.find(sums[i].ProductID, noHint)); p.hourly > 0 {
			if len(ids) > 0 {
				ids = append(ids, ',')
			}
			ids = strconv.AppendInt(ids, p.hourly, 10)
		}
	}
	if len(ids) > 0 {
		rs, err := ws.hourlyNewest.(driver.StmtQueryContext).QueryContext(ctx, []driver.NamedValue{{Ordinal: 1, Value: "[" + string(ids) + "]"}})
		if err != nil {
			return fmt.Errorf("newest summaries: %w", err)
		}
		dest := make([]driver.Value, 3)
		for {
			if err := rs.Next(dest); err == io.EOF {
				break
			} else if err != nil {
				rs.Close()
				return fmt.Errorf("newest summaries: %w", err)
			}
			seq, _ := dest[0].(int64)
			hour, _ := dest[1].(int64)
			newest[seq] = summaryAt{product: text(dest[2]), hour: hour}
		}
		if err := rs.Close(); err != nil {
			return err
		}
	}
	var next int64
	if err := queryInt(ctx, ws.hourlyNext, &next); err != nil {
		return fmt.Errorf("next summary: %w", err)
	}
	next++
	type appended struct {
		seq, prev int64
		i         int
	}
	var add []appended
	for i := range sums {
		h := &sums[i]
		k := l.find(h.ProductID, noHint)
		p := l.at(k)
		if at, ok := newest[p.hourly]; ok && at.product == h.ProductID && at.hour == h.Hour {
			if err := ws.exec(ctx, ws.hourlyMerge, p.hourly, h.High, h.Low, h.Close, h.Changes, h.CloseAt,
				int64(h.Version), ws.source(h.Source), h.Demand); err != nil {
				return fmt.Errorf("merge summary of %q: %w", h.ProductID, err)
			}
			continue
		}
		add = append(add, appended{seq: next, prev: p.hourly, i: i})
		p.hourly = next
		next++
		l.set(k, p)
	}
	if err := ws.hourly.exec(ctx, ws, len(add), func(v []driver.NamedValue, k int) {
		a := add[k]
		h := &sums[a.i]
		v[0].Value, v[1].Value, v[2].Value, v[3].Value = a.seq, h.ProductID, h.Hour, h.Open
		v[4].Value, v[5].Value, v[6].Value, v[7].Value = h.High, h.Low, h.Close, h.Changes
		v[8].Value, v[9].Value, v[10].Value, v[11].Value = h.CloseAt, int64(h.Version), ws.source(h.Source), h.Demand
		v[12].Value = a.prev
	}); err != nil {
		return fmt.Errorf("summaries: %w", err)
	}
	// The products with a new newest summary get a state_log row naming
	// it: a copy of their newest, as a commit writes for a product with
	// history but no new state; all in one statement, the k-th pair
	// [seq of the newest row, summary] of the JSON array copied to
	// l.nextLog + k.
	if len(l.pend) == 0 {
		return nil
	}
	l.json = append(l.json[:0], '[')
	k := int64(0)
	for i := range l.pend {
		p := &l.pend[i]
		if p.seq == 0 { // cannot be: since 0006 a product with history has a state_log row
			return fmt.Errorf("state of %q: no state_log row to copy", l.ids[p.slot])
		}
		if k > 0 {
			l.json = append(l.json, ',')
		}
		l.json = append(l.json, '[')
		l.json = strconv.AppendInt(l.json, p.seq, 10)
		l.json = append(l.json, ',')
		l.json = strconv.AppendInt(l.json, p.hourly, 10)
		l.json = append(l.json, ']')
		p.seq = l.nextLog + k
		k++
	}
	l.json = append(l.json, ']')
	if err := ws.exec(ctx, ws.stateRepoint, l.nextLog, string(l.json)); err != nil {
		return fmt.Errorf("states: %w", err)
	}
	l.nextLog += k
	if err := l.clean(ctx, ws, 2*int(k)); err != nil {
		return fmt.Errorf("state log cleaner: %w", err)
	}
	return nil
}

// queryInt runs st, which returns one integer.
func queryInt(ctx context.Context, st driver.Stmt, dst *int64) error {
	rs, err := st.(driver.StmtQueryContext).QueryContext(ctx, nil)
	if err != nil {
		return err
	}
	defer rs.Close()
	dest := make([]driver.Value, 1)
	if err := rs.Next(dest); err != nil {
		return err
	}
	v, ok := dest[0].(int64)
	if !ok {
		return errors.New("not an integer")
	}
	*dst = v
	return nil
}

// expireStep deletes the oldest summaries of hours before cut, at most
// tuning.retainRows of them, in one transaction. Summaries are appended
// in hour order, so these are a prefix of price_hourly and of every
// product's chain of summaries.
func (s *Store) expireStep(ctx context.Context, cut int64, n *engine.HistoryPruned) (more bool, err error) {
	var expired int64
	err = s.inWriteTx(ctx, func(ws *writeStmts) error {
		rs, err := ws.expireScan.(driver.StmtQueryContext).QueryContext(ctx, []driver.NamedValue{{Ordinal: 1, Value: int64(s.tun.retainRows)}})
		if err != nil {
			return fmt.Errorf("scan summaries: %w", err)
		}
		var last, k int64
		dest := make([]driver.Value, 2)
		for {
			if err := rs.Next(dest); err == io.EOF {
				more = k == int64(s.tun.retainRows)
				break
			} else if err != nil {
				rs.Close()
				return fmt.Errorf("scan summaries: %w", err)
			}
			if hour, _ := dest[1].(int64); hour >= cut {
				break
			}
			last, _ = dest[0].(int64)
			k++
		}
		if err := rs.Close(); err != nil {
			return err
		}
		if k == 0 {
			return nil
		}
		if err := ws.exec(ctx, ws.expireDelete, last); err != nil {
			return fmt.Errorf("delete summaries: %w", err)
		}
		expired = k
		return nil
	})
	if err == nil {
		n.Expired += expired
	}
	return more, err
}
