package nflog

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// ip4 builds an IPv4 packet: header with ihl words, the given protocol and
// fragment field, then the transport bytes.
func ip4(ihl int, proto byte, frag uint16, src, dst string, l4 []byte) []byte {
	b := make([]byte, ihl*4)
	b[0] = 0x40 | byte(ihl)
	binary.BigEndian.PutUint16(b[2:4], uint16(len(b)+len(l4)))
	binary.BigEndian.PutUint16(b[6:8], frag)
	b[8] = 64
	b[9] = proto
	s, d := netip.MustParseAddr(src).As4(), netip.MustParseAddr(dst).As4()
	copy(b[12:16], s[:])
	copy(b[16:20], d[:])
	return append(b, l4...)
}

// ip6 builds an IPv6 packet whose headers after the fixed one are ext
// (already encoded), with next the first next-header value.
func ip6(next byte, src, dst string, rest []byte) []byte {
	b := make([]byte, 40)
	b[0] = 0x60
	binary.BigEndian.PutUint16(b[4:6], uint16(len(rest)))
	b[6] = next
	b[7] = 64
	s, d := netip.MustParseAddr(src).As16(), netip.MustParseAddr(dst).As16()
	copy(b[8:24], s[:])
	copy(b[24:40], d[:])
	return append(b, rest...)
}

func tcp(sport, dport uint16, flags byte) []byte {
	b := make([]byte, 20)
	binary.BigEndian.PutUint16(b[0:2], sport)
	binary.BigEndian.PutUint16(b[2:4], dport)
	b[12] = 5 << 4
	b[13] = flags
	return b
}

func udp(sport, dport uint16) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint16(b[0:2], sport)
	binary.BigEndian.PutUint16(b[2:4], dport)
	binary.BigEndian.PutUint16(b[4:6], 8)
	return b
}

// ext is an IPv6 extension header of 8*(hdrExtLen+1) bytes.
func ext(next byte, hdrExtLen byte) []byte {
	b := make([]byte, 8*(int(hdrExtLen)+1))
	b[0], b[1] = next, hdrExtLen
	return b
}

func fragHdr(next byte, offset uint16) []byte {
	b := make([]byte, 8)
	b[0] = next
	binary.BigEndian.PutUint16(b[2:4], offset<<3)
	return b
}

func concat(parts ...[]byte) []byte {
	var out []byte
	for _, p := range parts {
		out = append(out, p...)
	}
	return out
}

func TestParsePacket(t *testing.T) {
	v4 := func(ihl int, proto byte, frag uint16, l4 []byte) []byte {
		return ip4(ihl, proto, frag, "203.0.113.9", "192.0.2.1", l4)
	}
	v6 := func(next byte, rest []byte) []byte { return ip6(next, "2001:db8::9", "2001:db8::1", rest) }
	a4, d4 := netip.MustParseAddr("203.0.113.9"), netip.MustParseAddr("192.0.2.1")
	a6, d6 := netip.MustParseAddr("2001:db8::9"), netip.MustParseAddr("2001:db8::1")
	tests := []struct {
		name    string
		in      []byte
		want    Packet
		wantErr error
		newConn bool
	}{
		{"v4 tcp syn", v4(5, 6, 0, tcp(40000, 23, FlagSYN)), Packet{Src: a4, Dst: d4, Proto: 6, Ports: true, SrcPort: 40000, DstPort: 23, Flags: FlagSYN}, nil, true},
		{"v4 tcp syn-ack is no new connection", v4(5, 6, 0, tcp(23, 40000, FlagSYN|FlagACK)), Packet{Src: a4, Dst: d4, Proto: 6, Ports: true, SrcPort: 23, DstPort: 40000, Flags: FlagSYN | FlagACK}, nil, false},
		{"v4 with options", v4(7, 17, 0, udp(5353, 161)), Packet{Src: a4, Dst: d4, Proto: 17, Ports: true, SrcPort: 5353, DstPort: 161}, nil, true},
		{"v4 udp cut after the ports", v4(5, 17, 0, udp(1, 2))[:24], Packet{Src: a4, Dst: d4, Proto: 17}, nil, false},
		{"v4 tcp cut before the flags", v4(5, 6, 0, tcp(1, 2, FlagSYN))[:33], Packet{Src: a4, Dst: d4, Proto: 6}, nil, false},
		{"v4 header only", v4(5, 6, 0, nil), Packet{Src: a4, Dst: d4, Proto: 6}, nil, false},
		{"v4 options cut by snaplen", v4(15, 6, 0, nil)[:30], Packet{Src: a4, Dst: d4, Proto: 6}, nil, false},
		{"v4 later fragment", v4(5, 6, 185, tcp(1, 23, FlagSYN)), Packet{Src: a4, Dst: d4, Proto: 6}, nil, false},
		{"v4 first fragment (MF set)", v4(5, 6, 0x2000, tcp(1, 23, FlagSYN)), Packet{Src: a4, Dst: d4, Proto: 6, Ports: true, SrcPort: 1, DstPort: 23, Flags: FlagSYN}, nil, true},
		{"v4 icmp", v4(5, 1, 0, []byte{8, 0, 0, 0}), Packet{Src: a4, Dst: d4, Proto: 1}, nil, false},
		{"v4 ihl below 5", func() []byte { b := v4(5, 6, 0, nil); b[0] = 0x44; return b }(), Packet{}, ErrHeader, false},
		{"v4 total length below header", func() []byte { b := v4(5, 6, 0, nil); b[3] = 10; return b }(), Packet{}, ErrHeader, false},
		{"v4 short", v4(5, 6, 0, nil)[:19], Packet{}, ErrShort, false},
		{"v6 udp", v6(17, udp(5000, 5060)), Packet{Src: a6, Dst: d6, Proto: 17, Ports: true, SrcPort: 5000, DstPort: 5060}, nil, true},
		{"v6 hop-by-hop and destination options", v6(0, concat(ext(60, 0), ext(6, 1), tcp(2, 3389, FlagSYN))), Packet{Src: a6, Dst: d6, Proto: 6, Ports: true, SrcPort: 2, DstPort: 3389, Flags: FlagSYN}, nil, true},
		{"v6 first fragment", v6(44, concat(fragHdr(6, 0), tcp(2, 22, FlagSYN))), Packet{Src: a6, Dst: d6, Proto: 6, Ports: true, SrcPort: 2, DstPort: 22, Flags: FlagSYN}, nil, true},
		{"v6 later fragment", v6(44, concat(fragHdr(6, 100), tcp(2, 22, FlagSYN))), Packet{Src: a6, Dst: d6, Proto: 6}, nil, false},
		{"v6 extension header cut", v6(0, ext(6, 3)[:10]), Packet{Src: a6, Dst: d6, Proto: 0}, nil, false},
		{"v6 too many extension headers", v6(60, concat(ext(60, 0), ext(60, 0), ext(60, 0), ext(60, 0), ext(60, 0), ext(60, 0), ext(60, 0), ext(60, 0), ext(6, 0))), Packet{}, ErrHeader, false},
		{"v6 short", v6(6, nil)[:39], Packet{}, ErrShort, false},
		{"empty", nil, Packet{}, ErrShort, false},
		{"version 5", []byte{0x50, 0, 0, 0}, Packet{}, ErrVersion, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePacket(tt.in)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("error %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v\nwant %+v", got, tt.want)
			}
			if got.NewConnection() != tt.newConn {
				t.Errorf("NewConnection = %v, want %v", got.NewConnection(), tt.newConn)
			}
		})
	}
}

