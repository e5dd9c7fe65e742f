package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"math"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/experiment"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// The reference: the event rules written again, slowly and plainly, on top
// of encoding/json. FuzzDecode checks the decoder against it.

// refJSON decodes b with encoding/json, which must accept it as exactly one
// JSON value. Numbers are kept as text.
func refJSON(b []byte) (any, bool) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if dec.Decode(&v) != nil {
		return nil, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, false
	}
	return v, true
}

// refEvent applies the event rules to one decoded JSON object. It returns
// the event, or the name of the first field (in the decoder's order) that
// breaks a rule.
func refEvent(m map[string]any, now time.Time, maxFuture time.Duration) (Event, string) {
	e := Event{Timestamp: now.UnixNano(), Quantity: 1}
	// A field is absent when missing or null.
	get := func(k string) (any, bool) { v, ok := m[k]; return v, ok && v != nil }

	v, ok := get("event_type")
	s, isStr := v.(string)
	if !ok || !isStr {
		return e, "event_type"
	}
	if e.Type, ok = pricing.ParseEventType(s); !ok {
		return e, "event_type"
	}

	v, ok = get("product_id")
	if s, isStr = v.(string); !ok || !isStr || !pricing.ValidID(s) {
		return e, "product_id"
	}
	e.ProductID = s

	if v, ok = get("user_id"); ok {
		if s, isStr = v.(string); !isStr || len(s) > 128 {
			return e, "user_id"
		}
		e.User = experiment.IDHash(s)
	}

	if v, ok = get("event_id"); ok {
		s, isStr = v.(string)
		if !isStr || len(s) < 1 || len(s) > 128 || strings.IndexFunc(s, func(r rune) bool { return r < 0x20 || r > 0x7e }) >= 0 {
			return e, "event_id"
		}
		e.EventID = s
	}

	if v, ok = get("timestamp"); ok {
		n, isNum := v.(json.Number)
		if !isNum {
			return e, "timestamp"
		}
		ns, zero, ok := refTimestamp(string(n), now.UnixNano(), now.UnixNano()+int64(maxFuture))
		if !ok {
			return e, "timestamp"
		}
		if !zero {
			e.Timestamp = ns
		}
	}

	if v, ok = get("price"); ok {
		n, isNum := v.(json.Number)
		if !isNum {
			return e, "price"
		}
		p, _ := strconv.ParseFloat(string(n), 64)
		// A price is one cent to a billion, once rounded to cents.
		if math.IsNaN(p) || p < 0.005 || p > 1e9 {
			return e, "price"
		}
		e.Price = p
	}

	if v, ok = get("quantity"); ok {
		n, isNum := v.(json.Number)
		if !isNum {
			return e, "quantity"
		}
		q, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || q < 1 || q > 10000 {
			return e, "quantity"
		}
		e.Quantity = int32(q)
	}
	return e, ""
}

// refTimestamp converts a JSON number of unix seconds (below 1e11) or
// milliseconds to nanoseconds with exact rational arithmetic, truncating,
// and checks the range. zero reports a value of exactly zero ("no time").
func refTimestamp(num string, now, latest int64) (ns int64, zero, ok bool) {
	mantissa, _, _ := strings.Cut(strings.ToLower(num), "e")
	if strings.Trim(mantissa, "-.0") == "" {
		return 0, true, true
	}
	// Settle values far outside the range before math/big, which would
	// take forever over an exponent like 1e-999999999.
	f, _ := strconv.ParseFloat(num, 64)
	if f < 1 || f > 1e15 {
		return 0, false, false
	}
	r, okRat := new(big.Rat).SetString(num)
	if !okRat {
		panic("big.Rat cannot parse JSON number " + num)
	}
	unit := big.NewRat(1e9, 1)
	if r.Cmp(big.NewRat(1e11, 1)) >= 0 {
		unit = big.NewRat(1e6, 1)
	}
	r.Mul(r, unit)
	n := new(big.Int).Quo(r.Num(), r.Denom())
	if !n.IsInt64() {
		return 0, false, false
	}
	ns = n.Int64()
	return ns, false, ns >= 946684800e9 && ns <= latest
}

