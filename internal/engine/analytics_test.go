package engine_test

import (
	"context"
	"testing"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// TestTallyRollsIntoOneRow: a product's hour of shoppers and sales is
// kept in its state while the hour runs, and becomes one analytics row,
// in the batch that commits the state without it, at its next event or at
// the tick after the hour, whichever comes first; a failed round puts it
// back.
func TestTallyRollsIntoOneRow(t *testing.T) {
	h0 := int64(1_800_000_000e9) - int64(1_800_000_000e9)%pricing.HourNS
	m := engine.NewMachine(engine.DefaultConfig())
	snap := engine.Snapshot{Products: []pricing.Product{
		{ID: "A", BasePrice: 10, UnitCost: 4, Strategy: "decay"},
		{ID: "B", BasePrice: 20},
	}}
	if _, err := m.Load(snap, h0); err != nil {
		t.Fatal(err)
	}
	apply := func(now int64, evs ...ingest.Event) *engine.Batch {
		t.Helper()
		m.Begin()
		var res engine.SubmitResult
		m.ApplyEvents(evs, now, &res)
		if res.Accepted != len(evs) {
			t.Fatalf("accepted %d of %d: %+v", res.Accepted, len(evs), res.Rejects)
		}
		b, _ := m.Seal()
		return b
	}
	b := apply(h0+10,
		ingest.Event{Type: pricing.View, ProductID: "A", Quantity: 1},
		ingest.Event{Type: pricing.Purchase, ProductID: "A", Quantity: 3, Price: 12},
		ingest.Event{Type: pricing.Purchase, ProductID: "B", Quantity: 1, Price: 25})
	if len(b.Analytics) != 0 {
		t.Fatalf("rows within the hour: %+v", b.Analytics)
	}
	for _, s := range b.States {
		if s.State.Tally.Hour != h0 {
			t.Errorf("state of %s committed with tally %+v, want the hour counted in it", s.ID, s.State.Tally)
		}
	}
	// B's next event, in the next hour, rolls B's hour; A has none.
	b = apply(h0+pricing.HourNS+5, ingest.Event{Type: pricing.View, ProductID: "B", Quantity: 1})
	want := engine.AnalyticsRow{ProductID: "B", Hint: 1, Strategy: "seed",
		Tally: pricing.Tally{Hour: h0, Purchases: 1, Units: 1, Revenue: 25, List: 20}}
	if len(b.Analytics) != 1 || b.Analytics[0] != want {
		t.Fatalf("rows = %+v, want %+v", b.Analytics, want)
	}
	if st := b.States[0].State.Tally; b.States[0].ID != "B" || st.Hour != h0+pricing.HourNS || st.Views != 1 || st.Purchases != 0 {
		t.Errorf("B's state after the roll: %s %+v", b.States[0].ID, st)
	}
	// A's timer rolls it at the tick after the hour, even with no event;
	// a failed round (Undo) puts the tally back, and the next one rolls
	// it again, once.
	for attempt := range 2 {
		m.Begin()
		m.Tick(h0 + pricing.HourNS + 6)
		b, _ = m.Seal()
		wantA := engine.AnalyticsRow{ProductID: "A", Hint: 0, Strategy: "decay",
			Tally: pricing.Tally{Hour: h0, Views: 1, Purchases: 1, Units: 3, Revenue: 36, Cost: 12, List: 30}}
		if len(b.Analytics) != 1 || b.Analytics[0] != wantA {
			t.Fatalf("attempt %d: rows after the tick = %+v, want %+v", attempt, b.Analytics, wantA)
		}
		if attempt == 0 && !m.Undo() {
			t.Fatal("Undo failed")
		}
	}
	m.Begin()
	m.Tick(h0 + 2*pricing.HourNS - 1)
	if b, _ = m.Seal(); len(b.Analytics) != 0 {
		t.Errorf("rows rolled twice: %+v", b.Analytics)
	}
}

// TestAnalystCountsEachHourOnce: the report adds the open hour from
// memory to the stored rows, and asks the store only for the hours
// before it, so an hour is never counted twice.
func TestAnalystCountsEachHourOnce(t *testing.T) {
	h := int64(1_800_000_000e9) - int64(1_800_000_000e9)%pricing.HourNS
	store := fakeAnalytics{rows: []engine.AnalyticsRow{
		{ProductID: "A", Strategy: "seed", Tally: pricing.Tally{Hour: h - 2*pricing.HourNS, Purchases: 1, Revenue: 10}},
		{ProductID: "B", Strategy: "decay", Tally: pricing.Tally{Hour: h - pricing.HourNS, Purchases: 2, Revenue: 30}},
		// Written between the two reads for an hour the memory still
		// counted: must not be counted.
		{ProductID: "A", Strategy: "seed", Tally: pricing.Tally{Hour: h, Purchases: 5, Revenue: 500}},
	}}
	a := engine.Analyst{Store: &store, Open: func(context.Context, string) ([]engine.OpenTally, int64, error) {
		return []engine.OpenTally{{ProductID: "A", Strategy: "seed", Tally: pricing.Tally{Hour: h, Purchases: 1, Revenue: 7}}}, h + 10, nil
	}}
	got, more, err := a.Analytics(context.Background(), engine.AnalyticsQuery{From: h - 3*pricing.HourNS, To: h + pricing.HourNS, By: engine.ByProduct}, 0)
	if err != nil || more {
		t.Fatal(err, more)
	}
	want := []engine.AnalyticsTotal{
		{Key: "B", Tally: pricing.Tally{Purchases: 2, Revenue: 30}},
		{Key: "A", Tally: pricing.Tally{Purchases: 2, Revenue: 17}},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("totals = %+v, want %+v", got, want)
	}
	if store.asked.To != h {
		t.Errorf("the store was asked for hours up to %d, want up to the open hour %d", store.asked.To, h)
	}
	got, more, err = a.Analytics(context.Background(), engine.AnalyticsQuery{From: h - 3*pricing.HourNS, To: h + pricing.HourNS, By: engine.ByHour}, 2)
	if err != nil || !more || len(got) != 2 || got[0].Start != h-2*pricing.HourNS || got[1].Start != h-pricing.HourNS {
		t.Errorf("by hour, at most 2: %+v more=%v err=%v", got, more, err)
	}
	if _, _, err := a.Analytics(context.Background(), engine.AnalyticsQuery{From: h + 1, To: h + pricing.HourNS, By: engine.ByHour}, 0); err == nil {
		t.Error("a query from the middle of an hour was accepted")
	}
}

// fakeAnalytics sums rows as a store would.
type fakeAnalytics struct {
	rows  []engine.AnalyticsRow
	asked engine.AnalyticsQuery
}

func (f *fakeAnalytics) AnalyticsTotals(_ context.Context, q engine.AnalyticsQuery) ([]engine.AnalyticsTotal, bool, error) {
	f.asked = q
	var out []engine.AnalyticsTotal
	at := map[string]int{}
	for _, r := range f.rows {
		if r.Hour < q.From || r.Hour >= q.To {
			continue
		}
		k, start := engine.GroupKey(q.By, r.ProductID, r.Strategy, r.Arm, r.Hour)
		i, ok := at[k]
		if !ok {
			i = len(out)
			at[k] = i
			out = append(out, engine.AnalyticsTotal{Key: k, Start: start})
		}
		out[i].Add(&r.Tally)
	}
	engine.SortTotals(q.By, out)
	return out, false, nil
}
