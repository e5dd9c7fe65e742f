package experiment

import (
	"encoding/json"
	"math"
)

// Accumulator is what one arm has seen: plain sums, so two accumulators
// add (Add) and a store can persist each commit's delta exactly once with
// the events that fed it. The unit of analysis is the view: a visitor is
// counted once per view, and each purchase is taken as the outcome of one
// view. This is exact when every purchase follows a view of its own (as
// in the simulator and in most shop funnels); a shopper who buys several
// times after one view makes the variances below a little too small.
type Accumulator struct {
	Views     int64 `json:"views"`
	Purchases int64 `json:"purchases"`
	Units     int64 `json:"units"`
	// Revenue and Profit are sums over purchases of price × quantity
	// and (price − unit cost) × quantity; the Sq fields are the sums of
	// their squares, the second moments the variances need.
	Revenue   float64 `json:"revenue"`
	RevenueSq float64 `json:"revenue_sq"`
	Profit    float64 `json:"profit"`
	ProfitSq  float64 `json:"profit_sq"`
}

// View counts a visitor.
func (a *Accumulator) View() { a.Views++ }

// Purchase counts a purchase of qty units at price, each costing
// unitCost.
func (a *Accumulator) Purchase(price float64, qty int64, unitCost float64) {
	r := price * float64(qty)
	p := (price - unitCost) * float64(qty)
	a.Purchases++
	a.Units += qty
	a.Revenue += r
	a.RevenueSq += r * r
	a.Profit += p
	a.ProfitSq += p * p
}

// Add adds b to a.
func (a *Accumulator) Add(b Accumulator) {
	a.Views += b.Views
	a.Purchases += b.Purchases
	a.Units += b.Units
	a.Revenue += b.Revenue
	a.RevenueSq += b.RevenueSq
	a.Profit += b.Profit
	a.ProfitSq += b.ProfitSq
}

// IsZero reports whether nothing was counted.
func (a Accumulator) IsZero() bool { return a == Accumulator{} }

// moments returns the sum and the sum of squares of the metric per view.
func (a Accumulator) moments(m Metric) (s1, s2 float64) {
	switch m {
	case Conversion:
		// A purchase is a 1, so its square is 1 too.
		return float64(a.Purchases), float64(a.Purchases)
	case Profit:
		return a.Profit, a.ProfitSq
	}
	return a.Revenue, a.RevenueSq
}

// meanVar returns the metric's mean per view and the variance of that
// mean (the sample variance over n).
func (a Accumulator) meanVar(m Metric) (mean, v float64) {
	n := float64(a.Views)
	if n < 2 {
		return 0, math.Inf(1)
	}
	s1, s2 := a.moments(m)
	mean = s1 / n
	sv := (s2 - s1*mean) / (n - 1)
	if sv < 0 { // rounding
		sv = 0
	}
	return mean, sv / n
}

// Test constants. The mixture's spread is set relative to the baseline's
// mean, so one value fits every catalog and currency: the test is most
// sensitive to lifts of about MixtureLift and still valid for any other.
const (
	// MixtureLift is the standard deviation of the normal mixture over
	// the difference, as a fraction of the baseline's mean (τ in
	// Johari et al.): price experiments look for lifts of a few percent.
	MixtureLift = 0.05
	// MinViews is how many views every arm needs before the test may
	// reject: below it the plug-in variance is too rough to trust.
	MinViews = 100
)

// Interval is an estimate with the bounds of its confidence interval.
type Interval struct {
	Estimate float64 `json:"estimate"`
	Low      float64 `json:"low"`
	High     float64 `json:"high"`
}

// MarshalJSON writes an unbounded end (too little data yet) as null:
// JSON has no infinity.
func (iv Interval) MarshalJSON() ([]byte, error) {
	num := func(x float64) *float64 {
		if math.IsInf(x, 0) || math.IsNaN(x) {
			return nil
		}
		return &x
	}
	return json.Marshal(struct {
		Estimate float64  `json:"estimate"`
		Low      *float64 `json:"low"`
		High     *float64 `json:"high"`
	}{iv.Estimate, num(iv.Low), num(iv.High)})
}

// ArmReadout is one arm's figures.
type ArmReadout struct {
	Name string `json:"name"`
	Accumulator
	// Per visitor, with always-valid intervals at the experiment's
	// level (per arm, not corrected for the number of arms).
	Conversion        Interval `json:"conversion"`
	RevenuePerVisitor Interval `json:"revenue_per_visitor"`
	ProfitPerVisitor  Interval `json:"profit_per_visitor"`
	// Difference is the arm's metric less the baseline's, with its
	// always-valid interval at the corrected level; Lift is that
	// difference as a fraction of the baseline's metric. Both are unset
	// for the baseline.
	Difference *Interval `json:"difference,omitempty"`
	Lift       *Interval `json:"lift,omitempty"`
	// PValue is the always-valid p-value against the baseline (the
	// smallest so far: it never rises), compared with Alpha divided by
	// the number of comparisons; 1 for the baseline.
	PValue float64 `json:"p_value"`
	// Significant reports PValue ≤ Alpha / (arms − 1).
	Significant bool `json:"significant"`
}

