package receiver

import (
	"net/netip"
)

// senderLimiter is a token bucket per source address, for one udp listener
// and used only by its read goroutine (so it takes no lock). Its map is
// bounded: a forged-source flood can fill it, never grow it.
type senderLimiter struct {
	rate     float64 // tokens per nanosecond
	burst    float64
	max      int
	buckets  map[netip.Addr]*bucket
	overflow bucket // shared by senders that found the map full
	// lastSweep is when the map was last swept; a full map is swept at
	// most once per refill time, so a flood costs O(1) per message.
	lastSweep int64
	refill    int64 // nanoseconds for an empty bucket to fill up
}

type bucket struct {
	tokens float64
	last   int64 // unix nanos of the last update
}

func newSenderLimiter(perSecond float64, burst, maxSenders int) *senderLimiter {
	if perSecond <= 0 {
		return nil
	}
	rate := perSecond / 1e9
	return &senderLimiter{
		rate:    rate,
		burst:   float64(burst),
		max:     maxSenders,
		buckets: make(map[netip.Addr]*bucket),
		refill:  int64(float64(burst)/rate) + 1,
	}
}

// allow takes one token from a's bucket at time now (unix nanos) and
// reports whether there was one.
func (l *senderLimiter) allow(a netip.Addr, now int64) bool {
	b := l.buckets[a]
	if b == nil {
		if len(l.buckets) >= l.max && !l.sweep(now) {
			return l.overflow.take(now, l)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[a] = b
	}
	return b.take(now, l)
}

func (b *bucket) take(now int64, l *senderLimiter) bool {
	if b.last == 0 { // the overflow bucket's first use
		b.tokens, b.last = l.burst, now
	} else if dt := now - b.last; dt > 0 {
		b.tokens = min(l.burst, b.tokens+float64(dt)*l.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// sweep forgets the buckets that have refilled completely since their last
// use: a fresh bucket would hold the same tokens, so nothing is lost. It
// reports whether room was made.
func (l *senderLimiter) sweep(now int64) bool {
	if now-l.lastSweep < l.refill {
		return false
	}
	l.lastSweep = now
	for a, b := range l.buckets {
		if now-b.last >= l.refill {
			delete(l.buckets, a)
		}
	}
	return len(l.buckets) < l.max
}
