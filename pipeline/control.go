package pipeline

import (
	"math"
	"net/netip"

	"github.com/sysban/sysban"
)

// MarkBanned tells the pipeline about a ban decided elsewhere — restored
// from the store at start, or made by hand — so that failures from inside
// its prefix meanwhile count as "already banned" instead of deciding a
// second, possibly shorter, ban. Unknown jails are ignored.
func (p *Pipeline) MarkBanned(b sysban.Ban) {
	j := p.tab.Load().byName[b.Jail]
	if j == nil || !b.Network().IsValid() {
		return
	}
	expiry := int64(math.MaxInt64)
	if !b.Permanent() {
		expiry = int64(b.Expiry().Sub(p.epoch))
	}
	j.remember(b.Network(), expiry, true)
}

// Forget drops what the pipeline remembers of a ban of prefix in jail
// (after an unban), so new failures can ban it again.
func (p *Pipeline) Forget(jail string, prefix netip.Prefix) {
	if j := p.tab.Load().byName[jail]; j != nil {
		j.forget(sysban.CanonicalPrefix(prefix))
	}
}

// Protects says why jail would never ban prefix ("loopback", "one of this
// host's addresses", "in the jail's ignoreip"), or "" if it would: for a
// prefix, why it covers such an address. Manual bans are held to the same
// rule as automatic ones.
func (p *Pipeline) Protects(jail string, prefix netip.Prefix) string {
	prefix = sysban.CanonicalPrefix(prefix)
	addr := prefix.Addr()
	if !prefix.IsSingleIP() {
		j := p.tab.Load().byName[jail]
		if _, why := p.narrow(j, prefix, addr); why != "" {
			return "covers " + why
		}
		return ""
	}
	switch {
	case addr.IsLoopback():
		return "loopback"
	case addr.IsUnspecified() || addr.IsMulticast() || addr.IsLinkLocalUnicast() ||
		addr.IsLinkLocalMulticast() || addr.IsInterfaceLocalMulticast():
		return "not a unicast host address"
	case p.isProtected(addr):
		return "one of this host's addresses"
	}
	if j := p.tab.Load().byName[jail]; j != nil && j.ignores(addr) {
		return "in the jail's ignoreip"
	}
	return ""
}

// alwaysSpared are the networks no prefix ban may cover whatever the
// configuration (single addresses in them are refused by isProtected).
var alwaysSpared = []struct {
	net netip.Prefix
	why string
}{
	{netip.MustParsePrefix("127.0.0.0/8"), "loopback"},
	{netip.MustParsePrefix("::1/128"), "loopback"},
	{netip.MustParsePrefix("169.254.0.0/16"), "link-local addresses"},
	{netip.MustParsePrefix("fe80::/10"), "link-local addresses"},
}

// narrow returns the widest prefix of addr, no wider than prefix, that
// covers no protected network (loopback, link-local, the host's own
// addresses in Options.Protected, allowed senders in Options.Spared, the
// jail's ignoreip),
// and what the first one it had to spare was ("" when prefix is fine). A
// single address is returned as is: whether it may be banned at all is
// isProtected's and ignores' call, made before counting. j may be nil.
func (p *Pipeline) narrow(j *jail, prefix netip.Prefix, addr netip.Addr) (netip.Prefix, string) {
	if prefix.IsSingleIP() {
		return prefix, ""
	}
	return sysban.Narrow(prefix, addr, func(cand netip.Prefix) string { return p.sparedBy(j, cand) })
}

// Spares says why this host never bans cand in jail (the protected
// network cand overlaps: loopback, link-local, its own addresses, allowed
// senders, the jail's ignoreip), or "" if it may: what narrows a prefix
// ban here, for the fleet's bans as for the jails' own.
func (p *Pipeline) Spares(jail string, cand netip.Prefix) string {
	return p.sparedBy(p.tab.Load().byName[jail], sysban.CanonicalPrefix(cand))
}

// sparedBy names the protected network cand overlaps, or "".
func (p *Pipeline) sparedBy(j *jail, cand netip.Prefix) string {
	for _, s := range alwaysSpared {
		if s.net.Overlaps(cand) {
			return s.why + " " + s.net.String()
		}
	}
	for _, pr := range p.protected {
		if pr.Overlaps(cand) {
			return "this host's address " + pr.String()
		}
	}
	for _, pr := range p.tab.Load().spared {
		// An allowed range wider than cand spares only what it shares
		// with cand: still an overlap, so cand narrows below it, down to
		// the attacker's own address.
		if pr.Overlaps(cand) {
			return "an allowed syslog sender " + pr.String()
		}
	}
	if j != nil {
		for _, pr := range j.ignore {
			if pr.Overlaps(cand) {
				return "ignoreip " + pr.String()
			}
		}
	}
	return ""
}
