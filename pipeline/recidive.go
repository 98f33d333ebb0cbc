package pipeline

import (
	"fmt"
	"net/netip"
	"slices"
	"time"

	"github.com/sysban/sysban"
)

// RecidiveFilter is the filter name that makes a jail count sysban's own
// bans instead of log lines (fail2ban's recidive jail, without parsing our
// own log): every ban applied in another jail is one failure of its
// address in every jail whose Filter is RecidiveFilter, and such a jail's
// MaxRetry within FindTime bans the address for its own BanTime, usually on
// every port. A ban counts once it is applied (Applier.Apply succeeded; a
// lost ban is no offence), and manual bans count through CountBan. Bans
// made by recidive jails never feed them again. The count lives in memory
// like every failure window: a restart starts it afresh.
//
// The name is reserved: a user filter may not be called recidive, and no
// message is ever routed to such a jail.
const RecidiveFilter = "recidive"

// isRecidive reports whether j counts bans rather than lines.
func (j *jail) isRecidive() bool { return j.spec.Filter == RecidiveFilter }

// CountBan counts a ban made outside the pipeline (a manual ban that was
// applied) in the recidive jails; a recidive ban it leads to is queued for
// Run like any other. Bans of recidive jails and of unknown jails are not
// counted, nor are restored bans: pass only new ones.
func (p *Pipeline) CountBan(b sysban.Ban) {
	for _, r := range p.recidiveBans([]sysban.Ban{b}) {
		p.enqueue(r)
	}
}

// recidiveBans counts applied bans in the recidive jails and returns the
// bans that decided. It never enqueues: the ban worker calls it and must
// not block on its own queue.
func (p *Pipeline) recidiveBans(applied []sysban.Ban) []sysban.Ban {
	tab := p.tab.Load()
	if len(tab.recidive) == 0 {
		return nil
	}
	var out []sysban.Ban
	for _, b := range applied {
		if src := tab.byName[b.Jail]; src == nil || src.isRecidive() || b.Observed {
			continue // an observed ban was never enforced: no offence
		}
		addr := banAddr(b)
		line := banLine(b)
		protected := p.isProtected(addr)
		// A ban counts at the moment it was decided, not when the worker
		// got round to it: a slow or retried Apply must not slide bans
		// into one recidive window (or out of it).
		now := b.Start
		if now.IsZero() {
			now = p.now()
		}
		for _, j := range tab.recidive {
			if nb, ok := p.decide(j, addr, protected, now, line); ok {
				out = append(out, nb)
			}
		}
	}
	return out
}

// banAddr is the address a recidive jail counts a ban under: the one seen,
// or a manual prefix ban's network address (the recidive jail's own prefix
// length then decides what it bans).
func banAddr(b sysban.Ban) netip.Addr {
	if b.Addr.IsValid() {
		return sysban.CanonicalAddr(b.Addr)
	}
	return b.Network().Addr()
}

// banLine describes a ban as the "failure line" a recidive jail keeps and
// its ban carries to notifications.
func banLine(b sysban.Ban) string {
	d := "permanently"
	if !b.Permanent() {
		d = "for " + b.Duration.String()
	}
	return fmt.Sprintf("banned in %s %s after %d failures", b.Jail, d, b.Failures)
}

// RecidiveWindow is the longest FindTime of the recidive jails (0 when there
// are none): how far back SeedRecidive needs the ban history.
func (p *Pipeline) RecidiveWindow() time.Duration {
	var w time.Duration
	for _, j := range p.tab.Load().recidive {
		w = max(w, j.spec.FindTime)
	}
	return w
}

// SeedRecidive replays the ban history (bans applied before a restart, as
// the store kept them) into the recidive jails, so that a restart does not
// give every repeat offender a clean slate. Each recidive jail counts a
// ban when it falls inside its FindTime and after the address's last ban
// in that recidive jail (the offences that one already punished). Bans of
// recidive jails and of jails not in the config are not counted, as in
// CountBan. A count that reaches MaxRetry means the recidive ban was never
// applied (sysban stopped between the two); it is queued now, starting
// now. Call it before the receiver starts, after MarkBanned of the bans
// still due. It returns how many bans it counted.
func (p *Pipeline) SeedRecidive(history []sysban.Ban) int {
	tab := p.tab.Load()
	if len(tab.recidive) == 0 || len(history) == 0 {
		return 0
	}
	history = slices.Clone(history)
	slices.SortStableFunc(history, func(a, b sysban.Ban) int { return a.Start.Compare(b.Start) })
	now := p.now()
	counted := 0
	for _, j := range tab.recidive {
		punished := make(map[netip.Addr]time.Time)
		for _, b := range history {
			if b.Jail == j.spec.Name {
				punished[sysban.CanonicalAddr(b.Addr)] = b.Start
			}
		}
		for _, b := range history {
			src := tab.byName[b.Jail]
			addr := banAddr(b)
			if src == nil || src.isRecidive() || now.Sub(b.Start) > j.spec.FindTime {
				continue
			}
			if last, ok := punished[addr]; ok && !b.Start.After(last) {
				continue
			}
			counted++
			if nb, ok := p.decide(j, addr, p.isProtected(addr), b.Start, banLine(b)); ok {
				nb.Start = now
				j.remember(nb.Prefix, p.expiry(now, nb.Duration), false)
				p.enqueue(nb)
			}
		}
	}
	return counted
}
