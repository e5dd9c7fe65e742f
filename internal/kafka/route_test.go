package kafka

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Routing is tested here without Kafka: records are built by hand, applied
// to a real Machine, and what the router wants produced is inspected.

// idsOn returns n product ids that hash to partition q of parts.
func idsOn(q, parts int32, n int) []string {
	var out []string
	for i := 0; len(out) < n; i++ {
		id := "P" + string(rune('A'+i%26)) + strings.Repeat("x", i/26)
		if PartitionOf(id, parts) == q {
			out = append(out, id)
		}
	}
	return out
}

func newRoutedMachine(t *testing.T, ids ...string) *engine.Machine {
	t.Helper()
	m := engine.NewMachine(engine.DefaultConfig())
	var ps []pricing.Product
	for _, id := range ids {
		ps = append(ps, pricing.Product{ID: id, BasePrice: 100})
	}
	if _, err := m.Load(engine.Snapshot{Products: ps}, time.Now().UnixNano()); err != nil {
		t.Fatal(err)
	}
	// The first round records the products' first prices (they were
	// loaded without a state); seal it so tests see only what they route.
	m.Begin()
	m.Seal()
	m.Begin()
	return m
}

func eventRec(topic string, offset int64, key, value string) *kgo.Record {
	r := &kgo.Record{Topic: topic, Partition: 0, Offset: offset, Value: []byte(value), Timestamp: time.Unix(1773713139, 0)}
	if key != "" {
		r.Key = []byte(key)
	}
	return r
}

func view(id string) string {
	return `{"event_type":"view","product_id":"` + id + `","user_id":"U1","timestamp":1773713139,"price":100}`
}

func reason(r *kgo.Record) string { return string(header(r, HeaderError)) }

func TestRouteAppliesOwnForwardsOthersDeadLettersTheRest(t *testing.T) {
	topics := DefaultTopics()
	own, other := idsOn(0, 2, 2), idsOn(1, 2, 1)[0]
	m := newRoutedMachine(t, own[0], own[1], other)
	rt := newRouter(0, 2, topics, testSigner, &ingest.Decoder{Now: time.Now, MaxEvents: maxEventsPerRecord})
	recs := []*kgo.Record{
		eventRec(topics.Events, 10, own[0], view(own[0])),
		eventRec(topics.Events, 11, "", view(other)), // the original's unkeyed record
		eventRec(topics.Events, 12, own[1], `not json`),
		eventRec(topics.Events, 13, "", `[`+view(own[1])+`,`+view("NOPE")+`,`+view(other)+`]`),
	}
	res := rt.route(m, recs, cursor{Events: 10, Repartition: -1}, time.Now().UnixNano())

	if res.next.Events != 14 || res.next.Repartition != -1 {
		t.Fatalf("next cursor %+v, want events 14, repartition untouched", res.next)
	}
	applied, dups, rejected := m.Counts()
	if applied != 2 || dups != 0 || rejected != 1 {
		t.Fatalf("applied %d, duplicates %d, rejected %d; want 2, 0, 1 (NOPE is unknown)", applied, dups, rejected)
	}
	var fwd, dead []*kgo.Record
	for _, r := range res.out {
		switch r.Topic {
		case topics.Repartition():
			fwd = append(fwd, r)
		case topics.DeadLetter():
			dead = append(dead, r)
		default:
			t.Fatalf("record for topic %s", r.Topic)
		}
	}
	if len(fwd) != 2 || res.forwarded != 2 {
		t.Fatalf("forwarded %d (%d counted), want the two events of %s", len(fwd), res.forwarded, other)
	}
	for i, r := range fwd {
		if string(r.Key) != other {
			t.Errorf("forward %d keyed %q, want %q", i, r.Key, other)
		}
		sp, pos, ok := parseSource(r)
		wantPos := int64(11 << 16) // record 11, its only event
		if i == 1 {
			wantPos = 13<<16 | 2
		}
		if !ok || sp != 0 || pos != wantPos {
			t.Errorf("forward %d source (%d, %d, %v), want (0, %d)", i, sp, pos, ok, wantPos)
		}
	}
	if i := string(fwd[1].Value); !strings.Contains(i, `"product_id":"`+other+`"`) || strings.Contains(i, "NOPE") {
		t.Errorf("the event split from a batch was forwarded as %s, want only its own event", i)
	}
	if len(dead) != 2 || res.dead != 2 {
		t.Fatalf("dead letters %d (%d counted), want 2", len(dead), res.dead)
	}
	if reason(dead[0]) == "" || string(header(dead[0], HeaderOrigin)) != topics.Events+"/0/12" {
		t.Errorf("malformed record's dead letter: reason %q origin %q", reason(dead[0]), header(dead[0], HeaderOrigin))
	}
	if !strings.Contains(reason(dead[1]), "NOPE") || string(header(dead[1], HeaderIndex)) != "1" {
		t.Errorf("unknown product's dead letter: reason %q index %q, want NOPE at index 1", reason(dead[1]), header(dead[1], HeaderIndex))
	}
	if _, changes := m.Seal(); len(changes) != 2 {
		t.Errorf("%d products changed, want the two own ones", len(changes))
	}
}

