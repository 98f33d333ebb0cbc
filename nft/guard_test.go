package nft

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/nftables"
	sysban "github.com/sysban/sysban"
)

// Tests of Guard against the kernel, in fresh network namespaces. Damage is
// done with the nft command, from another process, as an admin or a
// firewall manager would.

// memSource is a BanSource over a slice, like the store: EachDue gives
// the bans not over at now, and its generation moves with every change,
// so the Guard may skip reading it (see unversioned for a source that
// does not say). failing makes EachDue fail.
type memSource struct {
	mu      sync.Mutex
	bans    []sysban.Ban
	calls   int
	failing bool
	gen     uint64
}

var _ VersionedBanSource = (*memSource)(nil)

func (s *memSource) Generation() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gen
}

// unversioned hides a source's generation: the Guard reads it at every
// element check, as before sources had one.
type unversioned struct{ BanSource }

func (s *memSource) EachDue(_ context.Context, now time.Time, fn func(sysban.Ban)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	if s.failing {
		return errors.New("store unavailable")
	}
	for _, b := range s.bans {
		if b.Permanent() || b.Expiry().After(now) {
			fn(b)
		}
	}
	return nil
}

func (s *memSource) add(bans ...sysban.Ban) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bans = append(s.bans, bans...)
	s.gen++
}

func (s *memSource) remove(jail string, a netip.Addr) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bans = slices.DeleteFunc(s.bans, func(b sysban.Ban) bool { return b.Jail == jail && b.Addr == a })
	s.gen++
}

func (s *memSource) set(failing bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failing = failing
}

func (s *memSource) callCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls
}

// heal is one OnHeal call.
type heal struct {
	reason   string
	restored int
	at       time.Time // when OnHeal was called: the repair is done
	found    time.Time // when the check that found the damage started
	checks   int64     // checks completed before the one that healed
}

// runningGuard is a Guard started by startGuard.
type runningGuard struct {
	cancel context.CancelFunc
	done   chan error
	heals  chan heal
	checks atomic.Int64 // completed checks
	byMon  atomic.Int64 // of which started by the monitor

	mu       sync.Mutex
	triggers []string // of the completed checks, in order
}

// trigger is what started the i-th completed check (from 0).
func (rg *runningGuard) trigger(i int64) string {
	rg.mu.Lock()
	defer rg.mu.Unlock()
	if i < 0 || i >= int64(len(rg.triggers)) {
		return "(not completed)"
	}
	return rg.triggers[i]
}

// startGuard runs Guard on b until the test ends.
func startGuard(t *testing.T, b *Backend, src BanSource, opts GuardOptions) *runningGuard {
	t.Helper()
	rg := &runningGuard{done: make(chan error, 1), heals: make(chan heal, 100)}
	var found time.Time // set and read on the guard's goroutine
	opts.healing = func(checkStart time.Time) { found = checkStart }
	opts.OnHeal = func(reason string, restored int) {
		rg.heals <- heal{reason, restored, time.Now(), found, rg.checks.Load()}
	}
	opts.checked = func(trigger string) {
		if trigger == "monitor" {
			rg.byMon.Add(1)
		}
		rg.mu.Lock()
		rg.triggers = append(rg.triggers, trigger)
		rg.mu.Unlock()
		rg.checks.Add(1)
	}
	ctx, cancel := context.WithCancel(context.Background())
	rg.cancel = cancel
	go func() { rg.done <- b.Guard(ctx, src, opts) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-rg.done:
			if err != nil {
				t.Errorf("Guard: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("Guard did not return within 30s of cancel")
		}
	})
	// Wait for the first check, so the guard is watching before the test
	// does anything.
	rg.waitChecks(t, 1)
	return rg
}

// waitChecks waits until n more checks than now have completed... or, the
// first time, until n have.
func (rg *runningGuard) waitChecks(t *testing.T, n int64) {
	t.Helper()
	target := rg.checks.Load() + n
	waitFor(t, 30*time.Second, fmt.Sprintf("%d guard checks", n), func() bool { return rg.checks.Load() >= target })
}

