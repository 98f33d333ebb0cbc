package nft

import (
	"cmp"
	"context"
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/google/nftables"
	sysban "github.com/sysban/sysban"
)

// Prefix bans (a /64, a /24) go to an interval set per jail and family
// beside the hash set of single addresses. Why two sets and not one
// interval set for both:
//
//   - Single addresses stay exactly as fast as before: a hash set insert
//     and lookup, the kernel memory per element of a hash set, and a set
//     whose elements never overlap anything. 100,000 single bans into an
//     rbtree interval set cost several times the insert time of the hash
//     set (each insert walks the tree for overlaps), which scripts/bench
//     measures (docs/performance.md).
//   - Overlaps between a single address and a prefix (a manual ban of one
//     address inside a banned /64) are then harmless: the two elements live
//     in different sets and each expires by its own timeout.
//
// An interval set refuses an element that overlaps another ("interval
// overlaps with an existing one", EEXIST), and prefixes do nest: a /64
// inside a banned /48. So the kernel never gets the bans themselves: it
// gets the partition of the banned space into disjoint segments, each with
// the timeout of the longest ban covering it. A /48 for an hour with a /64
// inside it for a day is three segments (the /48 before the /64, the /64,
// the /48 after it) expiring in an hour, a day, an hour: the kernel
// expires each exactly when it should, and lifting the /48 by hand leaves
// the /64. The Backend keeps the bans (prefixBook) and the segments the
// kernel holds, and on every change sends the difference in one batch,
// deletions first, so the kernel never sees an overlap.

// familyBook is the prefix bans of one jail and family, and the segments
// the kernel holds for them.
type familyBook struct {
	bans   map[netip.Prefix]time.Time // expiry; zero: permanent
	kernel map[segment]time.Time      // segments sent, with their expiry
}

// prefixBook is one jail's familyBooks.
type prefixBook struct{ v4, v6 familyBook }

func newPrefixBook() *prefixBook {
	return &prefixBook{
		v4: familyBook{bans: map[netip.Prefix]time.Time{}, kernel: map[segment]time.Time{}},
		v6: familyBook{bans: map[netip.Prefix]time.Time{}, kernel: map[segment]time.Time{}},
	}
}

// family returns the book of p's family.
func (pb *prefixBook) family(p netip.Prefix) *familyBook {
	if p.Addr().Is4() {
		return &pb.v4
	}
	return &pb.v6
}

// segment is an inclusive address range of the interval set.
type segment struct{ from, to netip.Addr }

// lastOf is the last address of p.
func lastOf(p netip.Prefix) netip.Addr {
	a := p.Addr().AsSlice()
	host := a[:]
	for i := p.Bits(); i < len(host)*8; i++ {
		host[i/8] |= 1 << (7 - i%8)
	}
	last, _ := netip.AddrFromSlice(host)
	return last
}

// laterExpiry reports whether expiry a (zero: permanent) ends after b.
func laterExpiry(a, b time.Time) bool {
	switch {
	case b.IsZero():
		return false
	case a.IsZero():
		return true
	}
	return a.After(b)
}

// put records a ban of p until expiry (zero: permanent); of two bans of
// one prefix the longer wins, as in the hash sets.
func (fb *familyBook) put(p netip.Prefix, expiry time.Time) {
	if old, ok := fb.bans[p]; ok && !laterExpiry(expiry, old) {
		return
	}
	fb.bans[p] = expiry
}

