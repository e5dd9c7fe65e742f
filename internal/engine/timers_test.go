package engine_test

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// TestTimersTickLikeAScan: the machine's ticks, which reprice only the
// products whose timer is due, publish exactly what ticking every product
// at every tick (the engine before timers) publishes: the same price,
// source, version, time and 30-day low for every product after every
// tick, over seconds (decay in every rounding, floors, ceilings, the
// change limit, competitor quotes ageing, the breaker's window, expiring
// overrides) and over forty days (daily lows leaving the window).
func TestTimersTickLikeAScan(t *testing.T) {
	cfg := engine.DefaultConfig()
	cfg.Pricing.HalfLife = 10 * time.Minute
	m := engine.NewMachine(cfg)
	ref, err := pricing.NewBook(cfg.Pricing)
	if err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var snap engine.Snapshot
	for i := range 300 {
		p := pricing.Product{ID: fmt.Sprintf("P%03d", i), BasePrice: 10 + float64(rng.IntN(9000))/100}
		p.Strategy = []string{"seed", "decay", "decay", "decay", "competitor", "thompson"}[i%6]
		switch rng.IntN(6) {
		case 0:
			p.Rounding = "whole"
		case 1:
			p.Rounding = ".99"
		case 2:
			p.MaxChangePct = 2
		case 3:
			p.Floor = p.BasePrice + 3
		case 4:
			p.Ceiling = p.BasePrice + 20
		}
		if rng.IntN(4) == 0 {
			p.MaxMovePct, p.MoveWindow = 30, pricing.Duration(5*time.Minute)
		}
		if p.Strategy == "competitor" {
			p.Competition = &pricing.CompetitorRule{Mode: "beat"}
		}
		snap.Products = append(snap.Products, p)
	}
	now := time.Date(2027, 3, 1, 23, 0, 0, 0, time.UTC).UnixNano()
	if _, err := m.Load(snap, now); err != nil {
		t.Fatal(err)
	}
	for _, p := range snap.Products {
		if _, _, err := ref.Upsert(p, now); err != nil {
			t.Fatal(err)
		}
	}
	m.Begin()
	m.Seal()

	// events apply the same events to both, at now.
	events := func(n int) {
		t.Helper()
		evs := make([]ingest.Event, n)
		for k := range evs {
			i := rng.IntN(len(snap.Products))
			e := ingest.Event{ProductID: snap.Products[i].ID, Type: pricing.EventType(1 + rng.IntN(3)), Quantity: int32(1 + rng.IntN(20))}
			if rng.IntN(5) == 0 {
				e.Type, e.Competitor, e.Price = pricing.CompetitorPrice, fmt.Sprint("c", rng.IntN(3)), 5+float64(rng.IntN(9000))/100
			}
			evs[k] = e
		}
		m.Begin()
		var res engine.SubmitResult
		m.ApplyEvents(evs, now, &res)
		if res.Accepted != n {
			t.Fatalf("applied %+v", res)
		}
		for _, e := range evs {
			i, _ := ref.Index(e.ProductID)
			if e.Type == pricing.CompetitorPrice {
				ref.SetCompetitorPrice(i, e.Competitor, e.Price, now)
			} else {
				ref.ApplyShown(i, e.Type, e.Quantity, 0, now)
			}
		}
		m.Seal()
	}
	override := func(i int, ttl time.Duration) {
		t.Helper()
		in := engine.OverrideInput{ProductID: snap.Products[i].ID, Price: 42, By: "op", ExpiresAt: time.Unix(0, now).Add(ttl)}
		m.Begin()
		if err := m.SetOverride(in, now); err != nil {
			t.Fatal(err)
		}
		m.Seal()
		if _, err := ref.SetOverride(i, pricing.Override{Price: 42, By: "op", Since: now, Expires: in.ExpiresAt.UnixNano()}, now); err != nil {
			t.Fatal(err)
		}
	}
	tick := func(step time.Duration) {
		t.Helper()
		now += int64(step)
		m.Begin()
		m.Tick(now)
		m.Seal()
		for i := range ref.Len() {
			ref.Tick(i, now)
		}
		for i, got := range m.All() {
			s := ref.State(i)
			if got.Price != s.Price || got.Source != s.Source || got.Version != s.Version || got.At != s.ChangedAt || got.Lowest30 != s.Lowest30 {
				e, _ := m.Explain(got.ProductID)
				t.Logf("breaker %+v, trace %+v; by timer: breaker %+v, %+v", s.Brake, s.Trace, e.Breaker, e)
				t.Fatalf("%s at %s: ticked by timer %+v; ticked every time: price %v %v version %d at %d lowest %v",
					got.ProductID, time.Unix(0, now).UTC(), got, s.Price, s.Source, s.Version, s.ChangedAt, s.Lowest30)
			}
		}
	}
	events(3000)
	for k := range 20 {
		override(k*7, time.Duration(1+k)*time.Minute)
	}
	for k := range 2 * 3600 {
		if k%600 == 0 {
			events(500)
		}
		tick(time.Second)
	}
	for d := range 40 * 24 {
		if d%30 == 0 {
			events(300)
		}
		tick(time.Hour)
	}
}
