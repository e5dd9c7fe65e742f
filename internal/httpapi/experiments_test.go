package httpapi

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/experiment"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
	"github.com/prometheus/client_golang/prometheus"
)

// openapiExperiments is an Experiments that accepts everything and answers
// with an experiment whose readout fills every optional field.
type openapiExperiments struct{}

func openapiExperiment(d experiment.Definition) engine.ExperimentState {
	now := time.Now().UnixNano()
	if d.ID == "" {
		d = experiment.Definition{ID: "spring", Products: []string{"PA"}, Split: experiment.ByShopper,
			Arms: []experiment.Arm{{Name: "list", Kind: experiment.Control}, {Name: "lower", Kind: experiment.Fixed, Price: 279}}}
	}
	if d.Start == 0 {
		d.Start = now
	}
	d.Normalize()
	st := engine.ExperimentState{Record: engine.ExperimentRecord{Definition: d, CreatedAt: now, CreatedBy: "ops"}}
	for a := range d.Arms {
		var acc experiment.Accumulator
		for i := range 2000 {
			acc.View()
			if i < 600+200*a {
				acc.Purchase(10, 1, 4)
			}
		}
		st.Arms = append(st.Arms, engine.ArmTotal{Accumulator: acc, PValue: 1})
	}
	return st
}

func (openapiExperiments) CreateExperiment(_ context.Context, in engine.ExperimentInput) (engine.ExperimentState, error) {
	return openapiExperiment(in.Definition), nil
}

func (openapiExperiments) StopExperiment(_ context.Context, in engine.ExperimentInput) (engine.ExperimentState, error) {
	st := openapiExperiment(experiment.Definition{})
	now := time.Now().UnixNano()
	st.Record.StoppedAt, st.Record.StoppedBy, st.Record.End = now, "ops", now
	return st, nil
}

func (e openapiExperiments) PromoteExperiment(ctx context.Context, in engine.ExperimentInput) (engine.ExperimentState, error) {
	st, _ := e.StopExperiment(ctx, in)
	st.Record.Promoted = "lower"
	return st, nil
}

func (openapiExperiments) Experiments(context.Context, string) ([]engine.ExperimentState, error) {
	return []engine.ExperimentState{openapiExperiment(experiment.Definition{})}, nil
}

func (openapiExperiments) Serving() *engine.Serving { return nil }

// servingExperiments is an Experiments whose Serving is a real one.
type servingExperiments struct {
	openapiExperiments
	s *engine.Serving
}

func (e servingExperiments) Serving() *engine.Serving { return e.s }

// discard is a ResponseWriter that keeps only the status, so that the
// benchmark measures the handler rather than a recorder's buffers.
type discard struct {
	h    http.Header
	code int
}

func (d *discard) Header() http.Header         { return d.h }
func (d *discard) Write(b []byte) (int, error) { return len(b), nil }
func (d *discard) WriteHeader(code int)        { d.code = code }

// BenchmarkGetPriceExperiment is GET /price/{id} through the whole API
// handler: plain, with a shopper but no experiment on the product, and
// with a shopper assigned an arm of a running experiment (the hash, the
// assignment and the spliced answer): what experiments cost the hot path
// (docs/BENCHMARKS.md, goal ≤ 10%).
func BenchmarkGetPriceExperiment(b *testing.B) {
	m := engine.NewMachine(engine.DefaultConfig())
	now := time.Now().UnixNano()
	if _, err := m.Load(engine.Snapshot{Products: []pricing.Product{{ID: "PA", BasePrice: 299}, {ID: "PB", BasePrice: 10}}}, now); err != nil {
		b.Fatal(err)
	}
	d := experiment.Definition{ID: "bench", Products: []string{"PA"}, Split: experiment.ByShopper, Start: now - 1,
		Arms: []experiment.Arm{{Name: "list", Kind: experiment.Control}, {Name: "lower", Kind: experiment.Fixed, Price: 279}}}
	if _, err := m.CreateExperiment(engine.ExperimentInput{Definition: d}, now); err != nil {
		b.Fatal(err)
	}
	serving, _ := m.TakeServing()
	view := live.New(live.HubConfig{})
	view.Publish([]live.Price{{ProductID: "PA", Price: 299, Version: 1, At: now}, {ProductID: "PB", Price: 10, Version: 1, At: now}})
	b.Cleanup(view.Hub().Close)
	cfg := DefaultConfig()
	cfg.Keys = []Key{{Name: "admin", Role: RoleAdmin, Secret: "bench-admin-secret-0123"}}
	cfg.Logger = slog.New(slog.DiscardHandler)
	cfg.Registerer = prometheus.NewRegistry()
	a, err := New(cfg, Deps{Engine: openapiEngine{}, Prices: live.Prices{V: view}, Archive: openapiArchive{},
		Decoder: &ingest.Decoder{}, Experiments: servingExperiments{s: serving}})
	if err != nil {
		b.Fatal(err)
	}
	for _, c := range []struct{ name, target string }{
		{"plain", "/price/PA"},
		{"shopper-outside", "/price/PB?shopper=U17"},
		{"shopper-in-experiment", "/price/PA?shopper=U17"},
	} {
		b.Run(c.name, func(b *testing.B) {
			req := httptest.NewRequest("GET", c.target, nil)
			w := &discard{h: http.Header{}}
			b.ReportAllocs()
			for b.Loop() {
				clear(w.h)
				a.ServeHTTP(w, req)
			}
			if w.code != http.StatusOK {
				b.Fatalf("%s: %d", c.target, w.code)
			}
		})
	}
}

func TestQueryValue(t *testing.T) {
	for _, c := range []struct{ raw, key, want string }{
		{"shopper=U17", "shopper", "U17"},
		{"explain=1&shopper=J%C3%A9r%C3%B4me+B", "shopper", "Jérôme B"},
		{"shopper=a&shopper=b", "shopper", "a"},
		{"shoppers=x&xshopper=y", "shopper", ""},
		{"shopper=%zz", "shopper", ""},
		{"explain", "explain", ""},
		{"a=1&explain=true", "explain", "true"},
	} {
		if got := queryValue(c.raw, c.key); got != c.want {
			t.Errorf("queryValue(%q, %q) = %q, want %q", c.raw, c.key, got, c.want)
		}
	}
}
