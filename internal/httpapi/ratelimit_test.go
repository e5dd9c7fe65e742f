package httpapi

import (
	"fmt"
	"testing"
	"time"
)

func TestLimiterBucket(t *testing.T) {
	l := newLimiter(2, 3, 10)
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 3 {
		if ok, _ := l.take("a", t0); !ok {
			t.Fatalf("take %d of a burst of 3 refused", i+1)
		}
	}
	ok, wait := l.take("a", t0)
	if ok || wait != 500*time.Millisecond {
		t.Fatalf("4th take at once: %v, retry after %v; want refused, 500ms (2 tokens/s)", ok, wait)
	}
	if ok, _ := l.take("b", t0); !ok {
		t.Fatal("another key shares a's bucket")
	}
	if ok, _ := l.take("a", t0.Add(500*time.Millisecond)); !ok {
		t.Fatal("a token did not come back after 500ms")
	}
	if ok, _ := l.peek("a", t0.Add(500*time.Millisecond)); ok {
		t.Fatal("peek sees a token that was just spent")
	}
	if newLimiter(0, 0, 10) != nil {
		t.Fatal("rate 0 is no limit")
	}
	var none *limiter
	if ok, _ := none.take("x", t0); !ok {
		t.Fatal("a nil limiter refused")
	}
}

func TestLimiterKeysAreBounded(t *testing.T) {
	l := newLimiter(1, 1, 3)
	t0 := time.Unix(1_800_000_000, 0)
	for i := range 3 {
		l.take(fmt.Sprint(i), t0) // each bucket now empty
	}
	if ok, _ := l.take("new", t0.Add(900*time.Millisecond)); ok {
		t.Fatal("a 4th key was tracked beyond the bound while every bucket was busy")
	}
	if len(l.buckets) != 3 {
		t.Fatalf("%d buckets, want 3", len(l.buckets))
	}
	// At 1.2s the buckets are idle again, but the last sweep (at 0.9s) was
	// less than a second ago: a flood of new keys does not scan the map on
	// every request.
	if ok, _ := l.take("new", t0.Add(1200*time.Millisecond)); ok {
		t.Fatal("the map was swept again within a second of the last sweep")
	}
	if ok, _ := l.take("new", t0.Add(2*time.Second)); !ok {
		t.Fatal("idle buckets were not forgotten to make room")
	}
}
