package httpapi

import (
	"context"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/experiment"
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
