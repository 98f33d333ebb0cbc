package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/netip"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"sync"

	"github.com/sysban/sysban"
)

// The routing table: what a config makes of the pipeline. buildTable
// compiles the filters and jails, routes each program to the filters that
// read it and the jails they feed, and carries the state of unchanged jails
// across a Reload. Handle (pipeline.go) only looks routes up.

// route is a filter and the jails it feeds.
type route struct {
	filter *Filter
	corr   *corrState // nil when the filter does not correlate
	jails  []*jail
	dns    []*jail // jails resolving hostnames
	noDNS  []*jail // jails with UseDNS "no"
}

// globRoute routes the programs a glob of Programs matches.
type globRoute struct {
	glob string
	r    *route
}

// table is what a config makes of the pipeline: compiled filters, jails and
// the program routes to them. It is immutable once built, except for the
// glob cache and the jails' own state.
type table struct {
	filters []*Filter             // the compiled filters jails use, by name
	specs   map[string]FilterSpec // every filter, built-in and the config's, for Check

	checkMu sync.Mutex
	checked map[string]*Filter // Check's filters: filters, and the rest once asked
	jails   []*jail
	byName  map[string]*jail
	// recidive are the jails fed by the other jails' bans.
	recidive []*jail

	exact map[string][]*route // program -> routes, exact names only
	globs []globRoute

	cacheMu sync.RWMutex
	cache   map[string][]*route // program -> routes incl. glob hits; bounded

	spared []netip.Prefix // Config.Spared, canonical
}

// checkFilters returns, by name, the filters Check tries for program (""
// tries every one): those jails use, and the others, compiled on the first
// Check and kept with the table from then on. Only Check pays for the
// filters no jail uses.
func (t *table) checkFilters(program string) []*Filter {
	t.checkMu.Lock()
	defer t.checkMu.Unlock()
	if t.checked == nil {
		t.checked = make(map[string]*Filter, len(t.specs))
		for _, f := range t.filters {
			t.checked[f.name] = f
		}
	}
	var out []*Filter
	for _, name := range slices.Sorted(maps.Keys(t.specs)) {
		f, ok := t.checked[name]
		if !ok {
			// buildTable compiled every user filter; a built-in one that
			// does not compile is a bug its tests catch, and Check skips it.
			f, _ = CompileFilter(t.specs[name])
			t.checked[name] = f
		}
		if f == nil || program != "" && !f.Wants(program) {
			continue
		}
		out = append(out, f)
	}
	return out
}

// Validate checks cfg as New would (filters compile, jails name real
// filters and modes) without building a pipeline: `sysban check` and
// reload use it.
func Validate(cfg Config) error {
	_, err := buildTable(cfg, 1, 1, nil)
	return err
}

// buildTable compiles cfg. A jail of old with the same name and the same
// spec is kept as it is (its counters, failure windows and remembered
// bans); a jail whose spec changed starts fresh but keeps its counters and
// remembered bans.
func buildTable(cfg Config, maxTracked, maxPending int, old *table) (*table, error) {
	t := &table{
		byName: make(map[string]*jail),
		exact:  make(map[string][]*route),
		cache:  make(map[string][]*route),
	}
	for _, pr := range cfg.Spared {
		t.spared = append(t.spared, sysban.CanonicalPrefix(pr))
	}
	for name, spec := range cfg.Filters {
		if err := ValidateFilterName(name); err != nil {
			return nil, err
		}
		if spec.Name != "" && spec.Name != name {
			return nil, fmt.Errorf("pipeline: filter %q: spec is named %q", name, spec.Name)
		}
	}
	specs := Filters(cfg.Filters)
	t.specs = specs
	// Compiled and kept: the filters a jail reads with. Every user filter
	// is compiled too, used or not, so a bad one is refused now; a
	// built-in filter no jail uses is not: its text is the binary's own,
	// compiled by its tests, and the 40-odd of them held compiled were
	// most of an idle daemon's heap (Check compiles them when asked).
	used := make(map[string]bool, len(cfg.Jails))
	for _, js := range cfg.Jails {
		used[js.Filter] = true
	}
	compiled := make(map[string]*Filter, len(used))
	for name, spec := range specs {
		_, user := cfg.Filters[name]
		if !used[name] && !user {
			continue
		}
		f, err := CompileFilter(spec)
		if err != nil {
			return nil, err
		}
		if used[name] {
			compiled[name] = f
			t.filters = append(t.filters, f)
		}
	}
	sort.Slice(t.filters, func(a, b int) bool { return t.filters[a].name < t.filters[b].name })

	routes := make(map[string]*route)
	for i, js := range cfg.Jails {
		if err := checkJail(js); err != nil {
			return nil, fmt.Errorf("pipeline: jails[%d]: %w", i, err)
		}
		if _, dup := t.byName[js.Name]; dup {
			return nil, fmt.Errorf("pipeline: jail %s: defined twice", js.Name)
		}
		if err := ValidateJail(js, specs); err != nil {
			return nil, err
		}
		if js.Filter == RecidiveFilter {
			// No route reads messages for it: recidiveBans feeds it.
			j := carryJail(js, maxTracked, old)
			j.route = &route{}
			t.jails = append(t.jails, j)
			t.byName[js.Name] = j
			t.recidive = append(t.recidive, j)
			continue
		}
		f := compiled[js.Filter]
		mode := js.Mode
		if mode == "" {
			mode = "normal"
		}
		spec := specs[js.Filter]
		if err := ValidateJailMode(js, specs); err != nil {
			return nil, err
		}
		if err := checkProvenance(js, f); err != nil {
			return nil, err
		}
		j := carryJail(js, maxTracked, old)
		t.jails = append(t.jails, j)
		t.byName[js.Name] = j
		// One route per (filter, mode): jails sharing both share the
		// compiled filter and its correlation state.
		r := routes[f.name+"\x00"+mode]
		if r == nil {
			if mode != "normal" {
				var err error
				if f, err = CompileFilterMode(spec, mode); err != nil {
					return nil, err
				}
			}
			r = &route{filter: f, corr: newCorrState(f, maxPending)}
			routes[f.name+"\x00"+mode] = r
			for _, prog := range f.exact {
				t.exact[prog] = append(t.exact[prog], r)
			}
			for _, g := range f.globs {
				t.globs = append(t.globs, globRoute{glob: g, r: r})
			}
		}
		r.jails = append(r.jails, j)
		r.corr.stricter(js.Provenance)
		if js.UseDNS == UseDNSNo {
			r.noDNS = append(r.noDNS, j)
		} else {
			r.dns = append(r.dns, j)
		}
		j.route = r
	}
	return t, nil
}

