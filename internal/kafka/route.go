package kafka

import (
	"encoding/json"
	"fmt"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// cursor is a partition's committed position: the next offsets of the
// events, repartition and control topics, and per source partition the
// last forwarded position applied (see HeaderSource).
type cursor struct {
	Events      int64           `json:"e"`
	Repartition int64           `json:"r"`
	Control     int64           `json:"c"`
	Applied     map[int32]int64 `json:"h,omitempty"`
}

func parseCursor(s string) (cursor, error) {
	// A position stored before the control topic existed has no "c": the
	// control topic is then read from its start.
	c := cursor{Events: -1, Repartition: -1, Control: -1}
	if s == "" {
		return c, nil
	}
	if err := json.Unmarshal([]byte(s), &c); err != nil {
		return c, fmt.Errorf("stored cursor %q: %w", s, err)
	}
	return c, nil
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c) // a struct of numbers: cannot fail
	return string(b)
}

// past moves c past r, a record of one of t's topics. For a forwarded
// record it also remembers the position it came from, and reports whether
// that was applied already (it was forwarded again after its forwarder
// crashed) or is missing.
func (c *cursor) past(r *kgo.Record, t Topics) (forwardedAgain, badSource bool) {
	switch r.Topic {
	case t.ControlTopic():
		c.Control = r.Offset + 1
	case t.Repartition():
		c.Repartition = r.Offset + 1
		sp, pos, ok := parseSource(r)
		if !ok {
			return false, true
		}
		if last, seen := c.Applied[sp]; seen && pos <= last {
			return true, false
		}
		c.Applied[sp] = pos
	default:
		c.Events = r.Offset + 1
	}
	return false, false
}

func (c cursor) clone() cursor {
	d := c
	d.Applied = make(map[int32]int64, len(c.Applied))
	for k, v := range c.Applied {
		d.Applied[k] = v
	}
	return d
}

// router decides what becomes of each record of one partition's round, and
// applies what is the partition's own to its machine. Events of the
// partition's products are applied; events keyed to another partition (the
// original's producers send no key) are forwarded to the repartition topic;
// control records are applied in order with the events around them; a
// record forwarded again after its forwarder crashed is dropped; whatever
// cannot be applied is dead-lettered with the reason. It does no I/O: the
// records to produce come back in routed.out, so routing is tested without
// Kafka.
type router struct {
	part   int32 // the partition routed
	n      int32 // partitions of the events topic
	topics Topics
	signer *Signer         // verifies control records
	dec    *ingest.Decoder // one per partition: it pools its scratch space

	// Reused per round.
	evs    []ingest.Event
	srcs   []*kgo.Record // record of each event in evs
	idx    []int         // index of each event in its record
	decEvs []ingest.Event
	decIdx []int
	// times holds the newest record time per product of the round, for
	// the price updates it causes (loadgen measures latency with it).
	times map[string]int64
	out   []*kgo.Record
}

func newRouter(part, n int32, topics Topics, signer *Signer, dec *ingest.Decoder) *router {
	return &router{part: part, n: n, topics: topics, signer: signer, dec: dec, times: make(map[string]int64)}
}

// routed is the outcome of a round.
type routed struct {
	next cursor
	// out holds forwards and dead letters: they must be in Kafka before
	// the round's commit, which consumes their sources. Valid until the
	// next round.
	out                             []*kgo.Record
	forwarded, dead, repartitionDup int
}

