package live

import (
	"context"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/fanout"
)

// Prices adapts a View to the API's price port, whose other implementation
// (Redis, for API replicas) can fail; the in-memory view cannot.
type Prices struct{ V *View }

// Price returns the JSON of a product's current price.
func (p Prices) Price(_ context.Context, id string) ([]byte, bool, error) {
	b, ok := p.V.Price(id)
	return b, ok, nil
}

// AppendAll appends {"prices":[...]} with every product.
func (p Prices) AppendAll(_ context.Context, dst []byte) ([]byte, error) {
	return p.V.AppendAll(dst), nil
}

// UpdateOf is the price update announcing c, for WebSocket clients and the
// price-updates topic: one conversion, so every role announces a change
// the same way (demand rounded as GET /price shows it).
func UpdateOf(c engine.Change) fanout.Update {
	return fanout.Update{ProductID: c.ProductID, Price: c.Price, Source: c.Source.String(),
		Demand: Round(c.Demand, 4), Version: c.Version, At: time.Unix(0, c.At), Lowest30: c.Lowest30}
}
