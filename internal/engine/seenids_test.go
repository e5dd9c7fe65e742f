package engine

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestSeenIDsActsAsOneQueue: split into small segments, the set remembers
// exactly what one first-in-first-out queue of at most max ids would,
// through adds (repeats included), evictions for room, expiry and the
// undo of the newest, and counts evictions the same; and it never holds
// more than one partly filled segment besides the oldest and the newest.
func TestSeenIDsActsAsOneQueue(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for run := range 200 {
		max := 1 + rng.IntN(40)
		s := newSeenIDs(max, rng.Uint64())
		s.seg = 1 + rng.IntN(9)
		s.window = 50
		var model []SeenID // oldest first
		var evicted, young int
		now := int64(0)
		for step := range 400 {
			now += rng.Int64N(5)
			switch r := rng.IntN(10); {
			case r < 7:
				h := uint64(rng.IntN(60))
				if !slices.ContainsFunc(model, func(x SeenID) bool { return x.Hash == h }) {
					for len(model) >= max {
						if now-model[0].At < s.window {
							young++
						}
						evicted++
						model = model[1:]
					}
					model = append(model, SeenID{Hash: h, At: now})
				}
				s.add(h, now)
			case r < 8:
				cutoff := now - rng.Int64N(60)
				for len(model) > 0 && model[0].At < cutoff {
					model = model[1:]
				}
				s.expire(cutoff)
			case r < 9:
				if len(model) > 0 {
					model = model[:len(model)-1]
					s.dropNewest()
				}
			default:
				s.reserve(rng.IntN(20))
			}
			if s.len() != len(model) {
				t.Fatalf("run %d step %d: len %d, want %d", run, step, s.len(), len(model))
			}
			for h := range uint64(60) {
				want := slices.ContainsFunc(model, func(x SeenID) bool { return x.Hash == h })
				if got := s.has(h); got != want {
					t.Fatalf("run %d step %d (seg %d, max %d): has(%d) = %v, want %v", run, step, s.seg, max, h, got, want)
				}
			}
			if s.evicted != evicted || s.evictedYoung != young {
				t.Fatalf("run %d step %d: evicted %d (young %d), want %d (%d)", run, step, s.evicted, s.evictedYoung, evicted, young)
			}
			total := 0
			for i, seg := range s.segs {
				total += seg.n
				if seg.n > s.seg || (seg.n == 0 && len(s.segs) > 1) {
					t.Fatalf("run %d step %d: segment %d of %d holds %d (seg %d)", run, step, i, len(s.segs), seg.n, s.seg)
				}
			}
			if total != s.len() {
				t.Fatalf("run %d step %d: segments hold %d, len says %d", run, step, total, s.len())
			}
		}
	}
}

// TestSeenIDsGrowsBySegments: past the first segment the set takes room a
// segment at a time, never by rebuilding what it holds.
func TestSeenIDsGrowsBySegments(t *testing.T) {
	s := newSeenIDs(10_000, 12345)
	s.seg = 1024
	for h := range uint64(5000) {
		s.add(h, int64(h))
	}
	if len(s.segs) != 5 {
		t.Fatalf("%d segments for 5000 ids of 1024 a segment, want 5", len(s.segs))
	}
	for i, seg := range s.segs[1:] {
		if len(seg.ring) != 1024 {
			t.Errorf("segment %d has a ring of %d, want 1024 at once", i+1, len(seg.ring))
		}
	}
}

// BenchmarkSeenIDs: the engine's set at the default cap, full (five
// segments of 2M): a lookup that misses probes all five.
func BenchmarkSeenIDs(b *testing.B) {
	const n = 10_000_000
	s := newSeenIDs(n, randomMultiplier())
	for i := range n {
		s.add(uint64(i)*0x9e3779b97f4a7c15+1, int64(i))
	}
	b.Run("has-miss", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			if s.has(uint64(i)*0x9e3779b97f4a7c15 + 2) {
				b.Fatal("hit")
			}
		}
	})
	b.Run("add-full", func(b *testing.B) {
		b.ReportAllocs()
		for i := range b.N {
			s.add(uint64(n+i)*0x9e3779b97f4a7c15+1, int64(n+i))
		}
	})
}
