package nft

import (
	"fmt"
	"strings"
	"testing"

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