// segments partitions the prefixes banned at now into disjoint segments,
// each with the latest expiry of the bans covering it, adjacent segments
// of one expiry merged, in address order. Prefixes nest or are disjoint,
// never partly overlap, so one sweep with a stack of the open prefixes
// does it: O(n log n) for the sort.
func (fb *familyBook) segments(now time.Time) []segmentExpiry {
	type open struct {
		last   netip.Addr
		expiry time.Time
	}
	live := make([]netip.Prefix, 0, len(fb.bans))
	for p, exp := range fb.bans {
		if !exp.IsZero() && !exp.After(now) {
			delete(fb.bans, p)
			continue
		}
		live = append(live, p)
	}
	// By first address, wider first: a parent opens before its children.
	slices.SortFunc(live, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return cmp.Compare(a.Bits(), b.Bits())
	})
	var out []segmentExpiry
	emit := func(from, to netip.Addr, exp time.Time) {
		if !from.IsValid() || to.Less(from) {
			return
		}
		if n := len(out); n > 0 && out[n-1].expiry.Equal(exp) && out[n-1].to.Next() == from {
			out[n-1].to = to
			return
		}
		out = append(out, segmentExpiry{segment{from, to}, exp})
	}
	var stack []open
	var cur netip.Addr // first address not yet emitted inside the open prefixes
	closeUntil := func(limit netip.Addr, all bool) {
		for len(stack) > 0 {
			top := stack[len(stack)-1]
			if !all && !top.last.Less(limit) {
				return
			}
			emit(cur, top.last, top.expiry)
			cur = top.last.Next() // invalid past the last address: nothing follows
			stack = stack[:len(stack)-1]
		}
	}
	for _, p := range live {
		first := p.Addr()
		closeUntil(first, false)
		exp := fb.bans[p]
		if n := len(stack); n > 0 {
			// The parent's part before this child.
			if first != cur {
				emit(cur, first.Prev(), stack[n-1].expiry)
			}
			if laterExpiry(stack[n-1].expiry, exp) {
				exp = stack[n-1].expiry
			}
		}
		cur = first
		stack = append(stack, open{lastOf(p), exp})
	}
	closeUntil(netip.Addr{}, true)
	return out
}

// segmentExpiry is a segment and when it expires (zero: never).
type segmentExpiry struct {
	segment
	expiry time.Time
}

// plan returns the interval-set elements to delete and to add so that the
// kernel holds exactly the segments of the bans at now, and records them
// as held. Segments the kernel expired on its own (their expiry passed)
// are not deleted: deleting an absent element fails the whole batch.
func (fb *familyBook) plan(now time.Time) (del, add []nftables.SetElement) {
	want := fb.segments(now)
	keep := make(map[segment]bool, len(want))
	for _, s := range want {
		if old, ok := fb.kernel[s.segment]; ok && old.Equal(s.expiry) {
			keep[s.segment] = true
		}
	}
	for s, exp := range fb.kernel {
		if keep[s] {
			continue
		}
		if exp.IsZero() || exp.After(now) {
			del = append(del, intervalElems(s, 0)...)
		}
		delete(fb.kernel, s)
	}
	for _, s := range want {
		if keep[s.segment] {
			continue
		}
		timeout := time.Duration(0)
		if !s.expiry.IsZero() {
			timeout = min((s.expiry.Sub(now) + time.Millisecond - 1).Truncate(time.Millisecond), maxTimeout)
		}
		add = append(add, intervalElems(s.segment, timeout)...)
		fb.kernel[s.segment] = s.expiry
	}
	return del, add
}

// intervalElems encodes a segment as the kernel's half-open interval: a
// start element with the timeout and an "interval end" one past the last
// address (none when the segment runs to the last address there is).
func intervalElems(s segment, timeout time.Duration) []nftables.SetElement {
	out := []nftables.SetElement{{Key: s.from.AsSlice(), Timeout: timeout}}
	if end := s.to.Next(); end.IsValid() {
		out = append(out, nftables.SetElement{Key: end.AsSlice(), IntervalEnd: true})
	}
	return out
}

// netChanges collects the prefix bans (or unbans) of one call per jail and
// family, to plan them together.
type netChanges struct {
	b       *Backend
	touched map[*familyBook]*nftables.Set
	order   []*familyBook
}

func newNetChanges(b *Backend) *netChanges {
	return &netChanges{b: b, touched: map[*familyBook]*nftables.Set{}}
}

// touch notes that the book of p's family in js changes, and returns it.
func (nc *netChanges) touch(js *jailSets, p netip.Prefix) *familyBook {
	pb := nc.b.books[js.rule.Name]
	if pb == nil {
		pb = newPrefixBook()
		nc.b.books[js.rule.Name] = pb
	}
	fb, set := pb.family(p), js.v6net
	if p.Addr().Is4() {
		set = js.v4net
	}
	if _, ok := nc.touched[fb]; !ok {
		nc.touched[fb] = set
		nc.order = append(nc.order, fb)
	}
	return fb
}

// put records a ban of p in js until expiry (zero: permanent).
func (nc *netChanges) put(js *jailSets, p netip.Prefix, expiry time.Time) {
	nc.touch(js, p).put(p, expiry)
}

// lift removes the ban of exactly p in js; it reports whether there was one.
func (nc *netChanges) lift(js *jailSets, p netip.Prefix) bool {
	fb := nc.touch(js, p)
	_, ok := fb.bans[p]
	delete(fb.bans, p)
	return ok
}

