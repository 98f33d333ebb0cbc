package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/netip"
	"path"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysban/sysban"
)

// Banner is what the pipeline needs from the firewall stage
// (nft.Backend implements it). Apply must not retain bans after it returns.
type Banner interface {
	Apply(ctx context.Context, bans []sysban.Ban) error
}

// JailSpec is one enabled jail: which filter feeds it and when it bans.
type JailSpec struct {
	Name     string
	Filter   string        // filter name (builtin or user-defined)
	MaxRetry int           // >= 1
	FindTime time.Duration // > 0
	BanTime  time.Duration // > 0 or sysban.Permanent (-1)
	IgnoreIP []netip.Prefix
	Mode     string // filter mode ("" = "normal"); see FilterSpec.Modes
}

// Config is the pipeline's part of the daemon configuration.
type Config struct {
	Filters    map[string]FilterSpec // user filters; override builtins of the same name
	Jails      []JailSpec            // enabled jails only
	MaxTracked int                   // bound on tracked failing addresses (and on remembered bans) per jail, default 100000
}

// Options are the pipeline's runtime dependencies.
type Options struct {
	Now func() time.Time // injected clock; default time.Now
	// Protected are never banned: the host's own addresses. Loopback,
	// unspecified, multicast and link-local addresses are always protected.
	Protected []netip.Prefix
	Logger    *slog.Logger // default discards
	QueueSize int          // ban queue, default 65536
}

// Defaults for zero Config/Options fields.
const (
	DefaultMaxTracked = 100000
	DefaultQueueSize  = 65536
)

// maxBatch caps how many bans one Banner.Apply call gets.
const maxBatch = 4096

// maxAppCache bounds the cache of glob routing results. App names come from
// the network, so an attacker could otherwise grow it without limit.
const maxAppCache = 4096

// Match is one filter's verdict on a line, as Check reports it.
type Match struct {
	Filter  string
	Pattern int    // index into the filter's FailRegex
	Regex   string // that regex as written
	Host    string // the <HOST> capture
	// Addr is Host as a canonical address; invalid when Host is a hostname
	// (hostnames are not banned: they are counted as unresolved).
	Addr netip.Addr
	// Ignored: an IgnoreRegex matched too, so the line is not a failure.
	Ignored     bool
	IgnoreIndex int // index into IgnoreRegex when Ignored; -1 otherwise
}

// Stats is a snapshot of the pipeline's counters.
type Stats struct {
	Messages  uint64 // messages handled
	Unrouted  uint64 // messages whose program no jail's filter reads
	BanErrors uint64 // failed Banner.Apply calls
	BansLost  uint64 // bans given up on after retries or at shutdown
	Queued    int    // bans waiting for the ban worker
	Jails     map[string]JailStats
}

// JailStats are one jail's counters, named after fail2ban-client status.
type JailStats struct {
	CurrentlyFailed int    // addresses tracked with a failure inside findtime
	TotalFailed     uint64 // failures counted (including from banned addresses)
	CurrentlyBanned int    // bans not yet expired
	TotalBanned     uint64 // ban decisions
	Evicted         uint64 // tracked addresses dropped because MaxTracked was reached
	Ignored         uint64 // failures from ignoreip, protected or sender addresses
	Unresolved      uint64 // failures naming a hostname, not an address
	AlreadyBanned   uint64 // failures from addresses already banned
	// BansForgotten counts live bans dropped from memory because MaxTracked
	// bans were remembered; the firewall still holds them, so
	// CurrentlyBanned undercounts by up to this much.
	BansForgotten uint64
}

// Pipeline implements the receiver's Handler; the interface is restated
// here rather than imported because data flows receiver -> pipeline only.
var _ interface{ Handle(*sysban.Message) } = (*Pipeline)(nil)

// route is a filter and the jails it feeds.
type route struct {
	filter *Filter
	jails  []*jail
}

// Pipeline routes messages to filters, counts failures per jail and queues
// bans for Run. Handle is safe for concurrent use.
type Pipeline struct {
	log       *slog.Logger
	now       func() time.Time
	epoch     time.Time
	protected []netip.Prefix
	banner    Banner

	filters []*Filter // all compiled filters, by name, for Check
	jails   []*jail
	byName  map[string]*jail

	exact map[string][]*route // program -> routes, exact names only
	globs []globRoute

	cacheMu sync.RWMutex
	cache   map[string][]*route // program -> routes incl. glob hits; bounded

	prefilter bool // false only in benchmarks measuring its worth

	queue    chan sysban.Ban
	running  atomic.Bool
	stopping atomic.Bool
	inflight atomic.Int64 // Handle calls between the stopping check and the send
	// wait sleeps between Apply retries; replaced in tests so they never sleep.
	wait func(ctx context.Context, d time.Duration)

	messages  atomic.Uint64
	unrouted  atomic.Uint64
	banErrors atomic.Uint64
	bansLost  atomic.Uint64
}

