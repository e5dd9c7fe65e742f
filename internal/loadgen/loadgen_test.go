package loadgen

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

const (
	eventsTopic  = "product-events"
	updatesTopic = "price-updates"
)

// cluster starts an in-process Kafka broker with both topics, three
// partitions each (so that keying matters), reached over TCP by the real
// client.
func cluster(t *testing.T) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(3, eventsTopic, updatesTopic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func client(t *testing.T, addrs []string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(addrs...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

// readAll reads n records of topic from the start.
func readAll(t *testing.T, addrs []string, topic string, n int) []*kgo.Record {
	t.Helper()
	cl := client(t, addrs, kgo.ConsumeTopics(topic))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var recs []*kgo.Record
	for len(recs) < n {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			t.Fatalf("read %d of %d records of %s", len(recs), n, topic)
		}
		recs = append(recs, fs.Records()...)
	}
	// Nothing beyond n: give stragglers a moment to show.
	short, cancel2 := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel2()
	recs = append(recs, cl.PollFetches(short).Records()...)
	if len(recs) != n {
		t.Fatalf("%s holds %d records, want %d", topic, len(recs), n)
	}
	return recs
}

func mustRun(t *testing.T, cfg Config) Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run: %v (report %+v)", err, rep)
	}
	return rep
}

func TestConfigErrors(t *testing.T) {
	ok := Config{Brokers: []string{"127.0.0.1:1"}, Events: 1}
	for name, c := range map[string]func(*Config){
		"no brokers":        func(c *Config) { c.Brokers = nil },
		"no end":            func(c *Config) { c.Events = 0 },
		"negative rate":     func(c *Config) { c.Rate = -1 },
		"negative events":   func(c *Config) { c.Events = -1 },
		"empty products":    func(c *Config) { c.Products = []pricing.Product{} },
		"bad product id":    func(c *Config) { c.Products = []pricing.Product{{ID: "a b", BasePrice: 1}} },
		"duplicate product": func(c *Config) { c.Products = []pricing.Product{{ID: "A", BasePrice: 1}, {ID: "A", BasePrice: 2}} },
	} {
		cfg := ok
		c(&cfg)
		if _, err := Run(context.Background(), cfg); err == nil || !strings.HasPrefix(err.Error(), "loadgen: ") {
			t.Errorf("%s: err = %v, want a loadgen configuration error", name, err)
		}
	}
}

func TestMissingTopicFails(t *testing.T) {
	addrs := cluster(t)
	_, err := Run(context.Background(), Config{Brokers: addrs, UpdatesTopic: "no-such-topic", Events: 1})
	if err == nil || !strings.Contains(err.Error(), "no-such-topic") {
		t.Fatalf("err = %v, want one naming the missing topic", err)
	}
}

