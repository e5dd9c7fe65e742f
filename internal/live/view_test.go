package live

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

func TestPriceJSONMatchesOriginalShape(t *testing.T) {
	v := New(HubConfig{})
	at := time.Date(2026, 3, 17, 2, 5, 39, 0, time.UTC).UnixNano()
	v.Publish([]Price{{ProductID: "PA", Price: 314.0000001, Demand: 9, Source: pricing.SourceDynamic, Version: 4, At: at, Lowest30: 299},
		{ProductID: "PD", Price: 20, Demand: 3.98735811, Source: pricing.SourceDynamic, Version: 2, At: at, Lowest30: 19}})
	b, ok := v.Price("PA")
	if !ok {
		t.Fatal("PA missing")
	}
	want := `{"product_id":"PA","price":314,"demand":9,"demand_exact":9,"price_source":"dynamic","lowest_30d":299,"version":4,"updated_at":"2026-03-17T02:05:39Z"}`
	if string(b) != want {
		t.Fatalf("got  %s\nwant %s", b, want)
	}
	// Decayed demand has fractions: the original's PriceResponse reads
	// demand as an int, so demand is whole and the fractions are beside it.
	b, _ = v.Price("PD")
	var original struct {
		ProductID   string  `json:"product_id"`
		Price       float64 `json:"price"`
		Demand      int     `json:"demand"`
		PriceSource string  `json:"price_source"`
	}
	if err := json.Unmarshal(b, &original); err != nil || original.Demand != 4 || !strings.Contains(string(b), `"demand_exact":3.9874`) {
		t.Fatalf("the original's type reads %s as %+v, %v", b, original, err)
	}
	if _, ok := v.Price("PB"); ok {
		t.Fatal("PB present")
	}
	v.Publish([]Price{{ProductID: "PB", Price: 149.99, Demand: 12.123456, Source: pricing.SourceOverride, At: at}})
	var all struct {
		Prices []map[string]any `json:"prices"`
	}
	if err := json.Unmarshal(v.AppendAll(nil), &all); err != nil {
		t.Fatal(err)
	}
	if len(all.Prices) != 3 || all.Prices[0]["product_id"] != "PA" || all.Prices[2]["demand"] != 12.0 ||
		all.Prices[2]["demand_exact"] != 12.1235 || all.Prices[2]["price_source"] != "override" {
		t.Fatalf("all = %+v", all)
	}
	if s := v.Snapshot(); len(s) != 3 || s[2].Price != 149.99 {
		t.Fatalf("snapshot = %+v", s)
	}
}

// TestConcurrentReadsDuringPublish: readers never wait for the writer and
// never see a price torn between two changes.
func TestConcurrentReadsDuringPublish(t *testing.T) {
	v := New(HubConfig{})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if b, ok := v.Price("P1"); ok && !json.Valid(b) {
					t.Error("torn read")
				}
				// Every field of a price read is from the same change.
				if p, ok := v.Get("P7"); ok && (p.Price != float64(p.Version) || p.Demand != 2*float64(p.Version) ||
					p.Lowest30 != 3*float64(p.Version) || p.At != 4*int64(p.Version) || p.PriceChanged != (p.Version%2 == 0) ||
					p.Source != pricing.Source(p.Version%3)) {
					t.Errorf("torn read: %+v", p)
				}
				_ = v.AppendAll(nil)
			}
		}()
	}
	for i := 0; i < 20000; i++ {
		n := uint64(i)
		v.Publish([]Price{{ProductID: fmt.Sprintf("P%d", i%50), Price: float64(i), Version: n, Demand: 2 * float64(i),
			Lowest30: 3 * float64(i), At: 4 * int64(i), PriceChanged: n%2 == 0, Source: pricing.Source(n % 3)}})
	}
	close(stop)
	wg.Wait()
	if len(v.Snapshot()) != 50 {
		t.Fatalf("products = %d", len(v.Snapshot()))
	}
}

func BenchmarkPrice(b *testing.B) {
	v := New(HubConfig{})
	v.Publish([]Price{{ProductID: "PA", Price: 314, Demand: 9}})
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, ok := v.Price("PA"); !ok {
			b.Fatal("missing")
		}
	}
}

