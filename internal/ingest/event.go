package ingest

import (
	"fmt"
	"math"
	"strconv"

	"github.com/dynaprice/dynaprice/internal/experiment"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Event is one valid shopper event.
type Event struct {
	// EventID is the client's id for the event, "" when absent.
	EventID   string
	Type      pricing.EventType
	ProductID string
	// Timestamp is when the event happened, in unix nanoseconds: the
	// receive time when the body gave none, or gave 0 (the old system's
	// producers sent a zero time when they had none).
	Timestamp int64
	// Price is what the shopper saw, 0 when absent.
	Price float64
	// Quantity is at least 1 (1 when absent); for a stock event it is the
	// units on hand, 0 to MaxStock.
	Quantity int32
	// Competitor names the competitor of a competitor_price event, whose
	// Price is the competitor's.
	Competitor string
	// User is the hash of the event's user_id (experiment.IDHash; 0 when
	// absent): the shopper an experiment assigns an arm. A hash, not the
	// string, so that decoding allocates nothing for it.
	User uint64
}

// Limits on event fields.
const (
	MaxUserIDLen  = 128
	MaxEventIDLen = 128
	MaxQuantity   = 10000
	// MaxStock is the largest stock level a stock event may report.
	MaxStock = 1_000_000_000
	// MaxCompetitorLen is the longest competitor name.
	MaxCompetitorLen = 64
)

// minTimestamp is the earliest accepted event time, 2000-01-01T00:00:00Z,
// in unix nanoseconds.
const minTimestamp = 946684800 * 1e9

// rawField is a field's last value in an object, undecoded.
type rawField struct {
	kind kind
	raw  []byte // string contents or number text
	esc  bool   // raw is a string that needs decoding
}

func (f *rawField) present() bool { return f.kind != kindAbsent && f.kind != kindNull }

// rawEvent holds the fields of one object that the decoder knows. Unknown
// fields are skipped (the old system ignored them too).
type rawEvent struct {
	eventType, productID, userID, eventID, timestamp, price, quantity, competitor rawField
}

func (ev *rawEvent) field(key []byte) *rawField {
	switch string(key) {
	case "event_type":
		return &ev.eventType
	case "product_id":
		return &ev.productID
	case "user_id":
		return &ev.userID
	case "event_id":
		return &ev.eventID
	case "timestamp":
		return &ev.timestamp
	case "price":
		return &ev.price
	case "quantity":
		return &ev.quantity
	case "competitor":
		return &ev.competitor
	}
	return nil
}

// maxInterned bounds an intern table: ids and names come from clients,
// so an unbounded table would let them grow memory at will. When full it
// is cleared, which costs one allocation per string until it warms again.
const maxInterned = 4096

// intern returns b as a string from tab, adding it if new, so that a
// string seen before costs no allocation.
func intern(tab map[string]string, b []byte) string {
	if s, ok := tab[string(b)]; ok {
		return s
	}
	if len(tab) >= maxInterned {
		clear(tab)
	}
	s := string(b)
	tab[s] = s
	return s
}

// fields turns raw values into an Event. Fields are checked in a fixed
// order and the first problem is the reason returned ("" when valid).
// A null value counts as absent, as it did for the old system's
// encoding/json structs.
func (st *state) fields(r *rawEvent) (Event, string) {
	e := Event{Timestamp: st.now, Quantity: 1}

	b, reason := st.requiredString(&r.eventType, "event_type")
	if reason != "" {
		return e, reason
	}
	t, ok := pricing.ParseEventType(string(b))
	if !ok {
		return e, fmt.Sprintf("event_type %s is not one of view, cart, purchase, stock, competitor_price", quote(b))
	}
	e.Type = t

	if b, reason = st.requiredString(&r.productID, "product_id"); reason != "" {
		return e, reason
	}
	// Only valid ids are interned, so a hit needs no check.
	if _, ok := st.ids[string(b)]; !ok && !pricing.ValidID(string(b)) {
		return e, fmt.Sprintf("product_id %s must match [A-Za-z0-9_-]{1,%d}", quote(b), pricing.MaxIDLen)
	}
	e.ProductID = intern(st.ids, b)

	if r.userID.present() {
		if b, reason = st.string(&r.userID, "user_id"); reason != "" {
			return e, reason
		}
		if len(b) > MaxUserIDLen {
			return e, fmt.Sprintf("user_id must be at most %d bytes, got %d", MaxUserIDLen, len(b))
		}
		e.User = experiment.IDHash(b)
	}

	if r.eventID.present() {
		if b, reason = st.string(&r.eventID, "event_id"); reason != "" {
			return e, reason
		}
		if !printableASCII(b) || len(b) > MaxEventIDLen {
			return e, fmt.Sprintf("event_id %s must be 1-%d bytes of printable ASCII", quote(b), MaxEventIDLen)
		}
		e.EventID = string(b)
	}

	if f := &r.timestamp; f.present() {
		if f.kind != kindNumber {
			return e, typeError("timestamp", "number (unix seconds or milliseconds)", f.kind)
		}
		ns, class := unixNanos(f.raw)
		unit := "seconds"
		if class == inMillis {
			unit = "milliseconds"
		}
		switch {
		case class == isZero:
			// The old system's producers sent "timestamp":0 when they had
			// no time (a Go zero value): keep the receive time.
		case ns > st.latest:
			return e, fmt.Sprintf("timestamp %s (unix %s) is more than %v in the future", short(f.raw), unit, st.maxFuture)
		case ns < minTimestamp: // includes negative values
			return e, fmt.Sprintf("timestamp %s (unix %s) is before 2000-01-01", short(f.raw), unit)
		default:
			e.Timestamp = ns
		}
	}

	if f := &r.price; f.present() {
		if f.kind != kindNumber {
			return e, typeError("price", "number", f.kind)
		}
		// string(f.raw) does not escape, so it needs no allocation for
		// numbers of up to 32 bytes. The text is valid JSON, hence valid
		// for ParseFloat, whose only possible error is ErrRange, with ±Inf
		// or 0: both rejected below.
		p, _ := strconv.ParseFloat(string(f.raw), 64)
		if !(p > 0) || p > pricing.MaxPrice {
			return e, "price must be a finite number > 0 and at most 1000000000, got " + short(f.raw)
		}
		if pricing.RoundCents(p) < 0.01 {
			return e, "price must be at least 0.01 once rounded to cents, got " + short(f.raw)
		}
		e.Price = p
	}

	if f := &r.quantity; f.present() {
		if f.kind != kindNumber {
			return e, typeError("quantity", "number", f.kind)
		}
		lo, hi, what := int32(1), int32(MaxQuantity), "quantity"
		if t == pricing.Stock {
			lo, hi, what = 0, MaxStock, "quantity of a stock event (units on hand)"
		}
		q, ok := integer(f.raw, lo, hi)
		if !ok {
			return e, fmt.Sprintf("%s must be an integer from %d to %d, got %s", what, lo, hi, short(f.raw))
		}
		e.Quantity = q
	} else if t == pricing.Stock {
		return e, "a stock event needs quantity, the units on hand"
	}

	switch {
	case t == pricing.CompetitorPrice:
		if e.Price == 0 {
			return e, "a competitor_price event needs price, the competitor's price"
		}
		if !r.competitor.present() {
			return e, "a competitor_price event needs competitor, the competitor's name"
		}
		if b, reason = st.string(&r.competitor, "competitor"); reason != "" {
			return e, reason
		}
		if !printableASCII(b) || len(b) > MaxCompetitorLen {
			return e, fmt.Sprintf("competitor %s must be 1-%d bytes of printable ASCII", quote(b), MaxCompetitorLen)
		}
		e.Competitor = intern(st.names, b)
	case r.competitor.present():
		return e, "competitor is only for competitor_price events"
	}
	return e, ""
}

// requiredString returns the decoded value of a required string field.
func (st *state) requiredString(f *rawField, name string) ([]byte, string) {
	if !f.present() {
		return nil, name + " is required"
	}
	return st.string(f, name)
}

// string returns the decoded value of a string field, in scratch space
// valid until the next call.
func (st *state) string(f *rawField, name string) ([]byte, string) {
	if f.kind != kindString {
		return nil, typeError(name, "string", f.kind)
	}
	if !f.esc {
		return f.raw, ""
	}
	st.buf = appendUnescaped(st.buf[:0], f.raw)
	return st.buf, ""
}

func typeError(name, want string, got kind) string {
	return fmt.Sprintf("%s must be a %s, got %v", name, want, got)
}

// quote quotes a value for a reason, shortened so that a client cannot make
// reasons as large as its body.
func quote(b []byte) string {
	const max = 64
	if len(b) > max {
		return fmt.Sprintf("%q... (%d bytes)", b[:max], len(b))
	}
	return fmt.Sprintf("%q", b)
}

// short shortens a number's text for a reason.
func short(num []byte) string {
	const max = 32
	if len(num) > max {
		return fmt.Sprintf("%s... (%d bytes)", num[:max], len(num))
	}
	return string(num)
}

func printableASCII(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c < 0x20 || c > 0x7e {
			return false
		}
	}
	return true
}

