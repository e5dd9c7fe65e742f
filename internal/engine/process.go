package engine

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

const (
	flagTouched = 1 << iota
	flagPriceChanged
)

// Longest accepted override reason.
const maxReasonLen = 500

// process applies pending requests to the book, commits the result in one
// transaction, then publishes and answers. If the commit fails, every request
// of the batch gets an error and the book is reloaded from the store, so
// memory never runs ahead of what is durable.
func (e *Engine) process(ctx context.Context, pending []*request) error {
	now := e.now()
	b := &e.batch
	b.Reset()
	e.touched, e.changes = e.touched[:0], e.changes[:0]
	events := 0
	for _, r := range pending {
		switch r.kind {
		case reqEvents:
			events += len(r.events)
			e.applyEvents(r, now)
		case reqSetOverride:
			r.err = e.setOverride(r.override, now)
		case reqClearOverride:
			r.err = e.clearOverride(r.override, now)
		case reqUpsert:
			r.created, r.err = e.upsert(r.product, now)
		case reqImport:
			r.err = e.importCatalog(r.products, r.defStrategy, now)
		case reqProducts:
			r.listed = e.listProducts()
		case reqExplain:
			i, ok := e.book.Index(r.override.ProductID)
			if !ok {
				r.err = errorf(KindNotFound, "unknown product_id %q", r.override.ProductID)
			} else {
				r.explanation = e.book.Explain(i)
			}
		case reqTick:
			e.tick(now)
		}
	}
	for _, i := range e.touched {
		b.States = append(b.States, ProductState{ID: e.book.Product(i).ID, State: *e.book.State(i)})
		e.changes = append(e.changes, e.change(i, e.dirty[i]&flagPriceChanged != 0))
		e.dirty[i] = 0
	}
	m := e.cfg.Metrics
	if !b.Empty() {
		start := time.Now()
		// Shutdown must not abort a commit: its requests are already taken.
		if err := e.store.Commit(context.WithoutCancel(ctx), b); err != nil {
			m.CommitErrors.Inc()
			e.cfg.Logger.Error("commit failed; answering the batch with errors and reloading state", "err", err, "requests", len(pending))
			for _, r := range pending {
				if r.done != nil { // ticks have no waiter
					r.err = errorf(KindUnavailable, "could not persist the change; retry later")
					close(r.done)
				}
			}
			if lerr := e.load(context.WithoutCancel(ctx)); lerr != nil {
				return fmt.Errorf("engine: reloading after failed commit: %w", lerr)
			}
			return nil
		}
		m.Commits.Inc()
		m.CommitTime.Observe(time.Since(start).Seconds())
		m.BatchEvents.Observe(float64(events))
		m.PriceChanges.Add(float64(len(b.History)))
	}
	if len(e.changes) > 0 {
		e.pub.Publish(e.changes)
	}
	for _, r := range pending {
		if r.kind == reqEvents {
			m.Applied.Add(float64(r.result.Accepted - r.result.Duplicates))
			m.Duplicates.Add(float64(r.result.Duplicates))
			m.Rejected.Add(float64(len(r.result.Rejects)))
		}
		if r.done != nil {
			close(r.done)
		}
	}
	return nil
}

// touch records that product i changed and, if its price changed, adds the
// history row.
func (e *Engine) touch(i int, priceChanged bool) {
	if e.dirty[i] == 0 {
		e.touched = append(e.touched, i)
	}
	e.dirty[i] |= flagTouched
	if priceChanged {
		e.dirty[i] |= flagPriceChanged
		s := e.book.State(i)
		e.batch.History = append(e.batch.History, HistoryRow{
			ProductID: e.book.Product(i).ID, Price: s.Price, Demand: s.DynDemand,
			Source: s.Source, At: s.ChangedAt, Version: s.Version,
		})
	}
}

func (e *Engine) applyEvents(r *request, now int64) {
	res := &r.result
	for k := range r.events {
		ev := &r.events[k]
		if ev.EventID != "" && e.seen.has(ev.EventID) {
			res.Accepted++
			res.Duplicates++
			continue
		}
		i, ok := e.book.Index(ev.ProductID)
		if !ok {
			var err error
			if i, err = e.autoCreate(ev.ProductID, ev.Price, now); err != nil {
				res.Rejects = append(res.Rejects, rejectAt(k, err.Error()))
				continue
			}
		}
		qty := ev.Quantity
		if qty <= 0 {
			qty = 1
		}
		e.touch(i, e.book.Apply(i, ev.Type, qty, now))
		if ev.EventID != "" {
			e.seen.add(ev.EventID, now)
			e.batch.Seen = append(e.batch.Seen, SeenID{ID: ev.EventID, At: now})
		}
		res.Accepted++
	}
}

