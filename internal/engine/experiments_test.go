package engine_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"testing"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/experiment"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

func kindOf(err error) engine.Kind {
	var ee *engine.Error
	if errors.As(err, &ee) {
		return ee.Kind
	}
	return 0
}

func priceTest() experiment.Definition {
	return experiment.Definition{ID: "e1", Products: []string{"PA"}, Split: experiment.ByShopper,
		Arms: []experiment.Arm{{Name: "list", Kind: experiment.Control}, {Name: "cheap", Kind: experiment.Fixed, Price: 9}}}
}

// TestExperimentCountsExactlyOnce runs an experiment through the writer:
// shoppers are priced by their arm, their views and purchases are counted
// per arm once (not again when retried, not when the commit fails), the
// totals survive a restart, and promoting the fixed arm makes its price
// the list price and frees the product.
func TestExperimentCountsExactlyOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db")
	h := start(t, path, nil)
	ctx := context.Background()
	if err := h.eng.ImportCatalog(ctx, []pricing.Product{{ID: "PA", BasePrice: 10, UnitCost: 4}, {ID: "PB", BasePrice: 20}}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.CreateExperiment(ctx, engine.ExperimentInput{Definition: priceTest(), By: "ops"}); err != nil {
		t.Fatal(err)
	}
	for name, c := range map[string]struct {
		change func(*experiment.Definition)
		kind   engine.Kind
	}{
		"same id":         {func(d *experiment.Definition) { d.Products = []string{"PB"} }, engine.KindConflict},
		"product taken":   {func(d *experiment.Definition) { d.ID = "e2" }, engine.KindConflict},
		"unknown product": {func(d *experiment.Definition) { d.ID, d.Products = "e2", []string{"nope"} }, engine.KindInvalid},
		"strategy arm": {func(d *experiment.Definition) {
			d.ID, d.Products, d.Arms[1] = "e2", []string{"PB"}, experiment.Arm{Name: "t", Kind: experiment.Strategy, Strategy: "thompson"}
		}, engine.KindInvalid},
		"invalid":          {func(d *experiment.Definition) { d.ID, d.Products, d.Split = "e2", []string{"PB"}, "coin" }, engine.KindInvalid},
		"fixed price zero": {func(d *experiment.Definition) { d.ID, d.Products, d.Arms[1].Price = "e2", []string{"PB"}, 0 }, engine.KindInvalid},
	} {
		d := priceTest()
		c.change(&d)
		if _, err := h.eng.CreateExperiment(ctx, engine.ExperimentInput{Definition: d}); kindOf(err) != c.kind {
			t.Errorf("%s: %v, want kind %d", name, err, c.kind)
		}
	}
	sv := h.eng.Serving()
	now := h.clock.Now().UnixNano()
	if _, ok := sv.Assign("PB", "U1", now); ok {
		t.Error("a product outside the experiment was assigned")
	}
	if _, ok := sv.Assign("PA", "", now); ok {
		t.Error("an anonymous shopper was assigned")
	}
	// 400 shoppers view PA; those of the cheap arm buy, at its price.
	var evs []ingest.Event
	arms := map[string]int{}
	for u := range 400 {
		id := fmt.Sprint("U", u)
		a, ok := sv.Assign("PA", id, now)
		if !ok || a.Experiment != "e1" || (a.Arm == "list") != (a.Price == 10) || (a.Arm == "cheap") != (a.Price == 9) {
			t.Fatalf("%s: assignment %+v %v", id, a, ok)
		}
		arms[a.Arm]++
		user := experiment.IDHash(id)
		evs = append(evs, ingest.Event{EventID: "v" + id, Type: pricing.View, ProductID: "PA", Quantity: 1, User: user, Price: a.Price})
		if a.Arm == "cheap" {
			evs = append(evs, ingest.Event{EventID: "p" + id, Type: pricing.Purchase, ProductID: "PA", Quantity: 2, User: user})
		}
	}
	// Anonymous views are not counted.
	evs = append(evs, ingest.Event{Type: pricing.View, ProductID: "PA", Quantity: 1})
	if _, err := h.eng.Submit(ctx, evs); err != nil {
		t.Fatal(err)
	}
	check := func(when string) engine.ExperimentState {
		t.Helper()
		es, err := h.eng.Experiments(ctx, "e1")
		if err != nil || len(es) != 1 {
			t.Fatalf("%s: %v %v", when, es, err)
		}
		a := es[0].Arms
		if a[0].Views != int64(arms["list"]) || a[1].Views != int64(arms["cheap"]) || a[0].Purchases != 0 ||
			a[1].Purchases != int64(arms["cheap"]) || a[1].Units != 2*int64(arms["cheap"]) ||
			math.Abs(a[1].Revenue-18*float64(arms["cheap"])) > 1e-6 || math.Abs(a[1].Profit-10*float64(arms["cheap"])) > 1e-6 {
			t.Errorf("%s: arms %+v, want views %v, cheap buying 2 at 9 each", when, a, arms)
		}
		return es[0]
	}
	check("after the events")
	// Retried: duplicates, not counted again.
	if res, err := h.eng.Submit(ctx, evs[:10]); err != nil || res.Duplicates != 10 {
		t.Fatalf("retry: %+v %v", res, err)
	}
	// A failed commit counts nothing.
	h.store.fail.Store(true)
	if _, err := h.eng.Submit(ctx, []ingest.Event{{EventID: "x", Type: pricing.View, ProductID: "PA", Quantity: 1, User: experiment.IDHash("U1")}}); kindOf(err) != engine.KindUnavailable {
		t.Fatalf("submit while the store fails: %v", err)
	}
	h.store.fail.Store(false)
	check("after a failed commit")
	if err := h.stop(); err != nil {
		t.Fatal(err)
	}
	h = start(t, path, nil)
	st := check("after a restart")
	if r := st.Readout(); r.Arms[1].RevenuePerVisitor.Estimate != 18 || r.Arms[0].RevenuePerVisitor.Estimate != 0 {
		t.Errorf("readout %+v", r)
	}
	// Promote the cheap arm: PA's list price becomes 9, the experiment
	// stops and PA is free for another.
	es, err := h.eng.PromoteExperiment(ctx, engine.ExperimentInput{ID: "e1", Arm: "cheap", By: "ops"})
	if err != nil || es.Record.Promoted != "cheap" || es.Record.StoppedBy != "ops" || es.Record.End == 0 {
		t.Fatalf("promote: %+v %v", es.Record, err)
	}
	ps, _ := h.eng.Products(ctx)
	if ps[0].BasePrice != 9 {
		t.Errorf("PA's list price after promoting %v, want 9", ps[0].BasePrice)
	}
	if _, ok := h.eng.Serving().Assign("PA", "U1", h.clock.Now().UnixNano()); ok {
		t.Error("a stopped experiment still assigns")
	}
	if _, err := h.eng.StopExperiment(ctx, engine.ExperimentInput{ID: "e1"}); kindOf(err) != engine.KindConflict {
		t.Errorf("stopping twice: %v", err)
	}
	if _, err := h.eng.StopExperiment(ctx, engine.ExperimentInput{ID: "nope"}); kindOf(err) != engine.KindNotFound {
		t.Errorf("stopping an unknown experiment: %v", err)
	}
	d := priceTest()
	d.ID = "e2"
	if _, err := h.eng.CreateExperiment(ctx, engine.ExperimentInput{Definition: d}); err != nil {
		t.Errorf("a new experiment on PA after the first stopped: %v", err)
	}
}

