package loadgen

import (
	"strconv"

	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// appendEvent appends ev as one event in the original system's ("seed")
// format,
//
//	{"event_type":"view","product_id":"PA","user_id":"U17","timestamp":1773713139123,"price":299}
//
// with the timestamp in unix milliseconds. Like the original's producers it
// writes no event_id (so the engine cannot deduplicate these events, which
// is the load the original saw) and no quantity. The load generator is
// only useful if it can outrun the engine, so this appends into the
// caller's buffer instead of going through encoding/json. Product ids were
// validated to [A-Za-z0-9_-], so they need no escaping.
func appendEvent(b []byte, ev *ingest.Event, user int, tsMillis int64) []byte {
	b = appendEventHead(b, ev.Type)
	b = append(b, ev.ProductID...)
	return append(appendEventTail(b, user, tsMillis, ev.Price), '}')
}

// appendSpreadEvent appends event k of a spread run in the same format,
// its product's id taken from ps without allocating, and with
// "event_id":"<idPrefix><k>" when idPrefix is not empty: unique within the
// run, and across runs when the prefix is (see HTTPConfig.EventIDs). The
// prefix must need no JSON escaping.
func appendSpreadEvent(b []byte, ps productSet, ev SpreadEvent, tsMillis int64, idPrefix string, k uint64) []byte {
	b = appendEventHead(b, ev.Type)
	b = ps.appendID(b, ev.Product)
	b = appendEventTail(b, ev.User, tsMillis, ps.price(ev.Product))
	if idPrefix != "" {
		b = append(b, `,"event_id":"`...)
		b = append(b, idPrefix...)
		b = strconv.AppendUint(b, k, 10)
		b = append(b, '"')
	}
	return append(b, '}')
}

// appendEventHead appends an event up to its product id's value.
func appendEventHead(b []byte, t pricing.EventType) []byte {
	b = append(b, `{"event_type":"`...)
	b = append(b, t.String()...)
	return append(b, `","product_id":"`...)
}

// appendEventTail appends what follows the product id, up to the closing
// brace.
func appendEventTail(b []byte, user int, tsMillis int64, price float64) []byte {
	b = append(b, `","user_id":"U`...)
	b = strconv.AppendInt(b, int64(user), 10)
	b = append(b, `","timestamp":`...)
	b = strconv.AppendInt(b, tsMillis, 10)
	b = append(b, `,"price":`...)
	return strconv.AppendFloat(b, price, 'f', -1, 64)
}
