package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/dynaprice/dynaprice/internal/experiment"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// testNow is the receive time in tests: 2026-03-17T02:05:39Z.
var testNow = time.Unix(1773713139, 0).UTC()

func testDecoder() *Decoder {
	return &Decoder{Now: func() time.Time { return testNow }}
}

const nowNs = 1773713139 * int64(time.Second)

// one decodes a body that must hold exactly one element and returns the
// event or the reason it was rejected.
func one(t *testing.T, d *Decoder, body, contentType string) (Event, string) {
	t.Helper()
	events, idx, rejects, err := d.Decode([]byte(body), contentType, nil, nil)
	if err != nil {
		t.Fatalf("Decode(%q): %v", body, err)
	}
	switch {
	case len(events) == 1 && len(rejects) == 0 && len(idx) == 1 && idx[0] == 0:
		return events[0], ""
	case len(events) == 0 && len(rejects) == 1 && rejects[0].Index == 0:
		return Event{}, rejects[0].Error
	}
	t.Fatalf("Decode(%q) = events %+v at %v, rejects %+v; want one element", body, events, idx, rejects)
	return Event{}, ""
}

// ev builds the expected event for the tests' defaults.
func ev(typ pricing.EventType, id string) Event {
	return Event{Type: typ, ProductID: id, Timestamp: nowNs, Quantity: 1}
}

func TestDecodeMarketSignals(t *testing.T) {
	d := testDecoder()
	valid := []struct {
		body string
		want Event
	}{
		{`{"event_type":"stock","product_id":"PA","quantity":0}`, Event{Type: pricing.Stock, ProductID: "PA", Timestamp: nowNs, Quantity: 0}},
		{`{"event_type":"stock","product_id":"PA","quantity":1000000000}`, Event{Type: pricing.Stock, ProductID: "PA", Timestamp: nowNs, Quantity: MaxStock}},
		{`{"event_type":"competitor_price","product_id":"PA","competitor":"Shop B","price":289.9}`,
			Event{Type: pricing.CompetitorPrice, ProductID: "PA", Timestamp: nowNs, Quantity: 1, Price: 289.9, Competitor: "Shop B"}},
	}
	for _, c := range valid {
		if got, reason := one(t, d, c.body, ""); reason != "" || got != c.want {
			t.Errorf("%s: got %+v %q, want %+v", c.body, got, reason, c.want)
		}
	}
	rejected := []struct{ body, reason string }{
		{`{"event_type":"stock","product_id":"PA"}`, "a stock event needs quantity, the units on hand"},
		{`{"event_type":"stock","product_id":"PA","quantity":-1}`, "quantity of a stock event (units on hand) must be an integer from 0 to 1000000000, got -1"},
		{`{"event_type":"stock","product_id":"PA","quantity":1000000001}`, "quantity of a stock event (units on hand) must be an integer from 0 to 1000000000, got 1000000001"},
		{`{"event_type":"view","product_id":"PA","quantity":0}`, "quantity must be an integer from 1 to 10000, got 0"},
		{`{"event_type":"competitor_price","product_id":"PA","competitor":"B"}`, "a competitor_price event needs price, the competitor's price"},
		{`{"event_type":"competitor_price","product_id":"PA","price":10}`, "a competitor_price event needs competitor, the competitor's name"},
		{`{"event_type":"competitor_price","product_id":"PA","price":10,"competitor":""}`, `competitor "" must be 1-64 bytes of printable ASCII`},
		{`{"event_type":"competitor_price","product_id":"PA","price":10,"competitor":7}`, "competitor must be a string, got number"},
		{`{"event_type":"view","product_id":"PA","competitor":"B"}`, "competitor is only for competitor_price events"},
	}
	for _, c := range rejected {
		if _, reason := one(t, d, c.body, ""); reason != c.reason {
			t.Errorf("%s: reason %q, want %q", c.body, reason, c.reason)
		}
	}
	// A competitor name is not a product id: interning one must not let
	// the same text through as a product_id later.
	one(t, d, `{"event_type":"competitor_price","product_id":"PA","price":10,"competitor":"a b"}`, "")
	if _, reason := one(t, d, `{"event_type":"view","product_id":"a b"}`, ""); reason == "" {
		t.Error(`product_id "a b" accepted after a competitor of that name`)
	}
}

