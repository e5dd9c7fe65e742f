package health

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"
)

func TestReadinessFollowsDependenciesConditionsAndStop(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var r Readiness
		var loaded, redisDown atomic.Bool
		r.Require(loaded.Load)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		done := r.Watch(ctx, slog.New(slog.DiscardHandler), Checks{
			"redis": func(context.Context) error {
				if redisDown.Load() {
					return errors.New("connection refused")
				}
				return nil
			},
		})
		synctest.Wait()
		if r.Ready() {
			t.Fatal("ready before the condition holds")
		}
		loaded.Store(true)
		if !r.Ready() {
			t.Fatal("not ready with every dependency up and the condition holding")
		}
		redisDown.Store(true)
		time.Sleep(time.Second) // the next check
		synctest.Wait()
		if r.Ready() {
			t.Fatal("ready while a dependency is down")
		}
		redisDown.Store(false)
		time.Sleep(time.Second)
		synctest.Wait()
		if !r.Ready() {
			t.Fatal("not ready after the dependency came back")
		}
		r.Stop()
		if r.Ready() {
			t.Fatal("ready after Stop")
		}
		cancel()
		<-done
	})
}

func TestWhySaysWhy(t *testing.T) {
	var r Readiness
	var failing atomic.Bool
	r.RequireWhy(func() string {
		if failing.Load() {
			return "commits to the store keep failing"
		}
		return ""
	})
	if why := r.Why(); why != "" || !r.Ready() {
		t.Fatalf("Why = %q, Ready %v; want ready", why, r.Ready())
	}
	failing.Store(true)
	if why := r.Why(); why != "commits to the store keep failing" || r.Ready() {
		t.Fatalf("Why = %q, Ready %v; want the condition's reason", why, r.Ready())
	}
	r.Stop()
	if why := r.Why(); why != "shutting down" {
		t.Fatalf("Why after Stop = %q", why)
	}
}
