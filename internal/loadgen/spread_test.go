package loadgen

import (
	"math"
	"strconv"
	"testing"
	"time"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/ingest"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

func mustSpread(t *testing.T, n int, d Distribution, seed uint64) *Spread {
	t.Helper()
	s, err := NewSpread(n, d, seed)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestUniformSpreadCoversTheCatalogEvenly: any n consecutive events name
// each of n products once, so k events give every product k/n of them to
// within one, whatever n (primes, powers of two, 1) and wherever the run
// starts; and consecutive events do not name neighbouring products.
func TestUniformSpreadCoversTheCatalogEvenly(t *testing.T) {
	for _, n := range []int{1, 2, 7, 1000, 1024, 99_991} {
		s := mustSpread(t, n, Uniform, 42)
		counts := make([]int, n)
		const rounds = 3
		total := rounds*n + n/2 + 1
		for k := range total {
			ev := s.Event(uint64(k))
			if ev.Product < 0 || ev.Product >= n {
				t.Fatalf("n=%d: event %d names product %d", n, k, ev.Product)
			}
			counts[ev.Product]++
			if k == n*rounds-1 {
				for p, c := range counts {
					if c != rounds {
						t.Fatalf("n=%d: after %d events product %d has %d, want %d", n, k+1, p, c, rounds)
					}
				}
			}
		}
		for p, c := range counts {
			if c != rounds && c != rounds+1 {
				t.Fatalf("n=%d: product %d has %d of %d events", n, p, c, total)
			}
		}
		if n >= 1000 {
			near := 0
			for k := range 1000 {
				d := s.Event(uint64(k+1)).Product - s.Event(uint64(k)).Product
				if d > -10 && d < 10 {
					near++
				}
			}
			if near > 50 {
				t.Errorf("n=%d: %d of 1000 consecutive events name products within 10 of each other: not scattered", n, near)
			}
		}
	}
}

// TestZipfSpread: product i's share is 1/(i+1) over the harmonic number,
// within sampling error.
func TestZipfSpread(t *testing.T) {
	const n, events = 1000, 400_000
	s := mustSpread(t, n, Zipf, 7)
	counts := make([]int, n)
	for k := range events {
		p := s.Event(uint64(k)).Product
		if p < 0 || p >= n {
			t.Fatalf("event %d names product %d", k, p)
		}
		counts[p]++
	}
	h := 0.0
	for i := range n {
		h += 1 / float64(i+1)
	}
	for _, i := range []int{0, 1, 9, 99} {
		want := events / (float64(i+1) * h)
		if got := float64(counts[i]); math.Abs(got-want) > 5*math.Sqrt(want) {
			t.Errorf("product %d: %v events, want %.0f ± %.0f", i, got, want, 5*math.Sqrt(want))
		}
	}
	tail := 0
	for _, c := range counts[n/2:] {
		tail += c
	}
	// The second half's share is (H(1000) - H(500)) / H(1000) ≈ 9.2%.
	if share := float64(tail) / events; share < 0.085 || share > 0.10 {
		t.Errorf("the second half of the catalog got %.3f of the events, want about 0.092", share)
	}
}

// TestSpreadIsDeterministic: the seed and the event's number decide the
// event; another seed gives other events.
func TestSpreadIsDeterministic(t *testing.T) {
	for _, d := range []Distribution{Uniform, Zipf} {
		a, b, c := mustSpread(t, 5000, d, 1), mustSpread(t, 5000, d, 1), mustSpread(t, 5000, d, 2)
		same := 0
		for k := uint64(0); k < 10_000; k++ {
			x := a.Event(k)
			if y := b.Event(k); x != y {
				t.Fatalf("%v: event %d is %+v and %+v with the same seed", d, k, x, y)
			}
			if x == c.Event(k) {
				same++
			}
		}
		if same > 1000 {
			t.Errorf("%v: seeds 1 and 2 agree on %d of 10000 events", d, same)
		}
	}
}

// TestSpreadMix: the demo's mix of 80% views, 15% carts and 5%
// purchases, from users U1 to U1000.
func TestSpreadMix(t *testing.T) {
	s := mustSpread(t, 100, Uniform, 3)
	const events = 200_000
	var types [pricing.Purchase + 1]int
	seen := map[int]bool{}
	for k := range events {
		ev := s.Event(uint64(k))
		types[ev.Type]++
		if ev.User < 1 || ev.User > users {
			t.Fatalf("event %d: user %d", k, ev.User)
		}
		seen[ev.User] = true
	}
	for typ, want := range map[pricing.EventType]float64{pricing.View: 0.80, pricing.Cart: 0.15, pricing.Purchase: 0.05} {
		if got := float64(types[typ]) / events; math.Abs(got-want) > 0.005 {
			t.Errorf("%v: share %.4f, want %.2f", typ, got, want)
		}
	}
	if len(seen) != users {
		t.Errorf("%d distinct users, want %d", len(seen), users)
	}
}

func TestSpreadRefusesBadSizes(t *testing.T) {
	for _, n := range []int{0, -1, catalog.MaxSynthetic + 1} {
		if _, err := NewSpread(n, Uniform, 1); err == nil {
			t.Errorf("NewSpread(%d) succeeded", n)
		}
	}
	if _, err := NewSpread(10, Distribution(9), 1); err == nil {
		t.Error("an unknown distribution was taken")
	}
	for in, want := range map[string]Distribution{"uniform": Uniform, "zipf": Zipf} {
		if d, err := ParseDistribution(in); err != nil || d != want || d.String() != in {
			t.Errorf("ParseDistribution(%q) = %v, %v", in, d, err)
		}
	}
	if _, err := ParseDistribution("normal"); err == nil {
		t.Error(`ParseDistribution("normal") succeeded`)
	}
}

// TestSpreadEventsAreValidAndAllocationFree: synthetic events, with and
// without an event_id, are what the engine's decoder takes, naming the
// synthetic catalog's ids, and making one allocates nothing.
func TestSpreadEventsAreValidAndAllocationFree(t *testing.T) {
	ps := productSet{n: 20_000_000}
	s := mustSpread(t, ps.n, Uniform, 9)
	var body []byte
	body = append(body, '[')
	const n = 50
	for k := uint64(0); k < n; k++ {
		if k > 0 {
			body = append(body, ',')
		}
		prefix := ""
		if k%2 == 0 {
			prefix = "lgrun-"
		}
		body = appendSpreadEvent(body, ps, s.Event(k), 1773713139123, prefix, k)
	}
	body = append(body, ']')
	d := ingest.Decoder{Now: func() time.Time { return time.UnixMilli(1773713139123) }}
	evs, _, rejects, err := d.Decode(body, "application/json", nil, nil)
	if err != nil || len(rejects) != 0 || len(evs) != n {
		t.Fatalf("decode: %d events, %v, %v\n%s", len(evs), rejects, err, body)
	}
	for k, ev := range evs {
		want := s.Event(uint64(k))
		if ev.ProductID != catalog.SyntheticID(want.Product) || !pricing.ValidID(ev.ProductID) || ev.Type != want.Type ||
			ev.Price != catalog.SyntheticBasePrice(want.Product) || ev.Timestamp != 1773713139123*1e6 {
			t.Fatalf("event %d decoded as %+v, want %+v", k, ev, want)
		}
		wantID := ""
		if k%2 == 0 {
			wantID = "lgrun-" + strconv.Itoa(k)
		}
		if ev.EventID != wantID {
			t.Fatalf("event %d: event_id %q, want %q", k, ev.EventID, wantID)
		}
	}

	buf := make([]byte, 0, 512)
	zipf := mustSpread(t, 100_000, Zipf, 9)
	var k uint64
	if a := testing.AllocsPerRun(1000, func() {
		k++
		buf = appendSpreadEvent(buf[:0], ps, s.Event(k), 1773713139123, "lgrun-", k)
		buf = appendSpreadEvent(buf[:0], productSet{n: 100_000}, zipf.Event(k), 1773713139123, "", k)
	}); a != 0 {
		t.Fatalf("making an event allocates %v times", a)
	}
}