// state is what a healthy table looks like to a test.
type state struct {
	rules []string // rule lines, as ruleLines prints them
	bans  []sysban.Ban
}

// healthy reports whether ns holds the table with exactly want's rules and
// every ban of want, each with a sane remaining time; why says what is
// wrong when it does not. It never fails the test: the table may be
// missing while the guard has not repaired it yet.
func healthy(b *Backend, ns *netNS, want state) (ok bool, why string) {
	out, err := exec.Command("ip", "netns", "exec", ns.name, "nft", "list", "chain", "inet", DefaultTable, ChainName).Output()
	if err != nil {
		return false, "chain not listable: " + err.Error()
	}
	var lines []string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "table ") || strings.HasPrefix(l, "chain ") ||
			strings.HasPrefix(l, "type ") || l == "}" {
			continue
		}
		if i := strings.Index(l, " comment "); i >= 0 {
			l = l[:i]
		}
		lines = append(lines, l)
	}
	if !slices.Equal(lines, want.rules) {
		return false, fmt.Sprintf("rules %q", lines)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	have := map[string]map[netip.Addr]Element{}
	for _, ban := range want.bans {
		if have[ban.Jail] == nil {
			els, err := b.Banned(ctx, ban.Jail)
			if err != nil {
				return false, err.Error()
			}
			have[ban.Jail] = map[netip.Addr]Element{}
			for _, e := range els {
				have[ban.Jail][e.Addr] = e
			}
		}
		e, ok := have[ban.Jail][sysban.CanonicalAddr(ban.Addr)]
		if !ok {
			return false, fmt.Sprintf("%s %v not banned", ban.Jail, ban.Addr)
		}
		if why := saneTimeout(ban, e, time.Now()); why != "" {
			return false, why
		}
	}
	return true, ""
}

// saneTimeout checks an element against its ban: permanent stays
// permanent, a timed ban keeps its remaining time (not its full bantime).
func saneTimeout(ban sysban.Ban, e Element, now time.Time) string {
	if ban.Permanent() {
		if !e.Permanent {
			return fmt.Sprintf("%v: %+v, want permanent", ban.Addr, e)
		}
		return ""
	}
	rem := ban.Expiry().Sub(now)
	if e.Permanent || e.Expires > rem+time.Second || e.Expires < rem-30*time.Second {
		return fmt.Sprintf("%v: expires in %v, want about %v", ban.Addr, e.Expires, rem)
	}
	return ""
}

// guardBans are the bans the damage tests start with: timed and permanent,
// IPv4, IPv6 and mapped, some half over, in two jails.
func guardBans(now time.Time) []sysban.Ban {
	return []sysban.Ban{
		{Jail: "ssh", Addr: addr("192.0.2.1"), Start: now, Duration: time.Hour},
		{Jail: "ssh", Addr: addr("192.0.2.2"), Start: now.Add(-50 * time.Minute), Duration: time.Hour},
		{Jail: "ssh", Addr: addr("::ffff:192.0.2.3"), Start: now, Duration: sysban.Permanent},
		{Jail: "ssh", Addr: addr("2001:db8::1"), Start: now, Duration: 10 * time.Minute},
		{Jail: "ssh", Addr: addr("2001:db8::2"), Start: now, Duration: sysban.Permanent},
		{Jail: "web", Addr: addr("198.51.100.1"), Start: now, Duration: 24 * time.Hour},
		{Jail: "web", Addr: addr("2001:db8::9"), Start: now.Add(-time.Hour), Duration: 2 * time.Hour},
	}
}

var handleRE = regexp.MustCompile(`# handle (\d+)$`)

// ruleHandle returns the handle of the first rule of the input chain whose
// line contains substr.
func ruleHandle(t *testing.T, ns *netNS, substr string) string {
	t.Helper()
	for _, l := range strings.Split(ns.exec(t, "nft", "-a", "list", "chain", "inet", DefaultTable, ChainName), "\n") {
		if strings.Contains(l, substr) {
			if m := handleRE.FindStringSubmatch(strings.TrimSpace(l)); m != nil {
				return m[1]
			}
		}
	}
	t.Fatalf("no rule with %q", substr)
	return ""
}

