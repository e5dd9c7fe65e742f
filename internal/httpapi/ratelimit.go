package httpapi

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket per key (an API key's name, or a client
// address): each key may spend burst tokens at once and gets rate tokens a
// second back. The number of keys it tracks is bounded: when full, it
// forgets the buckets that have filled up again (idle clients), at most
// once a second, and otherwise refuses new keys rather than grow, so a
// flood of addresses can exhaust neither memory nor, by making every
// request scan the map under the lock, the CPU.
type limiter struct {
	rate, burst float64
	maxKeys     int

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastSweep time.Time
}

type bucket struct {
	tokens float64
	at     time.Time
}

// newLimiter returns a limiter, or nil (no limit) when rate is 0.
func newLimiter(rate float64, burst int, maxKeys int) *limiter {
	if rate <= 0 {
		return nil
	}
	if burst < 1 {
		burst = int(math.Ceil(rate))
	}
	return &limiter{rate: rate, burst: float64(burst), maxKeys: maxKeys, buckets: make(map[string]*bucket)}
}

// take spends one token of key's bucket at now. When there is none, it
// reports how long until there is.
func (l *limiter) take(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= l.maxKeys && !l.forgetIdle(now) {
			return false, time.Second
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[key] = b
	}
	b.tokens, b.at = l.tokens(b, now), now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, l.wait(b.tokens)
}

// peek reports whether key has a token left, without spending it.
func (l *limiter) peek(key string, now time.Time) (ok bool, retryAfter time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		return true, 0
	}
	if t := l.tokens(b, now); t < 1 {
		return false, l.wait(t)
	}
	return true, 0
}

// tokens is what b holds at now.
func (l *limiter) tokens(b *bucket, now time.Time) float64 {
	return math.Min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
}

// wait is how long until a bucket holding tokens has one.
func (l *limiter) wait(tokens float64) time.Duration {
	return time.Duration((1 - tokens) / l.rate * float64(time.Second))
}

// forgetIdle drops the buckets that are full again, unless it did less
// than a second ago; it reports whether it freed any.
func (l *limiter) forgetIdle(now time.Time) bool {
	if now.Sub(l.lastSweep) < time.Second {
		return false
	}
	l.lastSweep = now
	n := len(l.buckets)
	for k, b := range l.buckets {
		if l.tokens(b, now) >= l.burst {
			delete(l.buckets, k)
		}
	}
	return len(l.buckets) < n
}
