package pipeline

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net/netip"
	"sync/atomic"
	"time"

	"github.com/sysban/sysban"
)

// maxBatch caps how many bans one Apply call gets.
const maxBatch = 4096

// maxAppCache bounds the cache of glob routing results. App names come from
// the network, so an attacker could otherwise grow it without limit.
const maxAppCache = 4096

// Stats is a snapshot of the pipeline's counters.
type Stats struct {
	Messages  uint64 // messages handled
	Unrouted  uint64 // messages whose program no jail's filter reads
	BanErrors uint64 // failed Apply calls
	BansLost  uint64 // bans given up on after retries or at shutdown
	// Queued is how many decided bans are not kept yet: waiting in the ban
	// queue (bounded by Options.QueueSize) or in the batch being applied.
	Queued int
	DNS    DNSStats
	Jails  map[string]JailStats
	// FilterTimeouts counts, by filter, the matches of backtracking
	// patterns that ran out of MatchTimeout (and counted as no match).
	// Filters with engine backtrack are present, the others never time out.
	FilterTimeouts map[string]uint64
}

// JailStats are one jail's counters, named after fail2ban-client status.
type JailStats struct {
	CurrentlyFailed int    // addresses tracked with a failure inside findtime
	TotalFailed     uint64 // failures counted (including from banned addresses)
	CurrentlyBanned int    // kept bans not yet expired
	TotalBanned     uint64 // bans kept (applied through the Applier; see announce)
	Evicted         uint64 // tracked addresses dropped because MaxTracked was reached
	Ignored         uint64 // failures from ignoreip, protected or sender addresses
	// Unresolved counts failures naming a hostname that was not turned
	// into an address: UseDNS "no", lookup failed, or the DNS queue was
	// full.
	Unresolved uint64
	Resolved   uint64 // failures naming a hostname that resolved (each address then counts)
	// Pending is how many multi-line opens of the jail's filter wait for
	// their close; PendingEvicted how many were dropped because
	// MaxPending were waiting. Jails sharing a filter and mode share them.
	Pending        int
	PendingEvicted uint64
	AlreadyBanned  uint64 // failures from addresses already banned
	// BansForgotten counts live bans dropped from memory because MaxTracked
	// bans were remembered; the firewall still holds them, so
	// CurrentlyBanned undercounts by up to this much.
	BansForgotten uint64
	// Untrusted counts failures dropped because their origin did not
	// match the filter's trust, or was missing under provenance: require.
	Untrusted uint64
	// Narrowed counts prefix bans made narrower than the jail's prefix
	// because the prefix covered a protected address (ignoreip, the
	// host's own, an allowed sender, loopback).
	Narrowed uint64
	// BansByPrefix counts the bans kept (as TotalBanned) by family and
	// prefix length; only lengths used are present.
	BansByPrefix map[PrefixLen]uint64
	// Observed counts the bans kept in observe mode (TotalBanned has
	// them too): what the jail would have enforced.
	Observed uint64
	// Observe says the jail runs in observe mode now.
	Observe bool
	// Escalated counts network bans decided by escalation.
	Escalated uint64
}

// PrefixLen is a family ("ipv4", "ipv6") and a prefix length.
type PrefixLen struct {
	Family string
	Bits   int
}

// Pipeline implements the receiver's Handler; the interface is restated
// here rather than imported because data flows receiver -> pipeline only.
var _ interface{ Handle(*sysban.Message) } = (*Pipeline)(nil)

// Pipeline routes messages to filters, counts failures per jail and queues
// bans for Run. Handle is safe for concurrent use.
type Pipeline struct {
	log       *slog.Logger
	now       func() time.Time
	epoch     time.Time
	protected []netip.Prefix
	banner    sysban.Applier
	dns       *resolver
	offences  OffenceCounter
	timeouts  *timeoutLog      // backtracking filters' timeouts (backtrack.go)
	decided   func(sysban.Ban) // Options.Decided

	// tab is the routing table built from the config; Reload swaps it.
	tab        atomic.Pointer[table]
	maxTracked int
	maxPending int

	prefilter bool // false only in benchmarks measuring its worth

	// queue carries pointers: a channel buffer of DefaultQueueSize Ban
	// values would be 6.8 MB the runtime may have to zero at start, a third
	// of an idle daemon's RSS; bans are rare enough to allocate each.
	queue    chan *sysban.Ban
	applying atomic.Int64 // bans in the batch Run is applying
	running  atomic.Bool
	stopping atomic.Bool
	inflight atomic.Int64  // Handle calls between the stopping check and the send
	batches  atomic.Uint64 // batches the worker finished (health.go)
	// wait sleeps between Apply retries; replaced in tests so they never sleep.
	wait func(ctx context.Context, d time.Duration)
	// stormWindow and stormLinger (worker.go) are fields so tests can
	// stretch them past any scheduling delay.
	stormWindow, stormLinger time.Duration

	messages  atomic.Uint64
	unrouted  atomic.Uint64
	banErrors atomic.Uint64
	bansLost  atomic.Uint64
}

