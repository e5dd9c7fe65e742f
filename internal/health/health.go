// Package health watches the dependencies a role needs (PostgreSQL, Redis,
// Kafka) so that /readyz can answer from memory.
package health

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Checks are named pings, each returning nil while its dependency answers.
type Checks map[string]func(context.Context) error

// Watch keeps ready true while every dependency answers a ping, checking
// them once a second until ctx ends, and logs when one goes down or comes
// back.
// Checking in the background keeps /readyz cheap and lets the API keep
// serving the last known prices (Redis caches) while reporting not ready.
func Watch(ctx context.Context, ready *atomic.Bool, log *slog.Logger, checks Checks) {
	failing := map[string]bool{}
	for {
		ok := true
		for name, ping := range checks {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			err := ping(pctx)
			cancel()
			if ctx.Err() != nil {
				return
			}
			if err != nil {
				ok = false
				if !failing[name] {
					log.Warn("dependency is down; reporting not ready", "dependency", name, "err", err)
				}
			} else if failing[name] {
				log.Info("dependency is back", "dependency", name)
			}
			failing[name] = err != nil
		}
		ready.Store(ok)
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Second):
		}
	}
}
