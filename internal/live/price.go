package live

import (
	"math"
	"strconv"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Price is a product's committed, published price: the one shape in which
// a price leaves the engine. The engine's partitions produce it after each
// commit, the live view and Redis store it, WebSocket clients and the
// price-updates topic receive it, and GET /price shows it. It has two
// encodings: AppendJSON (the REST body) and AppendMessage (the WebSocket
// message and price-updates record value).
type Price struct {
	ProductID string
	Price     float64
	Source    pricing.Source
	Demand    float64
	// Version increases with every change of the product. Readers use it
	// to ignore an older price after a newer one; 0 means unversioned.
	Version uint64
	// At is when the price took effect, unix ns; 0 means "now" to the hub.
	At       int64
	Lowest30 float64
	// PriceChanged is false when only demand or the lowest price moved:
	// the view and Redis store such a price, but it is not announced to
	// WebSocket clients or on price-updates.
	PriceChanged bool
}

// AppendJSON appends the public JSON of the price, as GET /price answers:
// the original's {"product_id","price","demand","price_source"} plus the
// 30-day lowest price, the version and when the price took effect. demand
// is a whole number, as the original's clients read it (an int): a
// strategy with decayed demand has fractions, which go in demand_exact.
func (p Price) AppendJSON(b []byte) []byte {
	b = append(b, `{"product_id":`...)
	b = strconv.AppendQuote(b, p.ProductID)
	b = append(b, `,"price":`...)
	b = appendNumber(b, pricing.RoundCents(p.Price))
	b = append(b, `,"demand":`...)
	b = appendNumber(b, math.Round(p.Demand))
	b = append(b, `,"demand_exact":`...)
	b = appendNumber(b, pricing.Round(p.Demand, pricing.DemandDecimals))
	b = append(b, `,"price_source":"`...)
	b = append(b, p.Source.String()...)
	b = append(b, `","lowest_30d":`...)
	b = appendNumber(b, pricing.RoundCents(p.Lowest30))
	b = append(b, `,"version":`...)
	b = strconv.AppendUint(b, p.Version, 10)
	b = append(b, `,"updated_at":"`...)
	b = time.Unix(0, p.At).UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, `"}`...)
}

// appendNumber appends v in the shortest form (314 rather than 314.00:
// JSON numbers carry no format).
func appendNumber(b []byte, v float64) []byte {
	return strconv.AppendFloat(b, v, 'f', -1, 64)
}