type globRoute struct {
	glob string
	r    *route
}

// New validates cfg, compiles the filters and builds the pipeline. Bans are
// delivered to banner once Run is running.
func New(cfg Config, banner Banner, opts Options) (*Pipeline, error) {
	if banner == nil {
		return nil, errors.New("pipeline: nil Banner")
	}
	p := &Pipeline{
		log:       opts.Logger,
		now:       opts.Now,
		banner:    banner,
		byName:    make(map[string]*jail),
		exact:     make(map[string][]*route),
		cache:     make(map[string][]*route),
		prefilter: true,
		wait:      sleepCtx,
	}
	if p.log == nil {
		p.log = slog.New(slog.DiscardHandler)
	}
	if p.now == nil {
		p.now = time.Now
	}
	p.epoch = p.now()
	for _, pr := range opts.Protected {
		p.protected = append(p.protected, canonicalPrefix(pr))
	}
	qs := opts.QueueSize
	if qs <= 0 {
		qs = DefaultQueueSize
	}
	p.queue = make(chan sysban.Ban, qs)
	maxTracked := cfg.MaxTracked
	if maxTracked <= 0 {
		maxTracked = DefaultMaxTracked
	}

	specs := BuiltinFilters()
	for name, spec := range cfg.Filters {
		if spec.Name == "" {
			spec.Name = name
		}
		if spec.Name != name {
			return nil, fmt.Errorf("pipeline: filter %q: spec is named %q", name, spec.Name)
		}
		specs[name] = spec
	}
	compiled := make(map[string]*Filter, len(specs))
	for name, spec := range specs {
		f, err := CompileFilter(spec)
		if err != nil {
			return nil, err
		}
		compiled[name] = f
		p.filters = append(p.filters, f)
	}
	sort.Slice(p.filters, func(a, b int) bool { return p.filters[a].name < p.filters[b].name })

	routes := make(map[string]*route)
	for i, js := range cfg.Jails {
		if err := checkJail(js); err != nil {
			return nil, fmt.Errorf("pipeline: jails[%d]: %w", i, err)
		}
		if _, dup := p.byName[js.Name]; dup {
			return nil, fmt.Errorf("pipeline: jail %s: defined twice", js.Name)
		}
		f := compiled[js.Filter]
		if f == nil {
			return nil, fmt.Errorf("pipeline: jail %s: unknown filter %q", js.Name, js.Filter)
		}
		j := newJail(js, maxTracked, rand.Uint64())
		p.jails = append(p.jails, j)
		p.byName[js.Name] = j
		r := routes[f.name]
		if r == nil {
			r = &route{filter: f}
			routes[f.name] = r
			for _, prog := range f.exact {
				p.exact[prog] = append(p.exact[prog], r)
			}
			for _, g := range f.globs {
				p.globs = append(p.globs, globRoute{glob: g, r: r})
			}
		}
		r.jails = append(r.jails, j)
	}
	return p, nil
}

func checkJail(js JailSpec) error {
	switch {
	case js.Name == "":
		return errors.New("jail without a name")
	case js.MaxRetry < 1:
		return fmt.Errorf("jail %s: maxretry %d: must be at least 1", js.Name, js.MaxRetry)
	case js.FindTime <= 0:
		return fmt.Errorf("jail %s: findtime %v: must be positive", js.Name, js.FindTime)
	case js.BanTime <= 0 && js.BanTime != sysban.Permanent:
		return fmt.Errorf("jail %s: bantime %v: must be positive or permanent (-1)", js.Name, js.BanTime)
	}
	return nil
}

// routesFor returns the routes for a program. With no glob filters that is
// one map lookup; otherwise glob results are cached per distinct program in
// a bounded cache that is simply cleared when full.
func (p *Pipeline) routesFor(app string) []*route {
	if len(p.globs) == 0 {
		return p.exact[app]
	}
	p.cacheMu.RLock()
	rs, ok := p.cache[app]
	p.cacheMu.RUnlock()
	if ok {
		return rs
	}
	rs = append([]*route(nil), p.exact[app]...)
	for _, g := range p.globs {
		if ok, _ := path.Match(g.glob, app); ok && !containsRoute(rs, g.r) {
			rs = append(rs, g.r)
		}
	}
	p.cacheMu.Lock()
	if len(p.cache) >= maxAppCache {
		clear(p.cache)
	}
	// Clone: app may share memory with the message, which we must not retain.
	p.cache[strings.Clone(app)] = rs
	p.cacheMu.Unlock()
	return rs
}

