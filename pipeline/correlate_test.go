package pipeline

import (
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// corrSpec has both kinds of correlation: keyed by a (?P<key>) group with
// the host on the close, and keyed by ProcID with the host on the open.
var corrSpec = FilterSpec{
	Name:     "app",
	Programs: []string{"app"},
	Correlate: []Correlation{
		{Open: `^(?P<key>\w+): auth failed$`, Close: `^(?P<key>\w+): client <HOST> gone$`, Window: time.Minute},
		{Open: `^connect from <HOST>$`, Close: `^too many failures$`, Window: time.Minute},
	},
}

func corrMsg(host, pid, text string) *sysban.Message {
	return &sysban.Message{Hostname: host, AppName: "app", ProcID: pid, Text: text}
}

func TestCorrelationTester(t *testing.T) {
	clk := newFakeClock()
	tester, err := NewTester([]FilterSpec{corrSpec}, TesterOptions{Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		advance time.Duration
		msg     *sysban.Message
		want    string // outcomeOf
		pattern int    // index into Patterns when matched
	}
	steps := []step{
		{0, corrMsg("h1", "1", "q1: auth failed"), "pending", 0},
		{0, corrMsg("h1", "2", "q2: auth failed"), "pending", 0},
		{0, corrMsg("h1", "3", "unrelated line"), "miss", -1},
		{0, corrMsg("h1", "9", "q2: client 192.0.2.2 gone"), "match 192.0.2.2", 1},
		{0, corrMsg("h1", "9", "q2: client 192.0.2.2 gone"), "miss", -1}, // completed once
		{0, corrMsg("h2", "1", "q1: client 192.0.2.9 gone"), "miss", -1}, // other sender's q1
		{0, corrMsg("h1", "1", "q1: client 192.0.2.1 gone"), "match 192.0.2.1", 1},
		{0, corrMsg("h1", "1", "q3: client 192.0.2.3 gone"), "miss", -1}, // close without open
		// ProcID keys, host on the open.
		{0, corrMsg("h1", "100", "connect from 198.51.100.1"), "pending", 2},
		{0, corrMsg("h1", "101", "connect from 198.51.100.2"), "pending", 2},
		{0, corrMsg("h1", "100", "connect from 198.51.100.3"), "pending", 2}, // reopen: latest wins
		{0, corrMsg("h1", "101", "too many failures"), "match 198.51.100.2", 3},
		{0, corrMsg("h1", "100", "too many failures"), "match 198.51.100.3", 3},
		{0, corrMsg("h1", "", "too many failures"), "miss", -1}, // no key at all
		{0, corrMsg("h1", "", "connect from 198.51.100.4"), "miss", -1},
		// The window is measured on the injected clock.
		{0, corrMsg("h1", "200", "connect from 198.51.100.5"), "pending", 2},
		{59 * time.Second, corrMsg("h1", "200", "too many failures"), "match 198.51.100.5", 3},
		{0, corrMsg("h1", "201", "connect from 198.51.100.6"), "pending", 2},
		{time.Minute, corrMsg("h1", "201", "too many failures"), "miss", -1},
	}
	pats := tester.Patterns("app")
	for i, s := range steps {
		clk.Advance(s.advance)
		ms := tester.Test(s.msg)
		if got := outcomeOf(ms); got != s.want {
			t.Fatalf("step %d %q: got %q, want %q", i, s.msg.Text, got, s.want)
		}
		if len(ms) == 1 {
			m := ms[0]
			if m.Pattern != s.pattern || m.Regex != pats[m.Pattern] {
				t.Errorf("step %d: pattern %d %q, want %d", i, m.Pattern, m.Regex, s.pattern)
			}
			if m.Correlated != strings.HasPrefix(s.want, "match") || m.Pending != (s.want == "pending") {
				t.Errorf("step %d: flags %+v", i, m)
			}
		}
	}
}

func TestPendingSetBounds(t *testing.T) {
	f, err := CompileFilter(corrSpec)
	if err != nil {
		t.Fatal(err)
	}
	st := newCorrState(f, 3)
	s := &st.sets[0]
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 5 {
		s.put(fmt.Sprint("k", i), "", now.Add(time.Duration(i)*time.Second))
	}
	if len(s.m) != 3 || s.evicted.Load() != 2 {
		t.Fatalf("%d pending, %d evicted; want 3 and 2", len(s.m), s.evicted.Load())
	}
	if _, ok := s.take("k0", now.Add(5*time.Second)); ok {
		t.Error("oldest key survived eviction")
	}
	// Reopening k2 refreshes it: k3 is now the oldest and goes first.
	s.put("k2", "192.0.2.2", now.Add(6*time.Second))
	s.put("k5", "", now.Add(7*time.Second))
	if _, ok := s.take("k3", now.Add(7*time.Second)); ok {
		t.Error("k3 should have been evicted after k2 was refreshed")
	}
	if h, ok := s.take("k2", now.Add(7*time.Second)); !ok || h != "192.0.2.2" {
		t.Errorf("k2: %q %v, want its latest host", h, ok)
	}
	// Expired entries are pruned on the next operation.
	s.take("nothing", now.Add(time.Hour))
	if len(s.m) != 0 || s.lru.next != &s.lru {
		t.Errorf("%d entries left after the window", len(s.m))
	}
	// Keys longer than maxKeyLen are not remembered at all.
	tester, err := NewTester([]FilterSpec{corrSpec}, TesterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("k", maxKeyLen+1)
	if got := outcomeOf(tester.Test(corrMsg("h", "1", long+": auth failed"))); got != "miss" {
		t.Errorf("overlong key: %s", got)
	}
}

// TestCorrelationHandle drives correlation through the daemon's path,
// concurrently: every open/close pair is one failure, and the pending sets
// stay bounded by MaxPending.
func TestCorrelationHandle(t *testing.T) {
	clk := newFakeClock()
	jail := JailSpec{Name: "app", Filter: "app", MaxRetry: 1000, FindTime: time.Hour, BanTime: time.Hour}
	p := newTestPipeline(t, Config{Filters: map[string]FilterSpec{"app": corrSpec}, Jails: []JailSpec{jail}},
		Options{Now: clk.Now, MaxPending: 64})
	const workers, pairs = 4, 50
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := range pairs {
				key := fmt.Sprintf("w%dq%d", w, i)
				p.Handle(corrMsg("h", "1", key+": auth failed"))
				p.Handle(corrMsg("h", "1", "noise"))
				p.Handle(corrMsg("h", "1", fmt.Sprintf("%s: client 192.0.2.%d gone", key, w+1)))
			}
		})
	}
	wg.Wait()
	st := p.Stats().Jails["app"]
	if st.TotalFailed != workers*pairs || st.Pending != 0 {
		t.Fatalf("stats %+v, want %d failures, nothing pending", st, workers*pairs)
	}
	// A flood of opens never completed is bounded and counted.
	for i := range 1000 {
		p.Handle(corrMsg("h", "1", fmt.Sprintf("flood%d: auth failed", i)))
	}
	st = p.Stats().Jails["app"]
	if st.Pending != 64 || st.PendingEvicted != 1000-64 {
		t.Fatalf("pending %d evicted %d, want 64 and %d", st.Pending, st.PendingEvicted, 1000-64)
	}
	clk.Advance(time.Minute)
	if st := p.Stats().Jails["app"]; st.Pending != 0 {
		t.Errorf("pending %d after the window, want 0", st.Pending)
	}
}

