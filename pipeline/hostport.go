package pipeline

import "net/netip"

// A bare IPv6 address followed by ":port" reads two ways: "2001:db8::5:1234"
// is the address 2001:db8::5:1234, or 2001:db8::5 and port 1234. Apache 2.4
// prints "[client 2001:db8::5:1234]", and a pattern that allows an optional
// ":port" after <HOST> (to cover daemons and versions with and without one)
// matches such text both ways. hostPattern takes the whole run of hex
// digits and colons; capture then decides:
//
//   - only one reading is an address the pattern accepts: that one
//     ("2001:db8::5:54321": five digits are no group, so the port);
//   - both are: nothing. The client chooses its source port, so taking the
//     longer reading would let it name an address that is not its own (its
//     /64 shifted by a group), and the shorter one is wrong whenever the
//     daemon printed no port. Ephemeral ports have five digits on every
//     system, so real clients are not lost to this.

// portProbe stands in for the address when splitHost asks whether the
// pattern accepts a port after it: the zone ends the IPv6 branch, so the
// ":digits" after it can only be matched by what follows <HOST>.
const portProbe = "::1%z"

// hostCapture is the host p captured at text[start:end], or at a shorter
// span when that is how the pattern reads the text (see above); ok is false
// when the line names no single address.
func hostCapture(p *pattern, text string, start, end int) (host string, ok bool) {
	whole := text[start:end]
	colon := lastPortColon(whole)
	if colon < 0 {
		return whole, true
	}
	short := whole[:colon]
	if _, err := netip.ParseAddr(short); err != nil || !acceptsPort(p, text, start, start+colon) {
		return whole, true
	}
	if _, err := netip.ParseAddr(whole); err == nil {
		return "", false // both readings are addresses
	}
	return short, true
}

// lastPortColon is the index of the colon before a final run of decimal
// digits in an IPv6 capture, -1 when there is none.
func lastPortColon(host string) int {
	i := len(host)
	for i > 0 && host[i-1] >= '0' && host[i-1] <= '9' {
		i--
	}
	if i == len(host) || i == 0 || host[i-1] != ':' {
		return -1
	}
	// A dotted IPv4 tail ends in digits too but has no colon before them
	// ("::ffff:192.0.2.7"), and "::1" has nothing before its colon pair.
	if i-1 == 0 || host[i-2] == ':' {
		return -1
	}
	return i - 1
}

// acceptsPort reports whether p matches text with the host ending at
// colon, the rest of the pattern taking ":digits...": it runs p once more on
// text with the address replaced by portProbe.
func acceptsPort(p *pattern, text string, start, colon int) bool {
	probe := text[:start] + portProbe + text[colon:]
	var buf [fastMaxSlots]int
	loc := p.find(probe, buf[:])
	return loc != nil && loc[2*p.host] == start && loc[2*p.host+1] == start+len(portProbe)
}
