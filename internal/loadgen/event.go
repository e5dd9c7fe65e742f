package loadgen

import (
	"strconv"

	"github.com/dynaprice/dynaprice/internal/ingest"
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
	b = append(b, `{"event_type":"`...)
	b = append(b, ev.Type.String()...)
	b = append(b, `","product_id":"`...)
	b = append(b, ev.ProductID...)
	b = append(b, `","user_id":"U`...)
	b = strconv.AppendInt(b, int64(user), 10)
	b = append(b, `","timestamp":`...)
	b = strconv.AppendInt(b, tsMillis, 10)
	b = append(b, `,"price":`...)
	b = strconv.AppendFloat(b, ev.Price, 'f', -1, 64)
	return append(b, '}')
}
