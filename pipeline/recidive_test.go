package pipeline

import (
	"context"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// recidiveConfig: sshd and a user jail ban after one failure for a minute;
// recidive bans after three bans within an hour, for a week; recidive-fast
// bans after every single ban (to show that recidive bans never count).
func recidiveConfig() Config {
	return Config{
		Filters: map[string]FilterSpec{"myapp": {
			Programs:  []string{"myapp"},
			FailRegex: []string{`^login failed from <HOST>$`},
		}},
		Jails: []JailSpec{
			{Name: "sshd", Filter: "sshd", MaxRetry: 1, FindTime: time.Minute, BanTime: time.Minute},
			{Name: "myapp", Filter: "myapp", MaxRetry: 1, FindTime: time.Minute, BanTime: sysban.Permanent},
			{Name: "recidive", Filter: RecidiveFilter, MaxRetry: 3, FindTime: time.Hour, BanTime: 7 * 24 * time.Hour,
				IgnoreIP: []netip.Prefix{netip.MustParsePrefix("198.51.100.0/24")}},
			{Name: "recidive-fast", Filter: RecidiveFilter, MaxRetry: 1, FindTime: time.Hour, BanTime: time.Hour},
		},
	}
}

// runPipeline starts Run with banner and stops it when the test ends.
func runPipeline(t *testing.T, cfg Config, banner sysban.Applier, opts Options) *Pipeline {
	t.Helper()
	p, err := New(cfg, banner, opts)
	if err != nil {
		t.Fatal(err)
	}
	p.wait = func(context.Context, time.Duration) {}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); p.Run(ctx) }()
	t.Cleanup(func() { cancel(); wg.Wait() })
	return p
}

func bansIn(bans []sysban.Ban, jail string, addr netip.Addr) []sysban.Ban {
	var out []sysban.Ban
	for _, b := range bans {
		if b.Jail == jail && b.Addr == addr {
			out = append(out, b)
		}
	}
	return out
}

func TestRecidiveCountsBansAcrossJails(t *testing.T) {
	clk := newFakeClock()
	fb := &fakeBanner{}
	p := runPipeline(t, recidiveConfig(), fb, Options{Now: clk.Now})
	a := netip.MustParseAddr("192.0.2.20")
	other := netip.MustParseAddr("192.0.2.21")
	ignored := netip.MustParseAddr("198.51.100.5")
	myapp := func(addr netip.Addr) *sysban.Message {
		return &sysban.Message{AppName: "myapp", Text: "login failed from " + addr.String()}
	}

	// Three bans of a in two jails within the hour: sshd, sshd again
	// after the first expired, myapp.
	steps := []struct {
		msg         *sysban.Message
		after       time.Duration
		wantApplied int // bans applied in all, recidive ones included
	}{
		{sshMsg(a.String()), 0, 2},                    // sshd + recidive-fast
		{sshMsg(other.String()), 0, 4},                // other: sshd + recidive-fast
		{sshMsg(ignored.String()), 0, 6},              // ignored by recidive, not by recidive-fast
		{sshMsg(a.String()), 2 * time.Minute, 7},      // sshd again; recidive-fast still bans a
		{myapp(a), 10 * time.Minute, 9},               // myapp, third ban of a: recidive bans
		{sshMsg(other.String()), 5 * time.Minute, 10}, // other's second ban: no recidive
	}
	for i, s := range steps {
		clk.Advance(s.after)
		p.Handle(s.msg)
		waitFor(t, "bans applied", func() bool { return len(fb.bans()) >= s.wantApplied })
		// The worker counts a batch (and the recidive bans it leads to)
		// after Apply returns: wait until nothing decided is still unkept.
		waitFor(t, "bans kept", func() bool { return p.Stats().Queued == 0 })
		if got := len(fb.bans()); got != s.wantApplied {
			t.Fatalf("step %d: %d bans applied, want %d: %+v", i, got, s.wantApplied, fb.bans())
		}
	}
	bans := fb.bans()
	rb := bansIn(bans, "recidive", a)
	if len(rb) != 1 {
		t.Fatalf("recidive bans of %s = %+v, want one", a, rb)
	}
	wantLines := []string{
		"banned in sshd for 1m0s after 1 failures",
		"banned in sshd for 1m0s after 1 failures",
		"banned in myapp permanently after 1 failures",
	}
	if rb[0].Duration != 7*24*time.Hour || rb[0].Failures != 3 || !slices.Equal(rb[0].Lines, wantLines) {
		t.Errorf("recidive ban = %+v, want a week, 3 failures, lines %q", rb[0], wantLines)
	}
	if n := len(bansIn(bans, "recidive", other)); n != 0 {
		t.Errorf("%s banned twice got %d recidive bans, want none", other, n)
	}
	if n := len(bansIn(bans, "recidive-fast", ignored)); n != 1 {
		t.Errorf("recidive-fast bans of %s = %d, want 1", ignored, n)
	}
	st := p.Stats().Jails
	// recidive counted a's 3 and other's 2 bans (ignored's one is ignored),
	// never recidive-fast's; recidive-fast never counted recidive's.
	if st["recidive"].TotalFailed != 5 || st["recidive"].Ignored != 1 || st["recidive"].TotalBanned != 1 {
		t.Errorf("recidive stats = %+v, want 5 counted, 1 ignored, 1 ban", st["recidive"])
	}
	if st["recidive-fast"].TotalFailed != 6 || st["recidive-fast"].TotalBanned != 3 || st["recidive-fast"].AlreadyBanned != 3 {
		t.Errorf("recidive-fast stats = %+v, want 6 counted, 3 bans, 3 already banned", st["recidive-fast"])
	}
}

