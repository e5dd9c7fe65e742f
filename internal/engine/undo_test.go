package engine_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/sqlite"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestFailedCommitUndoesWithoutReloading: at a catalog of 20,000
// products, rounds whose commits fail are undone in memory, not by
// reloading the store: the partition loads once, and after every failed
// round its state is the store's, exactly (what a reload would give).
// Retrying the same round once the store is back applies it once. Three
// failures in a row report the partition stalled, until a commit succeeds.
func TestFailedCommitUndoesWithoutReloading(t *testing.T) {
	n := 20_000
	if testing.Short() {
		n = 2_000
	}
	ctx := context.Background()
	store := openFlaky(t)
	cfg := engine.DefaultConfig()
	cfg.AutoCreate = true
	clock := time.Unix(1_800_000_000, 0)
	cfg.Now = func() time.Time { return clock }
	met := engine.NewMetrics(nil, "")
	cfg.Metrics = met
	pub := &recorder{}
	p := engine.NewPartition(cfg, store, pub, nil)
	if err := p.Load(ctx); err != nil {
		t.Fatal(err)
	}
	catalog := make([]pricing.Product, n)
	for i := range catalog {
		catalog[i] = pricing.Product{ID: fmt.Sprintf("P%06d", i), BasePrice: 10}
	}
	catalog[7].Strategy = "decay"
	catalog[8].Strategy = "thompson"
	catalog[9].MaxMovePct = 10
	if err := p.Round(ctx, func(m *engine.Machine, now int64) (string, error) {
		return "", m.Import(catalog, "", now)
	}); err != nil {
		t.Fatal(err)
	}
	// History before the failures: demand, an override to expire.
	if err := p.Round(ctx, func(m *engine.Machine, now int64) (string, error) {
		var res engine.SubmitResult
		m.ApplyEvents([]ingest.Event{ev("a", "P000001", pricing.Purchase), ev("b", "P000007", pricing.Cart),
			ev("c", "P000008", pricing.View)}, now, &res)
		return "", m.SetOverride(engine.OverrideInput{ProductID: "P000002", Price: 4, By: "op",
			ExpiresAt: time.Unix(0, now).Add(2 * time.Second)}, now)
	}); err != nil {
		t.Fatal(err)
	}
	loads := store.loads.Load()

	// The round that fails: events (new ids, a repeated one, one that
	// creates a product), an override, a catalog change, a release and a
	// tick that expires the override.
	round := func(m *engine.Machine, now int64) (string, error) {
		var res engine.SubmitResult
		evs := []ingest.Event{ev("d", "P000001", pricing.Purchase), ev("a", "P000001", pricing.Purchase),
			ev("e", "P000008", pricing.View), ev("f", "P000009", pricing.Purchase), ev("g", "NEW", pricing.View)}
		for range 50 {
			evs = append(evs, ev("", "P000009", pricing.Purchase)) // trips the breaker
		}
		evs[4].Price = 3
		m.ApplyEvents(evs, now, &res)
		if res.Accepted != len(evs) || res.Duplicates != 1 {
			return "", fmt.Errorf("applied %+v", res)
		}
		if err := m.SetOverride(engine.OverrideInput{ProductID: "P000003", Price: 9, By: "op"}, now); err != nil {
			return "", err
		}
		if _, err := m.Upsert(pricing.Product{ID: "P000004", BasePrice: 20}, now); err != nil {
			return "", err
		}
		m.Tick(now)
		return "", nil
	}
	clock = clock.Add(3 * time.Second) // the override of P000002 has expired
	store.fail.Store(true)
	for k := 1; k <= engine.StuckAfter+1; k++ {
		err := p.Round(ctx, round)
		if !errors.Is(err, engine.ErrNotCommitted) {
			t.Fatalf("failed round %d: %v, want ErrNotCommitted", k, err)
		}
		if got := store.loads.Load(); got != loads {
			t.Fatalf("failed round %d loaded the store (%d loads, want %d)", k, got, loads)
		}
		if k == 1 || k == engine.StuckAfter+1 {
			sameAsStore(t, p.Machine(), store.Store, clock)
		}
		if stalled := k >= engine.StuckAfter; p.Stalled() != stalled || testutil.ToFloat64(met.Stalled) != map[bool]float64{true: 1}[stalled] {
			t.Fatalf("after %d failed rounds: Stalled %v, gauge %v", k, p.Stalled(), testutil.ToFloat64(met.Stalled))
		}
	}
	if p.Machine().Held() != 0 {
		t.Fatalf("Held = %d after the round that tripped the breaker was undone", p.Machine().Held())
	}
	if got := testutil.ToFloat64(met.Reloads); got != 0 {
		t.Fatalf("reloads counted: %v", got)
	}

	store.fail.Store(false)
	if err := p.Round(ctx, round); err != nil {
		t.Fatal(err)
	}
	if p.Stalled() || testutil.ToFloat64(met.Stalled) != 0 {
		t.Fatal("still stalled after a committed round")
	}
	sameAsStore(t, p.Machine(), store.Store, clock)
	if p.Machine().Held() != 1 {
		t.Fatalf("Held = %d once the round committed, want 1", p.Machine().Held())
	}
	// Exactly once: two purchases (a, d) of P000001, whatever failed.
	e, err := p.Machine().Explain("P000001")
	if err != nil {
		t.Fatal(err)
	}
	if e.Demand != 10 {
		t.Fatalf("P000001 demand %v, want 10 (two purchases)", e.Demand)
	}
}

