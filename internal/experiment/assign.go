package experiment

import "math"

// Assigner maps shoppers or products to arms. Assignment is a pure
// function of the salt, the id and the weights, so it is sticky by
// construction: the same shopper gets the same arm on every request, on
// every replica and after every restart, with nothing stored. Build it
// once per experiment (NewAssigner) and share it: it is read-only.
type Assigner struct {
	salt  uint64 // IDHash of the definition's salt
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
	a := &Assigner{salt: IDHash(d.Salt), split: d.Split, cut: make([]uint64, len(d.Arms))}
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
	if a.split == ByProduct {
		return a.ArmOf(0, IDHash(product))
	}
	return a.ArmOf(IDHash(shopper), 0)
}

// ArmOf is Arm for ids already hashed with IDHash (0: no id), as the
// ingest path keeps the shopper id of an event, without a string.
func (a *Assigner) ArmOf(shopper, product uint64) int {
	key := shopper
	if a.split == ByProduct {
		key = product
	}
	if key == 0 {
		return -1
	}
	h := Mix(a.salt, key)
	for i, c := range a.cut {
		if h <= c {
			return i
		}
	}
	return len(a.cut) - 1
}

// IDHash is the 64-bit FNV-1a hash of an id, or 0 for no id (an id that
// hashes to 0 is taken as 1). It is part of the assignment contract (see
// Hash), for strings and bytes alike so that a decoder hashes what it
// reads without making a string of it.
func IDHash[T string | []byte](id T) uint64 {
	if len(id) == 0 {
		return 0
	}
	const offset, prime = 14695981039346656037, 1099511628211
	h := uint64(offset)
	for i := 0; i < len(id); i++ {
		h = (h ^ uint64(id[i])) * prime
	}
	return max(h, 1)
}

// Mix combines the hashes of a salt and an id into the assignment hash:
// the id's hash times the golden-ratio constant, xored with the salt's,
// through the SplitMix64 finisher, so that every bit of both moves every
// bit of the result and two salts assign independently.
func Mix(salt, id uint64) uint64 {
	h := salt ^ id*0x9e3779b97f4a7c15
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// Hash is the assignment hash of a salt and an id: Mix(IDHash(salt),
// IDHash(id)). It is part of the contract, not a detail: changing it
// reassigns every shopper of every running experiment.
func Hash(salt, id string) uint64 { return Mix(IDHash(salt), IDHash(id)) }