func TestRouteDropsRepartitionedRecordsAlreadyApplied(t *testing.T) {
	topics := DefaultTopics()
	own := idsOn(0, 2, 1)[0]
	m := newRoutedMachine(t, own)
	rt := newRouter(0, 2, topics, testSigner, &ingest.Decoder{Now: time.Now, MaxEvents: maxEventsPerRecord})
	fwd := func(off, pos int64) *kgo.Record {
		r := eventRec(topics.Repartition(), off, own, view(own))
		r.Headers = []kgo.RecordHeader{sourceHeader(1, pos)}
		return r
	}
	cur := cursor{Events: -1, Repartition: 5, Applied: map[int32]int64{1: 100}}
	noHeader := eventRec(topics.Repartition(), 8, own, view(own))
	res := rt.route(m, []*kgo.Record{fwd(5, 99), fwd(6, 100), fwd(7, 101), noHeader}, cur, time.Now().UnixNano())
	if applied, dups, _ := m.Counts(); applied != 1 || dups != 2 || res.repartitionDup != 2 {
		t.Fatalf("applied %d, duplicates %d; want 1 (position 101) and 2 forwarded again", applied, dups)
	}
	if res.next.Repartition != 9 || res.next.Applied[1] != 101 {
		t.Fatalf("next cursor %+v, want repartition 9 and source 1 at 101", res.next)
	}
	if cur.Applied[1] != 100 {
		t.Fatal("route modified the cursor it was given; a failed round must be able to start over from it")
	}
	if len(res.out) != 1 || !strings.Contains(reason(res.out[0]), HeaderSource) {
		t.Fatalf("out = %d records, want one dead letter for the record without %s", len(res.out), HeaderSource)
	}
}

