package ingest

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// Reject is one rejected event: its 0-based position in the body and a
// human-readable reason that names the field at fault.
//
// Positions count the elements of a JSON array, the values of a stream of
// concatenated values, or the non-blank lines of NDJSON.
type Reject struct {
	Index int    `json:"index"`
	Error string `json:"error"`
}

var (
	// ErrNotJSON means no event could be located in the body: it is empty,
	// not JSON at all, or structurally broken (a truncated array, a single
	// malformed object). The wrapping error says where.
	ErrNotJSON = errors.New("body is not JSON")
	// ErrTooManyEvents means the body holds more than Decoder.MaxEvents
	// events.
	ErrTooManyEvents = errors.New("too many events in body")
)

// DefaultMaxFuture is how far ahead of the receive time a timestamp may be
// when Decoder.MaxFuture is not set.
const DefaultMaxFuture = 24 * time.Hour

// Decoder decodes and validates request bodies of shopper events.
//
// Decode is safe for concurrent use. A Decoder must not be copied after
// its first use.
type Decoder struct {
	// Now is the receive-time clock; nil means time.Now.
	Now func() time.Time
	// MaxEvents bounds the events (valid or not) in one body; 0 means no
	// limit.
	MaxEvents int
	// MaxFuture is how far ahead of Now a timestamp may be; 0 or less
	// means DefaultMaxFuture.
	MaxFuture time.Duration

	states sync.Pool // *state: scratch space and product id intern table
}

// state is one Decode call's working set, pooled between calls.
type state struct {
	s         scanner
	ev        rawEvent
	buf       []byte            // scratch for decoded strings
	ids       map[string]string // interned product ids
	names     map[string]string // interned competitor names
	now       int64             // receive time, unix ns
	latest    int64             // latest acceptable timestamp, unix ns
	maxFuture time.Duration
	maxEvents int

	events  []Event
	indexes []int
	rejects []Reject
}

// maxScratch is the largest scratch buffer kept between calls.
const maxScratch = 64 << 10

// errFallback tells Decode that a stream of values was malformed and the
// body is to be read again as lines.
var errFallback = errors.New("stream malformed")

// Decode appends the valid events of body to dst and their positions in
// the body to idx (a parallel slice), and returns both with the rejected
// events, in body order.
//
// body is one JSON object, a JSON array of objects, or NDJSON: one object
// per line when contentType is application/x-ndjson (or
// application/ndjson), and also when it is not and body holds several
// top-level values. A malformed line of NDJSON is rejected on its own; a
// body in which no JSON value can be found, or a malformed single object
// or array, is ErrNotJSON. More than MaxEvents events is ErrTooManyEvents;
// the limit is enforced as the body is read, so a body is refused as too
// large once it has shown more than MaxEvents events, whatever follows.
// On error dst and idx come back with their original lengths.
//
// The returned events share no memory with body.
func (d *Decoder) Decode(body []byte, contentType string, dst []Event, idx []int) ([]Event, []int, []Reject, error) {
	st, _ := d.states.Get().(*state)
	if st == nil {
		st = &state{ids: make(map[string]string), names: make(map[string]string)}
	}
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	st.now = now().UnixNano()
	st.maxFuture = d.MaxFuture
	if st.maxFuture <= 0 {
		st.maxFuture = DefaultMaxFuture
	}
	st.latest = st.now + int64(st.maxFuture)
	st.maxEvents = d.MaxEvents
	st.events, st.indexes, st.rejects = dst, idx, nil

	err := st.decode(body, contentType)

	events, indexes, rejects := st.events, st.indexes, st.rejects
	st.events, st.indexes, st.rejects = nil, nil, nil
	st.s.reset(nil, 0) // do not keep body alive in the pool
	if cap(st.buf) > maxScratch || cap(st.s.key) > maxScratch {
		st.buf, st.s.key = nil, nil // nor a buffer grown by one odd body
	}
	d.states.Put(st)
	if err != nil {
		return dst, idx, nil, err
	}
	return events, indexes, rejects, nil
}

var bom = []byte("\xef\xbb\xbf")

