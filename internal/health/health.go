// Package health answers "is this role ready?" from memory: it watches the
// dependencies a role needs (PostgreSQL, Redis, Kafka) in the background,
// and combines them with the role's own conditions, so /readyz is cheap
// and a role can keep serving what it knows while it reports not ready.
package health

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"
)

// Checks are named pings, each returning nil while its dependency answers.
type Checks map[string]func(context.Context) error

// Readiness is a role's readiness: not stopping, every dependency of its
// Watch answering, and every condition added with Require holding. The
// zero value is ready (no dependencies, no conditions). Require and Watch
// are called before the role serves; Ready may then be called anywhere.
type Readiness struct {
	stopping atomic.Bool
	depsDown atomic.Bool
	conds    []func() string
}

// Require adds a condition, such as "the engine has loaded its state".
func (r *Readiness) Require(cond func() bool) {
	r.conds = append(r.conds, func() string {
		if cond() {
			return ""
		}
		return "not ready"
	})
}

// RequireWhy adds a condition that says why it does not hold: cond
// returns "" while it does, else a reason safe to show a client, which
// /readyz answers with ("not ready: " + reason).
func (r *Readiness) RequireWhy(cond func() string) { r.conds = append(r.conds, cond) }

// Stop makes Ready false from now on: the role is shutting down, whatever
// its dependencies say.
func (r *Readiness) Stop() { r.stopping.Store(true) }

// Ready reports whether the role should get traffic.
func (r *Readiness) Ready() bool { return r.Why() == "" }

// Why returns "" if the role is ready, else why not: "shutting down",
// "a dependency is down", or the first failing condition's reason.
func (r *Readiness) Why() string {
	switch {
	case r.stopping.Load():
		return "shutting down"
	case r.depsDown.Load():
		return "a dependency is down"
	}
	for _, c := range r.conds {
		if why := c(); why != "" {
			return why
		}
	}
	return ""
}

// Watch starts pinging every check once a second until ctx ends, and
// returns at once: the role is not ready until all of them answer, nor
// while any fails. It logs when a dependency goes down or comes back. The
// returned channel is closed when watching stopped.
func (r *Readiness) Watch(ctx context.Context, log *slog.Logger, checks Checks) <-chan struct{} {
	r.depsDown.Store(true)
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.watch(ctx, log, checks)
	}()
	return done
}

func (r *Readiness) watch(ctx context.Context, log *slog.Logger, checks Checks) {
	failing := map[string]bool{}
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
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
		r.depsDown.Store(!ok)
		t.Reset(time.Second)
	}
}