// route applies recs (records of rt's partition, in offset order, from the
// events, repartition and control topics) to m, starting from position cur.
func (rt *router) route(m *engine.Machine, recs []*kgo.Record, cur cursor, now int64) routed {
	res := routed{next: cur.clone()}
	clear(rt.out)
	rt.out = rt.out[:0]
	dlq := rt.topics.DeadLetter()
	dead := func(r *kgo.Record, index int, why string) {
		rt.out = append(rt.out, deadLetter(dlq, r, index, why))
		res.dead++
	}
	repart, control := rt.topics.Repartition(), rt.topics.ControlTopic()
	for _, r := range recs {
		again, badSource := res.next.past(r, rt.topics)
		if r.Topic == control {
			rt.flush(m, now, dead)
			kind := header(r, HeaderControl)
			if err := rt.signer.verify(string(kind), r.Key, r.Value, header(r, HeaderSignature)); err != nil {
				dead(r, -1, err.Error())
				continue
			}
			if err := applyControl(m, string(kind), r.Value, now); err != nil {
				dead(r, -1, err.Error())
			}
			continue
		}
		fromRepart := r.Topic == repart
		switch {
		case badSource:
			dead(r, -1, "repartitioned record without a valid "+HeaderSource+" header")
			continue
		case again:
			res.repartitionDup++ // forwarded again after a crash of its forwarder
			continue
		case !fromRepart:
			if header(r, HeaderControl) != nil {
				// Any shop producer can write here: a record posing as a
				// control record is never applied.
				dead(r, -1, "control records are accepted only on "+control+", signed; not on the events topic")
				continue
			}
		}
		evs, idx, rejects, err := rt.decode(r)
		if err != nil {
			dead(r, -1, err.Error())
			continue
		}
		for _, rj := range rejects {
			dead(r, rj.Index, rj.Error)
		}
		for k := range evs {
			ev := &evs[k]
			if PartitionOf(ev.ProductID, rt.n) == rt.part {
				rt.evs = append(rt.evs, *ev)
				rt.srcs = append(rt.srcs, r)
				rt.idx = append(rt.idx, idx[k])
				continue
			}
			if fromRepart {
				// Only a change of the partition count can do this.
				dead(r, idx[k], "repartitioned event is on the wrong partition (was the partition count changed?)")
				continue
			}
			value := r.Value
			if len(evs) > 1 || len(rejects) > 0 || len(value) > maxForwardedValue {
				// Only the event travels on: not the others of its record,
				// nor padding that could make the forward too large for
				// the producer, whose failure would fail the round for ever.
				value = ingest.AppendJSON(nil, ev)
			}
			rt.out = append(rt.out, &kgo.Record{
				Topic: repart, Key: []byte(ev.ProductID), Value: value, Timestamp: r.Timestamp,
				Headers: []kgo.RecordHeader{sourceHeader(rt.part, r.Offset<<16|int64(idx[k]))},
			})
			res.forwarded++
		}
	}
	rt.flush(m, now, dead)
	m.AddDuplicates(res.repartitionDup)
	res.out = rt.out
	return res
}

// maxForwardedValue is the longest record value forwarded as it is; a
// longer one holding one event is forwarded as that event re-encoded
// (ingest.AppendJSON: a few hundred bytes at most).
const maxForwardedValue = 4 << 10

// flush applies the events gathered since the last flush.
func (rt *router) flush(m *engine.Machine, now int64, dead func(*kgo.Record, int, string)) {
	if len(rt.evs) == 0 {
		return
	}
	var res engine.SubmitResult
	m.ApplyEvents(rt.evs, now, &res)
	for _, rj := range res.Rejects {
		dead(rt.srcs[rj.Index], rt.idx[rj.Index], rj.Error)
	}
	for k := range rt.evs {
		id, t := rt.evs[k].ProductID, rt.srcs[k].Timestamp.UnixNano()
		if t > rt.times[id] {
			rt.times[id] = t
		}
	}
	clear(rt.srcs) // drop record references
	rt.evs, rt.srcs, rt.idx = rt.evs[:0], rt.srcs[:0], rt.idx[:0]
}

// decode reads r's events into the router's scratch space.
func (rt *router) decode(r *kgo.Record) ([]ingest.Event, []int, []ingest.Reject, error) {
	ctype := "application/json"
	if v := header(r, "content-type"); v != nil {
		ctype = string(v)
	}
	evs, idx, rejects, err := rt.dec.Decode(r.Value, ctype, rt.decEvs[:0], rt.decIdx[:0])
	rt.decEvs, rt.decIdx = evs, idx
	return evs, idx, rejects, err
}