// fuzzNow is the fuzz tests' receive time.
var fuzzNow = time.Date(2026, 3, 17, 2, 5, 39, 0, time.UTC)

func FuzzDecode(f *testing.F) {
	seeds := []string{
		`{"event_type":"view","product_id":"PA","user_id":"U1","timestamp":1773713139123,"price":299}`,
		`{"event_type":"purchase","product_id":"PA","user_id":"","timestamp":0,"price":120}`,
		`{"event_id":"e-1","event_type":"cart","product_id":"P_9-x","timestamp":1773713139.123456789,"price":12.5,"quantity":3}`,
		`[{"event_type":"view","product_id":"PA"},{"event_type":"click","product_id":"PA"},5,null,[]]`,
		"{\"event_type\":\"view\",\"product_id\":\"PA\"}\n\n{\"event_type\":\"cart\",\n{\"event_type\":\"cart\",\"product_id\":\"PB\"}\r\n",
		`{"event_type":"view","product_id":"PA"}{"event_type":"cart","product_id":"PB"} 7 "x"`,
		"\xef\xbb\xbf{\"event_type\":\"view\",\"product_id\":\"PA\"}",
		`{"event\u005ftype":"vi\u0065w","product_id":"P\u0041","user_id":"J\u00e9r\u00f4me \ud83d\ude00 \ud800 \udc00x","event_id":"a\"b\\c\/d"}`,
		"{\"event_type\":\"view\",\"product_id\":\"PA\",\"user_id\":\"\xff\xfe\xed\xa0\x80\xc3\"}",
		`{"event_type":"click","event_type":"view","product_id":"a b","product_id":"PA","price":"1","price":null}`,
		`{"event_type":"view","product_id":"PA","extra":{"a":[1,-2.5e-3,{"b":[true,false,null]}],"c":""}}`,
		`{"event_type":"view","product_id":"PA","timestamp":946684799.999999999,"price":1e400,"quantity":1e2}`,
		`{"event_type":"view","product_id":"PA","timestamp":99999999999.9,"price":-0.0,"quantity":10001}`,
		`{"event_type":"view","product_id":"PA","timestamp":1e-999999999,"price":5e-324,"quantity":-0}`,
		`{"event_type":"view","product_id":"PA","timestamp":0.0000000000001773713139e22}`,
		`{"event_type":"view","product_id":"PA","timestamp":17737131391234567899e-10}`,
		`{"event_type":"view","product_id":"PA","timestamp":-1e300}`,
		`[1,2`, `hello`, ``, `[]`, `{}`, `{"a":}`, `[{"event_type":"view","product_id":"PA"},]`,
		`{"event_type":"vi\ew"}`, "{\"event_type\":\"vi\new\"}", `{"price":01}`, `{"price":-}`, `{"price":1.}`,
		strings.Repeat("[", 50) + strings.Repeat("]", 50),
		`{"product_id":"` + strings.Repeat("Z", 65) + `","event_type":"view","event_id":"` + strings.Repeat("e", 129) + `"}`,
	}
	for _, s := range seeds {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, body []byte, mode uint8) {
		contentType := ""
		if mode&1 != 0 {
			contentType = "application/x-ndjson"
		}
		d := &Decoder{Now: func() time.Time { return fuzzNow }}
		events, idx, rejects, err := d.Decode(body, contentType, nil, nil)
		n := checkInvariants(t, d, events, idx, rejects, err)

		// A limit changes nothing but whether the body is refused: it must
		// be when it holds more events, and may be when it is broken after
		// more events than the limit.
		limited := &Decoder{Now: d.Now, MaxEvents: 3}
		le, li, lr, lerr := limited.Decode(body, contentType, nil, nil)
		switch {
		case errors.Is(lerr, ErrTooManyEvents):
			if !(err == nil && n > 3) && !errors.Is(err, ErrNotJSON) {
				t.Fatalf("MaxEvents 3 refuses a body of %d events (error %v)", n, err)
			}
		case err == nil && n > 3:
			t.Fatalf("%d events with MaxEvents 3: error %v", n, lerr)
		case (err == nil) != (lerr == nil) || (err != nil && err.Error() != lerr.Error()):
			t.Fatalf("MaxEvents 3 changed the error from %v to %v", err, lerr)
		case elements(events, idx, rejects) != elements(le, li, lr):
			t.Fatalf("MaxEvents 3 changed the outcome")
		}

		if err != nil {
			return
		}
		// Differential checks: wherever encoding/json can say what the
		// elements of the body are, each must come out as the reference
		// says.
		outcome := func(i int) (Event, string) {
			for j, k := range idx {
				if k == i {
					return events[j], ""
				}
			}
			for _, r := range rejects {
				if r.Index == i {
					return Event{}, r.Error
				}
			}
			t.Fatalf("element %d missing", i)
			return Event{}, ""
		}
		if contentType != "" {
			i, first := 0, true
			for line := range bytes.SplitSeq(body, []byte("\n")) {
				if first {
					line, first = bytes.TrimPrefix(line, bom), false
				}
				if len(bytes.Trim(line, " \t\r")) == 0 {
					continue
				}
				if v, ok := refJSON(line); ok {
					compare(t, line, v, i, outcome)
				}
				i++
			}
			return
		}
		v, ok := refJSON(body)
		if !ok {
			return
		}
		if !bytes.HasPrefix(bytes.TrimLeft(body, " \t\r\n"), []byte("[")) {
			compare(t, body, v, 0, outcome)
			return
		}
		var elems []json.RawMessage
		if json.Unmarshal(body, &elems) != nil {
			t.Fatalf("encoding/json accepts %q but not as an array", body)
		}
		if len(elems) != n {
			t.Fatalf("%d elements, encoding/json finds %d", n, len(elems))
		}
		for i, el := range elems {
			ev, _ := refJSON(el)
			compare(t, el, ev, i, outcome)
		}
	})
}

