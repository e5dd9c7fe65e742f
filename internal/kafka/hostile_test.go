package kafka

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/rueidis"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/poll"
	"github.com/dynaprice/dynaprice/internal/postgres"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/dynaprice/dynaprice/internal/redis"
)

// The hostile-input corpus of the Kafka side: records that anyone who can
// write to dynaprice's topics can send (a shop's event producer on the
// events topic, a compromised or buggy client on the control and
// repartition topics), produced to a real broker amid a stream of valid
// events and consumed by a real Engine on PostgreSQL and Redis. None may
// stop a partition, be applied, or change what the valid events price.
// internal/cli's TestHostileTrafficDoesNotStopPricing is the HTTP side.

// hostileCatalog is the test's catalog: seed-priced products (price =
// base + sqrt(demand) * 5) that the valid stream moves, and PK on the
// competitor strategy, matching the lowest competitor price.
var hostileCatalog = []pricing.Product{
	{ID: "PA", Name: "A", BasePrice: 299}, {ID: "PB", Name: "B", BasePrice: 349}, {ID: "PC", Name: "C", BasePrice: 129},
	{ID: "PD", Name: "D", BasePrice: 499}, {ID: "PE", Name: "E", BasePrice: 219},
	{ID: "PK", Name: "K", BasePrice: 100, Strategy: "competitor", Competition: &pricing.CompetitorRule{Mode: "match"}},
}

// hostileCase is one record of the corpus and what must become of it.
type hostileCase struct {
	name string
	rec  *kgo.Record // on the events topic unless it names another
	// dead is what the record's one dead letter must say; "" if the
	// record must not be dead-lettered at all.
	dead string
	// adds names the product of the valid event the record carries (a
	// record that looks odd but is an event, such as one without a key),
	// applied exactly once; typ is its type.
	adds, typ string
}

// hostileHeader names the case on each hostile record. It is the
// producer's own header, so its dead letter keeps it.
const hostileHeader = "hostile-case"

// otherSigner signs with a key the engines do not have (one retired, or
// an attacker's own).
var otherSigner = func() *Signer {
	s, err := ParseSigner("old:" + strings.Repeat("o", MinControlKeyLen))
	if err != nil {
		panic(err)
	}
	return s
}()

