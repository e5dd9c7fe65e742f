package pricing

import (
	"math"
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
// randomness comes from the state's own generator, so that replaying the
// same events gives the same prices.
type Learner interface {
	Strategy
	// Observe records an event: t of qty units, when the shopper was shown
	// the price shown (0: unknown, take the current price).
	Observe(l *Learning, base float64, t EventType, qty int32, shown float64)
}

// Learning is a learner's per-product state: per price arm (a rung of the
// strategy's ladder) the views it got and the purchases they led to.
type Learning struct {
	// Arm is the arm currently shown.
	Arm int `json:"arm"`
	// Views and Buys per arm.
	Views []float64 `json:"views"`
	Buys  []float64 `json:"buys"`
	// Redraw is set by a view: the next shopper gets a fresh decision.
	Redraw bool `json:"redraw"`
	// Rand is the state of the product's random generator (splitmix64).
	Rand uint64 `json:"rand"`
	// Fit is the pooled demand model's last fit (level, slope), the
	// starting point of the next.
	Fit []float64 `json:"fit,omitempty"`
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
// On each view the product's next price is decided: for every rung a
// purchase probability is drawn from its Beta posterior (a prior drawn
// from a demand model fitted to all rungs, see draw, updated with the
// rung's own views and purchases), and the rung with the highest price ×
// probability, the expected revenue per view, is shown.
// Rungs that look good are shown more; rungs that are uncertain still get
// tried now and then, so the strategy keeps learning.
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
	// the demand model fitted to all rungs (> 0).
	Pool float64
}

// DefaultLadder spans half to about three times the base price (0.5× to
// 3.07×) in 22 steps of 9%, with the base price itself on it.
func DefaultLadder() []float64 {
	l := make([]float64, 0, 22)
	for k := -8; k <= 13; k++ {
		l = append(l, math.Round(math.Pow(1.09, float64(k))*1000)/1000)
	}
	return l
}

// Name implements Strategy.
func (Thompson) Name() string { return "thompson" }

func (s Thompson) init(l *Learning) {
	if len(l.Views) != len(s.Ladder) {
		l.Views = make([]float64, len(s.Ladder))
		l.Buys = make([]float64, len(s.Ladder))
		l.Arm = s.baseArm()
		l.Redraw = false
	}
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

// Prior of the pooled demand model: purchase probability per view
// σ(a − b·x) at x times the base price. b, the slope, starts at 2 (an
// elasticity of about 2 at the base price, typical of retail) with a wide
// spread; a is centred so the model starts at the product's conversion.
const (
	priorSlope    = 2.0
	priorSlopeVar = 4.0
	priorLevelVar = 4.0
)

// draw draws a purchase probability per rung from the posterior.
//
// The rungs share what they teach through a logistic demand model fitted
// to all of them (a maximum a posteriori fit by Newton's method, warm-started
// from the last one, with its Laplace approximation): a draw of the model
// gives each rung a prior mean, worth Pool views, which the rung's own
// views and purchases then update. One purchase at a price thus says
// something about every price, so far fewer views go to exploring, while
// a rung shown often enough follows its own data even where the model's
// shape is wrong.
func (s Thompson) draw(l *Learning, theta []float64) {
	var views, buys float64
	for k := range s.Ladder {
		views, buys = views+l.Views[k], buys+l.Buys[k]
	}
	// The model starts at the product's conversion over all rungs so far:
	// an untried price is expected to sell like the product does, not at
	// a coin flip, which would make the dearest rungs look best until
	// each had been shown many times.
	mean := (buys + 1) / (views + 2)
	a0 := math.Log(mean/(1-mean)) + priorSlope
	if len(l.Fit) != 2 {
		l.Fit = []float64{a0, priorSlope}
	}
	a, b := l.Fit[0], l.Fit[1]
	var haa, hab, hbb float64
	for range 4 {
		ga, gb := (a-a0)/priorLevelVar, (b-priorSlope)/priorSlopeVar
		haa, hab, hbb = 1/priorLevelVar, 0, 1/priorSlopeVar
		for k, x := range s.Ladder {
			n := l.Views[k]
			if n == 0 {
				continue
			}
			p := sigmoid(a - b*x)
			r := n*p - math.Min(l.Buys[k], n)
			ga += r
			gb -= x * r
			w := n * p * (1 - p)
			haa += w
			hab -= x * w
			hbb += x * x * w
		}
		det := haa*hbb - hab*hab
		da, db := (hbb*ga-hab*gb)/det, (haa*gb-hab*ga)/det
		// Newton's method on a logistic likelihood can overshoot far
		// from the optimum; a bounded step keeps it on the way there.
		if step := math.Abs(da) + math.Abs(db); step > 1 {
			da, db = da/step, db/step
		}
		a, b = a-da, b-db
		if math.Abs(da)+math.Abs(db) < 1e-6 {
			break
		}
	}
	l.Fit[0], l.Fit[1] = a, b
	// A draw from N((a, b), H⁻¹) through the Cholesky factor of H⁻¹.
	det := haa*hbb - hab*hab
	caa, cab, cbb := hbb/det, -hab/det, haa/det
	la := math.Sqrt(caa)
	lb := cab / la
	lc := math.Sqrt(math.Max(cbb-lb*lb, 0))
	z1, z2 := l.normal(), l.normal()
	da, db := a+la*z1, b+lb*z1+lc*z2
	for k, x := range s.Ladder {
		mu := math.Min(1-1e-6, math.Max(1e-6, sigmoid(da-db*x)))
		theta[k] = l.beta(s.Pool*mu+l.Buys[k], s.Pool*(1-mu)+math.Max(0, l.Views[k]-l.Buys[k]))
	}
}

func sigmoid(z float64) float64 { return 1 / (1 + math.Exp(-z)) }

// Observe implements Learner.
func (s Thompson) Observe(l *Learning, base float64, t EventType, qty int32, shown float64) {
	s.init(l)
	arm := l.Arm
	if shown > 0 && base > 0 {
		arm = s.nearest(shown / base)
	}
	switch t {
	case View:
		l.Views[arm] += float64(qty)
		l.Redraw = true
	case Purchase:
		l.Buys[arm] += float64(qty)
		// A purchase without its view (a shop that sends only
		// purchases) still counts as one trial.
		if l.Buys[arm] > l.Views[arm] {
			l.Views[arm] = l.Buys[arm]
		}
	}
}

// minPlanViews is how many views Thompson waits for before it trusts its
// estimate of the product's traffic for the inventory constraint.
const minPlanViews = 20

// Price implements Strategy: on the view after a redraw it draws the rung
// to show; otherwise it keeps showing the current one.
func (s Thompson) Price(in Input) (float64, float64) {
	l, base := in.State.Learn, in.Product.BasePrice
	if l == nil { // no learning state (a caller outside a Book)
		return base, in.State.Demand.Total
	}
	s.init(l)
	if l.Redraw {
		l.Redraw = false
		var theta [maxRungs]float64
		s.draw(l, theta[:len(s.Ladder)])
		l.Arm = s.decide(theta[:len(s.Ladder)], l, in)
	}
	return base * s.Ladder[l.Arm], in.State.Demand.Total
}

// maxRungs bounds a ladder, so the drawn probabilities live on the stack.
const maxRungs = 32

// decide picks the rung for drawn purchase probabilities theta: the best
// expected revenue per view, or with an active selling plan the solution
// of the inventory-constrained program.
func (s Thompson) decide(theta []float64, l *Learning, in Input) int {
	best, bv := 0, -1.0
	for k, m := range s.Ladder {
		if v := m * theta[k]; v > bv {
			best, bv = k, v
		}
	}
	sell := in.Selling
	if !sell.Active {
		return best
	}
	top := len(s.Ladder) - 1
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
	// The optimum of max sum p_k θ_k x_k s.t. sum θ_k x_k <= c,
	// sum x_k <= 1 lies on a vertex: one rung selling at most c, or two
	// rungs, one above c and one below, mixed to sell exactly c.
	hi, lo, x, val := top, top, 1.0, -1.0
	for i := range s.Ladder {
		if theta[i] <= c {
			if v := s.Ladder[i] * theta[i]; v > val {
				hi, lo, x, val = i, i, 1, v
			}
			continue
		}
		for j := range s.Ladder {
			if theta[j] >= c {
				continue
			}
			xi := (c - theta[j]) / (theta[i] - theta[j]) // share of rung i
			if v := xi*s.Ladder[i]*theta[i] + (1-xi)*s.Ladder[j]*theta[j]; v > val {
				hi, lo, x, val = i, j, xi, v
			}
		}
	}
	if val < 0 {
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
