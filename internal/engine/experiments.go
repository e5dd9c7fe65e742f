package engine

import (
	"encoding/json"
	"math"
	"slices"

	"github.com/dynaprice/dynaprice/internal/experiment"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// ExperimentRecord is a price experiment as the engine keeps it: its
// definition and what became of it. Stores keep it whole, as JSON.
type ExperimentRecord struct {
	experiment.Definition
	CreatedAt int64  `json:"created_at"`
	CreatedBy string `json:"created_by,omitempty"`
	// StoppedAt is when an operator stopped it (its End is then that
	// time); 0 while not stopped.
	StoppedAt int64  `json:"stopped_at,omitempty"`
	StoppedBy string `json:"stopped_by,omitempty"`
	// Promoted names the arm promoted when it was stopped, if any.
	Promoted string `json:"promoted,omitempty"`
}

// ArmTotal is an arm's committed totals and the smallest p-value its
// comparison with the baseline reached (1 for the baseline, and before
// any look): the always-valid p-value never rises, so the smallest is
// kept with the counts it was computed from.
type ArmTotal struct {
	experiment.Accumulator
	PValue float64 `json:"p_value"`
}

// ArmDelta is what one batch adds to one arm.
type ArmDelta struct {
	ExperimentID string
	Arm          int
	Delta        experiment.Accumulator
	// PValue is the arm's p-value after the batch; a store keeps the
	// smaller of it and the one it holds.
	PValue float64
}

// ExperimentState is an experiment with its arms' totals, as Load returns
// it and the API shows it.
type ExperimentState struct {
	Record ExperimentRecord
	// Arms are in the definition's order.
	Arms []ArmTotal
}

// NewExperimentState is rec with nothing counted yet: every arm's totals
// empty and its p-value 1. An experiment starts so, and a store reads one
// so before it adds the totals it keeps.
func NewExperimentState(rec ExperimentRecord) ExperimentState {
	arms := make([]ArmTotal, len(rec.Arms))
	for a := range arms {
		arms[a].PValue = 1
	}
	return ExperimentState{Record: rec, Arms: arms}
}

// Readout is the experiment's readout from its totals.
func (s ExperimentState) Readout() experiment.Readout {
	accs := make([]experiment.Accumulator, len(s.Arms))
	prev := &experiment.Readout{Arms: make([]experiment.ArmReadout, len(s.Arms))}
	for a, t := range s.Arms {
		accs[a] = t.Accumulator
		prev.Arms[a].PValue = t.PValue
	}
	return experiment.Read(&s.Record.Definition, accs, prev)
}

// expRun is an experiment in the machine.
type expRun struct {
	rec ExperimentRecord
	asg *experiment.Assigner
	// products are the catalog indices of the definition's products.
	products []int
	arms     []ArmTotal
	// delta is what the round added; sealed the p-values Seal worked out
	// from the totals and delta; dirty marks a run with a delta.
	delta  []experiment.Accumulator
	sealed []float64
	dirty  bool
}

// expTable is the machine's experiments. byProduct holds, by catalog
// index, each product's experiment if it is in one not stopped: a product
// is in at most one experiment not yet ended, so an event finds its arm
// with one index (a slice, not a map: ingest pays for the lookup on every
// event while any experiment is on). inExp counts the products in one;
// while it is 0 an event pays nothing at all.
type expTable struct {
	runs      []*expRun
	byID      map[string]*expRun
	byProduct []*expRun
	inExp     int
	// The round's undo log: records as they were at Begin, by run, and
	// how many runs there were.
	undoRec map[*expRun]ExperimentRecord
	base    int
	// changed is set when what GET /price serves for experiments may
	// have changed (Machine.TakeServing).
	changed bool
}

// loadExperiments replaces the table with the stored experiments.
func (m *Machine) loadExperiments(states []ExperimentState) {
	t := &m.exps
	*t = expTable{byID: map[string]*expRun{}, undoRec: map[*expRun]ExperimentRecord{}, changed: true}
	for _, s := range states {
		r := &expRun{rec: s.Record, arms: slices.Clone(s.Arms)}
		for len(r.arms) < len(r.rec.Arms) {
			r.arms = append(r.arms, ArmTotal{PValue: 1})
		}
		m.addRun(r)
	}
	t.base = len(t.runs)
}

// addRun indexes r.
func (m *Machine) addRun(r *expRun) {
	t := &m.exps
	r.asg = experiment.NewAssigner(&r.rec.Definition)
	r.products = r.products[:0]
	for _, id := range r.rec.Products {
		if i, ok := m.book.Index(id); ok {
			r.products = append(r.products, i)
		}
	}
	r.delta = make([]experiment.Accumulator, len(r.rec.Arms))
	r.sealed = make([]float64, len(r.rec.Arms))
	t.runs = append(t.runs, r)
	t.byID[r.rec.ID] = r
	m.indexRun(r)
}

// indexRun maps r's products to it unless it is stopped.
func (m *Machine) indexRun(r *expRun) {
	if r.rec.StoppedAt != 0 {
		return
	}
	t := &m.exps
	for _, i := range r.products {
		for len(t.byProduct) <= i {
			t.byProduct = append(t.byProduct, nil)
		}
		if t.byProduct[i] == nil {
			t.inExp++
		}
		t.byProduct[i] = r
	}
}

// experimentOf is the experiment product i is in, or nil.
func (m *Machine) experimentOf(i int) *expRun {
	if i < len(m.exps.byProduct) {
		return m.exps.byProduct[i]
	}
	return nil
}

// keepRun saves r's record for Undo, once per round.
func (m *Machine) keepRun(r *expRun) {
	if _, ok := m.exps.undoRec[r]; !ok {
		m.exps.undoRec[r] = r.rec
	}
}

// countExperiment counts an applied shopper event of product i in the
// experiment running for it, if any, and the shopper's arm.
func (m *Machine) countExperiment(i int, ev *ingest.Event, qty int32, now int64) {
	r := m.experimentOf(i)
	if r == nil || !r.rec.Running(now) {
		return
	}
	var ph uint64
	if r.rec.Split == experiment.ByProduct {
		ph = experiment.IDHash(ev.ProductID)
	}
	arm := r.asg.ArmOf(ev.User, ph)
	if arm < 0 {
		return
	}
	switch ev.Type {
	case pricing.View:
		r.delta[arm].View()
	case pricing.Purchase:
		price := ev.Price
		if !(price > 0) {
			price = m.armPrice(r, arm, i)
		}
		r.delta[arm].Purchase(price, int64(qty), m.book.Product(i).UnitCost)
	default:
		return
	}
	r.dirty = true
}

// armPrice is what arm a of r shows for product i now.
func (m *Machine) armPrice(r *expRun, a, i int) float64 {
	switch arm := r.rec.Arms[a]; arm.Kind {
	case experiment.Control:
		return m.book.Product(i).BasePrice
	case experiment.Fixed:
		return arm.Price
	}
	return m.book.State(i).Price
}

// sealExperiments adds the round's arm deltas, with the p-values they
// give, to the batch.
func (m *Machine) sealExperiments() {
	for _, r := range m.exps.runs {
		if !r.dirty {
			continue
		}
		st := ExperimentState{Record: r.rec, Arms: make([]ArmTotal, len(r.arms))}
		for a := range r.arms {
			st.Arms[a] = r.arms[a]
			st.Arms[a].Add(r.delta[a])
		}
		ro := st.Readout()
		for a := range r.arms {
			r.sealed[a] = ro.Arms[a].PValue
			if r.delta[a].IsZero() && r.sealed[a] == r.arms[a].PValue {
				continue
			}
			m.batch.ArmDeltas = append(m.batch.ArmDeltas, ArmDelta{ExperimentID: r.rec.ID, Arm: a, Delta: r.delta[a], PValue: r.sealed[a]})
		}
	}
}

// beginExperiments folds the sealed round (committed, or dropped by Undo
// before this) into the totals and starts the round's undo log.
func (m *Machine) beginExperiments() {
	t := &m.exps
	for _, r := range t.runs {
		if !r.dirty {
			continue
		}
		for a := range r.arms {
			r.arms[a].Add(r.delta[a])
			r.arms[a].PValue = math.Min(r.arms[a].PValue, r.sealed[a])
			r.delta[a] = experiment.Accumulator{}
		}
		r.dirty = false
	}
	clear(t.undoRec)
	t.base = len(t.runs)
}

// undoExperiments drops the round's counts, puts records back as they
// were at Begin and forgets experiments the round created.
func (m *Machine) undoExperiments() {
	t := &m.exps
	for _, r := range t.runs {
		clear(r.delta)
		r.dirty = false
	}
	if len(t.undoRec) == 0 && len(t.runs) == t.base {
		return
	}
	for r, rec := range t.undoRec {
		r.rec = rec
	}
	for _, r := range t.runs[t.base:] {
		delete(t.byID, r.rec.ID)
	}
	t.runs = t.runs[:t.base]
	clear(t.byProduct)
	t.inExp = 0
	for _, r := range t.runs {
		m.indexRun(r)
	}
	clear(t.undoRec)
	t.changed = true
}

// ExperimentInput is an operator's request about an experiment.
type ExperimentInput struct {
	Definition experiment.Definition
	ID         string
	// Arm names the arm to promote (PromoteExperiment).
	Arm string
	By  string
}

// CreateExperiment validates and adds an experiment: its products must be
// in the catalog and in no other experiment not yet ended, and within
// the limits; strategy arms are refused (they need pricing state per arm,
// which serve does not keep yet: `dynaprice simulate` runs them).
func (m *Machine) CreateExperiment(in ExperimentInput, now int64) (ExperimentState, error) {
	m.at(now)
	d := in.Definition
	if d.Start == 0 {
		d.Start = now
	}
	d.Normalize()
	lim := m.cfg.Experiments
	if lim == (experiment.Limits{}) {
		lim = experiment.DefaultLimits()
	}
	if err := d.Validate(lim, func(p float64) error { return pricing.CheckPrice("price", p) }, nil); err != nil {
		return ExperimentState{}, &Error{Kind: KindInvalid, Msg: err.Error()}
	}
	for _, a := range d.Arms {
		if a.Kind == experiment.Strategy {
			return ExperimentState{}, errorf(KindInvalid, "arm %q: strategy arms need pricing state per arm, which serve does not keep yet; use control, fixed or live arms (dynaprice simulate runs strategy arms)", a.Name)
		}
	}
	if d.End != 0 && d.End <= now {
		return ExperimentState{}, errorf(KindInvalid, "end is in the past")
	}
	t := &m.exps
	if _, ok := t.byID[d.ID]; ok {
		return ExperimentState{}, errorf(KindConflict, "an experiment with id %q exists", d.ID)
	}
	active := 0
	for _, r := range t.runs {
		if r.rec.End == 0 || r.rec.End > now {
			active++
		}
	}
	if active >= lim.MaxActive || len(t.runs) >= lim.MaxKept {
		return ExperimentState{}, errorf(KindConflict, "too many experiments: at most %d not ended and %d kept", lim.MaxActive, lim.MaxKept)
	}
	for _, id := range d.Products {
		i, ok := m.book.Index(id)
		if !ok {
			return ExperimentState{}, errorf(KindInvalid, "unknown product_id %q", id)
		}
		if r := m.experimentOf(i); r != nil && (r.rec.End == 0 || r.rec.End > now) {
			return ExperimentState{}, errorf(KindConflict, "product %q is in experiment %q, which has not ended", id, r.rec.ID)
		}
	}
	st := NewExperimentState(ExperimentRecord{Definition: d, CreatedAt: now, CreatedBy: in.By})
	r := &expRun{rec: st.Record, arms: st.Arms}
	m.addRun(r)
	m.batch.Experiments = append(m.batch.Experiments, r.rec)
	t.changed = true
	return m.stateOf(r), nil
}

// StopExperiment ends an experiment now; KindNotFound for an unknown id,
// KindConflict for one already stopped.
func (m *Machine) StopExperiment(in ExperimentInput, now int64) (ExperimentState, error) {
	m.at(now)
	r, err := m.stoppable(in.ID)
	if err != nil {
		return ExperimentState{}, err
	}
	m.stop(r, in.By, now)
	return m.stateOf(r), nil
}

// PromoteExperiment stops an experiment and makes the named arm the
// products' pricing: a fixed arm's price becomes their list (base) price;
// a control or live arm leaves the catalog as it is (the list price and
// the engine's own price are what the products had). in.Arm "" promotes
// the readout's winner, and is refused while the test has not named one.
func (m *Machine) PromoteExperiment(in ExperimentInput, now int64) (ExperimentState, error) {
	m.at(now)
	r, err := m.stoppable(in.ID)
	if err != nil {
		return ExperimentState{}, err
	}
	name := in.Arm
	if name == "" {
		if name = m.stateOf(r).Readout().Winner; name == "" {
			return ExperimentState{}, errorf(KindConflict, "the test has not named a winner yet; name the arm to promote")
		}
	}
	a := slices.IndexFunc(r.rec.Arms, func(a experiment.Arm) bool { return a.Name == name })
	if a < 0 {
		return ExperimentState{}, errorf(KindInvalid, "experiment %q has no arm %q", in.ID, name)
	}
	if arm := r.rec.Arms[a]; arm.Kind == experiment.Fixed {
		// Every product is checked first: a price one product's
		// guardrails refuse must change none of them.
		ps := make([]pricing.Product, len(r.products))
		for k, i := range r.products {
			ps[k] = m.book.Product(i)
			ps[k].BasePrice = arm.Price
			if err := m.book.CheckProduct(ps[k]); err != nil {
				return ExperimentState{}, errorf(KindInvalid, "cannot promote %q: product %q: %v", name, ps[k].ID, err)
			}
		}
		for _, p := range ps {
			if _, err := m.Upsert(p, now); err != nil {
				return ExperimentState{}, err
			}
		}
	}
	m.stop(r, in.By, now)
	r.rec.Promoted = name
	m.batch.Experiments[len(m.batch.Experiments)-1] = r.rec
	return m.stateOf(r), nil
}

func (m *Machine) stoppable(id string) (*expRun, error) {
	r := m.exps.byID[id]
	if r == nil {
		return nil, errorf(KindNotFound, "unknown experiment %q", id)
	}
	if r.rec.StoppedAt != 0 {
		return nil, errorf(KindConflict, "experiment %q was stopped already", id)
	}
	return r, nil
}

// stop ends r at now and frees its products.
func (m *Machine) stop(r *expRun, by string, now int64) {
	m.keepRun(r)
	r.rec.StoppedAt, r.rec.StoppedBy = now, by
	if r.rec.End == 0 || r.rec.End > now {
		r.rec.End = max(now, r.rec.Start)
	}
	for _, i := range r.products {
		if m.experimentOf(i) == r {
			m.exps.byProduct[i] = nil
			m.exps.inExp--
		}
	}
	m.batch.Experiments = append(m.batch.Experiments, r.rec)
	m.exps.changed = true
}

// stateOf is r with its committed totals (what the round added is not
// committed yet).
func (m *Machine) stateOf(r *expRun) ExperimentState {
	return ExperimentState{Record: r.rec, Arms: slices.Clone(r.arms)}
}

// Experiments returns every experiment kept, oldest first; id "" for all,
// else the one (KindNotFound if unknown).
func (m *Machine) Experiments(id string) ([]ExperimentState, error) {
	if id != "" {
		r := m.exps.byID[id]
		if r == nil {
			return nil, errorf(KindNotFound, "unknown experiment %q", id)
		}
		return []ExperimentState{m.stateOf(r)}, nil
	}
	out := make([]ExperimentState, len(m.exps.runs))
	for k, r := range m.exps.runs {
		out[k] = m.stateOf(r)
	}
	return out, nil
}

// Serving is what GET /price needs to price a shopper in an experiment:
// immutable, shared by the HTTP handlers, replaced whole when experiments
// or the prices they show change (Machine.TakeServing).
type Serving struct {
	byProduct map[string]*servedExp
}

type servedExp struct {
	id    string
	start int64
	end   int64
	split experiment.Split
	asg   *experiment.Assigner
	arms  []servedArm
	// prices are the arms' prices for this product; NaN for a live arm
	// (the product's current price, which the caller has).
	prices []float64
}

type servedArm struct {
	name string
	// fields is `,"experiment":"<id>","arm":"<name>"`, JSON-encoded once,
	// for an answer that adds it to the product's price JSON.
	fields []byte
}

// Assignment is a shopper's arm for a product.
type Assignment struct {
	Experiment string
	Arm        string
	// Price is the arm's price, or NaN for a live arm: the product's
	// current price.
	Price float64
	// Fields are the experiment's and arm's JSON object members,
	// `,"experiment":"…","arm":"…"`, ready to append; shared, read-only.
	Fields []byte
}

// Assign returns the shopper's assignment for a product at now, if the
// product is in a running experiment and the visit is in it. Safe for
// concurrent use; a nil Serving has no experiments.
func (s *Serving) Assign(productID, shopper string, now int64) (Assignment, bool) {
	if s == nil {
		return Assignment{}, false
	}
	e := s.byProduct[productID]
	if e == nil || now < e.start || (e.end != 0 && now >= e.end) {
		return Assignment{}, false
	}
	a := e.asg.Arm(shopper, productID)
	if a < 0 {
		return Assignment{}, false
	}
	return Assignment{Experiment: e.id, Arm: e.arms[a].name, Price: e.prices[a], Fields: e.arms[a].fields}, true
}

// TakeServing returns, when experiments or their prices may have changed
// since the last call, a new Serving to publish (and true).
func (m *Machine) TakeServing() (*Serving, bool) {
	if !m.exps.changed {
		return nil, false
	}
	m.exps.changed = false
	s := &Serving{byProduct: map[string]*servedExp{}}
	for i, r := range m.servedProducts() {
		e := &servedExp{id: r.rec.ID, start: r.rec.Start, end: r.rec.End, split: r.rec.Split, asg: r.asg,
			arms: make([]servedArm, len(r.rec.Arms)), prices: make([]float64, len(r.rec.Arms))}
		for a, arm := range r.rec.Arms {
			id, _ := json.Marshal(r.rec.ID)
			name, _ := json.Marshal(arm.Name)
			e.arms[a] = servedArm{name: arm.Name,
				fields: append(append(append([]byte(`,"experiment":`), id...), `,"arm":`...), name...)}
			switch arm.Kind {
			case experiment.Live:
				e.prices[a] = math.NaN()
			default:
				e.prices[a] = m.armPrice(r, a, i)
			}
		}
		s.byProduct[m.book.Product(i).ID] = e
	}
	return s, true
}

// servedProducts yields each product in an experiment not stopped, with
// it, going through the experiments rather than the catalog.
func (m *Machine) servedProducts() func(yield func(int, *expRun) bool) {
	return func(yield func(int, *expRun) bool) {
		for _, r := range m.exps.runs {
			for _, i := range r.products {
				if m.experimentOf(i) == r && !yield(i, r) {
					return
				}
			}
		}
	}
}

// catalogChanged notes that product i's list price may have changed,
// which a control arm shows.
func (m *Machine) catalogChanged(i int) {
	if m.experimentOf(i) != nil {
		m.exps.changed = true
	}
}
