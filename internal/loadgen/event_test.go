package loadgen

import (
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

func TestAppendEventIsTheSeedFormat(t *testing.T) {
	ev := ingest.Event{Type: pricing.Cart, ProductID: "PA", Price: 19.99}
	got := string(appendEvent(nil, &ev, 17, 1773713139123))
	want := `{"event_type":"cart","product_id":"PA","user_id":"U17","timestamp":1773713139123,"price":19.99}`
	if got != want {
		t.Fatalf("got  %s\nwant %s", got, want)
	}
	// The engine's own decoder takes it, with the event's millisecond.
	d := ingest.Decoder{Now: func() time.Time { return time.UnixMilli(1773713139123) }}
	evs, _, rejects, err := d.Decode([]byte(got), "application/json", nil, nil)
	if err != nil || len(rejects) != 0 || len(evs) != 1 {
		t.Fatalf("decode: %v %v %v", evs, rejects, err)
	}
	if e := evs[0]; e.Type != pricing.Cart || e.ProductID != "PA" || e.Price != 19.99 || e.Timestamp != 1773713139123*1e6 || e.EventID != "" {
		t.Fatalf("decoded %+v", e)
	}

	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = appendEvent(buf[:0], &ev, 999, 1773713139123) }); n != 0 {
		t.Fatalf("appendEvent allocates %v times per event into a large enough buffer", n)
	}
}
