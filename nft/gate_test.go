package nft

import (
	"context"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gonflog "github.com/florianl/go-nflog/v2"
	sysban "github.com/sysban/sysban"
)

// TestGates pins which gate rules a set of jails and trap ports gets: per
// transport the union of every port any jail or trap covers for it, and
// no gate for a transport some jail covers on every port.
func TestGates(t *testing.T) {
	jail := func(name string, proto sysban.Protocol, ports ...sysban.PortRange) sysban.JailRule {
		return sysban.JailRule{Name: name, Protocol: proto, Ports: ports, Verdict: sysban.Drop}
	}
	traps := &NFLOG{Rate: 1, Snaplen: 1, TrapTCP: []sysban.PortRange{pr(23, 23)}, TrapUDP: []sysban.PortRange{pr(161, 162)}}
	tests := []struct {
		name  string
		rules []sysban.JailRule
		n     *NFLOG
		want  string // gates as "proto:ports", joined by " "
	}{
		{"no jails", nil, nil, ""},
		{"no jails, traps", nil, traps, "tcp:23 udp:161-162"},
		{"tcp jail", []sysban.JailRule{sshRule}, nil, "tcp:22 udp:-"},
		{"ports merged across jails", []sysban.JailRule{sshRule, webRule, jail("dns", sysban.UDP, pr(53, 53)), jail("alt", sysban.TCP, pr(21, 23))}, nil,
			"tcp:21-23,80,443,8000-8100 udp:53"},
		{"all-protocol jail covers both", []sysban.JailRule{jail("sip", sysban.All, pr(5060, 5061)), sshRule}, nil, "tcp:22,5060-5061 udp:5060-5061"},
		{"trap ports join", []sysban.JailRule{sshRule}, traps, "tcp:22-23 udp:161-162"},
		{"tcp jail on every port", []sysban.JailRule{sshRule, jail("anytcp", sysban.TCP)}, traps, "udp:161-162"},
		{"udp jail on every port", []sysban.JailRule{sshRule, jail("anyudp", sysban.UDP)}, nil, "tcp:22"},
		{"all-protocol jail on every port", []sysban.JailRule{sshRule, jail("portprobe", sysban.All)}, traps, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, g := range gates(tt.rules, tt.n) {
				var ports []string
				for _, p := range g.ports {
					if p.First == p.Last {
						ports = append(ports, fmt.Sprint(p.First))
					} else {
						ports = append(ports, fmt.Sprintf("%d-%d", p.First, p.Last))
					}
				}
				if len(ports) == 0 {
					ports = []string{"-"}
				}
				got = append(got, map[byte]string{protoTCP: "tcp", protoUDP: "udp"}[g.proto]+":"+strings.Join(ports, ","))
			}
			if strings.Join(got, " ") != tt.want {
				t.Errorf("gates = %q, want %q", strings.Join(got, " "), tt.want)
			}
		})
	}
}

