package engine

import (
	"math/bits"
	"math/rand/v2"

	"github.com/cespare/xxhash/v2"
)

// EventHash is the 64-bit hash by which an event id is remembered, in
// memory and in the stores: xxHash64 of the id's bytes. Keeping the hash
// rather than the id makes every remembered id the same small size
// whatever the client sent (up to 128 bytes), which is what lets the set
// be sized by the dedup window rather than by a count chosen to fit a
// budget. Two different ids that hash alike make the second a false
// duplicate; with n ids remembered the chance that a new id does is about
// n/2^64 (1e7 ids: about 5e-13 per event; at 10,000 events/s, with the
// set full, one false duplicate in about six years, an event dropped as a
// retry). The stores persist it, so it must never
// change: a database written with one hash is read with the same one.
func EventHash(id string) uint64 { return xxhash.Sum64String(id) }

// MaxDedupIDs is the most ids a seenSet can remember (Config.DedupMax):
// its index holds ring positions as uint32, and its ring doubles.
const MaxDedupIDs = 1 << 30

// minSeenCap is the smallest ring a seenSet keeps once it has one: below
// it, shrinking saves nothing worth the rebuilds.
const minSeenCap = 1024

// seenSet remembers the hashes of applied event ids, oldest first, so that
// a retried event is acknowledged without being applied twice. It holds at
// most max ids; when full, the oldest are forgotten first, and those still
// younger than the window are counted (evictedYoung). It compares whole
// 64-bit hashes, so a new id is taken for a retry only if its hash equals
// one of the n remembered: about n/2^64 per event (see EventHash).
//
// Memory follows what the window holds, not the cap: a ring of 16-byte
// entries (hash, time) that doubles when full and halves when a quarter
// full, and an index of uint32 ring positions twice the ring's size, open
// addressing with linear probing. That is 24 bytes per ring slot: 24 to
// 48 bytes per remembered id while the set grows or holds steady (up to 96
// just before it shrinks, as the window empties), and 24 to 32 when it is
// full at a cap that is not a power of two (the ring stops at the cap, the
// index is a power of two: at 10,000,000 ids, 29 bytes each).
//
// Where a hash lands in the index is decided by multiply-shift with a
// random odd multiplier chosen per set, not by the hash's own low bits:
// xxHash is not keyed, so anyone can search for ids whose hashes share
// their low bits, and with a fixed slot function a flood of them would
// build one probe chain that every event then walks (slowing pricing for
// everyone). Multiply-shift with a secret multiplier puts any two fixed
// hashes in the same slot with probability at most 2/slots, whatever the
// attacker chose.
//
// The oldest entry is the only one ever removed, so removal is
// backward-shift deletion (no tombstones to pile up), and has and add
// allocate nothing except when the ring grows (amortised). A seenSet is
// not safe for concurrent use.
type seenSet struct {
	max int
	// ring holds n entries from head on, wrapping; len(ring) is its
	// capacity.
	ring    []SeenID
	head, n int
	// index holds ring position + 1 per slot, 0 for empty; its length is
	// a power of two, at least twice len(ring), so it is at most half full.
	index []uint32
	shift uint // 64 - log2(len(index))
	mult  uint64

	// window and evictedYoung count ids forgotten for want of room while
	// still younger than the window (at the time they were evicted): a
	// retry of one of them would be applied twice.
	window       int64
	evictedYoung int
	// evicted counts ids evicted for want of room since the machine last
	// reset it (Begin): a round that evicted cannot be undone.
	evicted int
}

// newSeenSet returns an empty set of at most max ids (1..MaxDedupIDs),
// whose index places hashes with multiplier mult (made odd). Callers pass
// a random one (randomMultiplier); tests may fix it.
func newSeenSet(max int, mult uint64) *seenSet {
	return &seenSet{max: max, mult: mult | 1}
}

// randomMultiplier returns a multiplier for newSeenSet from the runtime's
// randomly seeded generator: it only needs to be unknown outside the
// process, not reproducible, so it is not injected like the engine's clock.
func randomMultiplier() uint64 { return rand.Uint64() | 1 }

// len returns how many ids the set remembers.
func (s *seenSet) len() int { return s.n }

