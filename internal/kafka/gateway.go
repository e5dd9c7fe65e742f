package kafka

import (
	"context"
	"fmt"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/live"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Gateway is the pricing engine as an API replica sees it in scale-out
// mode (it implements the HTTP API's engine port): changes (events,
// overrides, catalog updates) are written to Kafka for the engines to
// apply in order; reads come from the live view in Redis and the catalog
// and state in PostgreSQL. A replica holds no state of its own, so any
// number of them can run behind a load balancer.
//
// It validates what it can before writing, so a client still gets 400 or
// 404 for a bad request instead of a dead letter: unknown products (per
// the live view), invalid overrides (engine.OverrideInput.Check, as the
// engine's), invalid catalog entries. The engine validates again when it
// applies the record, because Kafka also accepts records from producers
// that bypass the API.
//
// A Gateway is safe for concurrent use if its ports are.
type Gateway struct {
	log        GatewayLog
	live       GatewayLive
	cat        GatewayCatalog
	pricing    pricing.Config
	autoCreate bool
	now        func() time.Time
	// visible bounds how long an override waits to show in the live view
	// (VisibleWait); poll is how often it looks.
	visible, poll time.Duration
}

// VisibleWait is how long a Gateway waits for an operator's override to
// show in the live view before it answers: an operator's next read (GET
// /price, DELETE /override) must see the write. Past it, the answer says
// the change is accepted but not yet applied (engine.ErrNotYetVisible).
const VisibleWait = 3 * time.Second

// GatewayLog is where a Gateway writes changes: a *Producer.
type GatewayLog interface {
	Events(ctx context.Context, evs []ingest.Event) error
	Send(ctx context.Context, r ControlRecord) error
}

var _ GatewayLog = (*Producer)(nil)

// GatewayLive is the live price view a Gateway validates with and waits
// on (Redis, or the replica's own view while Redis fails); ok is false for
// an unknown product.
type GatewayLive interface {
	Lookup(ctx context.Context, id string) (p live.Price, ok bool, err error)
}

// GatewayCatalog is the committed catalog and state (PostgreSQL).
type GatewayCatalog interface {
	Products(ctx context.Context) ([]pricing.Product, error)
	States(ctx context.Context) (map[string]pricing.State, error)
	Product(ctx context.Context, id string) (pricing.Product, pricing.State, bool, error)
	Settings(ctx context.Context) (map[string]string, error)
}

// NewGateway returns a gateway; pc must be the engines' pricing
// configuration (used to validate products and explain prices the way
// engines do), and autoCreate the engines' setting.
func NewGateway(log GatewayLog, live GatewayLive, cat GatewayCatalog, pc pricing.Config, autoCreate bool) *Gateway {
	return &Gateway{log: log, live: live, cat: cat, pricing: pc, autoCreate: autoCreate, now: time.Now,
		visible: VisibleWait, poll: 20 * time.Millisecond}
}

// unavailable reports a failing dependency: its name only reaches the
// client, the cause (which may name hosts and users) only the log.
func unavailable(what string, err error) error { return engine.Unavailable(what, err) }

// Submit writes events to Kafka and returns once Kafka has them: from
// then on they survive the loss of this replica, and the engines price
// each exactly once.
func (g *Gateway) Submit(ctx context.Context, evs []ingest.Event) (engine.SubmitResult, error) {
	var res engine.SubmitResult
	ok := evs
	if !g.autoCreate {
		known := make(map[string]bool)
		ok = make([]ingest.Event, 0, len(evs))
		for i := range evs {
			id := evs[i].ProductID
			k, seen := known[id]
			if !seen {
				_, found, err := g.live.Lookup(ctx, id)
				if err != nil {
					return res, unavailable("the live price view", err)
				}
				k, known[id] = found, found
			}
			if !k {
				res.Rejects = append(res.Rejects, ingest.Reject{Index: i, Error: fmt.Sprintf("unknown product_id %q (not in the catalog)", id)})
				continue
			}
			ok = append(ok, evs[i])
		}
	}
	if err := g.log.Events(ctx, ok); err != nil {
		return engine.SubmitResult{}, unavailable("the event log", err)
	}
	res.Accepted = len(ok)
	return res, nil
}

// SetOverride validates and writes an override for the product's engine.
func (g *Gateway) SetOverride(ctx context.Context, in engine.OverrideInput) error {
	before, found, err := g.live.Lookup(ctx, in.ProductID)
	if err != nil {
		return unavailable("the live price view", err)
	} else if !found {
		return &engine.Error{Kind: engine.KindNotFound, Msg: fmt.Sprintf("unknown product_id %q", in.ProductID)}
	}
	if err := in.Check(g.now().UnixNano()); err != nil {
		return err
	}
	rec, err := SetOverrideRecord(in)
	if err != nil {
		return &engine.Error{Kind: engine.KindInvalid, Msg: err.Error()} // unreachable after Check
	}
	if err := g.log.Send(ctx, rec); err != nil {
		return unavailable("the event log", err)
	}
	return g.waitVisible(ctx, in.ProductID, func(p live.Price) bool {
		return p.Version > before.Version && p.Source == pricing.SourceOverride
	})
}

// waitVisible waits until the live view shows what done describes, at
// most g.visible: an operator's write is visible to that operator's next
// read. It returns engine.ErrNotYetVisible if it is not by then (the change
// is in Kafka and will be applied), and nil if ctx ends first, which is
// the client's own deadline.
func (g *Gateway) waitVisible(ctx context.Context, id string, done func(live.Price) bool) error {
	return g.waitUntil(ctx, func(ctx context.Context) bool {
		p, ok, err := g.live.Lookup(ctx, id)
		return err == nil && ok && done(p)
	})
}

// waitUntil polls done as waitVisible describes.
func (g *Gateway) waitUntil(ctx context.Context, done func(context.Context) bool) error {
	deadline := time.NewTimer(g.visible)
	defer deadline.Stop()
	tick := time.NewTicker(g.poll)
	defer tick.Stop()
	for {
		if done(ctx) {
			return nil
		}
		select {
		case <-ctx.Done():
			return engine.ErrNotYetVisible
		case <-deadline.C:
			return engine.ErrNotYetVisible
		case <-tick.C:
		}
	}
}

// ClearOverride writes the removal of a product's override; KindNotFound
// if the live view shows none.
func (g *Gateway) ClearOverride(ctx context.Context, id, by string) error {
	before, found, err := g.live.Lookup(ctx, id)
	switch {
	case err != nil:
		return unavailable("the live price view", err)
	case !found:
		return &engine.Error{Kind: engine.KindNotFound, Msg: fmt.Sprintf("unknown product_id %q", id)}
	case before.Source != pricing.SourceOverride:
		return &engine.Error{Kind: engine.KindNotFound, Msg: fmt.Sprintf("product %q has no override", id)}
	}
	if err := g.log.Send(ctx, ClearOverrideRecord(id, by)); err != nil {
		return unavailable("the event log", err)
	}
	return g.waitVisible(ctx, id, func(p live.Price) bool {
		return p.Version > before.Version && p.Source != pricing.SourceOverride
	})
}

// Release writes the release of a price the price-velocity breaker holds;
// KindNotFound if the product is unknown or, as the database shows it,
// not held. It waits, as waitVisible does, until the engine has committed
// the release.
func (g *Gateway) Release(ctx context.Context, id, by string) error {
	_, st, ok, err := g.cat.Product(ctx, id)
	switch {
	case err != nil:
		return unavailable("the database", err)
	case !ok:
		return &engine.Error{Kind: engine.KindNotFound, Msg: fmt.Sprintf("unknown product_id %q", id)}
	case st.Brake.Held == 0:
		return &engine.Error{Kind: engine.KindNotFound, Msg: fmt.Sprintf("product %q is not held by the price-velocity breaker", id)}
	}
	if err := g.log.Send(ctx, ReleaseRecord(id, by)); err != nil {
		return unavailable("the event log", err)
	}
	return g.waitUntil(ctx, func(ctx context.Context) bool {
		_, now, ok, err := g.cat.Product(ctx, id)
		return err == nil && ok && now.Brake.Held != st.Brake.Held
	})
}

// UpsertProduct validates p and writes it for its engine.
func (g *Gateway) UpsertProduct(ctx context.Context, p pricing.Product) (bool, error) {
	book, err := pricing.NewBook(g.pricing)
	if err != nil {
		return false, err
	}
	if err := book.CheckProduct(p); err != nil {
		return false, &engine.Error{Kind: engine.KindInvalid, Msg: err.Error()}
	}
	rec, err := ProductRecord(p)
	if err != nil {
		return false, &engine.Error{Kind: engine.KindInvalid, Msg: err.Error()}
	}
	_, found, err := g.live.Lookup(ctx, p.ID)
	if err != nil {
		return false, unavailable("the live price view", err)
	}
	if err := g.log.Send(ctx, rec); err != nil {
		return false, unavailable("the event log", err)
	}
	return !found, nil
}

// SetDefaultStrategy writes a new catalog-wide default to every engine.
func (g *Gateway) SetDefaultStrategy(ctx context.Context, name string) error {
	pc := g.pricing
	pc.DefaultStrategy = name
	if _, err := pricing.NewBook(pc); err != nil {
		return &engine.Error{Kind: engine.KindInvalid, Msg: "default_strategy: " + err.Error()}
	}
	if err := g.log.Send(ctx, DefaultStrategyRecord(name)); err != nil {
		return unavailable("the event log", err)
	}
	return nil
}

// book returns a pricing book configured as the engines' are now.
func (g *Gateway) book(ctx context.Context) (*pricing.Book, error) {
	settings, err := g.cat.Settings(ctx)
	if err != nil {
		return nil, unavailable("the database", err)
	}
	pc := g.pricing
	if s := settings["default_strategy"]; s != "" {
		pc.DefaultStrategy = s
	}
	return pricing.NewBook(pc)
}

// Products lists the catalog with each product's committed state.
func (g *Gateway) Products(ctx context.Context) ([]engine.ProductInfo, error) {
	ps, err := g.cat.Products(ctx)
	if err != nil {
		return nil, unavailable("the database", err)
	}
	states, err := g.cat.States(ctx)
	if err != nil {
		return nil, unavailable("the database", err)
	}
	book, err := g.book(ctx)
	if err != nil {
		return nil, err
	}
	now := g.now().UnixNano()
	out := make([]engine.ProductInfo, 0, len(ps))
	for _, p := range ps {
		i, _, err := book.Upsert(p, now)
		if err != nil {
			continue // a product the engines could not have stored either
		}
		info := engine.ProductInfo{Product: p, EffectiveStrategy: book.StrategyName(i)}
		if st, ok := states[p.ID]; ok {
			info.Price, info.Source, info.Demand = st.Price, st.Source, st.DynDemand
		}
		out = append(out, info)
	}
	return out, nil
}

// Explain explains a product's committed price, with the same code the
// engine uses, from the state the engine committed.
func (g *Gateway) Explain(ctx context.Context, id string) (pricing.Explanation, error) {
	p, st, ok, err := g.cat.Product(ctx, id)
	if err != nil {
		return pricing.Explanation{}, unavailable("the database", err)
	}
	if !ok {
		return pricing.Explanation{}, &engine.Error{Kind: engine.KindNotFound, Msg: fmt.Sprintf("unknown product_id %q", id)}
	}
	book, err := g.book(ctx)
	if err != nil {
		return pricing.Explanation{}, err
	}
	i, _, err := book.Upsert(p, g.now().UnixNano())
	if err != nil {
		return pricing.Explanation{}, &engine.Error{Kind: engine.KindInvalid, Msg: err.Error()}
	}
	book.Restore(i, st)
	return book.Explain(i), nil
}
