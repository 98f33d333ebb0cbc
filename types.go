package sysban

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// Message is one syslog message as the receiver parsed it. Fields the sender
// did not supply are zero: Hostname is empty when the header has none (FreeBSD
// and local glibc senders); it is never invented from the receiver's own name.
type Message struct {
	Received time.Time      // when the listener read it
	Listener string         // listener name, e.g. "udp:127.0.0.1:5514"
	Sender   netip.AddrPort // socket peer; zero for unix sockets

	Facility  uint8
	Severity  uint8
	Timestamp time.Time // header time; zero when absent or unparsable
	Hostname  string
	AppName   string // program, e.g. "sshd", "postfix/smtpd"
	ProcID    string
	MsgID     string
	// StructuredData is RFC 5424 SD: SD-ID -> param -> value. Nil when absent.
	StructuredData map[string]map[string]string
	Text           string // the MSG part; invalid UTF-8 is kept as received

	// Origin is who wrote the message, as far as something other than
	// the message's own text vouches for it (the kernel, or a trusted
	// forwarder passing on what the kernel told it).
	Origin Origin
}

// Vouch says who vouches for an Origin's fields.
type Vouch uint8

const (
	// VouchNone: nobody; the sender is unknown (UDP, a remote host, a
	// forwarder that relayed the line without its properties).
	VouchNone Vouch = iota
	// VouchSocket: the kernel, for the socket sysban read the message
	// from (SCM_CREDENTIALS or SO_PEERCRED on unix sockets, the owner of
	// the peer socket from sock_diag on loopback TCP).
	VouchSocket
	// VouchForwarder: a trusted forwarder's structured data
	// ([sysban@32473 ...]), carrying what the kernel told it.
	VouchForwarder
)

func (v Vouch) String() string {
	switch v {
	case VouchSocket:
		return "socket"
	case VouchForwarder:
		return "forwarder"
	}
	return "none"
}

// Origin is the process that wrote a message. UID, GID and PID are -1
// when the voucher did not say; every field is meaningless under
// VouchNone (use Known). Exe is the executable's path, Comm the kernel's
// short process name, Unit the systemd unit (journald's _SYSTEMD_UNIT).
type Origin struct {
	Vouched       Vouch
	UID, GID, PID int64
	Exe           string
	Comm          string
	Unit          string
}

// Known reports whether anybody vouches for the origin.
func (o Origin) Known() bool { return o.Vouched != VouchNone }

// Failure is one authentication failure (or probe) a filter found: the jail
// that counts it, the offending address and the line that showed it.
type Failure struct {
	Jail string
	Addr netip.Addr
	Time time.Time
	Line string
}

// Permanent as a ban duration means the ban never expires.
const Permanent time.Duration = -1

// Ban is a decision to block Prefix in Jail from Start for Duration
// (Permanent: forever).
type Ban struct {
	Jail string
	// Prefix is the banned network, canonical (CanonicalPrefix): a single
	// address is a /32 or /128. Zero means Addr alone, so code that bans
	// one address may leave it unset; read it with Network.
	Prefix   netip.Prefix
	Addr     netip.Addr // the address that offended last (inside Prefix); may be zero for a manual prefix ban
	Start    time.Time
	Duration time.Duration
	Failures int      // how many failures inside findtime led to it
	Lines    []string // the log lines of those failures, newest last (may be empty)
	// Origin is the host whose log showed the failures: the syslog
	// hostname, else the sender's address; empty when unknown (manual
	// bans, recidive). The fleet uses it for bans of scope origin.
	Origin string
	// Observed marks a decision of a jail in observe mode: recorded,
	// counted and announced as what the jail would ban, never enforced.
	Observed bool
}

// Network is the banned network: Prefix, or Addr alone when Prefix is
// unset, canonical either way; invalid when neither is set.
func (b Ban) Network() netip.Prefix {
	if b.Prefix.IsValid() {
		return CanonicalPrefix(b.Prefix)
	}
	if !b.Addr.IsValid() {
		return netip.Prefix{}
	}
	a := CanonicalAddr(b.Addr)
	return netip.PrefixFrom(a, a.BitLen())
}

// Target is what the ban covers as people and tools write it: the address
// for a single address ("192.0.2.7"), the prefix otherwise
// ("2001:db8:1:2::/64").
func (b Ban) Target() string {
	n := b.Network()
	if n.IsSingleIP() {
		return n.Addr().String()
	}
	return n.String()
}

// Permanent reports whether the ban never expires.
func (b Ban) Permanent() bool { return b.Duration < 0 }

// Expiry is when the ban ends; zero for a permanent ban.
func (b Ban) Expiry() time.Time {
	if b.Permanent() {
		return time.Time{}
	}
	return b.Start.Add(b.Duration)
}

// Protocol is the transport a jail's rule matches.
type Protocol string

const (
	TCP Protocol = "tcp"
	UDP Protocol = "udp"
	All Protocol = "all" // any protocol; with ports: tcp, udp, sctp and dccp
)

// Verdict is what the kernel does with a banned address's packets.
type Verdict string

const (
	Drop   Verdict = "drop"   // silently discard: the attacker gets no answer
	Reject Verdict = "reject" // answer with TCP RST / ICMP admin-prohibited
)

// PortRange is an inclusive destination port range; First == Last for one port.
type PortRange struct{ First, Last uint16 }

func (r PortRange) String() string {
	if r.First == r.Last {
		return strconv.Itoa(int(r.First))
	}
	return fmt.Sprintf("%d-%d", r.First, r.Last)
}

// JailRule is what the kernel needs to know about a jail: which traffic from
// a banned address to stop and how. No ports means every port.
type JailRule struct {
	Name     string
	Ports    []PortRange
	Protocol Protocol
	Verdict  Verdict
}

func (r JailRule) String() string {
	ports := make([]string, len(r.Ports))
	for i, p := range r.Ports {
		ports[i] = p.String()
	}
	return fmt.Sprintf("%s(%s %s %s)", r.Name, r.Protocol, strings.Join(ports, ","), r.Verdict)
}

// CanonicalAddr returns a with IPv4-mapped IPv6 (::ffff:a.b.c.d) unmapped and
// any zone dropped, so one host has one key everywhere.
func CanonicalAddr(a netip.Addr) netip.Addr {
	return a.Unmap().WithZone("")
}

// CanonicalPrefix returns p masked, with an IPv4-mapped IPv6 prefix
// (::ffff:10.0.0.0/104) as IPv4 (10.0.0.0/8) and any zone dropped, so one
// network has one form everywhere. An IPv4-mapped prefix wider than /96
// covers more than IPv4 and stays IPv6.
func CanonicalPrefix(p netip.Prefix) netip.Prefix {
	if !p.IsValid() {
		return p
	}
	a := p.Addr().WithZone("")
	if a.Is4In6() && p.Bits() >= 96 {
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked()
	}
	return netip.PrefixFrom(a, p.Bits()).Masked()
}

// ParsePrefix reads an address ("2001:db8::5", a single-address prefix;
// a zone is dropped) or a prefix ("2001:db8::/64"; host bits must be zero)
// in canonical form.
func ParsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		a = CanonicalAddr(a) // the zone goes: it names a link, not a host
		return netip.PrefixFrom(a, a.BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Masked() != p {
		return netip.Prefix{}, fmt.Errorf("%q: host bits set (the network is %s)", s, p.Masked())
	}
	return CanonicalPrefix(p), nil
}
