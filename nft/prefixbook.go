package nft

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
	"slices"
	"time"

	"github.com/google/btree"
	"github.com/google/nftables"
)

// This file holds a jail's prefix bans of one family and the segments the
// kernel holds for them (see prefixes.go for why segments), and plans the
// element changes between the two.
//
// The book is built for 100,000 bans and more, changed one ban at a time
// in between. Both halves are B-trees of pointer-free values (an address
// is a u128, not a netip.Addr, which holds a pointer), so the collector
// scans no key, and a change re-plans only the span it touches: the
// widest ban around the changed prefix, plus the kernel segments that
// reach into it. A batch that changes many bans at once (a restore, a
// storm) is planned in one sweep over everything instead, which is
// cheaper than many spans; so are the occasional sweeps that drop bans
// which expired outside any changed span.

// u128 is an address as a number: IPv6 in full, IPv4 in lo.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

// next is a+1 (wrapping; callers check against the family's last address).
func (a u128) next() u128 {
	lo, carry := bits.Add64(a.lo, 1, 0)
	return u128{a.hi + carry, lo}
}

// prev is a-1 (wrapping; callers check against 0).
func (a u128) prev() u128 {
	lo, borrow := bits.Sub64(a.lo, 1, 0)
	return u128{a.hi - borrow, lo}
}

// hostMask has the low n bits set.
func hostMask(n int) u128 {
	switch {
	case n <= 0:
		return u128{}
	case n < 64:
		return u128{0, 1<<n - 1}
	case n < 128:
		return u128{1<<(n-64) - 1, ^uint64(0)}
	}
	return u128{^uint64(0), ^uint64(0)}
}

// family is the address space of a book: 32 or 128 bits wide.
type family struct{ width int }

var (
	famV4 = family{32}
	famV6 = family{128}
)

// last is the last address of the family.
func (f family) last() u128 { return hostMask(f.width) }

func (f family) toU(a netip.Addr) u128 {
	if f.width == 32 {
		b := a.Unmap().As4()
		return u128{0, uint64(binary.BigEndian.Uint32(b[:]))}
	}
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

func (f family) toAddr(u u128) netip.Addr {
	if f.width == 32 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(u.lo))
		return netip.AddrFrom4(b)
	}
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], u.hi)
	binary.BigEndian.PutUint64(b[8:], u.lo)
	return netip.AddrFrom16(b)
}

// appendKey appends u as the set's key bytes.
func (f family) appendKey(dst []byte, u u128) []byte {
	if f.width == 32 {
		return binary.BigEndian.AppendUint32(dst, uint32(u.lo))
	}
	dst = binary.BigEndian.AppendUint64(dst, u.hi)
	return binary.BigEndian.AppendUint64(dst, u.lo)
}

// span returns the first and last address of the prefix of bits bits
// around a.
func (f family) span(a u128, bits int) (first, last u128) {
	m := hostMask(f.width - bits)
	first = u128{a.hi &^ m.hi, a.lo &^ m.lo}
	return first, u128{first.hi | m.hi, first.lo | m.lo}
}

// A ban's and a segment's expiry is Unix nanoseconds; 0 is permanent.
func expiryNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return max(t.UnixNano(), 1)
}

// laterNanos reports whether expiry a ends after b.
func laterNanos(a, b int64) bool { return b != 0 && (a == 0 || a > b) }

// banEntry is one prefix ban, ordered by first address, wider first (a
// parent before its children).
type banEntry struct {
	first, last u128
	bits        uint8
	expiry      int64
}

func banLess(a, b banEntry) bool {
	if a.first != b.first {
		return a.first.less(b.first)
	}
	return a.bits < b.bits
}

// segEntry is an inclusive range the kernel holds, ordered by its start.
type segEntry struct {
	from, to u128
	expiry   int64
}

func segLess(a, b segEntry) bool { return a.from.less(b.from) }

// region is an inclusive address range to re-plan.
type region struct{ lo, hi u128 }

// btreeDegree suits small values: nodes of up to 63 entries, a few cache
// lines each.
const btreeDegree = 32

