package live

import "context"

// Prices adapts a View to the API's price port, whose other implementation
// (Redis, for API replicas) can fail; the in-memory view cannot.
type Prices struct{ V *View }

// Price returns the JSON of a product's current price.
func (p Prices) Price(_ context.Context, id string) ([]byte, bool, error) {
	b, ok := p.V.Price(id)
	return b, ok, nil
}

// AppendPage appends a page of the listing (see View.AppendPage).
func (p Prices) AppendPage(ctx context.Context, dst []byte, q Page) ([]byte, int, string, error) {
	return p.V.AppendPage(ctx, dst, q)
}
