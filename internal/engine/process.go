package engine

import (
	"context"
	"fmt"
	"time"
)

// process applies pending requests to the book, commits the result in one
// transaction, then publishes and answers. If the commit fails, every request
// of the batch gets an error and the book is reloaded from the store, so
// memory never runs ahead of what is durable.
func (e *Engine) process(ctx context.Context, pending []*request) error {
	now := e.now()
	m := e.m
	m.Begin()
	events := 0
	for _, r := range pending {
		switch r.kind {
		case reqEvents:
			events += len(r.events)
			m.ApplyEvents(r.events, now, &r.result)
		case reqSetOverride:
			r.err = m.SetOverride(r.override, now)
		case reqClearOverride:
			r.err = m.ClearOverride(r.override, now)
		case reqUpsert:
			r.created, r.err = m.Upsert(r.product, now)
		case reqImport:
			r.err = m.Import(r.products, r.defStrategy, now)
		case reqProducts:
			r.listed = m.Products()
		case reqExplain:
			r.explanation, r.err = m.Explain(r.override.ProductID)
		case reqTick:
			m.Tick(now)
		}
	}
	b, changes := m.Seal()
	met := e.cfg.Metrics
	if !b.Empty() {
		start := time.Now()
		// Shutdown must not abort a commit: its requests are already taken.
		if err := e.store.Commit(context.WithoutCancel(ctx), b); err != nil {
			met.CommitErrors.Inc()
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
		met.Commits.Inc()
		met.CommitTime.Observe(time.Since(start).Seconds())
		met.BatchEvents.Observe(float64(events))
		met.PriceChanges.Add(float64(len(b.History)))
	}
	if len(changes) > 0 {
		e.pub.Publish(changes)
	}
	for _, r := range pending {
		if r.kind == reqEvents {
			met.Applied.Add(float64(r.result.Accepted - r.result.Duplicates))
			met.Duplicates.Add(float64(r.result.Duplicates))
			met.Rejected.Add(float64(len(r.result.Rejects)))
		}
		if r.done != nil {
			close(r.done)
		}
	}
	return nil
}

func (e *Engine) pruneSeen(ctx context.Context) {
	cutoff := e.now() - int64(e.cfg.DedupWindow)
	e.m.ForgetSeen(cutoff)
	if err := e.store.PruneSeen(ctx, cutoff, e.cfg.DedupMax); err != nil {
		e.cfg.Logger.Warn("pruning remembered event ids failed", "err", err)
	}
}