// TestGuardHeals damages the table every way the guard must notice, from
// another process, and checks that table, rules and every due ban come
// back, found by the first check after the damage: first with change
// notifications (the fast path: a check the notification started), then
// with the reconcile alone (its next tick). The latencies are logged.
func TestGuardHeals(t *testing.T) {
	// Each damage prepares, then returns the one nft command that does it,
	// so the latency is measured from that command.
	damages := []struct {
		name    string
		prepare func(t *testing.T, ns *netNS) []string
		reason  string // part of the reported reason
		restore int    // bans the repair must report restored
	}{
		{"flush ruleset", func(t *testing.T, ns *netNS) []string {
			return []string{"nft", "flush", "ruleset"}
		}, "table inet sysban missing", 7},
		{"delete table", func(t *testing.T, ns *netNS) []string {
			return []string{"nft", "delete", "table", "inet", DefaultTable}
		}, "table inet sysban missing", 7},
		{"delete one rule", func(t *testing.T, ns *netNS) []string {
			h := ruleHandle(t, ns, "@web_v4")
			return []string{"nft", "delete", "rule", "inet", DefaultTable, ChainName, "handle", h}
		}, "jail web has 3 of its 4 rules", 0},
		{"flush set", func(t *testing.T, ns *netNS) []string {
			return []string{"nft", "flush", "set", "inet", DefaultTable, "ssh_v4"}
		}, "due bans missing", 3},
		{"delete set", func(t *testing.T, ns *netNS) []string {
			// One transaction, as an admin's script would: the set cannot
			// go while a rule refers to it, and in two commands the guard
			// may put the rule back in between.
			h := ruleHandle(t, ns, "@ssh_v6")
			return []string{"nft", fmt.Sprintf("delete rule inet %s %s handle %s; delete set inet %s ssh_v6", DefaultTable, ChainName, h, DefaultTable)}
		}, "set ssh_v6 missing", 2},
		{"nft -f with flush ruleset", func(t *testing.T, ns *netNS) []string {
			// What "nft -f /etc/nftables.conf" does on Debian: the stock
			// file starts with "flush ruleset" and loads its own table.
			f := t.TempDir() + "/nftables.conf"
			conf := "flush ruleset\n" +
				"table inet filter {\n" +
				"\tchain input { type filter hook input priority filter; policy accept; }\n" +
				"\tchain forward { type filter hook forward priority filter; policy accept; }\n" +
				"}\n"
			if err := os.WriteFile(f, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			return []string{"nft", "-f", f}
		}, "table inet sysban missing", 7},
	}
	// Which check finds the damage is asserted by cause, not by time: the
	// first check that starts after the damage must find it (one check
	// may be under way when the damage lands, and complete without it).
	for _, mode := range []struct {
		name      string
		noMonitor bool
	}{
		// A notification starts a check at once, without waiting for
		// the tick. Should a tick start one in the moment between the
		// damage and its notification, that check finds the damage and
		// the notification's check comes right after it.
		{"monitor", false},
		// Without notifications only the tick (every Interval) starts
		// checks; the confirming re-read of lost elements is part of
		// the check.
		{"reconcile only", true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			for _, d := range damages {
				t.Run(d.name, func(t *testing.T) {
					ns := newNetNS(t, "g")
					b := openIn(t, ns, Options{})
					setup(t, b, sshRule, webRule)
					bans := guardBans(time.Now())
					src := &memSource{}
					src.add(bans...)
					apply(t, b, bans...)
					want := state{rules: ruleLines(t, ns, DefaultTable), bans: bans}
					if ok, why := healthy(b, ns, want); !ok {
						t.Fatalf("not healthy before any damage: %s", why)
					}
					rg := startGuard(t, b, src, GuardOptions{NoMonitor: mode.noMonitor})

					cmd := d.prepare(t, ns)
					// The damage is done by the time nft returns; the
					// repair may well be done before. Detection runs from
					// that return to the start of the check that found
					// the damage, as the guard reports it, so neither
					// nft's start-up, nor the repair (0.9 s for one Setup
					// under load), nor the test's polling (a few nft
					// processes a round) counts against the interval.
					before := rg.checks.Load()
					ns.exec(t, cmd...)
					damaged := time.Now()
					var why string
					deadline := damaged.Add(30 * time.Second)
					for {
						var ok bool
						if ok, why = healthy(b, ns, want); ok {
							break
						}
						if time.Now().After(deadline) {
							t.Fatalf("not healed within 30s: %s", why)
						}
						time.Sleep(10 * time.Millisecond)
					}
					var h heal
					select {
					case h = <-rg.heals:
						found := max(h.found.Sub(damaged), 0)
						t.Logf("HEAL %s / %s: found %v and repaired %v after nft returned, %d checks before", mode.name, d.name,
							found.Round(time.Millisecond), max(h.at.Sub(damaged), 0).Round(time.Millisecond), h.checks-before)
						if missed := h.checks - before; missed > 1 {
							t.Errorf("%d checks completed after the damage before one found it, want at most the one under way", missed)
						}
						if !strings.Contains(h.reason, d.reason) || h.restored != d.restore {
							t.Errorf("OnHeal(%q, %d), want a reason with %q and %d restored", h.reason, h.restored, d.reason, d.restore)
						}
					case <-time.After(30 * time.Second):
						t.Fatal("healed, but OnHeal not called")
					}
					// One damage, one repair: later checks find nothing.
					rg.waitChecks(t, 2)
					if healer, next := rg.trigger(h.checks), rg.trigger(h.checks+1); !mode.noMonitor && healer != "monitor" && healer != "overrun" && next != "monitor" {
						t.Errorf("the damage was found by a %q check, and the next was a %q one: no check came from its notification", healer, next)
					}
					select {
					case h := <-rg.heals:
						t.Errorf("second repair after one damage: %+v", h)
					default:
					}
				})
			}
		})
	}
}

