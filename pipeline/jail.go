package pipeline

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"strings"
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

// addrKey is an address as the jail stores it: its 16-byte form, which
// holds no pointer (netip.Addr is 24 bytes with one, for the zone), so the
// tables a jail keeps under attack are never scanned by the collector.
// IPv4 and IPv4-mapped forms share a key; the pipeline canonicalises
// addresses before counting anyway.
type addrKey = [16]byte

// jail counts failures of one JailSpec. Times are int64 nanoseconds since
// the pipeline's epoch (Options.Now at New), monotonic when the clock is
// time.Now.
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

	totalFailed   atomic.Uint64
	totalBanned   atomic.Uint64
	evicted       atomic.Uint64
	forgotten     atomic.Uint64
	ignored       atomic.Uint64
	unresolved    atomic.Uint64
	resolved      atomic.Uint64
	alreadyBanned atomic.Uint64

	// "already banned" notices this second (noticeSec, unix seconds of
	// the pipeline clock) and those held back since the last one logged.
	noticeSec, noticeN atomic.Int64
	noticeHeld         atomic.Uint64
	route              *route // the route feeding it (set by New)
}

// shard is one lock stripe of a jail.
//
// A jail may track a million addresses while under attack, most of which
// fail once and are never heard from again, so a tracked address costs one
// pointer-free 40-byte record in a dense slab (failing), about 8 bytes of
// open-addressing index (table) and its line in a bounded byte ring
// (lines); only an address that fails again gets a ring of failure slots.
// None of it holds pointers but the rings, so the collector neither scans
// nor marks per address, and once the slabs have grown nothing is
// allocated per failure (the line is copied into the ring, not cloned).
type shard struct {
	mu    sync.Mutex
	limit int // most tracked addresses this shard may hold
	seed  uint64

	// failing holds the tracked addresses densely: untracking one moves
	// the last record into its place, so len(failing) is the count and a
	// record's index fits the uint32 links.
	failing []record
	// table indexes failing by address (linear probing, kept at most 3/4
	// full). A slot is 0 when empty, else the record's index+1 in its low
	// idxBits and the high bits of the address's hash above them, so a
	// probe only reads a record whose hash tag matches.
	table   []uint32
	idxMask uint32
	// stalest and newest are the ends of the LRU list threaded through
	// failing in order of last failure: stalest is evicted first.
	stalest, newest uint32

	// rings hold the failures of addresses that failed more than once;
	// freeRings are the unused ones, kept with their slots for reuse.
	rings     []ring
	freeRings []uint32

	lines lineArena

	banned  map[addrKey]banState
	pruneAt int // len(banned) at which expired bans are swept next
}

// none ends the LRU list.
const none = math.MaxUint32

// record is one tracked address.
type record struct {
	key        addrKey
	prev, next uint32 // LRU neighbours, towards stalest and newest
	at         int64  // time of the newest failure
	// ref is the lineRef of the address's only failure (at) until it fails
	// again; from then on it is ringFlag | the index of its ring in rings.
	ref uint64
}

// ringFlag marks a record's ref as a ring index; a lineRef never has it.
const ringFlag = 1 << 63

// ring is the last MaxRetry failures of an address that failed more than
// once. It grows as failures come, so an address that fails twice costs two
// slots whatever maxretry says, and grows to exactly MaxRetry slots (append
// would round 5 up to 8).
type ring struct {
	slots []failureSlot
	next  int // slot the next failure goes to once the ring is full
}

// failureSlot is one remembered failure: when, and where its line is.
type failureSlot struct {
	at   int64
	line uint64 // lineRef
}

// keepRingSlots is the largest ring a freed ring keeps for reuse; bigger
// ones (a jail with a large maxretry) go back to the collector.
const keepRingSlots = 8

type banState struct {
	expiry     int64
	lastNotice int64
	noticed    bool
}