// carryJail returns the jail for js: old's jail of that name when its spec
// is unchanged, else a new one that inherits the old one's counters and
// remembered bans (its failure windows restart: maxretry or findtime may
// have changed their meaning).
func carryJail(js JailSpec, maxTracked int, old *table) *jail {
	var prev *jail
	if old != nil {
		prev = old.byName[js.Name]
	}
	if prev != nil && reflect.DeepEqual(prev.spec, js) && prev.maxTracked == maxTracked {
		return prev
	}
	j := newJail(js, maxTracked, rand.Uint64())
	if prev != nil {
		j.inherit(prev)
	}
	return j
}

// Reload swaps in a new configuration: jails that stay keep their state
// (see buildTable), jails that go are dropped with their state, and the
// multi-line correlation state starts fresh. Messages being handled
// finish on the old table. On error nothing changes.
func (p *Pipeline) Reload(cfg Config) error {
	maxTracked := cfg.MaxTracked
	if maxTracked <= 0 {
		maxTracked = DefaultMaxTracked
	}
	t, err := buildTable(cfg, maxTracked, p.maxPending, p.tab.Load())
	if err != nil {
		return err
	}
	p.maxTracked = maxTracked
	p.timeouts.watch(t)
	p.tab.Store(t)
	return nil
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
	case js.IPv4Prefix < 0 || js.IPv4Prefix > 32:
		return fmt.Errorf("jail %s: ipv4prefix %d: want 1 to 32", js.Name, js.IPv4Prefix)
	case js.IPv6Prefix < 0 || js.IPv6Prefix > 128:
		return fmt.Errorf("jail %s: ipv6prefix %d: want 1 to 128", js.Name, js.IPv6Prefix)
	case js.UseDNS != "" && js.UseDNS != UseDNSYes && js.UseDNS != UseDNSWarn && js.UseDNS != UseDNSNo:
		return fmt.Errorf("jail %s: usedns %q: want yes, warn or no", js.Name, js.UseDNS)
	case js.CountBy != "" && js.CountBy != CountByAddress && js.CountBy != CountByOrigin:
		return fmt.Errorf("jail %s: countby %q: want address or origin", js.Name, js.CountBy)
	}
	if why := checkEscalation(js.Escalate); why != "" {
		return fmt.Errorf("jail %s: escalate: %s", js.Name, why)
	}
	if why := checkIncrement(js.Increment); why != "" {
		return fmt.Errorf("jail %s: bantime increment: %s", js.Name, why)
	}
	return nil
}

// routesFor returns the routes for a program. With no glob filters that is
// one map lookup; otherwise glob results are cached per distinct program in
// a bounded cache that is simply cleared when full.
func (t *table) routesFor(app string) []*route {
	if len(t.globs) == 0 {
		return t.exact[app]
	}
	t.cacheMu.RLock()
	rs, ok := t.cache[app]
	t.cacheMu.RUnlock()
	if ok {
		return rs
	}
	rs = append([]*route(nil), t.exact[app]...)
	for _, g := range t.globs {
		if ok, _ := path.Match(g.glob, app); ok && !containsRoute(rs, g.r) {
			rs = append(rs, g.r)
		}
	}
	t.cacheMu.Lock()
	if len(t.cache) >= maxAppCache {
		clear(t.cache)
	}
	// Clone: app may share memory with the message, which we must not retain.
	t.cache[strings.Clone(app)] = rs
	t.cacheMu.Unlock()
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
