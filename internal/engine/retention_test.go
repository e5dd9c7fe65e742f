package engine_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/poll"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestWriterAppliesRetentionByItsClock: the writer rolls the price changes
// older than Config.Retention.Raw into hourly summaries as it prunes, by
// the engine's clock (not the wall clock), and counts them.
func TestWriterAppliesRetentionByItsClock(t *testing.T) {
	met := engine.NewMetrics(nil, "")
	h := start(t, filepath.Join(t.TempDir(), "db"), func(c *engine.Config) {
		c.PruneInterval, c.Metrics = 5*time.Millisecond, met
		c.Retention = engine.HistoryRetention{Raw: 30 * 24 * time.Hour, Hourly: 90 * 24 * time.Hour}
	})
	defer h.stop()
	ctx := context.Background()
	if err := h.eng.ImportCatalog(ctx, []pricing.Product{{ID: "PA", BasePrice: 100}}, ""); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := h.eng.Submit(ctx, []ingest.Event{ev(fmt.Sprint("v", i), "PA", pricing.Purchase)}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := h.store.HistoryPage(ctx, "PA", 100, -1)
	if err != nil || len(before.Changes) == 0 || len(before.Hourly) != 0 {
		t.Fatalf("history before = %+v, %v; want changes only", before, err)
	}
	// A day short of the window, nothing goes; past it, everything.
	h.clock.Advance(29 * 24 * time.Hour)
	if _, err := h.eng.Submit(ctx, []ingest.Event{ev("marker", "PA", pricing.View)}); err != nil {
		t.Fatal(err)
	}
	h.clock.Advance(2 * 24 * time.Hour)
	var page engine.HistoryPage
	poll.Until(t, 10*time.Second, "the changes of 31 days ago rolled up", func() error {
		var err error
		page, err = h.store.HistoryPage(ctx, "PA", 100, -1)
		if err != nil {
			t.Fatal(err)
		}
		// The counter moves once the run is over.
		rolled := testutil.ToFloat64(met.HistoryRolled)
		return poll.Check(len(page.Changes) == 1 && rolled > 0, "%d changes, %d summaries, %v counted", len(page.Changes), len(page.Hourly), rolled)
	})
	var summarised int64
	for _, s := range page.Hourly {
		summarised += s.Changes
	}
	if summarised != int64(len(before.Changes)) || len(page.Hourly) != 1 || page.Hourly[0].Close != before.Changes[0].Price {
		t.Errorf("summaries %+v, want one of the %d changes of 31 days ago closing at %v", page.Hourly, len(before.Changes), before.Changes[0].Price)
	}
	if got := testutil.ToFloat64(met.HistoryRolled); got != float64(len(before.Changes)) {
		t.Errorf("history_rolled_up_total = %v, want %d", got, len(before.Changes))
	}
}

func TestHistoryRetentionValidateAndCutoffs(t *testing.T) {
	day := 24 * time.Hour
	for _, c := range []struct {
		r  engine.HistoryRetention
		ok bool
	}{
		{engine.DefaultHistoryRetention(), true},
		{engine.HistoryRetention{}, true},                                // everything forever
		{engine.HistoryRetention{Raw: 30 * day}, true},                   // summaries forever
		{engine.HistoryRetention{Raw: 90 * day, Hourly: 90 * day}, true}, // no summaries
		{engine.HistoryRetention{Raw: 29 * day}, false},
		{engine.HistoryRetention{Hourly: 400 * day}, false},
		{engine.HistoryRetention{Raw: 60 * day, Hourly: 59 * day}, false},
		{engine.HistoryRetention{Raw: -day}, false},
	} {
		if err := c.r.Validate(); (err == nil) != c.ok {
			t.Errorf("%+v.Validate() = %v, want ok %v", c.r, err, c.ok)
		}
	}
	if s := (engine.HistoryRetention{Raw: 90 * day, Hourly: 90 * day}).Summaries(); s {
		t.Error("Hourly = Raw makes summaries")
	}
	now := time.Date(2026, 6, 1, 12, 34, 56, 7, time.UTC).UnixNano()
	raw, hourly := engine.DefaultHistoryRetention().Cutoffs(now)
	if want := time.Date(2026, 5, 2, 12, 0, 0, 0, time.UTC).UnixNano(); raw != want {
		t.Errorf("raw cut-off %v, want %v", time.Unix(0, raw).UTC(), time.Unix(0, want).UTC())
	}
	if want := time.Date(2025, 4, 27, 12, 0, 0, 0, time.UTC).UnixNano(); hourly != want {
		t.Errorf("hourly cut-off %v, want %v", time.Unix(0, hourly).UTC(), time.Unix(0, want).UTC())
	}
	if raw, hourly := (engine.HistoryRetention{}).Cutoffs(now); raw != 0 || hourly != 0 {
		t.Errorf("no retention: cut-offs %d, %d; want none", raw, hourly)
	}
	if h := engine.HourOf(-1); h != -engine.HourNS {
		t.Errorf("HourOf(-1) = %d, want the hour before the epoch", h)
	}
}

// TestSummarize: per product and hour, in the chain's order: the open is
// the first change, the close (and its time, version, source, demand) the
// last.
func TestSummarize(t *testing.T) {
	h := time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC).UnixNano()
	rows := []engine.HistoryRow{
		{ProductID: "b", Price: 5, At: h + 1, Version: 1},
		{ProductID: "a", Price: 10, At: h + 2, Version: 1, Source: pricing.SourceBase},
		{ProductID: "a", Price: 7, At: h + 3, Version: 2},
		{ProductID: "a", Price: 12, At: h + 3, Version: 3, Source: pricing.SourceOverride, Demand: 4},
		{ProductID: "a", Price: 11, At: h + engine.HourNS, Version: 4},
	}
	got := engine.Summarize(rows)
	want := []engine.HourlyRow{
		{ProductID: "a", Hour: h, Open: 10, High: 12, Low: 7, Close: 12, Changes: 3, CloseAt: h + 3, Version: 3, Source: pricing.SourceOverride, Demand: 4},
		{ProductID: "a", Hour: h + engine.HourNS, Open: 11, High: 11, Low: 11, Close: 11, Changes: 1, CloseAt: h + engine.HourNS, Version: 4},
		{ProductID: "b", Hour: h, Open: 5, High: 5, Low: 5, Close: 5, Changes: 1, CloseAt: h + 1, Version: 1},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("Summarize =\n %+v\nwant\n %+v", got, want)
	}
}
