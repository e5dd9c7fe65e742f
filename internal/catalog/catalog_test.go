package catalog

import (
	"strings"
	"testing"
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
	for in, want := range map[string]string{
		`{"products":[]}`: "no products",
		`{"products":[{"product_id":"A","base_price":1},{"product_id":"A","base_price":2}]}`: "twice",
		`{"products":[{"product_id":"A","base_price":-1}]}`:                                  "base_price",
		`{"produkts":[]}`: "unknown field",
		`nope`:            "invalid character",
	} {
		if _, err := Parse([]byte(in)); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: err %v, want %q", in, err, want)
		}
	}
}
