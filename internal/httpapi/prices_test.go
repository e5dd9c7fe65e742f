package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	neturl "net/url"
	"os"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// newPricesServer serves an API whose live prices are prices.
func newPricesServer(t *testing.T, prices Prices) *httptest.Server {
	t.Helper()
	cfg := DefaultConfig()
	cfg.Keys = []Key{{Name: "admin", Role: RoleAdmin, Secret: "prices-test-admin-secret"}}
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.KeyRate = 0
	a, err := New(cfg, Deps{Engine: openapiEngine{}, Prices: prices, Archive: openapiArchive{}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	return srv
}

// catalogView is a view of n products, P0000000 upwards, published in
// reverse id order (catalog order is publication order, not id order).
func catalogView(n int) *live.View {
	v := live.New(live.HubConfig{})
	ps := make([]live.Price, n)
	at := time.Date(2026, 3, 17, 2, 0, 0, 0, time.UTC).UnixNano()
	for i := range ps {
		ps[i] = live.Price{ProductID: fmt.Sprintf("P%07d", n-1-i), Price: 100 + float64(i%997), Demand: float64(i % 13),
			Source: pricing.SourceDynamic, Version: uint64(1 + i%5), At: at, Lowest30: 99}
	}
	v.Publish(ps)
	return v
}

func get(t *testing.T, url string) (int, []byte) {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	return res.StatusCode, b
}

type pageAnswer struct {
	Prices []struct {
		ID string `json:"product_id"`
	} `json:"prices"`
	Next *string `json:"next"`
}

func TestPricesWholeCatalogIsWrittenInChunks(t *testing.T) {
	// 2,500 products: two full chunks and a partial one; 1,000 exactly
	// (one chunk, sent with a Content-Length); none.
	for _, n := range []int{2500, pricesChunk, 0} {
		v := catalogView(n)
		srv := newPricesServer(t, live.Prices{V: v})
		res, err := http.Get(srv.URL + "/prices")
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(res.Body)
		res.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		if want := withCurrency(v.AppendAll(nil)); !bytes.Equal(body, want) {
			t.Fatalf("%d products: GET /prices differs from the view's listing:\n got %.200s…\nwant %.200s…", n, body, want)
		}
		if ct := res.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%d products: Content-Type %q", n, ct)
		}
		if streamed := res.ContentLength < 0; streamed != (n > pricesChunk) {
			t.Errorf("%d products: Content-Length %d; want one only for a single chunk", n, res.ContentLength)
		}
	}
}

func TestPricesPages(t *testing.T) {
	v := catalogView(250)
	srv := newPricesServer(t, live.Prices{V: v})
	var whole pageAnswer
	if err := json.Unmarshal(v.AppendAll(nil), &whole); err != nil {
		t.Fatal(err)
	}

	// Paging with the default limit walks the catalog in order, each
	// product once; only the last page has no next.
	var ids []string
	url := srv.URL + "/prices?q=" // an empty search: every product, a page at a time
	for pages := 1; ; pages++ {
		code, b := get(t, url)
		var p pageAnswer
		if err := json.Unmarshal(b, &p); code != 200 || err != nil {
			t.Fatalf("GET %s: %d %s %v", url, code, b, err)
		}
		if len(p.Prices) > DefaultPricesLimit || (p.Next != nil && len(p.Prices) != DefaultPricesLimit) {
			t.Fatalf("page %d has %d prices, next %v", pages, len(p.Prices), p.Next)
		}
		for _, x := range p.Prices {
			ids = append(ids, x.ID)
		}
		if p.Next == nil {
			if pages != 3 {
				t.Fatalf("%d pages of %d, want 3", pages, DefaultPricesLimit)
			}
			break
		}
		url = srv.URL + "/prices?after=" + *p.Next
	}
	if len(ids) != len(whole.Prices) {
		t.Fatalf("paged %d products, want %d", len(ids), len(whole.Prices))
	}
	for i := range ids {
		if ids[i] != whole.Prices[i].ID {
			t.Fatalf("paged listing [%d] = %s, want %s", i, ids[i], whole.Prices[i].ID)
		}
	}

	for _, c := range []struct {
		query string
		ids   string
		next  string
	}{
		{"limit=3", "P0000249,P0000248,P0000247", "P0000247"},
		{"limit=2&after=P0000001", "P0000000", ""},
		{"limit=99999999999999999999", "", ""}, // capped to MaxPricesLimit: every product, no next
		{"q=p000000&limit=4", "P0000009,P0000008,P0000007,P0000006", "P0000006"},
		{"q=P000012", "P0000129,P0000128,P0000127,P0000126,P0000125,P0000124,P0000123,P0000122,P0000121,P0000120", ""},
		{"q=0000012&after=P0000120", "P0000012", ""},
		{"q=nothing", "", ""},
	} {
		code, b := get(t, srv.URL+"/prices?"+c.query)
		var p pageAnswer
		if err := json.Unmarshal(b, &p); code != 200 || err != nil {
			t.Fatalf("?%s: %d %s %v", c.query, code, b, err)
		}
		var got []string
		for _, x := range p.Prices {
			got = append(got, x.ID)
		}
		next := ""
		if p.Next != nil {
			next = *p.Next
		}
		if c.ids == "" && len(got) == 250 {
			got = nil // the capped limit: checked by count
		}
		if strings.Join(got, ",") != c.ids || next != c.next {
			t.Errorf("?%s: %v next %q, want %s next %q", c.query, got, next, c.ids, c.next)
		}
	}

	for _, q := range []string{"limit=0", "limit=-1", "limit=x", "limit=", "after=nosuch", "q=" + strings.Repeat("x", maxPricesQuery+1)} {
		if code, b := get(t, srv.URL+"/prices?"+q); code != http.StatusBadRequest || !json.Valid(b) {
			t.Errorf("?%s: %d %s, want 400 with a JSON error", q, code, b)
		}
	}
}

// GET /prices?sort= pages through the catalog in the order asked for, with
// q; a sort or cursor it does not know is a 400 with a JSON error.
func TestPricesSorted(t *testing.T) {
	v := catalogView(250)
	srv := newPricesServer(t, live.Prices{V: v})
	type row struct {
		ID     string  `json:"product_id"`
		Price  float64 `json:"price"`
		Demand float64 `json:"demand_exact"`
	}
	read := func(query string) (rows []row, pages int) {
		url := srv.URL + "/prices?" + query
		for ; ; pages++ {
			code, b := get(t, url)
			var p struct {
				Prices []row   `json:"prices"`
				Next   *string `json:"next"`
			}
			if err := json.Unmarshal(b, &p); code != 200 || err != nil {
				t.Fatalf("GET %s: %d %s %v", url, code, b, err)
			}
			rows = append(rows, p.Prices...)
			if p.Next == nil {
				return rows, pages + 1
			}
			url = srv.URL + "/prices?" + query + "&after=" + neturl.QueryEscape(*p.Next)
		}
	}
	rows, pages := read("sort=-price&limit=40")
	if len(rows) != 250 || pages != 7 {
		t.Fatalf("sort=-price: %d prices in %d pages, want 250 in 7", len(rows), pages)
	}
	for i := 1; i < len(rows); i++ {
		a, b := rows[i-1], rows[i]
		if a.Price < b.Price || (a.Price == b.Price && a.ID < b.ID) {
			t.Fatalf("sort=-price: %v before %v", a, b)
		}
	}
	rows, _ = read("sort=demand&q=p00001&limit=7")
	if len(rows) != 100 {
		t.Fatalf("sort=demand&q=p00001: %d prices, want 100", len(rows))
	}
	for i := 1; i < len(rows); i++ {
		a, b := rows[i-1], rows[i]
		if !strings.Contains(b.ID, "P00001") || a.Demand > b.Demand || (a.Demand == b.Demand && a.ID > b.ID) {
			t.Fatalf("sort=demand&q=p00001: %v before %v", a, b)
		}
	}
	// Without limit, after or q: the whole catalog in one answer, sorted.
	if whole, pages := read("sort=-price"); pages != 1 || len(whole) != 250 || whole[0].ID != rows0(t, get, srv.URL+"/prices?sort=-price&limit=1") {
		t.Fatalf("sort=-price without limit: %d prices in %d answers", len(whole), pages)
	}
	if rows, _ = read("sort=id&limit=3&after=P0000246"); len(rows) != 3 || rows[0].ID != "P0000247" {
		t.Fatalf("sort=id after P0000246: %v", rows)
	}
	for _, q := range []string{"sort=change", "sort=-", "sort=Price", "sort=price&after=P0000001", "sort=updated&after=x:P0000001", "sort=price&limit=0"} {
		code, b := get(t, srv.URL+"/prices?"+q)
		var e struct{ Error string }
		if code != http.StatusBadRequest || json.Unmarshal(b, &e) != nil || e.Error == "" {
			t.Errorf("?%s: %d %s, want 400 with a JSON error", q, code, b)
		}
	}
	if _, b := get(t, srv.URL+"/prices?sort=change"); !strings.Contains(string(b), "price, demand") {
		t.Errorf("?sort=change: %s, want the sorts allowed", b)
	}
}

// rows0 is the id of the first price of the page at url.
func rows0(t *testing.T, get func(*testing.T, string) (int, []byte), url string) string {
	t.Helper()
	_, b := get(t, url)
	var p pageAnswer
	if err := json.Unmarshal(b, &p); err != nil || len(p.Prices) == 0 {
		t.Fatalf("GET %s: %s %v", url, b, err)
	}
	return p.Prices[0].ID
}

// failingPrices fails from its failAt-th page on.
type failingPrices struct {
	live.Prices
	failAt int
	pages  atomic.Int64
}

func (f *failingPrices) AppendPage(ctx context.Context, dst []byte, p live.Page) ([]byte, int, string, error) {
	if int(f.pages.Add(1)) >= f.failAt {
		return dst, 0, "", errors.New("redis: connection refused")
	}
	return f.Prices.AppendPage(ctx, dst, p)
}

func TestPricesFailure(t *testing.T) {
	v := catalogView(3 * pricesChunk)
	// Before anything is written: a 503.
	srv := newPricesServer(t, &failingPrices{Prices: live.Prices{V: v}, failAt: 1})
	if code, b := get(t, srv.URL+"/prices"); code != http.StatusServiceUnavailable {
		t.Errorf("failing at once: %d %s, want 503", code, b)
	}
	if code, b := get(t, srv.URL+"/prices?limit=5"); code != http.StatusServiceUnavailable {
		t.Errorf("a page failing: %d %s, want 503", code, b)
	}
	// Mid-answer: the connection is cut, so the client cannot take what
	// it got for the whole catalog.
	srv = newPricesServer(t, &failingPrices{Prices: live.Prices{V: v}, failAt: 2})
	res, err := http.Get(srv.URL + "/prices")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err == nil || json.Valid(b) {
		t.Fatalf("failing mid-answer: read %d bytes, err %v; want a cut connection", len(b), err)
	}
}

// TestPricesMemoryIsBoundedPerRequest has 8 clients read the whole catalog
// at once, each in one answer written a chunk at a time, and measures the
// heap added while they run: in catalog order, what they add must not grow
// with the catalog; sorted by price, it is the sorted copy they share (20
// bytes a product) and a chunk each. DYNAPRICE_PRICES_PRODUCTS sets the catalog's size (default
// 100,000; docs/BENCHMARKS.md has the 1,000,000 figures).
func TestPricesMemoryIsBoundedPerRequest(t *testing.T) {
	n := 100_000
	if s := os.Getenv("DYNAPRICE_PRICES_PRODUCTS"); s != "" {
		var err error
		if n, err = strconv.Atoi(s); err != nil || n < 1 {
			t.Fatalf("DYNAPRICE_PRICES_PRODUCTS=%q", s)
		}
	}
	for _, c := range []struct {
		name, query string
		budget      int64
	}{{"catalog", "", 32 << 20}, {"sorted", "?sort=-price", 128 << 20}} {
		t.Run(c.name, func(t *testing.T) {
			v := catalogView(n)
			srv := newPricesServer(t, live.Prices{V: v})
			want := len(withCurrency(v.AppendAll(nil))) // the same prices, in any order
			measureReads(t, n, c.budget, func() error {
				res, err := http.Get(srv.URL + "/prices" + c.query)
				if err != nil {
					return err
				}
				defer res.Body.Close()
				got, err := io.Copy(io.Discard, res.Body)
				if err == nil && got != int64(want) {
					err = fmt.Errorf("read %d bytes, want %d", got, want)
				}
				return err
			})
		})
	}
}

// measureReads runs read on 8 goroutines at once, samples the heap and RSS
// every millisecond meanwhile, logs what they added and fails above bound
// bytes of heap.
func measureReads(t *testing.T, n int, bound int64, read func() error) {
	const readers = 8
	runtime.GC()
	base := heapObjects()
	baseRSS := rss()
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	var peak, peakRSS atomic.Uint64
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		for {
			if h := heapObjects(); h > peak.Load() {
				peak.Store(h)
			}
			if r := rss(); r > peakRSS.Load() {
				peakRSS.Store(r)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, readers)
	for range readers {
		wg.Go(func() {
			if err := read(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	close(stop)
	<-sampled
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	added := int64(peak.Load()) - int64(base)
	t.Logf("%d products, %d concurrent full reads in %v: heap added at peak %.1f MiB, allocated %.1f MiB, RSS added at peak %.1f MiB",
		n, readers, took.Round(time.Millisecond), float64(added)/(1<<20),
		float64(after.TotalAlloc-before.TotalAlloc)/(1<<20), float64(int64(peakRSS.Load())-int64(baseRSS))/(1<<20))
	if added > bound {
		t.Fatalf("%d concurrent reads of %d products added %.1f MiB of heap, want at most %d MiB", readers, n, float64(added)/(1<<20), bound>>20)
	}
}

// heapObjects is the bytes of heap objects, live or not yet swept.
func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// rss is the process's resident memory (Linux; 0 elsewhere).
func rss() uint64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) < 2 {
		return 0
	}
	pages, _ := strconv.ParseUint(f[1], 10, 64)
	return pages * uint64(os.Getpagesize())
}

// withCurrency is a listing as GET /prices answers it: with the catalog's
// currency after the prices.
func withCurrency(listing []byte) []byte {
	return append(bytes.TrimSuffix(listing, []byte("}")), `,"currency":"EUR"}`...)
}
