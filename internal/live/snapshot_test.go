package live

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/poll"
)

// countingSnapshot counts the pages a hub reads from a view.
type countingSnapshot struct {
	*View
	pages atomic.Int64
}

func (c *countingSnapshot) SnapshotPage(ctx context.Context, after string, limit int) ([]Price, string, error) {
	c.pages.Add(1)
	return c.View.SnapshotPage(ctx, after, limit)
}

// A snapshot larger than a page is sent a page at a time while live
// updates flow: each product still comes first at its current price or
// newer, its versions only ever increase (none repeated, none older after
// newer), and once publishing stops the client holds every product's
// latest price.
func TestSnapshotPagedWhileUpdatesFlow(t *testing.T) {
	const products = 2*snapshotPage + 500
	v := New(HubConfig{})
	ps := make([]Price, products)
	for i := range ps {
		ps[i] = upd(fmt.Sprintf("P%05d", i), 1, 1)
	}
	v.Publish(ps)
	e := newEnv(t, HubConfig{Snapshot: v})
	v.hub = e.hub // the test's hub announces the view's changes

	c := e.dial(t, "?snapshot=1", nil)
	// Updates all over the catalog, before and after the pages the client
	// has read, while it reads.
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for round := range uint64(200) {
			var batch []Price
			for k := range 7 {
				i := (int(round)*977 + k*1543) % products
				p, _ := v.Get(fmt.Sprintf("P%05d", i))
				batch = append(batch, upd(p.ProductID, p.Version+1, float64(p.Version+1)))
			}
			v.Publish(batch)
			time.Sleep(200 * time.Microsecond)
		}
	}()
	got := map[string]uint64{}
	done := func() bool {
		if len(got) < products {
			return false
		}
		for _, p := range v.Snapshot() {
			if got[p.ProductID] != p.Version {
				return false
			}
		}
		return true
	}
	published := make(chan struct{})
	go func() { wg.Wait(); close(published) }()
	isPublished := func() bool {
		select {
		case <-published:
			return true
		default:
			return false
		}
	}
	for !isPublished() || !done() {
		m, err := tryRead(c, 2*time.Second)
		if err != nil {
			if isPublished() && done() {
				return
			}
			var behind []string
			for _, p := range v.Snapshot() {
				if got[p.ProductID] != p.Version {
					behind = append(behind, fmt.Sprintf("%s v%d (have v%d)", p.ProductID, p.Version, got[p.ProductID]))
				}
			}
			t.Fatalf("read: %v; have %d products; behind: %v", err, len(got), behind)
		}
		if last, ok := got[m.ProductID]; ok && m.Version <= last {
			t.Fatalf("%s v%d after v%d", m.ProductID, m.Version, last)
		}
		got[m.ProductID] = m.Version
	}
}

// A client that does not read holds up its snapshot: the hub reads the
// next page only once the client took the last, so a client costs a page
// however large the catalog. When it reads, it gets every product.
func TestSnapshotPagesFollowTheReader(t *testing.T) {
	const products = 20 * snapshotPage
	v := New(HubConfig{})
	ps := make([]Price, products)
	for i := range ps {
		ps[i] = upd(fmt.Sprintf("a-product-with-a-long-identifier-%06d", i), 1, 1)
	}
	v.Publish(ps)
	snap := &countingSnapshot{View: v}
	e := newEnvSendBuf(t, HubConfig{Snapshot: snap, WriteTimeout: time.Minute}, 4096)
	c := e.dial(t, "?snapshot=1", stalledDialOptions())
	poll.Until(t, 10*time.Second, "the writer blocked", func() error {
		return poll.Check(writerBlocked(), "not blocked after %d pages", snap.pages.Load())
	})
	time.Sleep(100 * time.Millisecond)
	if n := snap.pages.Load(); n > 3 {
		t.Fatalf("the hub read %d pages of %d for a client that read nothing", n, products/snapshotPage)
	}
	seen := map[string]bool{}
	for len(seen) < products {
		seen[read(t, c).ProductID] = true
	}
	if n := snap.pages.Load(); n != products/snapshotPage {
		t.Errorf("read %d pages, want %d", n, products/snapshotPage)
	}
}

// Going back to every product with a subscribe message sends the current
// price of the products not chosen before, a page at a time.
func TestSubscribeAllSnapshotIsPaged(t *testing.T) {
	const products = snapshotPage + 10
	v := New(HubConfig{})
	ps := make([]Price, products)
	for i := range ps {
		ps[i] = upd(fmt.Sprintf("P%05d", i), 1, 1)
	}
	v.Publish(ps)
	e := newEnv(t, HubConfig{Snapshot: v})
	c := e.dial(t, "?snapshot=1&products=P00003", nil)
	if m := read(t, c); m.ProductID != "P00003" {
		t.Fatalf("snapshot of P00003: got %s", m.ProductID)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Write(ctx, 1, []byte(`{"type":"subscribe","all":true}`)); err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for len(seen) < products-1 {
		m := read(t, c)
		if m.ProductID == "P00003" || seen[m.ProductID] {
			t.Fatalf("%s sent again", m.ProductID)
		}
		seen[m.ProductID] = true
	}
	if m, err := tryRead(c, 200*time.Millisecond); err == nil {
		t.Fatalf("after the snapshot: %+v", m)
	}
}

// A view's own hub keeps nothing and encodes nothing while nobody watches
// (Hub.unwatched); a client that connects then starts from the view's
// prices and gets each later change once, nothing older.
func TestUnwatchedViewHubKeepsNothing(t *testing.T) {
	v := New(HubConfig{})
	e := &testEnv{hub: v.hub}
	mux := http.NewServeMux()
	mux.Handle("GET /ws/prices", v.hub)
	e.srv = httptest.NewServer(mux)
	t.Cleanup(e.srv.Close)
	t.Cleanup(v.hub.Close)

	const products = snapshotPage + 10
	for version := uint64(1); version <= 3; version++ {
		ps := make([]Price, products)
		for i := range ps {
			ps[i] = upd(fmt.Sprintf("P%05d", i), version, float64(version))
		}
		v.Publish(ps)
	}
	v.hub.mu.Lock()
	kept := len(v.hub.latest)
	v.hub.mu.Unlock()
	if kept != 0 || !v.hub.dispatchedAll() {
		t.Fatalf("unwatched, the hub kept %d products' updates", kept)
	}

	c := e.dial(t, "?snapshot=1", nil)
	got := map[string]uint64{}
	for len(got) < products {
		m := read(t, c)
		if m.Version != 3 || got[m.ProductID] != 0 {
			t.Fatalf("snapshot message %+v after %d products (want each once, at version 3)", m, len(got))
		}
		got[m.ProductID] = m.Version
	}
	v.Publish([]Price{upd("P00007", 4, 4), upd("P00003", 3, 3)}) // the second is not new
	if m := read(t, c); m.ProductID != "P00007" || m.Version != 4 {
		t.Fatalf("after the snapshot got %+v, want P00007 v4", m)
	}
	// A marker published after: the next message, so nothing came between.
	v.Publish([]Price{upd("P00001", 4, 4)})
	if m := read(t, c); m.ProductID != "P00001" || m.Version != 4 {
		t.Fatalf("then %+v, want the marker P00001 v4 (nothing in between)", m)
	}
}
