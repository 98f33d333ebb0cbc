package pipeline

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/sysban/sysban"
)

// TesterOptions configure a Tester.
type TesterOptions struct {
	// Now is the clock correlation windows are measured with; default
	// time.Now. `sysban test` over a file may pass the lines' own times.
	Now func() time.Time
	// Mode selects each filter's mode ("" = "normal"). A filter that lacks
	// the mode runs in normal mode; a mode no filter has is an error.
	Mode string
	// NoPrefilter runs every regex on every routed line, skipping the
	// literal prefilter. It exists to check that the prefilter never
	// changes a verdict; it only makes matching slower.
	NoPrefilter bool
}

// Tester runs filters over messages the way the daemon routes and matches
// them (program routing, literal prefilter, ignoreregex, correlation state,
// modes), without jails, DNS or bans. It is what `sysban test` and the
// fixture tests use. Test and TestPrematched are not safe for concurrent
// use; Prematch is.
type Tester struct {
	now       func() time.Time
	prefilter bool
	filters   []testFilter // by name
	// routes caches program -> indexes into filters; cleared when it
	// reaches maxAppCache entries, as the pipeline's glob cache is.
	// Prematch runs on several goroutines, hence the lock.
	routesMu sync.RWMutex
	routes   map[string][]int
	// scratch collects one line's matches, so that Test returns them in
	// one allocation of the right size instead of growing a slice per
	// match (growslice was ~18% of matching in a profile).
	scratch []Match
}

type testFilter struct {
	f  *Filter
	st *corrState
}

// NewTester compiles filters (each must be named; names must be unique)
// for opts.Mode.
func NewTester(filters []FilterSpec, opts TesterOptions) (*Tester, error) {
	if len(filters) == 0 {
		return nil, errors.New("pipeline: tester: no filters")
	}
	t := &Tester{now: opts.Now, prefilter: !opts.NoPrefilter, routes: make(map[string][]int)}
	if t.now == nil {
		t.now = time.Now
	}
	mode := opts.Mode
	if mode == "" {
		mode = "normal"
	}
	modeFound := mode == "normal"
	seen := make(map[string]bool, len(filters))
	for _, spec := range filters {
		if seen[spec.Name] {
			return nil, fmt.Errorf("pipeline: tester: filter %s given twice", spec.Name)
		}
		seen[spec.Name] = true
		m := mode
		if _, ok := spec.Modes[m]; ok {
			modeFound = true
		} else {
			m = "normal"
		}
		f, err := CompileFilterMode(spec, m)
		if err != nil {
			return nil, err
		}
		t.filters = append(t.filters, testFilter{f: f, st: newCorrState(f, DefaultMaxPending)})
	}
	if !modeFound {
		return nil, fmt.Errorf("pipeline: tester: no filter has mode %q", mode)
	}
	slices.SortFunc(t.filters, func(a, b testFilter) int { return strings.Compare(a.f.name, b.f.name) })
	return t, nil
}

// Test reports what one message does to every filter that reads its
// program (Message.AppName, matched as the daemon matches it: an empty
// AppName reaches no filter): one Match per filter that matched, in filter
// name order, nil when none did. Ignored, Pending and Correlated matches are
// included; only a Match with none of Ignored and Pending set is a failure.
// Opens are remembered and Closes completed as in the daemon, so feed lines
// in log order.
func (t *Tester) Test(m *sysban.Message) []Match {
	var pm Prematched
	t.Prematch(m, &pm)
	return t.TestPrematched(m, &pm)
}

// maxPrematched is how many routed filters a Prematched holds results for
// inline; a program routed to more (rare: globs) is matched whole by
// TestPrematched instead.
const maxPrematched = 4

// Prematched is the stateless half of Test for one message, filled by
// Prematch: the trimmed text, the filters its program routes to and their
// failregex results.
type Prematched struct {
	text   string
	routes []int
	n      int // results held; < len(routes) when they did not fit
	res    [maxPrematched]result
}

// Prematch does the part of Test that needs no state and costs the most:
// routing and running the failregexes (with ignoreregex) of every filter
// the message's program routes to. It is safe to call from many goroutines
// at once, so `sysban test` runs it on every core; TestPrematched finishes
// the message in log order. m must not change in between.
func (t *Tester) Prematch(m *sysban.Message, pm *Prematched) {
	pm.text, _ = matchText(m.Text)
	pm.routes = t.route(m.AppName)
	pm.n = 0
	if len(pm.routes) > maxPrematched {
		return
	}
	for k, i := range pm.routes {
		pm.res[k] = t.filters[i].f.match(pm.text, t.prefilter)
	}
	pm.n = len(pm.routes)
}

// TestPrematched is Test for a message Prematch has seen: it adds what
// depends on the lines before (correlation) and reports the matches as
// Test does. Feed messages in log order.
func (t *Tester) TestPrematched(m *sysban.Message, pm *Prematched) []Match {
	t.scratch = t.AppendPrematched(t.scratch[:0], m, pm)
	if len(t.scratch) == 0 {
		return nil
	}
	out := slices.Clone(t.scratch)
	clear(t.scratch) // keep no strings of this line alive
	return out
}

// AppendPrematched is TestPrematched appending the matches to dst, for a
// caller that keeps one buffer for every line (`sysban test`'s consumer,
// which is the serial part of the command: a copy per matched line was
// garbage the collector had to chase).
func (t *Tester) AppendPrematched(dst []Match, m *sysban.Message, pm *Prematched) []Match {
	for k, i := range pm.routes {
		tf := &t.filters[i]
		var r result
		if k < pm.n {
			r = pm.res[k]
		} else {
			r = tf.f.match(pm.text, t.prefilter)
		}
		if mt, ok := newMatch(tf.f, tf.f.correlate(r, pm.text, m, tf.st, t.now, t.prefilter)); ok {
			dst = append(dst, mt)
		}
	}
	return dst
}

// route returns the indexes of the filters reading program.
func (t *Tester) route(program string) []int {
	t.routesMu.RLock()
	r, ok := t.routes[program]
	t.routesMu.RUnlock()
	if ok {
		return r
	}
	return t.addRoute(program)
}

func (t *Tester) addRoute(program string) []int {
	var r []int
	for i, tf := range t.filters {
		if tf.f.Wants(program) {
			r = append(r, i)
		}
	}
	t.routesMu.Lock()
	defer t.routesMu.Unlock()
	if len(t.routes) >= maxAppCache {
		clear(t.routes)
	}
	t.routes[strings.Clone(program)] = r
	return r
}

// Filters returns the names of the tester's filters, sorted.
func (t *Tester) Filters() []string {
	out := make([]string, len(t.filters))
	for i, tf := range t.filters {
		out[i] = tf.f.name
	}
	return out
}

// Patterns returns the patterns of the named filter as Match.Pattern
// indexes them (see Filter.Patterns), nil for an unknown filter.
func (t *Tester) Patterns(filter string) []string {
	for _, tf := range t.filters {
		if tf.f.name == filter {
			return tf.f.Patterns()
		}
	}
	return nil
}

// IgnorePatterns returns the IgnoreRegex of the named filter as
// Match.IgnoreIndex indexes them, nil for an unknown filter.
func (t *Tester) IgnorePatterns(filter string) []string {
	for _, tf := range t.filters {
		if tf.f.name == filter {
			return tf.f.IgnorePatterns()
		}
	}
	return nil
}
