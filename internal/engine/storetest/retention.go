package storetest

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// The history retention's contract (engine.Store.PruneHistory), with the
// clock given to PruneHistory rather than waited for. Changes are placed
// well clear of the raw cut-off: a store may keep a change up to a day
// past it (PostgreSQL drops whole days), never less.

const day = 24 * time.Hour

// policy is the retention the tests apply: every change for 30 days, hourly
// summaries to 90.
var policy = engine.HistoryRetention{Raw: 30 * day, Hourly: 90 * day}

// change is a history row of product id at t, version v, price p.
func change(id string, t int64, v uint64, p float64) engine.HistoryRow {
	src := pricing.SourceDynamic
	if v%3 == 0 {
		src = pricing.SourceOverride
	}
	return engine.HistoryRow{ProductID: id, Price: p, Demand: float64(v) / 4, Source: src, At: t, Version: v}
}

func pruneHistory(t *testing.T, st Store, now int64, r engine.HistoryRetention) engine.HistoryPruned {
	t.Helper()
	n, err := st.PruneHistory(ctxFor(t), now, r)
	if err != nil {
		t.Fatalf("PruneHistory(%v, %+v): %v", time.Unix(0, now).UTC(), r, err)
	}
	return n
}

func historyPage(t *testing.T, st Store, id string, limit, hourly int) engine.HistoryPage {
	t.Helper()
	p, err := st.HistoryPage(ctxFor(t), id, limit, hourly)
	if err != nil {
		t.Fatalf("HistoryPage(%q, %d, %d): %v", id, limit, hourly, err)
	}
	return p
}

// summary returns the hourly summary of rows, all of one product and hour,
// in chain order.
func summary(rows ...engine.HistoryRow) engine.HourlyRow {
	s := engine.Summarize(rows)
	if len(s) != 1 {
		panic(fmt.Sprintf("rows of %d hours", len(s)))
	}
	return s[0]
}

// newestFirst returns rows reversed (nil for none, as the stores return).
func newestFirst[T any](rows ...T) []T {
	if len(rows) == 0 {
		return nil
	}
	out := make([]T, len(rows))
	for i, r := range rows {
		out[len(rows)-1-i] = r
	}
	return out
}

