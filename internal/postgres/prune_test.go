package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
)

// TestPruneSeenInSteps prunes more rows than one step deletes, by age and
// by count, with commits of the same slot going on: every commit gets
// through while the prune runs (each waits for a step, not for the
// prune), and exactly the old ids are forgotten.
func TestPruneSeenInSteps(t *testing.T) {
	db := freshDB(t)
	ctx := context.Background()
	s := db.Store(0, nil)
	if _, err := s.Load(ctx); err != nil {
		t.Fatal(err)
	}
	const old = 5*pruneStep + 17
	b := &engine.Batch{}
	for i := range old {
		b.Seen = append(b.Seen, engine.SeenID{Hash: uint64(i) * 0x9e3779b97f4a7c15, At: int64(i)})
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.PruneSeen(ctx, old, 0) }()
	next, worst := int64(old), time.Duration(0)
	for pruning := true; pruning; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			pruning = false
		default:
		}
		b := &engine.Batch{Seen: []engine.SeenID{{Hash: uint64(next), At: next}}}
		next++
		t0 := time.Now()
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		worst = max(worst, time.Since(t0))
	}
	count := func() (n, young int64) {
		t.Helper()
		if err := db.pool.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE seen_at >= $1) FROM seen_hashes WHERE slot = 0", int64(old)).Scan(&n, &young); err != nil {
			t.Fatal(err)
		}
		return n, young
	}
	if n, young := count(); n != young || young != next-old {
		t.Errorf("after pruning by age: %d rows, %d young; want only the %d committed since", n, young, next-old)
	}
	t.Logf("%d commits during the prune, the slowest %v", next-old, worst)

	// By count: add old-style volume again, keep the newest 100.
	b = &engine.Batch{}
	for i := range 3 * pruneStep {
		b.Seen = append(b.Seen, engine.SeenID{Hash: uint64(i), At: next + int64(i)})
	}
	if err := s.Commit(ctx, b); err != nil {
		t.Fatal(err)
	}
	if err := s.PruneSeen(ctx, 0, 100); err != nil {
		t.Fatal(err)
	}
	var n, oldest int64
	if err := db.pool.QueryRow(ctx, "SELECT count(*), min(seen_at) FROM seen_hashes WHERE slot = 0").Scan(&n, &oldest); err != nil {
		t.Fatal(err)
	}
	if want := next + 3*pruneStep - 100; n != 100 || oldest != want {
		t.Errorf("keeping 100: %d rows, the oldest at %d; want 100 from %d", n, oldest, want)
	}
}
