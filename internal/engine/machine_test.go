package engine_test

import (
	"testing"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// TestAutoCreate: with AutoCreate an event for an unknown product creates
// it from the price the shopper saw; without a price, or from a market
// signal (a competitor's price is not a list price), it does not; without
// AutoCreate nothing is created.
func TestAutoCreate(t *testing.T) {
	now := int64(1_800_000_000e9)
	for _, auto := range []bool{false, true} {
		cfg := engine.DefaultConfig()
		cfg.AutoCreate = auto
		m := engine.NewMachine(cfg)
		if _, err := m.Load(engine.Snapshot{}, now); err != nil {
			t.Fatal(err)
		}
		var res engine.SubmitResult
		m.ApplyEvents([]ingest.Event{
			{Type: pricing.CompetitorPrice, ProductID: "NEW", Price: 50, Competitor: "B", Quantity: 1},
			{Type: pricing.Stock, ProductID: "NEW", Quantity: 5},
			{Type: pricing.View, ProductID: "NOPRICE", Quantity: 1},
			{Type: pricing.View, ProductID: "NEW", Price: 19.999, Quantity: 1},
		}, now, &res)
		wantAccepted := 0
		if auto {
			wantAccepted = 1
		}
		if res.Accepted != wantAccepted || len(res.Rejects) != 4-wantAccepted {
			t.Fatalf("auto=%v: accepted %d, rejects %+v", auto, res.Accepted, res.Rejects)
		}
		for _, r := range res.Rejects[:2] {
			if r.Error != `unknown product_id "NEW" (not in the catalog)` {
				t.Errorf("auto=%v: signal for an unknown product: %q", auto, r.Error)
			}
		}
		if m.Has("NOPRICE") || m.Has("NEW") != auto {
			t.Fatalf("auto=%v: NOPRICE %v, NEW %v", auto, m.Has("NOPRICE"), m.Has("NEW"))
		}
		if auto {
			if e, _ := m.Explain("NEW"); e.BasePrice != 20 {
				t.Errorf("created with base %v, want 20 (the shown price, in cents)", e.BasePrice)
			}
			if b, _ := m.Seal(); len(b.Products) != 1 || b.Products[0].ID != "NEW" {
				t.Errorf("batch products %+v, want the created one", b.Products)
			}
		}
	}
}
