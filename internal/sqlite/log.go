package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"strconv"
)

// Since migration 0006 both hot tables are appended to, never updated in
// place (see the migration for why): price_history, whose rows chain each
// product's changes newest to oldest through prev, and state_log, whose
// newest row for a product is its state and the head of that chain.
//
// The Store keeps in memory what it needs to append without reading: for
// each product the seq of its newest state_log row and of its newest
// history row (logPos), and the next seq of each table. The cleaner keeps
// state_log at about twice the number of products: each commit looks at
// the oldest rows, copies the ones still current to the end and deletes
// the oldest range, so the table is written at its two edges only.

// logPos is where a product's newest rows are.
type logPos struct {
	head   int64 // seq of its newest price_history row; 0: none
	seq    int64 // seq of its newest state_log row; 0: none
	hourly int64 // seq of its newest price_hourly row; 0: none
	// logged is set during a commit once the product has a state_log row
	// in it.
	logged bool
}

// logState is the Store's in-memory index of the two logs. pos is written
// only by the writer, under Store.wmu and Store.pmu, and read by History
// under pmu; the other fields are the writer's, under wmu.
type logState struct {
	pos      map[string]logPos // nil until built (ensureLog or Load)
	nextHist int64             // next price_history seq
	nextLog  int64             // next state_log seq
	tail     int64             // oldest state_log seq still stored
	// pend holds the positions a commit in progress changes, applied to
	// pos once it commits.
	pend map[string]logPos
	// Cleaner scratch, reused.
	cleanSeqs []int64
	cleanIDs  []string
	json      []byte
}

// cleanMin is the state_log length above twice the products at which the
// cleaner starts, and the least it looks at per commit.
const cleanMin = 1024

// ensureLog builds the in-memory index from the database when Load has
// not: for a Store that commits or reads history before any Load. The
// caller holds wmu, so no commit runs meanwhile.
func (s *Store) ensureLog(ctx context.Context) error {
	if s.logs.pos != nil {
		return nil
	}
	pos := map[string]logPos{}
	err := query(ctx, s.r, "SELECT seq, product_id, head, hourly FROM state_log ORDER BY seq DESC", nil, func(r *sql.Rows) error {
		var p logPos
		var id sql.RawBytes
		if err := r.Scan(&p.seq, &id, &p.head, &p.hourly); err != nil {
			return err
		}
		if _, ok := pos[string(id)]; !ok {
			pos[string(id)] = p
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("state log: %w", err)
	}
	return s.setLog(ctx, s.r, pos)
}

// setLog installs pos and reads the tables' ends. The caller holds wmu.
//
// The next history seq follows the highest one any product's head holds,
// not only the highest row left: the history retention may have deleted
// every row (PruneHistory), and a seq given again would extend the chain
// of the product whose head still names it.
func (s *Store) setLog(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}, pos map[string]logPos) error {
	var maxHist, minLog, maxLog int64
	if err := q.QueryRowContext(ctx, "SELECT coalesce(max(seq), 0) FROM price_history").Scan(&maxHist); err != nil {
		return fmt.Errorf("history end: %w", err)
	}
	// Two subqueries, not min and max in one: SQLite reads one end of the
	// index for a lone min() or max(), but scans the whole table for both
	// together (two million rows at a million products, 0.6 s of a start).
	if err := q.QueryRowContext(ctx, "SELECT coalesce((SELECT min(seq) FROM state_log), 1), coalesce((SELECT max(seq) FROM state_log), 0)").Scan(&minLog, &maxLog); err != nil {
		return fmt.Errorf("state log ends: %w", err)
	}
	s.pmu.Lock()
	s.logs.pos = pos
	s.pmu.Unlock()
	for _, p := range pos {
		maxHist = max(maxHist, p.head)
	}
	s.logs.nextHist, s.logs.nextLog, s.logs.tail = maxHist+1, maxLog+1, minLog
	return nil
}

// position returns where productID's newest rows are, building the
// index first if need be.
func (s *Store) position(ctx context.Context, productID string) (logPos, error) {
	s.pmu.RLock()
	pos := s.logs.pos
	p := pos[productID]
	s.pmu.RUnlock()
	if pos == nil {
		s.wmu.Lock()
		err := s.ensureLog(ctx)
		s.wmu.Unlock()
		if err != nil {
			return logPos{}, err
		}
		return s.position(ctx, productID)
	}
	return p, nil
}

// at returns productID's position as the commit in progress sees it.
func (l *logState) at(id string) logPos {
	if p, ok := l.pend[id]; ok {
		return p
	}
	return l.pos[id]
}

// clean copies the still-current rows among the oldest of state_log to
// its end and deletes the oldest range, when the log holds more than
// twice the products (plus cleanMin). It looks at most at budget rows.
// Runs inside the commit's transaction; l.nextLog and l.tail are the
// commit's tentative values.
func (l *logState) clean(ctx context.Context, ws *writeStmts, budget int) error {
	live := int64(len(l.pos) + len(l.pend))
	if l.nextLog-l.tail <= 2*live+cleanMin {
		return nil
	}
	budget = max(budget, cleanMin)
	rows, err := ws.cleanScan.(driver.StmtQueryContext).QueryContext(ctx, []driver.NamedValue{
		{Ordinal: 1, Value: l.tail}, {Ordinal: 2, Value: int64(budget)}})
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	l.cleanSeqs, l.cleanIDs = l.cleanSeqs[:0], l.cleanIDs[:0]
	last := int64(-1)
	dest := make([]driver.Value, 2)
	for {
		if err := rows.Next(dest); err == io.EOF {
			break
		} else if err != nil {
			rows.Close()
			return fmt.Errorf("scan: %w", err)
		}
		seq, _ := dest[0].(int64)
		var id string
		switch v := dest[1].(type) {
		case string:
			id = v
		case []byte:
			id = string(v)
		}
		last = seq
		if l.at(id).seq == seq {
			l.cleanSeqs = append(l.cleanSeqs, seq)
			l.cleanIDs = append(l.cleanIDs, id)
		}
	}
	if err := rows.Close(); err != nil {
		return err
	}
	if last < 0 {
		return nil
	}
	if len(l.cleanSeqs) > 0 {
		l.json = append(l.json[:0], '[')
		for k, seq := range l.cleanSeqs {
			if k > 0 {
				l.json = append(l.json, ',')
			}
			l.json = strconv.AppendInt(l.json, seq, 10)
		}
		l.json = append(l.json, ']')
		if err := ws.exec(ctx, ws.cleanCopy, l.nextLog, string(l.json)); err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		for k, id := range l.cleanIDs {
			p := l.at(id)
			p.seq = l.nextLog + int64(k)
			l.pend[id] = p
		}
		l.nextLog += int64(len(l.cleanSeqs))
	}
	if err := ws.exec(ctx, ws.cleanDelete, last+1); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	l.tail = last + 1
	return nil
}
