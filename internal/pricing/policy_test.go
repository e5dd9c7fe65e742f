package pricing

import (
	"encoding/hex"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"
	"time"
)

// TestThompsonNeverLeavesTheBand is the band's property: with the safe
// defaults no shopper is ever shown a price outside 0.8 to 1.3 × the list
// price, whatever the event stream does: demand falling or rising with
// price, purchases that never come or come without views, views claiming
// any price, stock selling out and the selling plan's target reached
// (where the strategy rations at its dearest rung), ticks, and the list
// price changing.
func TestThompsonNeverLeavesTheBand(t *testing.T) {
	for seed := range uint64(40) {
		r := rand.New(rand.NewPCG(seed, 99))
		cfg := DefaultConfig()
		cfg.DefaultStrategy = "thompson"
		base := RoundCents(1 + r.Float64()*499)
		p := Product{ID: "P", BasePrice: base}
		if seed%2 == 0 {
			p.Inventory = &InventoryPlan{PeriodStart: time.Unix(0, t0).UTC(), PeriodEnd: time.Unix(0, t0).Add(48 * time.Hour).UTC(), Repeat: true}
		}
		b := newBook(t, cfg, p)
		// How shoppers buy: falling with price, rising with it (the
		// draws that made the dearest rung look best), never, always.
		kind := seed % 4
		conv := func(price float64) float64 {
			x := price / base
			switch kind {
			case 0:
				return sigmoid(1 - 2*x)
			case 1:
				return math.Min(0.9, 0.05*x*x)
			case 2:
				return 0
			}
			return 0.3
		}
		at := t0
		for k := range 1500 {
			at += int64(r.ExpFloat64() * float64(5*time.Minute))
			shown := b.State(0).Price
			switch op := r.IntN(100); {
			case op < 75:
				claim := shown
				if r.IntN(10) == 0 {
					claim = RoundCents(r.Float64() * 5 * base) // a view claiming any price (or none)
				}
				b.ApplyShown(0, View, 1+int32(r.IntN(3)), claim, at)
				if r.Float64() < conv(shown) {
					b.ApplyShown(0, Purchase, 1+int32(r.IntN(3)), claim, at)
				}
			case op < 80:
				b.ApplyShown(0, Purchase, 1, 0, at) // a purchase without its view
			case op < 88:
				b.SetStock(0, float64(r.IntN(3)), at) // mostly sold out
			case op < 94:
				b.Tick(0, at)
			default:
				// A new list price, carried by the next event.
				base = RoundCents(1 + r.Float64()*499)
				b.SetBasePrice(0, base)
				b.ApplyShown(0, View, 1, 0, at)
			}
			got := b.State(0).Price
			if lo, hi := RoundCents(DefaultBandLow*base), RoundCents(DefaultBandHigh*base); got < lo || got > hi {
				t.Fatalf("seed %d, event %d: price %v outside the band %v to %v around the list price %v (learning %+v)",
					seed, k, got, lo, hi, base, b.State(0).Learn)
			}
		}
	}
}

// TestThompsonPosteriorCountsDataOnce: a rung's own views and purchases
// enter its posterior once. With no other rung shown, nothing but the
// rung's data (and a vague prior) speaks for its price, so its posterior
// may not be narrower than those data alone allow: Beta(y+1, n−y+1). The
// former prior, from a fit to all rungs that included the rung's own
// data, counted them twice: 30 views with 3 purchases gave draws with a
// standard deviation of 0.049 where the data allow 0.058.
//
// And pooling still works: a rung never shown, between two rungs shown
// 2,000 times each at a 10% conversion, is drawn near 10%.
func TestThompsonPosteriorCountsDataOnce(t *testing.T) {
	th := DefaultThompson()
	r := &learnRules{lo: 0.5, hi: 3.07}
	k0 := th.baseArm()
	l := &Learning{Rand: 11, Views: make([]float64, len(th.Ladder)), Buys: make([]float64, len(th.Ladder))}
	l.Views[k0], l.Buys[k0] = 30, 3
	theta := make([]float64, len(th.Ladder))
	const n = 20000
	var s, sq float64
	for range n {
		th.draw(l, r, theta)
		s += theta[k0]
		sq += theta[k0] * theta[k0]
	}
	sd := math.Sqrt(sq/n - (s/n)*(s/n))
	a, bb := 4.0, 28.0
	want := math.Sqrt(a * bb / ((a + bb) * (a + bb) * (a + bb + 1)))
	if sd < 0.95*want {
		t.Errorf("a rung with 30 views and 3 purchases and no other data: posterior sd %.4f, below the %.4f its data allow: data counted twice", sd, want)
	}
	l = &Learning{Rand: 12, Views: make([]float64, len(th.Ladder)), Buys: make([]float64, len(th.Ladder))}
	for _, k := range []int{k0 - 1, k0 + 1} {
		l.Views[k], l.Buys[k] = 2000, 200
	}
	s, sq = 0, 0
	for range n {
		th.draw(l, r, theta)
		s += theta[k0]
		sq += theta[k0] * theta[k0]
	}
	mean, sd := s/n, math.Sqrt(sq/n-(s/n)*(s/n))
	if math.Abs(mean-0.1) > 0.02 || sd > 0.06 {
		t.Errorf("a rung never shown between two at 10%%: drawn mean %.3f sd %.3f, want about 0.1 and narrower than 0.06", mean, sd)
	}
}

