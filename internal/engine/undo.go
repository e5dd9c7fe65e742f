package engine

import "github.com/dynaprice/dynaprice/internal/pricing"

// A round that cannot be committed must leave no trace in memory: before
// this, the partition reloaded the whole state from the store, which at a
// million products took 40 s for every failed commit (a full disk fails
// them all). Instead the machine keeps, for every product a round is about
// to change, a copy of it as it was when the round began (keep), and a
// failed round puts those copies back (Undo): the cost is that of the
// round's own products, not of the catalog.
//
// This is exact because every change a round makes goes through the
// Machine, which calls keep before it lets the Book change a product, and
// because a Store's failed Commit leaves nothing of the batch visible
// (engine.Store's contract; a PostgreSQL commit whose acknowledgement was
// lost shows up as ErrFenced on the next one, and ErrFenced reloads).

// kept is a product as it was when the round began.
type kept struct {
	i     int
	prod  pricing.Product
	state pricing.State
}

// keep saves product i as it is now, once per round, before the round
// changes it. Products the round created need nothing: Undo drops them.
func (m *Machine) keep(i int) {
	if i >= m.base || m.isKept[i] {
		return
	}
	m.isKept[i] = true
	m.undo = append(m.undo, kept{i: i, prod: m.book.Product(i), state: m.book.State(i).Copy()})
}

// forgetKept ends the round's undo log, once it is committed (or undone).
func (m *Machine) forgetKept() {
	for k := range m.undo {
		m.isKept[m.undo[k].i] = false
	}
	clear(m.undo) // drop the references into the copies
	m.undo = m.undo[:0]
}

// Undo puts the machine back where it was at Begin: the products the
// round changed as they were, the products it created gone, the event ids
// it remembered forgotten. It reports false when it cannot (the round
// changed the catalog-wide default strategy, or evicted remembered ids for
// want of room, which it cannot get back): the caller must Load.
func (m *Machine) Undo() bool {
	if m.noUndo || m.seen.evicted > 0 {
		return false
	}
	for k := len(m.undo) - 1; k >= 0; k-- {
		u := &m.undo[k]
		m.book.Put(u.i, u.prod, u.state)
	}
	for range len(m.batch.Seen) {
		m.seen.dropNewest()
	}
	if m.book.Len() > m.base {
		for i := m.base; i < m.book.Len(); i++ {
			if m.heldMark[i] {
				m.held--
			}
			if m.fallMark[i] {
				m.fallen--
			}
		}
		m.book.Truncate(m.base)
		m.dirty, m.due, m.heldMark = m.dirty[:m.base], m.due[:m.base], m.heldMark[:m.base]
		m.fallMark = m.fallMark[:m.base]
		if m.rankLen > m.base {
			m.rankLen = 0
		}
	}
	for _, i := range m.touched {
		if i < m.base {
			m.dirty[i] = 0
		}
	}
	for k := range m.undo {
		m.track(m.undo[k].i, 0)
	}
	m.book.Tripped() // trips of the round are forgotten with it
	m.unpriced = append(m.unpriced[:0], m.unpricedAtBegin...)
	m.undoExperiments()
	m.forgetKept()
	m.batch.Reset()
	m.touched, m.changes, m.histOf = m.touched[:0], m.changes[:0], m.histOf[:0]
	m.counts = [3]int{}
	return true
}