func (st *state) decode(body []byte, contentType string) error {
	start := 0
	if bytes.HasPrefix(body, bom) {
		start = len(bom)
	}
	s := &st.s
	s.reset(body, start)
	if s.atEnd() {
		return fmt.Errorf("%w: empty body", ErrNotJSON)
	}
	switch {
	case isNDJSON(contentType):
		return st.lines(body, start)
	case body[s.i] == '[':
		return st.array()
	}
	n0 := len(st.events)
	err := st.stream()
	if err != errFallback {
		return err
	}
	// Not a stream of values: perhaps NDJSON with bad lines. If no line is
	// JSON either, the stream's error says best what is wrong.
	streamErr := s.syntaxError()
	st.events, st.indexes, st.rejects = st.events[:n0], st.indexes[:n0], st.rejects[:0]
	if err = st.lines(body, start); errors.Is(err, ErrNotJSON) {
		err = fmt.Errorf("%w: %s", ErrNotJSON, streamErr)
	}
	return err
}

// isNDJSON reports whether a Content-Type header names NDJSON.
func isNDJSON(contentType string) bool {
	mt, _, _ := strings.Cut(contentType, ";")
	mt = strings.TrimSpace(mt)
	return strings.EqualFold(mt, "application/x-ndjson") || strings.EqualFold(mt, "application/ndjson")
}

// array reads a body that is one JSON array (s is at its '[').
func (st *state) array() error {
	s := &st.s
	var tooMany error
	n := 0
	ok := s.array(func() bool {
		k, ok := st.element()
		if !ok {
			return false
		}
		if tooMany = st.count(n); tooMany != nil {
			return false
		}
		st.emit(k, n)
		n++
		return true
	})
	switch {
	case tooMany != nil:
		return tooMany
	case !ok:
		return fmt.Errorf("%w: %s", ErrNotJSON, s.syntaxError())
	case !s.atEnd():
		s.unexpected("after top-level array")
		return fmt.Errorf("%w: %s", ErrNotJSON, s.syntaxError())
	}
	return nil
}

// stream reads a body of one or more top-level values. It returns
// errFallback when one of them is malformed. Past MaxEvents it goes on
// scanning, as the body may yet turn out to be NDJSON with fewer lines.
func (st *state) stream() error {
	s := &st.s
	var tooMany error
	for n := 0; !s.atEnd(); n++ {
		k, ok := st.element()
		if !ok {
			return errFallback
		}
		if tooMany == nil {
			tooMany = st.count(n)
		}
		if tooMany == nil {
			st.emit(k, n)
		}
	}
	return tooMany
}

// lines reads body as NDJSON: each non-blank line is one value, and a
// malformed line is rejected by itself. Unless at least one line is JSON,
// the body is ErrNotJSON.
func (st *state) lines(body []byte, pos int) error {
	s := &st.s
	n, anyJSON, firstErr := 0, false, ""
	for pos < len(body) {
		end := bytes.IndexByte(body[pos:], '\n')
		if end < 0 {
			end = len(body)
		} else {
			end += pos
		}
		s.reset(body[:end], pos)
		pos = end + 1
		if s.atEnd() {
			continue
		}
		if err := st.count(n); err != nil {
			return err
		}
		k, ok := st.element()
		if ok && !s.atEnd() {
			ok = s.unexpected("after top-level value")
		}
		if ok {
			anyJSON = true
			st.emit(k, n)
		} else {
			if firstErr == "" {
				firstErr = s.syntaxError()
			}
			st.rejects = append(st.rejects, Reject{Index: n, Error: s.syntaxError()})
		}
		n++
	}
	switch {
	case n == 0:
		return fmt.Errorf("%w: empty body", ErrNotJSON)
	case !anyJSON:
		return fmt.Errorf("%w: %s", ErrNotJSON, firstErr)
	}
	return nil
}

// count checks that the body may hold element number n (0-based).
func (st *state) count(n int) error {
	if st.maxEvents > 0 && n >= st.maxEvents {
		return fmt.Errorf("%w: more than %d", ErrTooManyEvents, st.maxEvents)
	}
	return nil
}

// element scans the value at s.i; an object's fields go to st.ev.
func (st *state) element() (kind, bool) {
	s := &st.s
	if s.i < len(s.b) && s.b[s.i] == '{' {
		st.ev = rawEvent{}
		return kindObject, s.object(&st.ev)
	}
	k, _, _, ok := s.value()
	return k, ok
}

// emit records element n, of kind k, as an event or a reject.
func (st *state) emit(k kind, n int) {
	if k != kindObject {
		st.rejects = append(st.rejects, Reject{Index: n, Error: "event must be a JSON object, got " + k.String()})
		return
	}
	e, reason := st.fields(&st.ev)
	if reason != "" {
		st.rejects = append(st.rejects, Reject{Index: n, Error: reason})
		return
	}
	st.events = append(st.events, e)
	st.indexes = append(st.indexes, n)
}
