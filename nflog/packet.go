package nflog

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
)

// IP protocol numbers Packet reads the ports of.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// Packet is what sysban reads of a logged packet: its addresses and, for
// TCP and UDP, its ports and TCP flags.
type Packet struct {
	Src, Dst netip.Addr
	Proto    uint8 // transport protocol number (6 tcp, 17 udp, ...)
	// Ports holds whether SrcPort and DstPort (and Flags for TCP) were
	// read: false for other protocols, non-first fragments and transport
	// headers cut short by the snap length.
	Ports            bool
	SrcPort, DstPort uint16
	Flags            uint8 // TCP flags (0x02 SYN, 0x10 ACK, ...)
}

// TCP flag bits.
const (
	FlagSYN = 0x02
	FlagACK = 0x10
)

// NewConnection reports whether p opens a connection: a TCP SYN without
// ACK, or any UDP datagram (UDP has no handshake to tell).
func (p Packet) NewConnection() bool {
	switch {
	case !p.Ports:
		return false
	case p.Proto == ProtoTCP:
		return p.Flags&(FlagSYN|FlagACK) == FlagSYN
	case p.Proto == ProtoUDP:
		return true
	}
	return false
}

// ProtoName is "tcp", "udp" or the protocol number.
func (p Packet) ProtoName() string {
	switch p.Proto {
	case ProtoTCP:
		return "tcp"
	case ProtoUDP:
		return "udp"
	}
	return fmt.Sprint(p.Proto)
}

// Errors of ParsePacket.
var (
	ErrShort   = errors.New("nflog: packet shorter than its IP header")
	ErrVersion = errors.New("nflog: not an IPv4 or IPv6 packet")
	ErrHeader  = errors.New("nflog: malformed IP header")
)

// IPv6 extension headers ParsePacket walks to find the transport.
const (
	ip6HopByHop = 0
	ip6Routing  = 43
	ip6Fragment = 44
	ip6AH       = 51
	ip6DestOpts = 60
	// maxExtHeaders bounds the walk; real packets carry one or two.
	maxExtHeaders = 8
)

// ParsePacket reads an NFLOG payload, which starts at the IP header. The
// bytes are the network's: every offset is checked against len(b), which
// the snap length may have cut anywhere. An IP header that cannot be read
// is an error; a transport header that is absent or cut short is not (the
// addresses are still good), it just leaves Ports false.
func ParsePacket(b []byte) (Packet, error) {
	if len(b) < 1 {
		return Packet{}, ErrShort
	}
	switch b[0] >> 4 {
	case 4:
		return parse4(b)
	case 6:
		return parse6(b)
	}
	return Packet{}, ErrVersion
}

func parse4(b []byte) (Packet, error) {
	if len(b) < 20 {
		return Packet{}, ErrShort
	}
	ihl := int(b[0]&0x0f) * 4
	if ihl < 20 {
		return Packet{}, fmt.Errorf("%w: IPv4 header length %d", ErrHeader, ihl)
	}
	if total := int(binary.BigEndian.Uint16(b[2:4])); total < ihl {
		return Packet{}, fmt.Errorf("%w: IPv4 total length %d below header length %d", ErrHeader, total, ihl)
	}
	p := Packet{
		Src:   netip.AddrFrom4([4]byte(b[12:16])),
		Dst:   netip.AddrFrom4([4]byte(b[16:20])),
		Proto: b[9],
	}
	if binary.BigEndian.Uint16(b[6:8])&0x1fff != 0 {
		return p, nil // a later fragment: no transport header
	}
	if ihl <= len(b) {
		readPorts(&p, b[ihl:])
	}
	return p, nil
}

func parse6(b []byte) (Packet, error) {
	if len(b) < 40 {
		return Packet{}, ErrShort
	}
	p := Packet{
		Src: netip.AddrFrom16([16]byte(b[8:24])),
		Dst: netip.AddrFrom16([16]byte(b[24:40])),
	}
	next, rest := b[6], b[40:]
	for range maxExtHeaders {
		var n int
		switch next {
		case ip6HopByHop, ip6Routing, ip6DestOpts:
			if len(rest) < 2 {
				p.Proto = next
				return p, nil
			}
			n = (int(rest[1]) + 1) * 8
		case ip6AH:
			if len(rest) < 2 {
				p.Proto = next
				return p, nil
			}
			n = (int(rest[1]) + 2) * 4
		case ip6Fragment:
			if len(rest) < 8 {
				p.Proto = next
				return p, nil
			}
			if binary.BigEndian.Uint16(rest[2:4])>>3 != 0 {
				p.Proto = rest[0]
				return p, nil // a later fragment: no transport header
			}
			n = 8
		default:
			p.Proto = next
			readPorts(&p, rest)
			return p, nil
		}
		if n > len(rest) {
			// Cut by the snap length inside the extension headers.
			p.Proto = next
			return p, nil
		}
		next, rest = rest[0], rest[n:]
	}
	return Packet{}, fmt.Errorf("%w: more than %d IPv6 extension headers", ErrHeader, maxExtHeaders)
}

// readPorts reads the ports (and TCP flags) of p's transport header th.
func readPorts(p *Packet, th []byte) {
	switch p.Proto {
	case ProtoTCP:
		if len(th) < 14 {
			return
		}
		p.Flags = th[13]
	case ProtoUDP:
		if len(th) < 8 {
			return
		}
	default:
		return
	}
	p.SrcPort = binary.BigEndian.Uint16(th[0:2])
	p.DstPort = binary.BigEndian.Uint16(th[2:4])
	p.Ports = true
}
