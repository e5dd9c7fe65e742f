package kafka

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/poll"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/sqlite"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
)

func TestPartitionOfMatchesFranzGo(t *testing.T) {
	part := kgo.StickyKeyPartitioner(nil).ForTopic("t")
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < 20000; i++ {
		key := make([]byte, r.IntN(40))
		for k := range key {
			key[k] = byte(r.IntN(256))
		}
		for _, n := range []int{1, 3, 12, 50} {
			want := part.Partition(&kgo.Record{Key: key}, n)
			if got := PartitionOf(string(key), int32(n)); int(got) != want {
				t.Fatalf("PartitionOf(%q, %d) = %d, franz-go says %d", key, n, got, want)
			}
		}
	}
}

// memLive is a LiveWriter keeping the newest version per product, the
// behaviour the Redis adapter guarantees (tested there against Redis).
type memLive struct {
	mu sync.Mutex
	m  map[string]live.Price
	// down fails every write, as Redis being unreachable does; lose, when
	// set, drops the next write of that product while reporting success.
	down   bool
	lose   string
	failed int        // writes refused while down
	writes [][]string // product ids of each successful write
}

func (l *memLive) Write(_ context.Context, cs []live.Price) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.down {
		l.failed++
		return 0, errors.New("connection refused")
	}
	n := 0
	var ids []string
	defer func() { l.writes = append(l.writes, ids) }()
	for _, c := range cs {
		ids = append(ids, c.ProductID)
		if c.ProductID == l.lose {
			l.lose = ""
			continue
		}
		if old, ok := l.m[c.ProductID]; ok && old.Version >= c.Version {
			continue
		}
		l.m[c.ProductID] = c
		n++
	}
	return n, nil
}

func (l *memLive) set(f func(*memLive)) {
	l.mu.Lock()
	defer l.mu.Unlock()
	f(l)
}

func (l *memLive) get(id string) (live.Price, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	c, ok := l.m[id]
	return c, ok
}

// sqliteStores opens one SQLite store per partition in dir, seeding each
// with the demo products it owns.
type sqliteStores struct {
	t   *testing.T
	dir string
	n   int32
	mu  sync.Mutex
}

func (s *sqliteStores) open(q int32, owns func(string) bool) engine.Store {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := sqlite.Open(context.Background(), sqlite.Config{Path: filepath.Join(s.dir, fmt.Sprintf("p%d.db", q)), Synchronous: "normal"})
	if err != nil {
		s.t.Fatal(err)
	}
	snap, err := st.Load(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	if len(snap.Products) == 0 {
		var mine []pricing.Product
		for _, p := range catalog.Demo().Products {
			if owns(p.ID) {
				mine = append(mine, p)
			}
		}
		if err := st.Commit(context.Background(), &engine.Batch{Products: mine, Settings: map[string]string{"default_strategy": "seed"}}); err != nil {
			s.t.Fatal(err)
		}
	}
	return st
}

type rig struct {
	t       *testing.T
	brokers []string
	topics  Topics
	stores  *sqliteStores
	// stores2, when set, replaces stores.open (to wrap the stores).
	stores2 StoreOpener
	live    *memLive
	// liveWriter, when set, replaces live (Redis).
	liveWriter LiveWriter
	eng        *Engine // the last one started
}

func newRig(t *testing.T, partitions int32) *rig {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return &rig{t: t, brokers: c.ListenAddrs(), topics: DefaultTopics(),
		stores: &sqliteStores{t: t, dir: t.TempDir(), n: partitions}, live: &memLive{m: map[string]live.Price{}}}
}

// start runs an engine until the returned stop is called; tune, if
// given, adjusts its engine configuration.
func (r *rig) start(tune ...func(*engine.Config)) (stop func()) {
	cfg := engine.DefaultConfig()
	cfg.TickInterval = 200 * time.Millisecond
	for _, f := range tune {
		f(&cfg)
	}
	stores := r.stores2
	if stores == nil {
		stores = r.stores.open
	}
	var lw LiveWriter = r.live
	if r.liveWriter != nil {
		lw = r.liveWriter
	}
	p, err := NewEngine(EngineConfig{
		Brokers: r.brokers, Topics: r.topics, Group: "engines", Partitions: r.stores.n,
		Engine: cfg, Stores: stores, Live: lw, Signer: testSigner,
		ClientOpts: []kgo.Opt{kgo.SessionTimeout(time.Second), kgo.RebalanceTimeout(2 * time.Second), kgo.HeartbeatInterval(100 * time.Millisecond)},
	})
	if err != nil {
		r.t.Fatal(err)
	}
	r.eng = p
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			r.t.Errorf("Run: %v", err)
		}
	}
}

