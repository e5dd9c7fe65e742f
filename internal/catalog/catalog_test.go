package catalog

import (
	"io"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

func TestDemoMatchesOriginal(t *testing.T) {
	want := map[string]float64{"PA": 299, "PB": 349, "PC": 129, "PD": 499, "PE": 219, "PF": 179, "PG": 649, "PH": 269, "PI": 399, "PJ": 159}
	d := Demo()
	if len(d.Products) != 10 || d.DefaultStrategy != "seed" {
		t.Fatalf("demo = %+v", d)
	}
	for _, p := range d.Products {
		if want[p.ID] != p.BasePrice {
			t.Errorf("%s base %v, want %v", p.ID, p.BasePrice, want[p.ID])
		}
		if err := p.Validate(); err != nil {
			t.Error(err)
		}
	}
}

func TestParse(t *testing.T) {
	f, err := Parse([]byte(`{"default_strategy":"decay","products":[{"product_id":"X1","base_price":10,"rounding":".99","floor":5}]}`))
	if err != nil || f.DefaultStrategy != "decay" || f.Products[0].Rounding != ".99" || f.Products[0].Floor != 5 {
		t.Fatalf("%+v %v", f, err)
	}
	if f, err := Parse([]byte(`[{"product_id":"A","base_price":1}]`)); err != nil || len(f.Products) != 1 {
		t.Fatalf("array form: %+v %v", f, err)
	}
	// The margin floor and the strategy plans come from the file too.
	f, err = Parse([]byte(`[{"product_id":"S","base_price":20,"unit_cost":8.5,"min_margin_pct":15,
		"inventory":{"period_start":"2025-06-01T00:00:00Z","period_end":"2025-07-01T00:00:00.5+02:00","repeat":true,"target_sell_through":0.8},
		"competitor":{"mode":"beat","pct":2}}]`))
	if err != nil {
		t.Fatal(err)
	}
	want := pricing.Product{ID: "S", BasePrice: 20, UnitCost: 8.5, Guardrails: pricing.Guardrails{MinMarginPct: 15},
		Inventory: &pricing.InventoryPlan{PeriodStart: time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC),
			PeriodEnd: time.Date(2025, 6, 30, 22, 0, 0, 500_000_000, time.UTC), Repeat: true, TargetSellThrough: 0.8},
		Competition: &pricing.CompetitorRule{Mode: "beat", Pct: 2}}
	got := f.Products[0]
	if inv := got.Inventory; inv != nil { // the same instants, in UTC
		u := *inv
		u.PeriodStart, u.PeriodEnd = u.PeriodStart.UTC(), u.PeriodEnd.UTC()
		got.Inventory = &u
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("plans: got %+v %+v %+v, want %+v %+v %+v", got, got.Inventory, got.Competition, want, want.Inventory, want.Competition)
	}
	for in, want := range map[string]string{
		`{"products":[]}`: "no products",
		`{"products":[{"product_id":"A","base_price":1},{"product_id":"A","base_price":2}]}`: "twice",
		`{"products":[{"product_id":"A","base_price":-1}]}`:                                  "base_price",
		`{"products":[{"product_id":"A","base_price":1,"competitor":{"mode":"undercut"}}]}`:  "competitor",
		`{"produkts":[]}`: "unknown field",
		`nope`:            "invalid character",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", in, err, want)
		}
	}
}

// TestParseLearningDefaults: the file's learning policy fills what each
// product's leaves unset; a product's own fields win.
func TestParseLearningDefaults(t *testing.T) {
	f, err := Parse([]byte(`{"default_strategy":"thompson","learning":{"band_low":0.9,"band_high":1.2,"objective":"margin"},"products":[
		{"product_id":"A","base_price":10},
		{"product_id":"B","base_price":10,"learning":{"band_high":1.5,"max_changes_per_hour":2,"half_life":"72h"}}]}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []pricing.LearnPolicy{{BandLow: 0.9, BandHigh: 1.2, Objective: "margin"},
		{BandLow: 0.9, BandHigh: 1.5, MaxChangesPerHour: 2, HalfLife: pricing.Duration(72 * time.Hour), Objective: "margin"}}
	for i, p := range f.Products {
		if p.Learning == nil || *p.Learning != want[i] {
			t.Errorf("product %s: learning %+v, want %+v", p.ID, p.Learning, want[i])
		}
	}
	if f.Products[0].Learning == f.Products[1].Learning {
		t.Error("products share one policy")
	}
	// Without a file default a product keeps what it says, nothing more.
	f, err = Parse([]byte(`[{"product_id":"A","base_price":10},{"product_id":"B","base_price":10,"learning":{"band_low":0.95}}]`))
	if err != nil || f.Products[0].Learning != nil || *f.Products[1].Learning != (pricing.LearnPolicy{BandLow: 0.95}) {
		t.Fatalf("%+v %v", f, err)
	}
	for in, want := range map[string]string{
		`{"learning":{"band_high":0.5},"products":[{"product_id":"A","base_price":1}]}`:              "catalog: learning: band_high",
		`{"products":[{"product_id":"A","base_price":1,"learning":{"objective":"profit"}}]}`:         "learning: objective",
		`{"products":[{"product_id":"A","base_price":1,"learning":{"half_life":"1s"}}]}`:             "half_life",
		`{"products":[{"product_id":"A","base_price":1,"learning":{"band_low":0.9,"bandwidth":2}}]}`: "unknown field",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", in, err, want)
		}
	}
}

func TestSynthetic(t *testing.T) {
	for i, want := range map[int]string{0: "P0000000", 7: "P0000007", 10: "P0000010", 999_999: "P0999999",
		1_234_567: "P1234567", 9_999_999: "P9999999", 10_000_000: "P10000000"} {
		if got := SyntheticID(i); got != want {
			t.Errorf("SyntheticID(%d) = %q, want %q", i, got, want)
		}
	}
	var b strings.Builder
	if err := WriteSynthetic(&b, 120); err != nil {
		t.Fatal(err)
	}
	f, err := Parse([]byte(b.String()))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Synthetic(120)
	if err != nil || !reflect.DeepEqual(f, s) {
		t.Fatalf("the written catalog differs from Synthetic: %v\n%+v\n%+v", err, f.Products[:2], s.Products[:2])
	}
	for i, p := range f.Products {
		if p.ID != SyntheticID(i) || p.Name != "product "+strconv.Itoa(i) || p.BasePrice != float64(5+i%50)+0.99 {
			t.Fatalf("product %d = %+v", i, p)
		}
	}
	for _, n := range []int{0, -1, MaxSynthetic + 1} {
		if err := WriteSynthetic(io.Discard, n); err == nil {
			t.Errorf("WriteSynthetic(%d) succeeded", n)
		}
	}
}
