package pricing

import (
	"errors"
	"fmt"
	"math"
	"time"
)

// Source says where a published price came from.
type Source uint8

// Price sources, as named on the wire.
const (
	SourceBase Source = iota
	SourceDynamic
	SourceOverride
)

func (s Source) String() string {
	switch s {
	case SourceDynamic:
		return "dynamic"
	case SourceOverride:
		return "override"
	}
	return "base"
}

// ParseSource is the inverse of Source.String.
func ParseSource(s string) (Source, bool) {
	switch s {
	case "base":
		return SourceBase, true
	case "dynamic":
		return SourceDynamic, true
	case "override":
		return SourceOverride, true
	}
	return 0, false
}

// Override is an operator's fixed price. It beats strategy and guardrails.
type Override struct {
	Active bool    `json:"active"`
	Price  float64 `json:"price"`
	Reason string  `json:"reason"`
	// By is the name of the API key that set it.
	By      string `json:"by"`
	Since   int64  `json:"since"`   // unix ns
	Expires int64  `json:"expires"` // unix ns; 0 = never
}

// State is everything the engine knows about one product. It is what the
// engine persists so that a restart resumes exactly.
type State struct {
	Demand Demand `json:"demand"`
	// Price is the published price and Source where it came from.
	Price  float64 `json:"price"`
	Source Source  `json:"source"`
	// Version increases by one with every published change.
	Version uint64 `json:"version"`
	// ChangedAt is when Price took effect, unix ns.
	ChangedAt int64 `json:"changed_at"`
	// DynDemand is the demand figure the strategy last priced on.
	DynDemand float64 `json:"dyn_demand"`
	// Trace is how the last dynamic price was reached; Trace.Final is the
	// dynamic price that applies whenever no override is active.
	Trace    Trace    `json:"trace"`
	Override Override `json:"override"`
	Low      Lowest   `json:"low"`
	// Lowest30 caches Low's answer as of the last update or tick.
	Lowest30 float64 `json:"lowest_30d"`
	// Learn is what a learning strategy (Learner) knows about the
	// product; nil for the others.
	Learn *Learning `json:"learn,omitempty"`
	// Market holds the stock and competitor prices signalled for the
	// product; nil until the first signal.
	Market *Signals `json:"market,omitempty"`
	// Brake is the price-velocity breaker's window (Limits); zero while
	// the breaker is off.
	Brake Brake `json:"brake,omitzero"`
	// Tally counts the shoppers and sales of the hour so far, for
	// revenue analytics (see Tally).
	Tally Tally `json:"tally,omitzero"`
}

// Copy returns s with its own copy of the learning and market state, for
// callers that keep a State beyond the Book's next change (to commit it).
func (s State) Copy() State {
	s.Learn = s.Learn.clone()
	s.Market = s.Market.clone()
	return s
}

// Config configures a Book.
type Config struct {
	Weights Weights
	// HalfLife is the half-life of decayed demand.
	HalfLife time.Duration
	// DefaultStrategy is used by products that name none.
	DefaultStrategy string
	// Strategies by name; nil means the built-ins (seed and decay, K=5).
	Strategies map[string]Strategy
	// Limits are the catalog defaults of the products' Limits.
	Limits Limits
	// Learning is the catalog default of the products' learning policy
	// (a zero field: DefaultLearnPolicy's).
	Learning LearnPolicy
}

// DefaultConfig is the original's behaviour: weights 1/3/5, seed strategy.
func DefaultConfig() Config {
	return Config{Weights: DefaultWeights(), HalfLife: time.Hour, DefaultStrategy: "seed", Limits: DefaultLimits(),
		Learning: DefaultLearnPolicy()}
}

