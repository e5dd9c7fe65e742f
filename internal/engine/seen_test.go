package engine

import (
	"math/rand/v2"
	"runtime"
	"strconv"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// seenModel is the reference a seenSet must agree with: a plain list,
// oldest first, searched linearly.
type seenModel struct {
	max, window int64
	ids         []SeenID
	evicted     int
}

func (m *seenModel) has(h uint64) bool {
	for _, e := range m.ids {
		if e.Hash == h {
			return true
		}
	}
	return false
}

func (m *seenModel) add(h uint64, at int64) {
	if m.has(h) {
		return
	}
	for int64(len(m.ids)) >= m.max {
		if at-m.ids[0].At < m.window {
			m.evicted++
		}
		m.ids = m.ids[1:]
	}
	m.ids = append(m.ids, SeenID{Hash: h, At: at})
}

func (m *seenModel) expire(cutoff int64) {
	for len(m.ids) > 0 && m.ids[0].At < cutoff {
		m.ids = m.ids[1:]
	}
}

// checkSeen checks s's structure against m: the same ids in the same
// order, each found through the index, and nothing else in the index.
func checkSeen(t *testing.T, s *seenSet, m *seenModel) {
	t.Helper()
	if s.len() != len(m.ids) {
		t.Fatalf("set holds %d ids, model %d", s.len(), len(m.ids))
	}
	if s.evictedYoung != m.evicted {
		t.Fatalf("set counted %d evictions in the window, model %d", s.evictedYoung, m.evicted)
	}
	for k, want := range m.ids {
		pos := (s.head + k) % len(s.ring)
		if got := s.ring[pos]; got != want {
			t.Fatalf("ring entry %d = %+v, model %+v", k, got, want)
		}
		if i, ok := s.find(want.Hash); !ok || s.index[i] != uint32(pos+1) {
			t.Fatalf("entry %d (%+v) not found through the index", k, want)
		}
	}
	used := 0
	for _, p := range s.index {
		if p != 0 {
			used++
		}
	}
	if used != s.len() {
		t.Fatalf("index has %d slots in use for %d ids", used, s.len())
	}
	if s.len() > 0 && 2*len(s.ring) > len(s.index) {
		t.Fatalf("index of %d slots for a ring of %d: more than half full", len(s.index), len(s.ring))
	}
}

// TestSeenSetAgainstModel applies random adds (with repeats), lookups,
// expiries and evictions to a seenSet and to the reference model. One run
// uses random hashes and a random multiplier; the other a multiplier of 1
// and hashes whose top bits (their slot) take four values, so that runs
// are long and wrap around the end of the index, which is where
// backward-shift deletion is easiest to get wrong.
func TestSeenSetAgainstModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		mult uint64
		hash func(r *rand.Rand) uint64
	}{
		{"random", 0, func(r *rand.Rand) uint64 { return r.Uint64() }},
		{"clustered", 1, func(r *rand.Rand) uint64 { return uint64(r.IntN(4))<<62 | r.Uint64()>>20 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, 2))
			for round := range 30 {
				max := []int{1, 7, 100, 1500, 5000}[round%5]
				window := int64(r.IntN(200) + 1)
				mult := tc.mult
				if mult == 0 {
					mult = r.Uint64()
				}
				s := newSeenSet(max, mult)
				s.window = window
				m := &seenModel{max: int64(max), window: window}
				var pool []uint64
				at := int64(0)
				for step := range 20_000 {
					switch op := r.IntN(100); {
					case op < 60:
						var h uint64
						if len(pool) > 0 && r.IntN(4) == 0 {
							h = pool[r.IntN(len(pool))] // a repeat, perhaps forgotten already
						} else {
							h = tc.hash(r)
							pool = append(pool, h)
						}
						at += int64(r.IntN(3))
						s.add(h, at)
						m.add(h, at)
					case op < 95:
						h := tc.hash(r)
						if len(pool) > 0 && r.IntN(2) == 0 {
							h = pool[r.IntN(len(pool))]
						}
						if got, want := s.has(h), m.has(h); got != want {
							t.Fatalf("round %d step %d: has(%#x) = %v, model %v", round, step, h, got, want)
						}
					case op < 99:
						cutoff := at - int64(r.IntN(300))
						s.expire(cutoff)
						m.expire(cutoff)
					default:
						checkSeen(t, s, m)
					}
				}
				checkSeen(t, s, m)
				// Expiring everything gives the memory back.
				s.expire(at + 1)
				m.expire(at + 1)
				checkSeen(t, s, m)
				if len(s.ring) > minSeenCap {
					t.Fatalf("round %d: an empty set keeps a ring of %d", round, len(s.ring))
				}
			}
		})
	}
}

// TestSeenSetSizedByContent: memory follows the ids held, not the cap.
func TestSeenSetSizedByContent(t *testing.T) {
	s := newSeenSet(MaxDedupIDs, randomMultiplier())
	if len(s.ring) != 0 || len(s.index) != 0 {
		t.Fatalf("an empty set allocated a ring of %d and an index of %d", len(s.ring), len(s.index))
	}
	for i := range 100_000 {
		s.add(uint64(i)*0x9e3779b97f4a7c15, int64(i))
	}
	if c := len(s.ring); c < 100_000 || c > 200_000 {
		t.Errorf("100,000 ids in a ring of %d", c)
	}
	s.expire(99_000)
	if c := len(s.ring); c > 4*1000 {
		t.Errorf("after expiry, 1,000 ids in a ring of %d", c)
	}
}

