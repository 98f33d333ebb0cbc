package nft

import (
	"fmt"
	"slices"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	sysban "github.com/sysban/sysban"
)

// The port gate. A packet that no rule of the chain can match still walks
// every rule: four per jail (two families, a hash and an interval set),
// each turning it away at a compare. With the bench's 21 jails that walk
// cost a syslog datagram 1.3-1.7 µs of the sender's CPU (docs/performance.md,
// "Jail rules check the port before the address"). So the chain opens,
// per transport, with one rule that lets go at once what no later rule
// can match:
//
//	meta l4proto tcp th dport != { 22, 80, 443 } accept
//
// The set is every port a jail covers for that transport, plus its NFLOG
// trap ports (the probe rules at the end of the chain). Accept in this
// base chain ends only this chain: the packet goes on to every other
// chain of the input hook as if it had fallen off the end, which is all
// our policy accept does anyway. Why it cannot skip a verdict: every
// later rule of the chain matches a transport and, for that transport,
// ports in the gate's set, or has no port match at all; a jail without
// ports (all ports) over a transport turns that transport's gate off.
// Packets without a transport header the rules could read (ICMP, a
// non-first fragment, a truncated header) never match a gate (the
// l4proto compare or the port load fails) and walk the rules as before.
//
// TCP and UDP only: SCTP and DCCP are matched by protocol "all" jails
// alone, are rare, and a gate for them would cost every packet that
// reaches it (ICMP, traffic to a jail's port) one more rule.

// gateRule is the gate of one transport: ports nil means no jail and no
// trap covers the transport, so the gate lets every packet of it go.
type gateRule struct {
	proto byte
	ports []sysban.PortRange // merged
}

// gateComment is a gate rule's comment; the Guard counts gates by it. The
// word after "sysban" differs from the jail and log rules', so no jail
// name can make one look like another.
func gateComment(proto byte) string {
	if proto == protoTCP {
		return "sysban gate tcp"
	}
	return "sysban gate udp"
}

// gates returns the gate rules Setup writes for rules and n, in chain
// order: none for a transport that a jail covers on every port, and none
// at all when the chain would hold nothing after them.
func gates(rules []sysban.JailRule, n *NFLOG) []gateRule {
	if len(rules) == 0 && n.probeRules() == 0 {
		return nil
	}
	var tcp, udp []sysban.PortRange
	allTCP, allUDP := false, false
	for _, r := range rules {
		if r.Protocol != sysban.UDP { // TCP or all
			allTCP = allTCP || len(r.Ports) == 0
			tcp = append(tcp, r.Ports...)
		}
		if r.Protocol != sysban.TCP { // UDP or all
			allUDP = allUDP || len(r.Ports) == 0
			udp = append(udp, r.Ports...)
		}
	}
	if n != nil {
		tcp = append(tcp, n.TrapTCP...)
		udp = append(udp, n.TrapUDP...)
	}
	var out []gateRule
	if !allTCP {
		out = append(out, gateRule{protoTCP, mergePorts(tcp)})
	}
	if !allUDP {
		out = append(out, gateRule{protoUDP, mergePorts(udp)})
	}
	return out
}

// gateComments are the comments of the gate rules for rules and n.
func gateComments(rules []sysban.JailRule, n *NFLOG) []string {
	var out []string
	for _, g := range gates(rules, n) {
		out = append(out, gateComment(g.proto))
	}
	return out
}

// addGateRules queues the gate rules and returns how many it queued.
func (b *Backend) addGateRules(c *nftables.Conn, chain *nftables.Chain, rules []sysban.JailRule, n *NFLOG) (int, error) {
	gs := gates(rules, n)
	for _, g := range gs {
		ex := []expr.Any{
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{g.proto}},
		}
		pe, err := b.portExprs(c, g.ports, true)
		if err != nil {
			return 0, fmt.Errorf("gate: %w", err)
		}
		c.AddRule(&nftables.Rule{
			Table:    b.table,
			Chain:    chain,
			Exprs:    append(slices.Concat(ex, pe), &expr.Verdict{Kind: expr.VerdictAccept}),
			UserData: userdata.AppendString(nil, userdata.TypeComment, gateComment(g.proto)),
		})
	}
	return len(gs), nil
}