// familyBook is the prefix bans of one jail and family, and the segments
// the kernel holds for them.
type familyBook struct {
	fam    family
	bans   *btree.BTreeG[banEntry]
	lens   [129]int32 // bans per prefix length: the lengths to look up
	kernel *btree.BTreeG[segEntry]
	// dirty is the spans of the bans changed since the last plan; full
	// asks the next plan to sweep everything (after a failed batch, whose
	// spans are lost).
	dirty []region
	full  bool
	// sinceSweep counts the spans planned since the last full sweep,
	// which alone drops bans that expired outside every changed span: a
	// sweep is due once it reaches the number of bans, so its cost is
	// spread over as many changes.
	sinceSweep int
}

func newFamilyBook(f family) *familyBook {
	return &familyBook{fam: f, bans: btree.NewG(btreeDegree, banLess), kernel: btree.NewG(btreeDegree, segLess)}
}

// reset forgets every ban and segment.
func (fb *familyBook) reset() { *fb = *newFamilyBook(fb.fam) }

// entryOf is the key of a ban of p.
func (fb *familyBook) entryOf(p netip.Prefix) banEntry {
	bits := p.Bits()
	if fb.fam.width == 32 && p.Addr().Is4In6() {
		bits -= 96
	}
	first, last := fb.fam.span(fb.fam.toU(p.Addr()), bits)
	return banEntry{first: first, last: last, bits: uint8(bits)}
}

// put records a ban of p until expiry (zero: permanent); of two bans of
// one prefix the longer wins, as in the hash sets.
func (fb *familyBook) put(p netip.Prefix, expiry time.Time) {
	e := fb.entryOf(p)
	e.expiry = expiryNanos(expiry)
	// One descent for the common case, a new prefix; a second one puts a
	// longer old ban back.
	if old, ok := fb.bans.ReplaceOrInsert(e); !ok {
		fb.lens[e.bits]++
	} else if !laterNanos(e.expiry, old.expiry) {
		fb.bans.ReplaceOrInsert(old)
		return
	}
	fb.touched(region{e.first, e.last})
}

// lift removes the ban of exactly p; it reports whether there was one.
func (fb *familyBook) lift(p netip.Prefix) bool {
	e := fb.entryOf(p)
	if _, ok := fb.bans.Delete(e); !ok {
		return false
	}
	fb.lens[e.bits]--
	fb.touched(region{e.first, e.last})
	return true
}

// fullSweepShare: a plan sweeps every ban once the changed ones are this
// share of them (1/16). Re-planning a span costs a few B-tree walks, some
// thirty times what sweeping past one unchanged ban does.
const fullSweepShare = 16

// touched notes the span of a changed ban for the next plan; a batch
// large enough to be swept whole stops noting.
func (fb *familyBook) touched(r region) {
	if fb.full {
		return
	}
	fb.dirty = append(fb.dirty, r)
	if len(fb.dirty) >= 1024 && fullSweepShare*len(fb.dirty) >= fb.bans.Len() {
		fb.full, fb.dirty = true, fb.dirty[:0]
	}
}

// expiryOf is the recorded expiry of a ban of exactly p.
func (fb *familyBook) expiryOf(p netip.Prefix) (time.Time, bool) {
	e, ok := fb.bans.Get(fb.entryOf(p))
	if !ok {
		return time.Time{}, false
	}
	if e.expiry == 0 {
		return time.Time{}, true
	}
	return time.Unix(0, e.expiry), true
}

// widestAround returns the span of the widest ban containing a, if any.
func (fb *familyBook) widestAround(a u128) (banEntry, bool) {
	for bits := 0; bits <= fb.fam.width; bits++ {
		if fb.lens[bits] == 0 {
			continue
		}
		first, _ := fb.fam.span(a, bits)
		if e, ok := fb.bans.Get(banEntry{first: first, bits: uint8(bits)}); ok {
			return e, true
		}
	}
	return banEntry{}, false
}