// TestLoadKeepsEarliest: an id a store returns twice (it may) is
// remembered with its earliest time, so it expires no later than its
// first application says.
func TestLoadKeepsEarliest(t *testing.T) {
	s := newSeenSet(10, randomMultiplier())
	s.add(7, 10)
	s.add(7, 20)
	s.add(8, 21)
	s.expire(15)
	if s.has(7) || !s.has(8) {
		t.Errorf("after expiring before 15: has(7) = %v, has(8) = %v; want false, true", s.has(7), s.has(8))
	}
}

// floodIDs returns n event ids whose hashes agree with want in the bits
// of mask, found by brute force, as an attacker would.
func floodIDs(n int, mask, want uint64) []uint64 {
	var hs []uint64
	buf := []byte("flood-")
	for i := uint64(0); len(hs) < n; i++ {
		b := strconv.AppendUint(buf, i, 36)
		if h := xxhash.Sum64(b); h&mask == want&mask {
			hs = append(hs, h)
		}
	}
	return hs
}

// TestSeenSetResistsFlooding: ids chosen so that their hashes share their
// low bits (or their top bits), which would all land in one slot of an
// index addressed by those bits, still spread over the index: no lookup
// walks a long chain. With the low or top 13 bits as the slot, each of
// these floods would be a single chain of 600.
func TestSeenSetResistsFlooding(t *testing.T) {
	const n, bitsShared = 600, 13
	low := uint64(1)<<bitsShared - 1
	for name, mask := range map[string]uint64{"low bits": low, "top bits": low << (64 - bitsShared)} {
		t.Run(name, func(t *testing.T) {
			hs := floodIDs(n, mask, 0x5555_5555_5555_5555)
			s := newSeenSet(1_000_000, randomMultiplier())
			for i, h := range hs {
				s.add(h, int64(i))
			}
			if len(s.index) > 1<<bitsShared {
				t.Fatalf("index of %d slots: the flood's shared bits would not cover it", len(s.index))
			}
			longest, total := 0, 0
			for _, h := range hs {
				i, ok := s.find(h)
				if !ok {
					t.Fatalf("flooded id %#x not found", h)
				}
				probes := (i-s.slot(h))&(len(s.index)-1) + 1
				longest, total = max(longest, probes), total+probes
			}
			// At most a third full, random placement gives chains of a few
			// slots; 32 leaves a wide margin yet is far below n.
			if longest > 32 || total > 3*n {
				t.Errorf("longest probe %d, mean %.1f: the flood clusters", longest, float64(total)/n)
			}
		})
	}
}

// BenchmarkSeenSet measures a lookup and an insertion per id in a set of
// 1M ids, and the memory per id remembered (bytes/id, measured from the
// heap before and after filling the set).
func BenchmarkSeenSet(b *testing.B) {
	const n = 1_000_000
	fill := func(s *seenSet) {
		for i := range n {
			s.add(uint64(i)*0x9e3779b97f4a7c15+1, int64(i))
		}
	}
	b.Run("has-hit", func(b *testing.B) {
		s := newSeenSet(n, randomMultiplier())
		fill(s)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if !s.has(uint64(i%n)*0x9e3779b97f4a7c15 + 1) {
				b.Fatal("miss")
			}
		}
	})
	b.Run("has-miss", func(b *testing.B) {
		s := newSeenSet(n, randomMultiplier())
		fill(s)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			if s.has(uint64(i)*0x9e3779b97f4a7c15 + 2) {
				b.Fatal("hit")
			}
		}
	})
	// add at the cap: every insertion evicts the oldest id.
	b.Run("add-full", func(b *testing.B) {
		s := newSeenSet(n, randomMultiplier())
		fill(s)
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			s.add(uint64(n+i)*0x9e3779b97f4a7c15+1, int64(n+i))
		}
	})
	// The engine's path for a new event id: hash, lookup, insertion.
	b.Run("hash-has-add-uuid", func(b *testing.B) {
		s := newSeenSet(n, randomMultiplier())
		ids := make([]string, 4096)
		for i := range ids {
			ids[i] = "550e8400-e29b-41d4-a716-" + strconv.FormatUint(uint64(446655440000+i), 10)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := range b.N {
			h := EventHash(ids[i%len(ids)]) + uint64(i/len(ids)) // a new id each time
			if !s.has(h) {
				s.add(h, int64(i))
			}
		}
	})
	for _, size := range []int{1_000_000, 10_000_000} {
		b.Run("memory-"+strconv.Itoa(size/1_000_000)+"M", func(b *testing.B) {
			for range b.N {
				var before, after runtime.MemStats
				runtime.GC()
				runtime.ReadMemStats(&before)
				s := newSeenSet(size, randomMultiplier())
				for i := range size {
					s.add(uint64(i)*0x9e3779b97f4a7c15+1, int64(i))
				}
				runtime.GC()
				runtime.ReadMemStats(&after)
				b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/float64(size), "bytes/id")
				runtime.KeepAlive(s)
			}
		})
	}
}
