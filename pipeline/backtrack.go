package pipeline

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/dlclark/regexp2"
)

// The bounded backtracking engine: a filter that sets Engine to
// EngineBacktrack has all its patterns (failregex, modes, ignoreregex,
// correlations; not its attempt rules) compiled by regexp2 instead of
// RE2, so that look-around, back-references, atomic groups and possessive
// quantifiers run. RE2 guarantees linear time on whatever an attacker
// writes into a line; a backtracker does not, so every match is bounded by
// the filter's MatchTimeout, and a match that runs out of time is no match,
// counted (Stats.FilterTimeouts) and logged at most once a minute per
// filter. The engine is never chosen silently: a filter without the key
// stays on RE2, and a pattern RE2 cannot read is an error that names the
// key. Built-in filters are all RE2 (TestBuiltinFiltersStayOnRE2).

// Engines a filter may choose (FilterSpec.Engine).
const (
	EngineRE2       = "re2"       // the default ("" too)
	EngineBacktrack = "backtrack" // regexp2, bounded by MatchTimeout
)

// Bounds of FilterSpec.MatchTimeout for the backtracking engine.
const (
	DefaultMatchTimeout = 10 * time.Millisecond
	MaxMatchTimeout     = 100 * time.Millisecond
)

// timeoutClockPeriod is how often regexp2's process-wide clock ticks while
// matches with a timeout run (its default, 100 ms, would let a 10 ms
// timeout run ten times over). A match stops within its timeout plus two
// ticks (BenchmarkBacktrackMatch: 11 ms with a 1 ms timeout); the clock
// costs 200 wake-ups a second while lines reach a backtracking filter and
// stops a second after the last match.
const timeoutClockPeriod = 5 * time.Millisecond

// setClockPeriod sets it before the first backtracking pattern is compiled,
// hence before any regexp2 match runs and reads it: the library keeps the
// period in a package variable, so it can only be set once per process.
var setClockPeriod = sync.OnceFunc(func() { regexp2.SetTimeoutCheckPeriod(timeoutClockPeriod) })

// regex is what matching needs of a compiled pattern; *regexp.Regexp is
// one, backtrackRegex the other. Locations are byte offsets, indexed by
// group number as FindStringSubmatchIndex does; -1 for a group that did not
// take part.
type regex interface {
	FindStringSubmatchIndex(text string) []int
	MatchString(text string) bool
}

// backtrackRegex is a regexp2 pattern bounded by a timeout.
type backtrackRegex struct {
	re     *regexp2.Regexp
	groups int // highest group number + 1
	watch  *timeoutWatch
}

// FindStringSubmatchIndex runs the pattern once; a timeout is no match.
func (b *backtrackRegex) FindStringSubmatchIndex(text string) []int {
	m, err := b.re.FindStringMatch(text)
	if err != nil {
		b.watch.timedOut(b.re.String())
		return nil
	}
	if m == nil {
		return nil
	}
	loc := make([]int, 2*b.groups)
	for i := range loc {
		loc[i] = -1
	}
	offsets := runeOffsets(text)
	for _, n := range b.re.GetGroupNumbers() {
		g := m.GroupByNumber(n)
		if g == nil || len(g.Captures) == 0 {
			continue
		}
		loc[2*n], loc[2*n+1] = offsets[g.Index], offsets[g.Index+g.Length]
	}
	return loc
}

// MatchString reports whether the pattern matches; a timeout is no match.
func (b *backtrackRegex) MatchString(text string) bool {
	ok, err := b.re.MatchString(text)
	if err != nil {
		b.watch.timedOut(b.re.String())
		return false
	}
	return ok
}

// runeOffsets maps regexp2's rune positions to byte offsets in text: entry
// i is where rune i starts, the last one len(text). Invalid bytes are one
// rune each, as in regexp2's []rune(text).
func runeOffsets(text string) []int {
	out := make([]int, 0, len(text)+1)
	for i := 0; i < len(text); {
		out = append(out, i)
		_, size := utf8.DecodeRuneInString(text[i:])
		i += size
	}
	return append(out, len(text))
}

// timeoutWatch counts and reports one compiled filter's timeouts. A
// pipeline points count and log at its own (watchTimeouts) before the
// filter is used, so counts outlive reloads; until then (Check, Tester)
// they are the filter's own and nothing is logged.
type timeoutWatch struct {
	filter string
	count  *atomic.Uint64
	log    *timeoutLog
}

func (w *timeoutWatch) timedOut(pattern string) {
	w.count.Add(1)
	if w.log != nil {
		w.log.report(w.filter, pattern, w.count.Load())
	}
}