// hostileCorpus returns the corpus for the events topic of topics with
// parts partitions.
func hostileCorpus(topics Topics, parts int32) []hostileCase {
	ev := func(typ, id, extra string) string {
		return `{"event_type":"` + typ + `","product_id":"` + id + `","user_id":"U9"` + extra + `}`
	}
	// elsewhere is a catalog product not on PA's partition, for records
	// keyed PA that are about it.
	elsewhere := ""
	for _, p := range hostileCatalog[1:5] {
		if PartitionOf(p.ID, parts) != PartitionOf("PA", parts) {
			elsewhere = p.ID
			break
		}
	}
	// unknown is no product, on PC's partition: its event, split from a
	// record of PC's, is not forwarded.
	unknown := ""
	for i := 0; unknown == ""; i++ {
		if id := "NOPE" + strconv.Itoa(i); PartitionOf(id, parts) == PartitionOf("PC", parts) {
			unknown = id
		}
	}
	signed := func(r ControlRecord) *kgo.Record {
		rec := r.record(topics.ControlTopic(), testSigner)
		return &rec
	}
	override := func(id string, price float64, by string) ControlRecord {
		r, err := SetOverrideRecord(engine.OverrideInput{ProductID: id, Price: price, Reason: "promo", By: by})
		if err != nil {
			panic(err)
		}
		return r
	}
	// forged: a signature that was made for another value.
	forged := signed(override("PA", 250, "ops"))
	forged.Value = override("PA", 0.01, "ops").Value
	// stale: signed with a key the engines do not hold.
	staleRec := override("PA", 0.01, "ops").record(topics.ControlTopic(), otherSigner)
	// kind changed after signing: a clearing of PE's override turned into
	// an override.
	rekinded := signed(ClearOverrideRecord("PE", "ops"))
	rekinded.Headers[0].Value = []byte(ControlOverride)
	unsigned := func(r ControlRecord) *kgo.Record {
		rec := r.record(topics.ControlTopic(), testSigner)
		rec.Headers = rec.Headers[:1]
		return &rec
	}
	rename, err := ProductRecord(pricing.Product{ID: "PA", Name: "pwned", BasePrice: 0.01})
	if err != nil {
		panic(err)
	}
	// An override on the events topic, even with a valid signature.
	onEvents := signed(override("PE", 0.01, "ops"))
	onEvents.Topic = ""
	badSig := unsigned(override("PA", 0.01, "ops"))
	badSig.Headers = append(badSig.Headers, kgo.RecordHeader{Key: HeaderSignature, Value: []byte("test:zz")})

	// The reason quotes the key id.
	hugeID := unsigned(override("PA", 0.01, "ops"))
	hugeID.Headers = append(hugeID.Headers, kgo.RecordHeader{Key: HeaderSignature, Value: []byte(strings.Repeat("k", 1_000_000) + ":00")})

	deep := strings.Repeat("[", 100_000) + strings.Repeat("]", 100_000)
	hugeHeaders := func(n int) []kgo.RecordHeader {
		return []kgo.RecordHeader{{Key: "x-big", Value: []byte(strings.Repeat("h", n))}, {Key: "x-small", Value: []byte("s")}}
	}
	manyHeaders := make([]kgo.RecordHeader, 0, 20_000)
	for i := range 20_000 {
		manyHeaders = append(manyHeaders, kgo.RecordHeader{Key: "x-" + strconv.Itoa(i), Value: []byte("v")})
	}
	rec := func(key, value string, hs ...kgo.RecordHeader) *kgo.Record {
		r := &kgo.Record{Value: []byte(value), Headers: hs}
		if key != "" {
			r.Key = []byte(key)
		}
		return r
	}
	onRepart := rec("PA", ev("view", "PA", ""))
	onRepart.Topic = topics.Repartition()
	tooMany := "[" + strings.TrimSuffix(strings.Repeat("{},", maxEventsPerRecord+1), ",") + "]"

	return []hostileCase{
		// Size.
		{name: "near the broker's limit", rec: rec("PA", `"`+strings.Repeat("x", 1_000_100)+`"`), dead: "must be a JSON object"},
		{name: "valid event padded to the broker's limit, keyed elsewhere",
			rec: rec("PA", ev("cart", elsewhere, "")+strings.Repeat(" ", 1_000_000)), adds: elsewhere, typ: "cart"},
		{name: "valid event padded to the broker's limit, no key",
			rec: rec("", ev("view", elsewhere, "")+strings.Repeat(" ", 1_000_000)), adds: elsewhere, typ: "view"},
		{name: "huge header", rec: rec("PA", "junk", hugeHeaders(1_000_000)...), dead: "not JSON"},
		{name: "huge header on a valid event", rec: rec("PB", ev("view", "PB", ""), hugeHeaders(1_000_000)...), adds: "PB", typ: "view"},
		{name: "20,000 headers", rec: rec("PA", "junk", manyHeaders...), dead: "not JSON"},
		{name: "huge key", rec: rec(strings.Repeat("K", 1_000_000), "junk"), dead: "not JSON"},
		{name: "more events than a record may hold", rec: rec("PA", tooMany), dead: "too many events"},
		// Malformed.
		{name: "invalid JSON", rec: rec("PA", `{"event_type":"view","product_id":"PA"`), dead: "not JSON"},
		{name: "wrong types", rec: rec("PA", `{"event_type":"view","product_id":42,"quantity":"lots","price":"1"}`), dead: "product_id"},
		{name: "empty value", rec: rec("PA", ""), dead: "empty"},
		{name: "empty value, no key", rec: rec("", ""), dead: "empty"},
		{name: "non-UTF-8 product id", rec: rec("PA", ev("view", "P\xffA", "")), dead: "product_id"},
		{name: "non-UTF-8 bytes", rec: rec("PA", "\x00\xff\xfe\xfd"), dead: "not JSON"},
		{name: "deeply nested JSON", rec: rec("PA", deep), dead: "not JSON"},
		{name: "deeply nested field", rec: rec("PA", ev("view", "PA", `,"user_id":`+deep)), dead: "max depth"},
		{name: "unknown product", rec: rec("NOPE", ev("view", "NOPE", "")), dead: "unknown product_id"},
		{name: "one unknown product in a batch", rec: rec("PC", "["+ev("purchase", "PC", "")+","+ev("view", unknown, "")+"]"),
			dead: "unknown product_id", adds: "PC", typ: "purchase"},
		{name: "timestamp far in the future", rec: rec("PA", ev("view", "PA", `,"timestamp":4102444800`)), dead: "in the future"},
		{name: "timestamp far in the past", rec: rec("PA", ev("view", "PA", `,"timestamp":1`)), dead: "before 2000"},
		// Prices.
		{name: "price 1e307", rec: rec("PA", ev("purchase", "PA", `,"price":1e307`)), dead: "price"},
		{name: "competitor price 1e307", rec: rec("PK", ev("competitor_price", "PK", `,"competitor":"X","price":1e307`)), dead: "price"},
		{name: "competitor price above the maximum", rec: rec("PK", ev("competitor_price", "PK", `,"competitor":"X","price":1000000000.01`)), dead: "price"},
		{name: "competitor price overflowing", rec: rec("PK", ev("competitor_price", "PK", `,"competitor":"X","price":1e400`)), dead: "price"},
		{name: "competitor price NaN", rec: rec("PK", ev("competitor_price", "PK", `,"competitor":"X","price":"NaN"`)), dead: "price"},
		{name: "competitor price negative", rec: rec("PK", ev("competitor_price", "PK", `,"competitor":"X","price":-5`)), dead: "price"},
		{name: "competitor price below a cent", rec: rec("PK", ev("competitor_price", "PK", `,"competitor":"X","price":0.001`)), dead: "price"},
		// Keys.
		{name: "no key", rec: rec("", ev("view", "PD", "")), adds: "PD", typ: "view"},
		{name: "key of another product", rec: rec("PA", ev("cart", elsewhere, "")), adds: elsewhere, typ: "cart"},
		// Control records where they do not belong, or not signed.
		{name: "control header on the events topic", rec: onEvents, dead: "accepted only on"},
		{name: "control header on the events topic, no key",
			rec:  rec("", `{"product_id":"PE","override_price":0.01,"by":"ops"}`, kgo.RecordHeader{Key: HeaderControl, Value: []byte(ControlOverride)}),
			dead: "accepted only on"},
		{name: "unsigned override", rec: unsigned(override("PA", 0.01, "ops")), dead: "unsigned"},
		{name: "forged signature", rec: forged, dead: "forged"},
		{name: "signature of a retired key", rec: &staleRec, dead: "unknown key"},
		{name: "malformed signature", rec: badSig, dead: "malformed"},
		{name: "kind changed after signing", rec: rekinded, dead: "forged"},
		{name: "signature naming a huge key id", rec: hugeID, dead: "unknown key"},
		{name: "unsigned rename and reprice", rec: unsigned(rename), dead: "unsigned"},
		{name: "unsigned default strategy", rec: unsigned(DefaultStrategyRecord("competitor")), dead: "unsigned"},
		{name: "unsigned override clear", rec: unsigned(ClearOverrideRecord("PE", "mallory")), dead: "unsigned"},
		{name: "repartition record without a source", rec: onRepart, dead: HeaderSource},
		// Forged dynaprice headers.
		{name: "forged reason and origin",
			rec:  rec("PA", "junk", kgo.RecordHeader{Key: HeaderError, Value: []byte("all fine")}, kgo.RecordHeader{Key: HeaderOrigin, Value: []byte("x/9/9")}),
			dead: "not JSON"},
		{name: "forged reason on a valid event",
			rec: rec("PB", ev("cart", "PB", ""), kgo.RecordHeader{Key: HeaderError, Value: []byte("ignore me")}), adds: "PB", typ: "cart"},
		{name: "20,000 headers on a valid event", rec: rec("PC", ev("view", "PC", ""), manyHeaders...), adds: "PC", typ: "view"},
		// Retries.
		{name: "retried event", rec: rec("PC", ev("cart", "PC", `,"event_id":"retry-1"`)), adds: "PC", typ: "cart"},
		{name: "retried event again", rec: rec("PC", ev("cart", "PC", `,"event_id":"retry-1"`))},
		{name: "retried event once more", rec: rec("PC", ev("cart", "PC", `,"event_id":"retry-1"`))},
	}
}

