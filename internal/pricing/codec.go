package pricing

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
)

// StateFormat is the version byte that starts State's binary encoding.
// A stored state that starts with '{' is the JSON written before the
// binary encoding existed (UnmarshalState reads both).
const StateFormat byte = 1

// The optional parts of an encoded State, one bit each after the version.
const (
	hasOverride = 1 << iota
	hasLearn
	hasMarket
	hasBrake
	// hasLearnTime: the learning state's base, times and purchase-signal
	// figures follow the brake (states written before safe learning
	// have none: they decode as zero).
	hasLearnTime
	// hasTally: the hour's analytics counts (Tally) follow the learning
	// times (states written before analytics have none: zero).
	hasTally
)

// ErrNonFinite is returned by AppendBinary for a state holding NaN or an
// infinity, which no store keeps as a number (JSON cannot carry one, and
// a price must never become one).
var ErrNonFinite = errors.New("pricing: state holds a non-finite number")

// AppendBinary appends s's compact binary encoding to buf (the
// encoding.BinaryAppender contract): a version byte, a byte saying which
// optional parts follow, then the fields in a fixed order, floats as
// their 8 bytes and integers as varints. Only the days of the 30-day
// lowest-price ring that hold a price are written. A product priced by
// seed or decay takes about 120 bytes, against about 550 as JSON.
func (s *State) AppendBinary(buf []byte) ([]byte, error) {
	e := encoder{buf: buf}
	e.buf = append(e.buf, StateFormat)
	var parts byte
	if s.Override != (Override{}) {
		parts |= hasOverride
	}
	if s.Learn != nil {
		parts |= hasLearn
	}
	if s.Market != nil {
		parts |= hasMarket
	}
	if s.Brake != (Brake{}) {
		parts |= hasBrake
	}
	if l := s.Learn; l != nil && (l.Base != 0 || l.At != 0 || l.Moved != 0 || l.Dry != 0 || l.Rate != 0) {
		parts |= hasLearnTime
	}
	if !s.Tally.Empty() {
		parts |= hasTally
	}
	e.buf = append(e.buf, parts)
	e.float(s.Demand.Total)
	e.float(s.Demand.Decayed)
	e.int(s.Demand.At)
	e.float(s.Price)
	e.buf = append(e.buf, byte(s.Source))
	e.uint(s.Version)
	e.int(s.ChangedAt)
	e.float(s.DynDemand)
	for _, f := range [...]float64{s.Trace.Raw, s.Trace.Limited, s.Trace.Bounded, s.Trace.Final, s.Trace.Reference} {
		e.float(f)
	}
	e.buf = append(e.buf, byte(s.Trace.Applied))
	e.float(s.Lowest30)
	// The days that hold a price, each as its slot (kept in the format,
	// though the reader places a day by the day itself), day and price.
	var days uint64
	s.Low.Days(func(int32, float64) { days++ })
	e.uint(days)
	s.Low.Days(func(d int32, m float64) {
		e.buf = append(e.buf, byte(slotOf(d)))
		e.int(int64(d))
		e.float(m)
	})
	if parts&hasOverride != 0 {
		o := &s.Override
		e.bool(o.Active)
		e.float(o.Price)
		e.string(o.Reason)
		e.string(o.By)
		e.int(o.Since)
		e.int(o.Expires)
	}
	if l := s.Learn; l != nil {
		e.int(int64(l.Arm))
		e.floats(l.Views)
		e.floats(l.Buys)
		e.bool(l.Redraw)
		e.buf = binary.LittleEndian.AppendUint64(e.buf, l.Rand)
		e.floats(l.Fit)
	}
	if m := s.Market; m != nil {
		e.float(m.Stock)
		e.bool(m.StockKnown)
		e.int(m.Period)
		e.float(m.Opening)
		e.int(m.Opened)
		e.float(m.Views)
		e.int(m.Since)
		e.count(len(m.Quotes), m.Quotes == nil)
		for _, q := range m.Quotes {
			e.string(q.Competitor)
			e.float(q.Price)
			e.int(q.At)
		}
	}
	if parts&hasBrake != 0 {
		e.float(s.Brake.Anchor)
		e.int(s.Brake.Since)
		e.int(s.Brake.Held)
		e.float(s.Brake.Wanted)
	}
	if parts&hasLearnTime != 0 {
		l := s.Learn
		e.float(l.Base)
		e.int(l.At)
		e.int(l.Moved)
		e.float(l.Dry)
		e.float(l.Rate)
	}
	if parts&hasTally != 0 {
		t := &s.Tally
		e.int(t.Hour)
		e.uint(uint64(t.Views))
		e.uint(uint64(t.Carts))
		e.uint(uint64(t.Purchases))
		e.uint(uint64(t.Units))
		e.float(t.Revenue)
		e.float(t.Cost)
		e.float(t.List)
	}
	if e.nonFinite {
		return buf, ErrNonFinite
	}
	return e.buf, nil
}