// TestExperimentLimits checks that experiments not yet ended are bounded.
func TestExperimentLimits(t *testing.T) {
	h := start(t, filepath.Join(t.TempDir(), "db"), func(c *engine.Config) { c.Experiments.MaxActive, c.Experiments.MaxKept = 2, 3 })
	ctx := context.Background()
	var ps []pricing.Product
	for i := range 5 {
		ps = append(ps, pricing.Product{ID: fmt.Sprint("P", i), BasePrice: 10})
	}
	if err := h.eng.ImportCatalog(ctx, ps, ""); err != nil {
		t.Fatal(err)
	}
	create := func(i int) error {
		d := priceTest()
		d.ID, d.Products = fmt.Sprint("e", i), []string{ps[i].ID}
		_, err := h.eng.CreateExperiment(ctx, engine.ExperimentInput{Definition: d})
		return err
	}
	for i := range 2 {
		if err := create(i); err != nil {
			t.Fatal(err)
		}
	}
	if err := create(2); kindOf(err) != engine.KindConflict {
		t.Fatalf("a third active experiment: %v", err)
	}
	if _, err := h.eng.StopExperiment(ctx, engine.ExperimentInput{ID: "e0"}); err != nil {
		t.Fatal(err)
	}
	if err := create(2); err != nil {
		t.Fatalf("after one stopped: %v", err)
	}
	if _, err := h.eng.StopExperiment(ctx, engine.ExperimentInput{ID: "e1"}); err != nil {
		t.Fatal(err)
	}
	if err := create(3); kindOf(err) != engine.KindConflict {
		t.Fatalf("a fourth experiment kept: %v", err)
	}
}

