package kafka

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Control record kinds (the value of HeaderControl). Control records carry
// every change that is not a shopper event, so the engine owning a product
// applies them in order with its events, and nothing an API replica does
// bypasses the engine's state.
const (
	// ControlOverride sets or replaces an override: OverrideMsg.
	ControlOverride = "override"
	// ControlOverrideClear removes an override: OverrideMsg (id and by).
	ControlOverrideClear = "override-clear"
	// ControlProduct adds or updates a catalog product: pricing.Product.
	ControlProduct = "product"
	// ControlDefaultStrategy sets the catalog-wide default strategy:
	// DefaultStrategyMsg. It is sent to every partition.
	ControlDefaultStrategy = "default-strategy"
)

// OverrideMsg is the value of an override control record.
type OverrideMsg struct {
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

// applyControl applies one control record to m. The error is the reason
// the record goes to the dead-letter topic; it never stops the engine.
func applyControl(m *engine.Machine, kind string, value []byte, now int64) error {
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.DisallowUnknownFields()
	switch kind {
	case ControlOverride, ControlOverrideClear:
		var o OverrideMsg
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
