package pipeline

import (
	"encoding/binary"
	"math"
	"math/bits"
	"net/netip"
	"strings"
)

// This file holds the data structure under a jail's counting rule
// (jail.go): a bounded table of failing addresses, each with its last few
// failures and their lines. It knows nothing of findtime or maxretry: it
// tracks, touches, evicts and forgets as the rule tells it.

// addrKey is what a jail counts failures by, as the table stores it: the
// address's 16-byte form, which holds no pointer (netip.Addr is 24 bytes
// with one, for the zone), so the tables a jail keeps under attack are
// never scanned by the collector. IPv4 and IPv4-mapped forms share a key;
// the pipeline canonicalises addresses before counting anyway.
//
// keyOf is the one place an address becomes a key: a jail that counts by
// network prefix (a /64) gives it a mask that clears the host bits, so
// every address of one prefix is one key, and nothing else here knows.
type addrKey = [16]byte

// keyOf is a's key under mask m: the key of the prefix a counts toward.
func keyOf(a netip.Addr, m *keyMask) addrKey {
	k := a.As16()
	if m.full {
		return k
	}
	mask := &m.v6
	if a.Is4() {
		mask = &m.v4
	}
	hi := binary.BigEndian.Uint64(k[:8]) & mask[0]
	lo := binary.BigEndian.Uint64(k[8:]) & mask[1]
	binary.BigEndian.PutUint64(k[:8], hi)
	binary.BigEndian.PutUint64(k[8:], lo)
	return k
}

// hashKey mixes a key with a jail's random seed (splitmix64's finaliser):
// the low bits pick the jail's shard, bits from 8 up the table slot, the
// high ones the slot's tag. The seed keeps an attacker who cannot see it
// from choosing addresses that pile into one shard or one probe run.
func hashKey(k *addrKey, seed uint64) uint64 {
	h := binary.LittleEndian.Uint64(k[:8])*0x9e3779b97f4a7c15 ^ binary.LittleEndian.Uint64(k[8:])*0xc2b2ae3d27d4eb4f ^ seed
	h ^= h >> 30
	h *= 0xbf58476d1ce4e5b9
	h ^= h >> 27
	h *= 0x94d049bb133111eb
	h ^= h >> 31
	return h
}

