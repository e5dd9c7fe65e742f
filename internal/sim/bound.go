package sim

import (
	"math"

	"github.com/dynaprice/dynaprice/internal/sim/simmarket"
)

// The two benchmarks every run is measured against are worked out here
// from the market's true expected demand (simmarket.Outlook: the arrival
// rate, curves, shocks, drift and competitors' prices) and the stock
// policy, never from a run, so they do not depend on the strategies or on
// the engine:
//
//   - the best fixed price: per product, the one price that, held over
//     the horizon, earns the most in the fluid model (expected demand in
//     each restock period, served from the stock as simmarket.Stock
//     serves it). It is a policy: the simulator runs it like a strategy.
//   - the dynamic bound: per product, the most a clairvoyant who may set
//     any price at any moment could expect to earn, the fluid relaxation
//     of Gallego and van Ryzin (1994). It is not a policy but an upper
//     bound on every policy's expected revenue.
//
// Why the bound bounds: take any λ ≥ 0 per restock period (the value of a
// unit of stock there). A sale at price p in that period earns
// p = (p−λ) + λ, so revenue = Σ over sales (p−λ) + Σ λ × units sold. A
// shopper shown p buys with probability b(p), whatever the policy knew
// before (it does not know the shopper's own draws), so the first sum's
// expectation is at most Σ over cells views × max_p (p−λ)·b(p) (and at
// least 0 is always available, at a price nobody pays). Units sold in a
// period are at most the stock there, so the second sum is at most
// Σ λ × stock. Each choice of λ gives an upper bound; the bisection finds
// the least, where the fluid demand at the λ-optimal prices just meets the
// stock (λ = 0 when the stock does not bind). With restock_by, stock
// carries over, so the constraints are on cumulative sales and the
// multipliers must not rise from period to period (pool below). Prices
// are held to the unit cost when every strategy is (the margin floor).

// stepped is a curve whose purchase probability steps down just above the
// given prices, increasing (simmarket.Ladder). Revenue on a step peaks
// at a step's price, which a grid would miss, so the search cuts there.
type stepped interface{ Steps() []float64 }

// model is one product's true expected demand and stock, as the
// benchmarks need them.
type model struct {
	m  *simmarket.Market
	i  int
	pr simmarket.Product
	// lo is the lowest price allowed (the unit cost with the margin
	// floor, else 0); hi bounds the numeric searches: 100 × the list
	// price at the highest willingness to pay.
	lo, hi float64
	// periods[j] is restock period j's distinct demands with their
	// expected views.
	periods [][]demandViews
	// stationary is set when one demand holds over the whole horizon.
	stationary bool
}

type demandViews struct {
	d     simmarket.Demand
	views float64
}

// newModel builds product i's model from the outlook; cells is a buffer
// to reuse, returned for the next product.
func newModel(o *simmarket.Outlook, m *simmarket.Market, i int, marginFloor bool, cells []simmarket.Cell) (*model, []simmarket.Cell) {
	cells = o.Product(i, cells[:0])
	md := &model{m: m, i: i, pr: m.Products[i], stationary: true}
	if marginFloor && md.pr.Cost > 0 {
		md.lo = md.pr.Cost
	}
	wtp := 1.0
	for _, c := range cells {
		for len(md.periods) <= c.Period {
			md.periods = append(md.periods, nil)
		}
		wtp = math.Max(wtp, c.Demand.WTP)
		if c.Demand != cells[0].Demand {
			md.stationary = false
		}
		ps := md.periods[c.Period]
		k := 0
		for k < len(ps) && ps[k].d != c.Demand {
			k++
		}
		if k == len(ps) {
			ps = append(ps, demandViews{d: c.Demand})
		}
		ps[k].views += c.Views
		md.periods[c.Period] = ps
	}
	md.hi = 100 * md.pr.BasePrice * wtp
	return md, cells
}

// respond is the price that maximises (p−λ) × the purchase probability
// under demand d, at or above lo, and the probability there; 0 when no
// price earns more than λ (the shopper is best left to not buy).
func (md *model) respond(d simmarket.Demand, lambda float64) (price, buy float64) {
	if cf, ok := md.pr.Curve.(simmarket.ClosedForm); ok && md.m.Competitors == nil {
		// With q = p/WTP, (p−λ)·b(q) = WTP·(q − λ/WTP)·b(q).
		price = d.WTP * cf.Optimum(lambda/d.WTP)
		if d.Mult > 1 {
			// Below the price where the shock's multiplier saturates
			// the probability at 1, revenue rises with the price.
			price = math.Max(price, md.saturation(d))
		}
		price = math.Max(price, md.lo)
	} else {
		price = md.search(d, lambda)
	}
	buy = md.m.BuyAt(md.i, d, price)
	if !((price-lambda)*buy > 0) {
		return price, 0
	}
	return price, buy
}

