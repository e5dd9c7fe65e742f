package sqlite

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/engine"
)

// TestPruneSeenDoesNotStallCommits prunes a minute of ids at 30,000
// events/s (1.8M rows) while another goroutine commits, as serve's writer
// does: every commit must get through within a step of the prune, not
// wait for all of it, and the prune must forget exactly the old ids.
func TestPruneSeenDoesNotStallCommits(t *testing.T) {
	// The size; the race detector makes SQLite ten times slower,
	// and the test proves the same with fewer rows there.
	old := 1_800_000
	if testing.Short() || raceEnabled {
		old = 30_000
	}
	s := openTest(t, filepath.Join(t.TempDir(), "prune.db"))
	ctx := context.Background()
	const per = 60_000
	for lo := 0; lo < old; lo += per {
		b := &engine.Batch{}
		for i := lo; i < min(lo+per, old); i++ {
			b.Seen = append(b.Seen, engine.SeenID{Hash: uint64(i) * 0x9e3779b97f4a7c15, At: int64(i)})
		}
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	cutoff := int64(old)
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- s.PruneSeen(ctx, cutoff, 0) }()
	var lat []time.Duration
	next := cutoff
	for pruning := true; pruning; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			pruning = false
		default:
		}
		b := &engine.Batch{}
		for range 100 {
			b.Seen = append(b.Seen, engine.SeenID{Hash: uint64(next), At: next})
			next++
		}
		t0 := time.Now()
		if err := s.Commit(ctx, b); err != nil {
			t.Fatal(err)
		}
		lat = append(lat, time.Since(t0))
	}
	took := time.Since(start)
	var left, young int
	if err := s.r.QueryRowContext(ctx, "SELECT count(*), count(*) FILTER (WHERE seen_at >= ?) FROM seen_hashes", cutoff).Scan(&left, &young); err != nil {
		t.Fatal(err)
	}
	if left != young || young != int(next-cutoff) {
		t.Errorf("after the prune: %d rows, %d of them at or after the cut-off; want only the %d committed since", left, young, next-cutoff)
	}
	// By count, in several steps too: the newest 1,000 stay.
	if err := s.PruneSeen(ctx, 0, 1000); err != nil {
		t.Fatal(err)
	}
	var kept, oldest int64
	if err := s.r.QueryRowContext(ctx, "SELECT count(*), min(seen_at) FROM seen_hashes").Scan(&kept, &oldest); err != nil {
		t.Fatal(err)
	}
	if kept != 1000 || oldest != next-1000 {
		t.Errorf("keeping 1,000 of %d: %d rows left, the oldest at %d; want 1000 from %d", next-cutoff, kept, oldest, next-1000)
	}
	slices.Sort(lat)
	worst, p99 := lat[len(lat)-1], lat[len(lat)*99/100]
	t.Logf("pruned %d rows in %v; %d commits meanwhile: p50 %v, p99 %v, max %v", old, took, len(lat), lat[len(lat)/2], p99, worst)
	// One statement for all the rows held every commit for the whole
	// prune (5 commits got through a 0.56 s prune of 1.8M rows): commits
	// interleaving with the steps, far more of them than steps could
	// explain if each waited for the rest of the prune, is the behaviour.
	// How long each waited is a measurement, not an assertion of a unit
	// test (docs/BENCHMARKS.md has it: p99 5-10 ms).
	steps := old / 1024
	if len(lat) < steps/4 {
		t.Errorf("only %d commits during a prune of %d rows (%d steps) that took %v: commits waited for it", len(lat), old, steps, took)
	}
}
