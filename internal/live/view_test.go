package live

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

func TestPriceJSONMatchesOriginalShape(t *testing.T) {
	v := New(HubConfig{})
	at := time.Date(2026, 3, 17, 2, 5, 39, 0, time.UTC).UnixNano()
	v.Publish([]Price{{ProductID: "PA", Price: 314.0000001, Demand: 9, Source: pricing.SourceDynamic, Version: 4, At: at, Lowest30: 299},
		{ProductID: "PD", Price: 20, Demand: 3.98735811, Source: pricing.SourceDynamic, Version: 2, At: at, Lowest30: 19}})
	b, ok := v.Price("PA")
	if !ok {
		t.Fatal("PA missing")
	}
	want := `{"product_id":"PA","price":314,"demand":9,"demand_exact":9,"price_source":"dynamic","lowest_30d":299,"version":4,"updated_at":"2026-03-17T02:05:39Z"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	// Decayed demand has fractions: the original's PriceResponse reads
	// demand as an int, so demand is whole and the fractions are beside it.
	b, _ = v.Price("PD")
	var original struct {
		ProductID   string  `json:"product_id"`
		Price       float64 `json:"price"`
		Demand      int     `json:"demand"`
		PriceSource string  `json:"price_source"`
	}
	if err := json.Unmarshal(b, &original); err != nil || original.Demand != 4 || !strings.Contains(string(b), `"demand_exact":3.9874`) {
		t.Fatalf("the original's type reads %s as %+v, %v", b, original, err)
	}
	if _, ok := v.Price("PB"); ok {
		t.Fatal("PB present")
	}
	v.Publish([]Price{{ProductID: "PB", Price: 149.99, Demand: 12.123456, Source: pricing.SourceOverride, At: at}})
	var all struct {
		Prices []map[string]any `json:"prices"`
	}
	if err := json.Unmarshal(v.AppendAll(nil), &all); err != nil {
		t.Fatal(err)
	}
	if len(all.Prices) != 3 || all.Prices[0]["product_id"] != "PA" || all.Prices[2]["demand"] != 12.0 ||
		all.Prices[2]["demand_exact"] != 12.1235 || all.Prices[2]["price_source"] != "override" {
		t.Fatalf("all = %+v", all)
	}
	if s := v.Snapshot(); len(s) != 3 || s[2].Price != 149.99 {
		t.Fatalf("snapshot = %+v", s)
	}
}

func TestConcurrentReadsDuringPublish(t *testing.T) {
	v := New(HubConfig{})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if b, ok := v.Price("P1"); ok && !json.Valid(b) {
					t.Error("torn read")
				}
				_ = v.AppendAll(nil)
			}
		}()
	}
	for i := 0; i < 2000; i++ {
		v.Publish([]Price{{ProductID: fmt.Sprintf("P%d", i%50), Price: float64(i), Version: uint64(i)}})
	}
	close(stop)
	wg.Wait()
	if len(v.Snapshot()) != 50 {
		t.Fatalf("products = %d", len(v.Snapshot()))
	}
}

func BenchmarkPrice(b *testing.B) {
	v := New(HubConfig{})
	v.Publish([]Price{{ProductID: "PA", Price: 314, Demand: 9}})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, ok := v.Price("PA"); !ok {
			b.Fatal("missing")
		}
	}
}