func (e *Engine) autoCreate(id string, price float64, now int64) (int, error) {
	if !e.cfg.AutoCreate {
		return 0, fmt.Errorf("unknown product_id %q (not in the catalog)", id)
	}
	if !(price > 0) || math.IsInf(price, 0) {
		return 0, fmt.Errorf("unknown product_id %q and no price to create it from", id)
	}
	p := pricing.Product{ID: id, BasePrice: math.Round(price*100) / 100}
	i, _, err := e.book.Upsert(p, now)
	if err != nil {
		return 0, err
	}
	e.growDirty()
	e.batch.Products = append(e.batch.Products, p)
	return i, nil
}

func (e *Engine) growDirty() {
	for len(e.dirty) < e.book.Len() {
		e.dirty = append(e.dirty, 0)
	}
}

func (e *Engine) setOverride(in OverrideInput, now int64) error {
	i, ok := e.book.Index(in.ProductID)
	if !ok {
		return errorf(KindNotFound, "unknown product_id %q", in.ProductID)
	}
	if len(in.Reason) > maxReasonLen {
		return errorf(KindInvalid, "reason is longer than %d bytes", maxReasonLen)
	}
	var exp int64
	if !in.ExpiresAt.IsZero() {
		exp = in.ExpiresAt.UnixNano()
		if exp <= now {
			return errorf(KindInvalid, "expires_at must be in the future")
		}
	}
	o := pricing.Override{Price: in.Price, Reason: in.Reason, By: in.By, Since: now, Expires: exp}
	changed, err := e.book.SetOverride(i, o, now)
	if err != nil {
		return &Error{Kind: KindInvalid, Msg: err.Error()}
	}
	e.touch(i, changed)
	e.batch.OverridesSet = append(e.batch.OverridesSet, OverrideRecord{
		ProductID: in.ProductID, Price: e.book.State(i).Override.Price, Reason: in.Reason, By: in.By,
		CreatedAt: now, ExpiresAt: exp,
	})
	return nil
}

func (e *Engine) clearOverride(in OverrideInput, now int64) error {
	i, ok := e.book.Index(in.ProductID)
	if !ok {
		return errorf(KindNotFound, "unknown product_id %q", in.ProductID)
	}
	had, changed := e.book.ClearOverride(i, now)
	if !had {
		return errorf(KindNotFound, "product %q has no override", in.ProductID)
	}
	e.touch(i, changed)
	e.batch.OverridesEnded = append(e.batch.OverridesEnded, OverrideEnd{ProductID: in.ProductID, At: now, By: in.By, Reason: "removed"})
	return nil
}

func (e *Engine) upsert(p pricing.Product, now int64) (bool, error) {
	_, existed := e.book.Index(p.ID)
	i, changed, err := e.book.Upsert(p, now)
	if err != nil {
		return false, &Error{Kind: KindInvalid, Msg: err.Error()}
	}
	e.growDirty()
	e.batch.Products = append(e.batch.Products, p)
	e.touch(i, changed)
	return !existed, nil
}

func (e *Engine) importCatalog(ps []pricing.Product, def string, now int64) error {
	for _, p := range ps {
		if err := e.book.CheckProduct(p); err != nil {
			return &Error{Kind: KindInvalid, Msg: fmt.Sprintf("product %q: %v", p.ID, err)}
		}
	}
	if def != "" && def != e.book.DefaultStrategy() {
		changed, err := e.book.SetDefaultStrategy(def, now)
		if err != nil {
			return &Error{Kind: KindInvalid, Msg: "default_strategy: " + err.Error()}
		}
		for _, i := range changed {
			e.touch(i, true)
		}
		e.batch.Settings = map[string]string{"default_strategy": def}
	}
	for _, p := range ps {
		if _, err := e.upsert(p, now); err != nil {
			return err
		}
	}
	return nil
}

func (e *Engine) listProducts() []ProductInfo {
	out := make([]ProductInfo, e.book.Len())
	for i := range out {
		s := e.book.State(i)
		out[i] = ProductInfo{Product: e.book.Product(i), EffectiveStrategy: e.book.StrategyName(i),
			Price: s.Price, Source: s.Source, Demand: s.DynDemand}
	}
	return out
}

func (e *Engine) tick(now int64) {
	for i := 0; i < e.book.Len(); i++ {
		s := e.book.State(i)
		hadOverride := s.Override.Active
		priceChanged, changed := e.book.Tick(i, now)
		if hadOverride && !s.Override.Active {
			e.batch.OverridesEnded = append(e.batch.OverridesEnded, OverrideEnd{
				ProductID: e.book.Product(i).ID, At: now, By: "system", Reason: "expired"})
		}
		if changed {
			e.touch(i, priceChanged)
		}
	}
}

func (e *Engine) pruneSeen(ctx context.Context) {
	cutoff := e.now() - int64(e.cfg.DedupWindow)
	e.seen.expire(cutoff)
	if err := e.store.PruneSeen(ctx, cutoff, e.cfg.DedupMax); err != nil {
		e.cfg.Logger.Warn("pruning remembered event ids failed", "err", err)
	}
}

func rejectAt(i int, msg string) ingest.Reject { return ingest.Reject{Index: i, Error: msg} }
