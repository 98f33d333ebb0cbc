package nft

import (
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	sysban "github.com/sysban/sysban"
)

// udpSink counts the datagrams its listeners received, by payload.
type udpSink struct {
	mu  sync.Mutex
	got map[string]bool
}

func (s *udpSink) seen(token string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.got[token]
}

// listenUDP receives datagrams on addr in ns into s until the test ends.
func (s *udpSink) listenUDP(t *testing.T, ns *netNS, network, addr string) {
	t.Helper()
	pc := listenIn(t, ns, func() (net.PacketConn, error) { return net.ListenPacket(network, addr) })
	go func() {
		buf := make([]byte, 256)
		for {
			n, _, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.mu.Lock()
			s.got[string(buf[:n])] = true
			s.mu.Unlock()
		}
	}()
}

// listenIn opens a socket in ns with listen and closes it when the test
// ends.
func listenIn[C io.Closer](t *testing.T, ns *netNS, listen func() (C, error)) C {
	t.Helper()
	var c C
	err := inNetNS(ns, func() error {
		var err error
		c, err = listen()
		return err
	})
	if err != nil {
		t.Fatalf("listen in %s: %v", ns.name, err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

// listenTCP accepts and closes connections on addr in ns until the test
// ends.
func listenTCP(t *testing.T, ns *netNS, network, addr string) {
	t.Helper()
	ln := listenIn(t, ns, func() (net.Listener, error) { return net.Listen(network, addr) })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			_ = c.Close()
		}
	}()
}

// udpReaches sends datagrams from local to remote in ns, one every 100 ms
// for up to wait, and reports whether one arrived.
func udpReaches(ns *netNS, sink *udpSink, local netip.Addr, remote netip.AddrPort, wait time.Duration) (bool, error) {
	token := fmt.Sprintf("%v>%v@%d", local, remote, time.Now().UnixNano())
	var conn *net.UDPConn
	err := inNetNS(ns, func() error {
		var err error
		conn, err = net.DialUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(local, 0)), net.UDPAddrFromAddrPort(remote))
		return err
	})
	if err != nil {
		return false, err
	}
	defer conn.Close()
	deadline := time.Now().Add(wait)
	for {
		// A write fails only when an earlier datagram drew an ICMP
		// error; the next one is sent regardless.
		_, _ = conn.Write([]byte(token))
		for range 10 {
			if sink.seen(token) {
				return true, nil
			}
			time.Sleep(10 * time.Millisecond)
		}
		if time.Now().After(deadline) {
			return false, nil
		}
	}
}

// matchNet is a server namespace with a veth pair to a client namespace
// holding, per family, a single banned address, an unbanned one, and one
// inside a banned prefix; the server serves every port of ports over TCP
// and UDP, IPv4 and IPv6, so a rule that ignored its transport would show.
type matchNet struct {
	srv, cli               *netNS
	sink                   *udpSink
	srv4, srv6             netip.Addr
	single4, good4, inNet4 netip.Addr
	single6, good6, inNet6 netip.Addr
	net4, net6             netip.Prefix
}

// matchPath is one kind of packet a matchNet sends.
type matchPath struct {
	proto    string // "tcp" or "udp"
	from, to netip.Addr
	port     uint16
}