// pageIDs reads the ids of one page.
func pageIDs(t *testing.T, r Pager, p Page) (ids []string, next string) {
	t.Helper()
	b, n, next, err := r.AppendPage(context.Background(), []byte("["), p)
	if err != nil {
		t.Fatalf("AppendPage(%+v): %v", p, err)
	}
	var raw []map[string]any
	if err := json.Unmarshal(append(b, ']'), &raw); err != nil {
		t.Fatalf("AppendPage(%+v) is not JSON: %s: %v", p, b, err)
	}
	for _, m := range raw {
		ids = append(ids, m["product_id"].(string))
	}
	if n != len(ids) {
		t.Fatalf("AppendPage(%+v) says %d prices, appended %d", p, n, len(ids))
	}
	return ids, next
}

func TestViewPages(t *testing.T) {
	v := New(HubConfig{})
	var ps []Price
	for i := range 25 {
		ps = append(ps, Price{ProductID: fmt.Sprintf("P%02d", 24-i), Price: float64(i), Version: 1})
	}
	ps = append(ps, Price{ProductID: "shoe-7", Version: 1})
	v.Publish(ps)

	// Paging by 10 walks the whole listing in catalog (first published)
	// order, each id once, and the last page says the listing ended.
	var all []string
	p := Page{Limit: 10}
	for pages := 0; ; pages++ {
		if pages > 10 {
			t.Fatal("paging does not end")
		}
		ids, next := pageIDs(t, v, p)
		all = append(all, ids...)
		if next == "" {
			break
		}
		if next != ids[len(ids)-1] {
			t.Fatalf("next = %q, want the last id of the page %q", next, ids[len(ids)-1])
		}
		p.After = next
	}
	if len(all) != 26 || all[0] != "P24" || all[24] != "P00" || all[25] != "shoe-7" {
		t.Fatalf("paged listing = %v", all)
	}
	// A page that ends exactly at the end of the listing has no next.
	if ids, next := pageIDs(t, v, Page{After: "P06", Limit: 7}); len(ids) != 7 || next != "" {
		t.Fatalf("last full page: %v next %q", ids, next)
	}
	// Products added while paging come at the end.
	v.Publish([]Price{{ProductID: "P99", Version: 1}})
	if ids, next := pageIDs(t, v, Page{After: "P00", Limit: 10}); strings.Join(ids, ",") != "shoe-7,P99" || next != "" {
		t.Fatalf("after P00: %v next %q", ids, next)
	}
	// Match keeps ids containing it, ignoring case, and pages like the rest.
	ids, next := pageIDs(t, v, Page{Match: "p1", Limit: 3})
	if strings.Join(ids, ",") != "P19,P18,P17" || next != "P17" {
		t.Fatalf("match p1: %v next %q", ids, next)
	}
	ids, next = pageIDs(t, v, Page{Match: "p1", After: next, Limit: 100})
	if strings.Join(ids, ",") != "P16,P15,P14,P13,P12,P11,P10" || next != "" {
		t.Fatalf("match p1, second page: %v next %q", ids, next)
	}
	if ids, next := pageIDs(t, v, Page{Match: "SHOE", Limit: 5}); strings.Join(ids, ",") != "shoe-7" || next != "" {
		t.Fatalf("match SHOE: %v next %q", ids, next)
	}
	if ids, _ := pageIDs(t, v, Page{Match: "nothing", Limit: 5}); len(ids) != 0 {
		t.Fatalf("match nothing: %v", ids)
	}
	if _, _, _, err := v.AppendPage(context.Background(), nil, Page{After: "gone", Limit: 5}); !errors.Is(err, ErrUnknownCursor) {
		t.Fatalf("unknown cursor: %v", err)
	}
	// AppendAll, built from pages, is every product once.
	var whole struct{ Prices []Price }
	if err := json.Unmarshal(v.AppendAll(nil), &whole); err != nil || len(whole.Prices) != 27 {
		t.Fatalf("AppendAll: %d prices, %v", len(whole.Prices), err)
	}
}

// BenchmarkViewPage reads a 100-price page of a 1,000,000-product view:
// from a cursor, and a search that matches nothing (a scan of every id).
func BenchmarkViewPage(b *testing.B) {
	v := New(HubConfig{})
	ps := make([]Price, 1_000_000)
	for i := range ps {
		ps[i] = Price{ProductID: fmt.Sprintf("P%07d", i), Price: float64(i), Version: 1}
	}
	v.Publish(ps)
	buf := make([]byte, 0, 64<<10)
	for _, p := range []Page{{After: "P0500000", Limit: 100}, {Match: "nothing", Limit: 100}} {
		name := "cursor"
		if p.Match != "" {
			name = "search-scan"
		}
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, _, _, err := v.AppendPage(context.Background(), buf, p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