// TestSendmailCorrelationBans: the attack on a CentOS 5 sendmail + saslauthd host, five sessions with saslauthd
// lines between them, bans the client once it reaches maxretry.
func TestSendmailCorrelationBans(t *testing.T) {
	clk := newFakeClock()
	jail := JailSpec{Name: "sendmail-auth", Filter: "sendmail-auth", MaxRetry: 5, FindTime: 10 * time.Minute, BanTime: time.Hour}
	p := newTestPipeline(t, Config{Jails: []JailSpec{jail}}, Options{Now: clk.Now})
	for i := range 5 {
		qid := fmt.Sprintf("s0PNE8Zh%06d", 29536+i)
		pid := fmt.Sprint(29536 + i)
		for _, m := range []*sysban.Message{
			{Hostname: "fedora", AppName: "sendmail", ProcID: pid, Text: qid + ": AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed"},
			{Hostname: "fedora", AppName: "saslauthd", ProcID: "27264", Text: "do_auth : auth failure: [user=user1] [service=smtp] [realm=] [mech=pam] [reason=PAM auth error]"},
			{Hostname: "fedora", AppName: "sendmail", ProcID: pid, Text: qid + ": [78.93.245.133] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA"},
		} {
			p.Handle(m)
			clk.Advance(time.Second)
		}
	}
	bans := queued(p)
	if len(bans) != 1 || bans[0].Addr != netip.MustParseAddr("78.93.245.133") || bans[0].Failures != 5 {
		t.Fatalf("bans %+v, want 78.93.245.133 after 5", bans)
	}
}

