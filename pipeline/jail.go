package pipeline

import (
	"cmp"
	"math"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysban/sysban"
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

// jail counts failures of one JailSpec and decides bans by its rule: an
// address that fails MaxRetry times within FindTime is banned for BanTime,
// unless IgnoreIP covers it; while banned, its failures are only noted
// (rate-limited). The failing addresses and their last failures are kept in
// a bounded addrTable per shard (addrtable.go), the bans it decided or was
// told of in the shard's banned map, both bounded by MaxTracked. Times
// are int64 nanoseconds since the pipeline's epoch (Options.Now at New),
// monotonic when the clock is time.Now.
type jail struct {
	spec      JailSpec
	findTime  int64
	banTime   int64 // math.MaxInt64 for a permanent ban
	ignore    []netip.Prefix
	shards    []shard
	shardMask uint64
	seed      uint64
	// maxTracked is the bound the shards were sized for.
	maxTracked int
	// mask makes an address the key of the prefix it counts toward;
	// v4bits and v6bits are those prefixes' lengths.
	mask           keyMask
	v4bits, v6bits int
	// others holds the bans of any other length (a manual /48 in a /64
	// jail, a single address narrowed by protection): few, so a map
	// under one lock, checked on each failure only while it has any.
	othersMu sync.Mutex
	others   map[netip.Prefix]banState
	nOthers  atomic.Int32

	totalFailed   atomic.Uint64
	totalBanned   atomic.Uint64
	evicted       atomic.Uint64
	forgotten     atomic.Uint64
	ignored       atomic.Uint64
	unresolved    atomic.Uint64
	resolved      atomic.Uint64
	alreadyBanned atomic.Uint64
	narrowed      atomic.Uint64 // prefix bans narrowed to spare protected addresses
	observed      atomic.Uint64 // bans kept in observe mode (in totalBanned too)
	escalatedN    atomic.Uint64 // network bans decided by escalation
	escalations   escalator
	// bansByBits counts kept bans by family (0 IPv4, 1 IPv6) and prefix
	// length.
	bansByBits [2][129]atomic.Uint64

	// "already banned" notices this second (noticeSec, unix seconds of
	// the pipeline clock) and those held back since the last one logged.
	noticeSec, noticeN atomic.Int64
	noticeHeld         atomic.Uint64
	route              *route // the route feeding it (set by New)
	// perOrigin counts failures per origin host (JailSpec.CountBy
	// origin, origin.go); nil when the jail counts by address.
	perOrigin *originJails

	untrustedCounters
}

// shard is one lock stripe of a jail: the addresses it tracks and the
// bans it remembers, both bounded by limit.
type shard struct {
	mu      sync.Mutex
	limit   int // most tracked addresses, and most remembered bans
	tracked addrTable

	banned  map[addrKey]banState
	pruneAt int // len(banned) at which expired bans are swept next
}

// banState is a ban the jail knows of. kept says the ban is in the store
// (see Pipeline.announce): only kept bans count as CurrentlyBanned, while
// every known ban already makes further failures "already banned", so an
// address is not decided twice while its first ban is on its way.
type banState struct {
	expiry     int64
	lastNotice int64
	noticed    bool
	kept       bool
}

// noticeDue reports whether the rate-limited "already banned" notice of b
// is due at now, and if so marks it given.
func (b *banState) noticeDue(now int64) bool {
	if b.noticed && now-b.lastNotice < int64(noticeInterval) {
		return false
	}
	b.noticed, b.lastNotice = true, now
	return true
}

func newJail(spec JailSpec, maxTracked int, seed uint64) *jail {
	j := &jail{
		spec:     spec,
		findTime: int64(spec.FindTime),
		banTime:  int64(spec.BanTime),
		seed:     seed,

		maxTracked: maxTracked,
		v4bits:     cmp.Or(spec.IPv4Prefix, 32),
		v6bits:     cmp.Or(spec.IPv6Prefix, 128),
		others:     map[netip.Prefix]banState{},
	}
	j.mask = newKeyMask(j.v4bits, j.v6bits)
	if spec.CountBy == CountByOrigin {
		j.perOrigin = newOriginJails()
	}
	if spec.BanTime < 0 {
		j.banTime = math.MaxInt64
	}
	for _, p := range spec.IgnoreIP {
		j.ignore = append(j.ignore, sysban.CanonicalPrefix(p))
	}
	n := 1
	for n < maxShards && (n*2)*minPerShard <= maxTracked {
		n *= 2
	}
	j.shards = make([]shard, n)
	j.shardMask = uint64(n - 1)
	lineBytes := shardLineBytes(maxTracked, n)
	for i := range j.shards {
		s := &j.shards[i]
		// Spread the remainder so the limits sum to exactly maxTracked.
		s.limit = maxTracked / n
		if i < maxTracked%n {
			s.limit++
		}
		s.tracked.init(s.limit, seed, lineBytes)
		s.banned = make(map[addrKey]banState)
		s.pruneAt = 64
	}
	return j
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

// failure counts one failure of a at now (nanoseconds since epoch) toward
// a's prefix; line is copied (cut to maxLineBytes), not retained.
func (j *jail) failure(a netip.Addr, now int64, line string) verdict {
	var v verdict
	if j.nOthers.Load() > 0 && j.otherBan(a, now, &v) {
		return v
	}
	k := keyOf(a, &j.mask)
	h := hashKey(&k, j.seed)
	s := &j.shards[h&j.shardMask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.banned[k]; ok {
		if now < b.expiry {
			v.banned = true
			if v.notice = b.noticeDue(now); v.notice {
				s.banned[k] = b
			}
			return v
		}
		delete(s.banned, k)
	}
	// The table keeps the last MaxRetry failures of each address: the
	// address is banned when it has that many and the oldest of them is
	// inside findtime.
	maxRetry := j.spec.MaxRetry
	i, n, oldest, evicted := s.tracked.note(&k, h, now, line, maxRetry, now-j.findTime)
	v.evicted = evicted
	if n < maxRetry || now-oldest > j.findTime {
		return v
	}
	v.ban, v.failures = true, n
	v.lines = s.tracked.linesOf(i)
	s.tracked.untrack(i)
	expiry := int64(math.MaxInt64)
	if j.banTime != math.MaxInt64 && now <= math.MaxInt64-j.banTime {
		expiry = now + j.banTime
	}
	s.banned[k] = banState{expiry: expiry}
	if len(s.banned) >= s.pruneAt {
		s.pruneBans(now)
	}
	// Remembered bans share the MaxTracked bound: the firewall, not this
	// map, enforces them, so forgetting one only means a later failure
	// from that address is banned (re-sent) again.
	if len(s.banned) > s.limit {
		for old := range s.banned {
			if old != k {
				delete(s.banned, old)
				v.forgotBan = true
				break
			}
		}
	}
	return v
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

// shardOf returns the shard of key k.
func (j *jail) shardOf(k *addrKey) *shard {
	return &j.shards[hashKey(k, j.seed)&j.shardMask]
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
	j.narrowed.Store(prev.narrowed.Load())
	j.observed.Store(prev.observed.Load())
	j.escalatedN.Store(prev.escalatedN.Load())
	for f := range prev.bansByBits {
		for b := range prev.bansByBits[f] {
			j.bansByBits[f][b].Store(prev.bansByBits[f][b].Load())
		}
	}
	for i := range prev.shards {
		ps := &prev.shards[i]
		ps.mu.Lock()
		for k, b := range ps.banned {
			if j.mask != prev.mask {
				// The prefix lengths changed: the old key is a prefix
				// of the old length, kept as one of others.
				bits := prev.v6bits
				a := netip.AddrFrom16(k).Unmap()
				if a.Is4() {
					bits = prev.v4bits
				}
				j.rememberOther(netip.PrefixFrom(a, bits), b)
				continue
			}
			s := j.shardOf(&k)
			s.mu.Lock()
			if len(s.banned) < s.limit {
				s.banned[k] = b
			}
			s.mu.Unlock()
		}
		ps.mu.Unlock()
	}
	prev.othersMu.Lock()
	for p, b := range prev.others {
		j.rememberOther(p, b)
	}
	prev.othersMu.Unlock()
	if j.spec.Escalate == prev.spec.Escalate {
		j.escalations.inherit(&prev.escalations)
	}
	if j.perOrigin != nil && prev.perOrigin != nil {
		j.perOrigin.inherit(j, prev.perOrigin)
	}
}

// remember records a ban of p until expiry: one decided elsewhere (restored
// from the store, or a manual ban: kept) or the longer bantime of a ban the
// jail just decided (not kept yet), so that failures from inside p
// meanwhile count as already banned.
func (j *jail) remember(p netip.Prefix, expiry int64, kept bool) {
	if !j.counted(p) {
		j.rememberOther(p, banState{expiry: expiry, kept: kept})
		return
	}
	k := keyOf(p.Addr(), &j.mask)
	h := hashKey(&k, j.seed)
	s := &j.shards[h&j.shardMask]
	s.mu.Lock()
	if b, ok := s.banned[k]; !ok || b.expiry < expiry {
		if ok || len(s.banned) < s.limit {
			s.banned[k] = banState{expiry: expiry, kept: kept || b.kept}
		}
	} else if kept && !b.kept {
		b.kept = true
		s.banned[k] = b
	}
	s.tracked.untrackKey(&k, h)
	s.mu.Unlock()
}

// keep marks p's ban as kept (recorded in the store), if the jail (or
// one of its origins' counters) still remembers it.
func (j *jail) keep(p netip.Prefix) {
	if j.perOrigin != nil {
		for _, c := range j.perOrigin.all() {
			c.keep(p)
		}
	}
	if !j.counted(p) {
		j.othersMu.Lock()
		if b, ok := j.others[p]; ok && !b.kept {
			b.kept = true
			j.others[p] = b
		}
		j.othersMu.Unlock()
		return
	}
	k := keyOf(p.Addr(), &j.mask)
	s := j.shardOf(&k)
	s.mu.Lock()
	if b, ok := s.banned[k]; ok && !b.kept {
		b.kept = true
		s.banned[k] = b
	}
	s.mu.Unlock()
}

// forget drops p's ban so that new failures can ban it again; used when a
// ban could not be applied, or was lifted (from every origin's counter).
func (j *jail) forget(p netip.Prefix) {
	if j.perOrigin != nil {
		for _, c := range j.perOrigin.all() {
			c.forget(p)
		}
	}
	if !j.counted(p) {
		j.othersMu.Lock()
		if _, ok := j.others[p]; ok {
			delete(j.others, p)
			j.nOthers.Add(-1)
		}
		j.othersMu.Unlock()
		return
	}
	k := keyOf(p.Addr(), &j.mask)
	s := j.shardOf(&k)
	s.mu.Lock()
	delete(s.banned, k)
	s.mu.Unlock()
}

// counts returns the addresses currently failing (with a failure inside
// findtime) and currently banned (kept bans only), pruning what has expired
// on the way.
func (j *jail) counts(now int64) (failing, banned int) {
	for i := range j.shards {
		s := &j.shards[i]
		s.mu.Lock()
		s.tracked.prune(now - j.findTime)
		s.pruneBans(now)
		failing += s.tracked.len()
		for _, b := range s.banned {
			if b.kept {
				banned++
			}
		}
		s.mu.Unlock()
	}
	j.othersMu.Lock()
	for p, b := range j.others {
		switch {
		case now >= b.expiry:
			delete(j.others, p)
			j.nOthers.Add(-1)
		case b.kept:
			banned++
		}
	}
	j.othersMu.Unlock()
	if j.perOrigin != nil {
		for _, c := range j.perOrigin.all() {
			f, b := c.counts(now)
			failing, banned = failing+f, banned+b
		}
	}
	return failing, banned
}

// noticeBurst bounds the "already banned" notices of one jail per second.
// The per-address noticeInterval is not enough alone: tens of thousands of
// banned addresses still failing (a ban storm, or a firewall rule that does
// not cover the port) would be a log line each, a flood of its own that
// costs CPU while the pipeline is busiest.
const noticeBurst = 20

// allowNotice reports whether a notice may be logged in second sec, and
// how many were held back before it (to be said in that line).
// Approximate under concurrency, which is all a log budget needs.
func (j *jail) allowNotice(sec int64) (ok bool, held uint64) {
	if cur := j.noticeSec.Load(); cur != sec && j.noticeSec.CompareAndSwap(cur, sec) {
		j.noticeN.Store(0)
	}
	if j.noticeN.Add(1) > noticeBurst {
		j.noticeHeld.Add(1)
		return false, 0
	}
	return true, j.noticeHeld.Swap(0)
}
