package pipeline

import (
	"fmt"
	"net/netip"
	"testing"
)

// hostOf compiles re and returns what it captures as <HOST> in line: "" for
// no match or no usable capture.
func hostOf(t *testing.T, re, line string) string {
	t.Helper()
	p, err := compilePattern(re, failPattern, nil)
	if err != nil {
		t.Fatalf("%s: %v", re, err)
	}
	loc := p.re.FindStringSubmatchIndex(line)
	if loc == nil {
		return ""
	}
	return capture(&p, loc, line)
}

func TestHostWithPort(t *testing.T) {
	const (
		optPort    = `^x <HOST>(?::\d+)?$`
		needPort   = `^x <HOST>:\d+$`
		noPort     = `^x <HOST> port \d+$`
		bracketed  = `^x \[<HOST>\](?::\d+)?$`
		inBrackets = `^x \[<HOST>(?::\d+)?\] y$` // Apache 2.4's [client IP:port]
	)
	tests := []struct {
		name, re, line, want string
	}{
		{"IPv4:port", optPort, "x 192.0.2.7:5060", "192.0.2.7"},
		{"IPv4 without port", optPort, "x 192.0.2.7", "192.0.2.7"},
		{"IPv4:port required", needPort, "x 192.0.2.7:5060", "192.0.2.7"},
		{"IPv4:port in brackets", inBrackets, "x [192.0.2.7:5060] y", "192.0.2.7"},
		{"hostname:port", optPort, "x mail.example.org:25", "mail.example.org"},
		{"[IPv6]:port", bracketed, "x [2001:db8::5]:1234", "2001:db8::5"},
		{"[IPv6] ending in decimals", bracketed, "x [2001:db8::5:1234]", "2001:db8::5:1234"},
		{"bare IPv6 hex end", optPort, "x 2001:db8::abcd", "2001:db8::abcd"},
		{"bare IPv6 hex end, 5-digit port", optPort, "x 2001:db8::abcd:54321", "2001:db8::abcd"},
		{"bare IPv6 decimal end, 5-digit port", optPort, "x 2001:db8::5:54321", "2001:db8::5"},
		{"bare IPv6 decimal end, port required", needPort, "x 2001:db8::5:1234", "2001:db8::5"},
		{"bare IPv6, 4-digit port, optional: ambiguous", optPort, "x 2001:db8::5:1234", ""},
		{"bare IPv6 in brackets, 4-digit port: ambiguous", inBrackets, "x [2001:db8::5:1234] y", ""},
		{"bare IPv6 decimal end, no port possible", noPort, "x 2001:db8::5:1 port 22", "2001:db8::5:1"},
		{"full IPv6 plus port", optPort, "x 2001:db8:1:2:3:4:5:6:1234", "2001:db8:1:2:3:4:5:6"},
		{"full IPv6 without port", optPort, "x 2001:db8:1:2:3:4:5:6", "2001:db8:1:2:3:4:5:6"},
		{"loopback ::1 with port", optPort, "x ::1:54321", "::1"},
		{"IPv4-mapped", optPort, "x ::ffff:192.0.2.7", "::ffff:192.0.2.7"},
		{"IPv4-mapped:port", optPort, "x ::ffff:192.0.2.7:5060", "::ffff:192.0.2.7"},
		{"zone:port", optPort, "x fe80::1%eth0:5060", "fe80::1%eth0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hostOf(t, tt.re, tt.line); got != tt.want {
				t.Errorf("%s on %q: host %q, want %q", tt.re, tt.line, got, tt.want)
			}
		})
	}
}

// TestPortCannotNameAnotherAddress: the client picks its source port, so
// for every port it could print after its address, a pattern allowing a
// port must capture its own address or nothing.
func TestPortCannotNameAnotherAddress(t *testing.T) {
	patterns := []string{
		`^x <HOST>(?::\d+)?$`,
		`^x <HOST>(?::\d+)? y$`,
		`^x \[<HOST>(?::\d+)?\] y$`,
		`^x <HOST>(?::\d+|\]) y$`,
	}
	clients := []string{"192.0.2.7", "2001:db8::5", "2001:db8::5:6", "2001:db8::", "::ffff:192.0.2.7", "a::b:c:d:e", "1:2:3:4:5:6:7:8"}
	for _, re := range patterns {
		p, err := compilePattern(re, failPattern, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, client := range clients {
			want := netip.MustParseAddr(client)
			for _, port := range []int{0, 1, 22, 80, 999, 1234, 5060, 9999, 10000, 54321, 65535} {
				for _, line := range []string{
					fmt.Sprintf("x %s:%d", client, port),
					fmt.Sprintf("x %s:%d y", client, port),
					fmt.Sprintf("x [%s:%d] y", client, port),
				} {
					loc := p.re.FindStringSubmatchIndex(line)
					if loc == nil {
						continue
					}
					host := capture(&p, loc, line)
					if host == "" {
						continue
					}
					if got, err := netip.ParseAddr(host); err == nil && got != want {
						t.Errorf("%s on %q: bans %s, the client is %s", re, line, got, want)
					}
				}
			}
		}
	}
}

// FuzzPortSuffix: whatever address a client has and whatever port it
// prints after it, in any of the forms patterns allow, the capture is that
// address or nothing.
func FuzzPortSuffix(f *testing.F) {
	f.Add([]byte{0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 6}, uint16(1234), uint8(0))
	f.Add([]byte{192, 0, 2, 7}, uint16(5060), uint8(1))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 7}, uint16(80), uint8(2))
	patterns := []string{
		`^x <HOST>(?::\d+)?$`,
		`^x <HOST>(?::\d+)? y$`,
		`^x \[<HOST>(?::\d+)?\] y$`,
		`^x <HOST>(?::\d+\] z|\]) y$`,
		`^x <HOST>:\d+$`,
	}
	compiled := make([]pattern, len(patterns))
	for i, re := range patterns {
		p, err := compilePattern(re, failPattern, nil)
		if err != nil {
			f.Fatal(err)
		}
		compiled[i] = p
	}
	f.Fuzz(func(t *testing.T, raw []byte, port uint16, form uint8) {
		client, ok := netip.AddrFromSlice(raw)
		if !ok {
			return
		}
		lines := []string{
			fmt.Sprintf("x %s:%d", client, port),
			fmt.Sprintf("x %s:%d y", client, port),
			fmt.Sprintf("x [%s:%d] y", client, port),
			fmt.Sprintf("x %s:%d] z] y", client, port),
		}
		line := lines[int(form)%len(lines)]
		for i := range compiled {
			p := &compiled[i]
			loc := p.re.FindStringSubmatchIndex(line)
			if loc == nil {
				continue
			}
			host := capture(p, loc, line)
			if got, err := netip.ParseAddr(host); err == nil && got != client {
				t.Errorf("%s on %q: bans %s, the client is %s", p.src, line, got, client)
			}
		}
	})
}
