package sysban

import (
	"testing"
)

func TestParsePrefix(t *testing.T) {
	for _, tc := range []struct {
		in, want string // want "" for an error
	}{
		{"192.0.2.7", "192.0.2.7/32"},
		{"::ffff:192.0.2.7", "192.0.2.7/32"},
		{"fe80::1%eth0", "fe80::1/128"},
		{"2001:db8:1:2::/64", "2001:db8:1:2::/64"},
		{"::ffff:198.51.100.0/120", "198.51.100.0/24"},
		{"::ffff:0.0.0.0/96", "0.0.0.0/0"},
		{"2001:db8::1/64", ""}, // host bits set
		{"192.0.2.0/33", ""},
		{"example.com", ""},
		{"", ""},
	} {
		p, err := ParsePrefix(tc.in)
		switch {
		case tc.want == "" && err == nil:
			t.Errorf("ParsePrefix(%q) = %v, want an error", tc.in, p)
		case tc.want != "" && (err != nil || p.String() != tc.want):
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", tc.in, p, err, tc.want)
		}
	}
}

// FuzzParsePrefix: what ParsePrefix accepts is canonical (masked,
// unmapped, no zone), reads back the same, and a Ban of it has it as its
// Network.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{"192.0.2.7", "2001:db8::/64", "::ffff:10.0.0.0/104", "::ffff:0.0.0.0/80", "fe80::1%eth0", "2001:db8::1/64", "0.0.0.0/0", "::/0", "1.2.3.4/-1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix(s)
		if err != nil {
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Zone() != "" || (p.Addr().Is4In6() && p.Bits() >= 96) {
			t.Fatalf("ParsePrefix(%q) = %v: not canonical", s, p)
		}
		if back, err := ParsePrefix(p.String()); err != nil || back != p {
			t.Fatalf("ParsePrefix(%q) = %v reads back as %v, %v", s, p, back, err)
		}
		if n := (Ban{Prefix: p}).Network(); n != p {
			t.Fatalf("Ban{Prefix: %v}.Network() = %v", p, n)
		}
		if p.IsSingleIP() {
			if n := (Ban{Addr: p.Addr()}).Network(); n != p {
				t.Fatalf("Ban{Addr: %v}.Network() = %v", p.Addr(), n)
			}
		}
	})
}
