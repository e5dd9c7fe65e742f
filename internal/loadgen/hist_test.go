package loadgen

import (
	"testing"
	"time"
)

func TestBucketsTileTheRange(t *testing.T) {
	for i := 0; i < numBuckets-1; i++ {
		hi := bucketHigh(i)
		if got := bucketOf(hi); got != i {
			t.Fatalf("bucketOf(bucketHigh(%d) = %d) = %d", i, hi, got)
		}
		if got := bucketOf(hi + 1); got != i+1 {
			t.Fatalf("bucketOf(%d) = %d, want %d: buckets leave a gap or overlap", hi+1, got, i+1)
		}
		if i >= 2*subCount {
			lo := bucketHigh(i-1) + 1
			if width := hi - lo + 1; float64(width) > float64(lo)/subCount {
				t.Fatalf("bucket %d [%d, %d] is wider than 1/%d of its values", i, lo, hi, subCount)
			}
		}
	}
	if got := bucketOf(1 << 62); got != numBuckets-1 {
		t.Fatalf("huge value in bucket %d, want the top one %d", got, numBuckets-1)
	}
}

func TestQuantiles(t *testing.T) {
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Fatal("empty histogram has a median")
	}
	// 1 µs .. 100 ms, evenly.
	for v := time.Microsecond; v <= 100*time.Millisecond; v += time.Microsecond {
		h.record(v)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 50 * time.Millisecond}, {0.9, 90 * time.Millisecond}, {0.99, 99 * time.Millisecond}, {0.999, 99900 * time.Microsecond}} {
		got := h.quantile(c.q)
		if got < c.want || float64(got-c.want) > float64(c.want)/subCount {
			t.Errorf("q%v = %v, want %v to within 1/%d above", c.q, got, c.want, subCount)
		}
	}
	if h.quantile(1) != 100*time.Millisecond || h.max != 100*time.Millisecond {
		t.Errorf("q1 = %v, max = %v, want both exactly 100ms", h.quantile(1), h.max)
	}

	var one histogram
	one.record(1234567 * time.Nanosecond)
	if one.quantile(0.5) != 1234567*time.Nanosecond {
		t.Errorf("a single value's median = %v, want the value itself (capped by the exact max)", one.quantile(0.5))
	}
	one.record(-time.Second)
	if one.quantile(0) != 0 {
		t.Errorf("negative durations should count as 0, got q0 = %v", one.quantile(0))
	}
}