// TestPacing checks counts and that the rate is held: never faster than
// the schedule allows (event k goes out at k/Rate), and not far slower.
func TestPacing(t *testing.T) {
	addrs := cluster(t)
	const n, rate = 2000, 2000.0
	var progress bytes.Buffer
	rep := mustRun(t, Config{Brokers: addrs, Rate: rate, Events: n, Drain: -1, Progress: &progress})
	if rep.Sent != n || rep.Acked != n {
		t.Fatalf("sent %d, acked %d, want %d", rep.Sent, rep.Acked, n)
	}
	readAll(t, addrs, eventsTopic, n)
	if least := time.Duration(float64(n-1) / rate * float64(time.Second)); rep.Elapsed < least {
		t.Fatalf("elapsed %v, but %d events at %v/s take at least %v", rep.Elapsed, n, rate, least)
	}
	if rep.SendRate > 1.5*rate || rep.SendRate < 0.5*rate {
		t.Fatalf("send rate %.0f/s, want about %.0f/s", rep.SendRate, rate)
	}
	// No engine runs, so nothing matched; a negative drain does not wait.
	if rep.Matched != 0 || rep.Unmatched != n {
		t.Fatalf("matched %d, unmatched %d, want 0 and %d", rep.Matched, rep.Unmatched, n)
	}
	// Not a terminal: plain lines, the last one final.
	out := progress.String()
	if strings.Contains(out, "\r") || !strings.HasSuffix(out, "\n") {
		t.Fatalf("progress on a non-terminal should be plain lines: %q", out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "sent 2000 ") || !strings.Contains(last, "matched 0") {
		t.Fatalf("last progress line %q, want the final counts", last)
	}
}

func TestDurationEndsTheRun(t *testing.T) {
	addrs := cluster(t)
	rep := mustRun(t, Config{Brokers: addrs, Rate: 1000, Duration: 300 * time.Millisecond, Drain: -1})
	// Event k is due at k ms: exactly those due before 300 ms are sent,
	// however late the last tick woke.
	if rep.Sent != 300 || rep.Acked != rep.Sent {
		t.Fatalf("sent %d, acked %d, want 300 all acked", rep.Sent, rep.Acked)
	}
	readAll(t, addrs, eventsTopic, int(rep.Sent))
}

func TestCancelStopsTheRun(t *testing.T) {
	addrs := cluster(t)
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	rep, err := Run(ctx, Config{Brokers: addrs, Rate: 1000, Events: 1 << 30})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if rep.Sent == 0 || rep.Sent > 5000 { // generous: the cancel may be late on a busy machine
		t.Fatalf("sent %d, want some and not many more than 300ms at 1000/s owes", rep.Sent)
	}
}

// seedEvent is the original's event format, exactly: decoding with
// unknown fields disallowed proves there is nothing else (no event_id).
type seedEvent struct {
	EventType string  `json:"event_type"`
	ProductID string  `json:"product_id"`
	UserID    string  `json:"user_id"`
	Timestamp int64   `json:"timestamp"`
	Price     float64 `json:"price"`
}

func TestRecords(t *testing.T) {
	base := map[string]float64{}
	for _, p := range catalog.Demo().Products {
		base[p.ID] = p.BasePrice
	}
	for _, unkeyed := range []bool{false, true} {
		t.Run(fmt.Sprintf("unkeyed=%v", unkeyed), func(t *testing.T) {
			addrs := cluster(t)
			const n = 500
			rep := mustRun(t, Config{Brokers: addrs, Events: n, Unkeyed: unkeyed, Drain: -1, Seed: 7})
			if rep.Sent != n || rep.Acked != n {
				t.Fatalf("sent %d, acked %d", rep.Sent, rep.Acked)
			}
			types := map[string]int{}
			products := map[string]int{}
			partitions := map[string]map[int32]bool{}
			for _, r := range readAll(t, addrs, eventsTopic, n) {
				var e seedEvent
				d := json.NewDecoder(bytes.NewReader(r.Value))
				d.DisallowUnknownFields()
				if err := d.Decode(&e); err != nil {
					t.Fatalf("value %s: %v", r.Value, err)
				}
				if _, ok := pricing.ParseEventType(e.EventType); !ok {
					t.Fatalf("event type %q in %s", e.EventType, r.Value)
				}
				if b, ok := base[e.ProductID]; !ok || e.Price != b {
					t.Fatalf("unknown product or price not its base price: %s", r.Value)
				}
				if e.UserID == "" || e.Timestamp != r.Timestamp.UnixMilli() {
					t.Fatalf("value %s: want a user id and the record's timestamp %d", r.Value, r.Timestamp.UnixMilli())
				}
				if unkeyed && r.Key != nil {
					t.Fatalf("unkeyed run sent key %q", r.Key)
				}
				if !unkeyed && string(r.Key) != e.ProductID {
					t.Fatalf("key %q, product %q", r.Key, e.ProductID)
				}
				types[e.EventType]++
				products[e.ProductID]++
				if partitions[e.ProductID] == nil {
					partitions[e.ProductID] = map[int32]bool{}
				}
				partitions[e.ProductID][r.Partition] = true
			}
			// The demo mix: mostly views, the most popular product first.
			if !(types["view"] > types["cart"] && types["cart"] > types["purchase"] && types["purchase"] > 0) {
				t.Fatalf("event mix %v", types)
			}
			if products["PA"] <= products["PJ"] {
				t.Fatalf("popularity not skewed: %v", products)
			}
			if !unkeyed {
				for id, ps := range partitions {
					if len(ps) != 1 {
						t.Fatalf("keyed product %s spread over partitions %v", id, ps)
					}
				}
			}
		})
	}
}

// fakeEngine stands in for the pricing engines: it consumes the events and
// publishes price updates the way the real ones do, coalescing a few
// events per update at random, with rising versions per product and the
// event-time header of the newest event reflected. Now and then it also
// re-sends an older version claiming an event time far in the future,
// which loadgen must ignore.
type fakeEngine struct {
	updates, stale, errs atomic.Int64
}

func (e *fakeEngine) run(ctx context.Context, cl *kgo.Client, seed uint64) {
	rnd := rand.New(rand.NewPCG(seed, 1))
	type state struct {
		version uint64
		newest  int64
	}
	products := map[string]*state{}
	publish := func(id string, version uint64, eventTime int64) {
		v := fmt.Appendf(nil, `{"type":"price_update","product_id":%q,"new_price":314,"timestamp":%d,"price_source":"dynamic","demand":9,"version":%d,"lowest_30d":299}`,
			id, time.Now().Unix(), version)
		rec := &kgo.Record{Topic: updatesTopic, Key: []byte(id), Value: v,
			Headers: []kgo.RecordHeader{{Key: headerEventTime, Value: strconv.AppendInt(nil, eventTime, 10)}}}
		cl.Produce(ctx, rec, func(_ *kgo.Record, err error) {
			if err != nil && ctx.Err() == nil {
				e.errs.Add(1)
			}
		})
	}
	for {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			return
		}
		byProduct := map[string][]*kgo.Record{}
		var order []string
		fs.EachRecord(func(r *kgo.Record) {
			var ev seedEvent
			if json.Unmarshal(r.Value, &ev) != nil {
				e.errs.Add(1)
				return
			}
			if byProduct[ev.ProductID] == nil {
				order = append(order, ev.ProductID)
			}
			byProduct[ev.ProductID] = append(byProduct[ev.ProductID], r)
		})
		for _, id := range order {
			st := products[id]
			if st == nil {
				st = &state{}
				products[id] = st
			}
			recs := byProduct[id]
			for len(recs) > 0 {
				k := min(1+rnd.IntN(4), len(recs))
				for _, r := range recs[:k] {
					st.newest = max(st.newest, r.Timestamp.UnixNano())
				}
				recs = recs[k:]
				if st.version >= 2 && rnd.IntN(4) == 0 {
					publish(id, st.version-1, time.Now().Add(time.Hour).UnixNano())
					e.stale.Add(1)
					e.updates.Add(1)
				}
				st.version++
				publish(id, st.version, st.newest)
				e.updates.Add(1)
			}
		}
	}
}

