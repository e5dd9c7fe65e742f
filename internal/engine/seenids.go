package engine

// seenSegment is the most ids one segment of a seenIDs holds.
const seenSegment = 1 << 21

// seenIDs is the engine's set of remembered event ids: a queue of
// seenSets (segments) of at most seg ids each, oldest first. Ids are added
// to the newest segment and forgotten from the oldest; a full newest
// segment is followed by a new one, sized for seg ids at once, and an
// emptied oldest segment is dropped.
//
// One seenSet up to the cap would do the same, but it grows by doubling,
// and a doubling rebuilds its whole index on the engine's goroutine: at 8
// million ids, a second during which no event was priced (a 30-minute
// soak at 30,000 ids/s had a 10-second window with POST p99 1.8 s when
// the set went from 4 to 8 million). Segments bound every rebuild to one
// segment's growth while it is the first (up to seg ids, ~0.1 s) and make
// the rest allocations. A lookup probes each segment: at the default cap
// of 10 million, five.
type seenIDs struct {
	segs []*seenSet
	seg  int // ids per segment
	max  int
	mult uint64
	n    int

	// window, evictedYoung and evicted are seenSet's (see there), for
	// the whole set.
	window       int64
	evictedYoung int
	evicted      int
}

func newSeenIDs(max int, mult uint64) *seenIDs {
	return &seenIDs{seg: seenSegment, max: max, mult: mult}
}

func (s *seenIDs) len() int { return s.n }

func (s *seenIDs) has(h uint64) bool {
	for i := len(s.segs) - 1; i >= 0; i-- { // the newest first: retries come soon
		if s.segs[i].has(h) {
			return true
		}
	}
	return false
}

// add remembers h, applied at at, unless it is remembered already. When
// the set is full the oldest ids make room.
func (s *seenIDs) add(h uint64, at int64) {
	if s.has(h) {
		return
	}
	for s.n >= s.max {
		if oldest := s.segs[0]; s.window > 0 && at-oldest.ring[oldest.head].At < s.window {
			s.evictedYoung++
		}
		s.evicted++
		s.popOldest()
	}
	last := s.newest()
	if last == nil || last.n >= s.seg {
		last = newSeenSet(s.seg, s.mult)
		if len(s.segs) > 0 {
			// Not the first: the set is large, so take the room at once
			// rather than by doublings.
			last.reserve(s.seg)
		}
		s.segs = append(s.segs, last)
	}
	last.add(h, at)
	s.n++
}

func (s *seenIDs) newest() *seenSet {
	if len(s.segs) == 0 {
		return nil
	}
	return s.segs[len(s.segs)-1]
}

// reserve makes room for n ids in the first segment, for a load.
func (s *seenIDs) reserve(n int) {
	if len(s.segs) == 0 && n > 0 {
		s.segs = append(s.segs, newSeenSet(s.seg, s.mult))
	}
	if len(s.segs) == 1 {
		s.segs[0].reserve(min(n, s.seg, s.max))
	}
}

// popOldest forgets the oldest id. The set must not be empty.
func (s *seenIDs) popOldest() {
	s.segs[0].popOldest()
	s.n--
	s.dropEmptyOldest()
}

func (s *seenIDs) dropEmptyOldest() {
	for len(s.segs) > 1 && s.segs[0].n == 0 {
		s.segs[0] = nil
		s.segs = s.segs[1:]
	}
}

// dropNewest forgets the id added last, to undo an add whose round was
// not committed.
func (s *seenIDs) dropNewest() {
	last := s.newest()
	last.dropNewest()
	s.n--
	if last.n == 0 && len(s.segs) > 1 {
		s.segs[len(s.segs)-1] = nil
		s.segs = s.segs[:len(s.segs)-1]
	}
}

// expire forgets the ids applied before cutoff.
func (s *seenIDs) expire(cutoff int64) {
	for len(s.segs) > 0 {
		first := s.segs[0]
		before := first.n
		first.expire(cutoff)
		s.n -= before - first.n
		if first.n > 0 || len(s.segs) == 1 {
			return
		}
		s.dropEmptyOldest()
	}
}
