package engine_test

import (
	"fmt"
	"testing"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/experiment"
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

// BenchmarkMachineApplyEventsExperiment is BenchmarkMachineApplyEvents'
// seed case with shoppers' ids on the events, without an experiment and
// with one of three arms over every product: what counting views and
// purchases per arm costs ingest (docs/BENCHMARKS.md, goal ≤ 10%).
func BenchmarkMachineApplyEventsExperiment(b *testing.B) {
	for _, withExp := range []bool{false, true} {
		name := "none"
		if withExp {
			name = "experiment"
		}
		b.Run(name, func(b *testing.B) {
			const products, batch = 1000, 10_000
			m := engine.NewMachine(engine.DefaultConfig())
			snap := engine.Snapshot{}
			for i := range products {
				snap.Products = append(snap.Products, pricing.Product{ID: fmt.Sprintf("P%04d", i), BasePrice: 100,
					Guardrails: pricing.Guardrails{Ceiling: 500, MaxChangePct: 20}})
			}
			now := int64(1_800_000_000e9)
			if _, err := m.Load(snap, now); err != nil {
				b.Fatal(err)
			}
			if withExp {
				d := experiment.Definition{ID: "bench", Split: experiment.ByShopper, Arms: []experiment.Arm{
					{Name: "list", Kind: experiment.Control}, {Name: "lower", Kind: experiment.Fixed, Price: 90}, {Name: "engine", Kind: experiment.Live}}}
				for _, p := range snap.Products {
					d.Products = append(d.Products, p.ID)
				}
				if _, err := m.CreateExperiment(engine.ExperimentInput{Definition: d}, now); err != nil {
					b.Fatal(err)
				}
				m.Seal()
				m.Begin()
			}
			evs := make([]ingest.Event, batch)
			types := []pricing.EventType{pricing.View, pricing.View, pricing.Cart, pricing.View, pricing.Purchase}
			for k := range evs {
				evs[k] = ingest.Event{Type: types[k%len(types)], ProductID: snap.Products[(k*7919)%products].ID, Quantity: 1, Price: 100,
					User: experiment.IDHash(fmt.Sprint("U", k%5000))}
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
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/batch, "ns/event")
			if res.Accepted != batch {
				b.Fatalf("accepted %d of %d", res.Accepted, batch)
			}
		})
	}
}