// saturation is the price below which demand d's purchase probability is
// capped at 1, found by bisection (the probability falls with the price).
func (md *model) saturation(d simmarket.Demand) float64 {
	lo, hi := 0.0, md.hi
	if md.m.BuyAt(md.i, d, hi) >= 1 {
		return hi
	}
	for range 100 {
		mid := (lo + hi) / 2
		if md.m.BuyAt(md.i, d, mid) >= 1 {
			lo = mid
		} else {
			hi = mid
		}
	}
	return lo
}

// search maximises (p−λ) × the purchase probability numerically where
// there is no closed form (competitors, ladders): from the least of
// lo, λ and a hundredth of the list price up to hi, cut at a ladder's
// steps, each piece searched on a log-spaced grid (logMax).
func (md *model) search(d simmarket.Demand, lambda float64) float64 {
	lo := math.Max(md.lo, math.Max(lambda, md.pr.BasePrice/100))
	if !(md.hi > lo) {
		return lo
	}
	f := func(p float64) float64 { return (p - lambda) * md.m.BuyAt(md.i, d, p) }
	cuts := []float64{lo}
	if s, ok := md.pr.Curve.(stepped); ok {
		for _, x := range s.Steps() {
			if x *= d.WTP; x > lo && x < md.hi {
				cuts = append(cuts, x)
			}
		}
	}
	cuts = append(cuts, md.hi)
	n := max(32, 512/(len(cuts)-1))
	best, bv := lo, f(lo)
	for k := 1; k < len(cuts); k++ {
		if p := logMax(f, cuts[k-1], cuts[k], n); f(p) > bv {
			best, bv = p, f(p)
		}
	}
	return best
}

// period is restock period j's part of the dual at multiplier λ:
// Σ views × max_p (p−λ)·b(p), and the units sold at those prices.
func (md *model) period(j int, lambda float64) (value, units float64) {
	for _, dv := range md.periods[j] {
		p, b := md.respond(dv.d, lambda)
		value += (p - lambda) * b * dv.views
		units += b * dv.views
	}
	return value, units
}

// pool prices the stock of periods from to to (inclusive), budget units
// in all: the least λ at which the fluid demand fits the budget (0 when
// it fits at λ = 0), by bisection; and the dual value there, λ × budget
// plus the periods' values, an upper bound on their expected revenue
// from that stock whatever λ is.
func (md *model) pool(from, to int, budget float64) (lambda, value float64) {
	units := func(l float64) float64 {
		var u float64
		for j := from; j <= to; j++ {
			_, uj := md.period(j, l)
			u += uj
		}
		return u
	}
	if units(0) > budget {
		lo, hi := 0.0, md.hi
		for range 100 {
			mid := (lo + hi) / 2
			if units(mid) > budget {
				lo = mid
			} else {
				hi = mid
			}
			if hi-lo <= 1e-12*hi {
				break
			}
		}
		lambda = hi
	}
	return lambda, md.dual(from, to, lambda, budget)
}

// dual is λ × budget plus periods from to to's values at λ.
func (md *model) dual(from, to int, lambda, budget float64) float64 {
	v := lambda * budget
	for j := from; j <= to; j++ {
		vj, _ := md.period(j, lambda)
		v += vj
	}
	return v
}

