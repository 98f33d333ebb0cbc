package pipeline

// Provenance: a failure counts only if whoever wrote its line may speak
// for the program it names.
//
// The receiver fills Message.Origin from what the kernel says about the
// sender (receiver/origin.go): the uid, gid and pid on sysban's unix
// sockets and the uid on loopback TCP, or the same properties a trusted
// forwarder passed on in [sysban@32473 ...]. Each built-in filter
// declares whom it trusts (filters.Spec.Trust); a jail's Provenance says what
// to do with that:
//   - off: nothing is checked;
//   - prefer (the default): a line that carries an origin must match the
//     filter's trust; one that carries none (UDP, a forwarder without the
//     template, a remote host) counts as before;
//   - require: only a line with a matching origin counts.
// A failure refused is counted per jail (JailStats.Untrusted) and logged
// at most every 10 s per jail with the uid, exe and program it claimed.
// The open line of a multi-line failure names the host, so it must pass
// the same test (against the strictest mode of the route's jails) to be
// remembered; it is not counted, being no failure yet.
//
// The check runs only on lines a filter already found to be failures, so
// it costs nothing on the rest of the traffic, and on a failure one map
// lookup and a few string compares (BenchmarkTrustCheck). Each built-in
// filter declares its Trust beside its patterns (pipeline/filters).

import (
	"fmt"
	"os/user"
	"path"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline/filters"
)

// Provenance modes of a jail (JailSpec.Provenance).
const (
	ProvenanceOff     = "off"
	ProvenancePrefer  = "prefer"
	ProvenanceRequire = "require"
)

// Trust is whom a filter believes (filters.Trust).
type Trust = filters.Trust

// trustSet is a Trust resolved on this host.
type trustSet struct {
	declared bool // any user resolved, or Internal
	internal bool
	uids     map[int64]bool
	exes     []string
	units    []string
}

// compileTrust resolves t's users with lookup (nil: the host's user
// database).
func compileTrust(t Trust, lookup func(string) (uint32, bool)) (trustSet, error) {
	if lookup == nil {
		lookup = lookupUser
	}
	ts := trustSet{internal: t.Internal, declared: t.Internal, exes: t.Exes, units: t.Units}
	for _, u := range t.Units {
		if _, err := path.Match(u, ""); err != nil {
			return ts, fmt.Errorf("trust unit %q: %w", u, err)
		}
	}
	for _, u := range t.Users {
		uid, ok := lookup(u)
		if !ok {
			continue
		}
		if ts.uids == nil {
			ts.uids = make(map[int64]bool)
		}
		ts.uids[int64(uid)] = true
		ts.declared = true
	}
	return ts, nil
}

func lookupUser(name string) (uint32, bool) {
	if v, err := strconv.ParseUint(name, 10, 32); err == nil {
		return uint32(v), true
	}
	if name == "root" {
		return 0, true // also in an image without /etc/passwd
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, false
	}
	v, err := strconv.ParseUint(u.Uid, 10, 32)
	return uint32(v), err == nil
}

// trustVerdict is what a filter's trust makes of an origin.
type trustVerdict uint8

const (
	trustNoOrigin trustVerdict = iota // nobody vouches for the sender
	trustMatch                        // vouched, and one of the filter's
	trustMismatch                     // vouched, and not one of the filter's
)

func (t *trustSet) check(o *sysban.Origin) trustVerdict {
	if !o.Known() {
		return trustNoOrigin
	}
	if !t.uids[o.UID] {
		return trustMismatch
	}
	// Exe and comm come from /proc, read after the fact by a forwarder:
	// absent when the process had exited. When given they must fit.
	if len(t.exes) > 0 && (o.Exe != "" || o.Comm != "") && !oneOf(t.exes, path.Base(o.Exe)) && !oneOf(t.exes, o.Comm) {
		return trustMismatch
	}
	if len(t.units) > 0 && o.Unit != "" && !matchesAny(t.units, o.Unit) {
		return trustMismatch
	}
	return trustMatch
}