// addrTable tracks at most limit failing addresses: their records, an index
// by key, the order of their last failures, their failure rings and lines.
// It is not safe for concurrent use; a jail's shard locks it.
//
// A jail may track a million addresses while under attack, most of which
// fail once and are never heard from again, so a tracked address costs one
// pointer-free 40-byte record in a dense slab (failing), about 8 bytes of
// open-addressing index (table) and its line in a bounded byte ring
// (lines); only an address that fails again gets a ring of failure slots.
// None of it holds pointers but the rings, so the collector neither scans
// nor marks per address, and once the slabs have grown nothing is
// allocated per failure (the line is copied into the ring, not cloned).
type addrTable struct {
	limit int // most tracked addresses
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

// ring is the last failures of an address that failed more than once, as
// many as the rule keeps (keep). It grows as failures come, so an address
// that fails twice costs two slots whatever keep says, and grows to exactly
// keep slots (append would round 5 up to 8).
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

// init readies an empty table for limit addresses whose lines share a byte
// ring of at most lineBytes (a power of two, at least minLineArena).
func (t *addrTable) init(limit int, seed uint64, lineBytes int) {
	t.limit = limit
	t.seed = seed
	// Index+1 of a record takes the low bits of a table slot; the hash
	// tag gets whatever is left.
	t.idxMask = uint32(uint64(1)<<min(bits.Len(uint(limit)), 32) - 1)
	t.stalest, t.newest = none, none
	t.lines.max = lineBytes
}

// len is how many addresses are tracked.
func (t *addrTable) len() int { return len(t.failing) }

// note records a failure of k (hash h) at time at with its line (copied,
// cut to maxLineBytes), keeping the last keep failures of each address.
// An address not yet tracked is tracked, which first drops the addresses
// whose last failure is at or before stale and, if the table is still
// full, evicts the one whose last failure is oldest (evicted). It returns
// k's record, how many failures it now keeps (at most keep) and the time
// of the oldest of them.
func (t *addrTable) note(k *addrKey, h uint64, at int64, line string, keep int, stale int64) (i uint32, kept int, oldest int64, evicted bool) {
	ref := t.lines.put(line[:min(len(line), maxLineBytes)])
	i, ok := t.find(k, h)
	if !ok {
		i, evicted = t.track(k, h, stale)
		r := &t.failing[i]
		r.at, r.ref = at, ref
		return i, 1, at, evicted
	}
	t.touch(i)
	rg := t.add(&t.failing[i], failureSlot{at: at, line: ref}, keep)
	// Until the ring is full next stays 0, its first slot; once full, the
	// oldest entry is the one the next write overwrites.
	return i, len(rg.slots), rg.slots[rg.next].at, false
}

// add records failure f of r, which has failed before, moving its first
// failure into a ring at the second, and returns the ring.
func (t *addrTable) add(r *record, f failureSlot, keep int) *ring {
	if r.ref&ringFlag == 0 {
		id := t.newRing()
		rg := &t.rings[id]
		rg.push(failureSlot{at: r.at, line: r.ref}, keep)
		r.ref = ringFlag | uint64(id)
	}
	rg := &t.rings[r.ref&^ringFlag]
	rg.push(f, keep)
	r.at = f.at
	return rg
}

func (rg *ring) push(f failureSlot, keep int) {
	if len(rg.slots) < keep {
		if len(rg.slots) == cap(rg.slots) {
			grown := make([]failureSlot, len(rg.slots), min(max(2, 2*cap(rg.slots)), keep))
			copy(grown, rg.slots)
			rg.slots = grown
		}
		rg.slots = append(rg.slots, f)
		if len(rg.slots) == keep {
			rg.next = 0
		}
		return
	}
	rg.slots[rg.next] = f
	if rg.next++; rg.next == keep {
		rg.next = 0
	}
}

func (t *addrTable) newRing() uint32 {
	if n := len(t.freeRings); n > 0 {
		id := t.freeRings[n-1]
		t.freeRings = t.freeRings[:n-1]
		return id
	}
	t.rings = append(t.rings, ring{})
	return uint32(len(t.rings) - 1)
}

// linesOf returns record i's kept lines, oldest first, as slices of one
// string.
func (t *addrTable) linesOf(i uint32) []string {
	r := &t.failing[i]
	one := [1]failureSlot{{line: r.ref}}
	slots, next := one[:], 0
	if r.ref&ringFlag != 0 {
		rg := &t.rings[r.ref&^ringFlag]
		slots, next = rg.slots, rg.next
	}
	ref := func(i int) uint64 { return slots[(next+i)%len(slots)].line }
	size := 0
	for i := range slots {
		size += t.lines.size(ref(i))
	}
	var b strings.Builder
	b.Grow(size)
	for i := range slots {
		t.lines.writeTo(&b, ref(i))
	}
	all, out := b.String(), make([]string, len(slots))
	start := 0
	for i := range out {
		end := start + t.lines.size(ref(i))
		out[i], start = all[start:end], end
	}
	return out
}

// find returns the index of k's record (h is its hash).
func (t *addrTable) find(k *addrKey, h uint64) (uint32, bool) {
	if len(t.table) == 0 {
		return 0, false
	}
	mask := uint64(len(t.table) - 1)
	tag := t.tag(h)
	for p := (h >> 8) & mask; ; p = (p + 1) & mask {
		v := t.table[p]
		if v == 0 {
			return 0, false
		}
		if v&^t.idxMask == tag {
			if i := v&t.idxMask - 1; t.failing[i].key == *k {
				return i, true
			}
		}
	}
}

// tag is the part of a table slot that h sets: its high bits, above the
// index.
func (t *addrTable) tag(h uint64) uint32 { return uint32(h>>32) &^ t.idxMask }

// slotOf returns the table slot holding record i.
func (t *addrTable) slotOf(i uint32) uint64 {
	mask := uint64(len(t.table) - 1)
	for p := (hashKey(&t.failing[i].key, t.seed) >> 8) & mask; ; p = (p + 1) & mask {
		if t.table[p]&t.idxMask == i+1 {
			return p
		}
	}
}

// insert indexes record i, whose hash is h. The table has room.
func (t *addrTable) insert(i uint32, h uint64) {
	mask := uint64(len(t.table) - 1)
	p := (h >> 8) & mask
	for t.table[p] != 0 {
		p = (p + 1) & mask
	}
	t.table[p] = t.tag(h) | (i + 1)
}

// deleteSlot empties slot p and shifts the rest of its probe run back, so
// that no tombstones accumulate and every run stays unbroken.
func (t *addrTable) deleteSlot(p uint64) {
	mask := uint64(len(t.table) - 1)
	t.table[p] = 0
	for q := (p + 1) & mask; ; q = (q + 1) & mask {
		v := t.table[q]
		if v == 0 {
			return
		}
		home := (hashKey(&t.failing[v&t.idxMask-1].key, t.seed) >> 8) & mask
		// The entry at q may fill the hole at p unless its home lies
		// cyclically in (p, q].
		if (q-home)&mask >= (q-p)&mask {
			t.table[p], t.table[q] = v, 0
			p = q
		}
	}
}

// resize rebuilds the table with size slots (a power of two).
func (t *addrTable) resize(size int) {
	t.table = make([]uint32, size)
	for i := range t.failing {
		t.insert(uint32(i), hashKey(&t.failing[i].key, t.seed))
	}
}

// track starts tracking k (hash h) and returns its record, zero but for the
// key. It first drops entries whose newest failure is at or before stale
// (they can no longer contribute to a ban), then, if the table is still
// full, evicts the entry with the oldest last failure. Both come off the
// stale end of the LRU list, so the cost is O(1) amortised.
func (t *addrTable) track(k *addrKey, h uint64, stale int64) (i uint32, evicted bool) {
	t.dropStale(stale)
	if len(t.failing) >= t.limit && t.stalest != none {
		t.untrack(t.stalest)
		evicted = true
	}
	n := len(t.failing)
	if n == cap(t.failing) {
		// Grow by hand: append would overshoot the limit by up to a
		// quarter, and the limit is what the memory budget is sized for.
		c := 2 * n
		if n >= 1024 {
			c = n + n/4
		}
		grown := make([]record, n, min(max(c, 16), max(t.limit, n+1)))
		copy(grown, t.failing)
		t.failing = grown
	}
	if (n+1)*4 > len(t.table)*3 {
		t.resize(max(16, 2*len(t.table)))
	}
	i = uint32(n)
	t.failing = append(t.failing, record{key: *k})
	t.insert(i, h)
	t.pushBack(i)
	return i, evicted
}

// dropStale untracks the addresses whose newest failure is at or before
// stale.
func (t *addrTable) dropStale(stale int64) {
	for t.stalest != none && t.failing[t.stalest].at <= stale {
		t.untrack(t.stalest)
	}
}

// untrackKey forgets k (hash h) if it is tracked.
func (t *addrTable) untrackKey(k *addrKey, h uint64) {
	if i, ok := t.find(k, h); ok {
		t.untrack(i)
	}
}

// untrack forgets record i, moving the last record into its place.
func (t *addrTable) untrack(i uint32) {
	r := &t.failing[i]
	t.deleteSlot(t.slotOf(i))
	t.unlink(i)
	if r.ref&ringFlag != 0 {
		id := uint32(r.ref &^ ringFlag)
		rg := &t.rings[id]
		rg.next = 0
		rg.slots = rg.slots[:0]
		if cap(rg.slots) > keepRingSlots {
			rg.slots = nil
		}
		t.freeRings = append(t.freeRings, id)
	}
	last := uint32(len(t.failing) - 1)
	if i != last {
		p := t.slotOf(last)
		t.table[p] = t.table[p]&^t.idxMask | (i + 1)
		m := t.failing[last]
		t.failing[i] = m
		if m.prev != none {
			t.failing[m.prev].next = i
		} else {
			t.stalest = i
		}
		if m.next != none {
			t.failing[m.next].prev = i
		} else {
			t.newest = i
		}
	}
	t.failing = t.failing[:last]
}

func (t *addrTable) unlink(i uint32) {
	r := &t.failing[i]
	if r.prev != none {
		t.failing[r.prev].next = r.next
	} else {
		t.stalest = r.next
	}
	if r.next != none {
		t.failing[r.next].prev = r.prev
	} else {
		t.newest = r.prev
	}
	r.prev, r.next = none, none
}

func (t *addrTable) pushBack(i uint32) {
	r := &t.failing[i]
	r.prev, r.next = t.newest, none
	if t.newest != none {
		t.failing[t.newest].next = i
	} else {
		t.stalest = i
	}
	t.newest = i
}

// touch moves record i to the newest end of the LRU list.
func (t *addrTable) touch(i uint32) {
	if t.newest != i {
		t.unlink(i)
		t.pushBack(i)
	}
}

// prune drops the tracked entries whose newest failure is at or before
// stale and gives memory back once the table has emptied (or nearly): an
// attack's peak should not stay allocated for good.
func (t *addrTable) prune(stale int64) {
	t.dropStale(stale)
	n := len(t.failing)
	if len(t.freeRings) == len(t.rings) {
		t.rings, t.freeRings = nil, nil
	}
	switch {
	case n == 0:
		t.failing, t.table = nil, nil
		t.lines = lineArena{max: t.lines.max}
	case cap(t.failing) > 64 && n < cap(t.failing)/4:
		t.failing = append(make([]record, 0, 2*n), t.failing...)
		t.resize(max(16, 1<<bits.Len(uint(2*n*4/3))))
	}
}
