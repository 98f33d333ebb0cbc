package pipeline

import (
	"net/netip"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// TestCountByOrigin: with countby origin the failures of one address on
// host A and host B count apart (each host's log must show maxretry), and
// the ban names the host whose log reached it; with the default they count
// together. A ban known from elsewhere (restored, manual, the fleet's)
// holds on every origin; an unban forgets every origin's ban; a reload
// keeps what each origin counted.
func TestCountByOrigin(t *testing.T) {
	msg := func(host, sender, addr string) *sysban.Message {
		m := sshMsg(addr)
		m.Hostname = host
		if sender != "" {
			m.Sender = netip.AddrPortFrom(netip.MustParseAddr(sender), 514)
		}
		return m
	}
	tests := []struct {
		name    string
		countBy string
		want    []string // origins of the bans, in order
	}{
		{"address (default)", "", []string{"hostb"}},
		{"address", CountByAddress, []string{"hostb"}},
		{"origin", CountByOrigin, []string{"hosta", "192.0.2.9"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			jail := sshJail
			jail.MaxRetry, jail.CountBy = 3, tt.countBy
			p := newTestPipeline(t, Config{Jails: []JailSpec{jail}}, Options{})
			// A: 2 failures; B: 2; A: 1 more; sender 192.0.2.9 (no hostname): 3.
			for _, m := range []*sysban.Message{
				msg("hosta", "", "203.0.113.5"), msg("hosta", "", "203.0.113.5"),
				msg("hostb", "", "203.0.113.5"), msg("hostb", "", "203.0.113.5"),
				msg("hosta", "", "203.0.113.5"),
				msg("", "192.0.2.9", "203.0.113.5"), msg("", "192.0.2.9", "203.0.113.5"), msg("", "192.0.2.9", "203.0.113.5"),
			} {
				p.Handle(m)
			}
			var got []string
			for _, b := range keptQueued(p) {
				got = append(got, b.Origin)
			}
			if len(got) != len(tt.want) || (len(got) > 0 && got[0] != tt.want[0]) || (len(got) > 1 && got[1] != tt.want[1]) {
				t.Fatalf("bans from origins %v, want %v", got, tt.want)
			}
		})
	}

	jail := sshJail
	jail.MaxRetry, jail.CountBy = 2, CountByOrigin
	p := newTestPipeline(t, Config{Jails: []JailSpec{jail}}, Options{})
	p.MarkBanned(sysban.Ban{Jail: jail.Name, Addr: netip.MustParseAddr("203.0.113.6"), Start: time.Now(), Duration: time.Hour})
	for range 3 {
		p.Handle(msg("hosta", "", "203.0.113.6"))
	}
	if bans := queued(p); len(bans) != 0 {
		t.Errorf("a ban known from elsewhere did not hold on host A: %v", bans)
	}
	// A's ban of .7; an unban forgets it there too, so A can ban it again.
	p.Handle(msg("hosta", "", "203.0.113.7"))
	p.Handle(msg("hosta", "", "203.0.113.7"))
	if bans := keptQueued(p); len(bans) != 1 {
		t.Fatalf("host A's ban of .7: %v", bans)
	}
	p.Handle(msg("hosta", "", "203.0.113.7"))
	if bans := queued(p); len(bans) != 0 {
		t.Fatalf("a failure while banned decided a ban: %v", bans)
	}
	p.Forget(jail.Name, netip.MustParsePrefix("203.0.113.7/32"))
	// One failure of .8 on host B before a reload, one after: a ban.
	p.Handle(msg("hostb", "", "203.0.113.8"))
	if err := p.Reload(Config{Jails: []JailSpec{jail}}); err != nil {
		t.Fatal(err)
	}
	p.Handle(msg("hostb", "", "203.0.113.8"))
	p.Handle(msg("hosta", "", "203.0.113.7"))
	p.Handle(msg("hosta", "", "203.0.113.7"))
	bans := queued(p)
	if len(bans) != 2 {
		t.Fatalf("after an unban and a reload: %v, want .8 from hostb and .7 from hosta again", bans)
	}
	if st := p.Stats().Jails[jail.Name]; st.TotalFailed == 0 {
		t.Errorf("stats: %+v", st)
	}
}
