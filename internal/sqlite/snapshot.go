package sqlite

import (
	"bufio"
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/dynaprice/dynaprice/internal/pricing"
)

// A snapshot is the engine's whole state, written at a clean shutdown to
// one file next to the database (SaveSnapshot), so that the next start
// reads that file front to back instead of a row per product from each of
// products and state_log: at a million products the rows took 6-10 s of
// CPU to read, the file about half a second.
//
// The file is an accelerator, never the only copy: everything in it is in
// the tables too. It is used only while the database's snapshot_tag row
// holds the token written in the file, and Load deletes that row whether
// or not it used the file. So a snapshot serves one start at most, and
// never a start after a commit it does not hold: after a crash the store
// loads from its tables as before. A file that is missing, torn or
// corrupt (its checksum says so) is ignored the same way.
//
// Layout, little-endian: the magic, the 16-byte token, then, each as a
// length-prefixed section, the products in catalog order, each followed by
// its state (or none) and its position in the logs (state_log seq,
// price_history head, price_hourly head), and the positions of any ids
// outside the catalog (id, then the same three); a CRC-32C of everything
// before it ends the file. A file of an older layout is ignored (the
// magic says which).

const snapshotMagic = "dynaprice snapshot 3\n"

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// snapshotPath is where the snapshot of the database at path is kept.
func snapshotPath(path string) string { return path + ".snapshot" }

// SaveSnapshot writes products (in catalog order) and their states (state
// returns nil for a product without one) with the store's own positions
// as the snapshot the next Load starts from, unless something is committed
// first. It is meant for the end of a writer's life, after its last
// commit and once its background prunes (PruneSeen, PruneHistory) have
// stopped: a retention step after it would leave the snapshot behind the
// history tables.
func (s *Store) SaveSnapshot(ctx context.Context, products []pricing.Product, state func(i int) *pricing.State) error {
	s.wmu.Lock()
	defer s.wmu.Unlock()
	if err := s.ensureLog(ctx); err != nil {
		return fmt.Errorf("sqlite: snapshot: %w", err)
	}
	var token [16]byte
	if _, err := rand.Read(token[:]); err != nil {
		return fmt.Errorf("sqlite: snapshot: %w", err)
	}
	final := snapshotPath(s.path)
	tmp := final + ".tmp"
	if err := writeSnapshot(tmp, token, products, state, &s.logs); err != nil {
		os.Remove(tmp) //nolint:errcheck // reporting the cause
		return fmt.Errorf("sqlite: snapshot: %w", err)
	}
	if err := os.Rename(tmp, final); err != nil {
		os.Remove(tmp) //nolint:errcheck // reporting the cause
		return fmt.Errorf("sqlite: snapshot: %w", err)
	}
	if err := syncDir(filepath.Dir(final)); err != nil {
		return fmt.Errorf("sqlite: snapshot: %w", err)
	}
	// The tag last: a crash before it leaves a file no Load trusts.
	if _, err := s.wc.ExecContext(ctx, "INSERT OR REPLACE INTO snapshot_tag (id, token) VALUES (1, ?)", token[:]); err != nil {
		return fmt.Errorf("sqlite: snapshot: tag: %w", err)
	}
	s.tagged = true
	return nil
}

// takeSnapshot reads the snapshot the database's tag names and deletes
// the tag. It returns ok false, with no error, when there is no usable
// snapshot: no tag, or a file that is missing or does not match; the
// caller then reads the tables. The caller holds wmu.
func (s *Store) takeSnapshot(ctx context.Context) (products []pricing.Product, states []pricing.State, stated []bool, ok bool, err error) {
	var token []byte
	err = s.wc.QueryRowContext(ctx, "SELECT token FROM snapshot_tag WHERE id = 1").Scan(&token)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil, nil, false, nil
	}
	if err != nil {
		return nil, nil, nil, false, fmt.Errorf("snapshot tag: %w", err)
	}
	// Used once: from here on the tables are the truth again, whatever
	// the engine commits next.
	if _, err := s.wc.ExecContext(ctx, "DELETE FROM snapshot_tag"); err != nil {
		return nil, nil, nil, false, fmt.Errorf("snapshot tag: %w", err)
	}
	s.tagged = false
	path := snapshotPath(s.path)
	defer os.Remove(path) //nolint:errcheck // a stale file is ignored anyway
	snap, err := readSnapshot(path, token)
	if err != nil {
		s.log.Warn("sqlite: not starting from the snapshot; reading the tables", "path", path, "err", err)
		return nil, nil, nil, false, nil
	}
	s.logs.build(snap.products, snap.pos, snap.more)
	return snap.products, snap.states, snap.stated, true, nil
}

