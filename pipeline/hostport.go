package pipeline

import "net/netip"

// A bare IPv6 address followed by ":port" is ambiguous when the port has at
// most four digits: "2001:db8::5:1234" is the address 2001:db8::5:1234, or
// 2001:db8::5 and port 1234. Apache 2.4 prints "[client 2001:db8::5:1234]",
// and a pattern that allows an optional ":port" after <HOST> (to cover
// daemons and versions with and without it) matches such text both ways.
// The client chooses its source port, so taking the longer reading lets it
// name an address that is not its own (its /64 shifted by one group). The
// shorter reading is wrong in turn when the daemon printed no port. Neither
// reading is safe, so the line bans nothing; five-digit ports, which every
// system's ephemeral range uses, cannot be a group and are never ambiguous.

// portReadingProbe stands in for the address when splitHost asks whether
// the pattern would also take the last group as a port: eight groups, so
// hostPattern cannot extend it by another.
const portReadingProbe = "1:1:1:1:1:1:1:1"

// splitHost reports whether the host text[start:end] that p captured could
// also be read as a shorter address and a port by p: the capture ends in
// ":" and one to four decimal digits, what precedes them is an address, and
// p still matches when the address is replaced by one that cannot take
// another group. It costs a second regex run only on such IPv6 captures.
func splitHost(p *pattern, text string, start, end int) bool {
	colon := -1
	for i := end - 1; i > start && i >= end-5; i-- {
		c := text[i]
		if c == ':' {
			colon = i
			break
		}
		if c < '0' || c > '9' {
			return false
		}
	}
	if colon < 0 || colon == end-1 {
		return false
	}
	if _, err := netip.ParseAddr(text[start:colon]); err != nil {
		return false
	}
	probe := text[:start] + portReadingProbe + text[colon:]
	loc := p.re.FindStringSubmatchIndex(probe)
	return loc != nil && loc[2*p.host] == start && loc[2*p.host+1] == start+len(portReadingProbe)
}