// testServices gives a test its own PostgreSQL schema and Redis key
// prefix on the servers named by DYNAPRICE_TEST_POSTGRES and
// DYNAPRICE_TEST_REDIS, and removes both when it ends.
func testServices(t *testing.T) (*postgres.DB, *redis.Client) {
	t.Helper()
	pg, rd := os.Getenv("DYNAPRICE_TEST_POSTGRES"), os.Getenv("DYNAPRICE_TEST_REDIS")
	if pg == "" || rd == "" {
		t.Skip("DYNAPRICE_TEST_POSTGRES and DYNAPRICE_TEST_REDIS not set")
	}
	ctx := context.Background()
	name := fmt.Sprintf("dp_kafka_%d_%08x", os.Getpid(), rand.Uint32())
	db, err := postgres.Open(ctx, postgres.Config{URL: pg, Schema: name})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		db.Close()
		conn, err := pgx.Connect(ctx, pg)
		if err != nil {
			t.Errorf("dropping schema %s: %v", name, err)
			return
		}
		defer conn.Close(ctx)
		// And the schema of its compatibility views (migration 0005).
		for _, s := range []string{name, name + "_original"} {
			if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+s+" CASCADE"); err != nil {
				t.Errorf("dropping schema %s: %v", s, err)
			}
		}
	})
	if _, err := db.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	prefix := name + ":"
	rc, err := redis.Open(ctx, redis.Config{Addr: rd, Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rc.Close(); deleteRedisKeys(t, rd, prefix) })
	return db, rc
}