// TestModesRoute: jails in different modes of one filter each see their
// own patterns.
func TestModesRoute(t *testing.T) {
	jails := []JailSpec{
		{Name: "normal", Filter: "sshd", MaxRetry: 1, FindTime: time.Minute, BanTime: time.Hour},
		{Name: "ddos", Filter: "sshd", MaxRetry: 1, FindTime: time.Minute, BanTime: time.Hour, Mode: "ddos"},
	}
	p := newTestPipeline(t, Config{Jails: jails}, Options{})
	p.Handle(&sysban.Message{AppName: "sshd", Text: "Did not receive identification string from 192.0.2.1 port 1"})
	p.Handle(&sysban.Message{AppName: "sshd", Text: "Invalid user x from 192.0.2.2 port 1"})
	var got []string
	for _, b := range queued(p) {
		got = append(got, b.Jail+"/"+b.Addr.String())
	}
	if want := "ddos/192.0.2.1 normal/192.0.2.2 ddos/192.0.2.2"; strings.Join(got, " ") != want {
		t.Errorf("bans %v, want %s", got, want)
	}
}

func TestVarsExpand(t *testing.T) {
	spec := FilterSpec{
		Name:      "named",
		Programs:  []string{"named"},
		FailRegex: []string{`^client <HOST>#\d+: query: <VAR:domains> IN ANY$`},
		// A value is a literal: its dots and a "<HOST>" in it match only
		// themselves.
		Vars: map[string][]string{"domains": {"example.org", "a.b", "<HOST>"}},
	}
	f, err := CompileFilter(spec)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ line, host string }{
		{"client 192.0.2.1#53: query: example.org IN ANY", "192.0.2.1"},
		{"client 192.0.2.1#53: query: a.b IN ANY", "192.0.2.1"},
		{"client 192.0.2.1#53: query: <HOST> IN ANY", "192.0.2.1"},
		{"client 192.0.2.1#53: query: axb IN ANY", ""},
		{"client 192.0.2.1#53: query: exampleXorg IN ANY", ""},
		{"client 192.0.2.1#53: query: other.org IN ANY", ""},
	}
	for _, tt := range tests {
		for _, prefilter := range []bool{true, false} {
			r := f.match(tt.line, prefilter)
			if (r.pattern != nil) != (tt.host != "") || r.host != tt.host {
				t.Errorf("prefilter=%v %q: %+v, want host %q", prefilter, tt.line, r, tt.host)
			}
		}
	}
	if f.fail[0].pre.prefix != "client " {
		t.Errorf("prefilter prefix %q lost by var expansion", f.fail[0].pre.prefix)
	}
}

func TestTesterModes(t *testing.T) {
	specs := []FilterSpec{BuiltinFilters()["sshd"], corrSpec}
	if _, err := NewTester(specs, TesterOptions{Mode: "nope"}); err == nil || !strings.Contains(err.Error(), `no filter has mode "nope"`) {
		t.Errorf("unknown mode: %v", err)
	}
	tester, err := NewTester(specs, TesterOptions{Mode: "ddos"})
	if err != nil {
		t.Fatal(err)
	}
	if got := tester.Filters(); strings.Join(got, ",") != "app,sshd" {
		t.Errorf("filters %v", got)
	}
	ms := tester.Test(&sysban.Message{AppName: "sshd", Text: "Did not receive identification string from 192.0.2.1"})
	if len(ms) != 1 || ms[0].Host != "192.0.2.1" || ms[0].Regex != tester.Patterns("sshd")[ms[0].Pattern] {
		t.Errorf("ddos line: %+v", ms)
	}
	// An empty program reaches no filter, as in the daemon.
	if ms := tester.Test(&sysban.Message{Text: "Invalid user x from 192.0.2.1"}); ms != nil {
		t.Errorf("no program: %+v", ms)
	}
	if tester.Patterns("nope") != nil {
		t.Error("patterns of an unknown filter")
	}
	if _, err := NewTester([]FilterSpec{corrSpec, corrSpec}, TesterOptions{}); err == nil {
		t.Error("duplicate filter accepted")
	}
}