// TestGuardRepairsGate: the Guard leaves correct gates alone, puts back a
// deleted one and removes a doubled one, which counts as foreign.
func TestGuardRepairsGate(t *testing.T) {
	ns := newNetNS(t, "g")
	b := openIn(t, ns, Options{})
	setup(t, b, sshRule, webRule)
	want := ruleLines(t, ns, DefaultTable)
	if !slices.Equal(want[:2], []string{"tcp dport != { 22, 80, 443, 8000-8100 } accept", "meta l4proto udp accept"}) {
		t.Fatalf("gates %q", want[:2])
	}
	rg := startGuard(t, b, &memSource{}, GuardOptions{Interval: 100 * time.Millisecond})
	rg.waitChecks(t, 5)
	select {
	case h := <-rg.heals:
		t.Fatalf("guard repaired a correct table: %s", h.reason)
	default:
	}
	for _, damage := range []struct {
		name, reason string
		cmd          []string
	}{
		{"deleted", `0 of 1 rule "sysban gate tcp"`, []string{"delete", "rule", "inet", DefaultTable, ChainName, "handle", ruleHandle(t, ns, `"sysban gate tcp"`)}},
		{"doubled", `2 of 1 rule "sysban gate udp"`, []string{"insert", "rule", "inet", DefaultTable, ChainName, "meta", "l4proto", "udp", "accept", "comment", `"sysban gate udp"`}},
	} {
		ns.exec(t, append([]string{"nft"}, damage.cmd...)...)
		select {
		case h := <-rg.heals:
			if !strings.Contains(h.reason, damage.reason) {
				t.Errorf("%s gate: heal reason %q, want %q", damage.name, h.reason, damage.reason)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("%s gate not repaired within 30s", damage.name)
		}
		if got := ruleLines(t, ns, DefaultTable); !slices.Equal(got, want) {
			t.Fatalf("after repairing the %s gate:\n%s\nwant:\n%s", damage.name, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	}
}

// TestGateLetsProbesLog: with NFLOG on, packets to a trap port no jail
// covers pass the gates and are logged as probes, and a banned source's
// packets to its jail's port are logged as banned, on real packets over a
// veth pair (probe rules ignore loopback).
func TestGateLetsProbesLog(t *testing.T) {
	m := newMatchNet(t)
	const group = 7423
	seen := nflogSeen(t, m.srv, group)
	n := &NFLOG{Group: group, Rate: 1000, Snaplen: 128, Banned: true,
		TrapTCP: []sysban.PortRange{pr(23, 23)}, TrapUDP: []sysban.PortRange{pr(161, 161)}}
	b := openIn(t, m.srv, Options{})
	if err := b.SetupNFLOG(testCtx(t), []sysban.JailRule{sshRule}, n); err != nil {
		t.Fatalf("SetupNFLOG: %v", err)
	}
	if got := ruleLines(t, m.srv, DefaultTable)[:2]; !slices.Equal(got, []string{"tcp dport != 22-23 accept", "udp dport != 161 accept"}) {
		t.Fatalf("gates %q", got)
	}
	apply(t, b, m.bans("ssh")...)
	for _, tt := range []struct {
		prefix string
		send   func()
	}{
		{ProbePrefix + " udp", func() { _, _ = udpReaches(m.cli, m.sink, m.good4, netip.AddrPortFrom(m.srv4, 161), 0) }},
		{ProbePrefix + " tcp", func() { _ = dialFrom(m.cli, m.good6, netip.AddrPortFrom(m.srv6, 23), 100*time.Millisecond) }},
		{BanPrefix + "ssh tcp", func() { _ = dialFrom(m.cli, m.single4, netip.AddrPortFrom(m.srv4, 22), 100*time.Millisecond) }},
	} {
		deadline := time.Now().Add(30 * time.Second)
		for !seen(tt.prefix) {
			if time.Now().After(deadline) {
				t.Fatalf("no %q logged within 30s", tt.prefix)
			}
			tt.send()
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// nflogSeen reads NFLOG group in ns until the test ends and returns
// whether a packet was logged with a prefix and transport ("sysban:probe
// udp").
func nflogSeen(t *testing.T, ns *netNS, group uint16) func(prefixProto string) bool {
	t.Helper()
	if _, err := os.Stat("/proc/net/netfilter/nfnetlink_log"); err != nil {
		if out, err := exec.Command("modprobe", "nfnetlink_log").CombinedOutput(); err != nil {
			t.Skipf("needs the nfnetlink_log kernel module: modprobe: %v %s", err, out)
		}
	}
	nf, err := gonflog.Open(&gonflog.Config{Group: group, Copymode: gonflog.CopyPacket, Bufsize: 128, NetNS: ns.fd})
	if err != nil {
		t.Fatalf("open NFLOG group %d: %v", group, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); _ = nf.Close() })
	var mu sync.Mutex
	seen := map[string]bool{}
	hook := func(a gonflog.Attribute) int {
		if a.Prefix == nil || a.Payload == nil || len(*a.Payload) < 1 {
			return 0
		}
		// The transport, from the IPv4 or IPv6 header (no extension
		// headers here).
		p := *a.Payload
		var proto byte
		switch {
		case p[0]>>4 == 4 && len(p) >= 20:
			proto = p[9]
		case p[0]>>4 == 6 && len(p) >= 40:
			proto = p[6]
		}
		mu.Lock()
		seen[*a.Prefix+" "+map[byte]string{protoTCP: "tcp", protoUDP: "udp"}[proto]] = true
		mu.Unlock()
		return 0
	}
	if err := nf.RegisterWithErrorFunc(ctx, hook, func(error) int { return 0 }); err != nil {
		t.Fatalf("bind NFLOG group %d: %v", group, err)
	}
	return func(prefixProto string) bool {
		mu.Lock()
		defer mu.Unlock()
		return seen[prefixProto]
	}
}