// Readout is an experiment's results at one look.
type Readout struct {
	Metric Metric  `json:"metric"`
	Alpha  float64 `json:"alpha"`
	// Level is the level each comparison is tested at: Alpha divided by
	// the number of comparisons (Bonferroni), so the chance of any false
	// winner stays at most Alpha.
	Level float64      `json:"level"`
	Arms  []ArmReadout `json:"arms"`
	// Winner is the name of the arm to promote once the test decides:
	// the best arm significantly better than the baseline, or the
	// baseline when every other arm is significantly worse; empty while
	// undecided.
	Winner string `json:"winner,omitempty"`
}

// Read computes the readout of a normalized definition from its arms'
// accumulators (in the definition's order). prev is the previous look's
// readout, or nil: its p-values carry over, since an always-valid p-value
// is the smallest one seen (once a difference is shown it stays shown).
// Looking is free: Read may be called after every event.
func Read(d *Definition, arms []Accumulator, prev *Readout) Readout {
	k := len(d.Arms)
	r := Readout{Metric: d.Metric, Alpha: d.Alpha, Level: d.Alpha / float64(max(1, k-1)), Arms: make([]ArmReadout, k)}
	base := Accumulator{}
	if len(arms) > 0 {
		base = arms[0]
	}
	m0, v0 := base.meanVar(d.Metric)
	bestUp, down := -1, 0
	for i := range k {
		var a Accumulator
		if i < len(arms) {
			a = arms[i]
		}
		ar := ArmReadout{Name: d.Arms[i].Name, Accumulator: a, PValue: 1}
		ar.Conversion = interval(a, Conversion, d.Alpha)
		ar.RevenuePerVisitor = interval(a, Revenue, d.Alpha)
		ar.ProfitPerVisitor = interval(a, Profit, d.Alpha)
		if i > 0 {
			mi, vi := a.meanVar(d.Metric)
			diff, v, tau2 := mi-m0, vi+v0, sq(MixtureLift*m0)
			p := 1.0
			if a.Views >= MinViews && base.Views >= MinViews {
				p = math.Min(1, math.Exp(-logLR(diff, v, tau2)))
			}
			if prev != nil && i < len(prev.Arms) {
				p = math.Min(p, prev.Arms[i].PValue)
			}
			ar.PValue = p
			ar.Significant = p <= r.Level
			h := halfWidth(v, tau2, r.Level)
			ar.Difference = &Interval{Estimate: diff, Low: diff - h, High: diff + h}
			if m0 != 0 {
				ar.Lift = &Interval{Estimate: diff / m0, Low: (diff - h) / math.Abs(m0), High: (diff + h) / math.Abs(m0)}
			}
			if ar.Significant {
				if diff > 0 {
					if bestUp < 0 || diff > r.Arms[bestUp].Difference.Estimate {
						bestUp = i
					}
				} else {
					down++
				}
			}
		}
		r.Arms[i] = ar
	}
	switch {
	case bestUp > 0:
		r.Winner = r.Arms[bestUp].Name
	case k > 1 && down == k-1:
		r.Winner = r.Arms[0].Name
	}
	return r
}

// logLR is the log of the mixture likelihood ratio of the mSPRT for a
// normal estimate diff with variance v, against a difference of 0, mixing
// over differences drawn from N(0, tau2):
//
//	Λ = sqrt(v/(v+τ²)) · exp(diff² τ² / (2 v (v+τ²)))
//
// Under no difference Λ is a martingale with mean 1 as evidence accrues,
// so by Ville's inequality it ever reaches 1/α with chance at most α: the
// always-valid p-value is the smallest 1/Λ seen. The estimate is normal by
// the central limit theorem and v is the plug-in (sample) variance, so the
// guarantee is asymptotic; MinViews keeps the earliest looks out.
func logLR(diff, v, tau2 float64) float64 {
	if !(v > 0) || math.IsInf(v, 0) || !(tau2 > 0) {
		return 0
	}
	return 0.5*math.Log(v/(v+tau2)) + diff*diff*tau2/(2*v*(v+tau2))
}

// halfWidth is the half-width of the always-valid confidence interval
// (the confidence sequence) the mSPRT gives by inversion: every difference
// it would not reject at level alpha,
//
//	sqrt(v (v+τ²)/τ² · (2 ln(1/α) + ln((v+τ²)/v))).
//
// It is wider than a fixed-horizon interval, the price of looking at will.
func halfWidth(v, tau2, alpha float64) float64 {
	if !(v > 0) || math.IsInf(v, 0) || !(tau2 > 0) {
		return math.Inf(1)
	}
	return math.Sqrt(v * (v + tau2) / tau2 * (2*math.Log(1/alpha) + math.Log((v+tau2)/v)))
}

// interval is an arm's always-valid interval for a metric per view, the
// mixture's spread MixtureLift of its own mean. The interval of an arm
// without a purchase is [0, +Inf].
func interval(a Accumulator, m Metric, alpha float64) Interval {
	mean, v := a.meanVar(m)
	h := halfWidth(v, sq(MixtureLift*mean), alpha)
	low := mean - h
	if m != Profit { // revenue and conversion are never negative
		low = math.Max(0, low)
	}
	return Interval{Estimate: mean, Low: low, High: mean + h}
}

func sq(x float64) float64 { return x * x }
