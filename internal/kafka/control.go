package kafka

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Control record kinds (the value of HeaderControl). Control records carry
// every change that is not a shopper event, so the engine owning a product
// applies them in order with its events, and nothing an API replica does
// bypasses the engine's state.
//
// Each kind has one encoder here (SetOverrideRecord, ClearOverrideRecord,
// ReleaseRecord, ProductRecord, DefaultStrategyRecord), which every writer uses, and one
// decoder, applyControl, which engines use.
const (
	// ControlOverride sets or replaces an override: overrideMsg.
	ControlOverride = "override"
	// ControlOverrideClear removes an override: overrideMsg (id and by).
	ControlOverrideClear = "override-clear"
	// ControlProduct adds or updates a catalog product: pricing.Product.
	ControlProduct = "product"
	// ControlDefaultStrategy sets the catalog-wide default strategy:
	// DefaultStrategyMsg. It is sent to every partition.
	ControlDefaultStrategy = "default-strategy"
	// ControlRelease lets a price held by the price-velocity breaker go:
	// overrideMsg (id and by).
	ControlRelease = "release"
)

// overrideMsg is the value of an override control record.
type overrideMsg struct {
	ProductID string  `json:"product_id"`
	Price     float64 `json:"override_price,omitempty"`
	Reason    string  `json:"reason,omitempty"`
	By        string  `json:"by,omitempty"`
	// ExpiresAt is unix ns; 0 means never.
	ExpiresAt int64 `json:"expires_at,omitempty"`
}

// DefaultStrategyMsg is the value of a default-strategy control record.
type DefaultStrategyMsg struct {
	DefaultStrategy string `json:"default_strategy"`
}

// ControlRecord is an encoded control record, ready for Producer.Send.
type ControlRecord struct {
	// Kind is the value of HeaderControl.
	Kind string
	// Key is the product id; a record keyed by it lands on the partition of
	// the product's events.
	Key string
	// AllPartitions sends the record to every partition of the events
	// topic instead, for changes every engine must apply; Key is empty.
	AllPartitions bool
	Value         []byte
}

// record returns r as a signed record of the control topic.
func (r ControlRecord) record(topic string, s *Signer) kgo.Record {
	var key []byte
	if !r.AllPartitions {
		key = []byte(r.Key)
	}
	return kgo.Record{Topic: topic, Key: key, Value: r.Value, Headers: []kgo.RecordHeader{
		{Key: HeaderControl, Value: []byte(r.Kind)},
		{Key: HeaderSignature, Value: s.sign(r.Kind, key, r.Value)},
	}}
}

// SetOverrideRecord encodes the setting of in's override. It does not
// check in (see engine.OverrideInput.Check); the engine that applies it
// does.
func SetOverrideRecord(in engine.OverrideInput) (ControlRecord, error) {
	msg := overrideMsg{ProductID: in.ProductID, Price: in.Price, Reason: in.Reason, By: in.By}
	if !in.ExpiresAt.IsZero() {
		msg.ExpiresAt = in.ExpiresAt.UnixNano()
	}
	b, err := json.Marshal(msg)
	if err != nil { // a price JSON cannot carry (NaN, infinities)
		return ControlRecord{}, fmt.Errorf("kafka: encoding an override of %q: %w", in.ProductID, err)
	}
	return ControlRecord{Kind: ControlOverride, Key: in.ProductID, Value: b}, nil
}

// ClearOverrideRecord encodes the removal of product id's override by by.
func ClearOverrideRecord(id, by string) ControlRecord {
	b, _ := json.Marshal(overrideMsg{ProductID: id, By: by}) // strings only: cannot fail
	return ControlRecord{Kind: ControlOverrideClear, Key: id, Value: b}
}

// ReleaseRecord encodes the release of product id's held price by by.
func ReleaseRecord(id, by string) ControlRecord {
	b, _ := json.Marshal(overrideMsg{ProductID: id, By: by}) // strings only: cannot fail
	return ControlRecord{Kind: ControlRelease, Key: id, Value: b}
}

// ProductRecord encodes the addition or update of catalog product p.
func ProductRecord(p pricing.Product) (ControlRecord, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return ControlRecord{}, fmt.Errorf("kafka: encoding product %q: %w", p.ID, err)
	}
	return ControlRecord{Kind: ControlProduct, Key: p.ID, Value: b}, nil
}

// DefaultStrategyRecord encodes a new catalog-wide default strategy, for
// every partition.
func DefaultStrategyRecord(name string) ControlRecord {
	b, _ := json.Marshal(DefaultStrategyMsg{DefaultStrategy: name}) // a string only: cannot fail
	return ControlRecord{Kind: ControlDefaultStrategy, AllPartitions: true, Value: b}
}

// applyControl applies one control record to m. The error is the reason
// the record goes to the dead-letter topic; it never stops the engine.
func applyControl(m *engine.Machine, kind string, value []byte, now int64) error {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	switch kind {
	case ControlOverride, ControlOverrideClear:
		var o overrideMsg
		if err := dec.Decode(&o); err != nil {
			return fmt.Errorf("%s control record: %w", kind, err)
		}
		in := engine.OverrideInput{ProductID: o.ProductID, Price: o.Price, Reason: o.Reason, By: o.By}
		if kind == ControlOverrideClear {
			return m.ClearOverride(in, now)
		}
		if o.ExpiresAt != 0 {
			in.ExpiresAt = time.Unix(0, o.ExpiresAt)
		}
		return m.SetOverride(in, now)
	case ControlRelease:
		var o overrideMsg
		if err := dec.Decode(&o); err != nil {
			return fmt.Errorf("release control record: %w", err)
		}
		if !m.Has(o.ProductID) {
			return fmt.Errorf("release control record: unknown product_id %q", o.ProductID)
		}
		// A product no longer held (its window passed since the API
		// looked) is what the operator asked for: nothing to dead-letter.
		_ = m.Release(o.ProductID, now)
		return nil
	case ControlProduct:
		var p pricing.Product
		if err := dec.Decode(&p); err != nil {
			return fmt.Errorf("product control record: %w", err)
		}
		_, err := m.Upsert(p, now)
		return err
	case ControlDefaultStrategy:
		var d DefaultStrategyMsg
		if err := dec.Decode(&d); err != nil {
			return fmt.Errorf("default-strategy control record: %w", err)
		}
		if d.DefaultStrategy == "" {
			return fmt.Errorf("default-strategy control record: default_strategy is empty")
		}
		return m.Import(nil, d.DefaultStrategy, now)
	}
	return fmt.Errorf("unknown control record kind %q", kind)
}
