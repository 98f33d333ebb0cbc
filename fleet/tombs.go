package fleet

import (
	"net/netip"
	"slices"
	"time"
)

// tombs are the unbans the bucket holds: prefix -> the time before which
// every ban covering it is lifted. An unban of 2001:db8::5 lifts the
// 2001:db8::/64 ban that covers it, as a local unban does; bans of
// narrower prefixes inside an unbanned one stay.
//
// Lookups go the other way (which unbans does this ban cover?), so beside
// the map there is an address-ordered list of the unbanned prefixes,
// rebuilt when it is needed after a change; a single address needs only
// the map.
type tombs struct {
	at     map[netip.Prefix]time.Time
	sorted []netip.Prefix // nil after a change
}

func newTombs() *tombs { return &tombs{at: map[netip.Prefix]time.Time{}} }

// add records an unban of p at t (the later one wins).
func (ts *tombs) add(p netip.Prefix, t time.Time) {
	if t.After(ts.at[p]) {
		if _, ok := ts.at[p]; !ok {
			ts.sorted = nil
		}
		ts.at[p] = t
	}
}

// liftedAt is the latest unban of an address or prefix inside p: a ban of
// p decided up to then is lifted. Zero when none is.
func (ts *tombs) liftedAt(p netip.Prefix) time.Time {
	if p.IsSingleIP() || len(ts.at) == 0 {
		return ts.at[p]
	}
	if ts.sorted == nil {
		ts.sorted = make([]netip.Prefix, 0, len(ts.at))
		for t := range ts.at {
			ts.sorted = append(ts.sorted, t)
		}
		slices.SortFunc(ts.sorted, func(a, b netip.Prefix) int { return a.Addr().Compare(b.Addr()) })
	}
	var last time.Time
	i, _ := slices.BinarySearchFunc(ts.sorted, p.Addr(), func(t netip.Prefix, a netip.Addr) int { return t.Addr().Compare(a) })
	for ; i < len(ts.sorted) && p.Contains(ts.sorted[i].Addr()); i++ {
		if t := ts.sorted[i]; covers(p, t) && ts.at[t].After(last) {
			last = ts.at[t]
		}
	}
	return last
}

// covers reports whether prefix a contains all of prefix b.
func covers(a, b netip.Prefix) bool {
	return a.Bits() <= b.Bits() && a.Contains(b.Addr())
}