func (r *rig) client(opts ...kgo.Opt) *kgo.Client {
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(r.brokers...)}, opts...)...)
	if err != nil {
		r.t.Fatal(err)
	}
	r.t.Cleanup(cl.Close)
	return cl
}

var weights = map[string]float64{"view": 1, "cart": 3, "purchase": 5}

// waitDemand waits until every product's live demand equals want.
func (r *rig) waitDemand(want map[string]float64, timeout time.Duration) {
	r.t.Helper()
	poll.Until(r.t, timeout, "the live demands", func() error {
		for id, d := range want {
			if c, ok := r.live.get(id); !ok || math.Abs(c.Demand-d) > 1e-9 {
				return fmt.Errorf("%s: live demand %v (present %v), want %v", id, c.Demand, ok, d)
			}
		}
		return nil
	})
}

// waitConsumed waits until the engines' group has committed, for every
// partition of topics (default: the events topic), the topic's end offset.
// The engine commits a partition's position to Kafka (for lag monitoring)
// only after the round that reached it was committed to the store: from
// then on every record produced so far is in the stores, and nothing is
// left to apply.
func (r *rig) waitConsumed(timeout time.Duration, topics ...string) {
	r.t.Helper()
	if len(topics) == 0 {
		topics = []string{r.topics.Events}
	}
	adm := kadm.NewClient(r.client())
	ctx := context.Background()
	poll.Until(r.t, timeout, "the group's offsets at the end of "+strings.Join(topics, ", "), func() error {
		ends, err := adm.ListEndOffsets(ctx, topics...)
		if err != nil {
			return err
		}
		if err := ends.Error(); err != nil {
			return err
		}
		committed, err := adm.FetchOffsets(ctx, "engines")
		if err != nil {
			return err
		}
		var behind error
		ends.Each(func(end kadm.ListedOffset) {
			c, ok := committed.Lookup(end.Topic, end.Partition)
			if end.Offset == 0 && !ok {
				return // nothing to consume: no position was ever committed
			}
			if behind == nil && (!ok || c.Err != nil || c.At != end.Offset) {
				behind = fmt.Errorf("%s/%d: committed %d (%v), end %d", end.Topic, end.Partition, c.At, c.Err, end.Offset)
			}
		})
		return behind
	})
}

// sendCarts produces one keyed cart event (demand 3) per id, in order.
func (r *rig) sendCarts(ids ...string) {
	r.t.Helper()
	var recs []*kgo.Record
	for _, id := range ids {
		recs = append(recs, &kgo.Record{Topic: r.topics.Events, Key: []byte(id), Value: seedEvent("cart", id)})
	}
	if err := r.client().ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		r.t.Fatal(err)
	}
}

func seedEvent(typ, id string) []byte {
	return []byte(`{"event_type":"` + typ + `","product_id":"` + id + `","user_id":"U1","timestamp":` +
		strconv.FormatInt(time.Now().UnixMilli(), 10) + `,"price":1}`)
}

