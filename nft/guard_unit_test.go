package nft

import (
	"encoding/binary"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	sysban "github.com/sysban/sysban"
	"golang.org/x/sys/unix"
)

// Unit tests of Guard's pure parts; no root needed.

// notification builds an nf_tables notification as the kernel sends it.
func notification(t testing.TB, typ int, pid uint32, family byte, table string) netlink.Message {
	t.Helper()
	data := []byte{family, unix.NFNETLINK_V0, 0, 0}
	if table != "" {
		ae := netlink.NewAttributeEncoder()
		ae.String(unix.NFTA_TABLE_NAME, table)
		ae.String(2, "other") // chain/set/rule name attributes follow
		b, err := ae.Encode()
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, b...)
	}
	return netlink.Message{
		Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | typ), PID: pid},
		Data:   data,
	}
}

func TestForeignChange(t *testing.T) {
	const self = 4242
	inet := byte(unix.NFPROTO_INET)
	tests := []struct {
		name string
		msg  netlink.Message
		want bool
	}{
		{"table deleted by nft", notification(t, unix.NFT_MSG_DELTABLE, 99, inet, "sysban"), true},
		{"chain deleted", notification(t, unix.NFT_MSG_DELCHAIN, 99, inet, "sysban"), true},
		{"rule deleted", notification(t, unix.NFT_MSG_DELRULE, 99, inet, "sysban"), true},
		{"rule added", notification(t, unix.NFT_MSG_NEWRULE, 99, inet, "sysban"), true},
		{"set deleted", notification(t, unix.NFT_MSG_DELSET, 99, inet, "sysban"), true},
		{"elements deleted", notification(t, unix.NFT_MSG_DELSETELEM, 99, inet, "sysban"), true},
		{"kernel (port 0)", notification(t, unix.NFT_MSG_DELSETELEM, 0, inet, "sysban"), true},
		{"our own change", notification(t, unix.NFT_MSG_DELTABLE, self, inet, "sysban"), false},
		{"elements added", notification(t, unix.NFT_MSG_NEWSETELEM, 99, inet, "sysban"), false},
		{"generation", notification(t, unix.NFT_MSG_NEWGEN, 99, 0, ""), false},
		{"other table", notification(t, unix.NFT_MSG_DELTABLE, 99, inet, "filter"), false},
		{"same name, ip family", notification(t, unix.NFT_MSG_DELTABLE, 99, unix.NFPROTO_IPV4, "sysban"), false},
		{"prefix of the name", notification(t, unix.NFT_MSG_DELTABLE, 99, inet, "sysba"), false},
		{"no table attribute", notification(t, unix.NFT_MSG_DELTABLE, 99, inet, ""), false},
		{"truncated header", netlink.Message{Header: netlink.Header{Type: unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_DELTABLE}, Data: []byte{1}}, true},
		{"broken attributes", netlink.Message{Header: netlink.Header{Type: unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_DELRULE}, Data: []byte{1, 0, 0, 0, 200, 0, 1}}, true},
		{"other subsystem", netlink.Message{Header: netlink.Header{Type: unix.NFNL_SUBSYS_CTNETLINK<<8 | unix.NFT_MSG_DELTABLE}, Data: []byte{1, 0, 0, 0}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := foreignChange(tt.msg, "sysban", self); got != tt.want {
				t.Errorf("foreignChange = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzForeignChange feeds arbitrary notification bodies (bytes from the
// kernel, shaped by whoever changed the ruleset): never a panic, and a
// message of ours or of another subsystem is never a foreign change.
func FuzzForeignChange(f *testing.F) {
	for _, m := range []netlink.Message{
		notification(f, unix.NFT_MSG_DELTABLE, 1, unix.NFPROTO_INET, "sysban"),
		notification(f, unix.NFT_MSG_DELSETELEM, 1, unix.NFPROTO_INET, "filter"),
	} {
		f.Add(uint16(m.Header.Type), m.Header.PID, m.Data)
	}
	f.Add(uint16(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_DELRULE), uint32(7), []byte{1, 0, 0, 0, 4, 0})
	f.Fuzz(func(t *testing.T, typ uint16, pid uint32, data []byte) {
		msg := netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(typ), PID: pid}, Data: data}
		got := foreignChange(msg, "sysban", 5)
		if got && (pid == 5 || typ>>8 != unix.NFNL_SUBSYS_NFTABLES) {
			t.Fatalf("foreignChange(type %#x, pid %d) = true", typ, pid)
		}
	})
}

// TestForeignIn reads datagrams as the kernel packs a transaction's
// notifications: several messages, any one of them foreign enough.
func TestForeignIn(t *testing.T) {
	datagram := func(msgs ...netlink.Message) []byte {
		var out []byte
		for _, m := range msgs {
			m.Header.Length = uint32(unix.NLMSG_HDRLEN + len(m.Data))
			b, err := m.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b...)
		}
		return out
	}
	const self = 5
	ownAdd := notification(t, unix.NFT_MSG_NEWSETELEM, self, unix.NFPROTO_INET, "sysban")
	otherAdd := notification(t, unix.NFT_MSG_NEWSETELEM, 9, unix.NFPROTO_INET, "sysban")
	otherDel := notification(t, unix.NFT_MSG_DELSETELEM, 9, unix.NFPROTO_INET, "sysban")
	otherTable := notification(t, unix.NFT_MSG_DELSETELEM, 9, unix.NFPROTO_INET, "filter")
	tests := []struct {
		name string
		b    []byte
		want bool
	}{
		{"our additions", datagram(ownAdd, ownAdd, ownAdd), false},
		{"additions by others", datagram(otherAdd, ownAdd), false},
		{"a deletion behind additions", datagram(ownAdd, otherAdd, otherDel), true},
		{"a deletion in another table", datagram(otherTable, otherAdd), false},
		{"empty", nil, false},
		{"truncated header", datagram(ownAdd)[:10], true},
		{"length past the end", append(datagram(ownAdd), 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := foreignIn(tt.b, "sysban", self); got != tt.want {
				t.Errorf("foreignIn = %v, want %v", got, tt.want)
			}
		})
	}
}

// FuzzForeignIn: any datagram, never a panic.
func FuzzForeignIn(f *testing.F) {
	m := notification(f, unix.NFT_MSG_DELSETELEM, 9, unix.NFPROTO_INET, "sysban")
	m.Header.Length = uint32(unix.NLMSG_HDRLEN + len(m.Data))
	b, err := m.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add(append(b, b...))
	f.Fuzz(func(t *testing.T, b []byte) { foreignIn(b, "sysban", 5) })
}

func TestMissingBans(t *testing.T) {
	now := time.Date(2026, 11, 21, 12, 0, 0, 0, time.UTC)
	jails := map[string]*jailSets{
		"ssh": {v4: &nftables.Set{Name: "ssh_v4"}, v6: &nftables.Set{Name: "ssh_v6"}},
	}
	ban := func(a string, start time.Duration, d time.Duration) sysban.Ban {
		return sysban.Ban{Jail: "ssh", Addr: netip.MustParseAddr(a), Start: now.Add(start), Duration: d}
	}
	kernel := map[string][]netip.Addr{
		"ssh_v4": {addr("192.0.2.1"), addr("192.0.2.9")},
		"ssh_v6": {addr("2001:db8::1")},
	}
	tests := []struct {
		name string
		due  []sysban.Ban
		want map[string]time.Duration // missing address -> its ban's duration
	}{
		{"all present", []sysban.Ban{ban("192.0.2.1", 0, time.Hour), ban("2001:db8::1", 0, sysban.Permanent)}, nil},
		{"mapped address found in the v4 set", []sysban.Ban{ban("::ffff:192.0.2.1", 0, time.Hour)}, nil},
		{"missing v4 and v6", []sysban.Ban{ban("192.0.2.2", 0, time.Hour), ban("2001:db8::2", 0, sysban.Permanent)},
			map[string]time.Duration{"192.0.2.2": time.Hour, "2001:db8::2": sysban.Permanent}},
		{"v4 address looked for in the v4 set only", []sysban.Ban{ban("2001:db8::1", 0, time.Hour), ban("192.0.2.1", 0, time.Hour)}, nil},
		// The kernel may have expired it already: not missing.
		{"ends within the margin", []sysban.Ban{ban("192.0.2.3", -time.Hour, time.Hour+expiryMargin/2)}, nil},
		{"ends just after the margin", []sysban.Ban{ban("192.0.2.3", -time.Hour, time.Hour+2*expiryMargin)},
			map[string]time.Duration{"192.0.2.3": time.Hour + 2*expiryMargin}},
		{"unknown jail", []sysban.Ban{{Jail: "gone", Addr: addr("192.0.2.4"), Start: now, Duration: time.Hour}}, nil},
		{"invalid address", []sysban.Ban{{Jail: "ssh", Start: now, Duration: time.Hour}}, nil},
		{"longest of two wins", []sysban.Ban{ban("192.0.2.5", 0, time.Minute), ban("192.0.2.5", 0, sysban.Permanent), ban("192.0.2.5", 0, time.Hour)},
			map[string]time.Duration{"192.0.2.5": sysban.Permanent}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := missingBans(tt.due, jails, kernel, now)
			if len(got) != len(tt.want) {
				t.Fatalf("missing = %v, want %v", got, tt.want)
			}
			for a, d := range tt.want {
				b, ok := got[banKey{"ssh", netip.PrefixFrom(addr(a), addr(a).BitLen())}]
				if !ok || b.Duration != d {
					t.Errorf("missing[%s] = %+v (%v), want duration %v", a, b, ok, d)
				}
			}
		})
	}
}

func TestRulesDiffer(t *testing.T) {
	reject := sysban.JailRule{Name: "web", Protocol: sysban.All, Verdict: sysban.Reject} // 2 rules per family and set kind
	rules := []sysban.JailRule{sshRule, reject}
	c := func(n int, s string) []string { return slices.Repeat([]string{s}, n) }
	join := slices.Concat[[]string]
	jails := join(c(4, "sysban jail ssh"), c(8, "sysban jail web"))
	// The gates some other set of rules would have (web covers every
	// port, so these rules have none, see TestGates).
	twoGates := []string{"sysban gate tcp", "sysban gate udp"}
	tests := []struct {
		name     string
		gates    []string
		comments []string
		want     []string
	}{
		{"intact", nil, jails, nil},
		{"one rule gone", nil, join(c(3, "sysban jail ssh"), c(8, "sysban jail web")), []string{"jail ssh has 3 of its 4 rules"}},
		{"chain flushed", nil, nil, []string{"jail ssh has 0 of its 4 rules", "jail web has 0 of its 8 rules"}},
		{"rule doubled", nil, join(c(5, "sysban jail ssh"), c(8, "sysban jail web")), []string{"jail ssh has 5 of its 4 rules"}},
		{"foreign rule", nil, join(c(1, ""), jails), []string{"1 foreign rules in chain input"}},
		{"rule of a removed jail", nil, join(jails, c(2, "sysban jail old")), []string{"2 foreign rules in chain input"}},
		{"gates intact", twoGates, join(twoGates, jails), nil},
		{"gate gone", twoGates, join(twoGates[:1], jails), []string{`0 of 1 rule "sysban gate udp"`}},
		{"gate doubled", twoGates, join(twoGates, twoGates[1:], jails), []string{`2 of 1 rule "sysban gate udp"`}},
		// A gate where none belongs (a jail with all ports added since)
		// would let that jail's banned traffic through.
		{"gate not expected", twoGates[:1], join(twoGates, jails), []string{"1 foreign rules in chain input"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := rulesDiffer(rules, tt.gates, tt.comments)
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("rulesDiffer = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSetsDiffer(t *testing.T) {
	good := func(name string, kt nftables.SetDatatype) *nftables.Set {
		return &nftables.Set{Name: name, KeyType: kt, HasTimeout: true}
	}
	v4, v6 := good("ssh_v4", nftables.TypeIPAddr), good("ssh_v6", nftables.TypeIP6Addr)
	v4net, v6net := good("ssh_v4net", nftables.TypeIPAddr), good("ssh_v6net", nftables.TypeIP6Addr)
	v4net.Interval, v6net.Interval = true, true
	noTimeout := &nftables.Set{Name: "ssh_v4", KeyType: nftables.TypeIPAddr}
	anon := &nftables.Set{Name: "ssh_v6", KeyType: nftables.TypeIP6Addr, HasTimeout: true, Anonymous: true}
	tests := []struct {
		name string
		sets []*nftables.Set
		want string
	}{
		{"intact", []*nftables.Set{v4, v6, v4net, v6net, good("junk", nftables.TypeIPAddr)}, ""},
		{"v6 missing", []*nftables.Set{v4, v4net, v6net}, "set ssh_v6 missing"},
		{"all missing", nil, "set ssh_v4 missing|set ssh_v6 missing|set ssh_v4net missing|set ssh_v6net missing"},
		{"recreated without timeout", []*nftables.Set{noTimeout, v6, v4net, v6net}, "set ssh_v4 changed shape"},
		{"prefix set recreated without interval", []*nftables.Set{v4, v6, v4net, good("ssh_v6net", nftables.TypeIP6Addr)}, "set ssh_v6net changed shape"},
		{"an anonymous set of that name is not it", []*nftables.Set{v4, anon, v4net, v6net}, "set ssh_v6 missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(setsDiffer([]sysban.JailRule{sshRule}, tt.sets), "|"); got != tt.want {
				t.Errorf("setsDiffer = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestChainDiffers(t *testing.T) {
	accept, drop := nftables.ChainPolicyAccept, nftables.ChainPolicyDrop
	good := func() *nftables.Chain {
		return &nftables.Chain{Name: ChainName, Hooknum: nftables.ChainHookInput,
			Priority: nftables.ChainPriorityRef(-10), Type: nftables.ChainTypeFilter, Policy: &accept}
	}
	with := func(f func(*nftables.Chain)) *nftables.Chain { c := good(); f(c); return c }
	tests := []struct {
		name string
		ch   *nftables.Chain
		want string
	}{
		{"intact", good(), ""},
		{"regular chain", with(func(c *nftables.Chain) { c.Hooknum, c.Priority, c.Policy = nil, nil, nil }), "not on the input hook"},
		{"forward hook", with(func(c *nftables.Chain) { c.Hooknum = nftables.ChainHookForward }), "not on the input hook"},
		{"priority", with(func(c *nftables.Chain) { c.Priority = nftables.ChainPriorityFilter }), "another priority"},
		{"type", with(func(c *nftables.Chain) { c.Type = nftables.ChainTypeNAT }), "another type"},
		{"policy drop", with(func(c *nftables.Chain) { c.Policy = &drop }), "policy is not accept"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := chainDiffers(tt.ch, -10)
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("chainDiffers = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	tests := []struct {
		n    int
		want time.Duration
	}{
		{1, minBackoff},
		{2, 2 * minBackoff},
		{3, 4 * minBackoff},
		{7, 32 * time.Second},
		{8, maxBackoff},
		{1000, maxBackoff},
	}
	for _, tt := range tests {
		want := min(tt.want, maxBackoff)
		if got := backoff(tt.n); got != want {
			t.Errorf("backoff(%d) = %v, want %v", tt.n, got, want)
		}
	}
}

// TestHealStreakPauses checks the pacing against a fight with another
// firewall manager: two quick repairs pass, from the third on the checks
// pause, twice as long each time up to maxHealPause, and a repair long
// after the last one starts afresh.
func TestHealStreakPauses(t *testing.T) {
	b := &Backend{log: slog.New(slog.DiscardHandler), table: &nftables.Table{Name: "sysban"}}
	var reported []int
	clock := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
	g := &guard{b: b, log: b.log, now: func() time.Time { return clock },
		opts: GuardOptions{Interval: 2 * time.Second, OnHeal: func(_ string, n int) { reported = append(reported, n) }}}
	want := []time.Duration{0, 0, 2 * time.Second, 4 * time.Second, maxHealPause, maxHealPause, maxHealPause}
	for i, w := range want {
		clock = clock.Add(time.Second)
		g.notBefore = time.Time{}
		g.healed("monitor", "test", i, clock)
		var got time.Duration
		if !g.notBefore.IsZero() {
			got = g.notBefore.Sub(clock)
		}
		if got != w {
			t.Errorf("repair %d: pause %v, want %v", i+1, got, w)
		}
	}
	if len(reported) != len(want) || reported[3] != 3 {
		t.Errorf("OnHeal got %v", reported)
	}
	// Long after the streak, a repair does not pause.
	clock = clock.Add(healStreakGap + time.Second)
	g.notBefore = time.Time{}
	g.healed("reconcile", "test", 0, clock)
	if !g.notBefore.IsZero() || g.streak != 1 {
		t.Errorf("after a quiet spell: streak %d, pause until %v", g.streak, g.notBefore)
	}
}

// TestHealDelayBounded replays schedules of damage against the repair
// pacing on an injected clock, as the run loop applies it: a check starts
// at the damage's notification (or, without notifications, at the next
// reconcile tick), not before notBefore nor minCheckGap after the last
// check, and repairs every damage done before it started. Damage at most
// every 10 s is repaired within 2 s, any damage within 15 s.
func TestHealDelayBounded(t *testing.T) {
	const interval = DefaultGuardInterval
	every := func(d time.Duration) func(int) time.Duration { return func(int) time.Duration { return d } }
	rng := rand.New(rand.NewPCG(1, 2))
	random := func(lo, hi time.Duration) func(int) time.Duration {
		return func(int) time.Duration { return lo + time.Duration(rng.Int64N(int64(hi-lo))) }
	}
	// A repair's time (tests measured 50 to 100 ms; a big one more),
	// shrinking 500 ms -> 50 ms over and over: repairs of damage 10 s
	// apart come just under healStreakGap apart, so the streak grows.
	repairTakes := func(i int) time.Duration { return 500*time.Millisecond - time.Duration(i%10)*50*time.Millisecond }
	tests := []struct {
		name      string
		gap       func(i int) time.Duration // before damage i
		noMonitor bool
		bound     time.Duration
	}{
		{"every 10s", every(10 * time.Second), false, 2 * time.Second},
		{"every 10s, no notifications", every(10 * time.Second), true, 2*time.Second + interval},
		{"10 to 30s apart", random(10*time.Second, 30*time.Second), false, 2 * time.Second},
		{"every 1s", every(time.Second), false, 15 * time.Second},
		{"every 100ms", every(100 * time.Millisecond), false, 15 * time.Second},
		{"every 1s, no notifications", every(time.Second), true, 15 * time.Second},
		{"0 to 20s apart", random(0, 20*time.Second), false, 15 * time.Second},
		{"0 to 20s apart, no notifications", random(0, 20*time.Second), true, 15 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			start := time.Date(2026, 12, 6, 10, 0, 0, 0, time.UTC)
			clock := start
			b := &Backend{log: slog.New(slog.DiscardHandler), table: &nftables.Table{Name: "sysban"}}
			g := &guard{b: b, log: b.log, now: func() time.Time { return clock }, opts: GuardOptions{Interval: interval}}
			damage := make([]time.Time, 300)
			at := start
			for i := range damage {
				at = at.Add(tt.gap(i))
				damage[i] = at
			}
			var worst time.Duration
			var lastCheck time.Time
			repairs := 0
			for i := 0; i < len(damage); repairs++ {
				check := later(later(damage[i], g.notBefore), clock)
				if tt.noMonitor {
					// The next reconcile tick at or after check.
					ticks := (check.Sub(start) + interval - 1) / interval
					check = start.Add(ticks * interval)
				} else if !lastCheck.IsZero() {
					check = later(check, lastCheck.Add(minCheckGap))
				}
				clock = check.Add(repairTakes(repairs))
				lastCheck = clock
				g.healed("monitor", "test", 0, check)
				for ; i < len(damage) && !damage[i].After(check); i++ {
					worst = max(worst, clock.Sub(damage[i]))
				}
			}
			t.Logf("%d damages, %d repairs, longest %v to repair; streak %d", len(damage), repairs, worst, g.streak)
			if worst > tt.bound {
				t.Errorf("a damage waited %v for its repair, want at most %v", worst, tt.bound)
			}
		})
	}
}

// elementMessage is an element dump message as the kernel sends it, with
// one IPv4 element (192.0.2.1) with a timeout and an expiration.
func elementMessage() netlink.Message {
	elem := []byte{
		0x0c, 0x00, 0x01, 0x80, 0x08, 0x00, 0x01, 0x00, 192, 0, 2, 1, // key { value }
		0x0c, 0x00, 0x04, 0x00, 0, 0, 0, 0, 0, 0, 0x0e, 0x10, // timeout
		0x0c, 0x00, 0x05, 0x00, 0, 0, 0, 0, 0, 0, 0x0e, 0x00, // expiration
	}
	list := append([]byte{byte(4 + len(elem)), 0x00, 0x01, 0x80}, elem...)
	data := append([]byte{2, 0, 0, 0, byte(4 + len(list)), 0x00, 0x03, 0x80}, list...)
	return netlink.Message{Header: netlink.Header{Type: netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_NEWSETELEM)}, Data: data}
}

func TestElementKeys(t *testing.T) {
	keys, err := appendElementKeys(nil, elementMessage())
	if err != nil || len(keys) != 1 || netip.AddrFrom16(keys[0]).Unmap() != netip.MustParseAddr("192.0.2.1") {
		t.Fatalf("keys %x, err %v", keys, err)
	}
	m := elementMessage()
	m.Data[len(m.Data)-1] = 0 // expiration 0: expired, not yet collected
	m.Data[len(m.Data)-2] = 0
	if keys, err := appendElementKeys(nil, m); err != nil || len(keys) != 0 {
		t.Fatalf("expired element: keys %x, err %v", keys, err)
	}
	m = elementMessage()
	m.Data = m.Data[:len(m.Data)-3] // cut inside an attribute
	if _, err := appendElementKeys(nil, m); err == nil {
		t.Fatal("truncated message accepted")
	}
}

// FuzzElementKeys feeds arbitrary bytes as an element dump message: the
// Guard's reader must never panic, and every key it keeps is an address.
func FuzzElementKeys(f *testing.F) {
	f.Add(elementMessage().Data)
	f.Add([]byte{2, 0, 0, 0, 3, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		m := elementMessage()
		m.Data = data
		keys, err := appendElementKeys(nil, m)
		if err != nil {
			return
		}
		for _, k := range keys {
			if !netip.AddrFrom16(k).IsValid() {
				t.Fatalf("key %x", k)
			}
		}
	})
}

// TestDumpKeys reads element dump datagrams as the kernel sends them:
// elements, then NLMSG_DONE; an error answer; a message of another
// request; a malformed datagram.
func TestDumpKeys(t *testing.T) {
	const seq = 7
	msg := func(m netlink.Message, s uint32) []byte {
		m.Header.Sequence = s
		m.Header.Flags |= netlink.Multi
		m.Header.Length = uint32(unix.NLMSG_HDRLEN + len(m.Data))
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	done := msg(netlink.Message{Header: netlink.Header{Type: netlink.Done}, Data: []byte{0, 0, 0, 0}}, seq)
	errno := make([]byte, 4)
	code := -int32(unix.ENOENT)
	binary.NativeEndian.PutUint32(errno, uint32(code))
	failed := msg(netlink.Message{Header: netlink.Header{Type: netlink.Error}, Data: errno}, seq)
	elems := msg(elementMessage(), seq)
	tests := []struct {
		name    string
		b       []byte
		keys    int
		done    bool
		wantErr error
	}{
		{"elements", append(slices.Clone(elems), elems...), 2, false, nil},
		{"elements then done", append(slices.Clone(elems), done...), 1, true, nil},
		{"another request's", msg(elementMessage(), seq+1), 0, false, nil},
		{"set missing", failed, 0, false, unix.ENOENT},
		{"truncated", elems[:len(elems)-2], 0, false, errBadElements},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			keys, d, err := appendDumpKeys(nil, tt.b, seq)
			if len(keys) != tt.keys || d != tt.done || !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Errorf("got %d keys, done %v, err %v; want %d, %v, %v", len(keys), d, err, tt.keys, tt.done, tt.wantErr)
			}
		})
	}
}

// FuzzDumpKeys: any datagram, never a panic.
func FuzzDumpKeys(f *testing.F) {
	m := elementMessage()
	m.Header.Length = uint32(unix.NLMSG_HDRLEN + len(m.Data))
	b, err := m.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Fuzz(func(t *testing.T, b []byte) { _, _, _ = appendDumpKeys(nil, b, 0) })
}