// TestThompsonSlopeKeepsDemandFalling: every draw of the demand model has
// demand falling with price. With a prior worth ten million views, each
// rung's draw is the model's curve; with no data the former normal prior
// on the slope, N(2, 4), drew a rising curve one time in six, and rising
// demand makes the dearest price look best.
func TestThompsonSlopeKeepsDemandFalling(t *testing.T) {
	th := Thompson{Ladder: DefaultLadder(), Pool: 1e7}
	r := &learnRules{lo: 0.5, hi: 3.07}
	l := &Learning{Rand: 5, Views: make([]float64, len(th.Ladder)), Buys: make([]float64, len(th.Ladder))}
	theta := make([]float64, len(th.Ladder))
	last := len(th.Ladder) - 1
	for d := range 5000 {
		th.draw(l, r, theta)
		if theta[last] > theta[0]+1e-3 {
			t.Fatalf("draw %d: purchase probability %.4f at %v× base above %.4f at %v×: demand rising with price", d, theta[last], th.Ladder[last], theta[0], th.Ladder[0])
		}
	}
}

// TestThompsonFallsBackToListPrice: when purchases stop although the
// product's conversion made some all but certain (a broken purchase feed),
// the product shows its list price and says why, until a purchase comes.
func TestThompsonFallsBackToListPrice(t *testing.T) {
	b := thompsonBook(t, Guardrails{}, nil)
	bandit(t, b, 3000, time.Minute, func(float64) float64 { return 0.1 }, 9)
	at := t0 + 3000*int64(time.Minute)
	l := b.State(0).Learn
	// The buyer of the last purchase may have been shown one view ago or
	// more: count the drought from here.
	b.ApplyShown(0, Purchase, 1, 0, at)
	rate := l.Rate
	if rate < 0.07 || rate > 0.13 {
		t.Fatalf("learned conversion %v, want about 0.1", rate)
	}
	need := int(max(fallbackMinViews, math.Ceil(math.Log(1/fallbackP)/-math.Log1p(-rate))))
	for k := 1; k <= need; k++ {
		at += int64(time.Minute)
		b.ApplyShown(0, View, 1, b.State(0).Price, at)
		if got := b.Fallback(0); got != (k == need) {
			t.Fatalf("after %d views without a purchase (fall back at %d): fallback %v", k, need, got)
		}
	}
	e := b.Explain(0)
	if b.State(0).Price != 100 || e.Learner == nil || !e.Learner.Fallback || !strings.Contains(e.Learner.Detail, "purchase events") ||
		e.Learner.NoPurchaseChance >= fallbackP || e.Learner.ExpectedPurchases < 6.5 {
		t.Fatalf("in fallback: price %v, learner %+v", b.State(0).Price, e.Learner)
	}
	for range 200 { // it stays at the list price while the drought lasts
		at += int64(time.Minute)
		b.ApplyShown(0, View, 1, b.State(0).Price, at)
		if b.State(0).Price != 100 {
			t.Fatalf("price %v during the drought, want the list price", b.State(0).Price)
		}
	}
	b.ApplyShown(0, Purchase, 1, 100, at)
	if b.Fallback(0) {
		t.Fatal("still in fallback after a purchase")
	}
	moved := false
	for k := range 600 { // learning resumes
		at += int64(time.Minute)
		b.ApplyShown(0, View, 1, b.State(0).Price, at)
		if k%10 == 0 {
			b.ApplyShown(0, Purchase, 1, b.State(0).Price, at)
		}
		moved = moved || b.State(0).Price != 100
	}
	if !moved {
		t.Error("the price never left the list price after purchases returned")
	}

	// A product that never sold falls back after 342 views (the prior's
	// 2% conversion), and sold out it does not: its views cannot buy.
	b = thompsonBook(t, Guardrails{}, nil)
	for k := 1; k <= 342; k++ {
		b.ApplyShown(0, View, 1, 0, t0+int64(k)*int64(time.Minute))
		if b.Fallback(0) != (k == 342) {
			t.Fatalf("never sold, %d views: fallback %v, want it at 342", k, b.Fallback(0))
		}
	}
	b = thompsonBook(t, Guardrails{}, nil)
	b.SetStock(0, 0, t0)
	for k := 1; k <= 1000; k++ {
		b.ApplyShown(0, View, 1, 0, t0+int64(k)*int64(time.Minute))
	}
	if b.Fallback(0) {
		t.Error("a sold-out product fell back: its views cannot buy")
	}
}