func TestLatencyMatching(t *testing.T) {
	for _, c := range []struct {
		name    string
		unkeyed bool
		rate    float64
		events  int
	}{
		{"keyed flat out", false, 0, 3000},
		{"unkeyed paced", true, 3000, 1500},
	} {
		t.Run(c.name, func(t *testing.T) {
			addrs := cluster(t)
			// An update from before the run, with a version that would make
			// every later PA update look stale: loadgen must start after it.
			old := client(t, addrs)
			if err := old.ProduceSync(context.Background(), &kgo.Record{Topic: updatesTopic, Key: []byte("PA"),
				Value: []byte(`{"type":"price_update","product_id":"PA","new_price":1,"version":1000000000}`)}).FirstErr(); err != nil {
				t.Fatal(err)
			}

			eng := &fakeEngine{}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			wg.Go(func() { eng.run(ctx, client(t, addrs, kgo.ConsumeTopics(eventsTopic)), 3) })
			defer func() { cancel(); wg.Wait() }()

			rep := mustRun(t, Config{Brokers: addrs, Rate: c.rate, Events: c.events, Unkeyed: c.unkeyed, Drain: 20 * time.Second, Seed: 11})
			if n := eng.errs.Load(); n != 0 {
				t.Fatalf("fake engine had %d errors", n)
			}
			if rep.Sent != int64(c.events) || rep.Acked != rep.Sent {
				t.Fatalf("sent %d, acked %d, want %d", rep.Sent, rep.Acked, c.events)
			}
			if rep.Matched != rep.Sent || rep.Unmatched != 0 {
				t.Fatalf("matched %d, unmatched %d of %d", rep.Matched, rep.Unmatched, rep.Sent)
			}
			// Every update is counted once the drain ends, except ones still
			// in flight after the last event was matched.
			if rep.Updates < 1 || rep.Updates > eng.updates.Load() {
				t.Fatalf("%d updates seen, the engine sent %d", rep.Updates, eng.updates.Load())
			}
			if rep.Updates >= rep.Sent {
				t.Fatalf("%d updates for %d events: the fake engine coalesces, so fewer were expected", rep.Updates, rep.Sent)
			}
			if rep.Stale < 1 || rep.Stale > eng.stale.Load() {
				t.Fatalf("%d stale updates seen, the engine sent %d", rep.Stale, eng.stale.Load())
			}
			l := rep.Latency
			if !(l.P50 > 0 && l.P50 <= l.P90 && l.P90 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max) {
				t.Fatalf("latencies not ordered: %+v", l)
			}
			if l.Max > 20*time.Second {
				t.Fatalf("max latency %v is longer than the run", l.Max)
			}
			// Priced from the first send to the last matched update: at
			// least as long as sending the events at the rate, and no
			// longer than sending and the drain.
			if c.rate > 0 {
				if least := time.Duration(float64(c.events-1) / c.rate * float64(time.Second)); rep.PricedElapsed < least {
					t.Fatalf("priced over %v, but sending %d events at %v/s takes at least %v", rep.PricedElapsed, c.events, c.rate, least)
				}
			}
			if rep.PricedElapsed <= 0 || rep.PricedElapsed > rep.Elapsed+20*time.Second {
				t.Fatalf("priced over %v, sending took %v (drain 20s)", rep.PricedElapsed, rep.Elapsed)
			}
		})
	}
}