func TestRouteAppliesControlRecordsInOrderWithEvents(t *testing.T) {
	topics := DefaultTopics()
	own := idsOn(0, 1, 1)[0]
	m := newRoutedMachine(t, own)
	rt := newRouter(0, 1, topics, testSigner, &ingest.Decoder{Now: time.Now, MaxEvents: maxEventsPerRecord})
	ctrl := func(off int64, kind, value string) *kgo.Record {
		rec := ControlRecord{Kind: kind, Key: own, Value: []byte(value)}.record(topics.ControlTopic(), testSigner)
		rec.Offset = off
		return &rec
	}
	forged := ctrl(5, ControlOverride, `{"product_id":"`+own+`","override_price":50,"by":"ops"}`)
	forged.Value = []byte(`{"product_id":"` + own + `","override_price":0.01,"by":"ops"}`)
	unsigned := ctrl(6, ControlOverride, `{"product_id":"`+own+`","override_price":0.01}`)
	unsigned.Headers = unsigned.Headers[:1]
	onEvents := eventRec(topics.Events, 3, own, `{"product_id":"`+own+`","override_price":0.01,"by":"ops"}`)
	onEvents.Headers = []kgo.RecordHeader{{Key: HeaderControl, Value: []byte(ControlOverride)}}
	recs := []*kgo.Record{
		eventRec(topics.Events, 0, own, view(own)),
		ctrl(1, ControlOverride, `{"product_id":"`+own+`","override_price":50,"by":"ops"}`),
		eventRec(topics.Events, 2, own, view(own)),
		ctrl(3, ControlOverride, `{"product_id":"`+own+`","override_price":-1}`),
		ctrl(4, "self-destruct", `{}`),
		forged, unsigned, onEvents,
	}
	res := rt.route(m, recs, cursor{Events: -1, Repartition: -1, Control: -1}, time.Now().UnixNano())
	var reasons []string
	for _, r := range res.out {
		reasons = append(reasons, reason(r))
	}
	want := []string{"override_price", "unknown control record kind", "forged", "unsigned", "accepted only on " + topics.ControlTopic()}
	if len(reasons) != len(want) {
		t.Fatalf("dead letters %q, want %d: the invalid override, the unknown kind, the forged, the unsigned, the one on the events topic", reasons, len(want))
	}
	for i := range want {
		if !strings.Contains(reasons[i], want[i]) {
			t.Errorf("dead letter %d: %q, want it to say %q", i, reasons[i], want[i])
		}
	}
	if res.next.Control != 7 || res.next.Events != 4 {
		t.Errorf("next cursor %+v, want control 7 and events 4", res.next)
	}
	b, changes := m.Seal()
	if len(changes) != 1 || changes[0].Price != 50 || changes[0].Source != pricing.SourceOverride || changes[0].Demand != 2 {
		t.Fatalf("changes %+v, want %s overridden at 50 with demand 2", changes, own)
	}
	if len(b.History) < 2 {
		t.Fatalf("history %+v: want the dynamic price before the override and the override", b.History)
	}
}

// TestDeadLetterIsBoundedAndCannotBeForged: a record near the broker's size
// limit is dead-lettered as a bounded copy (it could not be produced again
// whole, and its round would fail for ever), and a producer's own
// dynaprice-* headers do not survive into its dead letter.
func TestDeadLetterIsBoundedAndCannotBeForged(t *testing.T) {
	topics := DefaultTopics()
	m := newRoutedMachine(t, "PA")
	rt := newRouter(0, 1, topics, testSigner, &ingest.Decoder{Now: time.Now, MaxEvents: maxEventsPerRecord})
	huge := eventRec(topics.Events, 7, "PA", `"`+strings.Repeat("x", 1_000_100)+`"`)
	huge.Headers = []kgo.RecordHeader{{Key: HeaderError, Value: []byte("all fine, ignore")}, {Key: "content-type", Value: []byte("application/json")}}
	res := rt.route(m, []*kgo.Record{huge}, cursor{Events: -1, Repartition: -1}, time.Now().UnixNano())
	if len(res.out) != 1 {
		t.Fatalf("%d records out, want one dead letter", len(res.out))
	}
	dl := res.out[0]
	if len(dl.Value) != MaxDeadLetterValue || string(header(dl, HeaderTruncated)) != "1000102" {
		t.Errorf("dead letter value %d bytes, truncated header %q; want %d bytes and the original 1000102", len(dl.Value), header(dl, HeaderTruncated), MaxDeadLetterValue)
	}
	var errs []string
	for _, h := range dl.Headers {
		if h.Key == HeaderError {
			errs = append(errs, string(h.Value))
		}
	}
	if len(errs) != 1 || strings.Contains(errs[0], "ignore") {
		t.Errorf("reasons %q, want only dynaprice's own", errs)
	}
	if string(header(dl, "content-type")) != "application/json" {
		t.Error("the producer's own headers were dropped")
	}
}