// sweeper partitions bans, fed in banLess order, into disjoint segments,
// each with the latest expiry of the bans covering it, adjacent segments
// of one expiry merged. Prefixes nest or are disjoint, never partly
// overlap, so one pass with a stack of the open prefixes does it.
type sweeper struct {
	fam   family
	out   []segEntry
	stack []segEntry // open prefixes: to is the last address
	cur   u128       // first address not yet emitted inside the open prefixes
	done  bool       // cur is past the family's last address
}

func (sw *sweeper) emit(from, to u128, exp int64) {
	if to.less(from) {
		return
	}
	if n := len(sw.out); n > 0 && sw.out[n-1].expiry == exp && sw.out[n-1].to.next() == from && sw.out[n-1].to != sw.fam.last() {
		sw.out[n-1].to = to
		return
	}
	sw.out = append(sw.out, segEntry{from, to, exp})
}

// closeBefore closes the open prefixes that end before first (all of them
// when all is set).
func (sw *sweeper) closeBefore(first u128, all bool) {
	for len(sw.stack) > 0 {
		top := sw.stack[len(sw.stack)-1]
		if !all && !top.to.less(first) {
			return
		}
		if !sw.done {
			sw.emit(sw.cur, top.to, top.expiry)
		}
		sw.done = top.to == sw.fam.last()
		sw.cur = top.to.next()
		sw.stack = sw.stack[:len(sw.stack)-1]
	}
}

func (sw *sweeper) add(e banEntry) {
	sw.closeBefore(e.first, false)
	exp := e.expiry
	if n := len(sw.stack); n > 0 {
		parent := sw.stack[n-1]
		if e.first != sw.cur {
			sw.emit(sw.cur, e.first.prev(), parent.expiry) // the parent's part before this child
		}
		if laterNanos(parent.expiry, exp) {
			exp = parent.expiry
		}
	}
	sw.cur, sw.done = e.first, false
	sw.stack = append(sw.stack, segEntry{e.first, e.last, exp})
}

func (sw *sweeper) finish() []segEntry {
	sw.closeBefore(u128{}, true)
	return sw.out
}

// live reports whether a ban or segment of expiry has not expired at now.
func live(expiry, now int64) bool { return expiry == 0 || expiry > now }

// segments partitions the live bans at now into segments, dropping the
// expired ones from the book.
func (fb *familyBook) segments(now time.Time) []segEntry {
	n := now.UnixNano()
	sw := sweeper{fam: fb.fam, out: make([]segEntry, 0, fb.bans.Len())}
	var expired []banEntry
	fb.bans.Ascend(func(e banEntry) bool {
		if !live(e.expiry, n) {
			expired = append(expired, e)
			return true
		}
		sw.add(e)
		return true
	})
	fb.drop(expired)
	return sw.finish()
}

func (fb *familyBook) drop(expired []banEntry) {
	for _, e := range expired {
		fb.bans.Delete(e)
		fb.lens[e.bits]--
	}
}

// plan returns the interval-set elements to delete and to add so that the
// kernel holds exactly the segments of the bans at now, and records them
// as held. Segments the kernel expired on its own (their expiry passed)
// are not deleted: deleting an absent element fails the whole batch.
func (fb *familyBook) plan(now time.Time) (del, add []nftables.SetElement) {
	enc := encoder{fam: fb.fam, now: now}
	if fb.full || fb.sinceSweep+len(fb.dirty) >= max(fb.bans.Len(), 64) || fullSweepShare*len(fb.dirty) >= fb.bans.Len() {
		fb.planAll(&enc)
	} else {
		fb.planRegions(&enc)
	}
	fb.dirty, fb.full = fb.dirty[:0], false
	return enc.elements()
}

// planAll sweeps every ban and compares the result with every segment.
func (fb *familyBook) planAll(enc *encoder) {
	want := fb.segments(enc.now)
	enc.added = slices.Grow(enc.added, len(want))
	have := make([]segEntry, 0, fb.kernel.Len())
	fb.kernel.Ascend(func(s segEntry) bool { have = append(have, s); return true })
	fb.apply(enc.diff(have, want))
	fb.sinceSweep = 0
}