// Kept lines: each jail keeps its failure lines in one byte ring per shard,
// maxTracked×lineBytesPerTracked bytes in all but at most maxLineArena, so
// what the lines cost is bounded by configuration, not by how many
// addresses an attacker uses. Under a flood the oldest lines are
// overwritten first; a ban whose line is gone carries lostLine instead.
const (
	lineBytesPerTracked = 32
	maxLineArena        = 16 << 20
)

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
	j.shardMask = uint64(n - 1)
	// Each shard's line ring: its share of the jail's, rounded up to a
	// power of two (offsets are masks).
	arena := min(max(maxTracked/n, 1), maxLineArena/lineBytesPerTracked/n) * lineBytesPerTracked
	arena = max(1<<bits.Len(uint(arena-1)), minLineArena)
	for i := range j.shards {
		s := &j.shards[i]
		// Spread the remainder so the limits sum to exactly maxTracked.
		s.limit = maxTracked / n
		if i < maxTracked%n {
			s.limit++
		}
		// Index+1 of a record takes the low bits of a table slot; the
		// hash tag gets whatever is left.
		s.idxMask = uint32(uint64(1)<<min(bits.Len(uint(s.limit)), 32) - 1)
		s.seed = seed
		s.stalest, s.newest = none, none
		s.lines.max = arena
		s.banned = make(map[addrKey]banState)
		s.pruneAt = 64
	}
	return j
}