func TestRecidiveWindowAndLostBans(t *testing.T) {
	clk := newFakeClock()
	cfg := recidiveConfig()
	cfg.Jails = cfg.Jails[:3] // no recidive-fast
	fb := &fakeBanner{}
	p := runPipeline(t, cfg, fb, Options{Now: clk.Now})
	a := netip.MustParseAddr("192.0.2.30")
	// Three bans spread wider than recidive's findtime of an hour.
	for i := range 3 {
		if i > 0 {
			clk.Advance(40 * time.Minute)
		}
		p.Handle(sshMsg(a.String()))
		waitFor(t, "sshd ban", func() bool { return len(fb.bans()) == i+1 })
	}
	if n := len(bansIn(fb.bans(), "recidive", a)); n != 0 {
		t.Fatalf("bans 40 minutes apart: %d recidive bans, want none", n)
	}

	// A ban the firewall never took is no offence.
	lost := &fakeBanner{failN: applyAttempts}
	p2 := runPipeline(t, cfg, lost, Options{Now: clk.Now})
	p2.Handle(sshMsg(a.String()))
	waitFor(t, "the ban to be lost", func() bool { return p2.Stats().BansLost == 1 })
	if st := p2.Stats().Jails["recidive"]; st.TotalFailed != 0 {
		t.Errorf("recidive counted a lost ban: %+v", st)
	}
}

// TestCountBan: manual bans count (synchronously, through the queue);
// bans of recidive jails and unknown jails do not.
func TestCountBan(t *testing.T) {
	clk := newFakeClock()
	p := newTestPipeline(t, recidiveConfig(), Options{Now: clk.Now})
	a := netip.MustParseAddr("2001:db8::30")
	manual := sysban.Ban{Jail: "sshd", Addr: a, Start: clk.Now(), Duration: time.Hour}
	p.CountBan(sysban.Ban{Jail: "recidive-fast", Addr: a, Duration: time.Hour})
	p.CountBan(sysban.Ban{Jail: "nosuchjail", Addr: a, Duration: time.Hour})
	if b := queued(p); len(b) != 0 {
		t.Fatalf("bans of recidive or unknown jails counted: %+v", b)
	}
	p.CountBan(manual)
	p.CountBan(manual)
	if b := queued(p); len(b) != 1 || b[0].Jail != "recidive-fast" {
		t.Fatalf("after two manual bans: %+v, want one recidive-fast ban", b)
	}
	p.CountBan(manual)
	b := queued(p)
	if len(b) != 1 || b[0].Jail != "recidive" || b[0].Addr != a {
		t.Fatalf("after three manual bans: %+v, want one recidive ban of %s", b, a)
	}
}

// TestRecidiveIncrement: a recidive jail's bantime increment applies like
// any jail's.
func TestRecidiveIncrement(t *testing.T) {
	clk := newFakeClock()
	cfg := recidiveConfig()
	cfg.Jails[3].Increment = BanIncrement{Enabled: true, MaxTime: 5 * time.Hour}
	a := netip.MustParseAddr("192.0.2.40")
	counter := &fakeOffences{n: map[string]int{"recidive-fast " + a.String(): 3}}
	p := newTestPipeline(t, cfg, Options{Now: clk.Now, Offences: counter})
	p.CountBan(sysban.Ban{Jail: "sshd", Addr: a, Duration: time.Minute})
	b := queued(p)
	if len(b) != 1 || b[0].Duration != 5*time.Hour {
		t.Fatalf("bans = %+v, want one capped at 5h", b)
	}
}

