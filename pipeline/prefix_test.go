package pipeline

import (
	"fmt"
	"net/netip"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// prefixJail counts IPv6 by /64 and IPv4 by /24.
var prefixJail = JailSpec{Name: "sshd", Filter: "sshd", MaxRetry: 3, FindTime: 10 * time.Minute, BanTime: time.Hour, IPv6Prefix: 64, IPv4Prefix: 24}

// TestCountByPrefix: failures from different addresses of one prefix count
// together and ban the prefix, with the address seen last; a neighbouring
// prefix counts apart; once banned, any address of the prefix is "already
// banned"; IPv4-mapped addresses count as IPv4.
func TestCountByPrefix(t *testing.T) {
	tests := []struct {
		name    string
		jail    JailSpec
		addrs   []string
		want    string // the prefix banned at the last failure, "" for none
		wantTgt string
	}{
		{"three addresses of one /64", prefixJail, []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"}, "2001:db8:1:2::/64", "2001:db8:1:2:ffff::3"},
		{"neighbouring /64s count apart", prefixJail, []string{"2001:db8:1:2::1", "2001:db8:1:3::2", "2001:db8:1:2::3"}, "", ""},
		{"three addresses of one /24", prefixJail, []string{"192.0.2.1", "192.0.2.200", "::ffff:192.0.2.9"}, "192.0.2.0/24", "192.0.2.9"},
		{"single addresses by default", sshJail, []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3"}, "", ""},
		{"/128 jail bans the address", sshJail, []string{"2001:db8::7", "2001:db8::7", "2001:db8::7"}, "2001:db8::7/128", "2001:db8::7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			p := newTestPipeline(t, Config{Jails: []JailSpec{tt.jail}}, Options{Now: clk.Now})
			var bans []sysban.Ban
			for _, a := range tt.addrs {
				p.Handle(sshMsg(a))
				bans = append(bans, keptQueued(p)...)
			}
			switch {
			case tt.want == "" && len(bans) != 0:
				t.Fatalf("bans %+v, want none", bans)
			case tt.want == "":
				return
			case len(bans) != 1 || bans[0].Prefix.String() != tt.want || bans[0].Addr.String() != tt.wantTgt:
				t.Fatalf("bans %+v, want one of %s seen from %s", bans, tt.want, tt.wantTgt)
			}
			// Any other address of the prefix is already banned.
			other := bans[0].Prefix.Addr().Next()
			for range 5 {
				p.Handle(sshMsg(other.String()))
			}
			if b := queued(p); len(b) != 0 && !bans[0].Prefix.IsSingleIP() {
				t.Errorf("another address of %s banned again: %+v", bans[0].Prefix, b)
			}
		})
	}
}

// TestNarrowedByProtection: a prefix ban never covers the host's own
// addresses, allowed senders (Options.Protected), loopback or ignoreip; it
// falls back to the widest prefix that covers none of them, down to the
// single address, and counts the fallback.
func TestNarrowedByProtection(t *testing.T) {
	jail := prefixJail
	jail.IPv4Prefix = 8
	jail.IgnoreIP = []netip.Prefix{netip.MustParsePrefix("2001:db8:1:2:8000::/65"), netip.MustParsePrefix("2001:db8:9:9::5/128")}
	protected := []netip.Prefix{netip.MustParsePrefix("2001:db8:7:7::1/128"), netip.MustParsePrefix("203.0.113.0/28")}
	spared := []netip.Prefix{netip.MustParsePrefix("2001:db8:6:6::10/128")}
	tests := []struct {
		name, attacker, want string
	}{
		{"ignoreip /65 in the /64: the other /65", "2001:db8:1:2::1", "2001:db8:1:2::/65"},
		{"ignored address in the /64", "2001:db8:9:9::1", "2001:db8:9:9::/126"},
		{"own address next door: down to the address", "2001:db8:7:7::", "2001:db8:7:7::/128"},
		{"protected /28 in the /8", "203.0.113.200", "203.0.113.128/25"},
		{"allowed sender in the /64", "2001:db8:6:6:8000::1", "2001:db8:6:6:8000::/65"},
		{"loopback in the /8", "127.0.0.2", ""}, // loopback attackers are never counted at all
		{"nothing protected: the /64", "2001:db8:5:5::1", "2001:db8:5:5::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			p := newTestPipeline(t, Config{Jails: []JailSpec{jail}, Spared: spared}, Options{Now: clk.Now, Protected: protected})
			for range 3 {
				p.Handle(sshMsg(tt.attacker))
			}
			bans := keptQueued(p)
			if tt.want == "" {
				if len(bans) != 0 {
					t.Fatalf("bans %+v, want none", bans)
				}
				return
			}
			if len(bans) != 1 || bans[0].Prefix.String() != tt.want {
				t.Fatalf("bans %+v, want %s", bans, tt.want)
			}
			narrowed := tt.want != "2001:db8:5:5::/64"
			if st := p.Stats().Jails["sshd"]; (st.Narrowed == 1) != narrowed {
				t.Errorf("Narrowed = %d, want narrowed=%v", st.Narrowed, narrowed)
			}
			// The narrowed ban is remembered as such: failures inside it are
			// already banned, outside it count afresh.
			for range 3 {
				p.Handle(sshMsg(tt.attacker))
			}
			if b := queued(p); len(b) != 0 {
				t.Errorf("banned again inside the narrowed ban: %+v", b)
			}
		})
	}
}

// TestPrefixBansRemembered covers the overlap cases the pipeline sees, with
// an injected clock: a manual /48 makes failures of any /64 inside it
// "already banned" until it expires (before or after a /64 ban inside
// it); lifting the /48 leaves the /64; a single address banned by hand
// inside a banned /64.
func TestPrefixBansRemembered(t *testing.T) {
	clk := newFakeClock()
	p := newTestPipeline(t, Config{Jails: []JailSpec{prefixJail}}, Options{Now: clk.Now})
	p48 := netip.MustParsePrefix("2001:db8::/48")
	p.MarkBanned(sysban.Ban{Jail: "sshd", Prefix: p48, Start: clk.Now(), Duration: 30 * time.Minute})
	fail := func(a string, n int) []sysban.Ban {
		for range n {
			p.Handle(sshMsg(a))
		}
		return keptQueued(p)
	}
	if b := fail("2001:db8:0:5::1", 5); len(b) != 0 {
		t.Fatalf("a /64 inside the banned /48 banned again: %+v", b)
	}
	if st := p.Stats().Jails["sshd"]; st.CurrentlyBanned != 1 || st.AlreadyBanned != 5 {
		t.Errorf("stats %+v", st)
	}
	// After the /48 expired, the /64 is counted and banned (and outlives it).
	clk.Advance(31 * time.Minute)
	b := fail("2001:db8:0:5::1", 3)
	if len(b) != 1 || b[0].Prefix.String() != "2001:db8:0:5::/64" {
		t.Fatalf("after the /48 expired: %+v", b)
	}
	// A /48 banned again, then lifted: the /64 inside stays banned.
	p.MarkBanned(sysban.Ban{Jail: "sshd", Prefix: p48, Start: clk.Now(), Duration: time.Hour})
	p.Forget("sshd", p48)
	if b := fail("2001:db8:0:5::2", 3); len(b) != 0 {
		t.Fatalf("the /64 was lifted with the /48: %+v", b)
	}
	if b := fail("2001:db8:0:6::2", 3); len(b) != 1 {
		t.Fatalf("outside the /64, after lifting the /48, want a ban: %+v", b)
	}
	// A single address banned by hand inside a banned /64: both kept,
	// lifting the address leaves the /64.
	one := netip.MustParsePrefix("2001:db8:0:5::9/128")
	p.MarkBanned(sysban.Ban{Jail: "sshd", Prefix: one, Start: clk.Now(), Duration: time.Hour})
	p.Forget("sshd", one)
	if b := fail("2001:db8:0:5::9", 3); len(b) != 0 {
		t.Fatalf("lifting an address lifted its /64: %+v", b)
	}
}

// TestPrefixReloadKeepsBans: changing a jail's prefix length on reload
// keeps its bans (as bans of their old length).
func TestPrefixReloadKeepsBans(t *testing.T) {
	clk := newFakeClock()
	p := newTestPipeline(t, Config{Jails: []JailSpec{prefixJail}}, Options{Now: clk.Now})
	for i := range 3 {
		p.Handle(sshMsg(fmt.Sprintf("2001:db8:1:2::%d", i+1)))
	}
	if b := keptQueued(p); len(b) != 1 {
		t.Fatalf("bans %+v", b)
	}
	wider := prefixJail
	wider.IPv6Prefix = 56
	if err := p.Reload(Config{Jails: []JailSpec{wider}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		p.Handle(sshMsg("2001:db8:1:2::77"))
	}
	if b := queued(p); len(b) != 0 {
		t.Fatalf("the old /64 ban was lost on reload: %+v", b)
	}
	for range 3 {
		p.Handle(sshMsg("2001:db8:1:3::1"))
	}
	if b := queued(p); len(b) != 1 || b[0].Prefix.String() != "2001:db8:1::/56" {
		t.Fatalf("after reload: %+v, want the /56", b)
	}
}

// TestBansByPrefixCounted: kept bans are counted by family and length.
func TestBansByPrefixCounted(t *testing.T) {
	clk := newFakeClock()
	p := newTestPipeline(t, Config{Jails: []JailSpec{prefixJail}}, Options{Now: clk.Now})
	for _, a := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2::3", "192.0.2.1", "192.0.2.2", "192.0.2.3"} {
		p.Handle(sshMsg(a))
	}
	keptQueued(p)
	got := p.Stats().Jails["sshd"].BansByPrefix
	want := map[PrefixLen]uint64{{Family: "ipv6", Bits: 64}: 1, {Family: "ipv4", Bits: 24}: 1}
	if len(got) != len(want) || got[PrefixLen{"ipv6", 64}] != 1 || got[PrefixLen{"ipv4", 24}] != 1 {
		t.Errorf("BansByPrefix = %v, want %v", got, want)
	}
}

// TestObserveMode: a jail in observe mode decides bans as usual, marks
// them observed, counts them, and does not feed recidive jails.
func TestObserveMode(t *testing.T) {
	clk := newFakeClock()
	jail := prefixJail
	jail.Observe = true
	recidive := JailSpec{Name: "recidive", Filter: RecidiveFilter, MaxRetry: 1, FindTime: time.Hour, BanTime: time.Hour}
	p := newTestPipeline(t, Config{Jails: []JailSpec{jail, recidive}}, Options{Now: clk.Now})
	for i := range 3 {
		p.Handle(sshMsg(fmt.Sprintf("2001:db8:1:2::%d", i+1)))
	}
	bans := keptQueued(p)
	if len(bans) != 1 || !bans[0].Observed || bans[0].Prefix.String() != "2001:db8:1:2::/64" {
		t.Fatalf("bans %+v, want one observed /64", bans)
	}
	// Already decided: more failures do not decide again.
	p.Handle(sshMsg("2001:db8:1:2::9"))
	if b := queued(p); len(b) != 0 {
		t.Fatalf("decided twice: %+v", b)
	}
	st := p.Stats().Jails["sshd"]
	if st.Observed != 1 || st.TotalBanned != 1 || !st.Observe {
		t.Errorf("stats %+v", st)
	}
	if rs := p.Stats().Jails["recidive"]; rs.TotalFailed != 0 {
		t.Errorf("an observed ban fed recidive: %+v", rs)
	}
}

// TestSparedOverReload: the allowed senders a prefix ban must not cover
// come with the config, so a reload that adds one narrows the next ban
// around it, and one that drops it lets the next ban cover the prefix.
func TestSparedOverReload(t *testing.T) {
	relay := []netip.Prefix{netip.MustParsePrefix("2001:db8:6:6::10/128")}
	tests := []struct {
		name          string
		before, after []netip.Prefix
		want          string
	}{
		{"sender allowed on reload", nil, relay, "2001:db8:6:6:8000::/65"},
		{"sender dropped on reload", relay, nil, "2001:db8:6:6::/64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			p := newTestPipeline(t, Config{Jails: []JailSpec{prefixJail}, Spared: tt.before}, Options{Now: clk.Now})
			if err := p.Reload(Config{Jails: []JailSpec{prefixJail}, Spared: tt.after}); err != nil {
				t.Fatal(err)
			}
			for range 3 {
				p.Handle(sshMsg("2001:db8:6:6:8000::1"))
			}
			if bans := keptQueued(p); len(bans) != 1 || bans[0].Prefix.String() != tt.want {
				t.Fatalf("bans %+v, want %s", bans, tt.want)
			}
		})
	}
}
