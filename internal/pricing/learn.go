package pricing

import (
	"math"
	"time"
)

// Learner is implemented by strategies that learn from how shoppers
// respond to the prices they set. For such a strategy the Book passes every
// shopper event to Observe (with the price the shopper saw) before
// repricing, and its Price may update the state's Learning (to draw its
// next decision). What a learner knows lives in the product's State
// (State.Learn), so it is committed and restored with demand, and a
// restart resumes the learning exactly.
//
// Like Price, Observe must be cheap, free of I/O and deterministic: any
// randomness comes from the state's own generator and any time from the
// events' own timestamps, so that replaying the same events gives the
// same prices.
type Learner interface {
	Strategy
	// Observe records an event: t of qty units, when the shopper was shown
	// the price shown (0: unknown, take the current price). in.Now is the
	// event's timestamp, not the time it is processed.
	Observe(in Input, t EventType, qty int32, shown float64)
}

// Learning is a learner's per-product state: per price arm (a rung of the
// strategy's ladder) the views it got and the purchases they led to.
type Learning struct {
	// Arm is the arm currently shown.
	Arm int `json:"arm"`
	// Views and Buys per arm, forgotten with the policy's half-life (as of
	// At).
	Views []float64 `json:"views"`
	Buys  []float64 `json:"buys"`
	// Redraw is set by a view: the next shopper gets a fresh decision (as
	// soon as the change cap allows one).
	Redraw bool `json:"redraw"`
	// Rand is the state of the product's random generator (splitmix64).
	Rand uint64 `json:"rand"`
	// Fit is the pooled demand model's last fit (level, log of the slope),
	// the starting point of the next.
	Fit []float64 `json:"fit,omitempty"`
	// Base is the base price the counts were learned at: when the list
	// price changes they are moved to the rungs of the prices they were
	// learned at. 0 in a state from before it was kept.
	Base float64 `json:"base,omitempty"`
	// At is the latest event time observed (unix ns), to which Views and
	// Buys are decayed; Moved is the event time learning last changed the
	// price, from which the change cap counts.
	At    int64 `json:"at,omitempty"`
	Moved int64 `json:"moved,omitempty"`
	// Dry is how many views (while in stock) came since the last purchase,
	// and Rate the product's purchases per view as learned up to that
	// purchase (0: none yet). Together they say whether the purchase
	// signal stopped (fallback).
	Dry  float64 `json:"dry,omitempty"`
	Rate float64 `json:"rate,omitempty"`
}

// clone returns a deep copy, so that a State copied out of the Book (to be
// committed or published) does not share the arrays the Book mutates.
func (l *Learning) clone() *Learning {
	if l == nil {
		return nil
	}
	c := *l
	c.Views = append([]float64(nil), l.Views...)
	c.Buys = append([]float64(nil), l.Buys...)
	c.Fit = append([]float64(nil), l.Fit...)
	return &c
}

// Thompson prices by Thompson sampling over a ladder of prices (multiples
// of the product's base price), learning each rung's purchase probability
// per view online from the event stream, as in Ferreira, Simchi-Levi and
// Wang, "Online Network Revenue Management using Thompson Sampling"
// (Operations Research, 2018).
//
// On each view the product's next price is decided: for every rung in the
// product's price band (LearnPolicy) a purchase probability is drawn from
// its posterior (see draw), and the rung with the highest expected revenue
// per view, price × probability (or margin, (price − unit cost) ×
// probability), is shown. Rungs that look good are shown more; rungs that
// are uncertain still get tried now and then, so the strategy keeps
// learning.
//
// The policy makes it safe to run unattended: rungs outside the band are
// never shown; at most MaxChangesPerHour decisions change the price in an
// hour of event time (between them the price stays); what was learned is
// forgotten with a half-life of event time and moved with the list price;
// and when purchases stop arriving although the product's conversion says
// some were all but certain (a broken purchase feed, see fallback) the
// product falls back to its list price until purchases return.
//
// With an inventory plan and a known stock it is their inventory-aware
// variant (TS-update): the drawn probabilities go into a linear program
// that maximises expected revenue per view subject to selling no more
// per view than the stock left to sell divided by the views expected in
// the rest of the period, and the rung is drawn from the program's
// solution (a mix of at most two rungs). Scarce stock is thus rationed by
// price instead of selling out early at a price that is too low.
type Thompson struct {
	// Ladder holds the price multipliers of the base price, ascending.
	Ladder []float64
	// Pool is how many views' worth of weight each rung's prior gets from
	// the demand model fitted to the other rungs (> 0).
	Pool float64
}

