package experiment

import "math"

// Assigner maps shoppers or products to arms. Assignment is a pure
// function of the salt, the id and the weights, so it is sticky by
// construction: the same shopper gets the same arm on every request, on
// every replica and after every restart, with nothing stored. Build it
// once per experiment (NewAssigner) and share it: it is read-only.
type Assigner struct {
	salt  string
	split Split
	// cut[i] is the upper end, in [0, 2^64), of arm i's share of the
	// hash space; the last is 2^64-1.
	cut []uint64
}

// NewAssigner builds the assigner of a normalized, valid definition.
func NewAssigner(d *Definition) *Assigner {
	total := 0.0
	for _, a := range d.Arms {
		total += a.Weight
	}
	a := &Assigner{salt: d.Salt, split: d.Split, cut: make([]uint64, len(d.Arms))}
	acc := 0.0
	for i, arm := range d.Arms {
		acc += arm.Weight
		f := acc / total
		if i == len(d.Arms)-1 || f >= 1 {
			a.cut[i] = math.MaxUint64
			continue
		}
		if v := math.Ldexp(f, 64); v < math.Ldexp(1, 64) {
			a.cut[i] = uint64(v)
		} else {
			a.cut[i] = math.MaxUint64
		}
	}
	return a
}

// Arm returns the arm of a shopper's visit to a product, or -1 when the
// visit is not in the experiment: split by shopper and no shopper id
// (an anonymous visit is priced like the baseline and not counted).
func (a *Assigner) Arm(shopper, product string) int {
	key := shopper
	if a.split == ByProduct {
		key = product
	} else if shopper == "" {
		return -1
	}
	h := Hash(a.salt, key)
	for i, c := range a.cut {
		if h <= c {
			return i
		}
	}
	return len(a.cut) - 1
}

// Hash is the assignment hash of a salt and an id: 64-bit FNV-1a over the
// salt, a zero byte and the id, finished with the SplitMix64 mixer so that
// ids differing in their last byte spread over the whole range. It is
// part of the contract, not a detail: changing it reassigns every shopper
// of every running experiment.
func Hash(salt, id string) uint64 {
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(salt); i++ {
		h = (h ^ uint64(salt[i])) * prime
	}
	h *= prime // the zero byte between salt and id
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * prime
	}
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}