func containsRoute(rs []*route, r *route) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// Handle processes one message. It implements receiver.Handler, is safe for
// concurrent use and does not retain m. It blocks only when the ban queue is
// full (backpressure) and never after Run has stopped.
func (p *Pipeline) Handle(m *sysban.Message) {
	p.messages.Add(1)
	routes := p.routesFor(m.AppName)
	if len(routes) == 0 {
		p.unrouted.Add(1)
		return
	}
	text, repeats := unwrapRepeated(strings.TrimRight(m.Text, " \t\r\n"))
	var (
		now    time.Time
		sender netip.Addr
		gotNow bool
	)
	for _, r := range routes {
		res := r.filter.match(text, p.prefilter)
		if res.pattern < 0 || res.ignore >= 0 {
			continue
		}
		if !gotNow {
			now, gotNow = p.now(), true
			if m.Sender.IsValid() {
				sender = sysban.CanonicalAddr(m.Sender.Addr())
			}
		}
		addr, err := netip.ParseAddr(res.host)
		if err != nil {
			// A hostname: DNS resolution is a later issue, so it is not banned.
			for _, j := range r.jails {
				j.unresolved.Add(1)
			}
			continue
		}
		addr = sysban.CanonicalAddr(addr)
		protected := p.isProtected(addr) || addr == sender
		for _, j := range r.jails {
			for range repeats {
				p.count(j, addr, protected, now, text)
			}
		}
	}
}

// maxRepeats caps how many failures one "message repeated" line counts;
// anything near MaxRetry already decides, the cap only bounds the work.
const maxRepeats = 100

// unwrapRepeated undoes rsyslog's repeated-message reduction, which turns
// identical consecutive lines into
// "message repeated 3 times: [ Failed password for root from ...]": it
// returns the inner line and how many failures it stands for. fail2ban users
// meet this with "RepeatedMsgReduction on"; without unwrapping, a burst of
// identical failures would count once and the inner line would not match
// the anchored patterns at all.
func unwrapRepeated(text string) (string, int) {
	const prefix, mid = "message repeated ", " times: ["
	if !strings.HasPrefix(text, prefix) || !strings.HasSuffix(text, "]") {
		return text, 1
	}
	rest := text[len(prefix) : len(text)-1]
	n, i := 0, 0
	for ; i < len(rest) && i < 9 && '0' <= rest[i] && rest[i] <= '9'; i++ {
		n = n*10 + int(rest[i]-'0')
	}
	if i == 0 || !strings.HasPrefix(rest[i:], mid) {
		return text, 1
	}
	return strings.Trim(rest[i+len(mid):], " "), min(max(n, 1), maxRepeats)
}

// count applies one failure of addr to jail j.
func (p *Pipeline) count(j *jail, addr netip.Addr, protected bool, now time.Time, line string) {
	if protected || j.ignores(addr) {
		j.ignored.Add(1)
		return
	}
	j.totalFailed.Add(1)
	if p.log.Enabled(context.Background(), slog.LevelDebug) {
		p.log.Debug("failure", "jail", j.spec.Name, "addr", addr, "line", line)
	}
	v := j.failure(addr, int64(now.Sub(p.epoch)))
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
			p.log.Info("already banned", "jail", j.spec.Name, "addr", addr)
		}
	case v.ban:
		j.totalBanned.Add(1)
		p.log.Info("ban", "jail", j.spec.Name, "addr", addr, "failures", v.failures, "bantime", j.spec.BanTime)
		p.enqueue(sysban.Ban{
			Jail:     j.spec.Name,
			Addr:     addr,
			Start:    now,
			Duration: j.spec.BanTime,
			Failures: v.failures,
		})
	}
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
// which filters match, with which pattern and host. An empty program tries
// every filter. It is meant for tests and `sysban test`.
func (p *Pipeline) Check(text, program string) []Match {
	text, _ = unwrapRepeated(strings.TrimRight(text, " \t\r\n"))
	var out []Match
	for _, f := range p.filters {
		if program != "" && !f.Wants(program) {
			continue
		}
		res := f.match(text, p.prefilter)
		if res.pattern < 0 {
			continue
		}
		m := Match{
			Filter:      f.name,
			Pattern:     res.pattern,
			Regex:       f.fail[res.pattern].src,
			Host:        res.host,
			Ignored:     res.ignore >= 0,
			IgnoreIndex: res.ignore,
		}
		if a, err := netip.ParseAddr(res.host); err == nil {
			m.Addr = sysban.CanonicalAddr(a)
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
		Queued:    len(p.queue),
		Jails:     make(map[string]JailStats, len(p.jails)),
	}
	for _, j := range p.jails {
		failing, banned := j.counts(now)
		st.Jails[j.spec.Name] = JailStats{
			CurrentlyFailed: failing,
			TotalFailed:     j.totalFailed.Load(),
			CurrentlyBanned: banned,
			TotalBanned:     j.totalBanned.Load(),
			Evicted:         j.evicted.Load(),
			Ignored:         j.ignored.Load(),
			Unresolved:      j.unresolved.Load(),
			AlreadyBanned:   j.alreadyBanned.Load(),
			BansForgotten:   j.forgotten.Load(),
		}
	}
	return st
}
