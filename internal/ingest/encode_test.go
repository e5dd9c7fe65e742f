package ingest

import (
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

func TestAppendJSONRoundTrips(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	d := &Decoder{Now: func() time.Time { return now }}
	in := []Event{
		{Type: pricing.View, ProductID: "PA", Timestamp: now.Add(-time.Minute).UnixNano(), Price: 299, Quantity: 1},
		{EventID: "e-1\"x", Type: pricing.Purchase, ProductID: "sku_9-Z", Timestamp: now.UnixMilli() * 1e6, Quantity: 7},
		{EventID: "e~2 x", Type: pricing.Cart, ProductID: "PB", Timestamp: now.UnixMilli() * 1e6, Price: 0.1 + 0.2, Quantity: 1},
		{Type: pricing.Stock, ProductID: "PC", Timestamp: now.UnixMilli() * 1e6, Quantity: 0},
		{Type: pricing.Stock, ProductID: "PC", Timestamp: now.UnixMilli() * 1e6, Quantity: 1},
		{Type: pricing.CompetitorPrice, ProductID: "PD", Timestamp: now.UnixMilli() * 1e6, Price: 489.5, Quantity: 1, Competitor: "Shop \"B\""},
	}
	for _, ev := range in {
		b := AppendJSON(nil, &ev)
		got, _, rejects, err := d.Decode(b, "application/json", nil, nil)
		if err != nil || len(rejects) != 0 || len(got) != 1 {
			t.Fatalf("Decode(%s) = %v, %v, %v", b, got, rejects, err)
		}
		want := ev
		want.Timestamp = ev.Timestamp / 1e6 * 1e6
		if got[0] != want {
			t.Errorf("round trip of %s = %+v, want %+v", b, got[0], want)
		}
	}
}
