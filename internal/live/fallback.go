package live

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"
)

// PriceReader is a live price view that can fail: Redis.
type PriceReader interface {
	Price(ctx context.Context, id string) ([]byte, bool, error)
	Pager
	Snapshotter
	Lookup(ctx context.Context, id string) (Price, bool, error)
}

// NewFallback reads primary and, while it fails, backup.
func NewFallback(primary PriceReader, backup *View, log *slog.Logger) *Fallback {
	return &Fallback{primary: primary, view: backup, log: log}
}

// Fallback reads a primary price view (Redis) and, while it fails, a View
// of its own (an API replica's copy, fed by price-updates):
// an API replica keeps serving the last known prices through a Redis outage
// (and reports not ready meanwhile). Redis reads get a short deadline, and
// after a failure Redis is tried again at most once per retryEvery, so an
// outage costs requests nothing but a map lookup.
type Fallback struct {
	primary  PriceReader
	view     *View
	log      *slog.Logger
	failedAt atomic.Int64 // unix ns of the last failure, 0 when healthy
}

const (
	redisReadTimeout = 250 * time.Millisecond
	retryEvery       = time.Second
)

// usePrimary reports whether to try Redis: it is healthy, or the last
// failure is old enough to probe again.
func (f *Fallback) usePrimary() bool {
	t := f.failedAt.Load()
	return t == 0 || time.Since(time.Unix(0, t)) >= retryEvery
}

func (f *Fallback) result(err error) {
	if err == nil {
		if f.failedAt.Swap(0) != 0 {
			f.log.Info("reading live prices from Redis works again")
		}
		return
	}
	if f.failedAt.Swap(time.Now().UnixNano()) == 0 {
		f.log.Warn("reading live prices from Redis failed; answering from this replica's copy", "err", err)
	}
}

func (f *Fallback) Price(ctx context.Context, id string) ([]byte, bool, error) {
	if f.usePrimary() {
		rctx, cancel := context.WithTimeout(ctx, redisReadTimeout)
		b, ok, err := f.primary.Price(rctx, id)
		cancel()
		if ctx.Err() != nil {
			return nil, false, ctx.Err()
		}
		f.result(err)
		if err == nil {
			return b, ok, nil
		}
	}
	b, ok := f.view.Price(id)
	return b, ok, nil
}

// AppendPage appends a page of the listing from the primary or, while it
// fails, the replica's copy. Each page is read on its own, so a listing
// in catalog order paged through a Redis outage may switch order between
// pages (the copy lists products in the order it first saw them); sorted
// listings have the same order and cursors in both. An unknown or
// malformed cursor is an answer, not a failure.
func (f *Fallback) AppendPage(ctx context.Context, dst []byte, p Page) ([]byte, int, string, error) {
	if f.usePrimary() {
		rctx, cancel := context.WithTimeout(ctx, redisReadTimeout)
		b, n, next, err := f.primary.AppendPage(rctx, dst, p)
		cancel()
		if ctx.Err() != nil {
			return dst, 0, "", ctx.Err()
		}
		if errors.Is(err, ErrUnknownCursor) || errors.Is(err, ErrBadCursor) {
			f.result(nil)
			return dst, 0, "", err
		}
		f.result(err)
		if err == nil {
			return b, n, next, nil
		}
	}
	return f.view.AppendPage(ctx, dst, p)
}

// Lookup returns a product's live price (ok false: unknown product), so
// that an API replica validates writes against the primary, or its own
// copy while the primary fails, and can tell when its write is visible.
func (f *Fallback) Lookup(ctx context.Context, id string) (Price, bool, error) {
	if f.usePrimary() {
		rctx, cancel := context.WithTimeout(ctx, redisReadTimeout)
		p, ok, err := f.primary.Lookup(rctx, id)
		cancel()
		if ctx.Err() != nil {
			return Price{}, false, ctx.Err()
		}
		f.result(err)
		if err == nil {
			return p, ok, nil
		}
	}
	p, ok := f.view.Get(id)
	return p, ok, nil
}

// SnapshotPage reads a page of a WebSocket snapshot from the primary or,
// while it fails, the replica's copy (see Snapshotter). As with AppendPage,
// a snapshot read across the start or end of an outage may miss or repeat
// products, since the copy's order is its own.
func (f *Fallback) SnapshotPage(ctx context.Context, after string, limit int) ([]Price, string, error) {
	if f.usePrimary() {
		rctx, cancel := context.WithTimeout(ctx, redisReadTimeout)
		ps, next, err := f.primary.SnapshotPage(rctx, after, limit)
		cancel()
		if ctx.Err() != nil {
			return nil, "", ctx.Err()
		}
		f.result(err)
		if err == nil {
			return ps, next, nil
		}
	}
	ps, next, err := f.view.SnapshotPage(ctx, after, limit)
	if errors.Is(err, ErrUnknownCursor) {
		// A cursor of the primary's order that the copy has not seen yet:
		// the copy's snapshot from the top, rather than none.
		return f.view.SnapshotPage(ctx, "", limit)
	}
	return ps, next, err
}

// SnapshotOf reads the chosen products of a WebSocket snapshot from the
// primary or, while it fails, the replica's copy.
func (f *Fallback) SnapshotOf(ctx context.Context, ids []string) ([]Price, error) {
	if f.usePrimary() {
		rctx, cancel := context.WithTimeout(ctx, redisReadTimeout)
		ps, err := f.primary.SnapshotOf(rctx, ids)
		cancel()
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		f.result(err)
		if err == nil {
			return ps, nil
		}
	}
	return f.view.SnapshotOf(ctx, ids)
}
