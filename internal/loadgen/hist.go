package loadgen

import (
	"math"
	"math/bits"
	"time"
)

// histogram counts durations in HDR-style log-linear buckets.
//
// A sizing run can last long enough for tens of millions of events, and
// keeping every sample (8 bytes each) would cost more memory than the
// engine under test; percentiles only need to be right to about a percent.
// So values are counted, not kept: below 2^(subBits+1) ns each nanosecond has
// its own bucket, and above that every power-of-two range is split into
// 2^subBits equal buckets, so a bucket is never wider than 1/128 of the
// values in it (under 0.8% error) from 1 ns up to maxExp (2^40 ns, about
// 18 minutes; longer values are counted in the top bucket). That is 4352
// counters, 34 KiB, whatever the run's length. Max is kept exactly.
type histogram struct {
	counts [numBuckets]int64
	n      int64
	max    time.Duration
}

const (
	subBits    = 7
	subCount   = 1 << subBits
	maxExp     = 40
	numBuckets = (maxExp - subBits + 1) * subCount
)

// bucketOf is the bucket holding v nanoseconds (v >= 0).
func bucketOf(v uint64) int {
	if v >= 1<<maxExp {
		v = 1<<maxExp - 1
	}
	e := bits.Len64(v) - subBits - 1
	if e < 0 {
		e = 0
	}
	return e<<subBits + int(v>>uint(e))
}

// bucketHigh is the largest value, in nanoseconds, that bucket i holds.
func bucketHigh(i int) uint64 {
	if i < 2*subCount {
		return uint64(i)
	}
	e := uint(i>>subBits - 1)
	m := uint64(i - int(e)<<subBits)
	return m<<e + 1<<e - 1
}

// record counts one duration; negative ones (a clock that stepped back)
// count as zero.
func (h *histogram) record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	h.n++
	if d > h.max {
		h.max = d
	}
}

// quantile is the value at or below which a fraction q of the counted
// values lie: the upper edge of the bucket holding the ceil(q*n)th value,
// never more than the exact maximum, so quantiles never overstate it.
func (h *histogram) quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(math.Ceil(q * float64(h.n)))
	rank = min(max(rank, 1), h.n)
	var seen int64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			v := bucketHigh(i)
			if v > uint64(h.max) {
				return h.max
			}
			return time.Duration(v)
		}
	}
	return h.max
}