// Validate reports configuration errors.
func (c Config) Validate() error {
	for _, w := range []float64{c.Weights.View, c.Weights.Cart, c.Weights.Purchase} {
		if w < 0 || math.IsNaN(w) || math.IsInf(w, 0) {
			return errors.New("pricing: demand weights must be finite and >= 0")
		}
	}
	if c.HalfLife <= 0 {
		return errors.New("pricing: half-life must be > 0")
	}
	if err := c.Limits.validate(); err != nil {
		return fmt.Errorf("pricing: %w", err)
	}
	if err := c.Learning.Validate(); err != nil {
		return fmt.Errorf("pricing: learning: %w", err)
	}
	if _, ok := c.strategies()[c.DefaultStrategy]; !ok {
		return fmt.Errorf("pricing: unknown default strategy %q", c.DefaultStrategy)
	}
	for name, st := range c.strategies() {
		if th, ok := st.(Thompson); ok && (len(th.Ladder) == 0 || len(th.Ladder) > maxRungs || !(th.Pool > 0)) {
			return fmt.Errorf("pricing: strategy %q: want a ladder of 1 to %d rungs (got %d) and a pool > 0 (got %v)", name, maxRungs, len(th.Ladder), th.Pool)
		}
	}
	return nil
}

func (c Config) strategies() map[string]Strategy {
	if c.Strategies != nil {
		return c.Strategies
	}
	return map[string]Strategy{
		"seed":       Seed{K: 5},
		"decay":      Decay{K: 5, HalfLife: c.HalfLife},
		"thompson":   DefaultThompson(),
		"inventory":  DefaultInventory(),
		"competitor": DefaultCompetitor(),
	}
}

// ErrUnknownStrategy is returned for a product naming no known strategy.
var ErrUnknownStrategy = errors.New("unknown strategy")

// Book holds the catalog and the pricing state of every product, indexed by
// a dense product index so the hot path avoids map lookups.
type Book struct {
	cfg        Config
	strategies map[string]Strategy
	products   []Product
	strat      []Strategy
	learners   []Learner // strat[i] if it learns, else nil
	// guards are the products' parsed guardrails; products with the same
	// ones share them (see guard).
	guards []*guardrails
	shared map[guardrails]*guardrails
	states []State
	index  map[string]int
	// trips counts the breakers tripped since Tripped, and tripped names
	// the first of them.
	trips   int
	tripped []int
}

// NewBook returns an empty book.
func NewBook(cfg Config) (*Book, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Book{cfg: cfg, strategies: cfg.strategies(), index: map[string]int{}}, nil
}

// Load fills an empty book with products and their states, taking both
// lists as its own tables (the caller must not use them after): where
// stated[k], states[k] is products[k]'s persisted state, as Restore puts
// it back; the other products are priced from scratch, as Upsert prices a
// new one. states and stated are as long as products, or both empty when
// no product has a state. It returns the indexes of the products that had
// none. A catalog of a million products is loaded without a copy of its
// states or a lookup by id.
func (b *Book) Load(products []Product, states []State, stated []bool, now int64) (unstated []int, err error) {
	if len(b.products) > 0 {
		return nil, errors.New("loading into a book that has products")
	}
	n := len(products)
	if len(states) != len(stated) || (len(states) != 0 && len(states) != n) {
		return nil, fmt.Errorf("%d products with %d states and %d flags", n, len(states), len(stated))
	}
	if len(states) == 0 {
		states, stated = make([]State, n), make([]bool, n)
	}
	if len(b.index) == 0 {
		b.index = make(map[string]int, n)
	}
	b.products, b.states = products, states
	b.strat, b.learners, b.guards = make([]Strategy, n), make([]Learner, n), make([]*guardrails, n)
	for i := range products {
		p := &products[i]
		if err := b.CheckProduct(*p); err != nil {
			b.products, b.states, b.strat, b.learners, b.guards = nil, nil, nil, nil, nil
			clear(b.index)
			return nil, fmt.Errorf("product %s: %w", p.ID, err)
		}
		if _, dup := b.index[p.ID]; dup {
			b.products, b.states, b.strat, b.learners, b.guards = nil, nil, nil, nil, nil
			clear(b.index)
			return nil, fmt.Errorf("product %s: listed twice", p.ID)
		}
		b.index[p.ID] = i
		name := p.Strategy
		if name == "" {
			name = b.cfg.DefaultStrategy
		}
		b.strat[i], b.guards[i] = b.strategies[name], b.guard(p)
		b.setLearner(i)
		if !stated[i] {
			b.reprice(i, now)
			unstated = append(unstated, i)
		}
	}
	return unstated, nil
}

