package loadgen

import (
	"fmt"

	"github.com/dynaprice/dynaprice/internal/catalog"
	"github.com/dynaprice/dynaprice/internal/pricing"
)

// Distribution is how a run's events spread over its products.
type Distribution int

const (
	// Uniform names every product equally often: the events take the
	// products one after the other in a scattered order (a stride walk
	// over the catalog), so any N consecutive events of a catalog of N
	// name each product exactly once. It is the least favourable spread
	// for an engine, since no two events of a batch coalesce on one
	// product, and the default with --products.
	Uniform Distribution = iota
	// Zipf makes product i's popularity proportional to 1/(i+1), the skew
	// of real catalogs and of the demo traffic: with a million products
	// the first 1,000 get about half the events.
	Zipf
)

// ParseDistribution reads "uniform" or "zipf".
func ParseDistribution(s string) (Distribution, error) {
	switch s {
	case "uniform":
		return Uniform, nil
	case "zipf":
		return Zipf, nil
	}
	return 0, fmt.Errorf("loadgen: distribution %q is not uniform or zipf", s)
}

func (d Distribution) String() string {
	if d == Zipf {
		return "zipf"
	}
	return "uniform"
}

// MarshalText makes a Distribution read as its name in JSON reports.
func (d Distribution) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads a saved report's distribution.
func (d *Distribution) UnmarshalText(b []byte) error {
	v, err := ParseDistribution(string(b))
	if err == nil {
		*d = v
	}
	return err
}

// SpreadEvent is one generated event: which product (an index into the
// run's products), what kind, and which user.
type SpreadEvent struct {
	Product int
	Type    pricing.EventType
	User    int
}

// Spread decides every event of a run from the run's seed and the event's
// index alone, so that any number of senders can build their batches
// concurrently, without sharing a random source or allocating, and a run
// is reproduced exactly by its seed (a test can recompute what a run
// sent). The event mix is the demo's: 80% views, 15% carts, 5% purchases,
// from users U1 to U1000.
type Spread struct {
	n    uint64
	dist Distribution
	key  uint64 // the seed, mixed
	// start and stride are the uniform walk: event k names product
	// (start + k*stride) mod n; stride is coprime with n, so that the
	// walk visits every product once per n events.
	start, stride uint64
	// cum is the zipf popularity, cumulative and normalized to 1.
	cum []float64
}

// NewSpread returns the spread of events over n products.
func NewSpread(n int, d Distribution, seed uint64) (*Spread, error) {
	if n < 1 || n > catalog.MaxSynthetic {
		return nil, fmt.Errorf("loadgen: %d products: want 1 to %d", n, catalog.MaxSynthetic)
	}
	if d != Uniform && d != Zipf {
		return nil, fmt.Errorf("loadgen: unknown distribution %d", d)
	}
	s := &Spread{n: uint64(n), dist: d, key: mix(seed)}
	s.start = s.key % s.n
	// A stride near n/φ scatters consecutive events over the catalog
	// (consecutive events of a batch name products far apart, as
	// independent shoppers would) while still covering it evenly.
	s.stride = max(uint64(float64(n)*0.6180339887498949), 1)
	for gcd(s.stride, s.n) != 1 {
		s.stride++
	}
	if d == Zipf {
		s.cum = make([]float64, n)
		total := 0.0
		for i := range s.cum {
			total += 1 / float64(i+1)
			s.cum[i] = total
		}
		for i := range s.cum {
			s.cum[i] /= total
		}
	}
	return s, nil
}

// Products is the number of products the events spread over.
func (s *Spread) Products() int { return int(s.n) }

// Distribution is the spread's distribution.
func (s *Spread) Distribution() Distribution { return s.dist }

// Event is the run's event number k (from 0).
func (s *Spread) Event(k uint64) SpreadEvent {
	h := mix(s.key + k*0x9e3779b97f4a7c15)
	ev := SpreadEvent{Type: pricing.Purchase, User: 1 + int(h%users)}
	switch u := unit(h); {
	case u < viewShare:
		ev.Type = pricing.View
	case u < viewShare+cartShare:
		ev.Type = pricing.Cart
	}
	if s.dist == Uniform {
		ev.Product = int((s.start + (k%s.n)*s.stride) % s.n)
		return ev
	}
	// The first product whose cumulative popularity reaches u.
	u := unit(mix(h))
	lo, hi := 0, len(s.cum)-1
	for lo < hi {
		m := int(uint(lo+hi) >> 1)
		if s.cum[m] < u {
			lo = m + 1
		} else {
			hi = m
		}
	}
	ev.Product = lo
	return ev
}

// mix is the splitmix64 finalizer: consecutive inputs give unrelated
// outputs.
func mix(z uint64) uint64 {
	z += 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// unit maps h's top 53 bits to [0, 1).
func unit(h uint64) float64 { return float64(h>>11) / (1 << 53) }

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// productSet is the products a run's events name: the synthetic catalog
// of n products when list is nil (ids made on the fly, never stored), or
// list.
type productSet struct {
	list []pricing.Product
	n    int
}

func (p productSet) len() int {
	if p.list != nil {
		return len(p.list)
	}
	return p.n
}

// appendID appends product i's id.
func (p productSet) appendID(b []byte, i int) []byte {
	if p.list != nil {
		return append(b, p.list[i].ID...)
	}
	return catalog.AppendSyntheticID(b, i)
}

// price is the price events of product i say the shopper saw: its base
// price.
func (p productSet) price(i int) float64 {
	if p.list != nil {
		return p.list[i].BasePrice
	}
	return catalog.SyntheticBasePrice(i)
}
