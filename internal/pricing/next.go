package pricing

import (
	"math"
	"time"
)

// InventoryEvery is how often a product priced by the inventory strategy
// is repriced while its selling period runs and no event arrives: its
// price follows the plan's clock, a little every moment (a 30-day period
// moves the plan by 1/43,200 a minute), and repricing a large catalog
// every second for that cost more than any shopper could see.
const InventoryEvery = time.Minute

// NextTick returns the earliest time (unix ns; now if it is due already) at
// which Tick may change product i without any event in between, or 0 if it
// never will:
// the override's expiry, the end of the price-velocity breaker's window,
// the end of the hour its analytics tally counts,
// the day a daily low leaves the 30-day window, and the moment the
// strategy's price moves with time alone:
//
//   - while the maximum-change guardrail holds a move back, the next
//     tick (each reprice steps the dynamic price towards the strategy's,
//     under an override too);
//   - seed and thompson never do (they move on events only);
//   - decay: when the decayed demand has fallen far enough for the
//     published price to change (the raw price crosses the next rounding
//     boundary below it), computed, not polled;
//   - competitor: when the quote it prices from, or a lower one, gets too
//     old;
//   - inventory: every InventoryEvery while the selling period runs, at
//     its start and at its end;
//   - any other strategy (Config.Strategies): the next tick.
//
// A Tick at NextTick or later gives the same result a Tick at every
// instant in between would have, except for inventory (InventoryEvery).
// The engine keeps products in a queue by NextTick instead of ticking the
// whole catalog.
func (b *Book) NextTick(i int, now int64) int64 {
	s, g := &b.states[i], b.guards[i]
	next := int64(0)
	at := func(t int64) {
		t = max(t, now)
		if next == 0 || t < next {
			next = t
		}
	}
	if s.Trace.Applied&GuardMaxChange != 0 {
		// The change limit held the last move back: every reprice steps
		// the dynamic price towards the strategy's, as every tick did,
		// under an override too.
		at(now)
	}
	if s.Override.Active {
		if s.Override.Expires > 0 {
			at(s.Override.Expires)
		}
	} else {
		if g.movePct > 0 && s.Brake.Since != 0 {
			at(s.Brake.Since + g.window)
		}
		if t := b.strategyMoves(i, now); t != 0 {
			at(t)
		}
	}
	// The hour's analytics tally is taken out when the hour is over
	// (RollTally), even for a product no event comes back to: within
	// RollSpread after it, at a moment of the product's own, so that a
	// large catalog's rows are written over minutes rather than all in
	// the first round of the hour.
	if s.Tally.Hour != 0 {
		at(s.Tally.Hour + HourNS + rollDelay(i))
	}
	// A daily low leaves the window at the start of its 31st day.
	s.Low.Days(func(d int32, m float64) {
		if t := int64(d+LowestWindowDays) * dayNS; m > 0 && t >= now {
			at(t)
		}
	})
	return next
}

// RollSpread is how long after its hour a product's tally may wait for
// its timer (an event of the product rolls it at once).
const RollSpread = int64(10 * time.Minute)

// rollDelay is product i's share of RollSpread: the same for the product
// every hour, spread evenly over the catalog (a multiplicative hash of
// its index).
func rollDelay(i int) int64 {
	return int64(uint64(i) * 0x9E3779B97F4A7C15 % uint64(RollSpread))
}

// strategyMoves is when product i's strategy price moves with time alone
// (0: never); see NextTick.
func (b *Book) strategyMoves(i int, now int64) int64 {
	s, g, p := &b.states[i], b.guards[i], &b.products[i]
	switch st := b.strat[i].(type) {
	case Seed, Thompson:
		return 0
	case Decay:
		return st.crossing(p.BasePrice, s.Demand, g, s.Trace)
	case Competitor:
		if s.Market == nil || st.MaxAge <= 0 {
			return 0
		}
		next := int64(0)
		for _, q := range s.Market.Quotes {
			// reference skips a quote once now-At > MaxAge.
			if t := q.At + int64(st.MaxAge) + 1; t >= now && (next == 0 || t < next) {
				next = t
			}
		}
		return next
	case Inventory:
		plan, m := p.Inventory, s.Market
		if plan == nil || m == nil || !m.StockKnown {
			return 0
		}
		_, end, ok := plan.period(now)
		switch {
		case ok:
			return min(now+int64(InventoryEvery), end)
		case now < plan.PeriodStart.UnixNano():
			return plan.PeriodStart.UnixNano()
		}
		return 0 // the plan is over
	}
	return now + 1
}

// crossing returns when decayed demand d will have fallen far enough for
// the published price to move down: the raw price (base + K·sqrt(demand))
// crosses the rounding boundary below the current one. 0 for never (the
// price is at a floor, or cannot fall below the next boundary).
func (s Decay) crossing(base float64, d Demand, g *guardrails, t Trace) int64 {
	if s.K <= 0 || s.HalfLife <= 0 || d.Decayed <= 0 {
		return 0
	}
	if t.Applied&(GuardFloor|GuardMargin) != 0 && t.Raw <= t.Bounded {
		return 0 // held up by a floor; the raw price only falls further
	}
	p := t.Raw
	if g.ceiling > 0 && p > g.ceiling {
		p = g.ceiling // the price moves once the raw price is below it
	}
	target := g.round.below(p)
	if target <= base {
		return 0
	}
	want := (target - base) / s.K
	want *= want
	if want >= d.Decayed {
		return d.At + 1
	}
	// Decayed · 2^(-(t-At)/HalfLife) = want. A millisecond early: a tick
	// before the crossing costs one more look, one after it a late price.
	el := float64(s.HalfLife) * math.Log2(d.Decayed/want)
	if el > float64(math.MaxInt64/2) {
		return 0
	}
	return d.At + int64(el) - int64(time.Millisecond)
}

// below returns the largest price under p at which r's rounding of a
// price falling from p first gives a lower result: the rounding boundary
// below p.
func (r Rounding) below(p float64) float64 {
	if r.HasEnding {
		// Candidates k+e; the nearest flips half way between two.
		lower := math.Floor(p-r.Ending) + r.Ending
		if mid := lower + 0.5; mid < p {
			return mid
		}
		return lower - 0.5
	}
	step := r.Step
	if step <= 0 {
		step = 0.01
	}
	b := (math.Floor(p/step-0.5) + 0.5) * step
	if b >= p {
		b -= step
	}
	return b
}