// maxShared bounds the distinct guardrails a Book shares between products.
const maxShared = 4096

// guard returns p's parsed guardrails. Products whose guardrails are the
// same share one copy: most catalogs give most products the catalog's
// defaults, and 120 bytes a product are 120 MB at a million. A catalog of
// products that each have their own (a floor per product, say) gets a
// copy each once maxShared distinct ones are shared, so that the sharing
// never costs more than it saves.
func (b *Book) guard(p *Product) *guardrails {
	g := parseGuardrails(*p, &b.cfg)
	if s, ok := b.shared[g]; ok {
		return s
	}
	if b.shared == nil {
		b.shared = map[guardrails]*guardrails{}
	}
	if len(b.shared) >= maxShared {
		return &g
	}
	b.shared[g] = &g
	return &g
}

// Products returns the catalog in index order. The slice is the Book's:
// the caller must not change it, nor keep it past the next Upsert.
func (b *Book) Products() []Product { return b.products }

// Len is the number of products.
func (b *Book) Len() int { return len(b.products) }

// Index returns a product's index.
func (b *Book) Index(id string) (int, bool) {
	i, ok := b.index[id]
	return i, ok
}

// Product returns the product at index i.
func (b *Book) Product(i int) Product { return b.products[i] }

// State returns the state of product i. The pointer is owned by the Book.
func (b *Book) State(i int) *State { return &b.states[i] }

// StrategyName returns the effective strategy of product i.
func (b *Book) StrategyName(i int) string { return b.strat[i].Name() }

// CheckProduct validates p including its strategy name.
func (b *Book) CheckProduct(p Product) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if p.Strategy != "" {
		if _, ok := b.strategies[p.Strategy]; !ok {
			return fmt.Errorf("%w %q", ErrUnknownStrategy, p.Strategy)
		}
	}
	return nil
}

// Upsert adds or updates a product at now and reprices it. It returns the
// product's index and whether its published price changed.
func (b *Book) Upsert(p Product, now int64) (int, bool, error) {
	if err := b.CheckProduct(p); err != nil {
		return 0, false, err
	}
	name := p.Strategy
	if name == "" {
		name = b.cfg.DefaultStrategy
	}
	i, ok := b.index[p.ID]
	if !ok {
		i = len(b.products)
		b.index[p.ID] = i
		b.products = append(b.products, p)
		b.strat = append(b.strat, b.strategies[name])
		b.learners = append(b.learners, nil)
		b.guards = append(b.guards, b.guard(&p))
		b.states = append(b.states, State{})
	} else {
		b.products[i], b.strat[i], b.guards[i] = p, b.strategies[name], b.guard(&p)
		b.states[i].Brake = Brake{} // an operator's change: a new window from its price
	}
	b.setLearner(i)
	return i, b.reprice(i, now), nil
}

// SetBasePrice changes product i's base price without repricing it: the
// caller applies the event that carried it next, which reprices once.
// base must pass CheckPrice.
func (b *Book) SetBasePrice(i int, base float64) {
	b.products[i].BasePrice = base
}

// setLearner records whether product i's strategy learns, and gives it
// learning state if it has none.
func (b *Book) setLearner(i int) {
	l, _ := b.strat[i].(Learner)
	b.learners[i] = l
	if l != nil && b.states[i].Learn == nil {
		// Each product its own random stream, the same on every run.
		h := uint64(14695981039346656037)
		for _, c := range []byte(b.products[i].ID) {
			h = (h ^ uint64(c)) * 1099511628211
		}
		b.states[i].Learn = &Learning{Rand: h}
	}
}

// Restore puts persisted state back for product i (after Upsert).
func (b *Book) Restore(i int, s State) {
	b.states[i] = s
	b.setLearner(i)
}