func TestDrainEndsWithUnmatchedEvents(t *testing.T) {
	addrs := cluster(t)
	start := time.Now()
	rep := mustRun(t, Config{Brokers: addrs, Events: 50, Drain: 300 * time.Millisecond})
	if rep.Matched != 0 || rep.Unmatched != 50 || rep.Updates != 0 {
		t.Fatalf("with no engine: %+v", rep)
	}
	if rep.Latency != (Latencies{}) {
		t.Fatalf("latencies without matches: %+v", rep.Latency)
	}
	if time.Since(start) < 300*time.Millisecond {
		t.Fatal("returned before the drain was over")
	}
}

func TestWriteText(t *testing.T) {
	r := Report{Sent: 123456, Acked: 123450, Elapsed: 61234 * time.Millisecond, SendRate: 2016.4,
		PricedElapsed: 61300 * time.Millisecond, PricedRate: 2006.5,
		Matched: 123000, Unmatched: 456, Updates: 7890, Stale: 12,
		Latency: Latencies{P50: 1234567 * time.Nanosecond, P90: 4 * time.Millisecond, P99: 12345 * time.Microsecond,
			P999: 250 * time.Millisecond, Max: 1500 * time.Millisecond}}
	var b bytes.Buffer
	r.WriteText(&b)
	out := b.String()
	for _, want := range []string{"123456", "123450", "1m1.234s", "2016 events/s", "priced rate", "2006 events/s", "1m1.3s", "7890", "12 stale",
		"123000", "99.6%", "456", "1.235ms", "4ms", "12.345ms", "250ms", "1.5s", "p99.9"} {
		if !strings.Contains(out, want) {
			t.Errorf("report lacks %q:\n%s", want, out)
		}
	}
	j, err := json.Marshal(r)
	if err != nil || !strings.Contains(string(j), `"latency_ns":{"p50":1234567,`) || !strings.Contains(string(j), `"elapsed_ns":61234000000`) ||
		!strings.Contains(string(j), `"priced_elapsed_ns":61300000000,"priced_rate":2006.5`) {
		t.Errorf("JSON form %s (%v)", j, err)
	}
	b.Reset()
	Report{Sent: 5, Unmatched: 5}.WriteText(&b)
	if strings.Contains(b.String(), "latency") || strings.Contains(b.String(), "priced rate") {
		t.Errorf("latencies or a priced rate shown without a matched event:\n%s", b.String())
	}
}

// TestSpreadRecords: with Spread, the Kafka run sends the events Spread
// decides: uniform over the synthetic catalog, every product equally
// often, keyed by its id, at its base price.
func TestSpreadRecords(t *testing.T) {
	addrs := cluster(t)
	syn, err := catalog.Synthetic(40)
	if err != nil {
		t.Fatal(err)
	}
	const n = 200
	rep := mustRun(t, Config{Brokers: addrs, Events: n, Drain: -1, Seed: 3, Products: syn.Products, Spread: true})
	if rep.Sent != n || rep.Acked != n {
		t.Fatalf("sent %d, acked %d", rep.Sent, rep.Acked)
	}
	products := map[string]int{}
	for _, r := range readAll(t, addrs, eventsTopic, n) {
		var e seedEvent
		if err := json.Unmarshal(r.Value, &e); err != nil {
			t.Fatal(err)
		}
		i, err := strconv.Atoi(strings.TrimPrefix(e.ProductID, "P"))
		if err != nil || e.ProductID != catalog.SyntheticID(i) || string(r.Key) != e.ProductID || e.Price != catalog.SyntheticBasePrice(i) {
			t.Fatalf("record %s key %q", r.Value, r.Key)
		}
		products[e.ProductID]++
	}
	for id, c := range products {
		if c != n/40 || len(products) != 40 {
			t.Fatalf("%d products; %s has %d events, want %d each", len(products), id, c, n/40)
		}
	}
}
