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
