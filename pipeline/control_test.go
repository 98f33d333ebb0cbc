package pipeline

import (
	"net/netip"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// A ban carries the lines of the failures that decided it, oldest first.
func TestBanCarriesLines(t *testing.T) {
	clk := newFakeClock()
	p := newTestPipeline(t, Config{}, Options{Now: clk.Now})
	for i, u := range []string{"a", "b", "c"} {
		p.Handle(&sysban.Message{AppName: "sshd", Text: "Invalid user " + u + " from 192.0.2.7 port " + string(rune('1'+i))})
	}
	bans := queued(p)
	want := []string{"Invalid user a from 192.0.2.7 port 1", "Invalid user b from 192.0.2.7 port 2", "Invalid user c from 192.0.2.7 port 3"}
	if len(bans) != 1 || !slices.Equal(bans[0].Lines, want) {
		t.Fatalf("bans = %+v, want one with lines %q", bans, want)
	}
}

func TestMarkBannedAndForget(t *testing.T) {
	clk := newFakeClock()
	p := newTestPipeline(t, Config{}, Options{Now: clk.Now})
	a := netip.MustParseAddr("192.0.2.8")
	// A restored or manual ban: failures meanwhile do not decide another.
	p.MarkBanned(sysban.Ban{Jail: "sshd", Addr: a, Start: clk.Now(), Duration: sysban.Permanent})
	for range 5 {
		p.Handle(sshMsg(a.String()))
	}
	if b := queued(p); len(b) != 0 {
		t.Fatalf("marked-banned address got new bans %+v", b)
	}
	if st := p.Stats().Jails["sshd"]; st.AlreadyBanned != 5 || st.CurrentlyBanned != 1 {
		t.Errorf("stats = %+v, want 5 already banned, 1 banned", st)
	}
	// After an unban it can be banned again.
	p.Forget("sshd", single(a))
	for range 3 {
		p.Handle(sshMsg(a.String()))
	}
	if b := queued(p); len(b) != 1 || b[0].Addr != a {
		t.Errorf("after Forget: bans %+v, want one for %s", b, a)
	}
	p.MarkBanned(sysban.Ban{Jail: "nosuchjail", Addr: a}) // ignored, no panic
	p.Forget("nosuchjail", single(a))
}

func TestProtects(t *testing.T) {
	p := newTestPipeline(t, Config{Jails: []JailSpec{{Name: "sshd", Filter: "sshd", MaxRetry: 3, FindTime: time.Minute, BanTime: time.Hour,
		IgnoreIP: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}}}},
		Options{Protected: []netip.Prefix{netip.MustParsePrefix("192.0.2.1/32")}})
	for addr, want := range map[string]string{
		"127.0.0.1": "loopback", "::1": "loopback", "192.0.2.1": "one of this host's addresses",
		"::ffff:192.0.2.1": "one of this host's addresses", "198.51.100.9": "in the jail's ignoreip",
		"fe80::1": "not a unicast host address", "203.0.113.9": "",
	} {
		if got := p.Protects("sshd", single(netip.MustParseAddr(addr))); got != want {
			t.Errorf("Protects(%s) = %q, want %q", addr, got, want)
		}
	}
}

