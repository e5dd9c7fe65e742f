package traffic

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

func TestNextIsReproducibleAndSkewed(t *testing.T) {
	ps := []pricing.Product{{ID: "PA", BasePrice: 1}, {ID: "PB", BasePrice: 2}, {ID: "PC", BasePrice: 3}}
	mk := func() *Generator {
		g, err := New(Config{Rate: 10, Products: ps, ViewShare: 0.8, CartShare: 0.15,
			Rand: rand.New(rand.NewPCG(1, 2)), Now: func() time.Time { return time.Unix(1, 0) }})
		if err != nil {
			t.Fatal(err)
		}
		return g
	}
	a, b := mk().Next(nil, 3000), mk().Next(nil, 3000)
	counts := map[string]int{}
	types := map[pricing.EventType]int{}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("event %d differs: %+v vs %+v", i, a[i], b[i])
		}
		counts[a[i].ProductID]++
		types[a[i].Type]++
	}
	if !(counts["PA"] > counts["PB"] && counts["PB"] > counts["PC"]) {
		t.Fatalf("popularity not skewed: %v", counts)
	}
	if v := float64(types[pricing.View]) / 3000; v < 0.75 || v > 0.85 {
		t.Fatalf("view share %v, want ~0.8", v)
	}
	if _, err := New(Config{Rate: 0, Products: ps}); err == nil {
		t.Fatal("rate 0 accepted")
	}
}
