package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/dynaprice/dynaprice/internal/live"
)

// GET /prices page sizes: a page has DefaultPricesLimit prices unless
// ?limit= asks for others; more than MaxPricesLimit are capped to it.
const (
	DefaultPricesLimit = 100
	MaxPricesLimit     = 1000
	// maxPricesQuery bounds ?q=, a search of product ids.
	maxPricesQuery = 256
	// pricesChunk is how many prices a whole-catalog answer reads, then
	// writes, at a time: its memory is this many prices (about 150 KB),
	// however large the catalog.
	pricesChunk = 1000
)

// getPrices answers GET /prices. With ?limit=, ?after= or ?q= it answers
// one page, {"prices":[...],"next":"<cursor>"}; without them, every price,
// as the original did, written a chunk at a time instead of built whole. In
// both, ?sort= chooses the order.
func (a *API) getPrices(w http.ResponseWriter, r *http.Request, _ Key) error {
	q := r.URL.Query()
	order, err := live.ParseSort(q.Get("sort"))
	if err != nil {
		return errStatus(http.StatusBadRequest, err.Error())
	}
	if !q.Has("limit") && !q.Has("after") && !q.Has("q") {
		return a.streamPrices(w, r, order)
	}
	limit, err := parseLimit(r, DefaultPricesLimit, MaxPricesLimit)
	if err != nil {
		return err
	}
	p := live.Page{After: q.Get("after"), Match: q.Get("q"), Limit: limit, Sort: order}
	if len(p.Match) > maxPricesQuery {
		return errStatus(http.StatusBadRequest, "q must be at most "+strconv.Itoa(maxPricesQuery)+" bytes")
	}
	// A pooled buffer, sized for the page (a price is about 190 bytes).
	bp, _ := a.pages.Get().(*[]byte)
	if bp == nil {
		bp = new([]byte)
	}
	defer a.pages.Put(bp)
	if want := 64 + 200*limit; cap(*bp) < want {
		*bp = make([]byte, 0, want)
	}
	b, _, next, err := a.deps.Prices.AppendPage(r.Context(), append((*bp)[:0], `{"prices":[`...), p)
	defer func() { *bp = b[:0] }() // keep what append grew
	if err != nil {
		return pageError(err)
	}
	b = append(append(b, `],"currency":`...), strconv.Quote(a.currency())...)
	if next != "" {
		cursor, _ := json.Marshal(next) // a string always encodes
		b = append(append(b, `,"next":`...), cursor...)
	}
	writeJSONBytes(w, http.StatusOK, append(b, '}'))
	return nil
}

func pageError(err error) error {
	if errors.Is(err, live.ErrUnknownCursor) {
		return errStatus(http.StatusBadRequest, "after names no product in the listing; start again without it")
	}
	if errors.Is(err, live.ErrBadCursor) {
		return errStatus(http.StatusBadRequest, "after is not a cursor of this sort (the next of a page read with the same sort); start again without it")
	}
	return errPricesUnavailable(err)
}

// streamPrices writes {"prices":[...]} with every price in the order o,
// reading and writing pricesChunk at a time, so a request holds one chunk
// however large the catalog (a sorted one reads its chunks as pages of the
// shared sorted copy). A catalog of one chunk is sent with a
// Content-Length. If reading fails once the answer has begun, the
// connection is cut, so that no client takes a truncated listing for the
// whole catalog.
func (a *API) streamPrices(w http.ResponseWriter, r *http.Request, o live.Sort) error {
	buf := append(make([]byte, 0, 192<<10), `{"prices":[`...)
	p := live.Page{Limit: pricesChunk, Sort: o}
	started, wrote := false, false
	for {
		mark := len(buf)
		if wrote {
			buf = append(buf, ',')
		}
		var n int
		var err error
		buf, n, p.After, err = a.deps.Prices.AppendPage(r.Context(), buf, p)
		if err != nil {
			if !started {
				return pageError(err)
			}
			a.cfg.Logger.Warn("GET /prices: reading the listing failed mid-answer; cutting the connection", "err", err)
			panic(http.ErrAbortHandler)
		}
		if n == 0 {
			buf = buf[:mark]
		}
		wrote = wrote || n > 0
		if p.After == "" {
			buf = append(append(append(buf, `],"currency":`...), strconv.Quote(a.currency())...), '}')
			if !started {
				writeJSONBytes(w, http.StatusOK, buf)
				return nil
			}
			_, _ = w.Write(buf)
			return nil
		}
		if !started {
			w.Header()["Content-Type"] = jsonContentType
			w.WriteHeader(http.StatusOK)
			started = true
		}
		if _, err := w.Write(buf); err != nil {
			return nil // the client left; nothing to tell it
		}
		buf = buf[:0]
	}
}