// retention: changes older than Raw become hourly summaries (open, high,
// low, close, changes, the close's details) and leave the raw history;
// summaries older than Hourly go; the rest is untouched; reads page from
// the changes into the summaries; a reopen, new commits and another run
// change nothing of that.
func (s *suite) retention(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	now := base
	d := int64(day)
	// Partitions for the days 41 to 34 before now (PostgreSQL), so that
	// some old changes are in day partitions and others are not.
	pruneHistory(t, st, now-41*d, engine.HistoryRetention{})
	commit(t, st, &engine.Batch{Products: []pricing.Product{product("a"), product("b"), product("c")},
		States: []engine.ProductState{{ID: "a", State: state(1)}, {ID: "b", State: state(2)}, {ID: "c", State: state(3)}}})

	h1 := engine.HourOf(now - 40*d) // an hour of three changes, and the next of one
	a := []engine.HistoryRow{
		change("a", engine.HourOf(now-95*d)+60e9, 1, 10), // older than Hourly: gone altogether
		change("a", engine.HourOf(now-95*d)+120e9, 2, 11),
		change("a", h1+10*60e9, 3, 12.5),
		change("a", h1+20*60e9, 4, 9.25),
		change("a", h1+20*60e9, 5, 11.75), // same time, later version
		change("a", h1+70*60e9, 6, 13),
		change("a", engine.HourOf(now-33*d)+5*60e9, 7, 14),
		change("a", now-29*d, 8, 15), // kept
		change("a", now-3600e9, 9, 16),
	}
	b := []engine.HistoryRow{ // all rolled up
		change("b", engine.HourOf(now-35*d)+1e9, 1, 20),
		change("b", engine.HourOf(now-35*d)+2e9, 2, 19),
		change("b", engine.HourOf(now-35*d)+3e9, 3, 21),
	}
	c := []engine.HistoryRow{change("c", now-2*d, 1, 30)} // all kept
	// Three commits, in time order, each in the engine's key order.
	batch := func(rows ...engine.HistoryRow) *engine.Batch {
		b := &engine.Batch{History: append([]engine.HistoryRow(nil), rows...)}
		engine.SortHistory(b.History)
		return b
	}
	commit(t, st, batch(a[0], a[1]))
	commit(t, st, batch(a[2], a[3], a[4], a[5], b[0], b[1], b[2], a[6]))
	commit(t, st, batch(a[7], a[8], c[0]))

	wantA := engine.HistoryPage{Changes: newestFirst(a[7], a[8]),
		Hourly: []engine.HourlyRow{summary(a[6]), summary(a[5]), summary(a[2], a[3], a[4])}}
	wantB := engine.HistoryPage{Hourly: []engine.HourlyRow{summary(b...)}}
	check := func(when string, extraA, extraB []engine.HistoryRow) {
		t.Helper()
		wa := engine.HistoryPage{Changes: append(newestFirst(extraA...), wantA.Changes...), Hourly: wantA.Hourly}
		wb := engine.HistoryPage{Changes: newestFirst(extraB...), Hourly: wantB.Hourly}
		equal(t, when+": HistoryPage(a, 100, -1)", historyPage(t, st, "a", 100, -1), wa)
		equal(t, when+": History(a, 100)", history(t, st, "a", 100), wa.Changes)
		equal(t, when+": HistoryPage(b, 100, -1)", historyPage(t, st, "b", 100, -1), wb)
		equal(t, when+": HistoryPage(c, 100, -1)", historyPage(t, st, "c", 100, -1), engine.HistoryPage{Changes: c})
		equal(t, when+": HistoryPage(nope, 100, -1)", historyPage(t, st, "nope", 100, -1), engine.HistoryPage{})
		// Limits: the summaries fill what the changes leave, unless told.
		n := len(wa.Changes)
		equal(t, when+": HistoryPage(a, n, -1)", historyPage(t, st, "a", n, -1), engine.HistoryPage{Changes: wa.Changes})
		equal(t, when+": HistoryPage(a, n+2, -1)", historyPage(t, st, "a", n+2, -1),
			engine.HistoryPage{Changes: wa.Changes, Hourly: wa.Hourly[:2]})
		equal(t, when+": HistoryPage(a, 1, 2)", historyPage(t, st, "a", 1, 2),
			engine.HistoryPage{Changes: wa.Changes[:1], Hourly: wa.Hourly[:2]})
		equal(t, when+": HistoryPage(a, 100, 0)", historyPage(t, st, "a", 100, 0), engine.HistoryPage{Changes: wa.Changes})
		equal(t, when+": HistoryPage(b, 0, 1)", historyPage(t, st, "b", 0, 1), engine.HistoryPage{Hourly: wb.Hourly})
	}

	// Without a policy nothing goes.
	if n := pruneHistory(t, st, now, engine.HistoryRetention{}); n.Rolled != 0 || n.Summaries != 0 || n.Expired != 0 {
		t.Errorf("PruneHistory without a policy = %+v, want nothing done", n)
	}
	equal(t, "without a policy: History(a, 100)", history(t, st, "a", 100), newestFirst(a...))

	got := pruneHistory(t, st, now, policy)
	if got.Rolled != 10 || got.Summaries != 5 || got.Expired != 1 {
		t.Errorf("PruneHistory = %+v, want 10 changes rolled into 5 summaries, 1 of them expired", got)
	}
	check("after the retention", nil, nil)
	if n := pruneHistory(t, st, now, policy); n.Rolled != 0 || n.Summaries != 0 || n.Expired != 0 {
		t.Errorf("PruneHistory again = %+v, want nothing left to do", n)
	}
	check("after the retention again", nil, nil)

	closeStore()
	st, closeStore = s.openStore(t, name)
	snap := load(t, st)
	equal(t, "states after the retention and a reopen", snap.StateMap(), map[string]pricing.State{"a": state(1), "b": state(2), "c": state(3)})
	check("after a reopen", nil, nil)

	// New changes continue the chains: b's starts again beside its
	// summary.
	na, nb := change("a", now+60e9, 10, 17), change("b", now+60e9, 4, 22)
	commit(t, st, batch(na, nb))
	check("after new commits", []engine.HistoryRow{na}, []engine.HistoryRow{nb})
	closeStore()
	st, _ = s.openStore(t, name)
	load(t, st)
	check("after new commits and a reopen", []engine.HistoryRow{na}, []engine.HistoryRow{nb})

	// 60 days on, every change of a is summarised, and the summaries of
	// 33 days ago and before are older than Hourly.
	later := now + 60*d
	pruneHistory(t, st, later, policy)
	page := historyPage(t, st, "a", 100, -1)
	if len(page.Changes) != 0 {
		t.Errorf("60 days later: a's changes = %+v, want none", page.Changes)
	}
	for _, h := range page.Hourly {
		if h.Hour < engine.HourOf(later-90*d) {
			t.Errorf("60 days later: a summary of %v, older than 90 days", time.Unix(0, h.Hour).UTC())
		}
	}
	var changes int64
	for _, h := range page.Hourly {
		changes += h.Changes
	}
	if len(page.Hourly) != 3 || changes != 3 || page.Hourly[0] != summary(na) || page.Hourly[2] != summary(a[7]) {
		t.Errorf("60 days later: a's summaries = %+v, want those of its 3 changes of the last 29 days", page.Hourly)
	}
}