// planRegions re-plans the spans of the changed bans only.
func (fb *familyBook) planRegions(enc *encoder) {
	now := enc.now.UnixNano()
	for _, r := range fb.regions() {
		// The bans of the span, its expired ones dropped.
		sw := sweeper{fam: fb.fam}
		var expired []banEntry
		fb.bans.AscendGreaterOrEqual(banEntry{first: r.lo}, func(e banEntry) bool {
			if r.hi.less(e.first) {
				return false
			}
			if !live(e.expiry, now) {
				expired = append(expired, e)
			} else {
				sw.add(e)
			}
			return true
		})
		fb.drop(expired)
		want := sw.finish()
		// The kernel's segments in the span, with those reaching into it
		// from either side (merged across its edge) and the neighbours
		// that touch it; their parts outside the span are kept.
		have := fb.held(r)
		want = fb.withEdges(r, have, want, now)
		fb.apply(enc.diff(have, want))
		fb.sinceSweep++
	}
}

// apply records a diff's outcome as what the kernel holds: a batch adds
// to a large set mostly, so the tree changes by the diff, not by a
// rebuild.
func (fb *familyBook) apply(gone, added []segEntry) {
	for _, s := range gone {
		fb.kernel.Delete(s)
	}
	for _, s := range added {
		fb.kernel.ReplaceOrInsert(s)
	}
}

// held returns the kernel's segments in r, with the one reaching into r
// from the left or touching it there, and the one touching it on the
// right (one reaching out of r on the right starts inside it).
func (fb *familyBook) held(r region) []segEntry {
	var have []segEntry
	if r.lo != (u128{}) {
		fb.kernel.DescendLessOrEqual(segEntry{from: r.lo.prev()}, func(s segEntry) bool {
			if !s.to.less(r.lo.prev()) {
				have = append(have, s)
			}
			return false
		})
	}
	fb.kernel.AscendGreaterOrEqual(segEntry{from: r.lo}, func(s segEntry) bool {
		if !r.hi.less(s.from) {
			have = append(have, s)
			return true
		}
		if r.hi != fb.fam.last() && s.from == r.hi.next() {
			have = append(have, s)
		}
		return false
	})
	return have
}

// withEdges completes want, the segments inside r, with what the kernel
// segments of have hold outside r: the part of a segment reaching into r
// is kept (unless expired), and a neighbour touching r is kept; each
// merged with want's edge segment when of the same expiry, as a full sweep
// would.
func (fb *familyBook) withEdges(r region, have, want []segEntry, now int64) []segEntry {
	sw := sweeper{fam: fb.fam, out: make([]segEntry, 0, len(want)+2)}
	if len(have) > 0 && have[0].from.less(r.lo) && live(have[0].expiry, now) {
		left := have[0]
		sw.emit(left.from, min128(left.to, r.lo.prev()), left.expiry)
	}
	for _, s := range want {
		sw.emit(s.from, s.to, s.expiry)
	}
	if n := len(have); n > 0 && r.hi.less(have[n-1].to) && live(have[n-1].expiry, now) {
		right := have[n-1]
		sw.emit(max128(right.from, r.hi.next()), right.to, right.expiry)
	}
	return sw.out
}

func min128(a, b u128) u128 {
	if b.less(a) {
		return b
	}
	return a
}

func max128(a, b u128) u128 {
	if a.less(b) {
		return b
	}
	return a
}

// regions returns the spans to re-plan for the changed bans: each grown
// to the widest ban around it (whose segments it changes), sorted, and
// merged where they overlap, touch, or share a kernel segment (so that no
// segment is planned twice in one batch).
func (fb *familyBook) regions() []region {
	out := make([]region, 0, len(fb.dirty))
	for _, r := range fb.dirty {
		if e, ok := fb.widestAround(r.lo); ok {
			r = region{min128(r.lo, e.first), max128(r.hi, e.last)}
		}
		out = append(out, r)
	}
	slices.SortFunc(out, func(x, y region) int {
		if x.lo == y.lo {
			return 0
		}
		if x.lo.less(y.lo) {
			return -1
		}
		return 1
	})
	merged := out[:0]
	for _, r := range out {
		if n := len(merged); n > 0 && fb.joined(merged[n-1], r) {
			merged[n-1].hi = max128(merged[n-1].hi, r.hi)
			continue
		}
		merged = append(merged, r)
	}
	return merged
}