// UnmarshalBinary replaces s with the state AppendBinary encoded in data.
// It does not keep data.
func (s *State) UnmarshalBinary(data []byte) error {
	d := decoder{buf: data}
	if v := d.byte(); v != StateFormat {
		if d.err != nil {
			return d.err
		}
		return fmt.Errorf("pricing: state format %d, want %d", v, StateFormat)
	}
	parts := d.byte()
	var st State
	st.Demand.Total = d.float()
	st.Demand.Decayed = d.float()
	st.Demand.At = d.int()
	st.Price = d.float()
	st.Source = Source(d.byte())
	st.Version = d.uint()
	st.ChangedAt = d.int()
	st.DynDemand = d.float()
	st.Trace.Raw, st.Trace.Limited, st.Trace.Bounded = d.float(), d.float(), d.float()
	st.Trace.Final, st.Trace.Reference = d.float(), d.float()
	st.Trace.Applied = Guard(d.byte())
	st.Lowest30 = d.float()
	days := d.uint()
	if days > lowestSlots {
		return fmt.Errorf("pricing: state has %d days of lowest prices, at most %d fit", days, lowestSlots)
	}
	var low [lowestSlots]struct {
		day int32
		min float64
	}
	for k := range days {
		if slot := d.byte(); slot >= lowestSlots {
			return fmt.Errorf("pricing: lowest-price day slot %d out of range", slot)
		}
		low[k].day, low[k].min = int32(d.int()), d.float()
	}
	st.Low.fill(func(f func(int32, float64)) {
		for _, x := range low[:days] {
			f(x.day, x.min)
		}
	})
	if parts&hasOverride != 0 {
		o := &st.Override
		o.Active = d.bool()
		o.Price = d.float()
		o.Reason = d.string()
		o.By = d.string()
		o.Since = d.int()
		o.Expires = d.int()
	}
	if parts&hasLearn != 0 {
		l := &Learning{}
		l.Arm = int(d.int())
		l.Views = d.floats()
		l.Buys = d.floats()
		l.Redraw = d.bool()
		l.Rand = d.uint64()
		l.Fit = d.floats()
		st.Learn = l
	}
	if parts&hasMarket != 0 {
		m := &Signals{}
		m.Stock = d.float()
		m.StockKnown = d.bool()
		m.Period = d.int()
		m.Opening = d.float()
		m.Opened = d.int()
		m.Views = d.float()
		m.Since = d.int()
		if n, isNil := d.count(MaxQuotes); !isNil {
			m.Quotes = make([]Quote, n)
			for k := range m.Quotes {
				q := &m.Quotes[k]
				q.Competitor = d.string()
				q.Price = d.float()
				q.At = d.int()
			}
		}
		st.Market = m
	}
	if parts&hasBrake != 0 {
		st.Brake.Anchor = d.float()
		st.Brake.Since = d.int()
		st.Brake.Held = d.int()
		st.Brake.Wanted = d.float()
	}
	if parts&hasLearnTime != 0 {
		l := st.Learn
		if l == nil {
			return errors.New("pricing: learning times without a learning state")
		}
		l.Base = d.float()
		l.At = d.int()
		l.Moved = d.int()
		l.Dry = d.float()
		l.Rate = d.float()
	}
	if parts&hasTally != 0 {
		t := &st.Tally
		t.Hour = d.int()
		t.Views = int64(d.uint())
		t.Carts = int64(d.uint())
		t.Purchases = int64(d.uint())
		t.Units = int64(d.uint())
		t.Revenue = d.float()
		t.Cost = d.float()
		t.List = d.float()
	}
	if d.err != nil {
		return d.err
	}
	if len(d.buf) != 0 {
		return fmt.Errorf("pricing: %d bytes after the state", len(d.buf))
	}
	*s = st
	return nil
}

