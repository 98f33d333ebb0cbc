package nft

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	sysban "github.com/sysban/sysban"
)

// segmentsString renders segments as "from-to@expiry" with the expiry in
// minutes after t0 (P for permanent).
func segmentsString(segs []segmentExpiry, t0 time.Time) string {
	var out []string
	for _, s := range segs {
		exp := "P"
		if !s.expiry.IsZero() {
			exp = fmt.Sprint(int(s.expiry.Sub(t0) / time.Minute))
		}
		out = append(out, fmt.Sprintf("%s-%s@%s", s.from, s.to, exp))
	}
	return strings.Join(out, " ")
}

// TestSegments: nested and neighbouring prefix bans become disjoint
// segments, each expiring with the longest ban that covers it, with an
// injected clock.
func TestSegments(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	min := func(m int) time.Time { return t0.Add(time.Duration(m) * time.Minute) }
	type ban struct {
		prefix string
		until  time.Time // zero: permanent
	}
	tests := []struct {
		name string
		bans []ban
		at   time.Time
		want string
	}{
		{"one /64", []ban{{"2001:db8:1:2::/64", min(60)}}, t0,
			"2001:db8:1:2::-2001:db8:1:2:ffff:ffff:ffff:ffff@60"},
		{"a /64 inside a /48 that outlasts it: one segment", []ban{{"2001:db8::/48", min(120)}, {"2001:db8:0:5::/64", min(60)}}, t0,
			"2001:db8::-2001:db8:0:ffff:ffff:ffff:ffff:ffff@120"},
		{"a /64 outlasting its /48: three segments", []ban{{"2001:db8::/48", min(60)}, {"2001:db8:0:5::/64", min(120)}}, t0,
			"2001:db8::-2001:db8:0:4:ffff:ffff:ffff:ffff@60 2001:db8:0:5::-2001:db8:0:5:ffff:ffff:ffff:ffff@120 2001:db8:0:6::-2001:db8:0:ffff:ffff:ffff:ffff:ffff@60"},
		{"the /48 expired: the /64 alone", []ban{{"2001:db8::/48", min(60)}, {"2001:db8:0:5::/64", min(120)}}, min(61),
			"2001:db8:0:5::-2001:db8:0:5:ffff:ffff:ffff:ffff@120"},
		{"the /64 at the start of the /48", []ban{{"2001:db8::/48", min(60)}, {"2001:db8::/64", sysbanPermanent}}, t0,
			"2001:db8::-2001:db8::ffff:ffff:ffff:ffff@P 2001:db8:0:1::-2001:db8:0:ffff:ffff:ffff:ffff:ffff@60"},
		{"the /64 at the end of the /48", []ban{{"2001:db8::/48", min(60)}, {"2001:db8:0:ffff::/64", min(90)}}, t0,
			"2001:db8::-2001:db8:0:fffe:ffff:ffff:ffff:ffff@60 2001:db8:0:ffff::-2001:db8:0:ffff:ffff:ffff:ffff:ffff@90"},
		{"three levels", []ban{{"10.0.0.0/8", min(10)}, {"10.1.0.0/16", min(20)}, {"10.1.2.0/24", min(30)}}, t0,
			"10.0.0.0-10.0.255.255@10 10.1.0.0-10.1.1.255@20 10.1.2.0-10.1.2.255@30 10.1.3.0-10.1.255.255@20 10.2.0.0-10.255.255.255@10"},
		{"neighbours of one expiry merge", []ban{{"192.0.2.0/25", min(10)}, {"192.0.2.128/25", min(10)}}, t0,
			"192.0.2.0-192.0.2.255@10"},
		{"neighbours of two expiries stay apart", []ban{{"192.0.2.0/25", min(10)}, {"192.0.2.128/25", min(20)}}, t0,
			"192.0.2.0-192.0.2.127@10 192.0.2.128-192.0.2.255@20"},
		{"to the last address", []ban{{"255.255.255.0/24", min(10)}, {"255.255.255.128/25", min(20)}}, t0,
			"255.255.255.0-255.255.255.127@10 255.255.255.128-255.255.255.255@20"},
		{"all expired", []ban{{"192.0.2.0/24", min(10)}}, min(10), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fb := newPrefixBook().v4
			if strings.Contains(tt.bans[0].prefix, ":") {
				fb = newPrefixBook().v6
			}
			for _, b := range tt.bans {
				fb.put(netip.MustParsePrefix(b.prefix), b.until)
			}
			if got := segmentsString(fb.segments(tt.at), t0); got != tt.want {
				t.Errorf("segments:\n got %s\nwant %s", got, tt.want)
			}
		})
	}
}

// sysbanPermanent is the zero expiry: a permanent ban.
var sysbanPermanent time.Time