func TestRecidiveConfigChecks(t *testing.T) {
	base := recidiveConfig()
	tests := []struct {
		name string
		cfg  func(c *Config)
		want string
	}{
		{"valid", func(c *Config) {}, ""},
		{"user filter named recidive", func(c *Config) {
			c.Filters = map[string]FilterSpec{RecidiveFilter: {Programs: []string{"x"}, FailRegex: []string{"^x <HOST>$"}}}
		}, "pipeline: filter recidive: the name is reserved for the jail fed by sysban's own bans"},
		{"mode on a recidive jail", func(c *Config) { c.Jails[2].Mode = "ddos" },
			`pipeline: jail recidive: mode "ddos": filter recidive has no modes`},
		{"bad maxretry still checked", func(c *Config) { c.Jails[2].MaxRetry = 0 },
			"pipeline: jails[2]: jail recidive: maxretry 0: must be at least 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := base
			c.Jails = slices.Clone(base.Jails)
			tt.cfg(&c)
			if got := errString(Validate(c)); got != tt.want {
				t.Errorf("Validate: %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRecidiveSurvivesReload: a reload that keeps the recidive jail keeps
// its count; adding one later starts counting from then.
func TestRecidiveSurvivesReload(t *testing.T) {
	clk := newFakeClock()
	cfg := recidiveConfig()
	cfg.Jails = cfg.Jails[:3]
	p := newTestPipeline(t, Config{Jails: cfg.Jails[:1]}, Options{Now: clk.Now})
	a := netip.MustParseAddr("192.0.2.50")
	p.CountBan(sysban.Ban{Jail: "sshd", Addr: a}) // no recidive jail yet
	if err := p.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	p.CountBan(sysban.Ban{Jail: "sshd", Addr: a})
	p.CountBan(sysban.Ban{Jail: "sshd", Addr: a})
	if err := p.Reload(cfg); err != nil {
		t.Fatal(err)
	}
	if b := queued(p); len(b) != 0 {
		t.Fatalf("bans before the third: %+v", b)
	}
	p.CountBan(sysban.Ban{Jail: "myapp", Addr: a})
	if b := queued(p); len(b) != 1 || b[0].Jail != "recidive" {
		t.Fatalf("bans = %+v, want a recidive ban after three counted across a reload", b)
	}
}

// TestSeedRecidive: bans from before a restart count in the recidive
// window, except those already punished by a recidive ban, those outside
// findtime and those of unknown jails; a count that had reached maxretry
// without its recidive ban bans now.
func TestSeedRecidive(t *testing.T) {
	clk := newFakeClock()
	cfg := recidiveConfig()
	cfg.Jails = cfg.Jails[:3] // no recidive-fast
	fb := &fakeBanner{}
	p := runPipeline(t, cfg, fb, Options{Now: clk.Now})
	now := clk.Now()
	addr := func(s string) netip.Addr { return netip.MustParseAddr(s) }
	a, b, c, d, e := addr("192.0.2.1"), addr("192.0.2.2"), addr("192.0.2.3"), addr("2001:db8::4"), addr("192.0.2.5")
	ban := func(jail string, a netip.Addr, ago time.Duration) sysban.Ban {
		return sysban.Ban{Jail: jail, Addr: a, Start: now.Add(-ago), Duration: time.Minute, Failures: 1}
	}
	history := []sysban.Ban{
		ban("sshd", a, 50*time.Minute), ban("sshd", a, 30*time.Minute),
		ban("sshd", b, 2*time.Hour), ban("sshd", b, 20*time.Minute),
		ban("sshd", c, 50*time.Minute), ban("sshd", c, 40*time.Minute), ban("recidive", c, 39*time.Minute), ban("sshd", c, 10*time.Minute),
		ban("sshd", d, 30*time.Minute), ban("myapp", d, 20*time.Minute), ban("sshd", d, 10*time.Minute),
		ban("gone", e, 10*time.Minute), ban("gone", e, 9*time.Minute), ban("gone", e, 8*time.Minute),
	}
	if got := p.RecidiveWindow(); got != time.Hour {
		t.Errorf("RecidiveWindow = %v, want 1h", got)
	}
	if n := p.SeedRecidive(history); n != 7 {
		t.Errorf("SeedRecidive counted %d bans, want 7 (a 2, b 1, c 1, d 3)", n)
	}
	waitFor(t, "d's missed recidive ban", func() bool { return len(fb.bans()) == 1 })
	if got := fb.bans()[0]; got.Jail != "recidive" || got.Addr != d || !got.Start.Equal(now) || got.Failures != 3 {
		t.Fatalf("seeded ban = %+v, want recidive of %s from now after 3", got, d)
	}
	for _, x := range []netip.Addr{a, b, c, e} {
		p.Handle(sshMsg(x.String()))
	}
	waitFor(t, "the live bans", func() bool { return len(fb.bans()) >= 6 })
	// A wrong extra recidive ban would be queued by now; one more ban,
	// queued behind it, shows when everything before it was applied.
	marker := addr("192.0.2.99")
	p.Handle(sshMsg(marker.String()))
	waitFor(t, "the marker's ban", func() bool {
		return slices.ContainsFunc(fb.bans(), func(b sysban.Ban) bool { return b.Addr == marker })
	})
	var rec []netip.Addr
	for _, x := range fb.bans()[1:] {
		if x.Jail == "recidive" {
			rec = append(rec, x.Addr)
		}
	}
	if !slices.Equal(rec, []netip.Addr{a}) {
		t.Errorf("recidive bans after one more ban each: %v, want only %s", rec, a)
	}
}