// TestThompsonLearnsInEventTime: forgetting and the change cap run on the
// events' timestamps, so the same events give the same learning and the
// same prices however late they are processed; a week of event time
// halves the counts.
func TestThompsonLearnsInEventTime(t *testing.T) {
	a, b := thompsonBook(t, Guardrails{}, nil), thompsonBook(t, Guardrails{}, nil)
	r := rand.New(rand.NewPCG(1, 2))
	lag := rand.New(rand.NewPCG(3, 4))
	at := t0
	for k := range 3000 {
		at += int64(r.ExpFloat64() * float64(2*time.Minute))
		p := a.State(0).Price
		if q := b.State(0).Price; q != p {
			t.Fatalf("event %d: price %v, processed later %v", k, p, q)
		}
		buy := r.Float64() < 0.3-p/1000
		a.ApplyAt(0, View, 1, p, at, at)
		b.ApplyAt(0, View, 1, p, at, at+int64(lag.ExpFloat64()*float64(time.Hour)))
		if buy {
			a.ApplyAt(0, Purchase, 1, p, at, at)
			b.ApplyAt(0, Purchase, 1, p, at, at+int64(time.Hour))
		}
		if k%50 == 0 {
			b.Tick(0, at+int64(lag.ExpFloat64()*float64(time.Hour)))
		}
	}
	if la, lb := a.State(0).Learn, b.State(0).Learn; !reflect.DeepEqual(la, lb) {
		t.Fatalf("the same events processed at other times learned differently:\n%+v\n%+v", la, lb)
	}
	before := sum(a.State(0).Learn.Views)
	a.ApplyShown(0, View, 1, a.State(0).Price, at+int64(DefaultLearnHalfLife))
	if got, want := sum(a.State(0).Learn.Views), before/2+1; math.Abs(got-want) > 1e-6 {
		t.Errorf("views a half-life later: %v, want %v", got, want)
	}
}

// TestThompsonCapsPriceChanges: with the default cap of 4 changes an hour,
// learning moves the price at most once in 15 minutes of event time, and
// does move it.
func TestThompsonCapsPriceChanges(t *testing.T) {
	for _, c := range []struct {
		pol *LearnPolicy
		gap time.Duration
	}{{nil, 15 * time.Minute}, {&LearnPolicy{MaxChangesPerHour: 60}, time.Minute}} {
		b := thompsonBook(t, Guardrails{}, c.pol)
		r := rand.New(rand.NewPCG(8, 8))
		at, last, changes := t0, int64(0), 0
		for k := range 5000 {
			at += int64(r.ExpFloat64() * float64(10*time.Second))
			p := b.State(0).Price
			changed := b.ApplyShown(0, View, 1, p, at)
			if r.Float64() < 0.2 {
				changed = b.ApplyShown(0, Purchase, 1, p, at) || changed
			}
			if !changed {
				continue
			}
			if last != 0 && at-last < int64(c.gap) {
				t.Fatalf("cap %v: event %d changed the price %v after the last change", c.gap, k, time.Duration(at-last))
			}
			last = at
			changes++
		}
		if hours := float64(at-t0) / float64(time.Hour); float64(changes) < hours*float64(time.Hour/c.gap)/4 {
			t.Errorf("cap %v: %d changes in %.1f hours: learning hardly moves", c.gap, changes, hours)
		}
	}
}

// TestThompsonMovesCountsWithTheListPrice: a new list price moves what was
// learned to the rungs of the prices it was learned at.
func TestThompsonMovesCountsWithTheListPrice(t *testing.T) {
	b := thompsonBook(t, Guardrails{}, nil)
	th := DefaultThompson()
	k0 := th.baseArm()
	l := b.State(0).Learn
	th.init(l, 100)
	l.Views[k0], l.Buys[k0] = 50, 5     // at 100
	l.Views[k0+1], l.Buys[k0+1] = 20, 1 // at 109
	b.SetBasePrice(0, 109)
	b.Tick(0, t0+1)
	if l.Views[k0-1] != 50 || l.Buys[k0-1] != 5 || l.Views[k0] != 20 || l.Buys[k0] != 1 || sum(l.Views) != 70 || l.Base != 109 {
		t.Fatalf("after the list price 100 → 109: views %v buys %v, want 100's counts at 0.917× and 109's at 1×", l.Views, l.Buys)
	}
	b.SetBasePrice(0, 130.8) // 109 is 0.833× of it, next to the 0.842 rung
	b.Tick(0, t0+2)
	if l.Views[k0-2] != 20 || l.Views[k0-3] != 50 || sum(l.Views) != 70 {
		t.Fatalf("after 109 → 130.8: views %v", l.Views)
	}
	if p := b.State(0).Price; p < 0.8*130.8 || p > 1.3*130.8 {
		t.Fatalf("price %v outside the band of the new list price", p)
	}
}