// TestExperimentChangesUndoneWithTheRound checks that a round that cannot
// be committed takes back what it did to experiments: one it created is
// gone, one it stopped runs again, and both are as a fresh load has them.
func TestExperimentChangesUndoneWithTheRound(t *testing.T) {
	h := start(t, filepath.Join(t.TempDir(), "db"), nil)
	ctx := context.Background()
	if err := h.eng.ImportCatalog(ctx, []pricing.Product{{ID: "PA", BasePrice: 10}, {ID: "PB", BasePrice: 20}}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.CreateExperiment(ctx, engine.ExperimentInput{Definition: priceTest()}); err != nil {
		t.Fatal(err)
	}
	h.store.fail.Store(true)
	if _, err := h.eng.StopExperiment(ctx, engine.ExperimentInput{ID: "e1"}); kindOf(err) != engine.KindUnavailable {
		t.Fatalf("stop while the store fails: %v", err)
	}
	d := priceTest()
	d.ID, d.Products = "e2", []string{"PB"}
	if _, err := h.eng.CreateExperiment(ctx, engine.ExperimentInput{Definition: d}); kindOf(err) != engine.KindUnavailable {
		t.Fatalf("create while the store fails: %v", err)
	}
	h.store.fail.Store(false)
	es, err := h.eng.Experiments(ctx, "")
	if err != nil || len(es) != 1 || es[0].Record.StoppedAt != 0 || es[0].Record.End != 0 {
		t.Fatalf("after the failed rounds: %+v %v", es, err)
	}
	if _, ok := h.eng.Serving().Assign("PA", "U1", h.clock.Now().UnixNano()); !ok {
		t.Error("the experiment whose stop failed does not assign")
	}
	if _, ok := h.eng.Serving().Assign("PB", "U1", h.clock.Now().UnixNano()); ok {
		t.Error("the experiment whose creation failed assigns")
	}
	// And the store agrees: e2 can be created now, e1 stopped.
	if _, err := h.eng.CreateExperiment(ctx, engine.ExperimentInput{Definition: d}); err != nil {
		t.Errorf("create again: %v", err)
	}
	if _, err := h.eng.StopExperiment(ctx, engine.ExperimentInput{ID: "e1"}); err != nil {
		t.Errorf("stop again: %v", err)
	}
}

// TestExperimentSplitByProduct checks that a product split assigns every
// visit of a product to the product's arm, with or without a shopper id,
// and counts events the same way GET /price assigned them.
func TestExperimentSplitByProduct(t *testing.T) {
	h := start(t, filepath.Join(t.TempDir(), "db"), nil)
	ctx := context.Background()
	var ps []pricing.Product
	d := priceTest()
	d.Split, d.Products = experiment.ByProduct, nil
	for i := range 8 {
		ps = append(ps, pricing.Product{ID: fmt.Sprint("P", i), BasePrice: 10})
		d.Products = append(d.Products, ps[i].ID)
	}
	if err := h.eng.ImportCatalog(ctx, ps, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := h.eng.CreateExperiment(ctx, engine.ExperimentInput{Definition: d}); err != nil {
		t.Fatal(err)
	}
	now := h.clock.Now().UnixNano()
	want := map[string]int64{}
	var evs []ingest.Event
	for _, p := range ps {
		a, ok := h.eng.Serving().Assign(p.ID, "", now)
		if b, _ := h.eng.Serving().Assign(p.ID, "U1", now); !ok || b.Arm != a.Arm {
			t.Fatalf("%s: assigned %+v without a shopper, %+v with one", p.ID, a, b)
		}
		want[a.Arm]++
		evs = append(evs, ingest.Event{Type: pricing.View, ProductID: p.ID, Quantity: 1})
	}
	if _, err := h.eng.Submit(ctx, evs); err != nil {
		t.Fatal(err)
	}
	es, _ := h.eng.Experiments(ctx, "e1")
	if es[0].Arms[0].Views != want["list"] || es[0].Arms[1].Views != want["cheap"] || want["list"] == 0 || want["cheap"] == 0 {
		t.Errorf("views per arm %d, %d; assigned %v", es[0].Arms[0].Views, es[0].Arms[1].Views, want)
	}
}
