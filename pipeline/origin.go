package pipeline

import (
	"log/slog"
	"net/netip"
	"sync"
)

// This file holds per-origin counting (JailSpec.CountBy: origin): the
// failures of one address logged by host A and by host B count apart, so
// that each host's log must show maxretry failures before a ban, and the
// ban names that host as its origin (the fleet applies a ban of scope
// origin on that host only). The trade-off: an attacker who spreads its
// attempts over many hosts gets maxretry tries on each before any ban,
// where counting by address (the default) bans it once the fleet as a
// whole saw maxretry.
//
// Each origin gets a counter of its own: a jail with the same spec whose
// shards hold that origin's failing addresses and the bans decided from
// its log. The jail itself keeps the counters and the bans known from
// elsewhere (restored, manual, the fleet's), which make every origin's
// failures "already banned". A jail that counts by address has no
// perOrigin and pays one nil check per failure.

// Count-by values of JailSpec.CountBy.
const (
	CountByAddress = "address"
	CountByOrigin  = "origin"
)

// maxOrigins bounds the counters a jail keeps per origin; the failures of
// further origins count together in one more. Syslog hostnames are the
// senders' to choose.
const maxOrigins = 1024

// originJails are a jail's counters per origin host: by syslog hostname,
// else by sender address (no string made per failure).
type originJails struct {
	mu       sync.RWMutex
	byName   map[string]*jail
	byAddr   map[netip.Addr]*jail
	overflow *jail // beyond maxOrigins
}

func newOriginJails() *originJails {
	return &originJails{byName: map[string]*jail{}, byAddr: map[netip.Addr]*jail{}}
}

// of returns the counter of the origin (hostname, else sender) of a
// failure in j, made on first use.
func (o *originJails) of(j *jail, hostname string, sender netip.Addr, log *slog.Logger) *jail {
	o.mu.RLock()
	var c *jail
	if hostname != "" {
		c = o.byName[hostname]
	} else {
		c = o.byAddr[sender]
	}
	o.mu.RUnlock()
	if c != nil {
		return c
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	if hostname != "" {
		c = o.byName[hostname]
	} else {
		c = o.byAddr[sender]
	}
	switch {
	case c != nil:
	case len(o.byName)+len(o.byAddr) >= maxOrigins:
		if o.overflow == nil {
			log.Warn("countby origin: too many origin hosts; the failures of further ones count together", "jail", j.spec.Name, "max", maxOrigins)
			o.overflow = j.originCounter()
		}
		c = o.overflow
	case hostname != "":
		c = j.originCounter()
		o.byName[hostname] = c
	default:
		c = j.originCounter()
		o.byAddr[sender] = c
	}
	return c
}

// all returns every counter.
func (o *originJails) all() []*jail {
	o.mu.RLock()
	defer o.mu.RUnlock()
	out := make([]*jail, 0, len(o.byName)+len(o.byAddr)+1)
	for _, c := range o.byName {
		out = append(out, c)
	}
	for _, c := range o.byAddr {
		out = append(out, c)
	}
	if o.overflow != nil {
		out = append(out, o.overflow)
	}
	return out
}

// inherit gives j (rebuilt by a reload) a counter for each of prev's
// origins, with their failures and bans.
func (o *originJails) inherit(j *jail, prev *originJails) {
	prev.mu.RLock()
	defer prev.mu.RUnlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	move := func(pc *jail) *jail {
		c := j.originCounter()
		c.inherit(pc)
		return c
	}
	for name, pc := range prev.byName {
		o.byName[name] = move(pc)
	}
	for addr, pc := range prev.byAddr {
		o.byAddr[addr] = move(pc)
	}
	if prev.overflow != nil {
		o.overflow = move(prev.overflow)
	}
}

// originCounter is a counter for one origin of j: j's rule, no origins
// of its own.
func (j *jail) originCounter() *jail {
	spec := j.spec
	spec.CountBy = ""
	return newJail(spec, j.maxTracked, j.seed)
}

// knownBan reports whether j itself (not an origin's counter) knows a ban
// covering a at now: one restored, made by hand or applied from the
// fleet, which holds whatever host logs the failure.
func (j *jail) knownBan(a netip.Addr, now int64, v *verdict) bool {
	if j.nOthers.Load() > 0 && j.otherBan(a, now, v) {
		return true
	}
	k := keyOf(a, &j.mask)
	s := j.shardOf(&k)
	s.mu.Lock()
	b, ok := s.banned[k]
	s.mu.Unlock()
	if ok && now < b.expiry {
		v.banned = true
	}
	return v.banned
}
