package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"fmt"
	"io"
	"strconv"
	"sync"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
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

// logState is the Store's in-memory index of the two logs: each product's
// position, in a slot of its own. Slots are numbered in the order of the
// catalog as Load returned it, products created since following, which
// is the engine's order too: a commit finds a product's slot from the
// hint its rows carry (engine.ProductState.Hint), checking the id, and
// only by the map from ids otherwise. At a million products the map
// lookups had been a seventh of a commit.
//
// slot, ids and pos are written only by the writer, under Store.wmu and
// mu, and read by History under mu; the other fields are the writer's,
// under wmu.
type logState struct {
	mu   sync.RWMutex
	slot map[string]int32 // nil until built (ensureLog or Load)
	ids  []string         // by slot
	pos  []logPos         // by slot: as committed
	// pend holds the positions a commit in progress changes, in the order
	// first changed, applied to pos once it commits; pendOf is, by slot,
	// 1 + the index of the slot's entry in pend, or 0.
	pend     []pendPos
	pendOf   []int32
	pendPeak engine.Peak
	nextHist int64 // next price_history seq
	nextLog  int64 // next state_log seq
	tail     int64 // oldest state_log seq still stored
	// Cleaner scratch, reused.
	cleanSeqs  []int64
	cleanSlots []int32
	json       []byte
}

// pendPos is a slot's position as the commit in progress sees it.
type pendPos struct {
	slot int32
	logPos
}

// noHint is the hint of a product known by its id only.
const noHint = -1

// build makes the index of the products (in catalog order) with the
// positions pos gives (by product; nil: none), and more for products
// outside the catalog. The caller holds wmu.
func (l *logState) build(products []pricing.Product, pos []logPos, more map[string]logPos) {
	n := len(products) + len(more)
	slot := make(map[string]int32, n)
	ids := make([]string, 0, n)
	for i := range products {
		slot[products[i].ID] = int32(len(ids))
		ids = append(ids, products[i].ID)
	}
	if pos == nil {
		pos = make([]logPos, len(ids), n)
	}
	for id, p := range more {
		if k, ok := slot[id]; ok {
			pos[k] = p
			continue
		}
		slot[id] = int32(len(ids))
		ids = append(ids, id)
		pos = append(pos, p)
	}
	l.mu.Lock()
	l.slot, l.ids, l.pos = slot, ids, pos
	l.mu.Unlock()
	l.pendOf = make([]int32, len(ids))
	l.pend = l.pend[:0]
}

// lookup returns id's slot, given a hint as find, if it has one.
func (l *logState) lookup(id string, hint int32) (int32, bool) {
	if hint >= 0 && int(hint) < len(l.ids) && l.ids[hint] == id {
		return hint, true
	}
	k, ok := l.slot[id]
	return k, ok
}

// find returns id's slot, given the slot the engine's hint names (or
// noHint), making one for a product new to the index.
func (l *logState) find(id string, hint int32) int32 {
	if k, ok := l.lookup(id, hint); ok {
		return k
	}
	// A product created in this commit. Its slot stays if the commit
	// fails, with no position: what it would have without one.
	l.mu.Lock()
	k := int32(len(l.ids))
	l.slot[id] = k
	l.ids = append(l.ids, id)
	l.pos = append(l.pos, logPos{})
	l.mu.Unlock()
	l.pendOf = append(l.pendOf, 0)
	return k
}

// at returns slot k's position as the commit in progress sees it.
func (l *logState) at(k int32) logPos {
	if o := l.pendOf[k]; o != 0 {
		return l.pend[o-1].logPos
	}
	return l.pos[k]
}

// set records slot k's position in the commit in progress.
func (l *logState) set(k int32, p logPos) {
	if o := l.pendOf[k]; o != 0 {
		l.pend[o-1].logPos = p
		return
	}
	l.pend = append(l.pend, pendPos{slot: k, logPos: p})
	l.pendOf[k] = int32(len(l.pend))
}

// settle makes the positions of a commit that committed the index's. The
// caller holds mu.
func (l *logState) settle() {
	for _, p := range l.pend {
		p.logged = false
		l.pos[p.slot] = p.logPos
		l.pendOf[p.slot] = 0
	}
	l.pend = engine.Trim(l.pend, &l.pendPeak)
}

// discard forgets the positions of a commit that failed.
func (l *logState) discard() {
	for _, p := range l.pend {
		l.pendOf[p.slot] = 0
	}
	l.pend = engine.Trim(l.pend, &l.pendPeak)
}

// cleanMin is the state_log length above twice the products at which the
// cleaner starts, and the least it looks at per commit.
const cleanMin = 1024

// ensureLog builds the in-memory index from the database when Load has
// not: for a Store that commits or reads history before any Load. The
// caller holds wmu, so no commit runs meanwhile.
func (s *Store) ensureLog(ctx context.Context) error {
	if s.logs.slot != nil {
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
	products, err := s.loadProducts(ctx)
	if err != nil {
		return err
	}
	s.logs.build(products, nil, pos)
	return s.setEnds(ctx, s.r)
}

// setEnds reads the tables' ends. The caller holds wmu.
//
// The next history seq follows the highest one any product's head holds,
// not only the highest row left: the history retention may have deleted
// every row (PruneHistory), and a seq given again would extend the chain
// of the product whose head still names it.
func (s *Store) setEnds(ctx context.Context, q interface {
	QueryRowContext(context.Context, string, ...any) *sql.Row
}) error {
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
	for _, p := range s.logs.pos {
		maxHist = max(maxHist, p.head)
	}
	s.logs.nextHist, s.logs.nextLog, s.logs.tail = maxHist+1, maxLog+1, minLog
	return nil
}

// position returns where productID's newest rows are, building the
// index first if need be.
func (s *Store) position(ctx context.Context, productID string) (logPos, error) {
	l := &s.logs
	l.mu.RLock()
	built := l.slot != nil
	var p logPos
	if k, ok := l.slot[productID]; ok {
		p = l.pos[k]
	}
	l.mu.RUnlock()
	if !built {
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

// clean copies the still-current rows among the oldest of state_log to
// its end and deletes the oldest range, when the log holds more than
// twice the products (plus cleanMin). It looks at most at budget rows.
// Runs inside the commit's transaction; l.nextLog and l.tail are the
// commit's tentative values.
func (l *logState) clean(ctx context.Context, ws *writeStmts, budget int) error {
	live := int64(len(l.ids))
	if l.nextLog-l.tail <= 2*live+cleanMin {
		return nil
	}
	budget = max(budget, cleanMin)
	rows, err := ws.cleanScan.(driver.StmtQueryContext).QueryContext(ctx, []driver.NamedValue{
		{Ordinal: 1, Value: l.tail}, {Ordinal: 2, Value: int64(budget)}})
	if err != nil {
		return fmt.Errorf("scan: %w", err)
	}
	l.cleanSeqs, l.cleanSlots = l.cleanSeqs[:0], l.cleanSlots[:0]
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
		if k := l.find(id, noHint); l.at(k).seq == seq {
			l.cleanSeqs = append(l.cleanSeqs, seq)
			l.cleanSlots = append(l.cleanSlots, k)
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
		for i, k := range l.cleanSlots {
			p := l.at(k)
			p.seq = l.nextLog + int64(i)
			l.set(k, p)
		}
		l.nextLog += int64(len(l.cleanSeqs))
	}
	if err := ws.exec(ctx, ws.cleanDelete, last+1); err != nil {
		return fmt.Errorf("delete: %w", err)
	}
	l.tail = last + 1
	return nil
}