func TestDecodeValid(t *testing.T) {
	with := func(e Event, f func(*Event)) Event { f(&e); return e }
	long128 := strings.Repeat("u", 128)
	tests := []struct {
		name, body string
		want       Event
	}{
		// The old system's producer: json.Marshal of its ProductEvent with
		// every field set, the time in milliseconds.
		{"seed producer", `{"event_type":"view","product_id":"PA","user_id":"U0","timestamp":1773713139123,"price":299}`,
			with(ev(pricing.View, "PA"), func(e *Event) { e.Timestamp = 1773713139123 * 1e6; e.Price = 299 })},
		{"seed producer cart", `{"event_type":"cart","product_id":"PJ","user_id":"U4","timestamp":1773713100000,"price":159}`,
			with(ev(pricing.Cart, "PJ"), func(e *Event) { e.Timestamp = 1773713100000 * 1e6; e.Price = 159 })},
		// The old system's tests: its struct with only some fields set,
		// so user_id is "" and timestamp 0, which means "no time".
		{"seed zero values", `{"event_type":"purchase","product_id":"PA","user_id":"","timestamp":0,"price":120}`,
			with(ev(pricing.Purchase, "PA"), func(e *Event) { e.Price = 120 })},
		{"minimal", `{"event_type":"cart","product_id":"PB"}`, ev(pricing.Cart, "PB")},
		{"all fields", `{"event_id":"e-1","event_type":"purchase","product_id":"P_9-x","user_id":"U1","timestamp":1773713000,"price":12.5,"quantity":3}`,
			Event{EventID: "e-1", Type: pricing.Purchase, ProductID: "P_9-x", Timestamp: 1773713000 * 1e9, Price: 12.5, Quantity: 3}},
		{"order does not matter", `{"price":1,"product_id":"PA","quantity":10000,"event_type":"view"}`,
			with(ev(pricing.View, "PA"), func(e *Event) { e.Price = 1; e.Quantity = 10000 })},
		{"nulls are absent", `{"event_type":"view","product_id":"PA","user_id":null,"event_id":null,"timestamp":null,"price":null,"quantity":null}`,
			ev(pricing.View, "PA")},
		{"unknown fields ignored", `{"session":{"a":[1,2.5e3,{"b":null}],"c":"\u00e9"},"event_type":"view","ok":true,"product_id":"PA","n":-0}`,
			ev(pricing.View, "PA")},
		{"whitespace everywhere", " \t\r\n{ \"event_type\" :\t\"view\" ,\r\n \"product_id\"\n:\"PA\" ,\"price\" : 5 } \n\t",
			with(ev(pricing.View, "PA"), func(e *Event) { e.Price = 5 })},
		{"byte order mark", "\xef\xbb\xbf{\"event_type\":\"view\",\"product_id\":\"PA\"}", ev(pricing.View, "PA")},
		{"escapes in values", `{"event_type":"vi\u0065w","product_id":"P\u0041","event_id":"a\"b\\c\/d\u0020e"}`,
			with(ev(pricing.View, "PA"), func(e *Event) { e.EventID = `a"b\c/d e` })},
		{"escapes in keys", `{"event\u005ftype":"view","\u0070roduct_id":"PA","pric\u0065":2}`,
			with(ev(pricing.View, "PA"), func(e *Event) { e.Price = 2 })},
		{"user_id with accents and surrogate pairs", `{"event_type":"view","product_id":"PA","user_id":"J\u00e9r\u00f4me \ud83d\ude00 ok"}`,
			ev(pricing.View, "PA")},
		{"user_id 128 bytes", `{"event_type":"view","product_id":"PA","user_id":"` + long128 + `"}`, ev(pricing.View, "PA")},
		{"user_id 64 two-byte runes", `{"event_type":"view","product_id":"PA","user_id":"` + strings.Repeat(`\u00e9`, 64) + `"}`,
			ev(pricing.View, "PA")},
		{"event_id 128 bytes", `{"event_type":"view","product_id":"PA","event_id":"` + strings.Repeat("~", 128) + `"}`,
			with(ev(pricing.View, "PA"), func(e *Event) { e.EventID = strings.Repeat("~", 128) })},
		{"product_id 64 bytes", `{"event_type":"view","product_id":"` + strings.Repeat("Z", 64) + `"}`,
			ev(pricing.View, strings.Repeat("Z", 64))},
		{"duplicate keys: last wins", `{"event_type":"click","price":"x","product_id":"a b","event_type":"view","product_id":"PC","price":7}`,
			with(ev(pricing.View, "PC"), func(e *Event) { e.Price = 7 })},
		{"duplicate keys: null last", `{"event_type":"view","product_id":"PA","price":9,"price":null}`, ev(pricing.View, "PA")},
		{"price exponent", `{"event_type":"view","product_id":"PA","price":2.5E+2}`,
			with(ev(pricing.View, "PA"), func(e *Event) { e.Price = 250 })},
		{"price half a cent", `{"event_type":"view","product_id":"PA","price":0.005}`,
			with(ev(pricing.View, "PA"), func(e *Event) { e.Price = 0.005 })},
		{"price at MaxPrice", `{"event_type":"view","product_id":"PA","price":1e9}`,
			with(ev(pricing.View, "PA"), func(e *Event) { e.Price = 1e9 })},
		{"timestamp 2000-01-01", `{"event_type":"view","product_id":"PA","timestamp":946684800}`,
			with(ev(pricing.View, "PA"), func(e *Event) { e.Timestamp = 946684800e9 })},
		{"timestamp 2000-01-01 ms", `{"event_type":"view","product_id":"PA","timestamp":946684800000}`,
			with(ev(pricing.View, "PA"), func(e *Event) { e.Timestamp = 946684800e9 })},
		{"timestamp now+24h", `{"event_type":"view","product_id":"PA","timestamp":1773799539}`,
			with(ev(pricing.View, "PA"), func(e *Event) { e.Timestamp = nowNs + int64(24*time.Hour) })},
		{"timestamp now+24h ms", `{"event_type":"view","product_id":"PA","timestamp":1773799539000.000}`,
			with(ev(pricing.View, "PA"), func(e *Event) { e.Timestamp = nowNs + int64(24*time.Hour) })},
		{"timestamp -0 is absent", `{"event_type":"view","product_id":"PA","timestamp":-0.0e5}`, ev(pricing.View, "PA")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := one(t, testDecoder(), tt.body, "")
			if reason != "" {
				t.Fatalf("rejected: %s", reason)
			}
			// User is checked by TestDecodeUserHash.
			if got.User = 0; got != tt.want {
				t.Errorf("got  %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

func TestDecodeRejects(t *testing.T) {
	const base = `"event_type":"view","product_id":"PA"`
	obj := func(fields string) string { return "{" + base + "," + fields + "}" }
	tests := []struct{ name, body, want string }{
		{"event_type missing", `{"product_id":"PA"}`, "event_type is required"},
		{"event_type null", `{"event_type":null,"product_id":"PA"}`, "event_type is required"},
		{"event_type unknown", `{"event_type":"click","product_id":"PA"}`, `event_type "click" is not one of view, cart, purchase, stock, competitor_price`},
		{"event_type case", `{"event_type":"View","product_id":"PA"}`, `event_type "View" is not one of view, cart, purchase, stock, competitor_price`},
		{"event_type empty", `{"event_type":"","product_id":"PA"}`, `event_type "" is not one of view, cart, purchase, stock, competitor_price`},
		{"event_type number", `{"event_type":1,"product_id":"PA"}`, "event_type must be a string, got number"},
		{"event_type array", `{"event_type":["view"],"product_id":"PA"}`, "event_type must be a string, got array"},
		{"event_type reported first", `{"event_type":"x","product_id":"a b","price":"1"}`, `event_type "x" is not one of view, cart, purchase, stock, competitor_price`},

		{"product_id missing", `{"event_type":"view"}`, "product_id is required"},
		{"product_id null", `{"event_type":"view","product_id":null}`, "product_id is required"},
		{"product_id space", `{"event_type":"view","product_id":"a b"}`, `product_id "a b" must match [A-Za-z0-9_-]{1,64}`},
		{"product_id empty", `{"event_type":"view","product_id":""}`, `product_id "" must match [A-Za-z0-9_-]{1,64}`},
		{"product_id escaped space", `{"event_type":"view","product_id":"P\u0020A"}`, `product_id "P A" must match [A-Za-z0-9_-]{1,64}`},
		{"product_id unicode", `{"event_type":"view","product_id":"Pé"}`, `product_id "Pé" must match [A-Za-z0-9_-]{1,64}`},
		{"product_id 65 bytes", `{"event_type":"view","product_id":"` + strings.Repeat("Z", 65) + `"}`,
			`product_id "` + strings.Repeat("Z", 64) + `"... (65 bytes) must match [A-Za-z0-9_-]{1,64}`},
		{"product_id boolean", `{"event_type":"view","product_id":true}`, "product_id must be a string, got boolean"},
		{"product_id number", `{"event_type":"view","product_id":42}`, "product_id must be a string, got number"},

		{"user_id number", obj(`"user_id":5`), "user_id must be a string, got number"},
		{"user_id 129 bytes", obj(`"user_id":"` + strings.Repeat("u", 129) + `"`), "user_id must be at most 128 bytes, got 129"},
		{"user_id 129 decoded bytes", obj(`"user_id":"` + strings.Repeat(`\u00e9`, 64) + `x"`), "user_id must be at most 128 bytes, got 129"},
		{"user_id invalid UTF-8 counts as U+FFFD", obj("\"user_id\":\"" + strings.Repeat("\xff", 43) + "\""), "user_id must be at most 128 bytes, got 129"},

		{"event_id empty", obj(`"event_id":""`), `event_id "" must be 1-128 bytes of printable ASCII`},
		{"event_id tab", obj(`"event_id":"a\tb"`), `event_id "a\tb" must be 1-128 bytes of printable ASCII`},
		{"event_id unicode", obj(`"event_id":"\u00e9"`), `event_id "é" must be 1-128 bytes of printable ASCII`},
		{"event_id surrogate pair", obj(`"event_id":"\ud83d\ude00"`), `event_id "😀" must be 1-128 bytes of printable ASCII`},
		{"event_id 129 bytes", obj(`"event_id":"` + strings.Repeat("e", 129) + `"`),
			`event_id "` + strings.Repeat("e", 64) + `"... (129 bytes) must be 1-128 bytes of printable ASCII`},
		{"event_id number", obj(`"event_id":7`), "event_id must be a string, got number"},

		{"price string", obj(`"price":"299"`), "price must be a number, got string"},
		{"price object", obj(`"price":{}`), "price must be a number, got object"},
		{"price boolean", obj(`"price":false`), "price must be a number, got boolean"},
		{"price zero", obj(`"price":0`), "price must be a finite number > 0 and at most 1000000000, got 0"},
		{"price negative zero", obj(`"price":-0.0`), "price must be a finite number > 0 and at most 1000000000, got -0.0"},
		{"price negative", obj(`"price":-1.5`), "price must be a finite number > 0 and at most 1000000000, got -1.5"},
		{"price beyond MaxPrice", obj(`"price":1e307`), "price must be a finite number > 0 and at most 1000000000, got 1e307"},
		{"price infinite", obj(`"price":1e400`), "price must be a finite number > 0 and at most 1000000000, got 1e400"},
		{"price below half a cent", obj(`"price":0.004`), "price must be at least 0.01 once rounded to cents, got 0.004"},
		{"price underflow", obj(`"price":1e-400`), "price must be a finite number > 0 and at most 1000000000, got 1e-400"},
		{"price long", obj(`"price":-` + strings.Repeat("9", 40)),
			"price must be a finite number > 0 and at most 1000000000, got -" + strings.Repeat("9", 31) + "... (41 bytes)"},

		{"quantity zero", obj(`"quantity":0`), "quantity must be an integer from 1 to 10000, got 0"},
		{"quantity too big", obj(`"quantity":10001`), "quantity must be an integer from 1 to 10000, got 10001"},
		{"quantity huge", obj(`"quantity":99999999999999999999`), "quantity must be an integer from 1 to 10000, got 99999999999999999999"},
		{"quantity negative", obj(`"quantity":-1`), "quantity must be an integer from 1 to 10000, got -1"},
		{"quantity fraction", obj(`"quantity":1.5`), "quantity must be an integer from 1 to 10000, got 1.5"},
		{"quantity integral fraction", obj(`"quantity":2.0`), "quantity must be an integer from 1 to 10000, got 2.0"},
		{"quantity exponent", obj(`"quantity":1e2`), "quantity must be an integer from 1 to 10000, got 1e2"},
		{"quantity string", obj(`"quantity":"2"`), "quantity must be a number, got string"},

		{"timestamp string", obj(`"timestamp":"1773713139"`), "timestamp must be a number (unix seconds or milliseconds), got string"},
		{"timestamp boolean", obj(`"timestamp":true`), "timestamp must be a number (unix seconds or milliseconds), got boolean"},
		{"timestamp before 2000", obj(`"timestamp":946684799`), "timestamp 946684799 (unix seconds) is before 2000-01-01"},
		{"timestamp before 2000 by a nanosecond", obj(`"timestamp":946684799.999999999`), "timestamp 946684799.999999999 (unix seconds) is before 2000-01-01"},
		{"timestamp before 2000 ms", obj(`"timestamp":946684799999`), "timestamp 946684799999 (unix milliseconds) is before 2000-01-01"},
		{"timestamp 1e11 is ms", obj(`"timestamp":1e11`), "timestamp 1e11 (unix milliseconds) is before 2000-01-01"},
		{"timestamp negative", obj(`"timestamp":-5`), "timestamp -5 (unix seconds) is before 2000-01-01"},
		{"timestamp tiny", obj(`"timestamp":1e-30`), "timestamp 1e-30 (unix seconds) is before 2000-01-01"},
		{"timestamp hugely negative", obj(`"timestamp":-1e300`), "timestamp -1e300 (unix seconds) is before 2000-01-01"},
		{"timestamp future", obj(`"timestamp":1773799540`), "timestamp 1773799540 (unix seconds) is more than 24h0m0s in the future"},
		{"timestamp future by a nanosecond", obj(`"timestamp":1773799539.000000001`),
			"timestamp 1773799539.000000001 (unix seconds) is more than 24h0m0s in the future"},
		{"timestamp future ms", obj(`"timestamp":1773799539001`), "timestamp 1773799539001 (unix milliseconds) is more than 24h0m0s in the future"},
		{"timestamp just below 1e11 s", obj(`"timestamp":99999999999.9`), "timestamp 99999999999.9 (unix seconds) is more than 24h0m0s in the future"},
		{"timestamp microseconds", obj(`"timestamp":1773713139123456`), "timestamp 1773713139123456 (unix milliseconds) is more than 24h0m0s in the future"},
		{"timestamp overflow", obj(`"timestamp":1e400`), "timestamp 1e400 (unix milliseconds) is more than 24h0m0s in the future"},

		{"top-level number", `5`, "event must be a JSON object, got number"},
		{"top-level string", `"view"`, "event must be a JSON object, got string"},
		{"top-level null", `null`, "event must be a JSON object, got null"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, reason := one(t, testDecoder(), tt.body, "")
			if reason != tt.want {
				t.Errorf("reason %q\nwant   %q (event %+v)", reason, tt.want, got)
			}
		})
	}
}

// seedEvent is the old system's event, which its producer sent with
// encoding/json.
type seedEvent struct {
	EventType string  `json:"event_type"`
	ProductID string  `json:"product_id"`
	UserID    string  `json:"user_id"`
	Timestamp int64   `json:"timestamp"`
	Price     float64 `json:"price"`
}

// TestSeedEvents decodes what the old system's producer sent for its whole
// catalog, and the events its tests treated as invalid.
func TestSeedEvents(t *testing.T) {
	catalog := map[string]float64{"PA": 299, "PB": 349, "PC": 129, "PD": 499, "PE": 219,
		"PF": 179, "PG": 649, "PH": 269, "PI": 399, "PJ": 159}
	var sent []seedEvent
	var want []Event
	ms := testNow.UnixMilli() - 5000
	for id, price := range catalog {
		for _, typ := range []pricing.EventType{pricing.View, pricing.Cart, pricing.Purchase} {
			ms++
			sent = append(sent, seedEvent{typ.String(), id, fmt.Sprintf("U%d", ms%5), ms, price})
			want = append(want, Event{Type: typ, ProductID: id, Timestamp: ms * 1e6, Price: price, Quantity: 1})
		}
	}
	body, err := json.Marshal(sent)
	if err != nil {
		t.Fatal(err)
	}
	events, idx, rejects, err := testDecoder().Decode(body, "", nil, nil)
	if err != nil || len(rejects) != 0 || len(events) != len(want) {
		t.Fatalf("%d events, rejects %v, error %v", len(events), rejects, err)
	}
	for i, e := range events {
		if e.User == 0 {
			t.Errorf("event %d: the user_id was not kept", i)
		}
		if e.User = 0; idx[i] != i || e != want[i] {
			t.Errorf("event %d at %d: %+v, want %+v", i, idx[i], e, want[i])
		}
	}

	// The old system's tests built events with only some fields set; the
	// ones it rejected, we reject for the same reason.
	for _, tt := range []struct {
		ev   seedEvent
		want string
	}{
		{seedEvent{EventType: "view", ProductID: "PA", Price: 100}, ""},
		{seedEvent{EventType: "purchase", ProductID: "PA", Price: 120}, ""},
		{seedEvent{EventType: "click", ProductID: "PA", Price: 100}, `event_type "click" is not one of view, cart, purchase, stock, competitor_price`},
		{seedEvent{EventType: "unknown", ProductID: "PA", Price: 100}, `event_type "unknown" is not one of view, cart, purchase, stock, competitor_price`},
		{seedEvent{EventType: "view", ProductID: "  ", Price: 100}, `product_id "  " must match [A-Za-z0-9_-]{1,64}`},
		{seedEvent{EventType: "view", ProductID: "PA", Price: 0}, "price must be a finite number > 0 and at most 1000000000, got 0"},
	} {
		body, _ := json.Marshal(tt.ev)
		got, reason := one(t, testDecoder(), string(body), "")
		if reason != tt.want {
			t.Errorf("%s: reason %q, want %q", body, reason, tt.want)
		}
		if reason == "" && (got.Timestamp != nowNs || got.Price != tt.ev.Price) {
			t.Errorf("%s: %+v; want the receive time for timestamp 0", body, got)
		}
	}
}

func TestMaxFuture(t *testing.T) {
	d := testDecoder()
	d.MaxFuture = time.Minute
	body := `{"event_type":"view","product_id":"PA","timestamp":1773713199}`
	if e, reason := one(t, d, body, ""); reason != "" || e.Timestamp != nowNs+int64(time.Minute) {
		t.Errorf("at the limit: %+v %q", e, reason)
	}
	body = `{"event_type":"view","product_id":"PA","timestamp":1773713200}`
	if _, reason := one(t, d, body, ""); reason != "timestamp 1773713200 (unix seconds) is more than 1m0s in the future" {
		t.Errorf("past the limit: %q", reason)
	}
}

func TestTimestampNormalisation(t *testing.T) {
	tests := []struct {
		num  string
		want int64
	}{
		{"1773713139", 1773713139000000000},
		{"1773713139123", 1773713139123000000},
		{"1773713139.5", 1773713139500000000},
		{"1773713139.123456789", 1773713139123456789},
		{"1773713139.1234567899", 1773713139123456789}, // truncated below 1ns
		{"1773713139.000000001", 1773713139000000001},
		{"1773713139123.456789", 1773713139123456789},
		{"1773713139123.4567899", 1773713139123456789},
		{"1773713139123.000001", 1773713139123000001},
		{"1.773713139e9", 1773713139000000000},
		{"1.773713139123E12", 1773713139123000000},
		{"1773713139e+0", 1773713139000000000},
		{"177371313900e-2", 1773713139000000000},
		{"0.0000000000001773713139e22", 1773713139000000000},
		{"17737131391234567899e-10", 1773713139123456789}, // 20 digits: the last is dropped
		{"99999999999", math.MaxInt64},                    // seconds beyond int64 nanoseconds saturate
		{"100000000000", 100000000000000000},
		{"946684800", 946684800000000000},
		{"946684800000", 946684800000000000},
	}
	for _, tt := range tests {
		got, _ := unixNanos([]byte(tt.num))
		if got != tt.want {
			t.Errorf("unixNanos(%s) = %d, want %d", tt.num, got, tt.want)
		}
	}

	// Seconds and milliseconds of the same instant decode to the same time.
	d := testDecoder()
	s, _ := one(t, d, `{"event_type":"view","product_id":"PA","timestamp":1773713139.25}`, "")
	ms, _ := one(t, d, `{"event_type":"view","product_id":"PA","timestamp":1773713139250}`, "")
	if s.Timestamp != ms.Timestamp || s.Timestamp != 1773713139250000000 {
		t.Errorf("seconds %d, milliseconds %d; want both 1773713139250000000", s.Timestamp, ms.Timestamp)
	}
}

// elements is a decoded body's outcome: events with their indexes and
// rejects, written compactly for comparison.
func elements(events []Event, idx []int, rejects []Reject) string {
	var b strings.Builder
	for i, e := range events {
		fmt.Fprintf(&b, "%d:%s/%s ", idx[i], e.Type, e.ProductID)
	}
	for _, r := range rejects {
		fmt.Fprintf(&b, "%d:!%s ", r.Index, r.Error)
	}
	return strings.TrimSpace(b.String())
}

func TestDecodeFraming(t *testing.T) {
	const (
		a = `{"event_type":"view","product_id":"PA"}`
		b = `{"event_type":"cart","product_id":"PB"}`
		c = `{"event_type":"purchase","product_id":"PC"}`
	)
	const ndjson = "application/x-ndjson"
	tests := []struct {
		name, body, contentType, want string
	}{
		{"single object", a, "", "0:view/PA"},
		{"single object as ndjson", a, ndjson, "0:view/PA"},
		{"array", "[" + a + "," + b + "," + c + "]", "", "0:view/PA 1:cart/PB 2:purchase/PC"},
		{"array with whitespace", " [\n " + a + " ,\n\t" + b + "\n] \n", "", "0:view/PA 1:cart/PB"},
		{"empty array", "[]", "", ""},
		{"empty array with whitespace", " [ \n ] ", "", ""},
		{"array rejects by index", "[" + a + `,{"event_type":"click","product_id":"PA"},5,"x",[],null,` + c + "]", "",
			`0:view/PA 6:purchase/PC 1:!event_type "click" is not one of view, cart, purchase, stock, competitor_price 2:!event must be a JSON object, got number ` +
				`3:!event must be a JSON object, got string 4:!event must be a JSON object, got array 5:!event must be a JSON object, got null`},
		{"ndjson", a + "\n" + b + "\n" + c + "\n", ndjson, "0:view/PA 1:cart/PB 2:purchase/PC"},
		{"ndjson without content type", a + "\n" + b + "\n" + c + "\n", "", "0:view/PA 1:cart/PB 2:purchase/PC"},
		{"ndjson content type with parameters", a + "\n" + b, "Application/X-NDJSON; charset=utf-8", "0:view/PA 1:cart/PB"},
		{"ndjson application/ndjson", a + "\n" + b, "application/ndjson", "0:view/PA 1:cart/PB"},
		{"ndjson CRLF and blank lines", "\r\n" + a + "\r\n\r\n  \n" + b + "\r\n", ndjson, "0:view/PA 1:cart/PB"},
		{"ndjson byte order mark", "\xef\xbb\xbf" + a + "\n" + b, ndjson, "0:view/PA 1:cart/PB"},
		{"ndjson malformed line", a + "\n" + `{"event_type":"view",` + "\n" + c, ndjson,
			"0:view/PA 2:purchase/PC 1:!malformed JSON at byte 61: unexpected end of input"},
		{"ndjson malformed line without content type", a + "\n" + `{"event_type":"view",` + "\n" + c, "",
			"0:view/PA 2:purchase/PC 1:!malformed JSON at byte 61: unexpected end of input"},
		{"ndjson garbage line", a + "\nhello\n" + c, "",
			`0:view/PA 2:purchase/PC 1:!malformed JSON at byte 40: invalid character 'h' looking for beginning of value`},
		{"ndjson trailing garbage on a line", a + " x\n" + c, ndjson,
			`1:purchase/PC 0:!malformed JSON at byte 40: invalid character 'x' after top-level value`},
		{"ndjson two objects on a line", a + b + "\n" + c, ndjson,
			`1:purchase/PC 0:!malformed JSON at byte 39: invalid character '{' after top-level value`},
		{"ndjson array line", "[" + a + "]\n" + c, ndjson, "1:purchase/PC 0:!event must be a JSON object, got array"},
		{"ndjson invalid event", a + "\n" + `{"event_type":"view"}`, ndjson, "0:view/PA 1:!product_id is required"},
		{"concatenated objects", a + b + " " + c, "", "0:view/PA 1:cart/PB 2:purchase/PC"},
		{"concatenated pretty objects", "{\n  \"event_type\": \"view\",\n  \"product_id\": \"PA\"\n}\n{\n  \"event_type\": \"cart\",\n  \"product_id\": \"PB\"\n}\n", "",
			"0:view/PA 1:cart/PB"},
		{"pretty array", "[\n  {\n    \"event_type\": \"view\",\n    \"product_id\": \"PA\"\n  }\n]\n", "", "0:view/PA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, idx, rejects, err := testDecoder().Decode([]byte(tt.body), tt.contentType, nil, nil)
			if err != nil {
				t.Fatalf("error %v", err)
			}
			if len(idx) != len(events) {
				t.Fatalf("%d events but %d indexes", len(events), len(idx))
			}
			if got := elements(events, idx, rejects); got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
		})
	}
}

func TestDecodeNotJSON(t *testing.T) {
	const a = `{"event_type":"view","product_id":"PA"}`
	tests := []struct{ name, body, contentType, want string }{
		{"hello", "hello", "", "body is not JSON: malformed JSON at byte 0: invalid character 'h' looking for beginning of value"},
		{"empty", "", "", "body is not JSON: empty body"},
		{"whitespace", " \r\n\t", "", "body is not JSON: empty body"},
		{"byte order mark only", "\xef\xbb\xbf", "", "body is not JSON: empty body"},
		{"empty ndjson", "\n\n", "application/x-ndjson", "body is not JSON: empty body"},
		{"truncated array", "[1,2", "", "body is not JSON: malformed JSON at byte 4: unexpected end of input"},
		{"truncated array of events", "[" + a + ",\n" + a, "", "body is not JSON: malformed JSON at byte 81: unexpected end of input"},
		{"array with malformed element", `[{"event_type":}]`, "", "body is not JSON: malformed JSON at byte 15: invalid character '}' looking for beginning of value"},
		{"array trailing comma", "[" + a + ",]", "", "body is not JSON: malformed JSON at byte 41: invalid character ']' looking for beginning of value"},
		{"array then more", "[" + a + "] [" + a + "]", "", "body is not JSON: malformed JSON at byte 42: invalid character '[' after top-level array"},
		{"truncated object", `{"event_type":"view"`, "", "body is not JSON: malformed JSON at byte 20: unexpected end of input"},
		{"object with trailing garbage", a + " x", "", "body is not JSON: malformed JSON at byte 40: invalid character 'x' looking for beginning of value"},
		{"single quotes", `{'event_type':'view'}`, "", "body is not JSON: malformed JSON at byte 1: invalid character '\\'' looking for beginning of object key string"},
		{"garbage ndjson", "hello\nworld", "application/x-ndjson", "body is not JSON: malformed JSON at byte 0: invalid character 'h' looking for beginning of value"},
		{"bad escape", `{"event_type":"vi\ew"}`, "", `body is not JSON: malformed JSON at byte 18: invalid character 'e' in string escape code`},
		{"control character", "{\"event_type\":\"vi\new\"}", "", `body is not JSON: malformed JSON at byte 17: invalid character 0x0a in string literal`},
		{"leading zero", `{"price":01}`, "", `body is not JSON: malformed JSON at byte 10: invalid character '1' after object key:value pair`},
		{"bare minus", `{"price":-}`, "", `body is not JSON: malformed JSON at byte 10: invalid character '}' in numeric literal`},
		{"nesting too deep", strings.Repeat("[", maxDepth+1), "", "body is not JSON: malformed JSON at byte 10000: exceeded max depth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dst := make([]Event, 2, 8)
			idx := make([]int, 2, 8)
			events, gotIdx, rejects, err := testDecoder().Decode([]byte(tt.body), tt.contentType, dst, idx)
			if !errors.Is(err, ErrNotJSON) {
				t.Fatalf("error %v, want ErrNotJSON", err)
			}
			if err.Error() != tt.want {
				t.Errorf("error %q\nwant  %q", err, tt.want)
			}
			if len(events) != 2 || len(gotIdx) != 2 || rejects != nil {
				t.Errorf("on error got %d events, %d indexes, rejects %v; want dst and idx as given", len(events), len(gotIdx), rejects)
			}
		})
	}
}

func TestMaxEvents(t *testing.T) {
	const a = `{"event_type":"view","product_id":"PA"}`
	bad := `{"event_type":"x"}`
	bodies := map[string]string{
		"array":  "[" + a + "," + bad + "," + a + "]",
		"ndjson": a + "\n" + bad + "\n\n" + a + "\n",
		"stream": a + " " + bad + " " + a,
	}
	for name, body := range bodies {
		t.Run(name, func(t *testing.T) {
			d := testDecoder()
			d.MaxEvents = 2
			_, _, _, err := d.Decode([]byte(body), "", nil, nil)
			if !errors.Is(err, ErrTooManyEvents) || err.Error() != "too many events in body: more than 2" {
				t.Errorf("MaxEvents 2: error %v, want ErrTooManyEvents", err)
			}
			d.MaxEvents = 3 // rejected events count too, and exactly the limit is fine
			events, idx, rejects, err := d.Decode([]byte(body), "", nil, nil)
			if err != nil || elements(events, idx, rejects) != `0:view/PA 2:view/PA 1:!event_type "x" is not one of view, cart, purchase, stock, competitor_price` {
				t.Errorf("MaxEvents 3: %v %s", err, elements(events, idx, rejects))
			}
		})
	}
}

func TestDecodeAppends(t *testing.T) {
	d := testDecoder()
	dst := []Event{{ProductID: "OLD"}}
	idx := []int{7}
	dst, idx, _, err := d.Decode([]byte(`[{"event_type":"x"},{"event_type":"view","product_id":"PA"}]`), "", dst, idx)
	if err != nil {
		t.Fatal(err)
	}
	if len(dst) != 2 || dst[0].ProductID != "OLD" || dst[1].ProductID != "PA" || len(idx) != 2 || idx[0] != 7 || idx[1] != 1 {
		t.Errorf("got %+v %v; want the old element kept and the new one appended", dst, idx)
	}
}

func TestProductIDsInterned(t *testing.T) {
	d := testDecoder()
	body := []byte(`[{"event_type":"view","product_id":"PA"},{"event_type":"cart","product_id":"P\u0041"}]`)
	events, _, _, err := d.Decode(body, "", nil, nil)
	if err != nil || len(events) != 2 {
		t.Fatalf("%v %v", events, err)
	}
	if unsafe.StringData(events[0].ProductID) != unsafe.StringData(events[1].ProductID) {
		t.Error("the same product id decoded twice is two strings")
	}
	// Events must not alias the body, which the caller may reuse.
	for i := range body {
		body[i] = 'X'
	}
	if events[0].ProductID != "PA" {
		t.Errorf("product id changed with the body: %q", events[0].ProductID)
	}
}

func TestDecodeAllocations(t *testing.T) {
	if testing.Short() {
		t.Skip("allocation counts")
	}
	body := benchBody(1000, false, false)
	d := testDecoder()
	dst := make([]Event, 0, 1000)
	idx := make([]int, 0, 1000)
	allocs := testing.AllocsPerRun(20, func() {
		var err error
		if dst, idx, _, err = d.Decode(body, "", dst[:0], idx[:0]); err != nil || len(dst) != 1000 {
			t.Fatalf("%d events, %v", len(dst), err)
		}
	})
	// A pooled state can be dropped by a GC; then it and its intern table
	// are made again (a dozen allocations), never one per event.
	if allocs > 20 {
		t.Errorf("%.0f allocations to decode 1000 events", allocs)
	}
}

func TestDecodeConcurrent(t *testing.T) {
	d := testDecoder()
	body := benchBody(200, true, false)
	want, wantIdx, _, err := d.Decode(body, "", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				got, idx, rejects, err := d.Decode(body, "", nil, nil)
				if err != nil || len(rejects) != 0 || len(got) != len(want) {
					t.Errorf("%d events, rejects %v, %v", len(got), rejects, err)
					return
				}
				for i := range got {
					if got[i] != want[i] || idx[i] != wantIdx[i] {
						t.Errorf("event %d: %+v, want %+v", i, got[i], want[i])
						return
					}
				}
			}
		})
	}
	wg.Wait()
}

// TestDecodeUserHash checks that an event keeps its user_id as the hash an
// experiment assigns arms by, of the unescaped string, and 0 without one.
func TestDecodeUserHash(t *testing.T) {
	for body, want := range map[string]uint64{
		`{"event_type":"view","product_id":"PA","user_id":"U1"}`:                               experiment.IDHash("U1"),
		`{"event_type":"view","product_id":"PA","user_id":"J\u00e9r\u00f4me \ud83d\ude00 ok"}`: experiment.IDHash("Jérôme 😀 ok"),
		`{"event_type":"view","product_id":"PA","user_id":""}`:                                 0,
		`{"event_type":"view","product_id":"PA","user_id":null}`:                               0,
		`{"event_type":"view","product_id":"PA"}`:                                              0,
	} {
		got, reason := one(t, testDecoder(), body, "")
		if reason != "" || got.User != want {
			t.Errorf("%s: user %d (%s), want %d", body, got.User, reason, want)
		}
	}
}