// sameAsStore fails unless m holds exactly what a fresh load of st gives:
// every product's state, and the same event ids remembered.
func sameAsStore(t *testing.T, m *engine.Machine, st *sqlite.Store, now time.Time) {
	t.Helper()
	snap, err := st.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	fresh := engine.NewMachine(engine.DefaultConfig())
	if _, err := fresh.Load(snap, now.UnixNano()); err != nil {
		t.Fatal(err)
	}
	a, b := m.All(), fresh.All()
	if len(a) != len(b) {
		t.Fatalf("%d products in memory, %d in the store", len(a), len(b))
	}
	for i := range a {
		if a[i] != b[i] {
			t.Fatalf("product %d in memory %+v, in the store %+v", i, a[i], b[i])
		}
		x, _ := m.Explain(a[i].ProductID)
		y, _ := fresh.Explain(a[i].ProductID)
		if !reflect.DeepEqual(x, y) {
			t.Fatalf("product %s explained in memory %+v, from the store %+v", a[i].ProductID, x, y)
		}
	}
	for _, id := range []string{"a", "b", "c", "d", "e", "f", "g"} {
		var r1, r2 engine.SubmitResult
		probe := []ingest.Event{{EventID: id, ProductID: "P000005", Type: pricing.View, Quantity: 1}}
		m.Begin()
		m.ApplyEvents(probe, now.UnixNano(), &r1)
		fresh.ApplyEvents(probe, now.UnixNano(), &r2)
		if !m.Undo() {
			t.Fatal("a probe could not be undone")
		}
		if r1.Duplicates != r2.Duplicates {
			t.Fatalf("event id %q: a duplicate in memory %v, in the store %v", id, r1.Duplicates == 1, r2.Duplicates == 1)
		}
	}
}

// TestWriterReportsFailingCommits: serve's writer reports itself stalled
// (for /readyz) once StuckAfter requests in a row could not be committed,
// and ready again after the first that is; the store is never reloaded.
func TestWriterReportsFailingCommits(t *testing.T) {
	h := start(t, filepath.Join(t.TempDir(), "db"), func(c *engine.Config) { c.TickInterval = time.Hour })
	ctx := context.Background()
	if err := h.eng.ImportCatalog(ctx, []pricing.Product{{ID: "PA", BasePrice: 10}}, ""); err != nil {
		t.Fatal(err)
	}
	loads := h.store.loads.Load()
	h.store.fail.Store(true)
	for k := 1; k <= engine.StuckAfter; k++ {
		if h.eng.Stalled() {
			t.Fatalf("stalled after %d failed commits", k-1)
		}
		var ee *engine.Error
		if _, err := h.eng.Submit(ctx, []ingest.Event{ev(fmt.Sprint(k), "PA", pricing.View)}); !errors.As(err, &ee) || ee.Kind != engine.KindUnavailable {
			t.Fatalf("submit %d with the store failing: %v, want KindUnavailable", k, err)
		}
	}
	if !h.eng.Stalled() {
		t.Fatalf("not stalled after %d failed commits", engine.StuckAfter)
	}
	h.store.fail.Store(false)
	if _, err := h.eng.Submit(ctx, []ingest.Event{ev("1", "PA", pricing.View)}); err != nil {
		t.Fatal(err)
	}
	if h.eng.Stalled() {
		t.Fatal("still stalled after a committed round")
	}
	if got := h.store.loads.Load(); got != loads {
		t.Fatalf("the store was loaded %d times after failed commits", got-loads)
	}
	if p := h.pub.get("PA"); p.Demand != 1 {
		t.Fatalf("PA demand %v, want 1 (the one committed view)", p.Demand)
	}
}
