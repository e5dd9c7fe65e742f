package live

import (
	"context"
	"errors"
	"strings"
)

// A Page asks for part of a price listing (GET /prices?after=&limit=&q=&sort=):
// the prices that follow After in the order Sort, at most Limit of them,
// only those whose product id contains Match.
//
// In catalog order (Sort's zero value) each page is read when it is asked
// for: products created between two pages come at the end, and none is
// listed twice. A sorted page lists products in the order of their values
// in a sorted copy of the listing shared by all readers, at most a second
// old (longer for catalogs that take longer to sort; see sortMinAge), and
// shows their current prices. Its cursor is a position in that order (a
// key and a product id), so across pages a product whose sort key did not
// change between them is listed exactly once, while one whose key changed
// may be listed twice or not at all, and products created meanwhile appear
// once the copy is rebuilt.
type Page struct {
	// After is where the page starts: "" at the top, else the next of the
	// page before, read with the same Sort. In catalog order it is a
	// product id.
	After string
	// Sort is the order; the zero value is catalog order.
	Sort Sort
	// Match, when not empty, keeps the products whose id contains it,
	// ignoring ASCII case.
	Match string
	// Limit is the most prices the page holds; it must be > 0.
	Limit int
}

// ErrUnknownCursor is returned for a catalog-order Page whose After names
// no product the listing holds.
var ErrUnknownCursor = errors.New("live: unknown cursor: no such product in the listing")

// Pager reads a price listing a page at a time.
type Pager interface {
	// AppendPage appends the JSON of the page's prices to dst, separated
	// by commas, and returns how many it appended and, if the listing goes
	// on after them, the cursor of the next page (in catalog order, the
	// last product id appended); next is "" at the end of the listing.
	AppendPage(ctx context.Context, dst []byte, p Page) (out []byte, n int, next string, err error)
}

// allChunk is how many prices AppendAll reads at a time.
const allChunk = 1000

// AppendAll appends {"prices":[...]} with every price of r's listing, read
// a page at a time. It is for tests and small listings: GET /prices writes
// each page as it is read instead of building the body.
func AppendAll(ctx context.Context, r Pager, dst []byte) ([]byte, error) {
	out := append(dst, `{"prices":[`...)
	p := Page{Limit: allChunk}
	for first := true; ; first = false {
		if !first {
			out = append(out, ',')
		}
		mark := len(out)
		var n int
		var err error
		out, n, p.After, err = r.AppendPage(ctx, out, p)
		if err != nil {
			return dst, err
		}
		if n == 0 && !first {
			out = out[:mark-1] // the comma
		}
		if p.After == "" {
			break
		}
	}
	return append(out, "]}"...), nil
}

// Includes reports whether the product id passes the page's filter
// (Match). It allocates nothing: a search scans every id of the listing.
func (p Page) Includes(id string) bool {
	m := p.Match
	if m == "" {
		return true
	}
	for i := 0; i+len(m) <= len(id); i++ {
		if strings.EqualFold(id[i:i+len(m)], m) {
			return true
		}
	}
	return false
}