// compare checks element i of the decoder's outcome against the reference
// for the value v that encoding/json decoded from raw.
func compare(t *testing.T, raw []byte, v any, i int, outcome func(int) (Event, string)) {
	t.Helper()
	got, reason := outcome(i)
	m, isObj := v.(map[string]any)
	if !isObj {
		if !strings.HasPrefix(reason, "event must be a JSON object") {
			t.Fatalf("element %d %q is not an object; decoder: %+v %q", i, raw, got, reason)
		}
		return
	}
	want, field := refEvent(m, fuzzNow, DefaultMaxFuture)
	switch {
	case field != "" && reason == "":
		t.Fatalf("element %d %q: decoder accepts %+v, reference rejects %s", i, raw, got, field)
	case field == "" && reason != "":
		t.Fatalf("element %d %q: decoder rejects (%s), reference accepts %+v", i, raw, reason, want)
	case field != "" && !strings.HasPrefix(reason, field+" "):
		t.Fatalf("element %d %q: decoder rejects (%s), reference rejects %s", i, raw, reason, field)
	case field == "" && (got != want || math.Float64bits(got.Price) != math.Float64bits(want.Price)):
		t.Fatalf("element %d %q:\ndecoder   %+v\nreference %+v", i, raw, got, want)
	}
}

// checkInvariants checks what holds for any body, and returns the number
// of elements.
func checkInvariants(t *testing.T, d *Decoder, events []Event, idx []int, rejects []Reject, err error) int {
	t.Helper()
	if err != nil {
		if !errors.Is(err, ErrNotJSON) && !errors.Is(err, ErrTooManyEvents) {
			t.Fatalf("unexpected error %v", err)
		}
		if len(events) != 0 || len(idx) != 0 || rejects != nil {
			t.Fatalf("error %v with results", err)
		}
		return 0
	}
	if len(events) != len(idx) {
		t.Fatalf("%d events, %d indexes", len(events), len(idx))
	}
	// Every element is exactly one event or one reject, in order.
	n := len(idx) + len(rejects)
	seen := make([]bool, n)
	last := -1
	for _, i := range idx {
		if i <= last || i >= n || seen[i] {
			t.Fatalf("event indexes %v, rejects %v", idx, rejects)
		}
		seen[i], last = true, i
	}
	last = -1
	for _, r := range rejects {
		if r.Index <= last || r.Index >= n || seen[r.Index] {
			t.Fatalf("event indexes %v, rejects %v", idx, rejects)
		}
		seen[r.Index], last = true, r.Index
		// A reason names what is wrong: the JSON, or the field at fault.
		switch first, _, _ := strings.Cut(r.Error, " "); first {
		case "malformed", "event", "event_type", "product_id", "user_id", "event_id", "timestamp", "price", "quantity":
		default:
			t.Fatalf("reason %q", r.Error)
		}
		if len(r.Error) > 512 { // echoed values are cut to 64 bytes; quoting can quadruple them
			t.Fatalf("reason of %d bytes: %q", len(r.Error), r.Error)
		}
	}
	now := d.Now().UnixNano()
	for _, e := range events {
		switch {
		case e.Type.String() == "unknown",
			!pricing.ValidID(e.ProductID),
			e.Quantity < 1 || e.Quantity > MaxQuantity,
			e.Price < 0 || math.IsInf(e.Price, 0) || math.IsNaN(e.Price),
			e.Timestamp < minTimestamp || e.Timestamp > now+int64(DefaultMaxFuture),
			e.EventID != "" && !printableASCII([]byte(e.EventID)),
			len(e.EventID) > MaxEventIDLen:
			t.Fatalf("invalid event accepted: %+v", e)
		}
	}
	return n
}

