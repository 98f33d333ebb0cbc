package pipeline

import (
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"
)

// Compiling a FilterSpec into a Filter: programs, patterns (pattern.go)
// and correlations, checked as a whole. Running one is match.go's.

// Filter is a compiled FilterSpec. It is immutable and safe for concurrent
// use.
type Filter struct {
	name   string
	mode   string // "normal" or a key of FilterSpec.Modes
	exact  []string
	globs  []string
	fail   []pattern // FailRegex, then Modes[mode]
	ignore []pattern
	corr   []correlation
	// patterns are fail's, then each correlation's open and close: the
	// order of Patterns() and Match.Pattern, laid out once by layout.
	patterns []*pattern
	// sets is how many pending sets the correlations use: correlations
	// with the same Open and Window share one, so a line that opens is
	// remembered once and completed by whichever Close comes first.
	sets    int
	windows []time.Duration // per set
	// attempts ties the failure lines of one attempt (attempt.go); nil:
	// every failure line counts.
	attempts *attemptRules
	trust    trustSet
	// watch counts the timeouts of a backtracking filter; nil on RE2.
	watch *timeoutWatch
}

// correlation is a compiled Correlation.
type correlation struct {
	open, close pattern
	set         int // index of the pending set it shares
}

// Name returns the filter's name.
func (f *Filter) Name() string { return f.name }

// Mode returns the mode the filter was compiled for ("normal" by default).
func (f *Filter) Mode() string { return f.mode }

// Patterns returns the filter's patterns as written, indexed as
// Match.Pattern indexes them: first FailRegex in order, then the mode's
// additional failregexes (FilterSpec.Modes[mode]) in order, then for each
// Correlation i its Open at len(fail)+2i and its Close at len(fail)+2i+1.
// The indexes are stable for a given spec and mode.
func (f *Filter) Patterns() []string {
	out := make([]string, len(f.patterns))
	for i, p := range f.patterns {
		out[i] = p.src
	}
	return out
}

// IgnorePatterns returns IgnoreRegex as written, as Match.IgnoreIndex
// indexes them.
func (f *Filter) IgnorePatterns() []string {
	out := make([]string, len(f.ignore))
	for i, p := range f.ignore {
		out[i] = p.src
	}
	return out
}

// Correlates reports whether the filter has multi-line failures, i.e.
// whether matching it needs state.
func (f *Filter) Correlates() bool { return len(f.corr) > 0 }

// Wants reports whether the filter reads lines of program.
func (f *Filter) Wants(program string) bool {
	for _, e := range f.exact {
		if e == program {
			return true
		}
	}
	for _, g := range f.globs {
		if ok, _ := path.Match(g, program); ok {
			return true
		}
	}
	return false
}

// CompileFilter checks and compiles spec in its normal mode. It also
// checks that every mode in spec.Modes compiles, so a config is validated
// whole. Errors name the filter and the regex index and say why, e.g.
// "pipeline: filter sshd: failregex[2]: missing <HOST>".
func CompileFilter(spec FilterSpec) (*Filter, error) {
	f, err := CompileFilterMode(spec, "")
	if err != nil {
		return nil, err
	}
	for _, m := range sortedKeys(spec.Modes) {
		if m == "normal" {
			continue
		}
		if _, err := CompileFilterMode(spec, m); err != nil {
			return nil, err
		}
	}
	return f, nil
}

