package live

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// flakyReader stands in for Redis: it answers "redis" or fails, and counts
// the calls it gets.
type flakyReader struct {
	down  atomic.Bool
	calls atomic.Int64
}

func (f *flakyReader) Price(context.Context, string) ([]byte, bool, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return nil, false, errors.New("connection refused")
	}
	return []byte("redis"), true, nil
}

func (f *flakyReader) Lookup(_ context.Context, id string) (Price, bool, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return Price{}, false, errors.New("connection refused")
	}
	return Price{ProductID: id, Source: pricing.SourceOverride}, true, nil
}

func (f *flakyReader) AppendPage(_ context.Context, dst []byte, _ Page) ([]byte, int, string, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return nil, 0, "", errors.New("connection refused")
	}
	return append(dst, "redis"...), 1, "", nil
}

func (f *flakyReader) SnapshotPage(_ context.Context, _ string, _ int) ([]Price, string, error) {
	f.calls.Add(1)
	if f.down.Load() {
		return nil, "", errors.New("connection refused")
	}
	return []Price{{ProductID: "redis"}}, "", nil
}

func (f *flakyReader) SnapshotOf(_ context.Context, _ []string) ([]Price, error) {
	ps, _, err := f.SnapshotPage(context.Background(), "", 1)
	return ps, err
}

func TestFallbackAnswersFromTheViewWhileThePrimaryFails(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		primary := &flakyReader{}
		view := New(HubConfig{})
		view.Publish([]Price{{ProductID: "PA", Price: 314, Source: pricing.SourceDynamic, Version: 1}})
		f := NewFallback(primary, view, slog.New(slog.DiscardHandler))
		ctx := context.Background()

		if b, ok, err := f.Price(ctx, "PA"); err != nil || !ok || string(b) != "redis" {
			t.Fatalf("healthy primary: %q %v %v", b, ok, err)
		}
		primary.down.Store(true)
		b, ok, err := f.Price(ctx, "PA")
		want, _ := view.Price("PA")
		if err != nil || !ok || string(b) != string(want) {
			t.Fatalf("primary down: %q %v %v, want the view's %q", b, ok, err, want)
		}
		// Within retryEvery the primary is not asked again: an outage costs
		// requests a map lookup, not a timeout each.
		calls := primary.calls.Load()
		for range 100 {
			if _, _, err := f.Price(ctx, "PA"); err != nil {
				t.Fatal(err)
			}
		}
		if p, ok, err := f.Lookup(ctx, "PA"); err != nil || !ok || p.Source != pricing.SourceDynamic || p.Price != 314 {
			t.Fatalf("Lookup while down: %+v %v %v, want the view's", p, ok, err)
		}
		if _, ok, err := f.Lookup(ctx, "NOPE"); err != nil || ok {
			t.Fatalf("Lookup of an unknown product while down: %v %v", ok, err)
		}
		if all, err := AppendAll(ctx, f, nil); err != nil || string(all) != string(view.AppendAll(nil)) {
			t.Fatalf("AppendAll while down: %q %v", all, err)
		}
		if ps, next, err := f.SnapshotPage(ctx, "", 10); err != nil || len(ps) != 1 || ps[0].ProductID != "PA" || next != "" {
			t.Fatalf("SnapshotPage while down: %v %q %v, want the view's PA", ps, next, err)
		}
		if ps, err := f.SnapshotOf(ctx, []string{"PA", "NOPE"}); err != nil || len(ps) != 1 || ps[0].ProductID != "PA" {
			t.Fatalf("SnapshotOf while down: %v %v, want the view's PA", ps, err)
		}
		if n := primary.calls.Load() - calls; n != 0 {
			t.Fatalf("primary asked %d times within retryEvery of a failure, want 0", n)
		}
		primary.down.Store(false)
		time.Sleep(retryEvery)
		if b, _, err := f.Price(ctx, "PA"); err != nil || string(b) != "redis" {
			t.Fatalf("after retryEvery with the primary back: %q %v, want the primary's answer", b, err)
		}
	})
}
