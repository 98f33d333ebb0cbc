package fleet

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// unbanJail is the jail token of an unban tombstone
// ("<node>._unban.<addr>"). Jail names start with a letter, so it can never
// be a jail's.
const unbanJail = "_unban"

// Key names one ban in the bucket: "<node>.<jail>.<addr>", where node is the
// node that decided and published it (the server lets a node publish only
// under its own name), jail the jail, and addr the banned prefix encoded
// without '.' and ':', which NATS reserves as token separator and does not
// allow in keys:
//
//	203.0.113.7/32      -> 203-0-113-7_32
//	2001:db8::1/128     -> 2001-db8--1_128
//
// The prefix length is always written, so that prefix bans (a /24, a /64)
// have keys of their own and an old node never mistakes one for a single
// address.
//
// A ban of scope origin carries a fourth token, its origin's node name
// ("<node>.<jail>.<addr>.<origin>"): with per-origin counting (a jail's
// countby: origin) host A's and host B's logs may each ban one address,
// and each host must keep its own ban.
type Key struct {
	Node   string
	Jail   string
	Prefix netip.Prefix
	Origin string // scope origin only: EncodeOrigin of the origin node
}

// String is the key as it appears in the bucket.
func (k Key) String() string {
	s := k.Node + "." + k.Jail + "." + EncodeAddr(k.Prefix)
	if k.Origin != "" {
		s += "." + k.Origin
	}
	return s
}

// EncodeOrigin is the key token of an origin: a node name as it is, any
// other text (an unmapped hostname or address) with the characters a node
// name cannot hold written as '-'.
func EncodeOrigin(origin string) string {
	if validNode(origin) {
		return origin
	}
	b := []byte(origin)
	for i, c := range b {
		if !validNode(string(c)) {
			b[i] = '-'
		}
	}
	if len(b) > 64 {
		b = b[:64]
	}
	return string(b)
}

// EncodeAddr is the key token of a prefix: the masked address in its
// canonical text with '.' and ':' replaced by '-', then '_' and the length.
// An IPv4-mapped IPv6 address must be unmapped first (AddrKey does): its
// text would read back as a different IPv6 address.
func EncodeAddr(p netip.Prefix) string {
	p = p.Masked()
	b := p.Addr().AppendTo(make([]byte, 0, 48))
	for i, c := range b {
		if c == '.' || c == ':' {
			b[i] = '-'
		}
	}
	b = append(b, '_')
	return string(strconv.AppendInt(b, int64(p.Bits()), 10))
}

// DecodeAddr reads a key token written by EncodeAddr. It accepts only the
// canonical form (what EncodeAddr writes), so one prefix has one key.
func DecodeAddr(tok string) (netip.Prefix, error) {
	text, bitsText, ok := strings.Cut(tok, "_")
	if !ok || text == "" {
		return netip.Prefix{}, fmt.Errorf("address token %q: want <addr>_<bits>", tok)
	}
	bits, err := strconv.Atoi(bitsText)
	if err != nil || bitsText != strconv.Itoa(bits) {
		return netip.Prefix{}, fmt.Errorf("address token %q: bad prefix length", tok)
	}
	var addr netip.Addr
	if a, err := netip.ParseAddr(strings.ReplaceAll(text, "-", ".")); err == nil && a.Is4() {
		addr = a
	} else if a, err := netip.ParseAddr(strings.ReplaceAll(text, "-", ":")); err == nil && a.Is6() && !a.Is4In6() {
		addr = a
	} else {
		return netip.Prefix{}, fmt.Errorf("address token %q: not an IPv4 or IPv6 address", tok)
	}
	p, err := addr.Prefix(bits)
	if err != nil || bits < 0 || p != netip.PrefixFrom(addr, bits) {
		return netip.Prefix{}, fmt.Errorf("address token %q: prefix length %d does not fit or host bits are set", tok, bits)
	}
	if EncodeAddr(p) != tok {
		return netip.Prefix{}, fmt.Errorf("address token %q: not in canonical form", tok)
	}
	return p, nil
}

// ParseKey reads a bucket key. Node and jail tokens are checked against the
// names the config allows, so a key never smuggles a subject wildcard.
func ParseKey(s string) (Key, error) {
	parts := strings.Split(s, ".")
	if len(parts) != 3 && (len(parts) != 4 || parts[1] == unbanJail || !validNode(parts[3])) {
		return Key{}, fmt.Errorf("fleet: key %q: want <node>.<jail>.<addr>[.<origin>]", s)
	}
	if !validNode(parts[0]) {
		return Key{}, fmt.Errorf("fleet: key %q: bad node name", s)
	}
	if parts[1] != unbanJail && !validJail(parts[1]) {
		return Key{}, fmt.Errorf("fleet: key %q: bad jail name", s)
	}
	p, err := DecodeAddr(parts[2])
	if err != nil {
		return Key{}, fmt.Errorf("fleet: key %q: %w", s, err)
	}
	k := Key{Node: parts[0], Jail: parts[1], Prefix: p}
	if len(parts) == 4 {
		k.Origin = parts[3]
	}
	return k, nil
}

// AddrKey is the prefix of a single address (/32 or /128), the only kind
// of ban sysban.Ban carries today.
func AddrKey(a netip.Addr) netip.Prefix {
	a = a.Unmap().WithZone("")
	return netip.PrefixFrom(a, a.BitLen())
}

// validNode: node names become subject tokens and permission subjects;
// letters, digits, '-' and '_', 1 to 64 bytes.
func validNode(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// validJail mirrors the config's jail names: [a-z][a-z0-9_-]{0,31}.
func validJail(s string) bool {
	if s == "" || len(s) > 32 || s[0] < 'a' || s[0] > 'z' {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}
