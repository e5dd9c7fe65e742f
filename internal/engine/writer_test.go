package engine_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/sqlite"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// flakyStore is the real SQLite store with a switch that makes Commit fail,
// standing in for a full disk or an I/O error.
type flakyStore struct {
	*sqlite.Store
	fail     atomic.Bool
	failLoad atomic.Bool
	// fenced makes the commits that fail say another writer
	// committed (ErrFenced), after which the partition must reload.
	fenced atomic.Bool
	failed atomic.Int64 // commits failed by fail
	loads  atomic.Int64 // calls to Load
	// gate, when set, holds every Commit until it is closed.
	gate atomic.Pointer[chan struct{}]
}

func (f *flakyStore) Commit(ctx context.Context, b *engine.Batch) error {
	if g := f.gate.Load(); g != nil {
		<-*g
	}
	if f.fail.Load() {
		f.failed.Add(1)
		if f.fenced.Load() {
			return fmt.Errorf("disk on fire: %w", engine.ErrFenced)
		}
		return errors.New("disk on fire")
	}
	return f.Store.Commit(ctx, b)
}

func (f *flakyStore) Load(ctx context.Context) (engine.Snapshot, error) {
	f.loads.Add(1)
	if f.failLoad.Load() {
		return engine.Snapshot{}, errors.New("disk gone")
	}
	return f.Store.Load(ctx)
}

// recorder is a Publisher that keeps the latest change per product.
type recorder struct {
	mu     sync.Mutex
	latest map[string]live.Price
	n      int
}

func (r *recorder) Publish(cs []live.Price) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.latest == nil {
		r.latest = map[string]live.Price{}
	}
	for _, c := range cs {
		r.latest[c.ProductID] = c
	}
	r.n++
}

func (r *recorder) get(id string) live.Price {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.latest[id]
}

type clock struct{ ns atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *clock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type harness struct {
	eng   *engine.Writer
	store *flakyStore
	pub   *recorder
	clock *clock
	stop  func() error
}

// openFlaky opens a flakyStore at a fresh path, closed when t ends.
func openFlaky(t *testing.T) *flakyStore {
	t.Helper()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(t.TempDir(), "db"), Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	return &flakyStore{Store: st}
}

func start(t *testing.T, path string, tune func(*engine.Config)) *harness {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: path, Synchronous: "normal"})
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{store: &flakyStore{Store: st}, pub: &recorder{}, clock: &clock{}}
	h.clock.ns.Store(time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	cfg := engine.DefaultConfig()
	cfg.Now = h.clock.Now
	cfg.TickInterval = 5 * time.Millisecond
	if tune != nil {
		tune(&cfg)
	}
	h.eng, err = engine.NewWriter(cfg, h.store, h.pub)
	if err != nil {
		t.Fatal(err)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- h.eng.Run(rctx) }()
	<-h.eng.Ready()
	var once sync.Once
	var runErr error
	h.stop = func() error {
		once.Do(func() {
			cancel()
			runErr = <-done
			st.Close()
		})
		return runErr
	}
	t.Cleanup(func() { _ = h.stop() })
	return h
}

func ev(id, product string, t pricing.EventType) ingest.Event {
	return ingest.Event{EventID: id, ProductID: product, Type: t, Quantity: 1}
}

