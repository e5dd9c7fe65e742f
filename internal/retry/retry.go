// Package retry is dynaprice's one backoff loop. Every dependency that can
// be down (PostgreSQL, Redis, Kafka) is waited for the same way, at start
// and when it fails later: try, wait, try again with the wait doubled up to
// a ceiling, until it works or the caller gives up.
package retry

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Backoff is how long to wait between attempts: First after the first
// failure, doubling up to Max.
type Backoff struct {
	First, Max time.Duration
}

// Default suits a dependency that is down: the first retry is quick, and
// once it has been down a while it is asked every 5 s.
var Default = Backoff{First: 100 * time.Millisecond, Max: 5 * time.Second}

// permanent marks an error that retrying cannot fix.
type permanent struct{ err error }

func (p permanent) Error() string { return p.err.Error() }
func (p permanent) Unwrap() error { return p.err }

// Permanent wraps err so that Do returns it at once instead of retrying
// (a database that does not exist, a wrong password, a fenced writer).
func Permanent(err error) error {
	if err == nil {
		return nil
	}
	return permanent{err}
}

// IsPermanent reports whether err was marked with Permanent.
func IsPermanent(err error) bool {
	var p permanent
	return errors.As(err, &p)
}

// Do calls f until it returns nil or a Permanent error, or ctx ends. Before
// each wait it calls failed (if not nil) with the error and the wait, so
// the caller can log and count. When ctx ends first, the error wraps both
// ctx's error and f's last one.
func Do(ctx context.Context, b Backoff, f func(context.Context) error, failed func(err error, wait time.Duration)) error {
	_, err := Value(ctx, b, func(ctx context.Context) (struct{}, error) { return struct{}{}, f(ctx) }, failed)
	return err
}

// Value is Do for a function that returns a value.
func Value[T any](ctx context.Context, b Backoff, f func(context.Context) (T, error), failed func(err error, wait time.Duration)) (T, error) {
	if b.First <= 0 {
		b.First = Default.First
	}
	if b.Max < b.First {
		b.Max = b.First
	}
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for wait := b.First; ; wait = min(2*wait, b.Max) {
		v, err := f(ctx)
		if err == nil || IsPermanent(err) {
			return v, err
		}
		if ctx.Err() != nil {
			return v, fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		}
		if failed != nil {
			failed(err, wait)
		}
		if timer == nil {
			timer = time.NewTimer(wait)
		} else {
			timer.Reset(wait)
		}
		select {
		case <-ctx.Done():
			return v, fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-timer.C:
		}
	}
}

// Sleep waits for d, or until ctx ends, when it returns ctx's error: the
// pause between the steps of a background job that must stop with its
// context.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