// hashKey mixes an address with a jail's random seed (splitmix64's
// finaliser): the low bits pick the shard, bits from 8 up the table slot,
// the high ones the slot's tag. The seed keeps an attacker who cannot see
// it from choosing addresses that pile into one shard or one probe run.
func hashKey(k *addrKey, seed uint64) uint64 {
	h := binary.LittleEndian.Uint64(k[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(k[8:])*0xc2b2ae3d27d4eb4f ^ seed
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
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

// failure counts one failure of a at now (nanoseconds since epoch); line
// is copied (cut to maxLineBytes), not retained.
func (j *jail) failure(a netip.Addr, now int64, line string) verdict {
	var v verdict
	k := a.As16()
	h := hashKey(&k, j.seed)
	s := &j.shards[h&j.shardMask]
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.banned[k]; ok {
		if now < b.expiry {
			v.banned = true
			if !b.noticed || now-b.lastNotice >= int64(noticeInterval) {
				v.notice = true
				b.noticed, b.lastNotice = true, now
				s.banned[k] = b
			}
			return v
		}
		delete(s.banned, k)
	}
	maxRetry := j.spec.MaxRetry
	ref := s.lines.put(line[:min(len(line), maxLineBytes)])
	i, ok := s.find(&k, h)
	var n int
	var oldest int64
	if !ok {
		i, v.evicted = s.track(&k, h, now-j.findTime)
		r := &s.failing[i]
		r.at, r.ref = now, ref
		n, oldest = 1, now
	} else {
		s.touch(i)
		r := &s.failing[i]
		rg := s.add(r, failureSlot{at: now, line: ref}, maxRetry)
		// The ring holds the last MaxRetry failures, so once it is full
		// its oldest entry (the one the next write overwrites) decides
		// whether all of them fall inside findtime.
		if n = len(rg.slots); n == maxRetry {
			oldest = rg.slots[rg.next].at
		}
	}
	if n < maxRetry || now-oldest > j.findTime {
		return v
	}
	v.ban, v.failures = true, n
	v.lines = s.linesOf(&s.failing[i])
	s.untrack(i)
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

// add records failure f of r, which has failed before, moving its first
// failure into a ring at the second, and returns the ring.
func (s *shard) add(r *record, f failureSlot, maxRetry int) *ring {
	if r.ref&ringFlag == 0 {
		id := s.newRing()
		rg := &s.rings[id]
		rg.push(failureSlot{at: r.at, line: r.ref}, maxRetry)
		r.ref = ringFlag | uint64(id)
	}
	rg := &s.rings[r.ref&^ringFlag]
	rg.push(f, maxRetry)
	r.at = f.at
	return rg
}

func (rg *ring) push(f failureSlot, maxRetry int) {
	if len(rg.slots) < maxRetry {
		if len(rg.slots) == cap(rg.slots) {
			grown := make([]failureSlot, len(rg.slots), min(max(2, 2*cap(rg.slots)), maxRetry))
			copy(grown, rg.slots)
			rg.slots = grown
		}
		rg.slots = append(rg.slots, f)
		if len(rg.slots) == maxRetry {
			rg.next = 0
		}
		return
	}
	rg.slots[rg.next] = f
	if rg.next++; rg.next == maxRetry {
		rg.next = 0
	}
}

func (s *shard) newRing() uint32 {
	if n := len(s.freeRings); n > 0 {
		id := s.freeRings[n-1]
		s.freeRings = s.freeRings[:n-1]
		return id
	}
	s.rings = append(s.rings, ring{})
	return uint32(len(s.rings) - 1)
}

// linesOf returns r's kept lines, oldest first, as slices of one string.
func (s *shard) linesOf(r *record) []string {
	one := [1]failureSlot{{line: r.ref}}
	slots, next := one[:], 0
	if r.ref&ringFlag != 0 {
		rg := &s.rings[r.ref&^ringFlag]
		slots, next = rg.slots, rg.next
	}
	ref := func(i int) uint64 { return slots[(next+i)%len(slots)].line }
	size := 0
	for i := range slots {
		size += s.lines.size(ref(i))
	}
	var b strings.Builder
	b.Grow(size)
	for i := range slots {
		s.lines.writeTo(&b, ref(i))
	}
	all, out := b.String(), make([]string, len(slots))
	start := 0
	for i := range out {
		end := start + s.lines.size(ref(i))
		out[i], start = all[start:end], end
	}
	return out
}

// find returns the index of k's record (h is its hash).
func (s *shard) find(k *addrKey, h uint64) (uint32, bool) {
	if len(s.table) == 0 {
		return 0, false
	}
	mask := uint64(len(s.table) - 1)
	tag := s.tag(h)
	for p := (h >> 8) & mask; ; p = (p + 1) & mask {
		v := s.table[p]
		if v == 0 {
			return 0, false
		}
		if v&^s.idxMask == tag {
			if i := v&s.idxMask - 1; s.failing[i].key == *k {
				return i, true
			}
		}
	}
}

// tag is the part of a table slot that h sets: its high bits, above the
// index.
func (s *shard) tag(h uint64) uint32 { return uint32(h>>32) &^ s.idxMask }

// slotOf returns the table slot holding record i.
func (s *shard) slotOf(i uint32) uint64 {
	mask := uint64(len(s.table) - 1)
	for p := (hashKey(&s.failing[i].key, s.seed) >> 8) & mask; ; p = (p + 1) & mask {
		if s.table[p]&s.idxMask == i+1 {
			return p
		}
	}
}

// insert indexes record i, whose hash is h. The table has room.
func (s *shard) insert(i uint32, h uint64) {
	mask := uint64(len(s.table) - 1)
	p := (h >> 8) & mask
	for s.table[p] != 0 {
		p = (p + 1) & mask
	}
	s.table[p] = s.tag(h) | (i + 1)
}

// deleteSlot empties slot p and shifts the rest of its probe run back, so
// that no tombstones accumulate and every run stays unbroken.
func (s *shard) deleteSlot(p uint64) {
	mask := uint64(len(s.table) - 1)
	s.table[p] = 0
	for q := (p + 1) & mask; ; q = (q + 1) & mask {
		v := s.table[q]
		if v == 0 {
			return
		}
		home := (hashKey(&s.failing[v&s.idxMask-1].key, s.seed) >> 8) & mask
		// The entry at q may fill the hole at p unless its home lies
		// cyclically in (p, q].
		if (q-home)&mask >= (q-p)&mask {
			s.table[p], s.table[q] = v, 0
			p = q
		}
	}
}

// resize rebuilds the table with size slots (a power of two).
func (s *shard) resize(size int) {
	s.table = make([]uint32, size)
	for i := range s.failing {
		s.insert(uint32(i), hashKey(&s.failing[i].key, s.seed))
	}
}

// track starts tracking k (hash h) and returns its record, zero but for the
// key. It first drops entries whose newest failure is at or before stale
// (they can no longer contribute to a ban), then, if the shard is still
// full, evicts the entry with the oldest last failure. Both come off the
// stale end of the LRU list, so the cost is O(1) amortised.
func (s *shard) track(k *addrKey, h uint64, stale int64) (i uint32, evicted bool) {
	for s.stalest != none && s.failing[s.stalest].at <= stale {
		s.untrack(s.stalest)
	}
	if len(s.failing) >= s.limit && s.stalest != none {
		s.untrack(s.stalest)
		evicted = true
	}
	n := len(s.failing)
	if n == cap(s.failing) {
		// Grow by hand: append would overshoot the limit by up to a
		// quarter, and the limit is what the memory budget is sized for.
		c := 2 * n
		if n >= 1024 {
			c = n + n/4
		}
		grown := make([]record, n, min(max(c, 16), max(s.limit, n+1)))
		copy(grown, s.failing)
		s.failing = grown
	}
	if (n+1)*4 > len(s.table)*3 {
		s.resize(max(16, 2*len(s.table)))
	}
	i = uint32(n)
	s.failing = append(s.failing, record{key: *k})
	s.insert(i, h)
	s.pushBack(i)
	return i, evicted
}

// untrack forgets record i, moving the last record into its place.
func (s *shard) untrack(i uint32) {
	r := &s.failing[i]
	s.deleteSlot(s.slotOf(i))
	s.unlink(i)
	if r.ref&ringFlag != 0 {
		id := uint32(r.ref &^ ringFlag)
		rg := &s.rings[id]
		rg.next = 0
		rg.slots = rg.slots[:0]
		if cap(rg.slots) > keepRingSlots {
			rg.slots = nil
		}
		s.freeRings = append(s.freeRings, id)
	}
	last := uint32(len(s.failing) - 1)
	if i != last {
		p := s.slotOf(last)
		s.table[p] = s.table[p]&^s.idxMask | (i + 1)
		m := s.failing[last]
		s.failing[i] = m
		if m.prev != none {
			s.failing[m.prev].next = i
		} else {
			s.stalest = i
		}
		if m.next != none {
			s.failing[m.next].prev = i
		} else {
			s.newest = i
		}
	}
	s.failing = s.failing[:last]
}

func (s *shard) unlink(i uint32) {
	r := &s.failing[i]
	if r.prev != none {
		s.failing[r.prev].next = r.next
	} else {
		s.stalest = r.next
	}
	if r.next != none {
		s.failing[r.next].prev = r.prev
	} else {
		s.newest = r.prev
	}
	r.prev, r.next = none, none
}

func (s *shard) pushBack(i uint32) {
	r := &s.failing[i]
	r.prev, r.next = s.newest, none
	if s.newest != none {
		s.failing[s.newest].next = i
	} else {
		s.stalest = i
	}
	s.newest = i
}

// touch moves record i to the newest end of the LRU list.
func (s *shard) touch(i uint32) {
	if s.newest != i {
		s.unlink(i)
		s.pushBack(i)
	}
}

// pruneFailing drops the tracked entries whose newest failure is at or
// before stale and gives memory back once the shard has emptied (or
// nearly): an attack's peak should not stay allocated for good.
func (s *shard) pruneFailing(stale int64) {
	for s.stalest != none && s.failing[s.stalest].at <= stale {
		s.untrack(s.stalest)
	}
	n := len(s.failing)
	if len(s.freeRings) == len(s.rings) {
		s.rings, s.freeRings = nil, nil
	}
	switch {
	case n == 0:
		s.failing, s.table = nil, nil
		s.lines = lineArena{max: s.lines.max}
	case cap(s.failing) > 64 && n < cap(s.failing)/4:
		s.failing = append(make([]record, 0, 2*n), s.failing...)
		s.resize(max(16, 1<<bits.Len(uint(2*n*4/3))))
	}
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
	for i := range prev.shards {
		ps := &prev.shards[i]
		ps.mu.Lock()
		for k, b := range ps.banned {
			s := j.shardOf(&k)
			s.mu.Lock()
			if len(s.banned) < s.limit {
				s.banned[k] = b
			}
			s.mu.Unlock()
		}
		ps.mu.Unlock()
	}
}

// remember records a ban decided elsewhere (restored from the store, or a
// manual ban) so that failures from a meanwhile count as already banned.
func (j *jail) remember(a netip.Addr, expiry int64) {
	k := a.As16()
	h := hashKey(&k, j.seed)
	s := &j.shards[h&j.shardMask]
	s.mu.Lock()
	if b, ok := s.banned[k]; !ok || b.expiry < expiry {
		if ok || len(s.banned) < s.limit {
			s.banned[k] = banState{expiry: expiry}
		}
	}
	if i, ok := s.find(&k, h); ok {
		s.untrack(i)
	}
	s.mu.Unlock()
}

// forget drops a's ban so that new failures can ban it again; used when a
// ban could not be applied.
func (j *jail) forget(a netip.Addr) {
	k := a.As16()
	s := j.shardOf(&k)
	s.mu.Lock()
	delete(s.banned, k)
	s.mu.Unlock()
}

// counts returns the addresses currently failing (with a failure inside
// findtime) and currently banned, pruning what has expired on the way.
func (j *jail) counts(now int64) (failing, banned int) {
	for i := range j.shards {
		s := &j.shards[i]
		s.mu.Lock()
		s.pruneFailing(now - j.findTime)
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
