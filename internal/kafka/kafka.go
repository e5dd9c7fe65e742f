// Package kafka adapts dynaprice to Apache Kafka (through franz-go) for
// scale-out mode: the engine role (Engine, one engine.Partition per owned
// partition, fed by a router), the control records (encoded and decoded in
// control.go), the API replicas' Gateway and Producer, and their follower
// of the price-updates topic.
//
// Topics:
//   - events (product-events): shopper events, keyed by product id by our
//     producers but not by the original's. A record on it that claims to be
//     a control record is dead-lettered, never applied: every shop
//     producer can write here.
//   - control (dynaprice-control by default): overrides and catalog
//     changes, which only dynaprice writes, each signed (Signer) and keyed
//     by product id. It has as many partitions as the events topic, and
//     partition p belongs to the engine that owns the products of events
//     partition p.
//   - events + "-repartition": events that arrived on a partition other than
//     their product's, re-keyed by product id (as Kafka Streams does). It has
//     as many partitions as the events topic, and partition p of both belongs
//     to the same engine (the range balancer assigns co-partitioned topics
//     together), so one engine owns each product's state.
//   - events + "-dlq": records that could not be applied, with the reason in
//     a header.
//   - price-updates: one record per committed price change, keyed by product
//     id, valued as the WebSocket message.
package kafka

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Record headers dynaprice reads or writes.
const (
	// HeaderControl marks a control record; its value is the kind.
	HeaderControl = "dynaprice-control"
	// HeaderSource, on a repartitioned record, holds where it came from: the
	// source partition (int32) and position (int64: offset<<16 | index of
	// the event in the record), big-endian. The engine drops positions it
	// has applied already, which makes forwarding exactly-once without
	// Kafka transactions.
	HeaderSource = "dynaprice-src"
	// HeaderEventTime, on a price update, is the newest input record
	// timestamp (unix ns, decimal) the update reflects; loadgen measures
	// produce-to-update latency with it.
	HeaderEventTime = "dynaprice-event-time"
	// HeaderError is a dead letter's reason; HeaderOrigin where it was read
	// ("topic/partition/offset"), HeaderIndex which event of the record (if
	// one event of several was rejected).
	HeaderError  = "dynaprice-error"
	HeaderOrigin = "dynaprice-origin"
	HeaderIndex  = "dynaprice-index"
	// HeaderTruncated, on a dead letter whose value was cut to
	// MaxDeadLetterValue bytes, is the original value's length.
	HeaderTruncated = "dynaprice-truncated"
	// HeaderKeyTruncated, on a dead letter whose key was cut to
	// maxDeadLetterKey bytes, is the original key's length.
	HeaderKeyTruncated = "dynaprice-key-truncated"
	// HeaderHeadersDropped, on a dead letter, is how many of the record's
	// own headers were left out to keep it within maxDeadLetterHeaders.
	HeaderHeadersDropped = "dynaprice-headers-dropped"
)

// maxEventsPerRecord bounds the events of one record: the position of a
// forwarded event keeps its index in 16 bits.
const maxEventsPerRecord = 1 << 16

// Topics names the topics.
type Topics struct {
	Events  string
	Updates string
	// Control is the topic of control records ("" means
	// DefaultControlTopic). Give only dynaprice's API replicas and engines
	// the right to write to it.
	Control string
}

// DefaultControlTopic is the control topic unless Topics.Control names one.
const DefaultControlTopic = "dynaprice-control"

// DefaultTopics are the original system's names.
func DefaultTopics() Topics { return Topics{Events: "product-events", Updates: "price-updates"} }

// ControlTopic is the topic of control records.
func (t Topics) ControlTopic() string {
	if t.Control == "" {
		return DefaultControlTopic
	}
	return t.Control
}

// Repartition is the internal topic of re-keyed events.
func (t Topics) Repartition() string { return t.Events + "-repartition" }

// DeadLetter is the topic of records that could not be applied.
func (t Topics) DeadLetter() string { return t.Events + "-dlq" }

// EnsureTopics creates missing topics and returns the events topic's
// partition count. The repartition topic is created with the same count;
// if it exists with another count, that is an error, since products would
// no longer map to the same partition number in both.
func EnsureTopics(ctx context.Context, adm *kadm.Client, t Topics, partitions int32, replication int16) (int32, error) {
	n, err := ensureTopic(ctx, adm, t.Events, partitions, replication)
	if err != nil {
		return 0, err
	}
	rn, err := ensureTopic(ctx, adm, t.Repartition(), n, replication)
	if err != nil {
		return 0, err
	}
	if rn != n {
		return 0, fmt.Errorf("kafka: topic %s has %d partitions but %s has %d; they must match", t.Repartition(), rn, t.Events, n)
	}
	cn, err := ensureTopic(ctx, adm, t.ControlTopic(), n, replication)
	if err != nil {
		return 0, err
	}
	if cn != n {
		return 0, fmt.Errorf("kafka: topic %s has %d partitions but %s has %d; they must match", t.ControlTopic(), cn, t.Events, n)
	}
	if _, err := ensureTopic(ctx, adm, t.DeadLetter(), 1, replication); err != nil {
		return 0, err
	}
	if _, err := ensureTopic(ctx, adm, t.Updates, partitions, replication); err != nil {
		return 0, err
	}
	return n, nil
}

func ensureTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, replication int16) (int32, error) {
	for attempt := 0; ; attempt++ {
		// adm's client must have a short metadata min age (see
		// Engine.ensureTopics): the answer comes from its cache.
		td, err := adm.ListTopics(ctx, topic)
		if err != nil {
			return 0, fmt.Errorf("kafka: listing topic %s: %w", topic, err)
		}
		if d, ok := td[topic]; ok && d.Err == nil {
			return int32(len(d.Partitions)), nil
		}
		resp, err := adm.CreateTopic(ctx, partitions, replication, nil, topic)
		if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return 0, fmt.Errorf("kafka: creating topic %s: %w", topic, err)
		}
		if err == nil && resp.Err != nil && !errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			return 0, fmt.Errorf("kafka: creating topic %s: %w", topic, resp.Err)
		}
		if attempt > 50 {
			return 0, fmt.Errorf("kafka: topic %s does not appear after creation", topic)
		}
		select { // metadata propagates asynchronously
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// PartitionOf is the partition Kafka's default partitioner (and franz-go's)
// picks for key among n: murmur2 of the key, sign bit cleared, modulo n.
// The engine uses it to tell whether an event arrived on its product's
// partition; a producer with another partitioner only costs a forward.
func PartitionOf(key string, n int32) int32 {
	return int32(murmur2(key)&0x7fffffff) % n
}

// murmur2 is Kafka's variant of MurmurHash2 (seed 0x9747b28c), written from
// the algorithm's description; the tests hold it to franz-go's partitioner.
// It takes a string so the hot path hashes product ids without copying.
func murmur2(s string) uint32 {
	const (
		seed = 0x9747b28c
		m    = 0x5bd1e995
		r    = 24
	)
	n := len(s)
	h := uint32(seed) ^ uint32(n)
	i := 0
	for ; n-i >= 4; i += 4 {
		k := uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	switch n - i {
	case 3:
		h ^= uint32(s[i+2]) << 16
		fallthrough
	case 2:
		h ^= uint32(s[i+1]) << 8
		fallthrough
	case 1:
		h ^= uint32(s[i])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}

func header(r *kgo.Record, key string) []byte {
	for _, h := range r.Headers {
		if h.Key == key {
			return h.Value
		}
	}
	return nil
}

func sourceHeader(partition int32, pos int64) kgo.RecordHeader {
	v := make([]byte, 12)
	binary.BigEndian.PutUint32(v, uint32(partition))
	binary.BigEndian.PutUint64(v[4:], uint64(pos))
	return kgo.RecordHeader{Key: HeaderSource, Value: v}
}

func parseSource(r *kgo.Record) (partition int32, pos int64, ok bool) {
	v := header(r, HeaderSource)
	if len(v) != 12 {
		return 0, 0, false
	}
	return int32(binary.BigEndian.Uint32(v)), int64(binary.BigEndian.Uint64(v[4:])), true
}

// deadLetter is r sent to the dead-letter topic with why; index >= 0 names
// the rejected event of a record holding several. Every part of it that
// comes from r (value, key, headers) or may quote it (why) is bounded, so
// that a dead letter always fits the producer's and the broker's record
// limit, whatever r was: a dead letter that cannot be produced would fail
// its round for ever.
func deadLetter(topic string, r *kgo.Record, index int, why string) *kgo.Record {
	hs := make([]kgo.RecordHeader, 0, min(len(r.Headers), 64)+6)
	size, dropped := 0, 0
	for _, h := range r.Headers {
		// A producer must not be able to forge the reason or the origin
		// of its own dead letter.
		if strings.HasPrefix(h.Key, "dynaprice-") {
			continue
		}
		if size += len(h.Key) + len(h.Value) + headerOverhead; size > maxDeadLetterHeaders {
			dropped++
			continue
		}
		hs = append(hs, h)
	}
	if len(why) > maxDeadLetterReason {
		why = strings.ToValidUTF8(why[:maxDeadLetterReason], "") + "…"
	}
	hs = append(hs,
		kgo.RecordHeader{Key: HeaderError, Value: []byte(why)},
		kgo.RecordHeader{Key: HeaderOrigin, Value: []byte(r.Topic + "/" + strconv.Itoa(int(r.Partition)) + "/" + strconv.FormatInt(r.Offset, 10))})
	if index >= 0 {
		hs = append(hs, kgo.RecordHeader{Key: HeaderIndex, Value: strconv.AppendInt(nil, int64(index), 10)})
	}
	if dropped > 0 {
		hs = append(hs, kgo.RecordHeader{Key: HeaderHeadersDropped, Value: strconv.AppendInt(nil, int64(dropped), 10)})
	}
	key := r.Key
	if len(key) > maxDeadLetterKey {
		key = key[:maxDeadLetterKey]
		hs = append(hs, kgo.RecordHeader{Key: HeaderKeyTruncated, Value: strconv.AppendInt(nil, int64(len(r.Key)), 10)})
	}
	value := r.Value
	if len(value) > MaxDeadLetterValue {
		// The whole record is in the events topic at its origin; the dead
		// letter must fit any producer's and broker's record limit.
		value = value[:MaxDeadLetterValue]
		hs = append(hs, kgo.RecordHeader{Key: HeaderTruncated, Value: strconv.AppendInt(nil, int64(len(r.Value)), 10)})
	}
	return &kgo.Record{Topic: topic, Key: key, Value: value, Headers: hs, Timestamp: r.Timestamp}
}

// Bounds of a dead letter's parts other than its value: the record's own
// headers (each counted with headerOverhead bytes for its encoding), its
// key and the reason. With MaxDeadLetterValue, a dead letter stays far
// below the 1 MB record limit of producers and brokers.
const (
	maxDeadLetterHeaders = 64 << 10
	maxDeadLetterKey     = 1 << 10
	maxDeadLetterReason  = 1 << 10
	headerOverhead       = 8
)

// MaxDeadLetterValue bounds the copy of a record's value in its dead
// letter (256 KiB): a record near the broker's limit, plus headers, could
// not be produced again, and its round would fail for ever.
const MaxDeadLetterValue = 256 << 10
