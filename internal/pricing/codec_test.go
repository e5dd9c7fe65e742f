package pricing

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"reflect"
	"strings"
	"testing"
)

// fullState has every part of a State set, with values that lose bits if
// they pass through the wrong type (a float, a 32-bit integer).
func fullState() State {
	st := State{
		Demand:    Demand{Total: 1234.5, Decayed: 0.1 + 0.2, At: 1_773_713_139_123_456_789},
		Price:     21.99,
		Source:    SourceOverride,
		Version:   1<<40 + 7,
		ChangedAt: -5,
		DynDemand: 3.0000000000000004,
		Trace: Trace{Raw: 22.123456789, Limited: 22.1, Bounded: 22.05, Final: 21.99, Reference: 20.5,
			Applied: GuardMaxChange | GuardRounding},
		Override: Override{Active: true, Price: 15.5, Reason: "clearance, \"final\" – «ü»", By: "alice",
			Since: 1_773_713_000_000_000_000, Expires: math.MaxInt64},
		Lowest30: 1e-7,
		Learn: &Learning{Arm: 21, Views: []float64{12, 0.1 + 0.2}, Buys: []float64{}, Redraw: true,
			Rand: 0xfedcba9876543210, Fit: []float64{-1.5, 2}, Base: 19.99, At: 1_773_713_139_123_456_789, Moved: -3,
			Dry: 0.1 + 0.2, Rate: 1e-300},
		Market: &Signals{Stock: 41.5, StockKnown: true, Period: 1, Opening: 120, Opened: 2, Views: 0.3, Since: 3,
			Quotes: []Quote{{Competitor: "rival", Price: 18.49, At: math.MinInt64}, {Competitor: "", Price: 1e-3}}},
		Brake: Brake{Anchor: 19.99, Since: 1, Held: 2, Wanted: 0.1 + 0.2},
		Tally: Tally{Hour: 1_773_712_800_000_000_000, Views: 1 << 40, Carts: 3, Purchases: 2, Units: 7,
			Revenue: 0.1 + 0.2, Cost: 1e-9, List: 139.93},
	}
	for k := range lowestSlots {
		if k%4 != 3 { // some days without a price, as in a ring not yet full
			st.Low.Set(int32(20_000+k), 10+float64(k)/3)
		}
	}
	return st
}

func TestStateBinaryRoundTrip(t *testing.T) {
	plain := State{Price: 10, Source: SourceDynamic, Version: 3, ChangedAt: 99, Demand: Demand{Total: 9, Decayed: 9, At: 99}}
	plain.Low.observe(9.5, 10, 99)
	noLists := fullState()
	noLists.Learn = &Learning{Rand: 1}
	noLists.Market = &Signals{}
	for name, st := range map[string]State{"zero": {}, "plain": plain, "full": fullState(), "nil lists": noLists} {
		t.Run(name, func(t *testing.T) {
			b, err := st.AppendBinary([]byte("prefix"))
			if err != nil {
				t.Fatal(err)
			}
			if string(b[:6]) != "prefix" {
				t.Fatalf("AppendBinary overwrote the buffer: %q", b[:6])
			}
			var got State
			if err := UnmarshalState(b[6:], &got); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, st) {
				t.Errorf("round trip:\n got %+v\nwant %+v", got, st)
			}
			// Every truncation is an error, never a silently different state.
			for n := range len(b) - 6 {
				if err := got.UnmarshalBinary(b[6 : 6+n]); err == nil {
					t.Fatalf("decoding the first %d of %d bytes succeeded", n, len(b)-6)
				}
			}
			if err := got.UnmarshalBinary(append(b[6:len(b):len(b)], 0)); err == nil {
				t.Error("a trailing byte was accepted")
			}
		})
	}
}

// TestStateBinarySize: the point of the encoding is its size.
func TestStateBinarySize(t *testing.T) {
	st := State{Price: 12.34, Source: SourceDynamic, Version: 12345, ChangedAt: 1_773_713_139_123_456_789,
		DynDemand: 42, Demand: Demand{Total: 42, Decayed: 41.9, At: 1_773_713_139_123_456_789},
		Trace: Trace{Raw: 12.3412, Limited: 12.3412, Bounded: 12.3412, Final: 12.34, Reference: 12.33, Applied: GuardRounding}}
	st.Low.observe(12.33, 12.34, st.ChangedAt)
	st.Lowest30 = 12.33
	b, err := st.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	j, _ := json.Marshal(&st)
	t.Logf("binary %d bytes, JSON %d bytes", len(b), len(j))
	if len(b) > 140 || len(b)*4 > len(j) {
		t.Errorf("binary state is %d bytes (JSON %d): want at most 140 and a quarter of JSON", len(b), len(j))
	}
}

// TestUnmarshalStateJSON: states stored as JSON before the binary
// encoding still load, into the same State.
func TestUnmarshalStateJSON(t *testing.T) {
	st := fullState()
	j, err := json.Marshal(&st)
	if err != nil {
		t.Fatal(err)
	}
	got := State{Price: 99, Learn: &Learning{Arm: 3}} // replaced, not merged
	if err := UnmarshalState(j, &got); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, st) {
		t.Errorf("JSON state:\n got %+v\nwant %+v", got, st)
	}
	if err := UnmarshalState([]byte{StateFormat + 1, 0}, &got); err == nil {
		t.Error("an unknown format version was accepted")
	}
}

