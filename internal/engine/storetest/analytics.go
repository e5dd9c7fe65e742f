package storetest

import (
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// hour0 is the start of the hour holding base.
var hour0 = pricing.HourOf(base)

func arow(id, strategy, arm string, h int, views, purchases, units int64, revenue float64) engine.AnalyticsRow {
	return engine.AnalyticsRow{ProductID: id, Strategy: strategy, Arm: arm, Tally: pricing.Tally{
		Hour: hour0 + int64(h)*pricing.HourNS, Views: views, Carts: views / 2, Purchases: purchases, Units: units,
		Revenue: revenue, Cost: float64(units) * 0.25, List: float64(units) * 1.5}}
}

func analytics(t *testing.T, st Store, q engine.AnalyticsQuery) ([]engine.AnalyticsTotal, bool) {
	t.Helper()
	got, more, err := st.AnalyticsTotals(ctxFor(t), q)
	if err != nil {
		t.Fatalf("AnalyticsTotals(%+v): %v", q, err)
	}
	return got, more
}

func total(key string, start int64, views, purchases, units int64, revenue float64) engine.AnalyticsTotal {
	return engine.AnalyticsTotal{Key: key, Start: start, Tally: pricing.Tally{Views: views, Carts: views / 2,
		Purchases: purchases, Units: units, Revenue: revenue, Cost: float64(units) * 0.25, List: float64(units) * 1.5}}
}

// analyticsRows checks that analytics rows are committed with their batch
// and summed by every grouping over exactly the hours asked for, across a
// reopen, with the filters and the limit on groups.
func (s *suite) analyticsRows(t *testing.T) {
	name := storeName(t, "")
	st, closeStore := s.openStore(t, name)
	// Cart counts are views/2 in every row, so totals are checked by
	// views alone where carts would only repeat them.
	commit(t, st, &engine.Batch{Products: []pricing.Product{product("a"), product("b")},
		States: []engine.ProductState{{ID: "a", State: state(1)}},
		Analytics: []engine.AnalyticsRow{
			arow("a", "seed", "", 0, 10, 2, 3, 30.5),
			arow("b", "decay", "x", 0, 4, 1, 1, 9.25),
			arow("a", "seed", "", 1, 6, 0, 0, 0),
			arow("b", "thompson", "x", 25, 8, 4, 4, 100),
		}})
	// A batch of rows alone is a commit like any other.
	commit(t, st, &engine.Batch{Analytics: []engine.AnalyticsRow{arow("a", "seed", "", 26, 2, 1, 5, 12)}})
	day0 := hour0 - hour0%engine.DayNS
	all := engine.AnalyticsQuery{From: hour0, To: hour0 + 27*pricing.HourNS}
	check := func(when string) {
		t.Helper()
		q := all
		q.By = engine.ByProduct
		got, more := analytics(t, st, q)
		equal(t, when+": by product", got, []engine.AnalyticsTotal{
			total("b", 0, 12, 5, 5, 109.25), total("a", 0, 18, 3, 8, 42.5)})
		if more {
			t.Errorf("%s: more groups reported without a limit", when)
		}
		q.By = engine.ByStrategy
		got, _ = analytics(t, st, q)
		equal(t, when+": by strategy", got, []engine.AnalyticsTotal{
			total("thompson", 0, 8, 4, 4, 100), total("seed", 0, 18, 3, 8, 42.5), total("decay", 0, 4, 1, 1, 9.25)})
		q.By = engine.ByArm
		got, _ = analytics(t, st, q)
		equal(t, when+": by arm", got, []engine.AnalyticsTotal{
			total("x", 0, 12, 5, 5, 109.25), total("", 0, 18, 3, 8, 42.5)})
		q.By = engine.ByHour
		got, _ = analytics(t, st, q)
		at := func(h int) int64 { return hour0 + int64(h)*pricing.HourNS }
		key := func(ns int64) string { k, _ := engine.GroupKey(engine.ByHour, "", "", "", ns); return k }
		equal(t, when+": by hour", got, []engine.AnalyticsTotal{
			total(key(at(0)), at(0), 14, 3, 4, 39.75), total(key(at(1)), at(1), 6, 0, 0, 0),
			total(key(at(25)), at(25), 8, 4, 4, 100), total(key(at(26)), at(26), 2, 1, 5, 12)})
		q.By = engine.ByDay
		got, _ = analytics(t, st, q)
		// hour0 may be late in its day: the rows fall in one, two or three days.
		var sum pricing.Tally
		for _, g := range got {
			if g.Start%engine.DayNS != 0 || g.Start < day0 || g.Start > day0+2*engine.DayNS {
				t.Errorf("%s: by day: group %+v does not start a UTC day from %d", when, g, day0)
			}
			sum.Add(&g.Tally)
		}
		if sum.Views != 30 || sum.Revenue != 151.75 || sum.Units != 13 {
			t.Errorf("%s: by day sums to %+v, want every row", when, sum)
		}
		// Bounds: from inclusive, to exclusive, whole hours.
		got, _ = analytics(t, st, engine.AnalyticsQuery{From: at(1), To: at(26), By: engine.ByProduct})
		equal(t, when+": hours 1 to 25", got, []engine.AnalyticsTotal{total("b", 0, 8, 4, 4, 100), total("a", 0, 6, 0, 0, 0)})
		// Filters.
		got, _ = analytics(t, st, engine.AnalyticsQuery{From: all.From, To: all.To, By: engine.ByHour, ProductID: "b"})
		equal(t, when+": product b by hour", got, []engine.AnalyticsTotal{
			total(key(at(0)), at(0), 4, 1, 1, 9.25), total(key(at(25)), at(25), 8, 4, 4, 100)})
		got, _ = analytics(t, st, engine.AnalyticsQuery{From: all.From, To: all.To, By: engine.ByProduct, Strategy: "seed"})
		equal(t, when+": strategy seed by product", got, []engine.AnalyticsTotal{total("a", 0, 18, 3, 8, 42.5)})
		// At most Max groups, the most revenue first, and says so.
		got, more = analytics(t, st, engine.AnalyticsQuery{From: all.From, To: all.To, By: engine.ByStrategy, Max: 2})
		equal(t, when+": top 2 strategies", got, []engine.AnalyticsTotal{
			total("thompson", 0, 8, 4, 4, 100), total("seed", 0, 18, 3, 8, 42.5)})
		if !more {
			t.Errorf("%s: 3 strategies with Max 2: more = false", when)
		}
		if _, more = analytics(t, st, engine.AnalyticsQuery{From: all.From, To: all.To, By: engine.ByStrategy, Max: 3}); more {
			t.Errorf("%s: 3 strategies with Max 3: more = true", when)
		}
		if got, _ := analytics(t, st, engine.AnalyticsQuery{From: at(30), To: at(40), By: engine.ByProduct}); len(got) != 0 {
			t.Errorf("%s: hours without rows: %+v", when, got)
		}
	}
	check("before reopen")
	closeStore()
	st, _ = s.openStore(t, name)
	check("after reopen")
	if _, _, err := st.AnalyticsTotals(ctxFor(t), engine.AnalyticsQuery{From: hour0 + 1, To: hour0 + pricing.HourNS, By: engine.ByHour}); err == nil {
		t.Error("a query from the middle of an hour was accepted")
	}
}

// analyticsRetention checks that analytics rows are kept as long as the
// hourly summaries, and only that long.
func (s *suite) analyticsRetention(t *testing.T) {
	st, _ := s.openStore(t, storeName(t, ""))
	r := engine.HistoryRetention{Raw: engine.MinHistoryRaw, Hourly: 40 * 24 * time.Hour}
	now := hour0 + 45*engine.DayNS
	_, cut := r.Cutoffs(now)
	var rows []engine.AnalyticsRow
	for h := -3; h < 3; h++ {
		rows = append(rows, engine.AnalyticsRow{ProductID: "a", Strategy: "seed", Tally: pricing.Tally{Hour: cut + int64(h)*pricing.HourNS, Views: 1}})
	}
	commit(t, st, &engine.Batch{Analytics: rows})
	n := pruneHistory(t, st, now, r)
	if n.Analytics != 3 {
		t.Errorf("PruneHistory deleted %d analytics rows, want the 3 before %d", n.Analytics, cut)
	}
	got, _ := analytics(t, st, engine.AnalyticsQuery{From: cut - 10*pricing.HourNS, To: cut + 10*pricing.HourNS, By: engine.ByHour})
	if len(got) != 3 || got[0].Start != cut {
		t.Errorf("after the retention: %+v, want the hours from %d on", got, cut)
	}
	// Retention off (hourly 0: for ever) deletes none.
	if n := pruneHistory(t, st, now+100*engine.DayNS, engine.HistoryRetention{Raw: engine.MinHistoryRaw}); n.Analytics != 0 {
		t.Errorf("retention without an hourly limit deleted %d analytics rows", n.Analytics)
	}
}
