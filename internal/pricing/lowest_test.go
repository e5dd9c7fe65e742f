package pricing

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
)

// dayRing is the lowest-price ring as it was before Lowest kept only its
// newest day: each slot says which day it holds. It is the model Lowest is
// held to.
type dayRing struct {
	day [lowestSlots]int32
	min [lowestSlots]float64
}

func (r *dayRing) observe(prev, price float64, now int64) {
	d := dayOf(now)
	i := slotOf(d)
	if r.day[i] != d || r.min[i] == 0 {
		r.day[i], r.min[i] = d, prev
		if prev <= 0 {
			r.min[i] = price
		}
	}
	if price < r.min[i] {
		r.min[i] = price
	}
}

func (r *dayRing) lowest(current float64, now int64) float64 {
	d := dayOf(now)
	m := current
	for i := range r.day {
		if r.min[i] > 0 && r.day[i] > d-LowestWindowDays && r.day[i] <= d {
			m = math.Min(m, r.min[i])
		}
	}
	return m
}

// TestLowestMatchesDayRing: over random price paths whose clock moves by
// minutes to months, and now and then back, Lowest answers what a ring
// that remembers each slot's day answers, and so does its binary and JSON
// round trip.
func TestLowestMatchesDayRing(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for run := range 300 {
		var l Lowest
		var model dayRing
		now := int64(20_000)*dayNS + rng.Int64N(dayNS)
		price := 100.0
		newest := now
		for step := range 200 {
			switch r := rng.IntN(20); {
			case r < 12:
				now += rng.Int64N(dayNS / 6)
			case r < 17:
				now += rng.Int64N(3 * dayNS)
			case r < 18:
				now += rng.Int64N(70 * dayNS)
			default: // the clock goes back, to at most 25 days before
				// the newest time so far (further, the
				// day ring overwrote a recent day with the old one, which
				// Lowest ignores; TestLowestIgnoresMonthOld checks that)
				now = max(now-rng.Int64N(20*dayNS), newest-25*dayNS)
			}
			newest = max(newest, now)
			prev := price
			price = math.Round(price*(0.8+0.4*rng.Float64())*100) / 100
			l.observe(prev, price, now)
			model.observe(prev, price, now)
			// Only the days up to the newest seen are asked about: the
			// model keeps slots a clock gone back overwrote, which the
			// answer for the newest day must not see either way.
			for _, at := range []int64{now, now + dayNS*int64(rng.IntN(40))} {
				if dayOf(at) < l.Last {
					continue
				}
				if got, want := l.lowest(price, at), model.lowest(price, at); got != want {
					t.Fatalf("run %d step %d: lowest at day %d = %v, the day ring says %v", run, step, dayOf(at), got, want)
				}
			}
		}
		st := State{Low: l}
		b, err := st.AppendBinary(nil)
		if err != nil {
			t.Fatal(err)
		}
		var back State
		if err := back.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		var viaJSON Lowest
		j, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(j, &viaJSON); err != nil {
			t.Fatal(err)
		}
		for _, x := range []struct {
			name string
			got  Lowest
		}{{"binary", back.Low}, {"JSON", viaJSON}} {
			if x.got != l && !(isEmpty(x.got) && isEmpty(l)) {
				t.Fatalf("run %d: %s round trip\n got %+v\nwant %+v", run, x.name, x.got, l)
			}
		}
	}
}

func isEmpty(l Lowest) bool { return l.min == [lowestSlots * centBytes]byte{} }

// TestLowestReadsDayPerSlotJSON: a state stored as JSON before Lowest kept
// only its newest day (a day and a price per slot, some slots stale) reads
// as the days of the 31 up to the newest, whatever slots they sat in.
func TestLowestReadsDayPerSlotJSON(t *testing.T) {
	var day [lowestSlots]int32
	var min [lowestSlots]float64
	day[slotOf(20_040)], min[slotOf(20_040)] = 20_040, 7   // newest
	day[slotOf(20_020)], min[slotOf(20_020)] = 20_020, 5   // in the window
	day[slotOf(20_005)], min[slotOf(20_005)] = 20_005, 1   // older than 31 days: dropped
	day[slotOf(20_039)], min[slotOf(20_039)] = 20_039, 0.5 // stale slot? no: day 20_039 is in the ring
	j, err := json.Marshal(map[string]any{"day": day, "min": min})
	if err != nil {
		t.Fatal(err)
	}
	var l Lowest
	if err := json.Unmarshal(j, &l); err != nil {
		t.Fatal(err)
	}
	got := map[int32]float64{}
	l.Days(func(d int32, m float64) { got[d] = m })
	want := map[int32]float64{20_040: 7, 20_020: 5, 20_039: 0.5}
	if len(got) != len(want) {
		t.Fatalf("days %v, want %v", got, want)
	}
	for d, m := range want {
		if got[d] != m {
			t.Fatalf("days %v, want %v", got, want)
		}
	}
	if l.Last != 20_040 {
		t.Fatalf("Last = %d, want 20040", l.Last)
	}
	if low := l.lowest(9, 20_041*dayNS); low != 0.5 {
		t.Fatalf("lowest on day 20041 = %v, want 0.5", low)
	}
}

// TestLowestIgnoresMonthOld: a price observed more than a month before the
// newest day (a clock set back) changes nothing, where a ring that placed
// it by its slot overwrote a recent day's low with it.
func TestLowestIgnoresMonthOld(t *testing.T) {
	var l Lowest
	l.observe(10, 8, 20_040*dayNS)
	before := l
	l.observe(8, 3, (20_040-lowestSlots)*dayNS) // same slot, a month back
	if l != before {
		t.Fatalf("a month-old price changed the ring: %+v, was %+v", l, before)
	}
	if low := l.lowest(9, 20_041*dayNS); low != 8 {
		t.Fatalf("lowest = %v, want 8", low)
	}
}

// TestLowestKeepsCents: a slot keeps any published price (whole cents, from
// 0.01 to MaxPrice) exactly, as RoundCents gives it.
func TestLowestKeepsCents(t *testing.T) {
	for _, p := range []float64{0.01, 0.29, 19.99, 314, 1234567.89, MaxPrice - 0.01, MaxPrice} {
		var l Lowest
		l.observe(0, p, 20_000*dayNS)
		if got := l.lowest(MaxPrice, 20_000*dayNS); got != RoundCents(p) || got != p {
			t.Errorf("kept %v as %v", p, got)
		}
	}
	var l Lowest
	l.observe(0, 10.004, 20_000*dayNS) // not a published price: to the nearest cent
	if got := l.lowest(20, 20_000*dayNS); got != 10 {
		t.Errorf("10.004 kept as %v", got)
	}
}
