package engine

// seenSet remembers applied event ids, oldest first, so a retried event is
// acknowledged without being applied twice. It holds at most max ids; the
// oldest are forgotten first.
type seenSet struct {
	max  int
	at   map[string]int64
	ring []SeenID // FIFO, head at start
	head int
	// window and evictedYoung count ids forgotten for want of room while
	// still younger than the window (at the time they were evicted): a
	// retry of one of them would be applied twice.
	window       int64
	evictedYoung int
}

func newSeenSet(max int) *seenSet {
	return &seenSet{max: max, at: make(map[string]int64)}
}

func (s *seenSet) has(id string) bool {
	_, ok := s.at[id]
	return ok
}

func (s *seenSet) add(id string, at int64) {
	if _, ok := s.at[id]; ok {
		return
	}
	for len(s.at) >= s.max {
		if s.window > 0 && at-s.ring[s.head].At < s.window {
			s.evictedYoung++
		}
		s.popOldest()
	}
	s.at[id] = at
	s.ring = append(s.ring, SeenID{ID: id, At: at})
}

func (s *seenSet) popOldest() {
	old := s.ring[s.head]
	delete(s.at, old.ID)
	s.ring[s.head] = SeenID{}
	s.head++
	// Compact once the dead prefix dominates, so memory stays bounded.
	if s.head > 1024 && s.head > len(s.ring)/2 {
		s.ring = append(s.ring[:0], s.ring[s.head:]...)
		s.head = 0
	}
}

// expire forgets ids applied before cutoff.
func (s *seenSet) expire(cutoff int64) {
	for s.head < len(s.ring) && s.ring[s.head].At < cutoff {
		s.popOldest()
	}
}
