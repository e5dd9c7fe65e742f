// Package catalog reads catalog files and knows the demo catalog.
package catalog

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// File is a catalog file: products, an optional catalog-wide default
// strategy and optional catalog-wide defaults of the learning policy. A
// bare JSON array of products is accepted too.
type File struct {
	DefaultStrategy string `json:"default_strategy,omitempty"`
	// Currency is the ISO 4217 code of the currency every price of the
	// catalog is in (pricing.CheckCurrency); kept as a catalog-wide
	// setting, so a later start without the file keeps it. Empty: the
	// one stored, else pricing.DefaultCurrency.
	Currency string `json:"currency,omitempty"`
	// Learning gives every product the learning policy's fields it does
	// not set itself (the price band, half-life, change cap, objective);
	// what neither sets takes the engine's default
	// (pricing.DefaultLearnPolicy). Parse writes it into the products, so
	// that each product carries, and the store keeps, the policy it is
	// priced under.
	Learning *pricing.LearnPolicy `json:"learning,omitempty"`
	Products []pricing.Product    `json:"products"`
}

// Parse decodes and validates a catalog file.
func Parse(b []byte) (File, error) {
	var f File
	b = bytes.TrimSpace(b)
	dec := func(v any) error {
		d := json.NewDecoder(bytes.NewReader(b))
		d.DisallowUnknownFields()
		return d.Decode(v)
	}
	var err error
	if len(b) > 0 && b[0] == '[' {
		err = dec(&f.Products)
	} else {
		err = dec(&f)
	}
	if err != nil {
		return File{}, fmt.Errorf("catalog: %w", err)
	}
	if len(f.Products) == 0 {
		return File{}, errors.New("catalog: no products")
	}
	if f.Currency != "" {
		if err := pricing.CheckCurrency(f.Currency); err != nil {
			return File{}, fmt.Errorf("catalog: %w", err)
		}
	}
	if err := f.Learning.Validate(); err != nil {
		return File{}, fmt.Errorf("catalog: learning: %w", err)
	}
	seen := map[string]bool{}
	for i := range f.Products {
		p := &f.Products[i]
		if f.Learning != nil {
			l := p.Learning.Or(*f.Learning)
			p.Learning = &l
		}
		if err := p.Validate(); err != nil {
			return File{}, fmt.Errorf("catalog: product %d (%q): %w", i, p.ID, err)
		}
		if seen[p.ID] {
			return File{}, fmt.Errorf("catalog: product %q appears twice", p.ID)
		}
		seen[p.ID] = true
	}
	return f, nil
}

// Writer is what a catalog is imported into: serve's engine.Writer.
type Writer interface {
	NumProducts(ctx context.Context) (int, error)
	ImportCatalog(ctx context.Context, ps []pricing.Product, def string) error
	SetCurrency(ctx context.Context, code string) error
}

// Import imports f into w, or, without a file, the demo catalog into an
// empty w: a new user's first start shows prices, and a restart without
// --catalog changes nothing.
func Import(ctx context.Context, w Writer, f *File, log *slog.Logger) error {
	return ImportOr(ctx, w, f, Demo(), log)
}

// ImportOr is Import with another catalog than Demo for an empty w.
func ImportOr(ctx context.Context, w Writer, f *File, empty File, log *slog.Logger) error {
	if f == nil {
		n, err := w.NumProducts(ctx)
		if err != nil || n > 0 {
			return err
		}
		f = &empty
		log.Info("empty store: loading the demo catalog", "products", len(f.Products))
	}
	if err := w.ImportCatalog(ctx, f.Products, f.DefaultStrategy); err != nil {
		return fmt.Errorf("importing catalog: %w", err)
	}
	if f.Currency != "" {
		if err := w.SetCurrency(ctx, f.Currency); err != nil {
			return fmt.Errorf("importing catalog: %w", err)
		}
	}
	return nil
}

// DemoMix is the demo catalog of `serve --demo`: Demo's products, in
// euros, with unit costs (about 60% of the list price, so that margins
// show) and a mix of strategies, so that prices fall as well as rise:
// thompson (learns the best price within 0.8–1.3× list), decay (follows
// interest up and down, capped at 1.5× list), and seed (the original's
// formula) for two of them.
func DemoMix() File {
	f := Demo()
	f.Currency = pricing.DefaultCurrency
	strategies := []string{"thompson", "decay", "thompson", "decay", "seed", "thompson", "decay", "thompson", "seed", "decay"}
	for i := range f.Products {
		p := &f.Products[i]
		p.Strategy = strategies[i%len(strategies)]
		p.UnitCost = pricing.RoundCents(0.6 * p.BasePrice)
		if p.Strategy != "thompson" {
			p.Ceiling = pricing.RoundCents(1.5 * p.BasePrice)
		}
	}
	return f
}

// ReadFile reads and parses a catalog file; "" gives nil (no file).
func ReadFile(path string) (*File, error) {
	if path == "" {
		return nil, nil
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading catalog: %w", err)
	}
	f, err := Parse(b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &f, nil
}

// Demo is the original system's demo catalog: PA..PJ with their base
// prices, priced by the seed strategy.
func Demo() File {
	bases := []float64{299, 349, 129, 499, 219, 179, 649, 269, 399, 159}
	names := []string{"Wireless Headphones", "Smart Watch", "Bluetooth Speaker", "Tablet", "Mechanical Keyboard",
		"Gaming Mouse", "Smartphone", "Fitness Tracker", "Portable Monitor", "Webcam"}
	f := File{DefaultStrategy: "seed"}
	for i, b := range bases {
		f.Products = append(f.Products, pricing.Product{ID: "P" + string(rune('A'+i)), Name: names[i], BasePrice: b})
	}
	return f
}