// New validates cfg, compiles the filters and builds the pipeline. Bans are
// delivered to banner once Run is running.
func New(cfg Config, banner sysban.Applier, opts Options) (*Pipeline, error) {
	if banner == nil {
		return nil, errors.New("pipeline: nil Applier")
	}
	p := &Pipeline{
		log:       opts.Logger,
		now:       opts.Now,
		banner:    banner,
		offences:  opts.Offences,
		decided:   opts.Decided,
		prefilter: true,
		wait:      sleepCtx,

		stormWindow: stormWindow,
		stormLinger: stormLinger,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.epoch = p.now()
	p.dns = newResolver(opts.LookupHost, p.now)
	p.timeouts = newTimeoutLog(p.log, p.now)
	for _, pr := range opts.Protected {
		p.protected = append(p.protected, sysban.CanonicalPrefix(pr))
	}
	qs := opts.QueueSize
	if qs <= 0 {
		qs = DefaultQueueSize
	}
	p.queue = make(chan *sysban.Ban, qs)
	p.maxTracked = cfg.MaxTracked
	if p.maxTracked <= 0 {
		p.maxTracked = DefaultMaxTracked
	}
	p.maxPending = opts.MaxPending
	t, err := buildTable(cfg, p.maxTracked, p.maxPending, nil)
	if err != nil {
		return nil, err
	}
	p.timeouts.watch(t)
	p.tab.Store(t)
	return p, nil
}

// Handle processes one message. It implements receiver.Handler, is safe for
// concurrent use and does not retain m. It blocks only when the ban queue is
// full (backpressure) and never after Run has stopped.
func (p *Pipeline) Handle(m *sysban.Message) {
	p.messages.Add(1)
	routes := p.tab.Load().routesFor(m.AppName)
	if len(routes) == 0 {
		p.unrouted.Add(1)
		return
	}
	text, repeats := matchText(m.Text)
	var (
		now               time.Time
		sender            netip.Addr
		gotNow, gotSender bool
	)
	for _, r := range routes {
		// Correlation windows run on our clock (p.now): message times
		// are the sender's to choose.
		res := r.filter.eval(text, m, r.corr, p.now, p.prefilter)
		if !res.failure() {
			continue
		}
		if !gotNow {
			now, gotNow = p.now(), true
		}
		if !gotSender {
			gotSender = true
			if m.Sender.IsValid() {
				sender = sysban.CanonicalAddr(m.Sender.Addr())
			}
		}
		addr, err := netip.ParseAddr(res.host)
		if err != nil {
			if p.anyTrusts(r, m) {
				p.hostFailure(r, res.host, sender, text)
			}
			continue
		}
		n := repeats
		switch {
		case res.pattern.kind == closePattern:
			n = 1 // one open, one close: one failure
		case res.n > 1:
			n = min(repeats*res.n, maxRepeats) // an end naming uncounted attempts
		}
		addr = sysban.CanonicalAddr(addr)
		protected := p.isProtected(addr) || addr == sender
		for _, j := range r.jails {
			if !p.trusted(j, r.filter, m) {
				continue
			}
			for range n {
				p.count(j, addr, protected, now, text, m.Hostname, sender)
			}
		}
	}
}

// count applies one failure of addr to jail j, seen in the log of host
// (the syslog hostname, else the sender), and queues the ban it may decide.
// The origin's name is made only for a decided ban, not per failure.
func (p *Pipeline) count(j *jail, addr netip.Addr, protected bool, now time.Time, line, hostname string, sender netip.Addr) {
	cj := j
	if j.perOrigin != nil {
		cj = j.perOrigin.of(j, hostname, sender, p.log)
	}
	if b, ok := p.decideIn(j, cj, addr, protected, now, line); ok {
		b.Origin = origin(hostname, sender)
		p.enqueue(b)
	}
}

// origin names the host whose log showed a failure: the syslog hostname,
// else the sender's address; empty when neither is known.
func origin(hostname string, sender netip.Addr) string {
	if hostname != "" {
		return hostname
	}
	if sender.IsValid() {
		return sender.String()
	}
	return ""
}

// decide applies one failure of addr to jail j and returns the ban it
// decided, if any.
func (p *Pipeline) decide(j *jail, addr netip.Addr, protected bool, now time.Time, line string) (sysban.Ban, bool) {
	return p.decideIn(j, j, addr, protected, now, line)
}

// decideIn is decide with the failures counted in cj: j itself, or (for a
// jail that counts by origin) j's counter for the failure's origin host.
// j keeps the counters and the bans known from elsewhere.
func (p *Pipeline) decideIn(j, cj *jail, addr netip.Addr, protected bool, now time.Time, line string) (sysban.Ban, bool) {
	if protected || j.ignores(addr) {
		j.ignored.Add(1)
		return sysban.Ban{}, false
	}
	j.totalFailed.Add(1)
	if p.log.Enabled(context.Background(), slog.LevelDebug) {
		p.log.Debug("failure", "jail", j.spec.Name, "addr", addr, "line", line)
	}
	// The jail copies (and cuts) the line into its bounded line ring.
	var v verdict
	if cj == j || !j.knownBan(addr, int64(now.Sub(p.epoch)), &v) {
		v = cj.failure(addr, int64(now.Sub(p.epoch)), line)
	}
	if v.evicted {
		j.evicted.Add(1)
	}
	if v.forgotBan {
		j.forgotten.Add(1)
	}
	switch {
	case v.banned:
		j.alreadyBanned.Add(1)
		if v.notice {
			if ok, held := j.allowNotice(now.Unix()); ok && held > 0 {
				p.log.Info("already banned", "jail", j.spec.Name, "addr", addr, "notices_held_back", held)
			} else if ok {
				p.log.Info("already banned", "jail", j.spec.Name, "addr", addr)
			}
		}
	case v.ban:
		prefix := j.prefixOf(addr)
		narrowed, why := p.narrow(j, prefix, addr)
		d := p.banTime(j, narrowed)
		if narrowed != prefix {
			// failure remembered the ban under the counted prefix,
			// which this ban does not cover.
			cj.forget(prefix)
			p.log.Info("ban narrowed: the prefix covers protected addresses", "jail", j.spec.Name,
				"prefix", prefix, "ban", narrowed, "protected", why)
			j.narrowed.Add(1)
			prefix = narrowed
			cj.remember(prefix, p.expiry(now, d), false)
		} else if d != j.spec.BanTime {
			// failure remembered the ban with the base bantime.
			cj.remember(prefix, p.expiry(now, d), false)
		}
		// Not announced (logged, counted) here: only once it is kept,
		// in Pipeline.announce.
		return sysban.Ban{
			Jail:     j.spec.Name,
			Prefix:   prefix,
			Addr:     addr,
			Observed: j.spec.Observe,
			Start:    now,
			Duration: d,
			Failures: v.failures,
			Lines:    v.lines,
		}, true
	}
	return sysban.Ban{}, false
}

// expiry is when a ban of length d starting at now ends, in the jails'
// nanoseconds since epoch; math.MaxInt64 for a permanent ban.
func (p *Pipeline) expiry(now time.Time, d time.Duration) int64 {
	if d < 0 {
		return math.MaxInt64
	}
	at := int64(now.Sub(p.epoch))
	if at > math.MaxInt64-int64(d) {
		return math.MaxInt64
	}
	return at + int64(d)
}

func banTimeString(d time.Duration) string {
	if d == sysban.Permanent {
		return "permanent"
	}
	return d.String()
}

// isProtected reports addresses that are never banned whatever the jail.
func (p *Pipeline) isProtected(a netip.Addr) bool {
	if a.IsLoopback() || a.IsUnspecified() || a.IsMulticast() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() {
		return true
	}
	for _, pr := range p.protected {
		if pr.Contains(a) {
			return true
		}
	}
	return false
}

// Check matches text as if program had logged it, without counting it:
// which filters match (in normal mode), with which pattern and host. An
// empty program tries every filter. It keeps no state: a correlation's
// Open is reported as Pending, its Close never completes (use a Tester for
// multi-line failures).
func (p *Pipeline) Check(text, program string) []Match {
	text, _ = matchText(text)
	var out []Match
	for _, f := range p.tab.Load().checkFilters(program) {
		// No correlation state: Check is stateless, so Opens show as
		// Pending and Closes never complete.
		m, ok := newMatch(f, f.eval(text, nil, nil, nil, p.prefilter))
		if !ok {
			continue
		}
		out = append(out, m)
	}
	return out
}

// Stats returns a snapshot of the counters. It prunes expired state on the
// way, so it costs O(tracked addresses) in the worst case; call it for
// status output, not per message.
func (p *Pipeline) Stats() Stats {
	now := int64(p.now().Sub(p.epoch))
	st := Stats{
		Messages:  p.messages.Load(),
		Unrouted:  p.unrouted.Load(),
		BanErrors: p.banErrors.Load(),
		BansLost:  p.bansLost.Load(),
		Queued:    len(p.queue) + int(p.applying.Load()),
		DNS:       p.dns.stats(),

		FilterTimeouts: p.timeouts.snapshot(),
	}
	tab := p.tab.Load()
	st.Jails = make(map[string]JailStats, len(tab.jails))
	wall := p.now()
	for _, j := range tab.jails {
		failing, banned := j.counts(now)
		pending, pevicted := j.route.corr.stats(wall)
		st.Jails[j.spec.Name] = JailStats{
			CurrentlyFailed: failing,
			TotalFailed:     j.totalFailed.Load(),
			CurrentlyBanned: banned,
			TotalBanned:     j.totalBanned.Load(),
			Evicted:         j.evicted.Load(),
			Untrusted:       j.untrusted.Load(),
			Ignored:         j.ignored.Load(),
			Unresolved:      j.unresolved.Load(),
			Resolved:        j.resolved.Load(),
			Pending:         pending,
			PendingEvicted:  pevicted,
			AlreadyBanned:   j.alreadyBanned.Load(),
			Narrowed:        j.narrowed.Load(),
			BansByPrefix:    j.bansByPrefix(),
			Observed:        j.observed.Load(),
			Observe:         j.spec.Observe,
			Escalated:       j.escalatedN.Load(),
			BansForgotten:   j.forgotten.Load(),
		}
	}
	return st
}
