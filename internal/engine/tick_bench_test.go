package engine_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// BenchmarkMachineTick is the once-a-second tick of an idle engine at a
// million products: no events, only the clock moving a second per round,
// as serve's writer and every engine partition run it. "seed" is the
// default catalog; "decay-1pct" prices everything with decay, a hundredth
// of it with demand (so its price falls with time); "override-1pct" has
// an override on a hundredth, expiring over the next hours. One op is one
// tick: at one tick a second, 1e9 ns/op is a core.
func BenchmarkMachineTick(b *testing.B) {
	const products = 1_000_000
	for _, c := range []struct {
		name, strategy string
		demand         bool
		override       bool
	}{{"seed", "seed", false, false}, {"decay-1pct", "decay", true, false}, {"override-1pct", "seed", false, true}} {
		b.Run(c.name, func(b *testing.B) {
			cfg := engine.DefaultConfig()
			cfg.Pricing.DefaultStrategy = c.strategy
			m := engine.NewMachine(cfg)
			snap := engine.Snapshot{}
			for i := range products {
				snap.Products = append(snap.Products, pricing.Product{ID: fmt.Sprintf("P%07d", i), BasePrice: 100})
			}
			now := int64(1_800_000_000e9)
			if _, err := m.Load(snap, now); err != nil {
				b.Fatal(err)
			}
			m.Begin() // records the first prices
			m.Seal()
			m.Begin()
			var res engine.SubmitResult
			for i := 0; i < products; i += 100 {
				id := snap.Products[i].ID
				if c.demand {
					m.ApplyEvents([]ingest.Event{{Type: pricing.Purchase, ProductID: id, Quantity: 20}}, now, &res)
				}
				if c.override {
					exp := time.Unix(0, now).Add(time.Hour + time.Duration(i)*time.Millisecond)
					if err := m.SetOverride(engine.OverrideInput{ProductID: id, Price: 50, By: "op", ExpiresAt: exp}, now); err != nil {
						b.Fatal(err)
					}
				}
			}
			m.Seal()
			m.Begin()
			b.ReportAllocs()
			b.ResetTimer()
			changed := 0
			for n := 0; n < b.N; n++ {
				now += int64(time.Second)
				m.Begin()
				m.Tick(now)
				batch, _ := m.Seal()
				changed += len(batch.States)
			}
			b.ReportMetric(float64(changed)/float64(b.N), "changed/tick")
		})
	}
}