// snapshotFile is what a snapshot holds.
type snapshotFile struct {
	products []pricing.Product
	states   []pricing.State // by product; nil when none has one
	stated   []bool
	pos      []logPos // by product
	more     map[string]logPos
}

func writeSnapshot(path string, token [16]byte, products []pricing.Product, state func(int) *pricing.State, l *logState) (err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	sum := crc32.New(castagnoli)
	w := bufio.NewWriterSize(io.MultiWriter(f, sum), 1<<20)
	inCatalog := make([]bool, len(l.ids))
	var buf []byte
	buf = append(buf, snapshotMagic...)
	buf = append(buf, token[:]...)
	buf = binary.AppendUvarint(buf, uint64(len(products)))
	for i := range products {
		buf = appendProduct(buf, &products[i])
		if st := state(i); st == nil {
			buf = append(buf, 0)
		} else {
			buf = append(buf, 1)
			mark := len(buf)
			buf = append(buf, 0, 0, 0, 0) // the state's length, set below
			if buf, err = st.AppendBinary(buf); err != nil {
				return fmt.Errorf("state of %q: %w", products[i].ID, err)
			}
			binary.LittleEndian.PutUint32(buf[mark:], uint32(len(buf)-mark-4))
		}
		var p logPos
		if k, ok := l.lookup(products[i].ID, int32(i)); ok {
			p = l.pos[k]
			inCatalog[k] = true
		}
		buf = binary.AppendVarint(buf, p.seq)
		buf = binary.AppendVarint(buf, p.head)
		buf = binary.AppendVarint(buf, p.hourly)
		if len(buf) >= 1<<20 {
			if _, err := w.Write(buf); err != nil {
				return err
			}
			buf = buf[:0]
		}
	}
	var outside []int32
	for k := range l.ids {
		if !inCatalog[k] && l.pos[k] != (logPos{}) {
			outside = append(outside, int32(k))
		}
	}
	buf = binary.AppendUvarint(buf, uint64(len(outside)))
	for _, k := range outside {
		p := l.pos[k]
		buf = appendString(buf, l.ids[k])
		buf = binary.AppendVarint(buf, p.seq)
		buf = binary.AppendVarint(buf, p.head)
		buf = binary.AppendVarint(buf, p.hourly)
	}
	if _, err := w.Write(buf); err != nil {
		return err
	}
	if err := w.Flush(); err != nil {
		return err
	}
	if _, err := f.Write(binary.LittleEndian.AppendUint32(nil, sum.Sum32())); err != nil {
		return err
	}
	return f.Sync()
}

func readSnapshot(path string, token []byte) (snapshotFile, error) {
	var f snapshotFile
	data, err := os.ReadFile(path)
	if err != nil {
		return f, err
	}
	if len(data) < len(snapshotMagic)+16+4 {
		return f, errors.New("file too short")
	}
	body, tail := data[:len(data)-4], data[len(data)-4:]
	if crc32.Checksum(body, castagnoli) != binary.LittleEndian.Uint32(tail) {
		return f, errors.New("checksum mismatch")
	}
	if string(body[:len(snapshotMagic)]) != snapshotMagic {
		return f, errors.New("not a snapshot of this format")
	}
	body = body[len(snapshotMagic):]
	if string(body[:16]) != string(token) {
		return f, errors.New("the file is not the snapshot the database names")
	}
	r := reader{buf: body[16:]}
	n := r.count()
	f.products, f.pos = make([]pricing.Product, n), make([]logPos, n)
	// The states are decoded in place, into the list the engine keeps,
	// by workers beside this loop, a block of products at a time: the
	// products must be read in order (their records have no fixed size),
	// the states need not, and decoding them (touching 488 bytes of new
	// memory each) is most of the work.
	f.states, f.stated = make([]pricing.State, n), make([]bool, n)
	dec := newStateDecoder(f.states)
	raw := make([][]byte, 0, stateBlock)
	from := 0
	for i := range f.products {
		r.product(&f.products[i])
		var blob []byte
		if r.byte() == 1 {
			blob = r.take(int(r.u32()))
			f.stated[i] = r.err == nil
		}
		raw = append(raw, blob)
		f.pos[i] = logPos{seq: r.varint(), head: r.varint(), hourly: r.varint()}
		if r.err != nil {
			break
		}
		if len(raw) == stateBlock {
			dec.decode(from, raw)
			from, raw = i+1, make([][]byte, 0, stateBlock)
		}
	}
	dec.decode(from, raw)
	if k, err := dec.wait(); err != nil {
		return f, fmt.Errorf("state of %q: %w", f.products[k].ID, err)
	}
	if np := r.count(); np > 0 {
		f.more = make(map[string]logPos, np)
		for range np {
			id := r.string()
			f.more[id] = logPos{seq: r.varint(), head: r.varint(), hourly: r.varint()}
		}
	}
	if r.err == nil && len(r.buf) != 0 {
		r.err = errors.New("trailing bytes")
	}
	if r.err != nil {
		return f, r.err
	}
	return f, nil
}

