package pipeline

import (
	"math"
	"net/netip"

	"github.com/sysban/sysban"
)

// MarkBanned tells the pipeline about a ban decided elsewhere — restored
// from the store at start, or made by hand — so that failures from that
// address meanwhile count as "already banned" instead of deciding a second,
// possibly shorter, ban. Unknown jails are ignored.
func (p *Pipeline) MarkBanned(b sysban.Ban) {
	j := p.tab.Load().byName[b.Jail]
	if j == nil {
		return
	}
	expiry := int64(math.MaxInt64)
	if !b.Permanent() {
		expiry = int64(b.Expiry().Sub(p.epoch))
	}
	j.remember(sysban.CanonicalAddr(b.Addr), expiry, true)
}

// Forget drops what the pipeline remembers of a ban of addr in jail (after
// an unban), so new failures can ban it again.
func (p *Pipeline) Forget(jail string, addr netip.Addr) {
	if j := p.tab.Load().byName[jail]; j != nil {
		j.forget(sysban.CanonicalAddr(addr))
	}
}

// Protects says why jail would never ban addr ("loopback", "one of this
// host's addresses", "in the jail's ignoreip"), or "" if it would. Manual
// bans are held to the same rule as automatic ones.
func (p *Pipeline) Protects(jail string, addr netip.Addr) string {
	addr = sysban.CanonicalAddr(addr)
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
