// Package simmarket is the simulated market the simulator prices against:
// scenarios, shoppers, demand curves, competitors and stock. It is named
// apart from pricing.Market, the stock and competitor signals the pricing
// core keeps about a product.
//
// It is a synthetic market for judging pricing strategies offline:
// shoppers arrive over simulated time, look at one product each, and move
// through a view -> cart -> purchase funnel whose probabilities depend on
// the price they are shown and on a demand curve the strategy cannot see.
// Everything is deterministic for a seed and the per-shopper path is O(1)
// and allocation-free, so a whole simulation of millions of shoppers is
// bounded by the pricing engine, not by the market.
package simmarket

import (
	"math"
	"sort"
)

// Curve is a hidden demand curve: the probability that a shopper who views
// the product at the given price goes on to buy it. Implementations must
// return a value in [0,1] that is non-increasing in price.
type Curve interface {
	Buy(price float64) float64
}

// ClosedForm is a Curve whose margin-optimal price is known analytically.
// Optimum returns the unconstrained maximiser of (p-cost)*Buy(p) over p>0;
// for these unimodal families the optimum on [lo,hi] is simply the result
// clamped to the interval. It returns +Inf when profit grows without bound.
type ClosedForm interface {
	Curve
	Optimum(cost float64) float64
}

// Logit is the logistic demand curve P(p) = 1/(1+exp(-(A-B*p))), B > 0.
// It never reaches 0 or 1, so it always has a finite interior optimum,
// which makes it the default family for generated products.
type Logit struct{ A, B float64 }

// Buy implements Curve.
func (l Logit) Buy(p float64) float64 { return 1 / (1 + math.Exp(-(l.A - l.B*p))) }

// Optimum solves the first-order condition of (p-c)*P(p), which for the
// logit reduces to B(p-c) = 1 + exp(A-Bp). With x = B(p-c)-1 this is
// x*e^x = e^(A-Bc-1), i.e. x = W(e^(A-Bc-1)) with W the Lambert W function;
// we solve x + ln x = A-Bc-1 in the log domain so huge arguments cannot
// overflow. Profit is unimodal for p > c, so this is the global optimum.
func (l Logit) Optimum(cost float64) float64 {
	return cost + (1+lambertWExp(l.A-l.B*cost-1))/l.B
}

// lambertWExp returns W(e^z) for real z, i.e. the x > 0 with x + ln x = z.
// f(x) = x + ln x - z is increasing and concave, so after one Newton step
// the iterates approach the root monotonically from below; the step is
// guarded so x stays positive.
func lambertWExp(z float64) float64 {
	var x float64
	switch {
	case z > 1:
		x = z - math.Log(z)
	case z < -20:
		return math.Exp(z) // W(y) ~ y for tiny y
	default:
		x = math.Exp(z) / (1 + math.Exp(z)) // any positive start works
	}
	for range 100 {
		f := x + math.Log(x) - z
		next := x - f/(1+1/x)
		if next <= 0 {
			next = x / 10
		}
		if math.Abs(next-x) <= 1e-15*math.Max(1, x) {
			return next
		}
		x = next
	}
	return x
}

// Linear is P(p) = clamp(P0 - Slope*p, 0, 1), Slope > 0. Demand reaches zero
// at the choke price P0/Slope and saturates at 1 below (P0-1)/Slope.
type Linear struct{ P0, Slope float64 }

// Buy implements Curve.
func (l Linear) Buy(p float64) float64 { return clamp01(l.P0 - l.Slope*p) }

// Optimum is the vertex (P0/Slope + c)/2 of the profit parabola, raised to
// the saturation kink (P0-1)/Slope when the vertex lies in the flat P=1
// region (where profit still rises with price). When cost >= P0/Slope no
// price is profitable and the choke price (zero sales, zero profit) is
// returned.
func (l Linear) Optimum(cost float64) float64 {
	choke := l.P0 / l.Slope
	if cost >= choke {
		return choke
	}
	return math.Max((choke+cost)/2, (l.P0-1)/l.Slope)
}

// ConstElasticity is P(p) = min(1, K*p^(-Eps)): a constant price elasticity
// Eps wherever the cap is not active. Eps must exceed 1 for a finite
// optimum: with Eps <= 1 revenue p*P(p) never falls as price rises, so the
// "optimal" price is the top of whatever range is allowed.
type ConstElasticity struct{ K, Eps float64 }

// Buy implements Curve.
func (c ConstElasticity) Buy(p float64) float64 {
	if p <= 0 {
		return 1
	}
	return math.Min(1, c.K*math.Pow(p, -c.Eps))
}

