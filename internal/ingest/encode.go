package ingest

import (
	"encoding/json"
	"strconv"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// AppendJSON appends ev in the wire format Decode reads, as one JSON object.
// Scale-out mode uses it where an event must travel on as a record of its
// own (re-keyed through the repartition topic, or produced by an API
// replica). The timestamp is written in unix milliseconds, the finest unit
// the wire format has, so a decoded event's sub-millisecond digits are not
// kept; pricing does not use them.
func AppendJSON(b []byte, ev *Event) []byte {
	b = append(b, '{')
	if ev.EventID != "" {
		b = append(b, `"event_id":`...)
		b = appendJSONString(b, ev.EventID)
		b = append(b, ',')
	}
	b = append(b, `"event_type":"`...)
	b = append(b, ev.Type.String()...)
	b = append(b, `","product_id":`...)
	b = appendJSONString(b, ev.ProductID)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, ev.Timestamp/1e6, 10)
	if ev.Price > 0 {
		b = append(b, `,"price":`...)
		b = strconv.AppendFloat(b, ev.Price, 'g', -1, 64)
	}
	if ev.Quantity > 1 || ev.Type == pricing.Stock {
		b = append(b, `,"quantity":`...)
		b = strconv.AppendInt(b, int64(ev.Quantity), 10)
	}
	if ev.Competitor != "" {
		b = append(b, `,"competitor":`...)
		b = appendJSONString(b, ev.Competitor)
	}
	return append(b, '}')
}

// appendJSONString quotes s. Ids are validated to a safe alphabet before
// they get here, so the fast path copies; anything else takes
// encoding/json's escaping.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			q, _ := json.Marshal(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}