// TestEngineExactlyOnce streams keyed and unkeyed events plus malformed
// records, restarts the engine mid-stream, and checks that demand is the
// exact weighted sum, history has one row per event, and dead letters carry
// their reasons.
func TestEngineExactlyOnce(t *testing.T) {
	r := newRig(t, 4)
	stop := r.start()
	keyed := r.client(kgo.DefaultProduceTopic(r.topics.Events))
	// The original's producers set no key: spread such records round-robin.
	unkeyed := r.client(kgo.DefaultProduceTopic(r.topics.Events), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	ids := []string{"PA", "PB", "PC", "PD", "PE", "PF", "PG", "PH", "PI", "PJ"}
	types := []string{"view", "cart", "purchase"}
	want := map[string]float64{}
	count := map[string]int{}
	rnd := rand.New(rand.NewPCG(3, 4))
	ctx := context.Background()
	produce := func(n int) {
		var recs []*kgo.Record
		for i := 0; i < n; i++ {
			id, typ := ids[rnd.IntN(len(ids))], types[rnd.IntN(3)]
			want[id] += weights[typ]
			count[id]++
			rec := &kgo.Record{Value: seedEvent(typ, id)}
			if i%2 == 0 {
				rec.Key = []byte(id)
				recs = append(recs, rec)
				continue
			}
			if err := unkeyed.ProduceSync(ctx, rec).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		if err := keyed.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	produce(1500)
	bad := []*kgo.Record{
		{Value: []byte("not json")},
		{Value: []byte(`{"event_type":"zap","product_id":"PA"}`)},
		{Value: []byte(`{"event_type":"view","product_id":"NOPE"}`)},
		{Key: []byte("PA"), Value: []byte(`{"product_id":"PA"}`), Headers: []kgo.RecordHeader{{Key: HeaderControl, Value: []byte("bogus")}}},
	}
	if err := keyed.ProduceSync(ctx, bad...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	r.waitDemand(want, 20*time.Second)
	stop()
	produce(1500) // while no engine runs
	stop = r.start()
	r.waitDemand(want, 20*time.Second)
	stop()

	// History: exactly one row per event (the seed formula moves the price
	// with every event), across all partition stores.
	for _, id := range ids {
		q := PartitionOf(id, 4)
		st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(r.stores.dir, fmt.Sprintf("p%d.db", q))})
		if err != nil {
			t.Fatal(err)
		}
		h, err := st.History(ctx, id, 100000)
		st.Close()
		if err != nil {
			t.Fatal(err)
		}
		if dyn := dynamicRows(h); dyn != count[id] {
			t.Errorf("%s: %d dynamic history rows, want %d (one per event)", id, dyn, count[id])
		}
		c, _ := r.live.get(id)
		base := 0.0
		for _, p := range catalog.Demo().Products {
			if p.ID == id {
				base = p.BasePrice
			}
		}
		if wantPrice := math.Round((base+math.Sqrt(want[id])*5)*100) / 100; math.Abs(c.Price-wantPrice) > 1e-9 {
			t.Errorf("%s: live price %v, want %v", id, c.Price, wantPrice)
		}
	}

	// Dead letters: the four bad records, each with a reason.
	dlq := r.client(kgo.ConsumeTopics(r.topics.DeadLetter()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	reasons := map[string]bool{}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for len(reasons) < 4 && pctx.Err() == nil {
		dlq.PollFetches(pctx).EachRecord(func(rec *kgo.Record) {
			why := string(header(rec, HeaderError))
			if why == "" || header(rec, HeaderOrigin) == nil {
				t.Errorf("dead letter %q without reason or origin", rec.Value)
			}
			reasons[why] = true
		})
	}
	if len(reasons) != 4 {
		t.Errorf("dead letter reasons = %v, want 4 distinct", reasons)
	}
}

// prunes wraps a store to count the PruneSeen calls that returned.
type prunes struct {
	engine.Store
	n *atomic.Int64
}

func (p prunes) PruneSeen(ctx context.Context, before int64, keep int) error {
	defer p.n.Add(1)
	return p.Store.PruneSeen(ctx, before, keep)
}

// TestEnginePrunesSeenIDsEveryPruneInterval: the engine forgets event ids
// older than DedupWindow (by the engine's clock) as often as
// engine.Config.PruneInterval says, not once a minute: an expired id is
// applied again, a younger one is still a duplicate.
func TestEnginePrunesSeenIDsEveryPruneInterval(t *testing.T) {
	r := newRig(t, 1) // one partition: records are applied in the order sent
	var pruned atomic.Int64
	open := r.stores.open
	r.stores2 = func(q int32, owns func(string) bool) engine.Store { return prunes{open(q, owns), &pruned} }
	var now atomic.Int64
	now.Store(time.Now().UnixNano())
	stop := r.start(func(c *engine.Config) {
		c.Now = func() time.Time { return time.Unix(0, now.Load()) }
		c.DedupWindow, c.PruneInterval, c.TickInterval = time.Hour, 10*time.Millisecond, 50*time.Millisecond
	})
	defer stop()
	cl := r.client(kgo.DefaultProduceTopic(r.topics.Events))
	ctx := context.Background()
	send := func(ids ...string) {
		t.Helper()
		var recs []*kgo.Record
		for _, id := range ids {
			if id == "" { // a marker without an id, for PB
				recs = append(recs, &kgo.Record{Key: []byte("PB"), Value: []byte(`{"event_type":"view","product_id":"PB"}`)})
				continue
			}
			recs = append(recs, &kgo.Record{Key: []byte("PA"), Value: []byte(`{"event_id":"` + id + `","event_type":"view","product_id":"PA"}`)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	// prunesFrom waits until n prunes have returned after from.
	prunesFrom := func(from int64, n int64, timeout time.Duration, what string) {
		t.Helper()
		poll.Until(t, timeout, what, func() error {
			got := pruned.Load() - from
			return poll.Check(got >= n, "%d prunes", got)
		})
	}
	send("old")
	r.waitDemand(map[string]float64{"PA": 1}, 20*time.Second)
	now.Add(int64(40 * time.Minute))
	send("young")
	r.waitDemand(map[string]float64{"PA": 2}, 20*time.Second)
	// Several prunes: within the window nothing is forgotten. old, sent
	// again, is a duplicate; the marker for PB behind it in the partition
	// shows that it was processed.
	prunesFrom(pruned.Load(), 3, 10*time.Second, "three prunes after young was applied")
	send("old", "")
	r.waitDemand(map[string]float64{"PA": 2, "PB": 1}, 20*time.Second)

	now.Add(int64(30 * time.Minute)) // old is 70 min old, young 30
	// The prune returning first may have read the clock before it moved;
	// the one after it began after the move.
	prunesFrom(pruned.Load(), 2, 10*time.Second, "two prunes after the clock moved (pruned only once a minute?)")
	send("old")
	r.waitDemand(map[string]float64{"PA": 3, "PB": 1}, 20*time.Second)
	send("old", "young", "")
	r.waitDemand(map[string]float64{"PA": 3, "PB": 2}, 20*time.Second)
}

// fenced wraps a store so that some commits report ErrFenced: every third
// one after it went through (its acknowledgement was lost), every fifth one
// without writing anything (another owner committed first). Either way the
// engine must reload from the store and resume from the committed
// offsets, applying everything exactly once.
type fenced struct {
	engine.Store
	mu      sync.Mutex
	commits int
}

func (f *fenced) Commit(ctx context.Context, b *engine.Batch) error {
	f.mu.Lock()
	f.commits++
	n := f.commits
	f.mu.Unlock()
	if n%5 == 0 {
		return fmt.Errorf("overtaken: %w", engine.ErrFenced)
	}
	if err := f.Store.Commit(ctx, b); err != nil {
		return err
	}
	if n%3 == 0 {
		return fmt.Errorf("commit acknowledgement lost: %w", engine.ErrFenced)
	}
	return nil
}

func TestEngineReloadsAfterFencedCommit(t *testing.T) {
	r := newRig(t, 2)
	open := r.stores.open
	r.stores2 = func(q int32, owns func(string) bool) engine.Store { return &fenced{Store: open(q, owns)} }
	stop := r.start()
	cl := r.client(kgo.DefaultProduceTopic(r.topics.Events))
	want := map[string]float64{}
	ctx := context.Background()
	for round := 0; round < 20; round++ {
		var recs []*kgo.Record
		for i := 0; i < 50; i++ {
			id := []string{"PA", "PB", "PC"}[i%3]
			want[id] += 3
			recs = append(recs, &kgo.Record{Key: []byte(id), Value: seedEvent("cart", id)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		// Spread the records over many rounds, so that many commits are
		// fenced mid-stream; not a wait for anything.
		time.Sleep(20 * time.Millisecond)
	}
	r.waitDemand(want, 20*time.Second)
	// The demands reached the total, but a record still unrouted could
	// count twice yet: wait until every record is committed to the stores.
	// Then stop, which publishes the last committed round.
	r.waitConsumed(20 * time.Second)
	stop()
	for id, d := range want {
		if c, _ := r.live.get(id); c.Demand != d {
			t.Errorf("%s: demand %v after fenced commits, want %v", id, c.Demand, d)
		}
		if n := r.historyRows(id, 2); n != int(d/3) {
			t.Errorf("%s: %d history rows after fenced commits, want %d", id, n, int(d/3))
		}
	}
}

// historyRows counts id's dynamic history rows in its partition's store.
func (r *rig) historyRows(id string, partitions int32) int {
	r.t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, sqlite.Config{Path: filepath.Join(r.stores.dir, fmt.Sprintf("p%d.db", PartitionOf(id, partitions)))})
	if err != nil {
		r.t.Fatal(err)
	}
	defer st.Close()
	h, err := st.History(ctx, id, 1_000_000)
	if err != nil {
		r.t.Fatal(err)
	}
	return dynamicRows(h)
}

// dynamicRows counts the rows of h whose price came from events.
func dynamicRows(h []engine.HistoryRow) int {
	n := 0
	for _, row := range h {
		if row.Source == pricing.SourceDynamic {
			n++
		}
	}
	return n
}

// poisoned wraps a store to refuse, as a store refuses a value it cannot
// encode, every batch in which product poison has demand.
type poisoned struct {
	engine.Store
	poison string
}

func (p poisoned) Commit(ctx context.Context, b *engine.Batch) error {
	for _, s := range b.States {
		if s.ID == p.poison && s.State.Demand.Total > 0 {
			return fmt.Errorf("state of %q: %w", s.ID, engine.ErrUnencodable)
		}
	}
	return p.Store.Commit(ctx, b)
}

// TestEnginePoisonedRecordIsDeadLetteredAndTheRestCommitted: a record whose
// change cannot be stored, amid innocent ones, is dead-lettered with the
// reason; the others are applied and the partition keeps going, instead of
// retrying the same round forever.
func TestEnginePoisonedRecordIsDeadLetteredAndTheRestCommitted(t *testing.T) {
	r := newRig(t, 1)
	open := r.stores.open
	r.stores2 = func(q int32, owns func(string) bool) engine.Store {
		return poisoned{Store: open(q, owns), poison: "PC"}
	}
	stop := r.start()
	defer stop()
	ctx := context.Background()
	r.sendCarts("PA", "PB", "PC", "PD", "PE")
	r.waitDemand(map[string]float64{"PA": 3, "PB": 3, "PD": 3, "PE": 3}, 20*time.Second)
	r.sendCarts("PF")
	r.waitDemand(map[string]float64{"PF": 3}, 20*time.Second)
	if c, _ := r.live.get("PC"); c.Demand != 0 {
		t.Errorf("PC's live demand %v, want 0: its event was not committed", c.Demand)
	}
	dlq := r.client(kgo.ConsumeTopics(r.topics.DeadLetter()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var got []*kgo.Record
	for len(got) == 0 && pctx.Err() == nil {
		dlq.PollFetches(pctx).EachRecord(func(rec *kgo.Record) { got = append(got, rec) })
	}
	if len(got) != 1 || string(got[0].Key) != "PC" || !strings.Contains(string(header(got[0], HeaderError)), "cannot be stored") ||
		string(header(got[0], HeaderOrigin)) != r.topics.Events+"/0/2" {
		for _, rec := range got {
			t.Logf("dead letter %s: %s from %s", rec.Key, header(rec, HeaderError), header(rec, HeaderOrigin))
		}
		t.Fatalf("%d dead letters, want PC's record (offset 2) with the reason", len(got))
	}
}

// TestEngineRepublishesAfterTheLiveViewRecovers: once writes to the live
// view work again after failing, every partition publishes all its prices
// again, so the view converges even if the outage lost a write that was
// reported done.
func TestEngineRepublishesAfterTheLiveViewRecovers(t *testing.T) {
	r := newRig(t, 1)
	stop := r.start()
	defer stop()
	r.sendCarts("PA")
	r.waitDemand(map[string]float64{"PA": 3}, 20*time.Second)
	// A write of PB is lost without an error, as a reply lost after the
	// fact could make it look done; then the live view goes down.
	r.live.set(func(l *memLive) { l.lose = "PB" })
	r.sendCarts("PB")
	poll.Until(t, 20*time.Second, "PB's write lost", func() error {
		var lost bool
		r.live.set(func(l *memLive) { lost = l.lose == "" })
		return poll.Check(lost, "PB not written yet")
	})
	r.live.set(func(l *memLive) { l.down = true })
	r.sendCarts("PA")
	poll.Until(t, 20*time.Second, "the outage noticed", func() error {
		var failed int
		r.live.set(func(l *memLive) { failed = l.failed })
		return poll.Check(failed > 0, "no failed write yet")
	})
	r.live.set(func(l *memLive) { l.down = false })
	r.waitDemand(map[string]float64{"PA": 6, "PB": 3}, 20*time.Second)
}

// alwaysFenced is a store whose every commit is refused as fenced: the
// partition's rounds fail and are replayed for ever.
type alwaysFenced struct{ engine.Store }

func (alwaysFenced) Commit(context.Context, *engine.Batch) error {
	return fmt.Errorf("overtaken: %w", engine.ErrFenced)
}

// TestEngineReportsAPartitionThatMakesNoProgress: a partition whose rounds
// keep failing is reported not ready, instead of replaying its records in
// silence.
func TestEngineReportsAPartitionThatMakesNoProgress(t *testing.T) {
	r := newRig(t, 1)
	open := r.stores.open
	r.stores2 = func(q int32, owns func(string) bool) engine.Store { return alwaysFenced{open(q, owns)} }
	stop := r.start()
	defer stop()
	poll.Until(t, 20*time.Second, "the engine ready", func() error { return poll.Check(r.eng.Ready(), "not ready") })
	r.sendCarts("PA")
	poll.Until(t, 20*time.Second, "the stuck partition reported", func() error { return poll.Check(!r.eng.Ready(), "still ready") })
}