func newMatchNet(t *testing.T, ports ...int) *matchNet {
	t.Helper()
	m := &matchNet{
		srv: newNetNS(t, "s"), cli: newNetNS(t, "c"), sink: &udpSink{got: map[string]bool{}},
		srv4: addr("10.98.0.1"), srv6: addr("fd98::1"),
		single4: addr("10.98.0.2"), good4: addr("10.98.0.3"), inNet4: addr("10.98.0.130"),
		single6: addr("fd98::2"), good6: addr("fd98::3"), inNet6: addr("fd98::105"),
		net4: netip.MustParsePrefix("10.98.0.128/25"), net6: netip.MustParsePrefix("fd98::100/120"),
	}
	srv, cli := m.srv, m.cli
	srv.exec(t, "ip", "link", "add", "vs", "type", "veth", "peer", "name", "vc", "netns", cli.name)
	srv.exec(t, "ip", "addr", "add", "10.98.0.1/24", "dev", "vs")
	srv.exec(t, "ip", "addr", "add", "fd98::1/64", "dev", "vs", "nodad")
	srv.exec(t, "ip", "link", "set", "vs", "up")
	for _, a := range []netip.Addr{m.single4, m.good4, m.inNet4} {
		cli.exec(t, "ip", "addr", "add", a.String()+"/24", "dev", "vc")
	}
	for _, a := range []netip.Addr{m.single6, m.good6, m.inNet6} {
		cli.exec(t, "ip", "addr", "add", a.String()+"/64", "dev", "vc", "nodad")
	}
	cli.exec(t, "ip", "link", "set", "vc", "up")
	for _, port := range ports {
		listenTCP(t, srv, "tcp4", fmt.Sprintf("0.0.0.0:%d", port))
		listenTCP(t, srv, "tcp6", fmt.Sprintf("[::]:%d", port))
		m.sink.listenUDP(t, srv, "udp4", fmt.Sprintf("0.0.0.0:%d", port))
		m.sink.listenUDP(t, srv, "udp6", fmt.Sprintf("[::]:%d", port))
	}
	return m
}

// paths are the packets from every client address over both transports
// to each port.
func (m *matchNet) paths(ports ...uint16) []matchPath {
	var all []matchPath
	for _, proto := range []string{"tcp", "udp"} {
		for _, fam := range []struct{ to, single, good, inNet netip.Addr }{{m.srv4, m.single4, m.good4, m.inNet4}, {m.srv6, m.single6, m.good6, m.inNet6}} {
			for _, from := range []netip.Addr{fam.single, fam.good, fam.inNet} {
				for _, port := range ports {
					all = append(all, matchPath{proto, from, fam.to, port})
				}
			}
		}
	}
	return all
}

// reaches says whether p gets through within wait.
func (m *matchNet) reaches(p matchPath, wait time.Duration) (bool, error) {
	remote := netip.AddrPortFrom(p.to, p.port)
	if p.proto == "udp" {
		return udpReaches(m.cli, m.sink, p.from, remote, wait)
	}
	err := dialFrom(m.cli, p.from, remote, wait)
	return err == nil, nil
}

// bans bans the single addresses and the prefixes in each jail.
func (m *matchNet) bans(jails ...string) []sysban.Ban {
	now := time.Now()
	var bans []sysban.Ban
	for _, jail := range jails {
		for _, a := range []netip.Addr{m.single4, m.single6} {
			bans = append(bans, sysban.Ban{Jail: jail, Addr: a, Start: now, Duration: time.Hour})
		}
		for _, p := range []netip.Prefix{m.net4, m.net6} {
			bans = append(bans, sysban.Ban{Jail: jail, Prefix: p, Start: now, Duration: time.Hour})
		}
	}
	return bans
}

// check sends every path, before any ban (all must pass) or after
// (blocked says which must be dropped), each as a subtest.
func (m *matchNet) check(t *testing.T, paths []matchPath, blocked func(p matchPath, banned bool) bool) {
	t.Helper()
	for _, p := range paths {
		banned := p.from != m.good4 && p.from != m.good6
		t.Run(fmt.Sprintf("%s from %v to %d", p.proto, p.from, p.port), func(t *testing.T) {
			if !blocked(p, banned) {
				// Passing paths get the time a loaded machine needs
				// (links coming up take a moment, too).
				if ok, err := m.reaches(p, 30*time.Second); !ok {
					t.Errorf("blocked (%v), want it to pass", err)
				}
				return
			}
			// A drop leaves the path silent; it worked before the ban.
			if ok, _ := m.reaches(p, silence); ok {
				t.Error("got through, want it dropped")
			}
		})
	}
}

