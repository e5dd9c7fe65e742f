package engine

// The tick used to reprice every product of the catalog every second, to
// find the few whose override expired, whose breaker window ended, whose
// 30-day low rolled over or whose price moves with time: 0.13 cores at a
// million products, idle. Now every product has at most one timer, at
// pricing.Book.NextTick (the earliest time its price or low can change
// without an event), in a min-heap; a tick handles the products whose
// timer is due, and a product's timer is set again whenever a round
// changes it. Timers are not persisted: Load sets every product's.

// timer is product i's next tick, at (unix ns).
type timer struct {
	at int64
	i  int32
}

// schedule sets product i's timer from its state, no earlier than after.
// A timer already in the
// heap for another time stays there, stale (due[i] no longer matches it),
// and is skipped when it comes out; the heap is rebuilt when stale timers
// outnumber the products.
func (m *Machine) schedule(i int, after int64) {
	t := m.book.NextTick(i, m.clock)
	if t != 0 {
		t = max(t, after)
	}
	if t == m.due[i] || (t != 0 && m.due[i] != 0 && m.due[i] < t) {
		// Unchanged, or a timer earlier than needed is set already: it
		// will find the product not due yet (a tick at any time gives
		// what ticking it every second gave) and set the next one. Events
		// keep pushing a decay product's crossing later; this spares the
		// heap a push per product per round.
		return
	}
	m.due[i] = t
	if t == 0 {
		return
	}
	if len(m.timers) > 2*len(m.due)+1024 {
		m.rebuildTimers()
		return
	}
	m.timers = append(m.timers, timer{at: t, i: int32(i)})
	m.up(len(m.timers) - 1)
}

// rebuildTimers makes the heap hold exactly the live timers.
func (m *Machine) rebuildTimers() {
	m.timers = m.timers[:0]
	for i, t := range m.due {
		if t != 0 {
			m.timers = append(m.timers, timer{at: t, i: int32(i)})
		}
	}
	for k := len(m.timers)/2 - 1; k >= 0; k-- {
		m.down(k)
	}
}

// nextDue removes and returns the product of the earliest live timer due
// at now or before; ok is false when none is.
func (m *Machine) nextDue(now int64) (i int, ok bool) {
	for len(m.timers) > 0 && m.timers[0].at <= now {
		t := m.timers[0]
		last := len(m.timers) - 1
		m.timers[0] = m.timers[last]
		m.timers = m.timers[:last]
		if last > 0 {
			m.down(0)
		}
		if int(t.i) < len(m.due) && m.due[t.i] == t.at {
			m.due[t.i] = 0
			return int(t.i), true
		}
	}
	return 0, false
}

func (m *Machine) up(k int) {
	h := m.timers
	for k > 0 {
		p := (k - 1) / 2
		if h[p].at <= h[k].at {
			return
		}
		h[p], h[k] = h[k], h[p]
		k = p
	}
}

func (m *Machine) down(k int) {
	h := m.timers
	for {
		c := 2*k + 1
		if c >= len(h) {
			return
		}
		if c+1 < len(h) && h[c+1].at < h[c].at {
			c++
		}
		if h[k].at <= h[c].at {
			return
		}
		h[k], h[c] = h[c], h[k]
		k = c
	}
}

// track brings product i's timer (no earlier than after) and its shares
// of Held and Fallback up to date with its state, after a change.
func (m *Machine) track(i int, after int64) {
	if h := m.book.Held(i); h != m.heldMark[i] {
		m.heldMark[i] = h
		if h {
			m.held++
		} else {
			m.held--
		}
	}
	if f := m.book.Fallback(i); f != m.fallMark[i] {
		m.fallMark[i] = f
		if f {
			m.fallen++
		} else {
			m.fallen--
		}
	}
	m.schedule(i, after)
}
