package nft

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"github.com/google/btree"
	"github.com/google/nftables"
	sysban "github.com/sysban/sysban"
)

// Prefix bans (a /64, a /24) go to an interval set per jail and family
// beside the hash set of single addresses. Why two sets and not one
// interval set for both, by measurement (scripts/bench -sections prefix,
// figures in docs/performance.md):
//
//   - The packet path. Every packet to a jail's port (transport and port
//     are checked first) is looked up in both sets, and most packets are
//     not banned. From a non-member
//     source, 100k elements in the hash set cost a packet nothing
//     measurable over empty sets (-115 and -4 ns in two runs: noise),
//     100k ranges in the interval set (an rbtree) 430 to 510 ns, a quarter
//     of the whole path (the sender's CPU per datagram through a veth
//     pair, about 1.8 µs with empty sets; rounds alternating between three
//     receivers, one per set content). 100k single bans, the common case
//     under a distributed attack, would pay the tree's price in one
//     interval set; beside it they pay the hash's, and only a jail with
//     many prefix bans pays the tree's.
//   - Applying: an interval needs two elements (start, end) and each
//     insert walks the tree for overlaps, where a hash insert does
//     neither, so 100k single bans stay as fast to apply as before.
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
// deletions first, so the kernel never sees an overlap; the difference is
// planned for the span the change touches only (prefixbook.go).

// prefixBook is one jail's familyBooks (prefixbook.go).
type prefixBook struct{ v4, v6 *familyBook }

func newPrefixBook() *prefixBook {
	return &prefixBook{v4: newFamilyBook(famV4), v6: newFamilyBook(famV6)}
}

// family returns the book of p's family.
func (pb *prefixBook) family(p netip.Prefix) *familyBook {
	if p.Addr().Is4() {
		return pb.v4
	}
	return pb.v6
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
	return nc.touch(js, p).lift(p)
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
	before   *btree.BTreeG[segEntry] // the book's kernel before the plan (a copy on write)
}

// plan computes the changes at now (see familyBook.plan).
func (nc *netChanges) plan(now time.Time) *netPlan {
	np := &netPlan{}
	for _, fb := range nc.order {
		before := fb.kernel.Clone()
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
// that the next change (or Guard) sends them: the next plan of the book
// sweeps everything, as the spans of this one are forgotten.
func (np *netPlan) done(err error) {
	if err == nil {
		return
	}
	for _, st := range np.steps {
		st.fb.kernel, st.fb.full = st.before, true
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
			if held, ok := pb.family(n).expiryOf(n); ok && !laterExpiry(ban.Expiry(), held) {
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
			}{{pb.v4, js.v4net}, {pb.v6, js.v6net}} {
				if f.fb.kernel.Len() == 0 {
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
				f.fb.kernel.Ascend(func(s segEntry) bool {
					intact = !live(s.expiry, now.UnixNano()) || starts[f.fb.fam.toAddr(s.from)]
					return intact
				})
				if intact {
					continue
				}
				b.log.Warn("nft: prefix set changed outside sysban; rebuilding it", "set", f.set.Name)
				c.FlushSet(f.set)
				if err := c.Flush(); err != nil {
					return fmt.Errorf("empty set %s: %w", f.set.Name, err)
				}
				f.fb.reset()
			}
		}
		return nil
	})
}