// retentionWithoutSummaries: Hourly equal to Raw keeps no summaries, and
// only deletes.
func (s *suite) retentionWithoutSummaries(t *testing.T) {
	st, _ := s.openStore(t, storeName(t, ""))
	now, d := base, int64(day)
	commit(t, st, &engine.Batch{Products: []pricing.Product{product("a")}})
	old, kept := change("a", now-40*d, 1, 10), change("a", now-2*d, 2, 11)
	commit(t, st, &engine.Batch{History: []engine.HistoryRow{old, kept}})
	n := pruneHistory(t, st, now, engine.HistoryRetention{Raw: 30 * day, Hourly: 30 * day})
	if n.Summaries != 0 {
		t.Errorf("PruneHistory with Hourly = Raw: %+v, want no summaries", n)
	}
	equal(t, "HistoryPage(a, 10, 5)", historyPage(t, st, "a", 10, 5), engine.HistoryPage{Changes: []engine.HistoryRow{kept}})
}

// retentionOfEveryRow: when every change in the store is rolled up, a
// reopen must not give a new change the number of a deleted one (whose
// product's chain would then take the new change for its own).
func (s *suite) retentionOfEveryRow(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	now, d := base, int64(day)
	commit(t, st, &engine.Batch{Products: []pricing.Product{product("p"), product("q")}})
	p, q := change("p", now-50*d, 1, 10), change("q", now-45*d, 1, 20)
	commit(t, st, &engine.Batch{History: []engine.HistoryRow{p}})
	commit(t, st, &engine.Batch{History: []engine.HistoryRow{q}})
	pruneHistory(t, st, now, policy)
	closeStore()
	st, _ = s.openStore(t, name)
	load(t, st)
	nq := change("q", now, 2, 21)
	commit(t, st, &engine.Batch{History: []engine.HistoryRow{nq}})
	equal(t, "HistoryPage(p, 10, -1)", historyPage(t, st, "p", 10, -1), engine.HistoryPage{Hourly: []engine.HourlyRow{summary(p)}})
	equal(t, "HistoryPage(q, 10, -1)", historyPage(t, st, "q", 10, -1),
		engine.HistoryPage{Changes: []engine.HistoryRow{nq}, Hourly: []engine.HourlyRow{summary(q)}})
}

// retentionDuringReads: while the retention rolls up thousands of a
// product's changes, and commits go on, every read sees each change once,
// as a change or in a summary, never both and never neither.
func (s *suite) retentionDuringReads(t *testing.T) {
	st, _ := s.openStore(t, storeName(t, ""))
	now, d := base, int64(day)
	commit(t, st, &engine.Batch{Products: []pricing.Product{product("a"), product("b")}})
	const old = 12_000
	// Old changes of a and b interleaved, a minute apart over 200 hours.
	var v uint64
	start := engine.HourOf(now - 45*d)
	for lo := 0; lo < old; lo += 1000 {
		b := &engine.Batch{}
		for i := lo; i < lo+1000; i++ {
			v++
			b.History = append(b.History, change("a", start+int64(i)*60e9, v, float64(i%97)+1),
				change("b", start+int64(i)*60e9+1, v, 1))
		}
		engine.SortHistory(b.History)
		commit(t, st, b)
	}
	ctx, cancel := context.WithCancel(ctxFor(t))
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	var added atomic.Int64 // new changes committed
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				lo := old + added.Load()
				p, err := st.HistoryPage(ctx, "a", 1_000_000, 1_000_000)
				if err != nil {
					if ctx.Err() == nil {
						errs <- err
					}
					return
				}
				n := int64(len(p.Changes))
				for _, h := range p.Hourly {
					n += h.Changes
				}
				// Commits go on meanwhile, one at a time: the last one
				// may be visible before it is counted.
				if hi := old + added.Load() + 1; n < lo || n > hi {
					errs <- fmt.Errorf("a read saw %d changes (%d one by one, %d summaries), want %d to %d",
						n, len(p.Changes), len(p.Hourly), lo, hi)
					return
				}
			}
		})
	}
	done := make(chan error, 1)
	go func() {
		_, err := st.PruneHistory(ctx, now, policy)
		done <- err
	}()
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("PruneHistory: %v", err)
			}
			running = false
		default:
		}
		v++
		commit(t, st, &engine.Batch{History: []engine.HistoryRow{change("a", now+int64(v), v, 5)}})
		added.Add(1)
	}
	cancel()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	p := historyPage(t, st, "a", 1_000_000, 1_000_000)
	if int64(len(p.Changes)) != added.Load() || len(p.Hourly) != old/60 {
		t.Errorf("after the retention: %d changes and %d summaries, want the %d new ones and %d hours", len(p.Changes), len(p.Hourly), added.Load(), old/60)
	}
}
