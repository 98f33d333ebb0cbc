package fleet

import (
	"net/netip"
	"testing"
)

func TestEncodeAddr(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
	}{
		{"203.0.113.7/32", "203-0-113-7_32"},
		{"198.51.100.0/24", "198-51-100-0_24"},
		{"2001:db8::1/128", "2001-db8--1_128"},
		{"2001:db8::/64", "2001-db8--_64"},
		{"::/0", "--_0"},
	} {
		got := EncodeAddr(netip.MustParsePrefix(tc.in))
		if got != tc.want {
			t.Errorf("EncodeAddr(%s) = %q, want %q", tc.in, got, tc.want)
		}
		back, err := DecodeAddr(got)
		if err != nil || back.String() != tc.in {
			t.Errorf("DecodeAddr(%q) = %v, %v; want %s", got, back, err, tc.in)
		}
	}
}

func TestDecodeAddrRefuses(t *testing.T) {
	for _, tok := range []string{
		"", "_32", "203-0-113-7", "203-0-113-7_33", "203-0-113-7_032", "203-0-113-7_-1",
		"198-51-100-1_24",  // host bits set
		"203-000-113-7_32", // not canonical
		"2001-DB8--1_128",  // upper case is not canonical
		"203-0-113-7_32_1", "fe80--1%eth0_128", "1-2-3_32", "*_32", ">_32",
	} {
		if p, err := DecodeAddr(tok); err == nil {
			t.Errorf("DecodeAddr(%q) = %v, want an error", tok, p)
		}
	}
}

func TestParseKey(t *testing.T) {
	k, err := ParseKey("collector.sshd.203-0-113-7_32")
	if err != nil || k.Node != "collector" || k.Jail != "sshd" || k.Prefix != netip.MustParsePrefix("203.0.113.7/32") {
		t.Fatalf("ParseKey = %+v, %v", k, err)
	}
	if k.String() != "collector.sshd.203-0-113-7_32" {
		t.Errorf("String = %q", k.String())
	}
	k, err = ParseKey("collector.postfix.2001-db8-1-2--_64.hosta")
	if err != nil || k.Origin != "hosta" || k.Prefix != netip.MustParsePrefix("2001:db8:1:2::/64") || k.String() != "collector.postfix.2001-db8-1-2--_64.hosta" {
		t.Errorf("a key with an origin: %+v, %v", k, err)
	}
	for _, bad := range []string{"a.b", "a.b.c.d", "a.sshd.1-2-3-4_32.*", "a._unban.1-2-3-4_32.h", "a.sshd.1-2-3-4_32.h.i", "*.sshd.1-2-3-4_32", "a.SSHD.1-2-3-4_32", "a.sshd.x", "a._other.1-2-3-4_32"} {
		if _, err := ParseKey(bad); err == nil {
			t.Errorf("ParseKey(%q): want an error", bad)
		}
	}
	if _, err := ParseKey("a._unban.1-2-3-4_32"); err != nil {
		t.Errorf("unban tombstone key refused: %v", err)
	}
	for origin, want := range map[string]string{"hosta": "hosta", "mail.example.org": "mail-example-org", "2001:db8::1": "2001-db8--1"} {
		if got := EncodeOrigin(origin); got != want {
			t.Errorf("EncodeOrigin(%q) = %q, want %q", origin, got, want)
		}
	}
}

// FuzzKey: whatever a bucket holds, ParseKey never panics, and what it
// accepts is canonical: it prints back to the same key.
func FuzzKey(f *testing.F) {
	for _, s := range []string{"collector.sshd.203-0-113-7_32", "a._unban.2001-db8--1_128", "n.j.--_0", "a.b.1-2-3-4_33", "a.b.1-2-3-4_32.hosta"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseKey(s)
		if err != nil {
			return
		}
		if k.String() != s {
			t.Fatalf("ParseKey(%q) prints back as %q", s, k.String())
		}
		if !k.Prefix.IsValid() || k.Prefix != k.Prefix.Masked() {
			t.Fatalf("ParseKey(%q) gave a non-canonical prefix %v", s, k.Prefix)
		}
	})
}