func TestFailedCommitAnswersErrorAndRollsBack(t *testing.T) {
	h := start(t, filepath.Join(t.TempDir(), "db"), nil)
	ctx := context.Background()
	if err := h.eng.ImportCatalog(ctx, []pricing.Product{{ID: "PA", BasePrice: 299}}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Submit(ctx, []ingest.Event{ev("1", "PA", pricing.Purchase)}); err != nil {
		t.Fatal(err)
	}
	h.store.fail.Store(true)
	_, err := h.eng.Submit(ctx, []ingest.Event{ev("2", "PA", pricing.Purchase), ev("3", "PA", pricing.Cart)})
	var ee *engine.Error
	if !errors.As(err, &ee) || ee.Kind != engine.KindUnavailable {
		t.Fatalf("submit during failure = %v, want KindUnavailable", err)
	}
	h.store.fail.Store(false)
	// Memory was rolled back to what is durable: demand 5, and the failed
	// ids are not remembered, so a retry applies them.
	if c := h.pub.get("PA"); c.Demand != 5 {
		t.Fatalf("demand after failed commit = %v, want 5", c.Demand)
	}
	res, err := h.eng.Submit(ctx, []ingest.Event{ev("2", "PA", pricing.Purchase), ev("3", "PA", pricing.Cart)})
	if err != nil || res.Duplicates != 0 || res.Accepted != 2 {
		t.Fatalf("retry = %+v %v", res, err)
	}
	if c := h.pub.get("PA"); c.Demand != 13 {
		t.Fatalf("demand = %v, want 13", c.Demand)
	}
}

func TestShutdownCommitsQueuedWork(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	h := start(t, path, nil)
	ctx := context.Background()
	if err := h.eng.ImportCatalog(ctx, []pricing.Product{{ID: "PA", BasePrice: 10}}, ""); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var acked atomic.Int64
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res, err := h.eng.Submit(ctx, []ingest.Event{ev("", "PA", pricing.View)}); err == nil {
				acked.Add(int64(res.Accepted))
			}
		}()
	}
	time.Sleep(time.Millisecond)
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if _, err := h.eng.Submit(ctx, []ingest.Event{ev("", "PA", pricing.View)}); !errors.Is(err, engine.ErrStopped) {
		t.Fatalf("submit after stop = %v", err)
	}
	h2 := start(t, path, nil)
	if got := h2.pub.get("PA").Demand; got != float64(acked.Load()) {
		t.Fatalf("demand after restart = %v, want the %d acknowledged events", got, acked.Load())
	}
}

// The tests that depend on the writer's tickers run in a synctest bubble:
// time.Sleep(d) there lets exactly the ticks of d fire, and synctest.Wait
// returns once the writer has handled them, so nothing is left to timing.

func TestTickDecaysAndExpiresOverrides(t *testing.T) {
	synctest.Test(t, testTickDecaysAndExpiresOverrides)
}