// bound is the product's dynamic bound: the least dual value found for
// its stock policy.
func (md *model) bound() float64 {
	st := md.pr.Stock
	k := len(md.periods)
	var total float64
	switch {
	case st.Unlimited:
		return md.dual(0, k-1, 0, 0)
	case st.RestockBy == 0:
		// No restock, or restocks up to RestockTo: what a period can
		// sell is what is on hand at its start, Initial in the first
		// and RestockTo in the others (the leftover when more: at most
		// Initial), whatever was sold before; one λ per period.
		for j := range k {
			c := float64(st.Initial)
			if j > 0 {
				c = math.Max(c, float64(st.RestockTo))
			}
			_, v := md.pool(j, j, c)
			total += v
		}
		return total
	}
	// Restocks of RestockBy: stock carries over, so the constraints are
	// on cumulative sales (through period e, at most Initial + e ×
	// RestockBy), and period j's λ is the sum of the multipliers of the
	// constraints from j on: it may only fall. The tightest constraint
	// from the first period sets a pool's λ; its periods sell their
	// budget, and the rest is priced the same way after it.
	added := func(j int) float64 {
		if j == 0 {
			return float64(st.Initial)
		}
		return float64(st.RestockBy)
	}
	prev := math.Inf(1)
	for from := 0; from < k; {
		to, lambda, budget, best := from, -1.0, 0.0, 0.0
		for e := from; e < k; e++ {
			budget += added(e)
			if l, _ := md.pool(from, e, budget); l >= lambda {
				to, lambda, best = e, l, budget
			}
		}
		// Rounding in the bisection must not let λ rise; any falling
		// λs give an upper bound.
		lambda = math.Min(lambda, prev)
		total += md.dual(from, to, lambda, best)
		prev, from = lambda, to+1
	}
	return total
}

// fixedRevenue is the fluid revenue of price p held over the horizon:
// each restock period's expected demand at p served from the stock on
// hand, which carries over and is restocked at the start of every period
// after the first (ceil(horizon / RestockEvery) − 1 restocks: none at the
// horizon itself), as simmarket.Stock does it.
func (md *model) fixedRevenue(p float64) float64 {
	st := md.pr.Stock
	level, sold := float64(st.Initial), 0.0
	for j, ps := range md.periods {
		var d float64
		for _, dv := range ps {
			d += dv.views * md.m.BuyAt(md.i, dv.d, p)
		}
		if st.Unlimited {
			sold += d
			continue
		}
		if j > 0 {
			if st.RestockTo > 0 {
				level = math.Max(level, float64(st.RestockTo))
			} else {
				level += float64(st.RestockBy)
			}
		}
		s := math.Min(d, level)
		level -= s
		sold += s
	}
	return p * sold
}

// bestFixed is the best fixed price and its fluid revenue. When one
// demand holds throughout and the revenue-maximising price's demand fits
// the stock, that price is the answer; otherwise fixedRevenue, whose
// kinks where a period's stock starts to bind can make it multimodal, is
// searched on a log-spaced grid from lo (or a hundredth of the list
// price) to a hundred times the list price.
func (md *model) bestFixed() (price, revenue float64) {
	if md.stationary {
		p, _ := md.respond(md.periods[0][0].d, 0)
		var demand float64
		for _, ps := range md.periods {
			for _, dv := range ps {
				demand += dv.views * md.m.BuyAt(md.i, dv.d, p)
			}
		}
		if r := md.fixedRevenue(p); r >= p*demand*(1-1e-12) {
			return p, r
		}
	}
	lo := math.Max(md.lo, md.pr.BasePrice/100)
	p := logMax(md.fixedRevenue, lo, math.Max(lo, 100*md.pr.BasePrice), 1024)
	return p, md.fixedRevenue(p)
}

// logMax maximises f on [lo, hi] (lo > 0) by simmarket.GridMax on a
// log-spaced grid of n cells (prices compare in ratios), refined to
// 1e-10.
func logMax(f func(float64) float64, lo, hi float64, n int) float64 {
	if !(hi > lo) {
		return lo
	}
	ratio := math.Pow(hi/lo, 1/float64(n))
	at := func(k int) float64 {
		if k >= n {
			return hi
		}
		return lo * math.Pow(ratio, float64(k))
	}
	return simmarket.GridMax(f, at, n, 1e-10)
}

// benchmarks are a market's best fixed prices (one per product) with
// their fluid revenue, and its dynamic bound.
type benchmarks struct {
	prices       []float64
	fixed, bound float64
}

// benchmark works out the market's benchmarks.
func benchmark(m *simmarket.Market, marginFloor bool) (benchmarks, error) {
	o, err := m.Outlook()
	if err != nil {
		return benchmarks{}, err
	}
	b := benchmarks{prices: make([]float64, len(m.Products))}
	var cells []simmarket.Cell
	for i := range m.Products {
		var md *model
		md, cells = newModel(o, m, i, marginFloor, cells)
		p, r := md.bestFixed()
		b.prices[i] = p
		b.fixed += r
		b.bound += md.bound()
	}
	return b, nil
}