// joined reports whether b (starting at or after a) must be planned with
// a: they overlap or touch, or one kernel segment reaches from a's end to
// b's start.
func (fb *familyBook) joined(a, b region) bool {
	if !a.hi.less(b.lo) || a.hi.next() == b.lo {
		return true
	}
	// Their segments meet only through one segment that starts in a or
	// right after it and reaches b or right before it.
	var s segEntry
	found := false
	fb.kernel.DescendLessOrEqual(segEntry{from: a.hi.next()}, func(x segEntry) bool { s, found = x, true; return false })
	return found && !s.to.less(b.lo.prev())
}

// encoder collects the segments a plan deletes and adds, and turns them
// into set elements in one go: slices of the exact size, and keys cut
// from one buffer (a set element is large, and 100k of them grown by
// appending were most of a plan's allocations).
type encoder struct {
	fam        family
	now        time.Time
	del, added []segEntry // del: live segments to delete
}

// elements returns the set elements of the segments to delete and to add.
func (enc *encoder) elements() (del, add []nftables.SetElement) {
	keyLen := enc.fam.width / 8
	buf := make([]byte, 0, 2*(len(enc.del)+len(enc.added))*keyLen)
	key := func(u u128) []byte {
		start := len(buf)
		buf = enc.fam.appendKey(buf, u)
		return buf[start:len(buf):len(buf)]
	}
	// elems appends s as the kernel's half-open interval: a start element
	// with the timeout and an "interval end" one past the last address
	// (none when the segment runs to the last address there is).
	elems := func(dst []nftables.SetElement, s segEntry, withTimeout bool) []nftables.SetElement {
		var timeout time.Duration
		if withTimeout && s.expiry != 0 {
			timeout = min((time.Duration(s.expiry-enc.now.UnixNano()) + time.Millisecond - 1).Truncate(time.Millisecond), maxTimeout)
		}
		dst = append(dst, nftables.SetElement{Key: key(s.from), Timeout: timeout})
		if s.to != enc.fam.last() {
			dst = append(dst, nftables.SetElement{Key: key(s.to.next()), IntervalEnd: true})
		}
		return dst
	}
	if len(enc.del) > 0 {
		del = make([]nftables.SetElement, 0, 2*len(enc.del))
		for _, s := range enc.del {
			del = elems(del, s, false)
		}
	}
	if len(enc.added) > 0 {
		add = make([]nftables.SetElement, 0, 2*len(enc.added))
		for _, s := range enc.added {
			add = elems(add, s, true)
		}
	}
	return del, add
}

// diff queues the changes from have to want (both in order, each
// disjoint): segments of have not in want are deleted unless expired,
// segments of want not in have are added. It returns both (gone with the
// expired ones).
func (enc *encoder) diff(have, want []segEntry) (gone, added []segEntry) {
	now := enc.now.UnixNano()
	first := len(enc.added)
	drop := func(s segEntry) {
		if live(s.expiry, now) {
			enc.del = append(enc.del, s)
		}
		gone = append(gone, s)
	}
	put := func(s segEntry) { enc.added = append(enc.added, s) }
	i, j := 0, 0
	for i < len(have) || j < len(want) {
		switch {
		case j == len(want) || i < len(have) && have[i].from.less(want[j].from):
			drop(have[i])
			i++
		case i == len(have) || want[j].from.less(have[i].from):
			put(want[j])
			j++
		case have[i] == want[j]:
			i, j = i+1, j+1
		default: // same start, other end or expiry
			drop(have[i])
			put(want[j])
			i, j = i+1, j+1
		}
	}
	return gone, enc.added[first:]
}
