package pipeline

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sysban/sysban"
)

// Escalation turns several prefix bans close together into one ban of the
// network around them: when Count distinct prefixes inside one prefix of
// IPv6Prefix (IPv4Prefix) bits were banned within Within, that prefix is
// banned for the jail's bantime (with its increment). It is never wider
// than those limits, and a limit not wider than the jail's own prefix
// length turns escalation off for that family.
type Escalation struct {
	Count  int           // distinct prefixes; 0: off
	Within time.Duration // > 0 when Count > 0
	// IPv6Prefix and IPv4Prefix are the networks escalated to, and the
	// widest a ban may get: defaults DefaultEscalateIPv6 and
	// DefaultEscalateIPv4 when 0.
	IPv6Prefix, IPv4Prefix int
}

// Escalation limits when a jail leaves them 0.
const (
	DefaultEscalateIPv6 = 48
	DefaultEscalateIPv4 = 24
)

// on reports whether escalation is configured.
func (e Escalation) on() bool { return e.Count > 0 }

// checkEscalation says what is wrong with e for a jail counting by
// v4bits/v6bits, or "".
func checkEscalation(e Escalation) string {
	switch {
	case !e.on():
		return ""
	case e.Count < 2:
		return fmt.Sprintf("count %d: at least 2 prefixes make a network", e.Count)
	case e.Within <= 0:
		return "within must be positive"
	case e.IPv6Prefix != 0 && (e.IPv6Prefix < 16 || e.IPv6Prefix > 128):
		return fmt.Sprintf("ipv6prefix %d: want 16 to 128", e.IPv6Prefix)
	case e.IPv4Prefix != 0 && (e.IPv4Prefix < 4 || e.IPv4Prefix > 32):
		return fmt.Sprintf("ipv4prefix %d: want 4 to 32", e.IPv4Prefix)
	}
	return ""
}

// escalator is a jail's record of recent bans per escalation network.
type escalator struct {
	mu     sync.Mutex
	recent map[netip.Prefix][]escalated // network -> bans inside it, oldest first
}

type escalated struct {
	prefix netip.Prefix
	at     time.Time
}

// inherit takes prev's recent bans (a reload changed the jail's spec but
// not its escalate rule, so the bans still count toward it). prev stays
// usable: messages handled on the old table may still note bans in it.
func (x *escalator) inherit(prev *escalator) {
	prev.mu.Lock()
	defer prev.mu.Unlock()
	x.mu.Lock()
	defer x.mu.Unlock()
	if len(prev.recent) == 0 {
		return
	}
	x.recent = make(map[netip.Prefix][]escalated, len(prev.recent))
	for n, l := range prev.recent {
		x.recent[n] = slices.Clone(l)
	}
}

// limitOf is the network p escalates to in j, and whether it does.
func (j *jail) limitOf(p netip.Prefix) (netip.Prefix, bool) {
	e := j.spec.Escalate
	bits, own := cmpOr(e.IPv6Prefix, DefaultEscalateIPv6), j.v6bits
	if p.Addr().Is4() {
		bits, own = cmpOr(e.IPv4Prefix, DefaultEscalateIPv4), j.v4bits
	}
	if !e.on() || bits >= own || p.Bits() <= bits {
		return netip.Prefix{}, false
	}
	n, _ := p.Addr().Prefix(bits)
	return n, true
}

func cmpOr(a, b int) int {
	if a != 0 {
		return a
	}
	return b
}

// note records a kept ban of p at t and returns the bans inside its
// network within the window when they reach the count (clearing them: the
// network's own ban stops more of them).
func (x *escalator) note(net, p netip.Prefix, t time.Time, e Escalation, bound int) []escalated {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.recent == nil {
		x.recent = map[netip.Prefix][]escalated{}
	}
	list := x.recent[net]
	// Keep the window, one entry per prefix (the newest).
	keep := list[:0]
	for _, b := range list {
		if t.Sub(b.at) < e.Within && b.prefix != p {
			keep = append(keep, b)
		}
	}
	keep = append(keep, escalated{p, t})
	if len(keep) >= e.Count {
		delete(x.recent, net)
		return slices.Clone(keep)
	}
	if _, ok := x.recent[net]; !ok && len(x.recent) >= bound {
		// Bounded like the failure table: forget a network whose bans
		// are all outside the window, else any one.
		for n, l := range x.recent {
			if len(l) == 0 || t.Sub(l[len(l)-1].at) >= e.Within {
				delete(x.recent, n)
				break
			}
		}
		if len(x.recent) >= bound {
			for n := range x.recent {
				delete(x.recent, n)
				break
			}
		}
	}
	x.recent[net] = keep
	return nil
}

// escalatedBans counts kept bans toward their jails' escalation and
// returns the network bans they decide. Like recidiveBans it never
// enqueues: the ban worker applies what it returns.
func (p *Pipeline) escalatedBans(applied []sysban.Ban) []sysban.Ban {
	tab := p.tab.Load()
	var out []sysban.Ban
	for _, b := range applied {
		j := tab.byName[b.Jail]
		if j == nil || !j.spec.Escalate.on() {
			continue
		}
		n := b.Network()
		net, ok := j.limitOf(n)
		if !ok {
			continue
		}
		at := b.Start
		if at.IsZero() {
			at = p.now()
		}
		led := j.escalations.note(net, n, at, j.spec.Escalate, j.maxTracked)
		if led == nil {
			continue
		}
		// Never over a protected address: narrowed like any prefix ban.
		target, why := p.narrow(j, net, n.Addr())
		if target.Bits() >= n.Bits() {
			p.log.Info("escalation not possible: every wider network covers protected addresses",
				"jail", j.spec.Name, "network", net, "protected", why)
			continue
		}
		names := make([]string, len(led))
		for i, l := range led {
			names[i] = l.prefix.String()
		}
		d := p.banTime(j, target)
		reason := fmt.Sprintf("escalated to %s: %d prefixes banned within %s: %s", target, len(led), j.spec.Escalate.Within, strings.Join(names, ", "))
		p.log.Info("escalated ban", "jail", j.spec.Name, "prefix", target, "bans", strings.Join(names, ","),
			"within", j.spec.Escalate.Within, "narrowed_for", why)
		j.escalatedN.Add(1)
		j.remember(target, p.expiry(at, d), false)
		out = append(out, sysban.Ban{
			Jail: j.spec.Name, Prefix: target, Addr: b.Addr, Start: at, Duration: d,
			Failures: len(led), Lines: []string{reason}, Observed: b.Observed,
		})
	}
	return out
}
