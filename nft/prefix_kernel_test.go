package nft

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	sysban "github.com/sysban/sysban"
)

// netSet lists a jail's IPv6 prefix set as nft prints it.
func netSet(t *testing.T, ns *netNS, set string) string {
	t.Helper()
	return ns.exec(t, "nft", "list", "set", "inet", DefaultTable, set)
}

// TestPrefixOverlapsInKernel: nested prefix bans in every order the kernel
// accepts (no "interval overlaps"), a single address inside a banned
// prefix goes to the hash set, each segment expires when it should, and
// lifting the /48 leaves the /64 inside it.
func TestPrefixOverlapsInKernel(t *testing.T) {
	ns := newNetNS(t, "p")
	b := openIn(t, ns, Options{})
	setup(t, b, sshRule)
	p48, p64 := netip.MustParsePrefix("2001:db8::/48"), netip.MustParsePrefix("2001:db8:0:5::/64")
	start := time.Now()
	ban := func(p netip.Prefix, d time.Duration) sysban.Ban {
		return sysban.Ban{Jail: "ssh", Prefix: p, Start: start, Duration: d}
	}
	// The /64 for an hour, then the /48 around it for 3 s, then one
	// address inside both, then the /48 again (an update), all accepted.
	apply(t, b, ban(p64, time.Hour))
	apply(t, b, ban(p48, 3*time.Second))
	apply(t, b, sysban.Ban{Jail: "ssh", Addr: addr("2001:db8:0:7::1"), Start: start, Duration: time.Hour})
	apply(t, b, ban(p48, 3*time.Second), ban(netip.MustParsePrefix("2001:db8:0:5:8000::/65"), 2*time.Hour))
	// And an IPv4 /24 with a /32 inside it by prefix.
	apply(t, b, ban(netip.MustParsePrefix("198.51.100.0/24"), time.Hour), ban(netip.MustParsePrefix("198.51.100.7/32"), time.Hour))

	got := netSet(t, ns, "ssh_v6net")
	for _, want := range []string{"2001:db8::-2001:db8:0:4:ffff:ffff:ffff:ffff", "2001:db8:0:5::/65", "2001:db8:0:5:8000::/65", "2001:db8:0:6::-2001:db8:0:ffff:ffff:ffff:ffff:ffff"} {
		if !strings.Contains(got, want) {
			t.Errorf("ssh_v6net lacks %s:\n%s", want, got)
		}
	}
	if got := netSet(t, ns, "ssh_v4net"); !strings.Contains(got, "198.51.100.0/24") {
		t.Errorf("ssh_v4net:\n%s", got)
	}
	if got := banned(t, b, "ssh"); got[addr("2001:db8:0:7::1")].Addr != addr("2001:db8:0:7::1") || got[addr("198.51.100.7")].Addr != addr("198.51.100.7") {
		t.Errorf("single addresses inside prefixes must be in the hash sets: %v", got)
	}

	// The /48 expires by itself after 3 s; the /64 (and /65) stay.
	waitFor(t, 30*time.Second, "the /48 segments to expire", func() bool {
		return !strings.Contains(netSet(t, ns, "ssh_v6net"), "2001:db8::-")
	})
	if el := time.Since(start); el < 3*time.Second-50*time.Millisecond {
		t.Errorf("the /48 went after %v, before its 3 s", el)
	}
	got = netSet(t, ns, "ssh_v6net")
	if !strings.Contains(got, "2001:db8:0:5::/65") || !strings.Contains(got, "2001:db8:0:5:8000::/65") {
		t.Errorf("the /64 went with the /48:\n%s", got)
	}

	// A new /48 after the kernel expired the old segments: the book must
	// not try to delete them (ENOENT would refuse the whole batch).
	apply(t, b, ban(p48, time.Hour))
	// Lifting the /48 leaves the /64.
	if err := b.Remove(testCtx(t), "ssh", []netip.Prefix{p48}); err != nil {
		t.Fatalf("Remove /48: %v", err)
	}
	got = netSet(t, ns, "ssh_v6net")
	if strings.Contains(got, "2001:db8::-") || strings.Contains(got, "2001:db8:0:6::") || !strings.Contains(got, "2001:db8:0:5::/65") {
		t.Errorf("after lifting the /48:\n%s", got)
	}
	// Lifting what is not banned is not an error.
	if err := b.Remove(testCtx(t), "ssh", []netip.Prefix{p48, netip.MustParsePrefix("2001:db8:9::/48")}); err != nil {
		t.Fatalf("Remove of absent prefixes: %v", err)
	}
	// A reload keeps the prefix set and what the backend knows of it.
	setup(t, b, sshRule)
	apply(t, b, ban(p48, time.Hour))
	if got := netSet(t, ns, "ssh_v6net"); !strings.Contains(got, "2001:db8:0:6::") {
		t.Errorf("after a reload and a new /48:\n%s", got)
	}
}

// TestObservedBansNotInKernel: observed bans (observe mode) never reach
// the kernel, single or prefix.
func TestObservedBansNotInKernel(t *testing.T) {
	ns := newNetNS(t, "o")
	b := openIn(t, ns, Options{})
	setup(t, b, sshRule)
	now := time.Now()
	apply(t, b,
		sysban.Ban{Jail: "ssh", Addr: addr("192.0.2.1"), Start: now, Duration: time.Hour, Observed: true},
		sysban.Ban{Jail: "ssh", Prefix: netip.MustParsePrefix("2001:db8::/64"), Start: now, Duration: time.Hour, Observed: true},
	)
	if got := banned(t, b, "ssh"); len(got) != 0 {
		t.Errorf("observed single ban in the kernel: %v", got)
	}
	if got := netSet(t, ns, "ssh_v6net"); strings.Contains(got, "2001:db8") {
		t.Errorf("observed prefix ban in the kernel:\n%s", got)
	}
}