// TestGuardQuietOnOwnChanges checks that the daemon's own work (Apply,
// Remove, a reload that changes the rules) and kernel expiry never look
// like damage, and that a repair after a reload uses the new rules.
func TestGuardQuietOnOwnChanges(t *testing.T) {
	ns := newNetNS(t, "g")
	b := openIn(t, ns, Options{})
	setup(t, b, sshRule)
	src := &memSource{}
	rg := startGuard(t, b, src, GuardOptions{Interval: 200 * time.Millisecond})
	ctx := testCtx(t)

	now := time.Now()
	// The store records a ban before the kernel gets it; the guard must
	// not race the daemon's own Apply.
	for i := range 20 {
		ban := sysban.Ban{Jail: "ssh", Addr: netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}), Start: now, Duration: time.Hour}
		src.add(ban)
		apply(t, b, ban)
	}
	bulk := manyBans("ssh", 5000, now)
	src.add(bulk...)
	apply(t, b, bulk...)
	// Bans that the kernel expires by itself.
	short := []sysban.Ban{
		{Jail: "ssh", Addr: addr("203.0.113.1"), Start: now, Duration: time.Second},
		{Jail: "ssh", Addr: addr("2001:db8:ffff::1"), Start: now, Duration: 1500 * time.Millisecond},
	}
	src.add(short...)
	apply(t, b, short...)
	// Unbans: store first, then the kernel.
	src.remove("ssh", addr("192.0.2.3"))
	if err := b.Remove(ctx, "ssh", singles(addr("192.0.2.3"))); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "short bans to expire", func() bool {
		els := banned(t, b, "ssh")
		_, a := els[addr("203.0.113.1")]
		_, c := els[addr("2001:db8:ffff::1")]
		return !a && !c
	})
	// A reload that changes ssh's port and adds a jail.
	ssh2 := sshRule
	ssh2.Ports = []sysban.PortRange{pr(2222, 2222)}
	setup(t, b, ssh2, webRule)
	rg.waitChecks(t, 5)
	select {
	case h := <-rg.heals:
		t.Fatalf("repair without damage: %+v", h)
	default:
	}
	if n := rg.byMon.Load(); n != 0 {
		t.Errorf("%d checks started by notifications of our own changes", n)
	}

	// Damage after the reload is repaired with the new rules.
	want := ruleLines(t, ns, DefaultTable)
	if want[0] != "tcp dport != { 80, 443, 2222, 8000-8100 } accept" || !strings.Contains(want[2], "dport 2222") || len(want) != 10 {
		t.Fatalf("rules after reload: %v", want)
	}
	ns.exec(t, "nft", "flush", "ruleset")
	select {
	case h := <-rg.heals:
		if h.restored != 5000+20-1 {
			t.Errorf("restored %d bans, want %d", h.restored, 5000+20-1)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("flush ruleset not repaired within 30s")
	}
	if got := ruleLines(t, ns, DefaultTable); !slices.Equal(got, want) {
		t.Errorf("rules after repair:\n%s\nwant the reloaded ones:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if _, gone := banned(t, b, "ssh")[addr("192.0.2.3")]; gone {
		t.Error("the unbanned address came back")
	}
}

// sshTable is a fresh namespace with the ssh jail's table holding the ssh
// bans of guardBans, and a source of the same bans.
func sshTable(t *testing.T) (*netNS, *Backend, []sysban.Ban, *memSource) {
	t.Helper()
	ns := newNetNS(t, "g")
	b := openIn(t, ns, Options{})
	setup(t, b, sshRule)
	bans := guardBans(time.Now())[:5] // the ssh ones
	src := &memSource{}
	src.add(bans...)
	apply(t, b, bans...)
	return ns, b, bans, src
}

// TestGuardBacksOff makes the ban source fail during a repair: the guard
// rebuilds the ruleset, cannot restore the bans, retries with growing
// pauses, and restores them once the source answers again.
func TestGuardBacksOff(t *testing.T) {
	ns, b, bans, src := sshTable(t)
	// Without a generation: the source is read at every check.
	rg := startGuard(t, b, unversioned{src}, GuardOptions{Interval: 100 * time.Millisecond})

	src.set(true)
	before := src.callCount()
	ns.exec(t, "nft", "flush", "ruleset")
	waitFor(t, 30*time.Second, "the ruleset to be rebuilt", func() bool {
		_, err := exec.Command("ip", "netns", "exec", ns.name, "nft", "list", "set", "inet", DefaultTable, "ssh_v4").Output()
		return err == nil
	})
	// Backoff 0.5 s, 1 s, 2 s...: in 3 s at most about 4 attempts, where a
	// loop at the 100 ms interval would make 30.
	t1 := time.Now()
	waitFor(t, 30*time.Second, "3s of failures", func() bool { return time.Since(t1) > 3*time.Second })
	if n := src.callCount() - before; n > 6 {
		t.Errorf("%d reads of the failing source in about 3s: no backoff", n)
	}
	src.set(false)
	want := state{rules: ruleLines(t, ns, DefaultTable), bans: bans}
	waitFor(t, 30*time.Second, "bans restored after the source recovers", func() bool {
		ok, _ := healthy(b, ns, want)
		return ok
	})
	select {
	case h := <-rg.heals:
		if h.restored != len(bans) {
			t.Errorf("restored %d, want %d", h.restored, len(bans))
		}
	case <-time.After(30 * time.Second):
		t.Error("OnHeal not called for the late restore")
	}
}

// TestGuardStops checks that Guard returns soon after its context ends and
// leaves no goroutine behind, and that it refuses a closed Backend.
func TestGuardStops(t *testing.T) {
	ns := newNetNS(t, "g")
	b := openIn(t, ns, Options{})
	setup(t, b, sshRule)
	src := &memSource{}

	before := runtime.NumGoroutine()
	for range 3 { // start and stop repeatedly: leaks would add up
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		checks := make(chan struct{}, 100)
		go func() {
			done <- b.Guard(ctx, src, GuardOptions{checked: func(string) { checks <- struct{}{} }})
		}()
		select {
		case <-checks:
		case <-time.After(30 * time.Second):
			t.Fatal("Guard made no check")
		}
		t0 := time.Now()
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("Guard after cancel: %v", err)
			}
			t.Logf("Guard returned %v after cancel", time.Since(t0))
		case <-time.After(30 * time.Second):
			t.Fatal("Guard did not return within 30s of cancel")
		}
	}
	waitFor(t, 30*time.Second, "guard goroutines to end", func() bool {
		buf := make([]byte, 1<<20)
		stacks := string(buf[:runtime.Stack(buf, true)])
		return runtime.NumGoroutine() <= before && !strings.Contains(stacks, "nft.(*monitor).run")
	})

	// Closing the Backend under a running Guard ends it with an error.
	b2 := openIn(t, ns, Options{})
	setup(t, b2, sshRule)
	done := make(chan error, 1)
	go func() { done <- b2.Guard(context.Background(), src, GuardOptions{Interval: 50 * time.Millisecond}) }()
	if err := b2.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, errClosed) {
			t.Errorf("Guard on a closed backend = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Guard kept running on a closed backend")
	}
	if err := b2.Guard(context.Background(), nil, GuardOptions{}); err == nil {
		t.Error("Guard without a source: no error")
	}
}