// Reload keeps the state of jails that stay, drops jails that go, and
// refuses a bad config without changing anything.
func TestReload(t *testing.T) {
	clk := newFakeClock()
	p := newTestPipeline(t, Config{Jails: []JailSpec{sshJail,
		{Name: "other", Filter: "sshd", MaxRetry: 3, FindTime: time.Minute, BanTime: time.Hour}}}, Options{Now: clk.Now})
	a, b := "192.0.2.10", "192.0.2.11"
	p.Handle(sshMsg(a))
	p.Handle(sshMsg(a)) // two of three failures in sshd's window
	for range 3 {
		p.Handle(sshMsg(b))
	}
	if n := len(keptQueued(p)); n != 2 {
		t.Fatalf("setup: %d bans, want 2 (b in both jails)", n)
	}

	bad := Config{Jails: []JailSpec{{Name: "sshd", Filter: "nosuch", MaxRetry: 3, FindTime: time.Minute, BanTime: time.Hour}}}
	if err := p.Reload(bad); err == nil {
		t.Fatal("Reload accepted a jail with an unknown filter")
	}
	if _, ok := p.Stats().Jails["other"]; !ok {
		t.Fatal("a refused reload changed the jails")
	}

	// Same sshd spec, "other" removed.
	if err := p.Reload(Config{Jails: []JailSpec{sshJail}}); err != nil {
		t.Fatal(err)
	}
	st := p.Stats()
	if _, ok := st.Jails["other"]; ok {
		t.Error("removed jail still reported")
	}
	if s := st.Jails["sshd"]; s.TotalFailed != 5 || s.CurrentlyBanned != 1 || s.CurrentlyFailed != 1 {
		t.Errorf("sshd after reload = %+v: want its counters, window and ban kept", s)
	}
	p.Handle(sshMsg(a)) // third failure inside the kept window
	if bans := keptQueued(p); len(bans) != 1 || bans[0].Addr.String() != a {
		t.Errorf("bans = %+v, want %s banned by the failure window kept across reload", bans, a)
	}

	// A changed spec keeps counters and remembered bans.
	changed := sshJail
	changed.MaxRetry = 2
	if err := p.Reload(Config{Jails: []JailSpec{changed}}); err != nil {
		t.Fatal(err)
	}
	s := p.Stats().Jails["sshd"]
	if s.TotalBanned != 2 || s.CurrentlyBanned != 2 {
		t.Errorf("sshd after spec change = %+v: want counters and bans inherited", s)
	}
	p.Handle(sshMsg(b))
	if bans := queued(p); len(bans) != 0 {
		t.Errorf("an address banned before the reload was banned again: %+v", bans)
	}
}

func TestValidate(t *testing.T) {
	if err := Validate(Config{Jails: []JailSpec{sshJail}}); err != nil {
		t.Errorf("Validate(sshd) = %v", err)
	}
	bad := sshJail
	bad.Mode = "paranoid"
	if err := Validate(Config{Jails: []JailSpec{bad}}); err == nil {
		t.Error("Validate accepted an unknown mode")
	}
}

// A huge maxretry must not cost memory per address up front: the ring
// grows with the failures an address actually has.
func TestHugeMaxRetryGrowsLazily(t *testing.T) {
	clk := newFakeClock()
	huge := JailSpec{Name: "sshd", Filter: "sshd", MaxRetry: 1 << 20, FindTime: time.Hour, BanTime: time.Hour}
	p := newTestPipeline(t, Config{Jails: []JailSpec{huge}, MaxTracked: 100000}, Options{Now: clk.Now})
	allocs := testing.AllocsPerRun(1, func() {
		for i := range 1000 {
			p.Handle(sshMsg(netip.AddrFrom4([4]byte{198, 51, byte(i >> 8), byte(i)}).String()))
		}
	})
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	if ms.HeapAlloc > 256<<20 {
		t.Errorf("heap %d MiB after 1000 addresses with maxretry 2^20 (%v allocs): rings are allocated up front", ms.HeapAlloc>>20, allocs)
	}
	if st := p.Stats().Jails["sshd"]; st.CurrentlyFailed != 1000 {
		t.Errorf("tracked %d addresses, want 1000", st.CurrentlyFailed)
	}
	// With a small maxretry the ring wraps and still bans on the window.
	p2 := newTestPipeline(t, Config{}, Options{Now: clk.Now})
	for range 7 {
		p2.Handle(sshMsg("192.0.2.50"))
		clk.Advance(6 * time.Minute) // 3 failures never fit in 10m
	}
	if b := queued(p2); len(b) != 0 {
		t.Errorf("failures spread wider than findtime banned: %+v", b)
	}
	for range 3 {
		p2.Handle(sshMsg("192.0.2.50"))
	}
	if b := queued(p2); len(b) != 1 || len(b[0].Lines) != 3 {
		t.Errorf("after the wrapped ring: bans %+v, want one with 3 lines", b)
	}
}