// DefaultLadder spans half to about three times the base price (0.5× to
// 3.07×) in 22 steps of 9%, with the base price itself on it. The price
// band (LearnPolicy) picks the rungs a product may be shown: 0.84× to
// 1.295× with the default band.
func DefaultLadder() []float64 {
	l := make([]float64, 0, 22)
	for k := -8; k <= 13; k++ {
		l = append(l, math.Round(math.Pow(1.09, float64(k))*1000)/1000)
	}
	return l
}

// Name implements Strategy.
func (Thompson) Name() string { return "thompson" }

// init gives l arrays for the ladder, and moves what it learned to the
// rungs of the prices it was learned at when the base price changed.
func (s Thompson) init(l *Learning, base float64) {
	if len(l.Views) != len(s.Ladder) {
		l.Views = make([]float64, len(s.Ladder))
		l.Buys = make([]float64, len(s.Ladder))
		l.Arm = s.baseArm()
		l.Redraw = false
		l.Base, l.Fit = base, nil
	}
	switch {
	case l.Base == 0:
		// A state from before the base was kept: its counts are taken
		// as learned at the current base, and its fit (of the slope,
		// not of its log) is started again.
		l.Base, l.Fit = base, nil
	case l.Base != base && base > 0:
		s.rebase(l, base)
	}
}

// rebaseTolerance is how far (as a log ratio) the rung counts are moved to
// may be from the price they were learned at: ln 1.045, half a step of
// the default ladder. Counts with no rung that close are dropped.
const rebaseTolerance = 0.04402

// rebase moves l's counts, learned at the base price l.Base, to the rungs
// of the same prices at the new base: a count at rung m described shoppers
// shown m × l.Base, which is (m × l.Base / base) × base now. Left where
// they were, the counts would describe prices nobody was shown. The fit
// is started again (its slope is per multiple of the old base).
func (s Thompson) rebase(l *Learning, base float64) {
	r := l.Base / base
	var views, buys [maxRungs]float64
	for k, m := range s.Ladder {
		if l.Views[k] == 0 && l.Buys[k] == 0 {
			continue
		}
		j := s.nearest(m * r)
		if math.Abs(math.Log(s.Ladder[j]/(m*r))) <= rebaseTolerance {
			views[j] += l.Views[k]
			buys[j] += l.Buys[k]
		}
	}
	copy(l.Views, views[:len(s.Ladder)])
	copy(l.Buys, buys[:len(s.Ladder)])
	l.Arm = s.nearest(s.Ladder[l.Arm] * r)
	l.Base, l.Fit = base, nil
	l.Redraw = true
}

// baseArm is the rung closest to the base price.
func (s Thompson) baseArm() int { return s.nearest(1) }

func (s Thompson) nearest(mult float64) int {
	best, bd := 0, math.Inf(1)
	for k, m := range s.Ladder {
		if d := math.Abs(math.Log(m / mult)); d < bd {
			best, bd = k, d
		}
	}
	return best
}

// nearestIn is the rung in the band r closest to the multiple mult, or -1
// if the band holds no rung.
func (s Thompson) nearestIn(r *learnRules, mult float64) int {
	best, bd := -1, math.Inf(1)
	for k, m := range s.Ladder {
		if d := math.Abs(math.Log(m / mult)); d < bd && r.inBand(m) {
			best, bd = k, d
		}
	}
	return best
}