// Apply adds an event's demand to product i and reprices it at now. It
// reports whether the published price changed. qty multiplies the weight.
func (b *Book) Apply(i int, t EventType, qty int32, now int64) bool {
	return b.ApplyShown(i, t, qty, 0, now)
}

// ApplyShown is Apply for an event that says which price the shopper was
// shown (0 if it does not); learning strategies credit what they learn to
// that price. A purchase takes its quantity off the known stock; a view
// counts towards the selling period's traffic.
func (b *Book) ApplyShown(i int, t EventType, qty int32, shown float64, now int64) bool {
	return b.ApplyAt(i, t, qty, shown, now, now)
}

// ApplyAt is ApplyShown for an event that happened at at (its timestamp,
// unix ns), applied at now. A learning strategy learns in event time (what
// it forgets, how often it may move the price), so that replaying the
// same events gives the same prices whenever they are processed.
func (b *Book) ApplyAt(i int, t EventType, qty int32, shown float64, at, now int64) bool {
	s := &b.states[i]
	if at <= 0 || at > now {
		// An event with no time of its own, or one from a clock ahead of
		// the caller's: a skewed client must not age what every product
		// learned, nor hold its next change back until its clock.
		at = now
	}
	charged := s.Price
	if t == Purchase && CheckPrice("price", shown) == nil {
		charged = shown
	}
	b.count(i, t, qty, charged, now)
	if l := b.learners[i]; l != nil {
		l.Observe(Input{Product: &b.products[i], State: s, Now: at, learn: &b.guards[i].learn}, t, qty, shown)
	}
	if m := s.Market; m != nil && m.StockKnown {
		b.roll(i, now)
		switch t {
		case View:
			m.Views += float64(qty)
		case Purchase:
			m.Stock = math.Max(0, m.Stock-float64(qty))
		}
	}
	w := b.cfg.Weights.of(t) * float64(qty)
	d := &s.Demand
	d.Total += w
	if now > d.At {
		d.Decayed *= decayFactor(now-d.At, b.cfg.HalfLife)
		d.At = now
	}
	d.Decayed += w
	return b.reprice(i, now)
}

// Tick re-evaluates product i at now: time-dependent strategies move,
// overrides expire, the 30-day lowest price rolls. It reports whether the
// published price changed and whether anything else visible (the lowest
// price) did.
func (b *Book) Tick(i int, now int64) (priceChanged, changed bool) {
	s := &b.states[i]
	if s.Override.Active && s.Override.Expires > 0 && now >= s.Override.Expires {
		s.Override.Active = false
		s.Brake = Brake{} // the operator's price ends: a new window from what follows
	}
	if b.reprice(i, now) {
		return true, true
	}
	if low := s.Low.lowest(s.Price, now); low != s.Lowest30 {
		s.Lowest30 = low
		return false, true
	}
	return false, false
}

// MaxOverrideReason is the longest override reason accepted, in bytes.
const MaxOverrideReason = 500

// MaxOverrideTTL is how far ahead an override may expire: ten years. Past
// 2262 a time has no nanosecond form, so an expiry must be bounded anyway.
const MaxOverrideTTL = 10 * 365 * 24 * time.Hour

// CheckOverride checks the values of an override about to be set at now
// (unix ns): price as CheckPrice says (1e-3 would publish 0.00, 1e307
// infinity); reason at most MaxOverrideReason bytes; expires, when not 0
// (never), after now and at most MaxOverrideTTL ahead.
//
// Every entry point (the HTTP API, an API replica writing to Kafka, the
// engine applying the override) runs this one check, so all accept and
// refuse the same overrides with the same messages.
func CheckOverride(price float64, reason string, expires, now int64) error {
	if err := CheckPrice("override_price", price); err != nil {
		return err
	}
	if len(reason) > MaxOverrideReason {
		return fmt.Errorf("reason is longer than %d bytes", MaxOverrideReason)
	}
	if expires != 0 && expires <= now {
		return errors.New("expires_at must be in the future")
	}
	if expires != 0 && expires-now > int64(MaxOverrideTTL) {
		return errors.New("expires_at must be at most ten years ahead")
	}
	return nil
}