// timeoutLog is a pipeline's timeout counters and log, by filter name.
type timeoutLog struct {
	log *slog.Logger
	now func() time.Time
	mu  sync.Mutex
	by  map[string]*timeoutCounter
}

type timeoutCounter struct {
	n       atomic.Uint64
	lastLog atomic.Int64 // unix nanoseconds of the last warning
}

// timeoutLogEvery bounds the warnings: an attacker who found a slow line
// can send it at line rate.
const timeoutLogEvery = time.Minute

func newTimeoutLog(log *slog.Logger, now func() time.Time) *timeoutLog {
	return &timeoutLog{log: log, now: now, by: map[string]*timeoutCounter{}}
}

func (l *timeoutLog) counter(filter string) *timeoutCounter {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.by[filter]
	if c == nil {
		c = &timeoutCounter{}
		l.by[filter] = c
	}
	return c
}

func (l *timeoutLog) report(filter, pattern string, total uint64) {
	c := l.counter(filter)
	now := l.now().UnixNano()
	last := c.lastLog.Load()
	if last != 0 && now-last < int64(timeoutLogEvery) || !c.lastLog.CompareAndSwap(last, now) {
		return
	}
	l.log.Warn("filter: backtracking match timed out: the line counts as not matching", "filter", filter,
		"pattern", pattern, "timeouts_total", total, "next_warning_in", timeoutLogEvery)
}

// watch points the timeout watches of t's filters at l, before t is used.
func (l *timeoutLog) watch(t *table) {
	attach := func(f *Filter) {
		if f.watch != nil {
			f.watch.count, f.watch.log = &l.counter(f.name).n, l
		}
	}
	for _, f := range t.filters {
		attach(f)
	}
	for _, j := range t.jails {
		if j.route != nil && j.route.filter != nil {
			attach(j.route.filter)
		}
	}
}

// snapshot returns the timeouts counted so far, by filter.
func (l *timeoutLog) snapshot() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make(map[string]uint64, len(l.by))
	for name, c := range l.by {
		out[name] = c.n.Load()
	}
	return out
}

// Timeouts returns how many backtracking matches of the filter ran out of
// time since it was compiled (for a filter a pipeline runs, since the
// pipeline started).
func (f *Filter) Timeouts() uint64 {
	if f.watch == nil {
		return 0
	}
	return f.watch.count.Load()
}

// patternCompiler compiles the patterns of one filter with its engine.
type patternCompiler func(src string, kind patternKind, vars map[string][]string) (pattern, error)

// compilerFor returns spec's pattern compiler and, for the backtracking
// engine, the watch its patterns report timeouts to.
func compilerFor(spec FilterSpec) (patternCompiler, *timeoutWatch, error) {
	switch spec.Engine {
	case "", EngineRE2:
		if spec.MatchTimeout != 0 {
			return nil, nil, errors.New("matchtimeout: only for engine: backtrack (RE2 runs in linear time)")
		}
		return compileRE2Hinted, nil, nil
	case EngineBacktrack:
	default:
		return nil, nil, fmt.Errorf("engine %q: want %s (the default) or %s", spec.Engine, EngineRE2, EngineBacktrack)
	}
	timeout := spec.MatchTimeout
	switch {
	case timeout == 0:
		timeout = DefaultMatchTimeout
	case timeout < time.Millisecond || timeout > MaxMatchTimeout:
		return nil, nil, fmt.Errorf("matchtimeout %v: want 1ms to %v", timeout, MaxMatchTimeout)
	}
	setClockPeriod()
	w := &timeoutWatch{filter: spec.Name, count: new(atomic.Uint64)}
	return func(src string, kind patternKind, vars map[string][]string) (pattern, error) {
		return compileBacktrack(src, kind, vars, timeout, w)
	}, w, nil
}

// compileRE2Hinted is compilePattern with a hint when RE2 cannot read a
// pattern that the backtracking engine can: the user may opt in.
func compileRE2Hinted(src string, kind patternKind, vars map[string][]string) (pattern, error) {
	p, err := compilePattern(src, kind, vars)
	if err != nil && strings.HasPrefix(err.Error(), "error parsing regexp") {
		if _, err2 := compileBacktrack(src, kind, vars, DefaultMatchTimeout, nil); err2 == nil {
			err = fmt.Errorf("%w (Go's RE2 engine cannot run this form; to run it on the bounded backtracking engine set engine: %s on the filter)", err, EngineBacktrack)
		}
	}
	return p, err
}