// TestRuleMatchPackets sends real TCP and UDP traffic, IPv4 and IPv6, from
// single banned addresses and from addresses inside banned prefixes, to a
// TCP jail's port, a UDP jail's port and a port no jail covers, and checks
// each rule matches exactly its transport, its port and its sets: whatever
// order the rule's expressions take, and with the port gates in front
// (gate.go), a banned source is dropped on the jail's port only, an
// unbanned one passes everywhere.
func TestRuleMatchPackets(t *testing.T) {
	const tcpPort, udpPort, freePort = 2222, 5353, 7777
	m := newMatchNet(t, tcpPort, udpPort, freePort)
	all := m.paths(tcpPort, udpPort, freePort)
	none := func(matchPath, bool) bool { return false }
	t.Run("before", func(t *testing.T) { m.check(t, all, none) })
	if t.Failed() {
		t.FailNow()
	}

	b := openIn(t, m.srv, Options{})
	setup(t, b,
		sysban.JailRule{Name: "tcpj", Ports: []sysban.PortRange{pr(tcpPort, tcpPort)}, Protocol: sysban.TCP, Verdict: sysban.Drop},
		sysban.JailRule{Name: "udpj", Ports: []sysban.PortRange{pr(udpPort, udpPort)}, Protocol: sysban.UDP, Verdict: sysban.Drop},
	)
	apply(t, b, m.bans("tcpj", "udpj")...)
	if got := ruleLines(t, m.srv, DefaultTable)[:2]; !slices.Equal(got, []string{"tcp dport != 2222 accept", "udp dport != 5353 accept"}) {
		t.Fatalf("gates %q", got)
	}
	m.check(t, all, func(p matchPath, banned bool) bool {
		jailPort := (p.proto == "tcp" && p.port == tcpPort) || (p.proto == "udp" && p.port == udpPort)
		return banned && jailPort
	})
}

// TestGateAllPorts: a jail over every TCP port turns the TCP gate off, so
// a banned source is dropped on any TCP port, while UDP keeps its gate
// and a banned source's datagrams to a port no jail covers pass.
func TestGateAllPorts(t *testing.T) {
	const udpPort, freePort = 5353, 7777
	m := newMatchNet(t, udpPort, freePort)
	// From the single addresses and the prefixes, one family each.
	var paths []matchPath
	for _, p := range m.paths(udpPort, freePort) {
		if p.from == m.single4 || p.from == m.inNet6 || p.from == m.good4 {
			paths = append(paths, p)
		}
	}
	t.Run("before", func(t *testing.T) { m.check(t, paths, func(matchPath, bool) bool { return false }) })
	if t.Failed() {
		t.FailNow()
	}
	b := openIn(t, m.srv, Options{})
	setup(t, b,
		sysban.JailRule{Name: "anytcp", Protocol: sysban.TCP, Verdict: sysban.Drop},
		sysban.JailRule{Name: "udpj", Ports: []sysban.PortRange{pr(udpPort, udpPort)}, Protocol: sysban.UDP, Verdict: sysban.Drop},
	)
	apply(t, b, m.bans("anytcp", "udpj")...)
	if got := ruleLines(t, m.srv, DefaultTable)[0]; got != "udp dport != 5353 accept" {
		t.Fatalf("first rule %q, want the UDP gate alone", got)
	}
	m.check(t, paths, func(p matchPath, banned bool) bool {
		return banned && (p.proto == "tcp" || p.port == udpPort)
	})
}