// TestObserveWrite checks that every committed batch is reported with its
// operation and element count.
func TestObserveWrite(t *testing.T) {
	ns := newNetNS(t, "g")
	type write struct {
		op    string
		elems int
	}
	var mu sync.Mutex
	var writes []write
	b := openIn(t, ns, Options{ObserveWrite: func(op string, d time.Duration, n int) {
		if d <= 0 {
			t.Errorf("%s write took %v", op, d)
		}
		mu.Lock()
		writes = append(writes, write{op, n})
		mu.Unlock()
	}})
	setup(t, b, sshRule)
	now := time.Now()
	apply(t, b,
		sysban.Ban{Jail: "ssh", Addr: addr("192.0.2.1"), Start: now, Duration: time.Hour},
		sysban.Ban{Jail: "ssh", Addr: addr("2001:db8::1"), Start: now, Duration: time.Hour},
		sysban.Ban{Jail: "ssh", Addr: addr("192.0.2.1"), Start: now, Duration: time.Hour}, // same element
	)
	if err := b.Remove(testCtx(t), "ssh", singles(addr("192.0.2.1"))); err != nil {
		t.Fatal(err)
	}
	// A failed write is not reported as a commit.
	ns.exec(t, "nft", "delete", "table", "inet", DefaultTable)
	if err := b.Apply(testCtx(t), []sysban.Ban{{Jail: "ssh", Addr: addr("192.0.2.9"), Start: now, Duration: time.Hour}}); err == nil {
		t.Fatal("Apply into a deleted table succeeded")
	}
	mu.Lock()
	defer mu.Unlock()
	want := []write{{"setup", 0}, {"apply", 2}, {"remove", 1}}
	if !slices.Equal(writes, want) {
		t.Errorf("writes = %v, want %v", writes, want)
	}
}