// FuzzParsePacket: whatever the bytes, ParsePacket does not panic, and
// what it returns is consistent with them: addresses of the version the
// first nibble says, read from their fixed offsets; ports only when the
// transport header's bytes are there, and then equal to those bytes.
func FuzzParsePacket(f *testing.F) {
	f.Add(ip4(5, 6, 0, "203.0.113.9", "192.0.2.1", tcp(40000, 23, FlagSYN)))
	f.Add(ip4(6, 17, 0, "203.0.113.9", "192.0.2.1", udp(1, 161)))
	f.Add(ip4(5, 6, 185, "203.0.113.9", "192.0.2.1", tcp(1, 23, FlagSYN)))
	f.Add(ip6(17, "2001:db8::9", "2001:db8::1", udp(5000, 5060)))
	f.Add(ip6(0, "2001:db8::9", "2001:db8::1", concat(ext(44, 0), fragHdr(6, 0), tcp(2, 3389, FlagSYN))))
	f.Add(ip6(51, "2001:db8::9", "2001:db8::1", []byte{6, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}))
	f.Add([]byte{})
	f.Add([]byte{0x4f})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := ParsePacket(b)
		if err != nil {
			if p != (Packet{}) {
				t.Fatalf("error %v with a packet %+v", err, p)
			}
			return
		}
		switch b[0] >> 4 {
		case 4:
			if !p.Src.Is4() || p.Src.As4() != [4]byte(b[12:16]) || p.Dst.As4() != [4]byte(b[16:20]) {
				t.Fatalf("v4 addresses %v %v do not match the header", p.Src, p.Dst)
			}
			if p.Proto != b[9] {
				t.Fatalf("v4 protocol %d, header says %d", p.Proto, b[9])
			}
			if p.Ports {
				ihl := int(b[0]&0x0f) * 4
				if got := binary.BigEndian.Uint16(b[ihl+2 : ihl+4]); got != p.DstPort {
					t.Fatalf("dport %d, bytes say %d", p.DstPort, got)
				}
			}
		case 6:
			if !p.Src.Is6() || p.Src.As16() != [16]byte(b[8:24]) || p.Dst.As16() != [16]byte(b[24:40]) {
				t.Fatalf("v6 addresses %v %v do not match the header", p.Src, p.Dst)
			}
		default:
			t.Fatalf("version %d parsed without error", b[0]>>4)
		}
		if p.Ports && p.Proto != ProtoTCP && p.Proto != ProtoUDP {
			t.Fatalf("ports read for protocol %d", p.Proto)
		}
		if !p.Ports && (p.SrcPort != 0 || p.DstPort != 0 || p.Flags != 0) {
			t.Fatalf("ports or flags set without Ports: %+v", p)
		}
		if p.NewConnection() {
			if _, ok := ProbeMessage(p, 1, timeZero); !ok {
				t.Fatalf("a new connection gives no probe message: %+v", p)
			}
		}
	})
}
