package live

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// sortTestView is a view of 60 products whose values tie often, so that
// every order relies on its tie-break by id, with a clock the test moves.
func sortTestView(t *testing.T) (*View, *atomic.Int64) {
	t.Helper()
	v := New(HubConfig{})
	var clock atomic.Int64
	clock.Store(time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC).UnixNano())
	v.sorted.now = func() time.Time { return time.Unix(0, clock.Load()) }
	var ps []Price
	for i := range 60 {
		ps = append(ps, Price{
			ProductID: fmt.Sprintf("P%02d", (i*37)%60),   // catalog order is not id order
			Price:     float64(i%7) + 0.001*float64(i%2), // rounds to ties in cents
			Demand:    float64(i%5) / 3,
			Lowest30:  float64(i % 4),
			Source:    pricing.Source(i % 3),
			At:        int64(i%6) * 1e9,
			Version:   1,
		})
	}
	v.Publish(ps)
	return v, &clock
}

// wantOrder is the order o puts the view's products in, computed on its
// own from their current prices: the shown value, then the id.
func wantOrder(v *View, o Sort, match string) []string {
	ps := v.Snapshot()
	key := func(p Price) float64 {
		switch o.Key {
		case ByPrice:
			return pricing.RoundCents(p.Price)
		case ByDemand:
			return pricing.Round(p.Demand, 4)
		case ByLowest:
			return pricing.RoundCents(p.Lowest30)
		case ByUpdated:
			return float64(p.At)
		case BySource:
			return float64(p.Source)
		}
		return 0
	}
	slices.SortFunc(ps, func(a, b Price) int {
		c := cmp.Or(cmp.Compare(key(a), key(b)), strings.Compare(a.ProductID, b.ProductID))
		if o.Desc {
			return -c
		}
		return c
	})
	var ids []string
	for _, p := range ps {
		if (Page{Match: match}).Includes(p.ProductID) {
			ids = append(ids, p.ProductID)
		}
	}
	return ids
}

// readSorted pages through the whole listing in order o, limit at a time.
func readSorted(t *testing.T, r Pager, o Sort, match string, limit int) []string {
	t.Helper()
	var all []string
	p := Page{Sort: o, Match: match, Limit: limit}
	for pages := 0; ; pages++ {
		if pages > 1000 {
			t.Fatal("paging does not end")
		}
		ids, next := pageIDs(t, r, p)
		all = append(all, ids...)
		if next == "" {
			return all
		}
		p.After = next
	}
}

func TestViewSortedPages(t *testing.T) {
	v, _ := sortTestView(t)
	for k := ByID; k < numSortKeys; k++ {
		for _, desc := range []bool{false, true} {
			o := Sort{Key: k, Desc: desc}
			for _, match := range []string{"", "p1"} {
				got := readSorted(t, v, o, match, 7)
				if want := wantOrder(v, o, match); !slices.Equal(got, want) {
					t.Errorf("sort %s q %q:\n got %v\nwant %v", o, match, got, want)
				}
			}
		}
	}
	// The cursor of a sorted page is a position: the key shown, then the id.
	ids, next := pageIDs(t, v, Page{Sort: Sort{Key: ByPrice}, Limit: 3})
	if len(ids) != 3 || next != "0:"+ids[2] {
		t.Fatalf("first page by price: %v next %q", ids, next)
	}
	// A position needs no product: one between two ids starts after the
	// first of them, even if no product has it.
	ids, _ = pageIDs(t, v, Page{Sort: Sort{Key: ByID}, After: "P10x", Limit: 2})
	if strings.Join(ids, ",") != "P11,P12" {
		t.Fatalf("after P10x by id: %v", ids)
	}
	// Deleted or not, P00 (its source is base) is before every override
	// product: in descending order, the page after "override:P00" starts
	// with the first of the dynamic ones.
	ids, _ = pageIDs(t, v, Page{Sort: Sort{Key: BySource, Desc: true}, After: "override:P00", Limit: 1})
	want := wantOrder(v, Sort{Key: BySource, Desc: true}, "")
	firstDynamic := slices.IndexFunc(want, func(id string) bool { p, _ := v.Get(id); return p.Source == pricing.SourceDynamic })
	if ids[0] != want[firstDynamic] {
		t.Fatalf("after override:P00 by -source: %v, want %s", ids, want[firstDynamic])
	}
	for _, bad := range []Page{
		{Sort: Sort{Key: ByPrice}, After: "P01"},
		{Sort: Sort{Key: ByPrice}, After: "NaN:P01"},
		{Sort: Sort{Key: ByUpdated}, After: "1.5:P01"},
		{Sort: Sort{Key: BySource}, After: "cheap:P01"},
	} {
		bad.Limit = 5
		if _, _, _, err := v.AppendPage(context.Background(), nil, bad); !errors.Is(err, ErrBadCursor) {
			t.Errorf("sort %s after %q: %v, want ErrBadCursor", bad.Sort, bad.After, err)
		}
	}
}