// TestGuardHeals100k wipes a table holding 100,000 bans and checks that
// all of them come back; the time it took is logged (the target is 5 s).
func TestGuardHeals100k(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: 100k-element kernel test")
	}
	ns := newNetNS(t, "g")
	b := openIn(t, ns, Options{})
	setup(t, b, sshRule)
	const n = 100_000
	bans := manyBans("ssh", n, time.Now())
	src := &memSource{}
	src.add(bans...)
	apply(t, b, bans...)
	rg := startGuard(t, b, src, GuardOptions{})

	t0 := time.Now()
	ns.exec(t, "nft", "flush", "ruleset")
	select {
	case h := <-rg.heals:
		t.Logf("HEAL 100k / flush ruleset: repaired after %v, %d bans restored", time.Since(t0).Round(time.Millisecond), h.restored)
		if h.restored != n {
			t.Errorf("restored %d, want %d", h.restored, n)
		}
	case <-time.After(30 * time.Second):
		// The 5 s target is the figure logged above, here and in the
		// e2e heal test (TestHeal*); with the package's neighbours
		// loading both cores under -race, only a repair that never comes
		// fails.
		t.Fatal("not repaired within 30s")
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Logf("repair took %v, over the 5 s target: a loaded machine, or a regression to look at", took)
	}
	if got := banned(t, b, "ssh"); len(got) != n {
		t.Errorf("%d banned after the repair, want %d", len(got), n)
	}
}

