package nflog

import (
	"net/netip"
	"testing"
	"time"
)

var timeZero time.Time

func TestProbeMessage(t *testing.T) {
	at := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	a4 := netip.MustParseAddr("203.0.113.9")
	tests := []struct {
		name string
		p    Packet
		text string // "" = no message
	}{
		{"tcp syn", Packet{Src: a4, Proto: ProtoTCP, Ports: true, DstPort: 23, Flags: FlagSYN}, "probe from 203.0.113.9 to tcp port 23"},
		{"udp", Packet{Src: a4, Proto: ProtoUDP, Ports: true, DstPort: 161}, "probe from 203.0.113.9 to udp port 161"},
		{"v6", Packet{Src: netip.MustParseAddr("2001:db8::9"), Proto: ProtoTCP, Ports: true, DstPort: 3389, Flags: FlagSYN}, "probe from 2001:db8::9 to tcp port 3389"},
		{"v4-mapped written as v4", Packet{Src: netip.MustParseAddr("::ffff:203.0.113.9"), Proto: ProtoUDP, Ports: true, DstPort: 5060}, "probe from 203.0.113.9 to udp port 5060"},
		{"tcp ack", Packet{Src: a4, Proto: ProtoTCP, Ports: true, DstPort: 23, Flags: FlagACK}, ""},
		{"no ports", Packet{Src: a4, Proto: ProtoTCP}, ""},
		{"icmp", Packet{Src: a4, Proto: 1}, ""},
		{"no source", Packet{Proto: ProtoUDP, Ports: true, DstPort: 1}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, ok := ProbeMessage(tt.p, 7422, at)
			if ok != (tt.text != "") {
				t.Fatalf("ok = %v, want %v", ok, tt.text != "")
			}
			if !ok {
				return
			}
			if m.Text != tt.text || m.AppName != AppName || m.Listener != "nflog:7422" || !m.Received.Equal(at) || m.Sender.IsValid() {
				t.Errorf("message %+v, want text %q from %s", m, tt.text, AppName)
			}
		})
	}
}