func TestStateBinaryNonFinite(t *testing.T) {
	for _, f := range []float64{math.NaN(), math.Inf(1), math.Inf(-1)} {
		st := fullState()
		st.Market.Quotes[1].Price = f
		if _, err := st.AppendBinary(nil); !errors.Is(err, ErrNonFinite) {
			t.Errorf("quote price %v: err = %v, want ErrNonFinite", f, err)
		}
	}
}

// TestStateBeforeTallyDecodes: a state encoded before analytics counts
// existed (testdata: fullState as the encoder of that release wrote it)
// still decodes, with an empty tally and everything else as it was.
func TestStateBeforeTallyDecodes(t *testing.T) {
	h, err := os.ReadFile("testdata/state-v1-before-tally.hex")
	if err != nil {
		t.Fatal(err)
	}
	old, err := hex.DecodeString(strings.TrimSpace(string(h)))
	if err != nil {
		t.Fatal(err)
	}
	var got State
	if err := UnmarshalState(old, &got); err != nil {
		t.Fatalf("decoding a state written before tallies: %v", err)
	}
	want := fullState()
	want.Tally = Tally{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("old state:\n got %+v\nwant %+v", got, want)
	}
	// And a state without a tally is still written as before, so an
	// older release can read what this one writes while no hour is being
	// counted: the same flags, the same layout and length, and the same
	// state when read back. (Byte for byte but for the 30-day ring's
	// values: fullState's daily lows are not whole cents, which the ring
	// now keeps, as every published price is.)
	b, err := want.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	var back State
	if err := UnmarshalState(b, &back); err != nil {
		t.Fatal(err)
	}
	if len(b) != len(old) || b[0] != old[0] || b[1] != old[1] || !reflect.DeepEqual(back, got) {
		t.Errorf("a state without a tally encodes differently from before:\n got %x\nwant %x", b, old)
	}
}

// TestTallyCountsAndRolls: purchases count at the price the shopper was
// shown, or at the current price when the event carries none; the tally
// rolls only once its hour is over, and leaves the state counting afresh.
func TestTallyCountsAndRolls(t *testing.T) {
	b, err := NewBook(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	const h0 = int64(1_773_712_800_000_000_000) // a whole hour
	i, _, err := b.Upsert(Product{ID: "A", BasePrice: 10, UnitCost: 4}, h0)
	if err != nil {
		t.Fatal(err)
	}
	b.ApplyAt(i, View, 1, 0, h0+1, h0+1)
	b.ApplyAt(i, Cart, 1, 0, h0+2, h0+2)
	before := b.State(i).Price
	b.ApplyAt(i, Purchase, 2, 0, h0+3, h0+3)   // at the current price
	b.ApplyAt(i, Purchase, 1, 9.5, h0+4, h0+4) // at the price shown
	mid := b.State(i).Price
	b.ApplyAt(i, Purchase, 1, -1, h0+5, h0+5) // a shown price no store takes: the current one
	if _, ok := b.RollTally(i, h0+HourNS-1); ok {
		t.Fatal("a tally rolled before its hour was over")
	}
	got, ok := b.RollTally(i, h0+HourNS)
	if !ok {
		t.Fatal("the tally did not roll after its hour")
	}
	want := Tally{Hour: h0, Views: 1, Carts: 1, Purchases: 3, Units: 4, Revenue: 2*before + 9.5 + mid, Cost: 16, List: 40}
	if got != want || mid == before {
		t.Errorf("tally = %+v (prices %v then %v), want %+v", got, before, mid, want)
	}
	if !b.State(i).Tally.Empty() {
		t.Errorf("after the roll the state still holds %+v", b.State(i).Tally)
	}
	if _, ok := b.RollTally(i, h0+2*HourNS); ok {
		t.Error("an empty tally rolled")
	}
	b.ApplyAt(i, View, 1, 0, h0+2*HourNS+5, h0+2*HourNS+5)
	if h := b.State(i).Tally.Hour; h != h0+2*HourNS {
		t.Errorf("the next tally counts hour %d, want %d", h, h0+2*HourNS)
	}
}

// TestTallyTimersAreSpread: a product's tally is rolled by its timer
// within RollSpread after its hour, each product at a moment of its own,
// so that a large catalog's rows are not all written in one round.
func TestTallyTimersAreSpread(t *testing.T) {
	b, err := NewBook(DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	const h0 = int64(1_773_712_800_000_000_000)
	const n = 1000
	perMinute := map[int64]int{}
	for k := range n {
		i, _, err := b.Upsert(Product{ID: fmt.Sprintf("P%04d", k), BasePrice: 10}, h0)
		if err != nil {
			t.Fatal(err)
		}
		b.ApplyAt(i, View, 1, 0, h0+1, h0+1)
		at := b.NextTick(i, h0+2)
		if at < h0+HourNS || at >= h0+HourNS+RollSpread {
			t.Fatalf("product %d: timer at %d, want within RollSpread after %d", k, at, h0+HourNS)
		}
		perMinute[(at-h0-HourNS)/60e9]++
	}
	for m, c := range perMinute {
		if c > 2*n/10 {
			t.Errorf("%d of %d timers in minute %d of the spread", c, n, m)
		}
	}
	if len(perMinute) != 10 {
		t.Errorf("timers fall in %d of the spread's 10 minutes", len(perMinute))
	}
}
