package loadgen

import (
	"sync"
	"time"
)

// pending is one sent event still waiting for a price update that reflects
// it.
type pending struct {
	// tsNanos is the event's Kafka record timestamp in unix nanoseconds.
	// Kafka keeps record timestamps to the millisecond, so this is too:
	// it is what an engine reads back and reports in the event-time
	// header, and matching compares like with like.
	tsNanos int64
	// sent is when the event was handed to the producer, relative to the
	// run's start on the monotonic clock, so that latencies are not
	// skewed by wall-clock steps or by the millisecond truncation above.
	sent time.Duration
}

// fifo is one product's pending events, oldest first. Events of a product
// are sent in timestamp order, so the ones an update reflects are always a
// prefix.
type fifo struct {
	buf  []pending
	head int
}

func (q *fifo) push(p pending) {
	switch {
	case q.head == len(q.buf):
		q.buf, q.head = q.buf[:0], 0
	case q.head >= 1024 && 2*q.head >= len(q.buf):
		// Reclaim the popped front rather than letting a long run's
		// slice grow with every event ever sent.
		n := copy(q.buf, q.buf[q.head:])
		q.buf, q.head = q.buf[:n], 0
	}
	q.buf = append(q.buf, p)
}

// update is a price update as matching needs it.
type update struct {
	product int // index into the products
	// version is the update's version; 0 means unversioned, which opts
	// out of the staleness check (as it does in the WebSocket hub).
	version uint64
	// eventTime is the dynaprice-event-time header in unix ns, or -1 when
	// the update carries none (it then matches nothing).
	eventTime int64
}

// matcher pairs price updates with the events they reflect. The sender adds
// events and the consumer applies updates concurrently, so everything is
// under one mutex; both take it once per batch, not per record.
type matcher struct {
	mu       sync.Mutex
	pending  []fifo   // by product index
	versions []uint64 // newest version seen, by product index
	hist     histogram
	// outstanding is the number of events added and not yet matched.
	outstanding int64
	matched     int64
	updates     int64 // updates for known products, stale ones included
	stale       int64
	// firstSent is the send time of the first event added (started says
	// whether there was one), lastMatch the arrival of the newest update
	// that matched an event: the span over which events were priced.
	firstSent, lastMatch time.Duration
	started              bool

	// done is closed once sending has finished and nothing is
	// outstanding, which ends the drain early.
	done     chan struct{}
	sendDone bool
	closed   bool
}

func newMatcher(products int) *matcher {
	return &matcher{
		pending:  make([]fifo, products),
		versions: make([]uint64, products),
		done:     make(chan struct{}),
	}
}

// add records sent events; products[i] is the product of evs[i].
func (m *matcher) add(products []int, evs []pending) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.started && len(evs) > 0 {
		m.firstSent, m.started = evs[0].sent, true
	}
	for i, p := range evs {
		m.pending[products[i]].push(p)
	}
	m.outstanding += int64(len(evs))
}

// apply matches updates that arrived at arrival (relative to the run's
// start, like pending.sent): each pops the pending events of its product
// with timestamps up to its event time and records their latencies. An
// update with an older version than one already seen is stale, an echo of
// a state that was already superseded, and is ignored.
func (m *matcher) apply(us []update, arrival time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for _, u := range us {
		m.updates++
		if u.version != 0 {
			if u.version < m.versions[u.product] {
				m.stale++
				continue
			}
			m.versions[u.product] = u.version
		}
		q := &m.pending[u.product]
		for q.head < len(q.buf) && q.buf[q.head].tsNanos <= u.eventTime {
			m.hist.record(arrival - q.buf[q.head].sent)
			q.head++
			m.matched++
			m.outstanding--
			m.lastMatch = arrival
		}
	}
	m.closeIfDone()
}

// finishSending notes that no more events will be added.
func (m *matcher) finishSending() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.sendDone = true
	m.closeIfDone()
}

func (m *matcher) closeIfDone() {
	if m.sendDone && m.outstanding == 0 && !m.closed {
		m.closed = true
		close(m.done)
	}
}

// snapshot is the matcher's figures at one moment.
type snapshot struct {
	matched, outstanding, updates, stale int64
	p50, p90, p99, p999, max             time.Duration
	// priced is from the first event's send to the arrival of the last
	// update that matched an event; 0 while nothing is matched.
	priced time.Duration
}

func (m *matcher) snapshot() snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := snapshot{
		matched: m.matched, outstanding: m.outstanding, updates: m.updates, stale: m.stale,
		p50: m.hist.quantile(0.50), p90: m.hist.quantile(0.90), p99: m.hist.quantile(0.99),
		p999: m.hist.quantile(0.999), max: m.hist.max,
	}
	if m.matched > 0 {
		s.priced = m.lastMatch - m.firstSent
	}
	return s
}
