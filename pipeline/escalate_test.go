package pipeline

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// TestEscalation: Count /64 bans inside one /48 within Within ban the /48
// (saying which bans led to it); spread over two /48s, or slower than the
// window, they do not; IPv4 escalates from /32 to /24 when asked; a
// network holding a protected address is narrowed, never widened over it;
// failures inside the escalated network are then already banned.
func TestEscalation(t *testing.T) {
	esc := Escalation{Count: 3, Within: time.Hour}
	tests := []struct {
		name      string
		esc       Escalation
		attackers []string // three failures each, one minute apart per attacker
		gap       time.Duration
		want      string // the escalated ban, "" for none
	}{
		{"three /64s in one /48", esc, []string{"2001:db8:5:1::1", "2001:db8:5:2::1", "2001:db8:5:3::1"}, time.Minute, "2001:db8:5::/48"},
		{"two /48s", esc, []string{"2001:db8:5:1::1", "2001:db8:6:2::1", "2001:db8:5:3::1"}, time.Minute, ""},
		{"slower than within", esc, []string{"2001:db8:5:1::1", "2001:db8:5:2::1", "2001:db8:5:3::1"}, 40 * time.Minute, ""},
		{"the same /64 twice counts once", esc, []string{"2001:db8:5:1::1", "2001:db8:5:1::1", "2001:db8:5:3::1"}, 2 * time.Hour / 3, ""},
		{"ipv4 to /24 by default", Escalation{Count: 3, Within: time.Hour}, []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"}, time.Minute, "198.51.100.0/24"},
		{"ipv4 off: limit /32 under a /32 jail", Escalation{Count: 3, Within: time.Hour, IPv4Prefix: 32}, []string{"198.51.100.1", "198.51.100.2", "198.51.100.3"}, time.Minute, ""},
		{"a /56 limit", Escalation{Count: 3, Within: time.Hour, IPv6Prefix: 56}, []string{"2001:db8:5:1::1", "2001:db8:5:2::1", "2001:db8:5:3::1"}, time.Minute, "2001:db8:5::/56"},
		{"protected address in the /48: narrowed", esc, []string{"2001:db8:7:1::1", "2001:db8:7:2::1", "2001:db8:7:3::1"}, time.Minute, "2001:db8:7::/49"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			jail := prefixJail
			jail.IPv4Prefix = 32
			jail.Escalate = tt.esc
			fb := &fakeBanner{}
			p, err := New(Config{Jails: []JailSpec{jail}}, fb, Options{Now: clk.Now,
				Protected: []netip.Prefix{netip.MustParsePrefix("2001:db8:7:ffff::1/128")}})
			if err != nil {
				t.Fatal(err)
			}
			for _, a := range tt.attackers {
				for range 3 {
					p.Handle(sshMsg(a))
				}
				keptQueued(p)
				clk.Advance(tt.gap)
			}
			var got []string
			for _, b := range fb.bans() {
				if len(b.Lines) == 1 && strings.HasPrefix(b.Lines[0], "escalated to ") {
					got = append(got, b.Prefix.String())
					first := netip.MustParseAddr(tt.attackers[0])
					bits := 64
					if first.Is4() {
						bits = 32
					}
					if pf, _ := first.Prefix(bits); !strings.Contains(b.Lines[0], pf.String()) {
						t.Errorf("the notice does not name the bans that led to it: %q", b.Lines[0])
					}
				}
			}
			if want := []string{tt.want}; (tt.want == "" && len(got) != 0) || (tt.want != "" && fmt.Sprint(got) != fmt.Sprint(want)) {
				t.Fatalf("escalated bans %v, want %q (all bans %+v)", got, tt.want, fb.bans())
			}
			if tt.want == "" {
				return
			}
			if st := p.Stats().Jails["sshd"]; st.Escalated != 1 {
				t.Errorf("Escalated = %d", st.Escalated)
			}
			// A new prefix inside the network is already banned.
			inside := netip.MustParsePrefix(tt.want).Addr().Next()
			for range 3 {
				p.Handle(sshMsg(inside.String()))
			}
			if b := queued(p); len(b) != 0 {
				t.Errorf("inside the escalated network, banned again: %+v", b)
			}
		})
	}
}

// TestEscalationOverReload: the bans counted toward an escalation survive
// a reload that changes the jail but not its escalate rule, and restart
// when the rule changes.
func TestEscalationOverReload(t *testing.T) {
	esc := Escalation{Count: 3, Within: time.Hour}
	tests := []struct {
		name   string
		reload func(*JailSpec)
		want   string // the escalated ban after the third /64, "" for none
	}{
		{"bantime changed, rule kept", func(j *JailSpec) { j.BanTime = 2 * time.Hour }, "2001:db8:5::/48"},
		{"nothing changed", func(*JailSpec) {}, "2001:db8:5::/48"},
		{"rule changed", func(j *JailSpec) { j.Escalate.Within = 2 * time.Hour }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newFakeClock()
			jail := prefixJail
			jail.Escalate = esc
			fb := &fakeBanner{}
			p, err := New(Config{Jails: []JailSpec{jail}}, fb, Options{Now: clk.Now})
			if err != nil {
				t.Fatal(err)
			}
			ban := func(a string) {
				for range 3 {
					p.Handle(sshMsg(a))
				}
				keptQueued(p)
				clk.Advance(time.Minute)
			}
			ban("2001:db8:5:1::1")
			ban("2001:db8:5:2::1")
			tt.reload(&jail)
			if err := p.Reload(Config{Jails: []JailSpec{jail}}); err != nil {
				t.Fatal(err)
			}
			ban("2001:db8:5:3::1")
			got := ""
			for _, b := range fb.bans() {
				if len(b.Lines) == 1 && strings.HasPrefix(b.Lines[0], "escalated to ") {
					got = b.Prefix.String()
				}
			}
			if got != tt.want {
				t.Errorf("escalated ban %q, want %q", got, tt.want)
			}
		})
	}
}