// compileBacktrack checks and compiles src as a pattern of kind for the
// backtracking engine, under the rules compilePattern holds RE2 patterns
// to: <HOST> once where needed, anchored with ^.
func compileBacktrack(src string, kind patternKind, vars map[string][]string, timeout time.Duration, w *timeoutWatch) (pattern, error) {
	p := pattern{src: src, kind: kind, host: -1, key: -1}
	expanded, err := expandPattern(src, kind, vars)
	if err != nil {
		return p, err
	}
	if !backtrackAnchored(expanded) {
		return p, errors.New("not anchored: must start with ^, with no | outside a group, so attacker-written text cannot match in the middle of a line")
	}
	if multilineFlag(expanded) {
		return p, errors.New("the m flag: ^ would match after a newline an attacker wrote into the line")
	}
	// RE2 mode: (?P<name>...) groups, ASCII \d \w \s as in Go and Python.
	re, err := regexp2.Compile(expanded, regexp2.RE2)
	if err != nil {
		return p, fmt.Errorf("backtracking engine: %w", err)
	}
	re.MatchTimeout = timeout
	groups := 0
	for _, n := range re.GetGroupNumbers() {
		groups = max(groups, n+1)
	}
	p.host = re.GroupNumberFromName(hostGroup)
	p.key = re.GroupNumberFromName(keyGroup)
	// regexp2 merges groups of one name into one group (the last capture
	// wins), so a second "host" group would decide the address.
	if len(hostGroupName.FindAllString(expanded, -1)) > 1 {
		return p, fmt.Errorf("capture group named %q besides <HOST>", hostGroup)
	}
	if len(keyGroupName.FindAllString(expanded, -1)) > 1 {
		return p, fmt.Errorf("capture group %q twice", keyGroup)
	}
	p.re = &backtrackRegex{re: re, groups: groups, watch: w}
	p.pre = prefilter{prefix: backtrackPrefix(expanded)}
	return p, nil
}

// The spellings of a named group regexp2 reads: (?P<n>, (?<n>, (?'n'.
var (
	hostGroupName = regexp.MustCompile(`\(\?(?:P?<` + hostGroup + `>|'` + hostGroup + `')`)
	keyGroupName  = regexp.MustCompile(`\(\?(?:P?<` + keyGroup + `>|'` + keyGroup + `')`)
)

// backtrackAnchored reports whether re starts with ^ and has no
// alternation outside a group (which could start a match anywhere).
func backtrackAnchored(re string) bool {
	return strings.HasPrefix(re, "^") && topLevelBar(re) < 0
}

// topLevelBar returns the index of the first | outside groups and
// classes, -1 when there is none.
func topLevelBar(re string) int {
	depth := 0
	for i := 0; i < len(re); i++ {
		switch re[i] {
		case '\\':
			i++
		case '[':
			i = classEnd(re, i)
		case '(':
			depth++
		case ')':
			depth--
		case '|':
			if depth == 0 {
				return i
			}
		}
	}
	return -1
}

// classEnd returns the index of the ] that closes the class opened at
// re[open] (len(re) when none does); a ] first in the class is literal.
func classEnd(re string, open int) int {
	i := open + 1
	if i < len(re) && re[i] == '^' {
		i++
	}
	if i < len(re) && re[i] == ']' {
		i++
	}
	for ; i < len(re); i++ {
		if re[i] == '\\' {
			i++
		} else if re[i] == ']' {
			return i
		}
	}
	return len(re)
}

// multilineFlag reports whether re turns on the m flag anywhere: "(?m)",
// "(?im:...)".
func multilineFlag(re string) bool {
	for i := strings.Index(re, "(?"); i >= 0; {
		j := i + 2
		for j < len(re) && strings.IndexByte("imsxn-", re[j]) >= 0 {
			if re[j] == '-' {
				break // flags after - are turned off
			}
			if re[j] == 'm' {
				return true
			}
			j++
		}
		next := strings.Index(re[i+2:], "(?")
		if next < 0 {
			break
		}
		i += 2 + next
	}
	return false
}

// backtrackPrefix is the literal text right after the ^ of an anchored
// pattern, which every match starts with: the prefilter of a backtracking
// pattern (the other literals would need a parse of its syntax).
func backtrackPrefix(re string) string {
	lit := strings.TrimPrefix(re, "^")
	end := strings.IndexAny(lit, `\.[](){}|*+?^$#`)
	if end < 0 {
		return lit // cannot happen after expansion, which adds groups; kept safe
	}
	if strings.IndexByte("*+?{", lit[end]) >= 0 {
		// The quantifier applies to the last byte of the run (of its
		// rune: drop the whole rune).
		_, size := utf8.DecodeLastRuneInString(lit[:end])
		end -= size
	}
	// The engine reads both pattern and line as runes, an invalid byte as
	// U+FFFD, which any other invalid byte also reads as: the prefix ends
	// before the first.
	if bad := strings.IndexRune(lit[:end], utf8.RuneError); bad >= 0 {
		end = bad
	}
	return lit[:end]
}
