package loadgen

import (
	"testing"
	"time"
)

const ms = int64(time.Millisecond)

func TestMatcherCoalescedAndStaleUpdates(t *testing.T) {
	m := newMatcher(2)
	// Product 0: events stamped 1, 2, 3, 3 ms, sent at 10, 20, 30, 31 ms.
	m.add([]int{0, 0, 0, 0, 1}, []pending{
		{1 * ms, 10 * time.Millisecond}, {2 * ms, 20 * time.Millisecond},
		{3 * ms, 30 * time.Millisecond}, {3 * ms, 31 * time.Millisecond},
		{1 * ms, 10 * time.Millisecond},
	})
	// One update reflecting the first two events of product 0.
	m.apply([]update{{product: 0, version: 5, eventTime: 2 * ms}}, 50*time.Millisecond)
	if s := m.snapshot(); s.matched != 2 || s.outstanding != 3 || s.max != 40*time.Millisecond || s.priced != 40*time.Millisecond {
		t.Fatalf("after a coalesced update: %+v, want 2 matched, 3 outstanding, max 40ms, priced over 40ms (10 to 50)", s)
	}
	// A stale re-send claiming everything: ignored. An update without
	// the header matches nothing.
	m.apply([]update{
		{product: 0, version: 4, eventTime: 1 << 62},
		{product: 1, version: 1, eventTime: -1},
	}, 60*time.Millisecond)
	if s := m.snapshot(); s.matched != 2 || s.stale != 1 || s.updates != 3 || s.priced != 40*time.Millisecond {
		t.Fatalf("after a stale update: %+v, want 2 matched, 1 stale, 3 updates, and updates that matched nothing not extending the priced span", s)
	}
	// An update at 3 ms takes both events of that millisecond; the equal
	// version is a re-send of the newest state, not stale. Unversioned
	// updates (0) are never stale.
	m.apply([]update{{product: 0, version: 5, eventTime: 3 * ms}, {product: 1, version: 0, eventTime: 1 * ms}}, 70*time.Millisecond)
	s := m.snapshot()
	if s.matched != 5 || s.outstanding != 0 || s.stale != 1 || s.priced != 60*time.Millisecond {
		t.Fatalf("at the end: %+v, want all 5 matched, 1 stale, priced from 10 to 70 ms", s)
	}
	// Latencies 40, 30, 40, 39 and 60 ms; the median is 40 ms to within
	// its histogram bucket.
	if s.max != 60*time.Millisecond || s.p50 < 40*time.Millisecond || s.p50 > 40*time.Millisecond+40*time.Millisecond/subCount {
		t.Fatalf("latencies max %v p50 %v, want 60ms and 40ms", s.max, s.p50)
	}
	select {
	case <-m.done:
		t.Fatal("done before sending finished")
	default:
	}
	m.finishSending()
	select {
	case <-m.done:
	default:
		t.Fatal("not done with sending finished and nothing outstanding")
	}
	m.finishSending() // closes once
}

func TestMatcherPricedSpanStartsAtTheFirstSend(t *testing.T) {
	m := newMatcher(1)
	if s := m.snapshot(); s.priced != 0 {
		t.Fatalf("priced %v before any event", s.priced)
	}
	m.add([]int{0}, []pending{{1 * ms, 100 * time.Millisecond}})
	m.add([]int{0}, []pending{{2 * ms, 200 * time.Millisecond}})
	if s := m.snapshot(); s.priced != 0 {
		t.Fatalf("priced %v with nothing matched", s.priced)
	}
	// Only the second event's update arrives: the span still starts at the
	// first send, the run's start, not at the send of an event matched.
	m.apply([]update{{eventTime: 2 * ms}}, 250*time.Millisecond)
	if s := m.snapshot(); s.priced != 150*time.Millisecond {
		t.Fatalf("priced %v, want 150ms (100 to 250)", s.priced)
	}
}

func TestReportRates(t *testing.T) {
	r := newReport(snapshot{matched: 900, outstanding: 100, priced: 3 * time.Second}, 1000, 1000, 2*time.Second)
	if r.SendRate != 500 || r.PricedRate != 300 || r.PricedElapsed != 3*time.Second {
		t.Fatalf("send rate %v, priced rate %v over %v; want 500/s (1000 acked in 2 s), 300/s (900 matched in 3 s)",
			r.SendRate, r.PricedRate, r.PricedElapsed)
	}
	if r.Matched != 900 || r.Unmatched != 100 || r.Sent != 1000 || r.Acked != 1000 {
		t.Fatalf("counts %+v", r)
	}
	// Nothing matched (no engine running): no priced rate, not a division
	// by zero.
	r = newReport(snapshot{outstanding: 1000}, 1000, 1000, 2*time.Second)
	if r.PricedRate != 0 || r.PricedElapsed != 0 {
		t.Fatalf("priced rate %v over %v with nothing matched", r.PricedRate, r.PricedElapsed)
	}
}

func TestFifoReclaimsPoppedEvents(t *testing.T) {
	m := newMatcher(1)
	var sent int64
	for round := 0; round < 50; round++ {
		evs := make([]pending, 500)
		ps := make([]int, 500)
		for i := range evs {
			sent++
			evs[i] = pending{tsNanos: sent, sent: time.Duration(sent)}
		}
		m.add(ps, evs)
		// Match all but the newest 100, so the queue is never empty.
		m.apply([]update{{eventTime: sent - 100}}, time.Duration(sent))
	}
	q := &m.pending[0]
	if n := len(q.buf) - q.head; n != 100 {
		t.Fatalf("%d pending, want 100", n)
	}
	if cap(q.buf) > 4096 {
		t.Fatalf("queue capacity %d after 25000 events with at most 600 pending: popped events not reclaimed", cap(q.buf))
	}
	for i := q.head; i < len(q.buf); i++ {
		if want := sent - 99 + int64(i-q.head); q.buf[i].tsNanos != want {
			t.Fatalf("pending[%d] = %d, want %d: order lost in compaction", i-q.head, q.buf[i].tsNanos, want)
		}
	}
}