type encoder struct {
	buf       []byte
	nonFinite bool
}

func (e *encoder) float(f float64) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		e.nonFinite = true
	}
	e.buf = binary.LittleEndian.AppendUint64(e.buf, math.Float64bits(f))
}

func (e *encoder) int(v int64)   { e.buf = binary.AppendVarint(e.buf, v) }
func (e *encoder) uint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }

func (e *encoder) bool(v bool) {
	b := byte(0)
	if v {
		b = 1
	}
	e.buf = append(e.buf, b)
}

func (e *encoder) string(v string) {
	e.uint(uint64(len(v)))
	e.buf = append(e.buf, v...)
}

// count writes a slice's length, keeping nil apart from empty: 0 is nil,
// n+1 a slice of n.
func (e *encoder) count(n int, isNil bool) {
	if isNil {
		e.uint(0)
		return
	}
	e.uint(uint64(n) + 1)
}

func (e *encoder) floats(v []float64) {
	e.count(len(v), v == nil)
	for _, f := range v {
		e.float(f)
	}
}

// decoder reads what encoder wrote; the first error sticks and later reads
// return zero values.
type decoder struct {
	buf []byte
	err error
}

var errShort = errors.New("pricing: state encoding is truncated")

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
	d.buf = nil
}

func (d *decoder) byte() byte {
	if len(d.buf) < 1 {
		d.fail(errShort)
		return 0
	}
	b := d.buf[0]
	d.buf = d.buf[1:]
	return b
}

func (d *decoder) bool() bool { return d.byte() != 0 }

func (d *decoder) uint64() uint64 {
	if len(d.buf) < 8 {
		d.fail(errShort)
		return 0
	}
	v := binary.LittleEndian.Uint64(d.buf)
	d.buf = d.buf[8:]
	return v
}

func (d *decoder) float() float64 { return math.Float64frombits(d.uint64()) }

func (d *decoder) int() int64 {
	v, n := binary.Varint(d.buf)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) uint() uint64 {
	v, n := binary.Uvarint(d.buf)
	if n <= 0 {
		d.fail(errShort)
		return 0
	}
	d.buf = d.buf[n:]
	return v
}

func (d *decoder) string() string {
	n := d.uint()
	if n > uint64(len(d.buf)) {
		d.fail(errShort)
		return ""
	}
	s := string(d.buf[:n])
	d.buf = d.buf[n:]
	return s
}

// count reads what encoder.count wrote, refusing more than limit items
// (and more than the bytes left could hold).
func (d *decoder) count(limit int) (n int, isNil bool) {
	c := d.uint()
	if c == 0 {
		return 0, true
	}
	if c-1 > uint64(limit) || c-1 > uint64(len(d.buf)) {
		d.fail(fmt.Errorf("pricing: a list of %d items in a state", c-1))
		return 0, true
	}
	return int(c - 1), false
}

func (d *decoder) floats() []float64 {
	n, isNil := d.count(len(d.buf) / 8)
	if isNil {
		return nil
	}
	v := make([]float64, n)
	for k := range v {
		v[k] = d.float()
	}
	return v
}

// UnmarshalState decodes a stored state in either of its forms: the binary
// encoding (AppendBinary), or the JSON that stores wrote before it, which
// starts with '{' where the binary form starts with its version byte.
func UnmarshalState(data []byte, s *State) error {
	if len(data) > 0 && data[0] == '{' {
		var st State
		if err := json.Unmarshal(data, &st); err != nil {
			return err
		}
		*s = st
		return nil
	}
	return s.UnmarshalBinary(data)
}
