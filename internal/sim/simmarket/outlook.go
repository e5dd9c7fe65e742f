package simmarket

import (
	"slices"
	"time"
)

// Cell is a stretch of simulated time over which one product's demand is
// stationary: the same expected arrival rate, shock multiplier,
// willingness to pay and competitor prices throughout, within one restock
// period.
type Cell struct {
	// Start is the cell's start, as an offset from the scenario's start.
	Start time.Duration
	// Period is the restock period the cell lies in: its start divided by
	// the product's RestockEvery (0 without restocks).
	Period int
	// Views is the expected number of the product's shoppers in the cell.
	Views float64
	// Demand is the purchase probability's dependence there (see BuyAt).
	Demand Demand
}

// Outlook is the market's true expected demand, product by product: what
// a clairvoyant who knows the arrival process, the curves, the shocks,
// the drift and the competitors' prices (but not which shopper comes
// when, nor whether they buy) expects. It is worked out from the scenario
// alone, never from a run, so a benchmark built on it does not depend on
// the strategies.
type Outlook struct {
	m      *Market
	stream *Stream
	// bounds are the starts of stretches in which every product's demand
	// is stationary, then the horizon; shoppers is their expected
	// shoppers over all products.
	bounds   []time.Duration
	shoppers []float64
	weights  float64 // sum of the products' popularity
}

// Outlook returns the market's expected demand.
func (m *Market) Outlook() (*Outlook, error) {
	st, err := m.Stream()
	if err != nil {
		return nil, err
	}
	o := &Outlook{m: m, stream: st, bounds: m.edges()}
	for k := range len(o.bounds) - 1 {
		a, b := o.bounds[k], o.bounds[k+1]
		o.shoppers = append(o.shoppers, st.Rate(a)*(b-a).Hours())
	}
	for _, p := range m.Products {
		o.weights += p.Weight
	}
	return o, nil
}

// edges is every offset at which some product's demand may change: the
// clock hours (the arrival profiles and the drift step there), the shocks'
// edges, the requotes and the restocks; from 0 to the horizon, sorted,
// each once.
func (m *Market) edges() []time.Duration {
	sc := m.Scenario
	h := sc.Horizon.Duration
	out := []time.Duration{0, h}
	add := func(d time.Duration) {
		if d > 0 && d < h {
			out = append(out, d)
		}
	}
	// Clock hours in the start's location, as Stream.enter finds them,
	// and whole hours from the start, where the drift steps.
	for d := time.Duration(0); d < h; {
		t := sc.Start.Add(d)
		into := time.Duration(t.Minute())*time.Minute + time.Duration(t.Second())*time.Second + time.Duration(t.Nanosecond())
		d += time.Hour - into
		add(d)
	}
	if sc.WTPDrift != 0 {
		for d := time.Hour; d < h; d += time.Hour {
			add(d)
		}
	}
	for _, sh := range sc.Arrivals.Shocks {
		add(sh.Start.Duration)
		add(sh.Start.Duration + sh.Duration.Duration)
	}
	every := map[time.Duration]bool{}
	if c := sc.Competitors; c != nil {
		every[c.RequoteEvery.Duration] = true
	}
	for _, p := range m.Products {
		if e := p.Stock.RestockEvery.Duration; e > 0 {
			every[e] = true
		}
	}
	for e := range every {
		for d := e; d < h; d += e {
			add(d)
		}
	}
	slices.Sort(out)
	return slices.Compact(out)
}

// Product appends product i's cells to dst (from its start) and returns
// it: in time order, neighbouring stretches with the same demand in the
// same restock period merged into one cell. Their Views add up to the
// product's expected shoppers over the horizon.
func (o *Outlook) Product(i int, dst []Cell) []Cell {
	p := o.m.Products[i]
	share := p.Weight / o.weights
	every := p.Stock.RestockEvery.Duration
	comp := o.m.Competitors
	quote, lowest := int64(-1), 0.0
	n := len(dst)
	for k := range len(o.bounds) - 1 {
		a := o.bounds[k]
		c := Cell{Start: a, Views: o.shoppers[k] * share,
			Demand: Demand{Mult: o.stream.Demand(i, a), WTP: o.m.WTP(a)}}
		if every > 0 {
			c.Period = int(a / every)
		}
		if comp != nil {
			if q := comp.Period(o.m.Scenario.Start.Add(a)); q != quote {
				quote, lowest = q, comp.Lowest(i, q)
			}
			c.Demand.Lowest = lowest
		}
		if last := len(dst) - 1; last >= n && dst[last].Period == c.Period && dst[last].Demand == c.Demand {
			dst[last].Views += c.Views
			continue
		}
		dst = append(dst, c)
	}
	return dst
}