// Optimum is the textbook markup c*Eps/(Eps-1), raised to the kink price
// K^(1/Eps) where the cap P=1 stops binding (below it demand is flat and
// profit rises with price). With zero cost that kink is the revenue optimum.
func (c ConstElasticity) Optimum(cost float64) float64 {
	if c.Eps <= 1 {
		return math.Inf(1)
	}
	return math.Max(cost*c.Eps/(c.Eps-1), math.Pow(c.K, 1/c.Eps))
}

// Ladder is a step curve: shoppers buy with probability Buys[k] at any
// price above Prices[k-1] up to Prices[k] (Buys[0] at or below Prices[0])
// and never above the top price. Prices rise strictly and Buys do not
// rise. It is the textbook case of revenue management: with a few price
// points and limited stock, the best policy is a linear program over the
// time spent at each point (see docs/SIMULATE.md), so a scenario with a
// ladder has an optimum known in closed form to check the simulator's
// bound against.
type Ladder struct{ Prices, Buys []float64 }

// Buy implements Curve.
func (l Ladder) Buy(p float64) float64 {
	k := sort.SearchFloat64s(l.Prices, p) // first price >= p
	if k == len(l.Prices) {
		return 0
	}
	return l.Buys[k]
}

// Steps returns the prices at which the purchase probability steps down
// (just above each), in increasing order; the caller must not modify
// them. Revenue on a ladder is highest at one of these prices, which a
// numeric search over an even or logarithmic grid would miss.
func (l Ladder) Steps() []float64 { return l.Prices }

// Scaled multiplies a curve's purchase probability by Mult (capped at 1).
// It models a demand shock: the same shoppers become more (Mult>1) or less
// (Mult<1) willing to buy at every price.
type Scaled struct {
	Curve Curve
	Mult  float64
}

// Buy implements Curve.
func (s Scaled) Buy(p float64) float64 { return math.Min(1, s.Mult*s.Curve.Buy(p)) }

func clamp01(x float64) float64 {
	if x < 0 {
		return 0
	}
	if x > 1 {
		return 1
	}
	return x
}

// OptimalPrice numerically maximises the margin (p-cost)*Buy(p) on [lo,hi];
// it is the clairvoyant benchmark a strategy is judged against. It needs no
// derivative or unimodality: GridMax on an even grid of 512 cells
// (guarding against multimodal or kinked curves), refined to 1e-12.
func OptimalPrice(c Curve, cost, lo, hi float64) float64 {
	if !(hi > lo) {
		return lo
	}
	const grid = 512
	step := (hi - lo) / grid
	at := func(i int) float64 {
		if i >= grid {
			return hi
		}
		return lo + float64(i)*step
	}
	return GridMax(func(p float64) float64 { return (p - cost) * c.Buy(p) }, at, grid, 1e-12)
}

// GridMax maximises f numerically over [at(0), at(n)], at being an
// increasing grid: the best of the points at(0) ... at(n) finds the best
// cell, then golden-section search refines within its neighbours until
// the bracket is narrower than tol (relative to its top, or absolute
// below 1). The better of the grid's best and the refinement is returned.
func GridMax(f func(float64) float64, at func(int) float64, n int, tol float64) float64 {
	best := at(0)
	bestV, bi := f(best), 0
	for k := 1; k <= n; k++ {
		p := at(k)
		if v := f(p); v > bestV {
			best, bestV, bi = p, v, k
		}
	}
	if m, v := goldenMax(f, at(max(bi-1, 0)), at(min(bi+1, n)), tol); v > bestV {
		best = m
	}
	return best
}

// goldenMax refines a maximum of f bracketed by [a, b] by golden-section
// search until the bracket is narrower than tol (relative to b, or
// absolute below 1), and returns its middle and f there.
func goldenMax(f func(float64) float64, a, b, tol float64) (float64, float64) {
	const invPhi = 0.6180339887498949
	x1, x2 := b-invPhi*(b-a), a+invPhi*(b-a)
	f1, f2 := f(x1), f(x2)
	for b-a > tol*math.Max(1, math.Abs(b)) {
		if f1 < f2 {
			a, x1, f1 = x1, x2, f2
			x2 = a + invPhi*(b-a)
			f2 = f(x2)
		} else {
			b, x2, f2 = x2, x1, f1
			x1 = b - invPhi*(b-a)
			f1 = f(x1)
		}
	}
	m := (a + b) / 2
	return m, f(m)
}