// SetOverride activates an override on product i after CheckOverride.
func (b *Book) SetOverride(i int, o Override, now int64) (bool, error) {
	if err := CheckOverride(o.Price, o.Reason, o.Expires, now); err != nil {
		return false, err
	}
	o.Active = true
	o.Price = RoundCents(o.Price)
	b.states[i].Override = o
	b.states[i].Brake = Brake{}
	return b.reprice(i, now), nil
}

// ClearOverride removes product i's override, restoring its dynamic price.
// It reports whether there was one.
func (b *Book) ClearOverride(i int, now int64) (had, changed bool) {
	s := &b.states[i]
	if !s.Override.Active {
		return false, false
	}
	s.Override.Active = false
	s.Brake = Brake{} // the operator's change: a new window from its price
	return true, b.reprice(i, now)
}

// reprice recomputes product i's dynamic and published price.
func (b *Book) reprice(i int, now int64) bool {
	s := &b.states[i]
	p := &b.products[i]
	raw, dem := b.strat[i].Price(Input{Product: p, State: s, Now: now, Selling: b.selling(i, now), learn: &b.guards[i].learn})
	ref := s.Trace.Final
	if ref == 0 {
		ref = p.BasePrice
	}
	s.Trace = b.guards[i].apply(raw, ref)
	s.DynDemand = dem
	price, src := s.Trace.Final, SourceDynamic
	if s.Demand.Total == 0 && raw == p.BasePrice { // nothing moved it yet: the base price, guarded
		src = SourceBase
	}
	if s.Override.Active {
		price, src = s.Override.Price, SourceOverride
	} else if b.guards[i].movePct > 0 {
		price, src = b.brake(i, price, src, now)
	}
	if price == s.Price && src == s.Source && s.Version > 0 {
		return false
	}
	s.Low.observe(s.Price, price, now)
	s.Price, s.Source = price, src
	s.Version++
	s.ChangedAt = now
	s.Lowest30 = s.Low.lowest(price, now)
	return true
}

// Repriced is a product repriced by a catalog-wide change: its state
// changed (the strategy's trace and demand figure), and PriceChanged says
// whether its published price did too.
type Repriced struct {
	Index        int
	PriceChanged bool
}

// SetDefaultStrategy changes the catalog-wide default strategy at now and
// reprices the products that follow it, which it returns: all of their
// states changed, even where their published prices did not.
func (b *Book) SetDefaultStrategy(name string, now int64) ([]Repriced, error) {
	st, ok := b.strategies[name]
	if !ok {
		return nil, fmt.Errorf("%w %q", ErrUnknownStrategy, name)
	}
	b.cfg.DefaultStrategy = name
	var out []Repriced
	for i, p := range b.products {
		if p.Strategy == "" {
			b.strat[i] = st
			b.setLearner(i)
			b.states[i].Brake = Brake{}
			out = append(out, Repriced{Index: i, PriceChanged: b.reprice(i, now)})
		}
	}
	return out, nil
}

// DefaultStrategy is the catalog-wide default strategy's name.
func (b *Book) DefaultStrategy() string { return b.cfg.DefaultStrategy }

// Put gives product i back a product and state it had before (a copy of
// both taken before a change that is being undone), with the strategy
// the product names or the catalog default.
func (b *Book) Put(i int, p Product, s State) {
	name := p.Strategy
	if name == "" {
		name = b.cfg.DefaultStrategy
	}
	b.products[i], b.strat[i], b.guards[i] = p, b.strategies[name], b.guard(&p)
	b.states[i] = s
	b.setLearner(i)
}

// Truncate forgets every product from index n on: the products a change
// being undone created.
func (b *Book) Truncate(n int) {
	for _, p := range b.products[n:] {
		delete(b.index, p.ID)
	}
	clear(b.states[n:]) // drop their learning and market state
	b.products, b.strat, b.learners = b.products[:n], b.strat[:n], b.learners[:n]
	b.guards, b.states = b.guards[:n], b.states[:n]
}
