package storetest

import (
	"context"
	"testing"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/experiment"
)

func expRecord(id string, products ...string) engine.ExperimentRecord {
	d := experiment.Definition{ID: id, Name: "spring – ✓", Products: products, Split: experiment.ByShopper, Start: base,
		Arms: []experiment.Arm{{Name: "list", Kind: experiment.Control}, {Name: "lower", Kind: experiment.Fixed, Price: 9.99, Weight: 2}}}
	d.Normalize()
	return engine.ExperimentRecord{Definition: d, CreatedAt: base, CreatedBy: "admin"}
}

func acc(views, purchases int64, price float64) experiment.Accumulator {
	var a experiment.Accumulator
	a.Views = views
	for range purchases {
		a.Purchase(price, 1, 4)
	}
	return a
}

// experiments checks that experiment records upsert by id, that arm deltas
// add up to totals with the smallest p-value kept, across a reopen, and
// that a failed commit adds nothing (the counts are exactly once with
// the events that fed them).
func (s *suite) experiments(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	e1, e2 := expRecord("e1", "a", "b"), expRecord("e2", "c")
	commit(t, st, &engine.Batch{Experiments: []engine.ExperimentRecord{e1, e2}})
	commit(t, st, &engine.Batch{ArmDeltas: []engine.ArmDelta{
		{ExperimentID: "e1", Arm: 0, Delta: acc(100, 30, 10), PValue: 1},
		{ExperimentID: "e1", Arm: 1, Delta: acc(200, 70, 9.99), PValue: 0.2},
	}})
	commit(t, st, &engine.Batch{ArmDeltas: []engine.ArmDelta{
		{ExperimentID: "e1", Arm: 1, Delta: acc(50, 10, 9.99), PValue: 0.5}, // a larger p-value is not kept
		{ExperimentID: "e2", Arm: 1, Delta: acc(1, 1, 3), PValue: 0.9},
	}})
	stopped := e1
	stopped.StoppedAt, stopped.StoppedBy, stopped.End, stopped.Promoted = base+10, "ops", base+10, "lower"
	commit(t, st, &engine.Batch{Experiments: []engine.ExperimentRecord{stopped}})
	want := []engine.ExperimentState{
		{Record: stopped, Arms: []engine.ArmTotal{{Accumulator: acc(100, 30, 10), PValue: 1}, {Accumulator: sum(acc(200, 70, 9.99), acc(50, 10, 9.99)), PValue: 0.2}}},
		{Record: e2, Arms: []engine.ArmTotal{{PValue: 1}, {Accumulator: acc(1, 1, 3), PValue: 0.9}}},
	}
	check := func(when string) {
		t.Helper()
		got := load(t, st).Experiments
		if len(got) != len(want) {
			t.Fatalf("%s: %d experiments, want %d: %+v", when, len(got), len(want), got)
		}
		for k := range want {
			equal(t, when+": experiment "+want[k].Record.ID, got[k].Record, want[k].Record)
			if len(got[k].Arms) != len(want[k].Arms) {
				t.Fatalf("%s: %s has %d arms, want %d", when, want[k].Record.ID, len(got[k].Arms), len(want[k].Arms))
			}
			for a := range want[k].Arms {
				g, w := got[k].Arms[a], want[k].Arms[a]
				if g.Views != w.Views || g.Purchases != w.Purchases || g.Units != w.Units || g.PValue != w.PValue ||
					!near(g.Revenue, w.Revenue) || !near(g.RevenueSq, w.RevenueSq) || !near(g.Profit, w.Profit) || !near(g.ProfitSq, w.ProfitSq) {
					t.Errorf("%s: %s arm %d = %+v, want %+v", when, want[k].Record.ID, a, g, w)
				}
			}
		}
	}
	check("before reopen")
	// A commit that fails leaves the totals as they were.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := st.Commit(ctx, &engine.Batch{ArmDeltas: []engine.ArmDelta{{ExperimentID: "e2", Arm: 0, Delta: acc(5, 5, 5), PValue: 0.01}}}); err == nil {
		t.Fatal("Commit with a cancelled context succeeded")
	}
	check("after a failed commit")
	closeStore()
	st, _ = s.openStore(t, name)
	check("after reopen")
}

func sum(a, b experiment.Accumulator) experiment.Accumulator {
	a.Add(b)
	return a
}

// near compares sums that a store may add in another order.
func near(a, b float64) bool {
	d := a - b
	return d < 1e-9*(1+abs(a)) && -d < 1e-9*(1+abs(a))
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