// TestCorrelationModes: a correlation with Modes is used by jails of those
// modes only; the others neither open nor complete it.
func TestCorrelationModes(t *testing.T) {
	spec := FilterSpec{
		Name:      "app",
		Programs:  []string{"app"},
		FailRegex: []string{`^denied <HOST>$`},
		Modes:     map[string][]string{"ddos": nil, "aggressive": nil},
		Correlate: []Correlation{{Open: `^hello failed$`, Close: `^closed by <HOST>$`, Window: time.Minute, Modes: []string{"ddos"}}},
	}
	for _, tc := range []struct {
		mode       string
		open, done string // outcomeOf the open line, then of its close
	}{
		{"normal", "miss", "miss"},
		{"ddos", "pending", "match 192.0.2.1"},
		{"aggressive", "miss", "miss"},
	} {
		tester, err := NewTester([]FilterSpec{spec}, TesterOptions{Mode: tc.mode})
		if err != nil {
			t.Fatal(err)
		}
		if got := outcomeOf(tester.Test(corrMsg("h", "7", "hello failed"))); got != tc.open {
			t.Errorf("%s: open: got %q, want %q", tc.mode, got, tc.open)
		}
		if got := outcomeOf(tester.Test(corrMsg("h", "7", "closed by 192.0.2.1"))); got != tc.done {
			t.Errorf("%s: close: got %q, want %q", tc.mode, got, tc.done)
		}
	}
	// A bad correlation fails every mode, not only its own.
	spec.Correlate[0].Close = `^closed$`
	if _, err := CompileFilterMode(spec, "normal"); err == nil {
		t.Error("normal mode compiled a correlation without <HOST>")
	}
}

// TestPendingSetSpares: entries dropped by take and prune come back for new
// keys cleared (no host, no attempts of the key before), at most maxSpare
// are kept, and a steady stream of keys that expire as fast as they come
// allocates only each key's copy.
func TestPendingSetSpares(t *testing.T) {
	var s pendingSet
	s.init(10*time.Second, 1000)
	now := time.Date(2026, 11, 21, 10, 0, 0, 0, time.UTC)
	for i := range 2 * maxSpare {
		s.update(fmt.Sprint("k", i), now, func(e *pendingEntry) {
			e.host = "192.0.2.1"
			e.acct.line(0, false, now, time.Minute)
		})
	}
	if h, ok := s.take("k0", now); !ok || h != "192.0.2.1" {
		t.Fatalf("take k0: %q %v", h, ok)
	}
	s.prune(now.Add(time.Minute))
	if len(s.m) != 0 || len(s.spare) != maxSpare {
		t.Fatalf("%d entries, %d spare after the window; want 0 and %d", len(s.m), len(s.spare), maxSpare)
	}
	later := now.Add(time.Minute)
	s.update("new", later, func(e *pendingEntry) {
		if e.host != "" || e.key != "new" || e.acct.nOpen != 0 || e.acct.counted != 0 {
			t.Errorf("a spare came back with %q %q, %d open, %d counted", e.host, e.key, e.acct.nOpen, e.acct.counted)
		}
	})
	keys := make([]string, 100)
	for i := range keys {
		keys[i] = fmt.Sprint("key", i)
	}
	i := 0
	allocs := testing.AllocsPerRun(1000, func() {
		later = later.Add(time.Second) // each key outlives the window by far
		s.update(keys[i%len(keys)], later, func(e *pendingEntry) { e.acct.line(0, false, later, time.Second) })
		later = later.Add(time.Minute)
		i++
	})
	if allocs > 1 {
		t.Errorf("%v allocations per new key, want at most 1 (its copy)", allocs)
	}
}