// TestLearnPolicy: the policy is checked; a product's policy beats the
// catalog's, which beats the built-in one; and the explanation says what
// applies.
func TestLearnPolicy(t *testing.T) {
	for _, bad := range []LearnPolicy{{BandLow: 1.1}, {BandLow: -0.1}, {BandLow: math.NaN()}, {BandHigh: 0.9},
		{BandHigh: 11}, {HalfLife: Duration(time.Second)}, {MaxChangesPerHour: -1}, {MaxChangesPerHour: 3601}, {Objective: "profit"}} {
		if err := (Product{ID: "P", BasePrice: 1, Learning: &bad}).Validate(); err == nil || !strings.HasPrefix(err.Error(), "learning: ") {
			t.Errorf("%+v: %v", bad, err)
		}
		cfg := DefaultConfig()
		cfg.Learning = bad
		if err := cfg.Validate(); err == nil {
			t.Errorf("catalog default %+v accepted", bad)
		}
	}
	cfg := DefaultConfig()
	cfg.DefaultStrategy = "thompson"
	cfg.Learning = LearnPolicy{BandHigh: 1.5, Objective: ObjectiveMargin}
	b := newBook(t, cfg, Product{ID: "A", BasePrice: 100, UnitCost: 40}, Product{ID: "B", BasePrice: 100, Learning: &LearnPolicy{BandLow: 0.9, MaxChangesPerHour: 2}})
	ea, eb := b.Explain(0).Learner, b.Explain(1).Learner
	if ea == nil || ea.BandLow != 0.8 || ea.BandHigh != 1.5 || ea.BandHighPrice != 150 || ea.Objective != "margin" || ea.MaxChangesPerHour != 4 || ea.HalfLife != "168h0m0s" {
		t.Errorf("catalog default: %+v", ea)
	}
	if eb == nil || eb.BandLow != 0.9 || eb.BandHigh != 1.5 || eb.Objective != "revenue" || eb.MaxChangesPerHour != 2 || eb.Fallback {
		t.Errorf("product's own: %+v (margin without a unit cost is revenue)", eb)
	}
	in := 0
	for _, r := range b.Explain(1).Learning {
		if r.InBand {
			in++
			if r.Price < 90 || r.Price > 150 {
				t.Errorf("rung %v marked in the band 90 to 150", r.Price)
			}
		}
	}
	if in != 6 { // 0.917 … 1.412
		t.Errorf("%d rungs in the band 0.9 to 1.5, want 6", in)
	}
	p := Product{ID: "C", BasePrice: 1, Learning: &LearnPolicy{BandHigh: 2, HalfLife: Duration(time.Hour)}}
	q := p
	q.SetPlansJSON(p.PlansJSON())
	if !reflect.DeepEqual(p, q) {
		t.Errorf("the policy does not survive a store's plans column: %+v", q.Learning)
	}
}

// oldLearningState is a State with learning as AppendBinary encoded it
// before the learning policy (no base, times or purchase signal).
const oldLearningState = "0102000000000000284000000000000027408080a0bbd29df1fa310000000000405b4001078080a0bbd29df1fa3100000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000000120400000000000000000000000000001440000000000000" +
	"1c40040000000000000000000000000000f03f000000000000004001630000000000000003000000000000f8bf0000000000000040"

// TestOldLearningStateDecodes: a state stored before the learning policy
// decodes, and a Book resumes learning from it, at the current list price
// and inside the band.
func TestOldLearningStateDecodes(t *testing.T) {
	raw, err := hex.DecodeString(oldLearningState)
	if err != nil {
		t.Fatal(err)
	}
	var st State
	if err := UnmarshalState(raw, &st); err != nil {
		t.Fatal(err)
	}
	want := &Learning{Arm: 9, Views: []float64{0, 5, 7}, Buys: []float64{0, 1, 2}, Redraw: true, Rand: 99, Fit: []float64{-1.5, 2}}
	if !reflect.DeepEqual(st.Learn, want) || st.Price != 109 || st.Version != 7 {
		t.Fatalf("decoded %+v learning %+v", st, st.Learn)
	}
	b := thompsonBook(t, Guardrails{}, nil)
	b.Restore(0, st)
	b.ApplyShown(0, View, 1, 0, t0+int64(time.Hour))
	l := b.State(0).Learn
	if l.Base != 100 || len(l.Views) != len(DefaultLadder()) || l.At == 0 {
		t.Fatalf("resumed learning %+v", l)
	}
	if p := b.State(0).Price; p < 80 || p > 130 {
		t.Fatalf("price %v outside the band", p)
	}
}