// Across pages, a product whose key did not change is listed exactly once,
// however the others move and whenever the sorted copy is rebuilt.
func TestViewSortedCursorStability(t *testing.T) {
	for _, desc := range []bool{false, true} {
		v, clock := sortTestView(t)
		o := Sort{Key: ByPrice, Desc: desc}
		p := Page{Sort: o, Limit: 10}
		seen := map[string]int{}
		moved := map[string]bool{}
		for round := 0; ; round++ {
			ids, next := pageIDs(t, v, p)
			for _, id := range ids {
				seen[id]++
			}
			if next == "" {
				break
			}
			p.After = next
			// Between pages: move a product from the end of the order to
			// its start and one from the start to its end, add a product,
			// and let the copy be rebuilt.
			all := wantOrder(v, Sort{Key: ByPrice}, "")
			lo, hi := all[0], all[len(all)-1]
			pl, _ := v.Get(lo)
			ph, _ := v.Get(hi)
			pl.Price, ph.Price = 100+float64(round), -1-float64(round)
			pl.Version++
			ph.Version++
			moved[lo], moved[hi] = true, true
			v.Publish([]Price{pl, ph, {ProductID: fmt.Sprintf("new%d", round), Price: 3.5, Version: 1}})
			clock.Add(int64(2 * sortMinAge))
		}
		for _, p := range v.Snapshot() {
			if n := seen[p.ProductID]; !moved[p.ProductID] && !strings.HasPrefix(p.ProductID, "new") && n != 1 {
				t.Errorf("desc %v: %s, whose price never changed, listed %d times", desc, p.ProductID, n)
			}
		}
	}
}

// Pages read from a sorted copy younger than sortMinAge keep its order;
// once it is older the next page rebuilds it.
func TestViewSortedCopyAge(t *testing.T) {
	v, clock := sortTestView(t)
	o := Sort{Key: ByPrice, Desc: true}
	first, _ := pageIDs(t, v, Page{Sort: o, Limit: 1})
	p, _ := v.Get("P33")
	p.Price, p.Version = 1000, 2
	v.Publish([]Price{p})
	if ids, _ := pageIDs(t, v, Page{Sort: o, Limit: 1}); ids[0] != first[0] {
		t.Fatalf("within sortMinAge the top is %v, want the copy's %v", ids, first)
	}
	clock.Add(int64(sortMinAge))
	if ids, _ := pageIDs(t, v, Page{Sort: o, Limit: 1}); ids[0] != "P33" {
		t.Fatalf("after sortMinAge the top is %v, want P33", ids)
	}
	// Products created meanwhile are listed once the copy is rebuilt.
	v.Publish([]Price{{ProductID: "A-new", Price: 2000, Version: 1}})
	clock.Add(int64(sortMinAge))
	if ids, _ := pageIDs(t, v, Page{Sort: o, Limit: 1}); ids[0] != "A-new" {
		t.Fatalf("after a new product the top is %v, want A-new", ids)
	}
	if ids, _ := pageIDs(t, v, Page{Sort: Sort{Key: ByID}, Limit: 1}); ids[0] != "A-new" {
		t.Fatalf("by id the first is %v, want A-new", ids)
	}
}

func TestParseSort(t *testing.T) {
	for _, s := range append(SortNames(), "-price", "-id") {
		o, err := ParseSort(s)
		if err != nil || o.String() != s {
			t.Errorf("ParseSort(%q) = %v, %v", s, o, err)
		}
	}
	for _, s := range []string{"change", "-", "--price", "Price", "price,id"} {
		if _, err := ParseSort(s); err == nil {
			t.Errorf("ParseSort(%q) succeeded", s)
		}
	}
	if o, err := ParseSort(""); err != nil || o != (Sort{}) {
		t.Errorf(`ParseSort("") = %v, %v`, o, err)
	}
}

// BenchmarkViewSorted reads a 1,000,000-product view sorted by price:
// a 100-price page after a cursor half-way (the sorted copy already
// built), the whole listing 1,000 prices a page (every page of one read
// of the catalog, as a client paging through it or GET /prices?sort=
// does), and building the sorted copy by price and the id order (what a
// page pays at most once a second, or once per 20 builds' time; the id
// order only when products were added).
func BenchmarkViewSorted(b *testing.B) {
	v := New(HubConfig{})
	ps := make([]Price, 1_000_000)
	for i := range ps {
		// Ids neither in catalog nor in price order, prices in cents
		// over a range with many ties.
		ps[i] = Price{ProductID: fmt.Sprintf("P%07d", (i*7919)%len(ps)), Price: float64((i*104729)%200_000) / 100, Version: 1}
	}
	v.Publish(ps)
	// The clock stands still, so that pages never find the sorted copy
	// stale: "build" measures what a rebuild costs.
	frozen := time.Now()
	v.sorted.now = func() time.Time { return frozen }
	ctx := context.Background()
	byPrice := Sort{Key: ByPrice, Desc: true}
	buf := make([]byte, 0, 256<<10)
	_, _, half, err := v.AppendPage(ctx, buf, Page{Sort: byPrice, Limit: 500_000})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("page", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, _, _, err := v.AppendPage(ctx, buf, Page{Sort: byPrice, After: half, Limit: 100}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("full-read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			p := Page{Sort: byPrice, Limit: 1000}
			n := 0
			for {
				var k int
				var err error
				_, k, p.After, err = v.AppendPage(ctx, buf, p)
				if err != nil {
					b.Fatal(err)
				}
				n += k
				if p.After == "" {
					break
				}
			}
			if n != len(ps) {
				b.Fatalf("read %d prices, want %d", n, len(ps))
			}
		}
	})
	b.Run("build", func(b *testing.B) {
		b.ReportAllocs()
		src := viewSource(*v.order.Load())
		for b.Loop() {
			v.sorted.keys[ByPrice].cur.Store(nil)
			if _, err := v.sorted.keyOrder(ctx, ByPrice, src); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("build-ids", func(b *testing.B) {
		b.ReportAllocs()
		src := viewSource(*v.order.Load())
		for b.Loop() {
			v.sorted.ids.Store(nil)
			v.sorted.idOrder(src)
		}
	})
}