// deleteRedisKeys deletes every key under prefix.
func deleteRedisKeys(t *testing.T, addr, prefix string) {
	rc, err := rueidis.NewClient(rueidis.ClientOption{InitAddress: []string{addr}, DisableCache: true})
	if err != nil {
		t.Errorf("cleaning up Redis keys %s*: %v", prefix, err)
		return
	}
	defer rc.Close()
	ctx := context.Background()
	var cursor uint64
	for {
		e, err := rc.Do(ctx, rc.B().Scan().Cursor(cursor).Match(prefix+"*").Count(1000).Build()).AsScanEntry()
		if err != nil {
			t.Errorf("cleaning up Redis keys %s*: %v", prefix, err)
			return
		}
		if len(e.Elements) > 0 {
			if err := rc.Do(ctx, rc.B().Del().Key(e.Elements...).Build()).Error(); err != nil {
				t.Errorf("cleaning up Redis keys %s*: %v", prefix, err)
			}
		}
		if cursor = e.Cursor; cursor == 0 {
			return
		}
	}
}

// readyWatch checks ready until stopped and remembers whether it was ever
// false once it had been true.
type readyWatch struct {
	stop, done chan struct{}
	mu         sync.Mutex
	lapses     int
}

func watchReady(ready func() bool) *readyWatch {
	w := &readyWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-w.stop:
				return
			case <-tick.C:
				if !ready() {
					w.mu.Lock()
					w.lapses++
					w.mu.Unlock()
				}
			}
		}
	}()
	return w
}

// end stops the watch and returns how often the engine was seen not ready.
func (w *readyWatch) end() int {
	close(w.stop)
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.lapses
}