// CompileFilterMode compiles spec for one mode: FailRegex plus
// spec.Modes[mode] ("" and "normal" add Modes["normal"], usually nothing).
// An unknown mode is an error naming the filter and the modes it has.
func CompileFilterMode(spec FilterSpec, mode string) (*Filter, error) {
	if spec.Name == "" {
		return nil, errors.New("pipeline: filter without a name")
	}
	if mode == "" {
		mode = "normal"
	}
	f := &Filter{name: spec.Name, mode: mode}
	extra, ok := spec.Modes[mode]
	if !ok && mode != "normal" {
		return nil, fmt.Errorf("pipeline: filter %s: unknown mode %q (it has: %s)", spec.Name, mode, strings.Join(append([]string{"normal"}, sortedKeys(spec.Modes)...), ", "))
	}
	if len(spec.Programs) == 0 {
		return nil, fmt.Errorf("pipeline: filter %s: no programs: it would never see a line", spec.Name)
	}
	for i, prog := range spec.Programs {
		if prog == "" {
			return nil, fmt.Errorf("pipeline: filter %s: programs[%d]: empty", spec.Name, i)
		}
		if !strings.ContainsAny(prog, `*?[\`) {
			f.exact = append(f.exact, prog)
			continue
		}
		if _, err := path.Match(prog, ""); err != nil {
			return nil, fmt.Errorf("pipeline: filter %s: programs[%d] %q: %w", spec.Name, i, prog, err)
		}
		f.globs = append(f.globs, prog)
	}
	if len(spec.FailRegex) == 0 && len(spec.Correlate) == 0 {
		return nil, fmt.Errorf("pipeline: filter %s: no failregex", spec.Name)
	}
	compile, watch, err := compilerFor(spec)
	if err != nil {
		return nil, fmt.Errorf("pipeline: filter %s: %w", spec.Name, err)
	}
	f.watch = watch
	for i, src := range spec.FailRegex {
		p, err := compile(src, failPattern, spec.Vars)
		if err != nil {
			return nil, fmt.Errorf("pipeline: filter %s: failregex[%d]: %w", spec.Name, i, err)
		}
		f.fail = append(f.fail, p)
	}
	for i, src := range extra {
		p, err := compile(src, failPattern, spec.Vars)
		if err != nil {
			return nil, fmt.Errorf("pipeline: filter %s: modes[%s][%d]: %w", spec.Name, mode, i, err)
		}
		p.mode = mode
		f.fail = append(f.fail, p)
	}
	for i, src := range spec.IgnoreRegex {
		p, err := compile(src, ignorePattern, spec.Vars)
		if err != nil {
			return nil, fmt.Errorf("pipeline: filter %s: ignoreregex[%d]: %w", spec.Name, i, err)
		}
		f.ignore = append(f.ignore, p)
	}
	sets := make(map[string]int) // open source + window -> set index
	for i, c := range spec.Correlate {
		cc, err := compileCorrelation(c, spec.Vars, compile)
		if err != nil {
			return nil, fmt.Errorf("pipeline: filter %s: correlate[%d]: %w", spec.Name, i, err)
		}
		if len(c.Modes) > 0 && !slices.Contains(c.Modes, mode) {
			continue // compiled above all the same: a bad one fails every mode
		}
		if len(c.Modes) > 0 {
			cc.open.mode, cc.close.mode = mode, mode
		}
		w := c.Window
		if w <= 0 {
			w = DefaultCorrelationWindow
		}
		id := c.Open + "\x00" + w.String()
		set, ok := sets[id]
		if !ok {
			set = len(f.windows)
			sets[id] = set
			f.windows = append(f.windows, w)
		}
		cc.set = set
		f.corr = append(f.corr, cc)
	}
	f.sets = len(f.windows)
	f.layout()
	if f.attempts, err = compileAttempts(spec.Attempts); err != nil {
		return nil, fmt.Errorf("pipeline: filter %s: %w", spec.Name, err)
	}
	if f.trust, err = compileTrust(spec.Trust, nil); err != nil {
		return nil, fmt.Errorf("pipeline: filter %s: %w", spec.Name, err)
	}
	return f, nil
}

// layout numbers the compiled patterns, the one place their order is
// decided: Patterns() and Match.Pattern read it from pattern.index.
func (f *Filter) layout() {
	f.patterns = make([]*pattern, 0, len(f.fail)+2*len(f.corr))
	for i := range f.fail {
		f.patterns = append(f.patterns, &f.fail[i])
	}
	for i := range f.corr {
		c := &f.corr[i]
		c.open.corr, c.close.corr = c, c
		f.patterns = append(f.patterns, &c.open, &c.close)
	}
	for i, p := range f.patterns {
		p.index = i
	}
	for i := range f.ignore {
		f.ignore[i].index = i
	}
}

// DefaultCorrelationWindow is how long an opened multi-line failure waits
// for its close when Correlation.Window is zero.
const DefaultCorrelationWindow = 10 * time.Minute

func compileCorrelation(c Correlation, vars map[string][]string, compile patternCompiler) (correlation, error) {
	var cc correlation
	inOpen := strings.Contains(c.Open, hostPlaceholder)
	inClose := strings.Contains(c.Close, hostPlaceholder)
	if inOpen == inClose {
		return cc, errors.New("exactly one of open and close must contain <HOST>: one line names the host, the other confirms the failure")
	}
	var err error
	if cc.open, err = compile(c.Open, openPattern, vars); err != nil {
		return cc, fmt.Errorf("open: %w", err)
	}
	if cc.close, err = compile(c.Close, closePattern, vars); err != nil {
		return cc, fmt.Errorf("close: %w", err)
	}
	if c.Window < 0 {
		return cc, fmt.Errorf("window %v: must not be negative", c.Window)
	}
	return cc, nil
}

func sortedKeys(m map[string][]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