// FuzzDecodeFields builds objects from fuzzed JSON texts for each known
// field (an empty text leaves the field out), so that most inputs are JSON
// and reach the differential check on the field rules themselves.
func FuzzDecodeFields(f *testing.F) {
	type seed struct{ typ, id, user, eventID, ts, price, qty, extra string }
	for _, s := range []seed{
		{`"view"`, `"PA"`, `"U1"`, ``, `1773713139123`, `299`, ``, ``},
		{`"purchase"`, `"PA"`, `""`, ``, `0`, `120`, ``, ``},
		{`"cart"`, `"P_9-x"`, ``, `"e-1"`, `1773713139.123456789`, `12.5`, `3`, `"x":{"y":[1]}`},
		{`"vi\u0065w"`, `"P\u0041"`, `"J\u00e9r\u00f4me \ud83d\ude00"`, `"a\"b\\c\/d"`, `1.773713139123E12`, `2.5e+2`, `10000`, ``},
		{`"click"`, `"a b"`, `5`, `""`, `"1773713139"`, `"299"`, `1.5`, `"price":1`},
		{`null`, `null`, `null`, `null`, `null`, `null`, `null`, `"event_type":"view"`},
		{`"view"`, `"PA"`, "\"\xff\xfe\"", `"\ud800"`, `946684799.999999999`, `1e400`, `1e2`, ``},
		{`"view"`, `"PA"`, ``, `"~"`, `-0.0e5`, `5e-324`, `-0`, `"event_type":"cart"`},
		{`"view"`, `"PA"`, ``, ``, `17737131391234567899e-10`, `-1`, `0`, ``},
		{`"view"`, `"PA"`, ``, ``, `1773799539.000000001`, `0.1`, `99999999999999999999`, ``},
	} {
		f.Add(s.typ, s.id, s.user, s.eventID, s.ts, s.price, s.qty, s.extra)
	}
	f.Fuzz(func(t *testing.T, typ, id, user, eventID, ts, price, qty, extra string) {
		var b strings.Builder
		b.WriteByte('{')
		for _, kv := range [][2]string{{"event_type", typ}, {"product_id", id}, {"user_id", user},
			{"event_id", eventID}, {"timestamp", ts}, {"price", price}, {"quantity", qty}} {
			if kv[1] != "" {
				b.WriteString(`"` + kv[0] + `":` + kv[1] + ",")
			}
		}
		b.WriteString(extra)
		body := []byte(strings.TrimSuffix(b.String(), ",") + "}")
		v, ok := refJSON(body)
		if !ok {
			return
		}
		d := &Decoder{Now: func() time.Time { return fuzzNow }}
		events, idx, rejects, err := d.Decode(body, "", nil, nil)
		if n := checkInvariants(t, d, events, idx, rejects, err); err != nil || n != 1 {
			t.Fatalf("%q: %d elements, error %v", body, n, err)
		}
		compare(t, body, v, 0, func(int) (Event, string) {
			if len(events) == 1 {
				return events[0], ""
			}
			return Event{}, rejects[0].Error
		})
	})
}