// Prior of the pooled demand model: purchase probability per view
// σ(a − b·x) at x times the base price, with b = e^β > 0, so that every
// draw has demand falling with price (a draw with demand rising would
// make the dearest rung look best, and was 16% of the draws with the
// former normal prior on b). β is normal around ln 2 (an elasticity of
// about 2 at the base price, typical of retail) with a standard deviation
// of 1: slopes from a seventh to seven times that are within two. a is
// centred so the model starts at the product's conversion, with a wide
// spread.
const (
	priorLogSlope    = math.Ln2
	priorLogSlopeVar = 1.0
	priorLevelVar    = 4.0
)

// draw draws a purchase probability per rung in the band r from the
// posterior (rungs outside it get 0: they are never chosen).
//
// The rungs share what they teach through a logistic demand model
// fitted to all of them (a maximum a posteriori fit by Fisher scoring,
// warm-started from the last one, with its Laplace approximation). Each
// rung's prior comes from that model fitted without the rung's own
// counts, which then update it once: the fit on all rungs would already
// hold the rung's data, and adding them again on top (as before) counted
// them twice and made the posterior over-confident. The leave-one-out fit
// is the full fit with rung k's term taken out by one Newton step from
// the full optimum (exact for a quadratic log-likelihood, and close for
// the logistic one once rungs have data), at the cost of a 2×2 solve per
// rung. A draw of it (one pair of normal variates shared by all rungs,
// so they move together as one model) gives the rung a prior mean worth
// Pool views: one purchase at a price thus says something about every
// other price, while a rung shown often enough follows its own data even
// where the model's shape is wrong.
func (s Thompson) draw(l *Learning, r *learnRules, theta []float64) {
	var views, buys float64
	for k := range s.Ladder {
		views, buys = views+l.Views[k], buys+l.Buys[k]
	}
	// The model starts at the product's conversion over all rungs so far:
	// an untried price is expected to sell like the product does, not at
	// a coin flip, which would make the dearest rungs look best until
	// each had been shown many times. (It centres a prior of variance 4
	// on the level only, weaker than a single view's weight on it.)
	mean := (buys + 1) / (views + 2)
	a0 := math.Log(mean/(1-mean)) + math.Exp(priorLogSlope)
	if len(l.Fit) != 2 {
		l.Fit = []float64{a0, priorLogSlope}
	}
	a, be := l.Fit[0], l.Fit[1]
	// curve evaluates the negative log posterior's gradient and Fisher
	// information at (a, be), and each rung's probability and weight.
	var p, w [maxRungs]float64
	curve := func() (ga, gb, haa, hab, hbb float64) {
		b := math.Exp(be)
		ga, gb = (a-a0)/priorLevelVar, (be-priorLogSlope)/priorLogSlopeVar
		haa, hbb = 1/priorLevelVar, 1/priorLogSlopeVar
		for k, x := range s.Ladder {
			n := l.Views[k]
			p[k], w[k] = sigmoid(a-b*x), 0
			if n == 0 {
				continue
			}
			res := n*p[k] - math.Min(l.Buys[k], n)
			// dη/da = 1, dη/dβ = −b·x for η = a − e^β·x.
			ga += res
			gb -= b * x * res
			w[k] = n * p[k] * (1 - p[k])
			haa += w[k]
			hab -= b * x * w[k]
			hbb += b * b * x * x * w[k]
		}
		return
	}
	for range 4 {
		ga, gb, haa, hab, hbb := curve()
		det := haa*hbb - hab*hab
		da, db := (hbb*ga-hab*gb)/det, (haa*gb-hab*ga)/det
		// Newton's method on a logistic likelihood can overshoot far
		// from the optimum; a bounded step keeps it on the way there.
		if step := math.Abs(da) + math.Abs(db); step > 1 {
			da, db = da/step, db/step
		}
		a, be = a-da, be-db
		if math.Abs(da)+math.Abs(db) < 1e-6 {
			break
		}
	}
	// A runaway slope (no data tie it down far from the prior) must not
	// overflow the next fit.
	be = math.Max(-20, math.Min(20, be))
	l.Fit[0], l.Fit[1] = a, be
	_, _, haa, hab, hbb := curve()
	b := math.Exp(be)
	z1, z2 := l.normal(), l.normal()
	for k, x := range s.Ladder {
		if !r.inBand(x) {
			theta[k] = 0
			continue
		}
		// Take rung k out: H₋ₖ = H − wₖ·u·uᵀ with u = (1, −b·x), and the
		// fit moves by −H₋ₖ⁻¹·∇ℓₖ, ∇ℓₖ = (yₖ − nₖ·pₖ)·u.
		u2 := -b * x
		kaa, kab, kbb := haa-w[k], hab-w[k]*u2, hbb-w[k]*u2*u2
		det := kaa*kbb - kab*kab
		caa, cab, cbb := kbb/det, -kab/det, kaa/det // H₋ₖ⁻¹
		yk, fk := 0.0, 0.0
		if n := l.Views[k]; n > 0 {
			yk = math.Min(l.Buys[k], n)
			fk = n - yk
		}
		res := yk - l.Views[k]*p[k]
		ma := a - (caa+cab*u2)*res
		mb := be - (cab+cbb*u2)*res
		// A draw from N((ma, mb), H₋ₖ⁻¹) through its Cholesky factor.
		la := math.Sqrt(caa)
		lb := cab / la
		lc := math.Sqrt(math.Max(cbb-lb*lb, 0))
		da, db := ma+la*z1, mb+lb*z1+lc*z2
		mu := math.Min(1-1e-6, math.Max(1e-6, sigmoid(da-math.Exp(math.Min(db, 20))*x)))
		theta[k] = l.beta(s.Pool*mu+yk, s.Pool*(1-mu)+fk)
	}
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// rules returns the product's learning rules: the Book's, or the
// defaults for a caller outside a Book.
func (in *Input) rules() *learnRules {
	if in.learn != nil {
		return in.learn
	}
	r := parseLearnRules(nil, LearnPolicy{})
	return &r
}

// Observe implements Learner.
func (s Thompson) Observe(in Input, t EventType, qty int32, shown float64) {
	l, base := in.State.Learn, in.Product.BasePrice
	s.init(l, base)
	l.forget(in.Now, in.rules().halfLife)
	arm := l.Arm
	if shown > 0 && base > 0 {
		arm = s.nearest(shown / base)
	}
	switch t {
	case View:
		l.Views[arm] += float64(qty)
		l.Redraw = true
		// A sold-out product's shoppers cannot buy: their views say
		// nothing about the purchase signal.
		if m := in.State.Market; m == nil || !m.StockKnown || m.Stock > 0 {
			l.Dry += float64(qty)
		}
	case Purchase:
		l.Buys[arm] += float64(qty)
		// A purchase without its view (a shop that sends only
		// purchases) still counts as one trial.
		if l.Buys[arm] > l.Views[arm] {
			l.Views[arm] = l.Buys[arm]
		}
		l.Dry = 0
		var views, buys float64
		for k := range s.Ladder {
			views, buys = views+l.Views[k], buys+l.Buys[k]
		}
		l.Rate = (buys + fallbackPriorBuys) / (views + fallbackPriorViews)
	}
}

// forget decays the counts to the event time at with half-life hl. Events
// that arrive out of order are counted as of the latest time seen.
func (l *Learning) forget(at, hl int64) {
	if at <= l.At {
		return
	}
	if l.At != 0 {
		if f := decayFactor(at-l.At, time.Duration(hl)); f < 1 {
			for k := range l.Views {
				l.Views[k] *= f
				l.Buys[k] *= f
			}
		}
	}
	l.At = at
}

// The fallback rule. The purchase signal has stopped when no purchase came
// in the Dry views since the last one although, at Rate (the product's
// purchases per view as learned up to that purchase), the chance of that
// many views without one is below fallbackP: (1 − Rate)^Dry < 0.1%, that
// is Dry > ln(1000) / −ln(1 − Rate); and at least fallbackMinViews views
// went without one. At a conversion of 5% that is 135 views, at 1% 688. A
// product that never sold has the rate of the prior, 1 purchase in 50
// views (2%, a typical shop's conversion): it falls back after 342 views
// without a purchase. The rate is the posterior mean before the drought
// on purpose: the posterior including the drought would fall with every
// view and never find the drought unlikely.
//
// The rule is tested after every purchase, so a product that sells well
// would meet a 0.1% drought by chance once in about a thousand purchases;
// the 100 views make that vanishingly rare for conversions above 7% (a
// broken feed stays broken: waiting for 100 views costs little).
const (
	fallbackP          = 0.001
	fallbackMinViews   = 100.0
	fallbackPriorBuys  = 1.0
	fallbackPriorViews = 50.0
)

// rate is the purchases per view the fallback rule expects.
func (l *Learning) rate() float64 {
	if l.Rate > 0 {
		return l.Rate
	}
	return fallbackPriorBuys / fallbackPriorViews
}

// NoPurchaseChance is the probability of the views since the last
// purchase all going without one, at the product's learned conversion.
func (l *Learning) NoPurchaseChance() float64 {
	return math.Exp(l.Dry * math.Log1p(-math.Min(l.rate(), 1-1e-9)))
}

// Fallback reports whether the purchase signal stopped: the product is
// shown its list price until a purchase arrives.
func (l *Learning) Fallback() bool {
	return l != nil && l.Dry >= fallbackMinViews && l.NoPurchaseChance() < fallbackP
}

// Fallback reports whether product i is priced by a learning strategy
// that fell back to its list price because its purchases stopped.
func (b *Book) Fallback(i int) bool { return b.learners[i] != nil && b.states[i].Learn.Fallback() }

// minPlanViews is how many views Thompson waits for before it trusts its
// estimate of the product's traffic for the inventory constraint.
const minPlanViews = 20

// Price implements Strategy: on the view after a redraw it draws the rung
// to show, if the change cap allows a change by then; otherwise it keeps
// showing the current one. Without a purchase signal it shows the list
// price. The price is always in the product's band.
func (s Thompson) Price(in Input) (float64, float64) {
	l, base := in.State.Learn, in.Product.BasePrice
	if l == nil { // no learning state (a caller outside a Book)
		return base, in.State.Demand.Total
	}
	r := in.rules()
	s.init(l, base)
	arm := l.Arm
	switch {
	case l.Fallback():
		// Safety first: the list price now, whatever the change cap.
		arm = s.baseArm()
	case l.Redraw && (l.Moved == 0 || l.At-l.Moved >= r.gap):
		l.Redraw = false
		var theta [maxRungs]float64
		s.draw(l, r, theta[:len(s.Ladder)])
		arm = s.decide(theta[:len(s.Ladder)], l, r, in)
	}
	if !r.inBand(s.Ladder[arm]) {
		// A band narrowed since the rung was chosen (or a state from
		// before bands): the nearest rung inside it, at once.
		if k := s.nearestIn(r, s.Ladder[arm]); k >= 0 {
			arm = k
		}
	}
	if arm != l.Arm {
		l.Arm, l.Moved = arm, l.At
	}
	// The band bounds the price even for a ladder with no rung in it.
	return base * r.clamp(s.Ladder[l.Arm]), in.State.Demand.Total
}

// maxRungs bounds a ladder, so the drawn probabilities live on the stack.
const maxRungs = 32

// decide picks the rung in the band r for drawn purchase probabilities
// theta: the best expected revenue (or margin) per view, or with an active
// selling plan the solution of the inventory-constrained program.
func (s Thompson) decide(theta []float64, l *Learning, r *learnRules, in Input) int {
	base, cost := in.Product.BasePrice, 0.0
	if r.margin {
		cost = in.Product.UnitCost
	}
	// value is what one view at rung k earns when it buys.
	value := func(k int) float64 { return s.Ladder[k]*base - cost }
	best, bv, top := -1, math.Inf(-1), -1
	for k, m := range s.Ladder {
		if !r.inBand(m) {
			continue
		}
		top = k
		if v := value(k) * theta[k]; v > bv {
			best, bv = k, v
		}
	}
	if best < 0 {
		return l.Arm // no rung in the band: Price clamps
	}
	sell := in.Selling
	if !sell.Active {
		return best
	}
	toSell := sell.ToSell()
	if toSell <= 0 {
		return top // the plan's target is reached: ration what is left
	}
	left := float64(sell.End - in.Now)
	if sell.Views < minPlanViews || sell.ViewRate <= 0 || left <= 0 {
		return best
	}
	// c: the units per view the stock allows for the rest of the period.
	c := toSell / (sell.ViewRate * left)
	if theta[best] <= c {
		return best // the unconstrained choice fits the stock
	}
	// The optimum of max sum v_k θ_k x_k s.t. sum θ_k x_k <= c,
	// sum x_k <= 1 lies on a vertex: one rung selling at most c, or two
	// rungs, one above c and one below, mixed to sell exactly c.
	hi, lo, x, val := top, top, 1.0, math.Inf(-1)
	for i, mi := range s.Ladder {
		if !r.inBand(mi) {
			continue
		}
		if theta[i] <= c {
			if v := value(i) * theta[i]; v > val {
				hi, lo, x, val = i, i, 1, v
			}
			continue
		}
		for j, mj := range s.Ladder {
			if theta[j] >= c || !r.inBand(mj) {
				continue
			}
			xi := (c - theta[j]) / (theta[i] - theta[j]) // share of rung i
			if v := xi*value(i)*theta[i] + (1-xi)*value(j)*theta[j]; v > val {
				hi, lo, x, val = i, j, xi, v
			}
		}
	}
	if math.IsInf(val, -1) {
		return top // every rung sells faster than the stock allows
	}
	if hi != lo && l.uniform() >= x {
		return lo
	}
	return hi
}

// next is splitmix64: tiny, fast, good enough for sampling, and its whole
// state is one word that fits in the persisted Learning.
func (l *Learning) next() uint64 {
	l.Rand += 0x9e3779b97f4a7c15
	z := l.Rand
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// uniform returns a float in (0, 1).
func (l *Learning) uniform() float64 {
	return (float64(l.next()>>11) + 0.5) / (1 << 53)
}

func (l *Learning) normal() float64 {
	// Box-Muller; the second variate is dropped to keep the state one word.
	return math.Sqrt(-2*math.Log(l.uniform())) * math.Cos(2*math.Pi*l.uniform())
}

// gamma draws from Gamma(a, 1) by Marsaglia and Tsang's method (a >= 1;
// smaller shapes are boosted by the usual U^(1/a) trick).
func (l *Learning) gamma(a float64) float64 {
	if a < 1 {
		return l.gamma(a+1) * math.Pow(l.uniform(), 1/a)
	}
	d := a - 1.0/3
	c := 1 / math.Sqrt(9*d)
	for {
		x := l.normal()
		v := 1 + c*x
		if v <= 0 {
			continue
		}
		v = v * v * v
		u := l.uniform()
		if u < 1-0.0331*x*x*x*x || math.Log(u) < 0.5*x*x+d*(1-v+math.Log(v)) {
			return d * v
		}
	}
}

// beta draws from Beta(a, b).
func (l *Learning) beta(a, b float64) float64 {
	x := l.gamma(a)
	return x / (x + l.gamma(b))
}

// DefaultThompson is the thompson strategy as shipped: the default ladder,
// rungs pooled through the demand model.
func DefaultThompson() Thompson { return Thompson{Ladder: DefaultLadder(), Pool: thompsonPool} }

// thompsonPool is the default Pool, chosen on the shipped scenarios
// (docs/SIMULATE.md).
const thompsonPool = 30