// netPlan is the element changes of the touched books, and what to undo
// in them if the batch does not go through.
type netPlan struct {
	steps []netStep
}

type netStep struct {
	set      *nftables.Set
	fb       *familyBook
	del, add []nftables.SetElement
	before   map[segment]time.Time // the book's kernel before the plan
}

// plan computes the changes at now (see familyBook.plan).
func (nc *netChanges) plan(now time.Time) *netPlan {
	np := &netPlan{}
	for _, fb := range nc.order {
		before := make(map[segment]time.Time, len(fb.kernel))
		for s, e := range fb.kernel {
			before[s] = e
		}
		del, add := fb.plan(now)
		if len(del)+len(add) > 0 {
			np.steps = append(np.steps, netStep{set: nc.touched[fb], fb: fb, del: del, add: add, before: before})
		}
	}
	return np
}

// queue adds the plan to a batch, every deletion before any addition, and
// returns how many segments it adds.
func (np *netPlan) queue(bt *batcher) (int, error) {
	for _, st := range np.steps {
		if err := bt.deleteElements(st.set, st.del); err != nil {
			return 0, err
		}
	}
	n := 0
	for _, st := range np.steps {
		if err := bt.addElements(st.set, st.add); err != nil {
			return 0, err
		}
		for _, e := range st.add {
			if !e.IntervalEnd {
				n++
			}
		}
	}
	return n, nil
}

// done ends the plan: when the batch failed (err), what the books think
// the kernel holds goes back to what it was, and the bans stay recorded so
// that the next change (or Guard) sends them.
func (np *netPlan) done(err error) {
	if err == nil {
		return
	}
	for _, st := range np.steps {
		st.fb.kernel = st.before
	}
}

// missingPrefixBans returns the due prefix bans of jails the books do not
// hold until at least their expiry (bans ending within expiryMargin left
// out, as for single addresses).
func (b *Backend) missingPrefixBans(due []sysban.Ban, jails map[string]*jailSets, now time.Time) map[banKey]sysban.Ban {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := map[banKey]sysban.Ban{}
	for _, ban := range due {
		n := ban.Network()
		if _, ok := jails[ban.Jail]; !ok || !n.IsValid() || n.IsSingleIP() || ban.Observed {
			continue
		}
		if endsSoon(ban, now) {
			continue
		}
		if pb := b.books[ban.Jail]; pb != nil {
			if held, ok := pb.family(n).bans[n]; ok && !laterExpiry(ban.Expiry(), held) {
				continue
			}
		}
		keepLongest(out, ban)
	}
	return out
}

// checkPrefixSets compares the prefix sets with the segments the books
// say the kernel holds. A set that lacks one that has not expired was
// changed outside sysban: it is emptied and its book forgotten, so that
// every due prefix ban of it is missing and applied afresh (re-adding into
// a set whose segments are unknown could overlap them).
func (b *Backend) checkPrefixSets(ctx context.Context, exp expectation) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.gen != exp.gen {
		return nil // a Setup ran: the caller's expectation is stale anyway
	}
	now := time.Now().Add(expiryMargin)
	return b.do(ctx, func(c *nftables.Conn) error {
		for name, pb := range b.books {
			js := b.jails[name]
			if js == nil {
				continue
			}
			for _, f := range []struct {
				fb  *familyBook
				set *nftables.Set
			}{{&pb.v4, js.v4net}, {&pb.v6, js.v6net}} {
				if len(f.fb.kernel) == 0 {
					continue
				}
				elems, err := c.GetSetElements(f.set)
				if err != nil {
					return fmt.Errorf("read set %s: %w", f.set.Name, err)
				}
				starts := make(map[netip.Addr]bool, len(elems))
				for _, e := range elems {
					if a, ok := netip.AddrFromSlice(e.Key); ok && !e.IntervalEnd {
						starts[a] = true
					}
				}
				intact := true
				for s, exp := range f.fb.kernel {
					if (exp.IsZero() || exp.After(now)) && !starts[s.from] {
						intact = false
						break
					}
				}
				if intact {
					continue
				}
				b.log.Warn("nft: prefix set changed outside sysban; rebuilding it", "set", f.set.Name)
				c.FlushSet(f.set)
				if err := c.Flush(); err != nil {
					return fmt.Errorf("empty set %s: %w", f.set.Name, err)
				}
				*f.fb = familyBook{bans: map[netip.Prefix]time.Time{}, kernel: map[segment]time.Time{}}
			}
		}
		return nil
	})
}