// TestDeadLetterOfAnyRecordFits: a record whose key, headers or reason are
// near the broker's size limit still has a dead letter far below it (one
// too large to produce would fail its round for ever), saying what was
// left out.
func TestDeadLetterOfAnyRecordFits(t *testing.T) {
	many := make([]kgo.RecordHeader, 0, 100_000)
	for i := range 100_000 {
		many = append(many, kgo.RecordHeader{Key: "h", Value: []byte{byte(i)}})
	}
	for _, c := range []struct {
		name string
		rec  *kgo.Record
		why  string
		// wantHeader is a header the dead letter must carry, and its value.
		wantHeader, wantValue string
	}{
		{"huge key", &kgo.Record{Key: []byte(strings.Repeat("k", 1_000_000)), Value: []byte("x")}, "bad", HeaderKeyTruncated, "1000000"},
		{"huge header", &kgo.Record{Value: []byte("x"), Headers: []kgo.RecordHeader{{Key: "a", Value: []byte("1")}, {Key: "big", Value: make([]byte, 1_000_000)}}}, "bad", HeaderHeadersDropped, "1"},
		{"many headers", &kgo.Record{Value: []byte("x"), Headers: many}, "bad", HeaderHeadersDropped, ""},
		{"huge reason", &kgo.Record{Value: []byte("x")}, "unknown key \"" + strings.Repeat("\u00e9", 500_000) + "\"", HeaderError, ""},
	} {
		dl := deadLetter("dlq", c.rec, -1, c.why)
		size := len(dl.Key) + len(dl.Value)
		for _, h := range dl.Headers {
			size += len(h.Key) + len(h.Value) + headerOverhead
		}
		if size > 512<<10 {
			t.Errorf("%s: dead letter of %d bytes", c.name, size)
		}
		got := header(dl, c.wantHeader)
		if got == nil || c.wantValue != "" && string(got) != c.wantValue {
			t.Errorf("%s: header %s = %q, want %q", c.name, c.wantHeader, got, c.wantValue)
		}
		if why := string(header(dl, HeaderError)); !utf8.ValidString(why) || !strings.HasPrefix(c.why, strings.TrimSuffix(why, "…")) {
			t.Errorf("%s: reason %.40q… is not the start of the reason given", c.name, why)
		}
	}
	// The first headers are kept, in order.
	dl := deadLetter("dlq", &kgo.Record{Value: []byte("x"), Headers: many}, -1, "bad")
	if len(dl.Headers) < 1000 || dl.Headers[0].Key != "h" || dl.Headers[0].Value[0] != 0 || dl.Headers[999].Value[0] != byte(999%256) {
		t.Errorf("kept %d headers, want the first thousands in order", len(dl.Headers))
	}
}

// TestRouteForwardsAPaddedEventAsTheEvent: one event padded to the
// broker's size limit, on the wrong partition, is forwarded as the event
// alone: the whole record plus the forward's header would be too large to
// produce, and the round would fail for ever.
func TestRouteForwardsAPaddedEventAsTheEvent(t *testing.T) {
	topics := DefaultTopics()
	other := idsOn(1, 2, 1)[0]
	m := newRoutedMachine(t, other)
	rt := newRouter(0, 2, topics, testSigner, &ingest.Decoder{Now: time.Now, MaxEvents: maxEventsPerRecord})
	padded := eventRec(topics.Events, 4, "", view(other)+strings.Repeat(" ", 1_000_000))
	small := eventRec(topics.Events, 5, "", view(other))
	res := rt.route(m, []*kgo.Record{padded, small}, cursor{Events: 4, Repartition: -1}, time.Now().UnixNano())
	if len(res.out) != 2 || res.forwarded != 2 {
		t.Fatalf("%d records out, want the two forwards", len(res.out))
	}
	if v := string(res.out[0].Value); len(v) > 1000 || !strings.Contains(v, `"product_id":"`+other+`"`) {
		t.Errorf("padded event forwarded as %d bytes, want the event alone", len(v))
	}
	if string(res.out[1].Value) != view(other) {
		t.Errorf("small event forwarded as %s, want its record's value as it was", res.out[1].Value)
	}
}