// slot returns the index slot where a search for h starts.
func (s *seenSet) slot(h uint64) int { return int((h * s.mult) >> s.shift) }

// find returns the index slot holding h, or the empty slot where it would
// go, and whether h is there. The index must not be empty.
func (s *seenSet) find(h uint64) (int, bool) {
	mask := len(s.index) - 1
	for i := s.slot(h); ; i = (i + 1) & mask {
		p := s.index[i]
		if p == 0 {
			return i, false
		}
		if s.ring[p-1].Hash == h {
			return i, true
		}
	}
}

func (s *seenSet) has(h uint64) bool {
	if s.n == 0 {
		return false
	}
	_, ok := s.find(h)
	return ok
}

// add remembers h, applied at at (unix ns), unless it is remembered
// already. When the set is full the oldest ids make room.
func (s *seenSet) add(h uint64, at int64) {
	if s.n > 0 {
		if _, ok := s.find(h); ok {
			return
		}
	}
	if s.n == len(s.ring) && s.n < s.max {
		s.resize(min(max(2*len(s.ring), minSeenCap), s.max))
	}
	for s.n >= s.max {
		if s.window > 0 && at-s.ring[s.head].At < s.window {
			s.evictedYoung++
		}
		s.evicted++
		s.popOldest()
	}
	i, _ := s.find(h) // again: growing or evicting moved the slots
	pos := s.head + s.n
	if pos >= len(s.ring) {
		pos -= len(s.ring)
	}
	s.ring[pos] = SeenID{Hash: h, At: at}
	s.index[i] = uint32(pos + 1)
	s.n++
}

// reserve makes room for n ids (at most max) at once, so that loading a
// snapshot rebuilds the index once rather than at every doubling.
func (s *seenSet) reserve(n int) {
	if n = min(n, s.max); n > len(s.ring) {
		s.resize(max(n, min(minSeenCap, s.max)))
	}
}

// popOldest forgets the oldest id. The set must not be empty.
func (s *seenSet) popOldest() {
	s.remove(s.head)
	s.ring[s.head] = SeenID{}
	if s.head++; s.head == len(s.ring) {
		s.head = 0
	}
	s.n--
}

// dropNewest forgets the id added last, to undo an add whose round was
// not committed.
func (s *seenSet) dropNewest() {
	pos := s.head + s.n - 1
	if pos >= len(s.ring) {
		pos -= len(s.ring)
	}
	s.remove(pos)
	s.ring[pos] = SeenID{}
	s.n--
}

// remove takes the entry at ring position pos out of the index, by
// backward-shift deletion: the entries after it in its probe run move back
// to where a lookup would meet them first, so no tombstone is needed.
func (s *seenSet) remove(pos int) {
	want := uint32(pos + 1)
	mask := len(s.index) - 1
	i := s.slot(s.ring[pos].Hash)
	for s.index[i] != want {
		i = (i + 1) & mask
	}
	for j := (i + 1) & mask; s.index[j] != 0; j = (j + 1) & mask {
		k := s.slot(s.ring[s.index[j]-1].Hash)
		if (i <= j && (k <= i || k > j)) || (i > j && k <= i && k > j) {
			s.index[i] = s.index[j]
			i = j
		}
	}
	s.index[i] = 0
}

func (s *seenSet) expire(cutoff int64) {
	for s.n > 0 && s.ring[s.head].At < cutoff {
		s.popOldest()
	}
	c := len(s.ring)
	for c > minSeenCap && s.n <= c/4 {
		c /= 2
	}
	if c < len(s.ring) {
		s.resize(max(c, s.n))
	}
}

// resize moves the entries, oldest first, to a ring of capacity c (>= n)
// and rebuilds the index for it.
func (s *seenSet) resize(c int) {
	ring := make([]SeenID, c)
	k := copy(ring, s.ring[s.head:min(s.head+s.n, len(s.ring))])
	copy(ring[k:s.n], s.ring)
	s.ring, s.head = ring, 0
	size := 1 << bits.Len(uint(2*c-1)) // the power of two >= 2c
	s.index = make([]uint32, size)
	s.shift = uint(64 - bits.TrailingZeros(uint(size)))
	for pos := range s.n {
		i, _ := s.find(s.ring[pos].Hash)
		s.index[i] = uint32(pos + 1)
	}
}