func testTickDecaysAndExpiresOverrides(t *testing.T) {
	h := start(t, filepath.Join(t.TempDir(), "db"), func(c *engine.Config) { c.Pricing.HalfLife = time.Minute })
	ctx := context.Background()
	if err := h.eng.ImportCatalog(ctx, []pricing.Product{{ID: "D", BasePrice: 100, Strategy: "decay"}, {ID: "S", BasePrice: 100}}, ""); err != nil {
		t.Fatal(err)
	}
	evs := make([]ingest.Event, 16)
	for i := range evs {
		evs[i] = ev("", "D", pricing.View)
	}
	evs = append(evs, ev("", "S", pricing.Purchase))
	if _, err := h.eng.Submit(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := h.eng.SetOverride(ctx, engine.OverrideInput{ProductID: "S", Price: 1, By: "t", ExpiresAt: h.clock.Now().Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if c := h.pub.get("D"); c.Price != 120 {
		t.Fatalf("D = %v", c.Price)
	}
	h.clock.Advance(2 * time.Minute)
	if c := h.pub.get("D"); c.Price != 120 {
		t.Fatalf("D = %v before a tick, want 120 still", c.Price)
	}
	time.Sleep(5 * time.Millisecond) // one tick
	synctest.Wait()
	if d, s := h.pub.get("D"), h.pub.get("S"); d.Price != 110 || s.Source != pricing.SourceDynamic {
		t.Fatalf("after a tick: D = %v, S from %v; want 110 and dynamic", d.Price, s.Source)
	}
	audit, err := h.store.OverrideAudit(ctx, "S", 10)
	if err != nil || len(audit) != 1 || audit[0].EndReason != "expired" {
		t.Fatalf("audit = %+v %v", audit, err)
	}
}

func TestDedupWindowForgetsOldIDs(t *testing.T) {
	met := engine.NewMetrics(nil, "test")
	h := start(t, filepath.Join(t.TempDir(), "db"), func(c *engine.Config) { c.DedupMax = 2; c.Metrics = met })
	ctx := context.Background()
	h.eng.ImportCatalog(ctx, []pricing.Product{{ID: "PA", BasePrice: 1}}, "")
	for _, id := range []string{"a", "b", "c"} {
		h.eng.Submit(ctx, []ingest.Event{ev(id, "PA", pricing.View)})
	}
	// "a" was evicted (max 2), "c" is remembered.
	res, _ := h.eng.Submit(ctx, []ingest.Event{ev("c", "PA", pricing.View), ev("a", "PA", pricing.View)})
	if res.Duplicates != 1 || res.Accepted != 2 {
		t.Fatalf("res = %+v", res)
	}
	// "a" was forgotten within its window (24h) for want of room, and then
	// "b" to remember "a" again: both are counted.
	if got := testutil.ToFloat64(met.DedupEvicted); got != 2 {
		t.Fatalf("dedup_evicted_in_window_total = %v, want 2", got)
	}
}

// TestDedupWindowExpiresIDsByAge: an id older than DedupWindow (by the
// engine's clock) is applied again; a younger one is still a duplicate, and
// the re-applied id is remembered anew, across a restart too.
func TestDedupWindowExpiresIDsByAge(t *testing.T) { synctest.Test(t, testDedupWindowExpiresIDsByAge) }

func testDedupWindowExpiresIDsByAge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	tune := func(c *engine.Config) { c.DedupWindow = time.Hour; c.PruneInterval = 5 * time.Millisecond }
	h := start(t, path, tune)
	ctx := context.Background()
	if err := h.eng.ImportCatalog(ctx, []pricing.Product{{ID: "PA", BasePrice: 1}}, ""); err != nil {
		t.Fatal(err)
	}
	submit := func(id string) engine.SubmitResult {
		t.Helper()
		res, err := h.eng.Submit(ctx, []ingest.Event{ev(id, "PA", pricing.View)})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	submit("old")
	h.clock.Advance(40 * time.Minute)
	submit("young")
	// Within the window both are duplicates after the pruner ran 4 times.
	time.Sleep(20 * time.Millisecond)
	synctest.Wait()
	if res := submit("old"); res.Duplicates != 1 {
		t.Fatalf("old within the window: %+v, want a duplicate", res)
	}
	h.clock.Advance(30 * time.Minute) // old is 70 min old, young 30
	if res := submit("old"); res.Duplicates != 1 {
		t.Fatalf("old before the pruner ran: %+v, want a duplicate still", res)
	}
	time.Sleep(5 * time.Millisecond) // one prune
	synctest.Wait()
	if res := submit("old"); res.Duplicates != 0 {
		t.Fatalf("old after the pruner ran: %+v, want it applied again", res)
	}
	if res := submit("young"); res.Duplicates != 1 {
		t.Fatalf("young after old expired: %+v, want a duplicate", res)
	}
	if d := h.pub.get("PA").Demand; d != 3 {
		t.Fatalf("demand = %v, want 3 (old, young, old again)", d)
	}
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h2 := start(t, path, tune)
	h2.clock.ns.Store(h.clock.ns.Load())
	for _, id := range []string{"old", "young"} {
		if res, err := h2.eng.Submit(ctx, []ingest.Event{ev(id, "PA", pricing.View)}); err != nil || res.Duplicates != 1 {
			t.Fatalf("%s after restart: %+v %v, want a duplicate", id, res, err)
		}
	}
}

func TestFailedTickCommitDoesNotStopTheEngine(t *testing.T) {
	synctest.Test(t, testFailedTickCommitDoesNotStopTheEngine)
}

func testFailedTickCommitDoesNotStopTheEngine(t *testing.T) {
	h := start(t, filepath.Join(t.TempDir(), "db"), func(c *engine.Config) { c.Pricing.HalfLife = time.Second })
	ctx := context.Background()
	if err := h.eng.ImportCatalog(ctx, []pricing.Product{{ID: "D", BasePrice: 100, Strategy: "decay"}}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.Submit(ctx, []ingest.Event{ev("", "D", pricing.Purchase), ev("", "D", pricing.Purchase)}); err != nil {
		t.Fatal(err)
	}
	h.store.fail.Store(true)
	for i := 0; i < 5; i++ { // ticks now reprice D and fail to commit
		h.clock.Advance(time.Second)
		time.Sleep(5 * time.Millisecond)
		synctest.Wait()
	}
	h.store.fail.Store(false)
	if n := h.store.failed.Load(); n != 5 {
		t.Fatalf("%d tick commits failed, want 5 (one per tick)", n)
	}
	if _, err := h.eng.Submit(ctx, []ingest.Event{ev("", "D", pricing.View)}); err != nil {
		t.Fatalf("engine did not survive failed tick commits: %v", err)
	}
}

func TestStopReleasesSendersBlockedOnAFullQueue(t *testing.T) {
	synctest.Test(t, testStopReleasesSendersBlockedOnAFullQueue)
}

func testStopReleasesSendersBlockedOnAFullQueue(t *testing.T) {
	h := start(t, filepath.Join(t.TempDir(), "db"), func(c *engine.Config) { c.QueueSize = 1; c.MaxBatch = 1 })
	ctx := context.Background()
	if err := h.eng.ImportCatalog(ctx, []pricing.Product{{ID: "PA", BasePrice: 1}}, ""); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	h.store.gate.Store(&gate)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := 0; i < 20; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.eng.Submit(ctx, []ingest.Event{ev("", "PA", pricing.View)})
			errs <- err
		}()
	}
	synctest.Wait() // a commit waits at the gate, the queue is full, senders block
	stopped := make(chan error, 1)
	go func() { stopped <- h.stop() }()
	synctest.Wait()
	h.store.gate.Store(nil)
	close(gate)
	select {
	case err := <-stopped:
		if err != nil {
			t.Fatal(err)
		}
	default:
		synctest.Wait()
		select {
		case err := <-stopped:
			if err != nil {
				t.Fatal(err)
			}
		default:
			t.Fatal("engine did not stop while senders were blocked")
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil && !errors.Is(err, engine.ErrStopped) {
			t.Fatalf("submit error %v, want nil or ErrStopped", err)
		}
	}
}

// TestStoppedWriterFailsQueuedAndNewRequests: when Run returns an error
// (here a commit fails because another writer committed, and so does the
// reload that must follow), the requests
// queued behind it are answered with ErrStopped instead of waiting forever,
// and a new Submit fails at once.
func TestStoppedWriterFailsQueuedAndNewRequests(t *testing.T) {
	synctest.Test(t, testStoppedWriterFailsQueuedAndNewRequests)
}

func testStoppedWriterFailsQueuedAndNewRequests(t *testing.T) {
	ctx := context.Background()
	store := openFlaky(t)
	cfg := engine.DefaultConfig()
	cfg.MaxBatch, cfg.QueueSize = 1, 8
	w, err := engine.NewWriter(cfg, store, &recorder{})
	if err != nil {
		t.Fatal(err)
	}
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(ctx) }()
	<-w.Ready()
	if err := w.ImportCatalog(ctx, []pricing.Product{{ID: "PA", BasePrice: 1}}, ""); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	store.gate.Store(&gate)
	errs := make(chan error, 5)
	for range 5 {
		go func() {
			_, err := w.Submit(ctx, []ingest.Event{ev("", "PA", pricing.View)})
			errs <- err
		}()
	}
	synctest.Wait() // one commit at the gate, four requests queued
	store.fail.Store(true)
	store.fenced.Store(true)
	store.failLoad.Store(true)
	close(gate)
	if err := <-runErr; err == nil {
		t.Fatal("Run returned nil after the state could not be reloaded")
	}
	for range 5 {
		if err := <-errs; err == nil {
			t.Fatal("a request was acknowledged although nothing was committed")
		}
	}
	sctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	start := time.Now()
	if _, err := w.Submit(sctx, []ingest.Event{ev("", "PA", pricing.View)}); !errors.Is(err, engine.ErrStopped) {
		t.Fatalf("Submit to a stopped writer = %v, want ErrStopped", err)
	}
	if took := time.Since(start); took != 0 {
		t.Fatalf("Submit to a stopped writer took %v of fake time, want an answer at once", took)
	}
}

// TestPruneEveryDefaultsToAMinute: a zero PruneInterval means once a minute,
// for the engine and the Kafka processor alike.
func TestPruneEveryDefaultsToAMinute(t *testing.T) {
	c := engine.DefaultConfig()
	if got := c.PruneEvery(); got != time.Minute {
		t.Fatalf("zero PruneInterval: PruneEvery = %v, want 1m", got)
	}
	c.PruneInterval = 5 * time.Second
	if got := c.PruneEvery(); got != 5*time.Second {
		t.Fatalf("PruneEvery = %v, want 5s", got)
	}
}

// poisonStore refuses, as a store refuses a value it cannot encode, every
// batch in which the product poison has demand.
type poisonStore struct {
	*flakyStore
	poison string
}

func (p *poisonStore) Commit(ctx context.Context, b *engine.Batch) error {
	for _, s := range b.States {
		if s.ID == p.poison && s.State.Demand.Total > 0 {
			return fmt.Errorf("state of %q: %w", s.ID, engine.ErrUnencodable)
		}
	}
	return p.flakyStore.Commit(ctx, b)
}

// TestPoisonedRequestIsRejectedAndTheRestCommitted: a request whose change
// cannot be stored, in a group commit with innocent ones, costs only its own
// sender an error; the others are committed and acknowledged, and the
// writer goes on.
func TestPoisonedRequestIsRejectedAndTheRestCommitted(t *testing.T) {
	synctest.Test(t, testPoisonedRequestIsRejectedAndTheRestCommitted)
}

func testPoisonedRequestIsRejectedAndTheRestCommitted(t *testing.T) {
	ctx := context.Background()
	store := &poisonStore{flakyStore: openFlaky(t), poison: "PX"}
	pub := &recorder{}
	cfg := engine.DefaultConfig()
	met := engine.NewMetrics(nil, "test")
	cfg.Metrics = met
	w, err := engine.NewWriter(cfg, store, pub)
	if err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	runErr := make(chan error, 1)
	go func() { runErr <- w.Run(runCtx) }()
	defer func() { stop(); <-runErr }()
	<-w.Ready()
	if err := w.ImportCatalog(ctx, []pricing.Product{{ID: "PA", BasePrice: 100}, {ID: "PB", BasePrice: 100}, {ID: "PX", BasePrice: 100}}, ""); err != nil {
		t.Fatal(err)
	}
	gate := make(chan struct{})
	store.gate.Store(&gate)
	// One request holds the writer at the gate; the next ones queue and
	// form one round behind it.
	errs := make(map[string]chan error)
	send := func(id string) {
		errs[id] = make(chan error, 1)
		go func() {
			_, err := w.Submit(ctx, []ingest.Event{ev("", id, pricing.Purchase)})
			errs[id] <- err
		}()
		synctest.Wait()
	}
	send("PA")
	for _, id := range []string{"PB", "PX"} {
		send(id)
	}
	ovErr := make(chan error, 1)
	go func() { ovErr <- w.SetOverride(ctx, engine.OverrideInput{ProductID: "PA", Price: 80, By: "ops"}) }()
	synctest.Wait()
	store.gate.Store(nil)
	close(gate)
	for id, want := range map[string]bool{"PA": true, "PB": true, "PX": false} {
		err := <-errs[id]
		var e *engine.Error
		switch {
		case want && err != nil:
			t.Errorf("%s: %v, want it committed", id, err)
		case !want && (!errors.As(err, &e) || e.Kind != engine.KindInvalid):
			t.Errorf("%s: %v, want an invalid-input error", id, err)
		}
	}
	if err := <-ovErr; err != nil {
		t.Errorf("override in the same round: %v", err)
	}
	if pa, pb, px := pub.get("PA"), pub.get("PB"), pub.get("PX"); pa.Price != 80 || pb.Demand != 5 || px.Demand != 0 {
		t.Errorf("published PA %v (want the override, 80), PB demand %v (want 5), PX demand %v (want 0)", pa.Price, pb.Demand, px.Demand)
	}
	if got := testutil.ToFloat64(met.Poisoned); got != 1 {
		t.Errorf("inputs_poisoned_total = %v, want 1", got)
	}
	if _, err := w.Submit(ctx, []ingest.Event{ev("", "PB", pricing.View)}); err != nil {
		t.Fatalf("the writer did not go on after the poisoned request: %v", err)
	}
	snap, err := store.Store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d := snap.StateMap()["PB"].Demand.Total; d != 6 {
		t.Errorf("PB's committed demand %v, want 6", d)
	}
}