// TestPlanOverlaps: the element changes for the overlap cases, step by
// step: the kernel never gets an element that overlaps one it holds
// (every overlapping old segment is deleted in the same batch, before the
// additions), and an unban of the /48 leaves the /64.
func TestPlanOverlaps(t *testing.T) {
	t0 := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	fb := newPrefixBook().v6
	p48, p64 := netip.MustParsePrefix("2001:db8::/48"), netip.MustParsePrefix("2001:db8:0:5::/64")

	// The /64 first.
	fb.put(p64, t0.Add(2*time.Hour))
	del, add := fb.plan(t0)
	if len(del) != 0 || len(add) != 2 || add[0].Timeout != 2*time.Hour {
		t.Fatalf("first /64: del %v add %v", del, add)
	}
	// The /48 over it, shorter: the /64's element stays, two around it.
	fb.put(p48, t0.Add(time.Hour))
	del, add = fb.plan(t0)
	if len(del) != 0 || len(add) != 4 {
		t.Fatalf("/48 over the /64: del %v add %v", del, add)
	}
	checkDisjoint(t, fb)
	// A ban of the same /64 again, shorter: nothing changes.
	fb.put(p64, t0.Add(time.Minute))
	if del, add = fb.plan(t0); len(del)+len(add) != 0 {
		t.Fatalf("shorter ban of the /64 again: del %v add %v", del, add)
	}
	// Lifting the /48: its two segments go, the /64 stays.
	delete(fb.bans, p48)
	del, add = fb.plan(t0.Add(time.Minute))
	if len(del) != 4 || len(add) != 0 {
		t.Fatalf("lift /48: del %v add %v", del, add)
	}
	if len(fb.kernel) != 1 {
		t.Fatalf("after lifting the /48 the kernel holds %v", fb.kernel)
	}
	// A longer /48 again: one segment replaces the /64's (deleted first).
	fb.put(p48, t0.Add(3*time.Hour))
	del, add = fb.plan(t0.Add(2 * time.Minute))
	if len(del) != 2 || len(add) != 2 || del[0].IntervalEnd || !del[1].IntervalEnd {
		t.Fatalf("longer /48: del %v add %v", del, add)
	}
	checkDisjoint(t, fb)
	// Segments that expired in the kernel are not deleted (ENOENT).
	fb.put(netip.MustParsePrefix("2001:db9::/64"), t0.Add(3*time.Minute))
	fb.plan(t0.Add(2 * time.Minute))
	delete(fb.bans, p48)
	del, _ = fb.plan(t0.Add(4 * time.Minute))
	for _, e := range del {
		if a, _ := netip.AddrFromSlice(e.Key); strings.HasPrefix(a.String(), "2001:db9:") {
			t.Errorf("deletes the expired segment %v", a)
		}
	}
}

// checkDisjoint fails when two segments the kernel would hold overlap.
func checkDisjoint(t *testing.T, fb familyBook) {
	t.Helper()
	for a := range fb.kernel {
		for b := range fb.kernel {
			if a != b && !a.to.Less(b.from) && !b.to.Less(a.from) {
				t.Errorf("segments %v and %v overlap", a, b)
			}
		}
	}
}

// TestBanNetwork: Ban.Network and Target in the forms the backend uses.
func TestBanNetwork(t *testing.T) {
	for _, tc := range []struct {
		ban    sysban.Ban
		net    string
		target string
	}{
		{sysban.Ban{Addr: netip.MustParseAddr("::ffff:192.0.2.1")}, "192.0.2.1/32", "192.0.2.1"},
		{sysban.Ban{Prefix: netip.MustParsePrefix("::ffff:192.0.2.0/120")}, "192.0.2.0/24", "192.0.2.0/24"},
		{sysban.Ban{Prefix: netip.MustParsePrefix("2001:db8::5/64"), Addr: netip.MustParseAddr("2001:db8::5")}, "2001:db8::/64", "2001:db8::/64"},
	} {
		if got := tc.ban.Network().String(); got != tc.net || tc.ban.Target() != tc.target {
			t.Errorf("%+v: Network %s Target %s, want %s %s", tc.ban, got, tc.ban.Target(), tc.net, tc.target)
		}
	}
}

// BenchmarkPlan100k times the planning of 100k prefix bans (20k /48s
// with a longer /64 inside each, 60k segments) from an empty book: the
// userspace half of applying them.
func BenchmarkPlan100k(b *testing.B) {
	now := time.Now()
	for b.Loop() {
		fb := newPrefixBook().v6
		for j := range 50_000 {
			var a [16]byte
			a[0], a[1], a[2], a[3], a[4], a[5] = 0x2a, 0x01, byte(j>>24), byte(j>>16), byte(j>>8), byte(j)
			fb.put(netip.PrefixFrom(netip.AddrFrom16(a), 48), now.Add(time.Hour))
			a[7] = 1
			fb.put(netip.PrefixFrom(netip.AddrFrom16(a), 64), now.Add(2*time.Hour))
		}
		fb.plan(now)
	}
}
