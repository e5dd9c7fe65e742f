package live

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// entry is a Price as it waits in clients' queues: its wire form, encoded
// once per update in Publish and then shared read-only by every client, so
// that adding clients costs queue slots, not encoding work or allocations.
type entry struct {
	id      string
	version uint64
	// pub is when the update was published (unix ns), for the delivery lag.
	pub int64
	msg []byte
}

// AppendMessage appends u's wire form, the WebSocket message and also the
// value of a price-updates record in scale-out mode. The field order and names are the
// older system's ("type", "product_id", "new_price", "timestamp" in unix
// seconds) followed by ours; its clients parse the first four and must keep
// working. Hand-written instead of encoding/json because this runs once per
// published update; the output is what
// encoding/json would produce for the same fields (the tests check that).
// Non-finite numbers have no JSON form; the caller drops such updates.
func (u Price) AppendMessage(b []byte) []byte {
	b = append(b, `{"type":"price_update","product_id":`...)
	b = appendString(b, u.ProductID)
	b = append(b, `,"new_price":`...)
	b = appendFloat(b, u.Price)
	b = append(b, `,"timestamp":`...)
	b = strconv.AppendInt(b, time.Unix(0, u.At).Unix(), 10)
	b = append(b, `,"price_source":`...)
	b = appendString(b, u.Source.String())
	b = append(b, `,"demand":`...)
	b = appendFloat(b, math.Round(u.Demand))
	b = append(b, `,"demand_exact":`...)
	b = appendFloat(b, pricing.Round(u.Demand, pricing.DemandDecimals))
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, u.Version, 10)
	b = append(b, `,"lowest_30d":`...)
	b = appendFloat(b, u.Lowest30)
	b = append(b, `,"timestamp_ms":`...)
	b = strconv.AppendInt(b, time.Unix(0, u.At).UnixMilli(), 10)
	return append(b, '}')
}

// finite reports whether every number of u can be written as JSON.
func finite(u *Price) bool {
	for _, f := range [...]float64{u.Price, u.Demand, u.Lowest30} {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return false
		}
	}
	return true
}

// appendFloat formats f as encoding/json does: shortest representation,
// exponent form only for very small or very large magnitudes.
func appendFloat(b []byte, f float64) []byte {
	abs := math.Abs(f)
	format := byte('f')
	if abs != 0 && (abs < 1e-6 || abs >= 1e21) {
		format = 'e'
	}
	b = strconv.AppendFloat(b, f, format, -1, 64)
	if format == 'e' {
		// Clean up e-09 to e-9, like encoding/json.
		n := len(b)
		if n >= 4 && b[n-4] == 'e' && b[n-3] == '-' && b[n-2] == '0' {
			b[n-2] = b[n-1]
			b = b[:n-1]
		}
	}
	return b
}

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string with encoding/json's escaping,
// including its HTML-safe escapes of <, > and &: product ids come from the
// catalog, and a page that embeds a message must not be open to injection.
// Invalid UTF-8 becomes U+FFFD so that a client's JSON parser never fails.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 end lines in JavaScript source.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}

// wireMessage is the decoded form of AppendMessage's output.
type wireMessage struct {
	Type      string   `json:"type"`
	ProductID string   `json:"product_id"`
	Price     *float64 `json:"new_price"`
	Source    string   `json:"price_source"`
	Demand    float64  `json:"demand"`
	Exact     *float64 `json:"demand_exact"`
	Version   uint64   `json:"version"`
	Lowest30  float64  `json:"lowest_30d"`
	Timestamp int64    `json:"timestamp"`
	AtMillis  int64    `json:"timestamp_ms"`
}

// ParseMessage decodes a message written by AppendMessage (or by the older
// system, which wrote only type, product_id, new_price and timestamp). API
// replicas use it to read price-updates records, written by another
// process. A message is a price change, so PriceChanged is true.
func ParseMessage(b []byte) (Price, error) {
	var m wireMessage
	if err := json.Unmarshal(b, &m); err != nil {
		return Price{}, fmt.Errorf("price update: %w", err)
	}
	if m.Type != "price_update" || m.ProductID == "" || m.Price == nil {
		return Price{}, errors.New("price update: need type price_update, product_id and new_price")
	}
	src := pricing.SourceBase
	if m.Source != "" {
		var ok bool
		if src, ok = pricing.ParseSource(m.Source); !ok {
			return Price{}, fmt.Errorf("price update: unknown price_source %q", m.Source)
		}
	}
	at := time.UnixMilli(m.AtMillis).UnixNano()
	if m.AtMillis == 0 {
		at = time.Unix(m.Timestamp, 0).UnixNano()
	}
	if m.Exact != nil { // absent from the older system's messages
		m.Demand = *m.Exact
	}
	return Price{ProductID: m.ProductID, Price: *m.Price, Source: src, Demand: m.Demand,
		Version: m.Version, At: at, Lowest30: m.Lowest30, PriceChanged: true}, nil
}