func oneOf(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// matchesAny: exact names first, path.Match only for patterns.
func matchesAny(globs []string, s string) bool {
	if oneOf(globs, s) {
		return true
	}
	for _, g := range globs {
		if strings.ContainsAny(g, `*?[\`) {
			if ok, _ := path.Match(g, s); ok {
				return true
			}
		}
	}
	return false
}

// trusted says whether a failure of filter f in message m counts for
// jail j, and counts and logs (rate-limited) the ones that do not.
func (p *Pipeline) trusted(j *jail, f *Filter, m *sysban.Message) bool {
	mode := j.spec.Provenance
	if mode == ProvenanceOff || f.trust.internal {
		return true
	}
	v := f.trust.check(&m.Origin)
	switch {
	case v == trustMatch:
		return true
	case v == trustNoOrigin && mode != ProvenanceRequire:
		return true
	case v == trustNoOrigin && !f.trust.declared:
		return true // unreachable: New refuses require without trust
	}
	j.untrusted.Add(1)
	now := time.Now().UnixNano()
	if last := j.untrustedLog.Load(); now-last >= int64(untrustedLogEvery) && j.untrustedLog.CompareAndSwap(last, now) {
		why := "origin not trusted by the filter"
		if v == trustNoOrigin {
			why = "no trusted origin (provenance: require)"
		}
		p.log.Warn("pipeline: failure dropped: "+why+" (further ones counted, logged every 10s)",
			"jail", j.spec.Name, "program", m.AppName, "uid", m.Origin.UID, "exe", m.Origin.Exe, "comm", m.Origin.Comm,
			"unit", m.Origin.Unit, "vouched", m.Origin.Vouched.String(), "listener", m.Listener, "untrusted_total", j.untrusted.Load())
	}
	return false
}

// checkProvenance refuses a jail's provenance mode it cannot honour.
func checkProvenance(js JailSpec, f *Filter) error {
	switch js.Provenance {
	case "", ProvenanceOff, ProvenancePrefer, ProvenanceRequire:
	default:
		return fmt.Errorf("pipeline: jail %s: provenance %q: want off, prefer or require", js.Name, js.Provenance)
	}
	if js.Provenance == ProvenanceRequire && !f.trust.declared {
		return fmt.Errorf("pipeline: jail %s: provenance require: filter %s trusts no user of this host", js.Name, f.name)
	}
	return nil
}

// anyTrusts is trusted for a failure naming a hostname, which is
// resolved once for all of the route's jails: it goes on if any of them
// takes it.
func (p *Pipeline) anyTrusts(r *route, m *sysban.Message) bool {
	ok := false
	for _, j := range r.jails {
		if p.trusted(j, r.filter, m) {
			ok = true
		}
	}
	return ok
}

// stricter raises the provenance a route's opens must meet to mode, if
// mode is stricter. Nil-safe: routes without correlations have no state.
func (st *corrState) stricter(mode string) {
	if st == nil {
		return
	}
	rank := func(m string) int {
		switch m {
		case ProvenanceOff:
			return 0
		case ProvenanceRequire:
			return 2
		}
		return 1 // prefer, the default
	}
	if mode == "" {
		mode = ProvenancePrefer
	}
	if !st.provSet || rank(mode) > rank(st.provenance) {
		st.provenance, st.provSet = mode, true
	}
}

// opens says whether an open line of f in m may be remembered: a
// multi-line failure takes its host from the open, so a forged open
// completed by the daemon's genuine close would accuse whomever the
// forger named. Not counted as untrusted: an open is not a failure yet.
func (st *corrState) opens(f *Filter, m *sysban.Message) bool {
	if st.provenance == ProvenanceOff || f.trust.internal {
		return true
	}
	switch f.trust.check(&m.Origin) {
	case trustMatch:
		return true
	case trustNoOrigin:
		return st.provenance != ProvenanceRequire
	}
	return false
}

// untrustedLogEvery bounds the untrusted-failure log per jail: a local
// user writing fake lines in a loop must not flood the log.
const untrustedLogEvery = 10 * time.Second

// untrustedCounters are a jail's provenance counters.
type untrustedCounters struct {
	untrusted    atomic.Uint64
	untrustedLog atomic.Int64 // unix nanos of the last log line
}
