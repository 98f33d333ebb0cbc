package pipeline

import (
	"encoding/binary"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// noticeInterval rate-limits the "already banned" notice per address: an
// address that keeps failing while banned usually means the firewall rule
// does not cover the port or the ban did not reach the kernel, which is worth
// one line, not one per attempt.
const noticeInterval = 10 * time.Minute

// maxShards bounds the lock striping of a jail; minPerShard keeps small
// MaxTracked values from being spread so thin that one busy shard evicts
// while others sit empty.
const (
	maxShards   = 32
	minPerShard = 16
)

// jail counts failures of one JailSpec. Times are int64 nanoseconds since
// the pipeline's epoch (Options.Now at New): 8 bytes per failure instead of
// 24, and monotonic when the clock is time.Now.
type jail struct {
	spec     JailSpec
	findTime int64
	banTime  int64 // math.MaxInt64 for a permanent ban
	ignore   []netip.Prefix
	shards   []shard
	seed     uint64
	// maxTracked is the bound the shards were sized for.
	maxTracked int

	totalFailed   atomic.Uint64
	totalBanned   atomic.Uint64
	evicted       atomic.Uint64
	forgotten     atomic.Uint64
	ignored       atomic.Uint64
	unresolved    atomic.Uint64
	resolved      atomic.Uint64
	alreadyBanned atomic.Uint64
	route         *route // the route feeding it (set by New)
}

// shard is one lock stripe of a jail.
type shard struct {
	mu      sync.Mutex
	limit   int // most tracked addresses this shard may hold
	failing map[netip.Addr]*tracked
	// lru is the sentinel of a list of tracked entries in order of last
	// failure: lru.next is the stalest (evicted first), lru.prev the newest.
	lru     tracked
	banned  map[netip.Addr]banState
	pruneAt int // len(banned) at which expired bans are swept next
}

// tracked is one failing address: its last MaxRetry failures in a ring.
// A jail may hold a million of these while under attack, so the layout is
// kept small: one slice of time+line slots (one allocation, grown to
// exactly MaxRetry) instead of parallel slices, and no count field, as the
// ring's length is its count. 72 bytes (80 with the size class) plus 24 per
// failure and the line itself; it was 112 plus two growing slices.
type tracked struct {
	addr       netip.Addr
	ring       []failureSlot // grows to MaxRetry, then is a ring
	next       int           // ring slot the next failure goes to
	prev, succ *tracked
}

// failureSlot is one remembered failure: when, and the line that told it.
type failureSlot struct {
	at   int64
	line string
}

// newest is the time of t's last failure: the slot before next.
func (t *tracked) newest() int64 {
	return t.ring[(t.next+len(t.ring)-1)%len(t.ring)].at
}

// add records a failure at now. The ring grows as failures come, so an
// address that fails once costs one slot whatever maxretry says, and it
// grows to exactly maxRetry slots (append would round up to 8 for 5).
func (t *tracked) add(now int64, line string, maxRetry int) {
	if len(t.ring) < maxRetry {
		if len(t.ring) == cap(t.ring) {
			grown := make([]failureSlot, len(t.ring), min(max(1, 2*cap(t.ring)), maxRetry))
			copy(grown, t.ring)
			t.ring = grown
		}
		t.ring = append(t.ring, failureSlot{at: now, line: line})
		t.next = len(t.ring) % maxRetry
		return
	}
	t.ring[t.next] = failureSlot{at: now, line: line}
	t.next = (t.next + 1) % maxRetry
}

type banState struct {
	expiry     int64
	lastNotice int64
	noticed    bool
}

func newJail(spec JailSpec, maxTracked int, seed uint64) *jail {
	j := &jail{
		spec:     spec,
		findTime: int64(spec.FindTime),
		banTime:  int64(spec.BanTime),
		seed:     seed,

		maxTracked: maxTracked,
	}
	if spec.BanTime < 0 {
		j.banTime = math.MaxInt64
	}
	for _, p := range spec.IgnoreIP {
		j.ignore = append(j.ignore, canonicalPrefix(p))
	}
	n := 1
	for n < maxShards && (n*2)*minPerShard <= maxTracked {
		n *= 2
	}
	j.shards = make([]shard, n)
	for i := range j.shards {
		s := &j.shards[i]
		// Spread the remainder so the limits sum to exactly maxTracked.
		s.limit = maxTracked / n
		if i < maxTracked%n {
			s.limit++
		}
		s.failing = make(map[netip.Addr]*tracked)
		s.banned = make(map[netip.Addr]banState)
		s.lru.prev, s.lru.succ = &s.lru, &s.lru
		s.pruneAt = 64
	}
	return j
}

func (j *jail) shardOf(a netip.Addr) *shard {
	b := a.As16()
	h := binary.LittleEndian.Uint64(b[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(b[8:])*0xc2b2ae3d27d4eb4f ^ j.seed
	h ^= h >> 31
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 29
	return &j.shards[h&uint64(len(j.shards)-1)]
}

func (j *jail) ignores(a netip.Addr) bool {
	for _, p := range j.ignore {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// verdict is what one failure led to.
type verdict struct {
	ban       bool     // a new ban was decided
	failures  int      // failures in the window that led to the ban
	lines     []string // their lines, oldest first (with ban)
	banned    bool     // the address was already banned
	notice    bool     // ... and the rate-limited notice is due
	evicted   bool     // tracking it evicted another address
	forgotBan bool     // remembering the ban dropped another one
}

// failure counts one failure of a at now (nanoseconds since epoch).
func (j *jail) failure(a netip.Addr, now int64, line string) verdict {
	var v verdict
	s := j.shardOf(a)
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.banned[a]; ok {
		if now < b.expiry {
			v.banned = true
			if !b.noticed || now-b.lastNotice >= int64(noticeInterval) {
				v.notice = true
				b.noticed, b.lastNotice = true, now
				s.banned[a] = b
			}
			return v
		}
		delete(s.banned, a)
	}
	t := s.failing[a]
	if t == nil {
		t, v.evicted = s.track(a, j.spec.MaxRetry, now-j.findTime)
	} else {
		s.unlink(t)
		s.pushBack(t)
	}
	maxRetry := j.spec.MaxRetry
	t.add(now, line, maxRetry)
	// The ring holds the last MaxRetry failures, so once it is full its
	// oldest entry (the one the next write overwrites) decides whether all
	// of them fall inside findtime.
	if n := len(t.ring); n == maxRetry && now-t.ring[t.next].at <= j.findTime {
		v.ban, v.failures = true, n
		v.lines = make([]string, 0, n)
		for i := range n {
			v.lines = append(v.lines, t.ring[(t.next+i)%n].line)
		}
		s.untrack(t)
		expiry := int64(math.MaxInt64)
		if j.banTime != math.MaxInt64 && now <= math.MaxInt64-j.banTime {
			expiry = now + j.banTime
		}
		s.banned[a] = banState{expiry: expiry}
		if len(s.banned) >= s.pruneAt {
			s.pruneBans(now)
		}
		// Remembered bans share the MaxTracked bound: the firewall, not
		// this map, enforces them, so forgetting one only means a later
		// failure from that address is banned (re-sent) again.
		if len(s.banned) > s.limit {
			for old := range s.banned {
				if old != a {
					delete(s.banned, old)
					v.forgotBan = true
					break
				}
			}
		}
	}
	return v
}

// track starts tracking a. It first drops entries whose newest failure is
// at or before stale (they can no longer contribute to a ban), then, if the
// shard is still full, evicts the entry with the oldest last failure. Both
// come off the front of the LRU list, so the cost is O(1) amortised; an
// evicted entry's memory is reused for a.
func (s *shard) track(a netip.Addr, maxRetry int, stale int64) (t *tracked, evicted bool) {
	for s.lru.succ != &s.lru && len(s.failing) > 0 {
		old := s.lru.succ
		if old.newest() > stale {
			break
		}
		s.untrack(old)
		t = old
	}
	if len(s.failing) >= s.limit && s.lru.succ != &s.lru {
		t = s.lru.succ
		s.untrack(t)
		evicted = true
	}
	if t == nil || cap(t.ring) > maxRetry {
		t = &tracked{}
	}
	clear(t.ring) // a reused entry must not keep another address's lines
	t.ring = t.ring[:0]
	t.addr, t.next = a, 0
	s.failing[a] = t
	s.pushBack(t)
	return t, evicted
}

func (s *shard) untrack(t *tracked) {
	s.unlink(t)
	delete(s.failing, t.addr)
}

func (s *shard) unlink(t *tracked) {
	t.prev.succ = t.succ
	t.succ.prev = t.prev
	t.prev, t.succ = nil, nil
}

func (s *shard) pushBack(t *tracked) {
	t.prev = s.lru.prev
	t.succ = &s.lru
	s.lru.prev.succ = t
	s.lru.prev = t
}

// pruneBans drops expired bans. It runs when the map has doubled since the
// last sweep, which keeps the cost O(1) amortised per ban.
func (s *shard) pruneBans(now int64) {
	for a, b := range s.banned {
		if now >= b.expiry {
			delete(s.banned, a)
		}
	}
	s.pruneAt = max(64, 2*len(s.banned))
}

// inherit takes prev's counters and remembered bans (a reload changed the
// jail's spec; its history still counts).
func (j *jail) inherit(prev *jail) {
	j.totalFailed.Store(prev.totalFailed.Load())
	j.totalBanned.Store(prev.totalBanned.Load())
	j.evicted.Store(prev.evicted.Load())
	j.forgotten.Store(prev.forgotten.Load())
	j.ignored.Store(prev.ignored.Load())
	j.unresolved.Store(prev.unresolved.Load())
	j.resolved.Store(prev.resolved.Load())
	j.alreadyBanned.Store(prev.alreadyBanned.Load())
	for i := range prev.shards {
		ps := &prev.shards[i]
		ps.mu.Lock()
		for a, b := range ps.banned {
			s := j.shardOf(a)
			s.mu.Lock()
			if len(s.banned) < s.limit {
				s.banned[a] = b
			}
			s.mu.Unlock()
		}
		ps.mu.Unlock()
	}
}

// remember records a ban decided elsewhere (restored from the store, or a
// manual ban) so that failures from a meanwhile count as already banned.
func (j *jail) remember(a netip.Addr, expiry int64) {
	s := j.shardOf(a)
	s.mu.Lock()
	if b, ok := s.banned[a]; !ok || b.expiry < expiry {
		if ok || len(s.banned) < s.limit {
			s.banned[a] = banState{expiry: expiry}
		}
	}
	if t := s.failing[a]; t != nil {
		s.untrack(t)
	}
	s.mu.Unlock()
}

// forget drops a's ban so that new failures can ban it again; used when a
// ban could not be applied.
func (j *jail) forget(a netip.Addr) {
	s := j.shardOf(a)
	s.mu.Lock()
	delete(s.banned, a)
	s.mu.Unlock()
}

// counts returns the addresses currently failing (with a failure inside
// findtime) and currently banned, pruning what has expired on the way.
func (j *jail) counts(now int64) (failing, banned int) {
	for i := range j.shards {
		s := &j.shards[i]
		s.mu.Lock()
		for s.lru.succ != &s.lru {
			old := s.lru.succ
			if old.newest() > now-j.findTime {
				break
			}
			s.untrack(old)
		}
		s.pruneBans(now)
		failing += len(s.failing)
		banned += len(s.banned)
		s.mu.Unlock()
	}
	return failing, banned
}

// canonicalPrefix unmaps an IPv4-mapped prefix (::ffff:10.0.0.0/104 ->
// 10.0.0.0/8) so it matches addresses after sysban.CanonicalAddr.
func canonicalPrefix(p netip.Prefix) netip.Prefix {
	a := p.Addr()
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return netip.PrefixFrom(a.WithZone(""), p.Bits()).Masked()
}