// TestSetupReplacesOldRuleOrder upgrades tables as earlier sysbans wrote
// them to the current shape: one with the address lookup before the
// transport and port matches, one in the current order but without the
// port gates. Setup rewrites every rule, keeps the sets with their bans,
// and a Guard on the new table finds nothing to repair (it compares rules
// by comment, and the shape it expects is the one Setup just wrote).
func TestSetupReplacesOldRuleOrder(t *testing.T) {
	tests := []struct {
		name  string
		lines []string
		debug string // in nft --debug=netlink's listing of the old chain
	}{
		// "ip saddr @ssh_v4 tcp dport 22" compiles to exactly the
		// earlier order: nfproto, saddr, lookup, l4proto, dport. The
		// next table has the port before the address (nft puts the
		// family after the port; ours comes first) and no gate.
		{"address first", withNetRules("ip saddr @ssh_v4 tcp dport 22 drop", "ip6 saddr @ssh_v6 tcp dport 22 drop"),
			"[ lookup reg 1 set ssh_v4 0x0 ]\n  [ meta load l4proto => reg 1 ]"},
		{"no gates", withNetRules("tcp dport 22 ip saddr @ssh_v4 drop", "tcp dport 22 ip6 saddr @ssh_v6 drop"),
			"[ cmp eq reg 1 0x00001600 ]\n  [ meta load nfproto => reg 1 ]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { replaceOldTable(t, tt.lines, tt.debug) })
	}
}

// replaceOldTable loads a table with the ssh jail's sets and bans and the
// rules lines, then checks Setup and the Guard as
// TestSetupReplacesOldRuleOrder says.
func replaceOldTable(t *testing.T, oldLines []string, debug string) {
	ns := newNetNS(t, "u")
	var old strings.Builder
	old.WriteString(`table inet sysban {
	set ssh_v4 { type ipv4_addr; flags timeout; comment "sysban bans"; elements = { 192.0.2.1 timeout 1h, 192.0.2.2 } }
	set ssh_v6 { type ipv6_addr; flags timeout; comment "sysban bans"; elements = { 2001:db8::1 timeout 1h } }
	set ssh_v4net { type ipv4_addr; flags interval,timeout; comment "sysban prefix bans"; }
	set ssh_v6net { type ipv6_addr; flags interval,timeout; comment "sysban prefix bans"; }
	chain input {
		type filter hook input priority -10; policy accept;
`)
	for _, l := range oldLines {
		fmt.Fprintf(&old, "\t\t%s comment \"sysban jail ssh\"\n", l)
	}
	old.WriteString("\t}\n}\n")
	f, err := os.CreateTemp(t.TempDir(), "ruleset")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(old.String()); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	ns.exec(t, "nft", "-f", f.Name())
	if got := ruleLines(t, ns, DefaultTable); !slices.Equal(got, oldLines) {
		t.Fatalf("the old table reads:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(oldLines, "\n"))
	}
	if dbg := ns.exec(t, "nft", "--debug=netlink", "list", "chain", "inet", DefaultTable, ChainName); !strings.Contains(dbg, debug) {
		t.Fatalf("the old table does not compile to the old order (%q):\n%s", debug, dbg)
	}

	b := openIn(t, ns, Options{})
	setup(t, b, sshRule)
	want := withNetRules(sshGates[0], sshGates[1], "tcp dport 22 ip saddr @ssh_v4 drop", "tcp dport 22 ip6 saddr @ssh_v6 drop")
	if got := ruleLines(t, ns, DefaultTable); !slices.Equal(got, want) {
		t.Errorf("after Setup:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	got := banned(t, b, "ssh")
	if len(got) != 3 || !got[addr("192.0.2.2")].Permanent || got[addr("192.0.2.1")].Permanent || got[addr("2001:db8::1")].Permanent {
		t.Errorf("Banned = %v, want the old table's three bans as they were", got)
	}

	// The Guard, given those bans, checks the table a few times and
	// repairs nothing.
	src := &memSource{}
	start := time.Now()
	src.add(
		sysban.Ban{Jail: "ssh", Addr: addr("192.0.2.1"), Start: start.Add(-time.Minute), Duration: time.Hour},
		sysban.Ban{Jail: "ssh", Addr: addr("192.0.2.2"), Start: start, Duration: sysban.Permanent},
		sysban.Ban{Jail: "ssh", Addr: addr("2001:db8::1"), Start: start.Add(-time.Minute), Duration: time.Hour},
	)
	rg := startGuard(t, b, src, GuardOptions{Interval: 50 * time.Millisecond})
	rg.waitChecks(t, 5)
	select {
	case h := <-rg.heals:
		t.Errorf("guard repaired the upgraded table: %s", h.reason)
	default:
	}
	if got := ruleLines(t, ns, DefaultTable); !slices.Equal(got, want) {
		t.Errorf("after the guard's checks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