// TestHostileRecordsDoNotStopPricing produces the corpus, each record
// after a burst of valid events, and checks that every valid event was
// applied exactly once (demand, price and history as the formula gives),
// every hostile record was dead-lettered exactly once with its reason and
// origin, none changed a price, a name or an override, the engine stayed
// ready throughout with no failed commit, and its committed positions
// passed every record of its input topics.
func TestHostileRecordsDoNotStopPricing(t *testing.T) {
	const parts = 3
	db, rc := testServices(t)
	ctx := context.Background()
	if _, err := db.SeedCatalog(ctx, hostileCatalog, "seed"); err != nil {
		t.Fatal(err)
	}
	r := newRig(t, parts)
	r.stores2 = func(q int32, owns func(string) bool) engine.Store { return db.Store(int(q), owns) }
	r.liveWriter = rc
	met := engine.NewMetrics(nil, "test")
	stop := r.start(func(c *engine.Config) { c.Metrics = met })
	defer stop()
	poll.Until(t, 20*time.Second, "the engine ready", func() error { return poll.Check(r.eng.Ready(), "not ready") })
	watch := watchReady(r.eng.Ready)

	// Large enough for records near the broker's limit.
	cl := r.client(kgo.DefaultProduceTopic(r.topics.Events), kgo.ProducerBatchMaxBytes(1_048_000), kgo.MaxBufferedBytes(64<<20))
	produce := func(recs ...*kgo.Record) {
		t.Helper()
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatalf("producing: %v", err)
		}
	}
	want := map[string]float64{}
	count := map[string]int{}
	// Control records that are valid: an operator's override of PE and a
	// competitor's price for PK, which the hostile records must not move.
	ov, err := SetOverrideRecord(engine.OverrideInput{ProductID: "PE", Price: 123.45, Reason: "promo", By: "ops"})
	if err != nil {
		t.Fatal(err)
	}
	signedOv := ov.record(r.topics.ControlTopic(), testSigner)
	produce(&signedOv, &kgo.Record{Key: []byte("PK"), Value: []byte(`{"event_type":"competitor_price","product_id":"PK","competitor":"X","price":250}`)})

	rnd := rand.New(rand.NewPCG(11, 12))
	types := []string{"view", "cart", "purchase"}
	valid := func(n int) {
		var recs []*kgo.Record
		for range n {
			id, typ := hostileCatalog[rnd.IntN(5)].ID, types[rnd.IntN(3)]
			want[id] += weights[typ]
			count[id]++
			recs = append(recs, &kgo.Record{Key: []byte(id), Value: seedEvent(typ, id)})
		}
		produce(recs...)
	}
	corpus := hostileCorpus(r.topics, parts)
	deadWant := map[string]hostileCase{}
	origin := map[string]string{}
	start := time.Now()
	for _, c := range corpus {
		valid(20)
		c.rec.Headers = append([]kgo.RecordHeader{{Key: hostileHeader, Value: []byte(c.name)}}, c.rec.Headers...)
		produce(c.rec)
		if c.adds != "" {
			want[c.adds] += weights[c.typ]
			count[c.adds]++
		}
		if c.dead != "" {
			deadWant[c.name] = c
			origin[c.name] = fmt.Sprintf("%s/%d/%d", c.rec.Topic, c.rec.Partition, c.rec.Offset)
		}
	}
	valid(20)

	r.waitConsumed(30*time.Second, r.topics.Events, r.topics.Repartition(), r.topics.ControlTopic())
	t.Logf("corpus of %d hostile records among %d valid events consumed in %v", len(corpus), 20*(len(corpus)+1), time.Since(start).Round(time.Millisecond))

	// Every valid event applied exactly once, and priced by the formula;
	// PE keeps the operator's override, PK the competitor's price.
	livePrice := func(id string) liveSeen {
		c, ok, err := rc.Lookup(ctx, id)
		if err != nil || !ok {
			return liveSeen{err: fmt.Errorf("%s: not in Redis (%v)", id, err)}
		}
		return liveSeen{price: c.Price, demand: c.Demand, source: c.Source}
	}
	wantPrice := func(id string) float64 {
		for _, p := range hostileCatalog {
			if p.ID == id {
				return math.Round((p.BasePrice+math.Sqrt(want[id])*5)*100) / 100
			}
		}
		return 0
	}
	poll.Until(t, 20*time.Second, "the live view of every valid event", func() error {
		for _, id := range []string{"PA", "PB", "PC", "PD"} {
			l := livePrice(id)
			if l.err != nil || l.demand != want[id] || l.price != wantPrice(id) || l.source != pricing.SourceDynamic {
				return fmt.Errorf("%s: live %+v, want demand %v price %v", id, l, want[id], wantPrice(id))
			}
		}
		if l := livePrice("PE"); l.err != nil || l.price != 123.45 || l.source != pricing.SourceOverride {
			return fmt.Errorf("PE: live %+v, want the operator's override 123.45", l)
		}
		if l := livePrice("PK"); l.err != nil || l.price != 250 {
			return fmt.Errorf("PK: live %+v, want the competitor's 250", l)
		}
		return nil
	})
	states, err := db.States(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range hostileCatalog {
		s := states[p.ID]
		if s.Demand.Total != want[p.ID] {
			t.Errorf("%s: committed demand %v, want %v", p.ID, s.Demand.Total, want[p.ID])
		}
		if p.ID != "PE" && s.Override.Active {
			t.Errorf("%s: has an override %+v", p.ID, s.Override)
		}
	}
	if o := states["PE"].Override; !o.Active || o.Price != 123.45 || o.By != "ops" {
		t.Errorf("PE's override %+v, want the operator's 123.45", o)
	}
	for _, id := range []string{"PA", "PB", "PC", "PD"} {
		h, err := db.History(ctx, id, 100_000)
		if err != nil {
			t.Fatal(err)
		}
		if dyn := dynamicRows(h); dyn != count[id] {
			t.Errorf("%s: %d dynamic history rows, want one per valid event, %d", id, dyn, count[id])
		}
	}
	for _, id := range []string{"PA", "PE"} {
		a, err := db.OverrideAudit(ctx, id, 10)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[string]int{"PA": 0, "PE": 1}[id]; len(a) != want {
			t.Errorf("%s: override audit %+v, want %d entries", id, a, want)
		}
	}
	ps, err := db.Products(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		for _, c := range hostileCatalog {
			if p.ID == c.ID && (p.Name != c.Name || p.BasePrice != c.BasePrice) {
				t.Errorf("product %s is now %q at %v, want %q at %v", p.ID, p.Name, p.BasePrice, c.Name, c.BasePrice)
			}
		}
	}
	if len(ps) != len(hostileCatalog) {
		t.Errorf("%d products in the catalog, want %d", len(ps), len(hostileCatalog))
	}
	settings, err := db.Settings(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s := settings["default_strategy"]; s != "seed" {
		t.Errorf("default strategy %q, want seed", s)
	}

	// Every hostile record dead-lettered exactly once, with its reason and
	// where it was read; nothing else dead-lettered.
	dead := r.readAll(r.topics.DeadLetter())
	seen := map[string]int{}
	for _, d := range dead {
		name := string(header(d, hostileHeader))
		c, ok := deadWant[name]
		if !ok {
			t.Errorf("dead letter of %q (reason %q), which must not be dead-lettered", name, header(d, HeaderError))
			continue
		}
		seen[name]++
		var reasons, origins int
		for _, h := range d.Headers {
			switch h.Key {
			case HeaderError:
				reasons++
			case HeaderOrigin:
				origins++
			}
		}
		if why := string(header(d, HeaderError)); reasons != 1 || !strings.Contains(why, c.dead) {
			t.Errorf("%s: %d reasons, %q; want one saying %q", name, reasons, why, c.dead)
		}
		if o := string(header(d, HeaderOrigin)); origins != 1 || o != origin[name] {
			t.Errorf("%s: %d origins, %q; want one, %q", name, origins, o, origin[name])
		}
		if len(d.Value) > MaxDeadLetterValue {
			t.Errorf("%s: dead letter of %d bytes", name, len(d.Value))
		}
	}
	for name := range deadWant {
		if seen[name] != 1 {
			t.Errorf("%s: dead-lettered %d times, want once", name, seen[name])
		}
	}
	if n := testutil.ToFloat64(r.eng.met.deadLetters); int(n) != len(deadWant) {
		t.Errorf("dead letters counted: %v, want %d", n, len(deadWant))
	}
	if n := watch.end(); n > 0 {
		t.Errorf("the engine reported not ready %d times while the corpus ran", n)
	}
	if n := testutil.ToFloat64(met.CommitErrors); n != 0 {
		t.Errorf("%v commits failed: a hostile record reached the store", n)
	}
	if n := testutil.ToFloat64(met.Poisoned); n != 0 {
		t.Errorf("%v inputs poisoned a round: a hostile record passed validation", n)
	}
}

// liveSeen is a product's price in the live view, as the test compares it.
type liveSeen struct {
	price, demand float64
	source        pricing.Source
	err           error
}

// readAll returns every record of topic, up to its end offsets now.
func (r *rig) readAll(topic string) []*kgo.Record {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ends, err := kadm.NewClient(r.client()).ListEndOffsets(ctx, topic)
	if err != nil || ends.Error() != nil {
		r.t.Fatalf("end offsets of %s: %v %v", topic, err, ends.Error())
	}
	left := map[int32]int64{}
	ends.Each(func(o kadm.ListedOffset) {
		if o.Offset > 0 {
			left[o.Partition] = o.Offset
		}
	})
	cl := r.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	var out []*kgo.Record
	for len(left) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			r.t.Fatalf("reading %s: %v; still to read up to %v", topic, ctx.Err(), left)
		}
		fs.EachRecord(func(rec *kgo.Record) {
			out = append(out, rec)
			if end, ok := left[rec.Partition]; ok && rec.Offset+1 >= end {
				delete(left, rec.Partition)
			}
		})
	}
	return out
}
