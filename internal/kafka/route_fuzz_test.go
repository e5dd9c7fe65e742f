package kafka

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/twmb/franz-go/pkg/kgo"
)

// FuzzRoute feeds the router arbitrary records on any of its topics, signed
// or not, and checks what must hold for any input: routing never panics,
// moves exactly that topic's position past the record, produces only
// forwards and bounded dead letters with a reason, and leaves a state that
// can be stored: no record can make a round impossible to commit.
func FuzzRoute(f *testing.F) {
	f.Add([]byte(`{"event_type":"purchase","product_id":"PA","quantity":10000,"price":1e9}`), "PA", uint8(0), "", false)
	f.Add([]byte(`[{"event_type":"competitor_price","product_id":"PB","competitor":"X","price":999999999.99},{"event_type":"stock","product_id":"PA","quantity":1000000000}]`), "", uint8(0), "", false)
	f.Add([]byte(`{"product_id":"PA","override_price":1e9,"by":"ops","expires_at":9223372036854775807}`), "PA", uint8(2), ControlOverride, true)
	f.Add([]byte(`{"id":"PA","base_price":1e9,"guardrails":{"floor":1e9,"ceiling":1e9}}`), "PA", uint8(2), ControlProduct, true)
	f.Add([]byte(`{"default_strategy":"competitor"}`), "", uint8(2), ControlDefaultStrategy, true)
	f.Add([]byte(`{"product_id":"PA","override_price":0.01}`), "PA", uint8(0), ControlOverride, false)
	f.Add([]byte(`{"event_type":"view","product_id":"PA"}`), "PA", uint8(1), "", false)
	f.Add([]byte("\x00\xff"), "", uint8(0), "", false)
	f.Fuzz(func(t *testing.T, value []byte, key string, topic uint8, kind string, sign bool) {
		topics := DefaultTopics()
		m := engine.NewMachine(engine.DefaultConfig())
		ps := []pricing.Product{
			{ID: "PA", BasePrice: 100, Strategy: "competitor", UnitCost: 50},
			{ID: "PB", BasePrice: 1e9, Strategy: "thompson"},
			{ID: "PC", BasePrice: 0.01, Strategy: "inventory"},
		}
		now := time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC).UnixNano()
		if _, err := m.Load(engine.Snapshot{Products: ps}, now); err != nil {
			t.Fatal(err)
		}
		m.Begin()
		rt := newRouter(0, 1, topics, testSigner, &ingest.Decoder{Now: func() time.Time { return time.Unix(0, now) }, MaxEvents: maxEventsPerRecord})
		name := []string{topics.Events, topics.Repartition(), topics.ControlTopic()}[topic%3]
		rec := &kgo.Record{Topic: name, Offset: 41, Value: value, Timestamp: time.Unix(0, now)}
		if key != "" {
			rec.Key = []byte(key)
		}
		if kind != "" {
			rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderControl, Value: []byte(kind)})
			if sign {
				rec.Headers = append(rec.Headers, kgo.RecordHeader{Key: HeaderSignature, Value: testSigner.sign(kind, rec.Key, value)})
			}
		}
		if name == topics.Repartition() {
			rec.Headers = append(rec.Headers, sourceHeader(0, 7))
		}
		cur := cursor{Events: 41, Repartition: 41, Control: 41, Applied: map[int32]int64{}}
		res := rt.route(m, []*kgo.Record{rec}, cur, now)

		moved := map[string]int64{topics.Events: res.next.Events, topics.Repartition(): res.next.Repartition, topics.ControlTopic(): res.next.Control}
		for tp, off := range moved {
			if want := map[bool]int64{true: 42, false: 41}[tp == name]; off != want {
				t.Fatalf("position of %s is %d after a record at 41 on %s, want %d", tp, off, name, want)
			}
		}
		for _, o := range res.out {
			switch o.Topic {
			case topics.Repartition():
			case topics.DeadLetter():
				if len(header(o, HeaderError)) == 0 || len(header(o, HeaderOrigin)) == 0 || len(o.Value) > MaxDeadLetterValue {
					t.Fatalf("dead letter without reason or origin, or too large (%d bytes)", len(o.Value))
				}
			default:
				t.Fatalf("a record for topic %q", o.Topic)
			}
		}
		m.Tick(now + int64(time.Hour))
		b, _ := m.Seal()
		for _, s := range b.States {
			if _, err := json.Marshal(&s.State); err != nil {
				t.Fatalf("a record left state that cannot be stored: %s: %v", s.ID, err)
			}
		}
		for _, h := range b.History {
			if err := pricing.CheckPrice("history price", h.Price); err != nil && h.Price != 0 {
				t.Fatalf("a record made price %v for %s: %v", h.Price, h.ProductID, err)
			}
		}
	})
}
