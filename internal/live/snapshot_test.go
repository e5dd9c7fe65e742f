package live

import (
	"context"
	"fmt"
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
