package engine_test

import (
	"fmt"
	"testing"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// BenchmarkMachineApplyEvents is the engine core as the server runs it:
// decoded events (by product id, not index) applied in batches of 10,000
// to 1,000 products, each batch sealed into its history rows and state
// changes, as a commit would take them. It is what issue 2's "5 million
// events/s on one core, no allocation per event" is about. The breaker
// cases turn the price-velocity breaker on for every product (the quantity
// cap is always on), to show what the limits cost.
func BenchmarkMachineApplyEvents(b *testing.B) {
	for _, c := range []struct {
		name, strategy string
		movePct        float64
	}{{"seed", "seed", 0}, {"decay", "decay", 0}, {"seed+breaker", "seed", 50}, {"decay+breaker", "decay", 50}} {
		b.Run(c.name, func(b *testing.B) {
			const products, batch = 1000, 10_000
			cfg := engine.DefaultConfig()
			cfg.Pricing.DefaultStrategy = c.strategy
			cfg.Pricing.Limits.MaxMovePct = c.movePct
			m := engine.NewMachine(cfg)
			snap := engine.Snapshot{}
			for i := range products {
				snap.Products = append(snap.Products, pricing.Product{ID: fmt.Sprintf("P%04d", i), BasePrice: 100,
					Guardrails: pricing.Guardrails{Ceiling: 500, MaxChangePct: 20}})
			}
			now := int64(1_800_000_000e9)
			if _, err := m.Load(snap, now); err != nil {
				b.Fatal(err)
			}
			evs := make([]ingest.Event, batch)
			types := []pricing.EventType{pricing.View, pricing.View, pricing.Cart, pricing.View, pricing.Purchase}
			for k := range evs {
				evs[k] = ingest.Event{Type: types[k%len(types)], ProductID: snap.Products[(k*7919)%products].ID, Quantity: 1, Price: 100}
			}
			var res engine.SubmitResult
			b.ReportAllocs()
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				now += 1e6
				res = engine.SubmitResult{}
				m.ApplyEvents(evs, now, &res)
				m.Seal()
				m.Begin()
			}
			b.ReportMetric(float64(b.N)*batch/b.Elapsed().Seconds(), "events/s")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/batch, "ns/event")
			if res.Accepted != batch {
				b.Fatalf("accepted %d of %d", res.Accepted, batch)
			}
		})
	}
}