// stateBlock is how many products' states a snapshot decoder worker
// takes at a time.
const stateBlock = 16 << 10

// stateDecoder decodes blocks of encoded states into their places in a
// list, on a worker per CPU.
type stateDecoder struct {
	into   []pricing.State
	blocks chan stateBlockJob
	wg     sync.WaitGroup
	mu     sync.Mutex
	bad    int // the first product whose state did not decode; -1: none
	err    error
}

type stateBlockJob struct {
	from int
	raw  [][]byte // nil for a product without a state
}

func newStateDecoder(into []pricing.State) *stateDecoder {
	d := &stateDecoder{into: into, blocks: make(chan stateBlockJob, runtime.GOMAXPROCS(0)), bad: -1}
	for range runtime.GOMAXPROCS(0) {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			for job := range d.blocks {
				for k, b := range job.raw {
					if b == nil {
						continue
					}
					if err := d.into[job.from+k].UnmarshalBinary(b); err != nil {
						d.fail(job.from+k, err)
						break
					}
				}
			}
		}()
	}
	return d
}

func (d *stateDecoder) decode(from int, raw [][]byte) {
	if len(raw) > 0 {
		d.blocks <- stateBlockJob{from: from, raw: raw}
	}
}

func (d *stateDecoder) fail(i int, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.bad < 0 || i < d.bad {
		d.bad, d.err = i, err
	}
}

// wait waits for the blocks given and returns the first product whose
// state did not decode, and why.
func (d *stateDecoder) wait() (int, error) {
	close(d.blocks)
	d.wg.Wait()
	return d.bad, d.err
}

// appendProduct appends the fields of p that the catalog stores.
func appendProduct(b []byte, p *pricing.Product) []byte {
	b = appendString(b, p.ID)
	b = appendString(b, p.Name)
	b = appendString(b, p.Strategy)
	b = appendString(b, p.Rounding)
	for _, f := range [...]float64{p.BasePrice, p.UnitCost, p.Floor, p.Ceiling, p.MaxChangePct, p.MinMarginPct, p.MaxMovePct} {
		b = binary.LittleEndian.AppendUint64(b, math.Float64bits(f))
	}
	b = binary.AppendVarint(b, int64(p.MaxQuantity))
	b = binary.AppendVarint(b, int64(p.MoveWindow))
	return appendString(b, p.PlansJSON())
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// reader decodes a snapshot; the first error sticks and zero values follow.
type reader struct {
	buf []byte
	err error
}

func (r *reader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("truncated or corrupt at %s", what)
	}
	r.buf = nil
}

func (r *reader) take(n int) []byte {
	if n < 0 || n > len(r.buf) {
		r.fail("a field")
		return nil
	}
	b := r.buf[:n]
	r.buf = r.buf[n:]
	return b
}

func (r *reader) byte() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.LittleEndian.Uint32(b)
	}
	return 0
}

func (r *reader) float() float64 {
	if b := r.take(8); b != nil {
		return math.Float64frombits(binary.LittleEndian.Uint64(b))
	}
	return 0
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.buf)
	if n <= 0 {
		r.fail("a number")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.buf)
	if n <= 0 {
		r.fail("a number")
		return 0
	}
	r.buf = r.buf[n:]
	return v
}

// count reads a number of entries, at most one per remaining byte.
func (r *reader) count() int {
	n := r.uvarint()
	if n > uint64(len(r.buf)) {
		r.fail("a count")
		return 0
	}
	return int(n)
}

func (r *reader) string() string {
	return string(r.take(r.count()))
}

func (r *reader) product(p *pricing.Product) {
	p.ID, p.Name, p.Strategy, p.Rounding = r.string(), r.string(), r.string(), r.string()
	p.BasePrice, p.UnitCost, p.Floor, p.Ceiling = r.float(), r.float(), r.float(), r.float()
	p.MaxChangePct, p.MinMarginPct, p.MaxMovePct = r.float(), r.float(), r.float()
	p.MaxQuantity = int32(r.varint())
	p.MoveWindow = pricing.Duration(r.varint())
	if plans := r.string(); plans != "" && r.err == nil {
		if err := p.SetPlansJSON(plans); err != nil {
			r.err = err
		}
	}
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