// TestDumpKeysMatchesLibrary checks the Guard's own element reader against
// nftables.Conn.GetSetElements on real sets: IPv4 and IPv6, permanent and
// timed elements, enough of them for a dump of many parts, an empty set,
// and bans that end while the sets are read twice.
func TestDumpKeysMatchesLibrary(t *testing.T) {
	ns := newNetNS(t, "a")
	b := openIn(t, ns, Options{})
	ctx := testCtx(t)
	if err := b.Setup(ctx, []sysban.JailRule{sshRule, webRule}); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	bans := manyBans("ssh", 5000, now)
	for i := range 50 { // a few that end during the test
		bans = append(bans, sysban.Ban{Jail: "ssh", Addr: netip.AddrFrom4([4]byte{172, 16, 0, byte(i)}), Start: now, Duration: time.Second})
	}
	if err := b.Apply(ctx, bans); err != nil {
		t.Fatal(err)
	}
	g := &guard{b: b, src: &memSource{}, log: b.log}
	if err := g.openReader(); err != nil {
		t.Fatal(err)
	}
	defer g.closeReader()
	for round := range 2 {
		if round == 1 {
			time.Sleep(1500 * time.Millisecond)
		}
		for _, s := range []*nftables.Set{b.jails["ssh"].v4, b.jails["ssh"].v6, b.jails["web"].v4} {
			var got, want [][16]byte
			err := g.read(ctx, func(c *nftables.Conn) error {
				var err error
				if got, err = g.dumpKeys(ctx, s, nil); err != nil {
					return err
				}
				elems, err := c.GetSetElements(s)
				for _, e := range elems {
					if el, ok := toElement(e); ok {
						want = append(want, el.Addr.As16())
					}
				}
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
			slices.SortFunc(want, func(x, y [16]byte) int { return bytes.Compare(x[:], y[:]) })
			if !slices.Equal(got, want) {
				t.Errorf("round %d, set %s: own reader %d keys, library %d", round, s.Name, len(got), len(want))
			}
			if s.Name == b.jails["ssh"].v4.Name && len(got) < 2500 {
				t.Errorf("round %d: set %s holds %d keys, want at least 2500", round, s.Name, len(got))
			}
		}
	}
}

// TestGuardSkipsOnlyWhatDidNotChange: with a source that has a generation,
// checks read neither the source nor the sets while nothing changed, and
// still find, within the interval, a ban the source gained that the kernel
// lacks (only the source moved), an element deleted behind the Guard's
// back and a flushed set (only the kernel moved; no monitor to tell).
func TestGuardSkipsOnlyWhatDidNotChange(t *testing.T) {
	ns, b, bans, src := sshTable(t)
	const interval = 100 * time.Millisecond
	rg := startGuard(t, b, src, GuardOptions{Interval: interval, NoMonitor: true})
	// The first check after a start compares everything; the reconcile's
	// element checks are paced, so wait until one was clean.
	waitFor(t, 10*time.Second, "a clean element check", func() bool {
		rg.waitChecks(t, 1)
		g := src.callCount()
		rg.waitChecks(t, 5)
		return src.callCount() == g
	})
	reads := src.callCount()
	rg.waitChecks(t, 10)
	if n := src.callCount() - reads; n != 0 {
		t.Errorf("%d reads of an unchanged source in 10 checks", n)
	}

	healWithin := func(what string, want state) {
		t.Helper()
		t0 := time.Now()
		select {
		case h := <-rg.heals:
			t.Logf("%s: repaired after %v (%s)", what, time.Since(t0).Round(time.Millisecond), h.reason)
		case <-time.After(interval + 5*time.Second):
			t.Fatalf("%s: not repaired", what)
		}
		if ok, why := healthy(b, ns, want); !ok {
			t.Errorf("%s: after the repair: %s", what, why)
		}
	}
	// The source gains a ban the kernel never got: only the source moved.
	extra := sysban.Ban{Jail: "ssh", Addr: netip.MustParseAddr("198.51.100.77"), Start: time.Now(), Duration: time.Hour}
	src.add(extra)
	all := append(slices.Clone(bans), extra)
	healWithin("a ban stored but not in the kernel", state{rules: ruleLines(t, ns, DefaultTable), bans: all})

	// An element deleted by someone else: only the kernel moved.
	rg.waitChecks(t, 3)
	ns.exec(t, "nft", "delete", "element", "inet", DefaultTable, "ssh_v4", "{ "+bans[0].Addr.String()+" }")
	healWithin("an element deleted", state{rules: ruleLines(t, ns, DefaultTable), bans: all})

	rg.waitChecks(t, 3)
	ns.exec(t, "nft", "flush", "set", "inet", DefaultTable, "ssh_v4")
	healWithin("a flushed set", state{rules: ruleLines(t, ns, DefaultTable), bans: all})
}

// TestGuardDefersElementsWhileApplying: while Applies stream (a storm of
// bans), the reconcile does not dump the sets to compare elements, for at
// most the deferral's cap; once they stop, or the cap is reached, an
// element deleted behind the Guard's back (no monitor to tell) is found.
func TestGuardDefersElementsWhileApplying(t *testing.T) {
	for _, tc := range []struct {
		name      string
		elemDefer time.Duration
		stopAfter time.Duration // the storm's length
	}{
		{"storm ends", time.Hour, 1500 * time.Millisecond},
		{"cap reached", 1500 * time.Millisecond, time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ns, b, bans, src := sshTable(t)
			const interval = 100 * time.Millisecond
			rg := startGuard(t, b, src, GuardOptions{Interval: interval, NoMonitor: true, elemDefer: tc.elemDefer})
			rg.waitChecks(t, 3)
			ctx, stop := context.WithCancel(context.Background())
			defer stop()
			storm, began := make(chan struct{}), time.Now()
			go func() {
				defer close(storm)
				end := time.After(tc.stopAfter)
				for i := 0; ; i++ {
					ban := sysban.Ban{Jail: "ssh", Addr: netip.AddrFrom4([4]byte{198, 18, byte(i >> 8), byte(i)}), Start: time.Now(), Duration: time.Hour}
					if err := b.Apply(ctx, []sysban.Ban{ban}); err != nil && ctx.Err() == nil {
						t.Errorf("apply: %v", err)
						return
					}
					select {
					case <-ctx.Done():
						return
					case <-end:
						return
					case <-time.After(50 * time.Millisecond):
					}
				}
			}()
			time.Sleep(200 * time.Millisecond)
			ns.exec(t, "nft", "delete", "element", "inet", DefaultTable, "ssh_v4", "{ "+bans[0].Addr.String()+" }")
			select {
			case h := <-rg.heals:
				// The storm ends, or the cap is reached, 1.5 s after it
				// began; without the deferral the repair came 0.5-0.6 s
				// after the storm began.
				took := time.Since(began)
				if took < 1200*time.Millisecond {
					t.Errorf("repaired %v after the storm began, while it went on (%s)", took.Round(time.Millisecond), h.reason)
				}
				t.Logf("repaired %v after the storm began (%s)", took.Round(time.Millisecond), h.reason)
			case <-time.After(10 * time.Second):
				t.Fatal("the deleted element was not restored")
			}
			stop()
			<-storm
		})
	}
}
