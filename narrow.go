package sysban

import "net/netip"

// Narrow returns the widest prefix of addr, no wider than prefix, that
// overlaps nothing spared objects to, and the reason spared gave for the
// first length it had to give up ("" when prefix itself is fine). spared
// says why a candidate prefix may not be banned ("" when it may). When
// every prefix wider than a single address is spared, the single address
// is returned: whether it may be banned at all is the caller's call.
//
// The jails (for the bans they decide) and the fleet's enforcers (for the
// prefixes other nodes publish) narrow with it, so a prefix ban spares the
// same addresses wherever it comes from.
func Narrow(prefix netip.Prefix, addr netip.Addr, spared func(netip.Prefix) string) (netip.Prefix, string) {
	why := ""
	// Overlap with a protected network is monotone in the length, so the
	// first length that overlaps none is the widest safe one.
	for bits := prefix.Bits(); bits < addr.BitLen(); bits++ {
		cand, _ := addr.Prefix(bits)
		hit := spared(cand)
		if hit == "" {
			return cand, why
		}
		if why == "" {
			why = hit
		}
	}
	return netip.PrefixFrom(addr, addr.BitLen()), why
}
