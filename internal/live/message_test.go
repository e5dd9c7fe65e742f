package live

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

func TestAppendMessageExact(t *testing.T) {
	u := Price{
		ProductID: "PA", Price: 151.34, Source: pricing.SourceDynamic, Demand: 12.5, Version: 7,
		At: time.Unix(1773713139, 456_000_000).UnixNano(), Lowest30: 149.99,
	}
	got := string(u.AppendMessage(nil))
	want := `{"type":"price_update","product_id":"PA","new_price":151.34,"timestamp":1773713139,` +
		`"price_source":"dynamic","demand":13,"demand_exact":12.5,"version":7,"lowest_30d":149.99,"timestamp_ms":1773713139456}`
	if got != want {
		t.Fatalf("message\n got %s\nwant %s", got, want)
	}

	u.Source = pricing.SourceBase
	var m map[string]any
	if err := json.Unmarshal(u.AppendMessage(nil), &m); err != nil {
		t.Fatal(err)
	}
	if m["price_source"] != "base" {
		t.Fatalf("base source sent as %v, want base", m["price_source"])
	}
}

// The hand-written encoder must agree with encoding/json, which is what the
// older system's clients were tested against.
func TestEncodingMatchesEncodingJSON(t *testing.T) {
	floats := []float64{0, math.Copysign(0, -1), 151.34, 0.1, 1e-6, 9.99e-7, 1e-7, -2.5e-10, 1e20, 1e21, 123456789.123,
		5e-324, math.MaxFloat64, -math.MaxFloat64, 1.0 / 3, 100}
	for _, f := range floats {
		want, _ := json.Marshal(f)
		if got := appendFloat(nil, f); string(got) != string(want) {
			t.Errorf("float %v: got %s, want %s", f, got, want)
		}
	}
	strs := []string{"", "PA", `a"b\c`, "<script>&amp;", "\x00\x01\x1f\x7f", "\b\f\n\r\t", "\u2028\u2029",
		"héllo wörld ✓ 😀", "bad \xff utf8 \xc3", "SKU-123/x"}
	for _, s := range strs {
		want, _ := json.Marshal(s)
		if got := appendString(nil, s); string(got) != string(want) {
			t.Errorf("string %q: got %s, want %s", s, got, want)
		}
	}
}

func TestFinite(t *testing.T) {
	for _, u := range []Price{{Price: math.NaN()}, {Demand: math.Inf(1)}, {Lowest30: math.Inf(-1)}} {
		if finite(&u) {
			t.Errorf("finite(%+v) = true", u)
		}
	}
	if !finite(&Price{Price: 1, Demand: 2, Lowest30: 3}) {
		t.Error("finite update reported non-finite")
	}
}

// The queue is the core of the slow-client guarantee, so its invariants are
// checked directly as well as through real connections.
func TestClientQueueCoalesces(t *testing.T) {
	c := &client{wake: make(chan struct{}, 1), index: make(map[string]int)}
	e := func(id string, v uint64) entry { return entry{id: id, version: v} }

	if n := c.push([]entry{e("A", 1), e("B", 1), e("C", 1)}); n != 0 {
		t.Fatalf("coalesced %d on fresh queue", n)
	}
	// The queue is not empty now: the client is behind, and updates of
	// queued products replace them in place.
	if n := c.push([]entry{e("B", 2), e("A", 2), e("D", 1)}); n != 2 {
		t.Fatalf("coalesced %d, want 2", n)
	}
	if n := c.push([]entry{e("A", 3)}); n != 1 {
		t.Fatalf("coalesced %d, want 1", n)
	}
	c.signal()
	c.signal() // a second signal before the writer runs is absorbed
	select {
	case <-c.wake:
	default:
		t.Fatal("push did not wake the writer")
	}
	got, own := c.take()
	if !own {
		t.Fatal("coalesced queue reported as a shared batch")
	}
	want := []entry{e("A", 3), e("B", 2), e("C", 1), e("D", 1)}
	if len(got) != len(want) {
		t.Fatalf("took %v, want %v", got, want)
	}
	for i := range want {
		if got[i].id != want[i].id || got[i].version != want[i].version {
			t.Fatalf("took %v, want %v", got, want)
		}
	}
	if len(c.index) != 0 || len(c.items) != 0 || c.indexed {
		t.Fatalf("queue not empty after take: %v %v", c.items, c.index)
	}
	c.done(got, own)
	if cap(c.buf) == 0 {
		t.Fatal("own buffer not kept for reuse")
	}

	// A batch pushed into an empty queue is shared, not copied...
	b1 := []entry{e("C", 2)}
	c.push(b1)
	if !c.shared || &c.items[0] != &b1[0] {
		t.Fatal("batch into empty queue was copied")
	}
	// ...until the client lags and the queue must coalesce: then the
	// queue is copied and the shared batch left untouched.
	c.push([]entry{e("A", 4), e("C", 3)})
	if c.shared || b1[0].version != 2 {
		t.Fatalf("shared batch modified: %v", b1)
	}
	got, _ = c.take()
	if len(got) != 2 || got[0].id != "C" || got[0].version != 3 || got[1].id != "A" || got[1].version != 4 {
		t.Fatalf("took %v after reuse, want [C3 A4]", got)
	}
}

func TestParseMessageRoundTrip(t *testing.T) {
	u := Price{ProductID: "PA", Price: 314, Source: pricing.SourceDynamic, Demand: 9, Version: 12,
		At: time.UnixMilli(1795608000123).UnixNano(), Lowest30: 299, PriceChanged: true}
	got, err := ParseMessage(u.AppendMessage(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got != u {
		t.Errorf("ParseMessage(AppendMessage(u)) = %+v, want %+v", got, u)
	}
	old, err := ParseMessage([]byte(`{"type":"price_update","product_id":"PB","new_price":151.34,"timestamp":1773713139}`))
	if err != nil || old.Price != 151.34 || old.At != time.Unix(1773713139, 0).UnixNano() || old.Source != pricing.SourceBase {
		t.Errorf("ParseMessage(original format) = %+v, %v", old, err)
	}
	for _, bad := range []string{`{}`, `not json`, `{"type":"other","product_id":"PA","new_price":1}`, `{"type":"price_update","product_id":"PA"}`} {
		if _, err := ParseMessage([]byte(bad)); err == nil {
			t.Errorf("ParseMessage(%s) succeeded", bad)
		}
	}
}