// integer parses a JSON integer in lo..hi (hi < 2^31). Fractions and
// exponents are refused, as encoding/json refuses them for integer fields.
func integer(num []byte, lo, hi int32) (int32, bool) {
	if len(num) > 10 {
		return 0, false
	}
	var q int64
	for _, c := range num {
		if c < '0' || c > '9' {
			return 0, false // '-', '.', 'e', 'E', '+'
		}
		q = q*10 + int64(c-'0')
	}
	return int32(q), q >= int64(lo) && q <= int64(hi)
}

// Classes of a timestamp, returned by unixNanos.
const (
	inSeconds = iota
	inMillis
	isZero // exactly zero, in any spelling
)

var pow10 = [...]uint64{1, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9,
	1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19}

// unixNanos converts the text of a JSON number holding unix seconds (below
// 1e11) or milliseconds (from 1e11) to nanoseconds, exactly, truncating
// what is finer than a nanosecond. Negative values come back negative (and
// are read as seconds); values beyond int64 saturate. 1e11 seconds is in
// the year 5138 and 1e11 milliseconds in 1973, so no acceptable time is
// ambiguous.
//
// It works on decimal digits rather than a float64, which cannot hold
// today's time in nanoseconds: 1773713139.123456789 must give
// 1773713139123456789.
func unixNanos(num []byte) (ns int64, class int) {
	neg := num[0] == '-'
	i := 0
	if neg {
		i = 1
	}
	// The value is m × 10^exp, truncated to m's first 19 significant
	// digits, which is finer than a nanosecond for every acceptable time.
	var m uint64
	nd, exp, frac := 0, 0, false
	for ; i < len(num); i++ {
		c := num[i]
		if c == '.' {
			frac = true
			continue
		}
		if c == 'e' || c == 'E' {
			break
		}
		d := uint64(c - '0')
		switch {
		case nd == 0 && d == 0: // leading zero
			if frac {
				exp--
			}
		case nd < 19:
			m = m*10 + d
			nd++
			if frac {
				exp--
			}
		case !frac: // dropped integer digit
			exp++
		}
	}
	if i < len(num) { // exponent
		i++
		eneg := num[i] == '-'
		if num[i] == '+' || num[i] == '-' {
			i++
		}
		e := 0
		for ; i < len(num); i++ {
			if e < 1e8 { // far beyond any use; stops overflow
				e = e*10 + int(num[i]-'0')
			}
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	if m == 0 {
		return 0, isZero
	}
	// m has nd digits, so m × 10^exp < 1e11 exactly when nd+exp <= 11,
	// and the truncated digits cannot carry it over.
	p := exp + 9
	if !neg && nd+exp > 11 {
		class = inMillis
		p = exp + 6
	}
	switch {
	case p > 18 || p >= 0 && m > math.MaxInt64/pow10[p]:
		ns = math.MaxInt64
	case p >= 0:
		ns = int64(m * pow10[p])
	case p >= -19:
		ns = int64(m / pow10[-p])
	}
	if neg {
		ns = -ns
	}
	return ns, class
}
