package pipeline

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"time"
)

// hostPlaceholder is replaced in patterns by hostPattern.
const hostPlaceholder = "<HOST>"

// hostGroup names the capture group <HOST> expands to.
const hostGroup = "host"

// hostPattern is what <HOST> expands to: an IPv6 address (also IPv4-mapped
// and with a zone) or a dotted IPv4 address / hostname. It is strict on
// purpose — no spaces, brackets, quotes or trailing punctuation — so the
// capture can never swallow neighbouring text an attacker wrote;
// netip.ParseAddr decides afterwards whether it is an address.
const hostPattern = `(?P<host>` +
	`[0-9A-Fa-f.]*:[0-9A-Fa-f.:]+(?:%[0-9A-Za-z._-]+)?` + // IPv6
	`|[0-9A-Za-z](?:[0-9A-Za-z_.-]*[0-9A-Za-z])?` + // IPv4 or hostname
	`)`

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
	// sets is how many pending sets the correlations use: correlations
	// with the same Open and Window share one, so a line that opens is
	// remembered once and completed by whichever Close comes first.
	sets    int
	windows []time.Duration // per set
}

// correlation is a compiled Correlation.
type correlation struct {
	open, close pattern
	set         int // index of the pending set it shares
}

// pattern is one compiled regex with the cheap literal test that must pass
// before the regex is worth running.
type pattern struct {
	src  string
	re   *regexp.Regexp
	host int // submatch index of the host group; -1 when absent
	// prefix is a literal every match starts with: patterns are anchored,
	// so HasPrefix rejects most lines after comparing a few bytes.
	prefix string
	// literal is the longest other literal every match contains; it
	// rejects lines that share the prefix but not the message, e.g.
	// "pam_unix(sshd:session)" against "pam_unix(sshd:auth)". Empty
	// strings always pass.
	literal string
	key     int // submatch index of the (?P<key>...) group; -1 when absent
	// also are the other literals every match contains (longest first,
	// at most maxAlso); oneOf are alternations of which every match
	// contains at least one branch's literal. They reject the benign
	// lines that carry the pattern's longest literal too, e.g. dovecot's
	// "Login: user=<u>, method=PLAIN, rip=..." against its failure
	// patterns: a few Contains calls cost less than one regex run, which
	// was 45% of `sysban test` in the profile.
	also  []string
	oneOf [][]string
}

// maxAlso bounds the extra literal checks per pattern: each costs a
// substring search on every line that got that far.
const maxAlso = 4

// minAlso is the shortest literal worth checking besides the longest: one
// or two bytes occur in almost every line.
const minAlso = 3

// mayMatch is the prefilter: false means the regex cannot match text.
func (p *pattern) mayMatch(text string) bool {
	if !strings.HasPrefix(text, p.prefix) || !strings.Contains(text, p.literal) {
		return false
	}
	for _, l := range p.also {
		if !strings.Contains(text, l) {
			return false
		}
	}
	for _, alts := range p.oneOf {
		if !containsAny(text, alts) {
			return false
		}
	}
	return true
}

func containsAny(text string, alts []string) bool {
	for _, a := range alts {
		if strings.Contains(text, a) {
			return true
		}
	}
	return false
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
	out := make([]string, 0, len(f.fail)+2*len(f.corr))
	for _, p := range f.fail {
		out = append(out, p.src)
	}
	for _, c := range f.corr {
		out = append(out, c.open.src, c.close.src)
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

// result is what matching one line against a filter found.
type result struct {
	pattern int    // index into FailRegex; -1: no failure pattern matched
	host    string // the <HOST> capture
	ignore  int    // index into IgnoreRegex that vetoed the line; -1: none
}

// match runs the filter over text. Failure patterns are tried first because
// almost every line fails their prefilter; ignore patterns only run on lines
// that would otherwise count.
func (f *Filter) match(text string, prefilter bool) result {
	r := result{pattern: -1, ignore: -1}
	for i := range f.fail {
		p := &f.fail[i]
		if prefilter && !p.mayMatch(text) {
			continue
		}
		loc := p.re.FindStringSubmatchIndex(text)
		if loc == nil || loc[2*p.host] < 0 {
			continue
		}
		r.pattern = i
		r.host = text[loc[2*p.host]:loc[2*p.host+1]]
		break
	}
	if r.pattern >= 0 {
		r.ignore = f.ignored(text, prefilter)
	}
	return r
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
	for i, src := range spec.FailRegex {
		p, err := compilePattern(src, hostRequired, spec.Vars)
		if err != nil {
			return nil, fmt.Errorf("pipeline: filter %s: failregex[%d]: %w", spec.Name, i, err)
		}
		f.fail = append(f.fail, p)
	}
	for i, src := range extra {
		p, err := compilePattern(src, hostRequired, spec.Vars)
		if err != nil {
			return nil, fmt.Errorf("pipeline: filter %s: modes[%s][%d]: %w", spec.Name, mode, i, err)
		}
		f.fail = append(f.fail, p)
	}
	for i, src := range spec.IgnoreRegex {
		p, err := compilePattern(src, hostOptional, spec.Vars)
		if err != nil {
			return nil, fmt.Errorf("pipeline: filter %s: ignoreregex[%d]: %w", spec.Name, i, err)
		}
		f.ignore = append(f.ignore, p)
	}
	sets := make(map[string]int) // open source + window -> set index
	for i, c := range spec.Correlate {
		cc, err := compileCorrelation(c, spec.Vars)
		if err != nil {
			return nil, fmt.Errorf("pipeline: filter %s: correlate[%d]: %w", spec.Name, i, err)
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
	return f, nil
}

// DefaultCorrelationWindow is how long an opened multi-line failure waits
// for its close when Correlation.Window is zero.
const DefaultCorrelationWindow = 10 * time.Minute

func compileCorrelation(c Correlation, vars map[string][]string) (correlation, error) {
	var cc correlation
	inOpen := strings.Contains(c.Open, hostPlaceholder)
	inClose := strings.Contains(c.Close, hostPlaceholder)
	if inOpen == inClose {
		return cc, errors.New("exactly one of open and close must contain <HOST>: one line names the host, the other confirms the failure")
	}
	var err error
	if cc.open, err = compilePattern(c.Open, hostOptional, vars); err != nil {
		return cc, fmt.Errorf("open: %w", err)
	}
	if cc.close, err = compilePattern(c.Close, hostOptional, vars); err != nil {
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

// Whether compilePattern insists on <HOST>.
const (
	hostRequired = true
	hostOptional = false
)

// keyGroup names the capture group that keys a correlation.
const keyGroup = "key"

// varRef finds <VAR:name> placeholders. It is never modified.
var varRef = regexp.MustCompile(`<VAR:([^<>]*)>`)

// expandVars replaces each <VAR:name> in re by a non-capturing alternation
// of vars[name], each value quoted: values are literals (domains, paths),
// never regexes, so a value cannot widen what the pattern matches.
func expandVars(re string, vars map[string][]string) (string, error) {
	var err error
	out := varRef.ReplaceAllStringFunc(re, func(ref string) string {
		name := ref[len("<VAR:") : len(ref)-1]
		vals, ok := vars[name]
		switch {
		case err != nil:
			return ref
		case !ok:
			err = fmt.Errorf("<VAR:%s>: unknown var (it has: %s)", name, strings.Join(sortedKeys(vars), ", "))
			return ref
		case len(vals) == 0:
			err = fmt.Errorf("<VAR:%s>: var has no values", name)
			return ref
		}
		var b strings.Builder
		b.WriteString("(?:")
		for i, v := range vals {
			if i > 0 {
				b.WriteByte('|')
			}
			b.WriteString(regexp.QuoteMeta(v))
		}
		b.WriteByte(')')
		return b.String()
	})
	return out, err
}

func compilePattern(src string, needHost bool, vars map[string][]string) (pattern, error) {
	p := pattern{src: src, host: -1, key: -1}
	switch n := strings.Count(src, hostPlaceholder); {
	case n == 0 && needHost:
		return p, errors.New("missing <HOST>")
	case n > 1:
		return p, errors.New("<HOST> more than once: which address to ban would be ambiguous")
	}
	// <HOST> first, then vars: a var value that reads "<HOST>" stays a
	// literal instead of becoming a second host capture.
	expanded, err := expandVars(strings.Replace(src, hostPlaceholder, hostPattern, 1), vars)
	if err != nil {
		return p, err
	}
	tree, err := syntax.Parse(expanded, syntax.Perl)
	if err != nil {
		// Report the error against what the user wrote where we can:
		// parse the source with a short stand-in for <HOST>.
		if _, err2 := syntax.Parse(strings.Replace(src, hostPlaceholder, "(?P<host>HOST)", 1), syntax.Perl); err2 != nil {
			err = err2
		}
		return p, err // already says "error parsing regexp: ..."
	}
	// Attackers choose user names and other text daemons log. An
	// unanchored pattern can match inside that text and ban (or, for
	// ignoreregex, excuse) whatever address the attacker wrote there.
	if !anchoredAtStart(tree) {
		return p, errors.New("not anchored: must start with ^ so attacker-written text cannot match in the middle of a line")
	}
	re, err := regexp.Compile(expanded)
	if err != nil {
		return p, err
	}
	for i, name := range re.SubexpNames() {
		switch name {
		case hostGroup:
			if p.host >= 0 {
				return p, fmt.Errorf("capture group named %q besides <HOST>", hostGroup)
			}
			p.host = i
		case keyGroup:
			if p.key >= 0 {
				return p, fmt.Errorf("capture group %q twice", keyGroup)
			}
			p.key = i
		}
	}
	p.re = re
	p.prefix, p.literal = literals(tree)
	p.also, p.oneOf = moreLiterals(tree, p.prefix, p.literal)
	return p, nil
}

// moreLiterals derives the rest of the prefilter: the literals besides
// prefix and longest that every match of re contains, and the
// alternations every match contains one branch of (each branch given by
// its own longest required literal; an alternation with a branch that
// requires none proves nothing and is left out). Like literals it is
// conservative: case-folded text, optional and starred parts are skipped.
func moreLiterals(re *syntax.Regexp, prefix, longest string) (also []string, oneOf [][]string) {
	var req []string
	var walk func(*syntax.Regexp, *[]string, *[][]string)
	walk = func(re *syntax.Regexp, req *[]string, alts *[][]string) {
		switch re.Op {
		case syntax.OpLiteral:
			if re.Flags&syntax.FoldCase == 0 {
				*req = append(*req, string(re.Rune))
			}
		case syntax.OpConcat:
			for _, s := range re.Sub {
				walk(s, req, alts)
			}
		case syntax.OpCapture, syntax.OpPlus:
			walk(re.Sub[0], req, alts)
		case syntax.OpRepeat:
			if re.Min >= 1 {
				walk(re.Sub[0], req, alts)
			}
		case syntax.OpAlternate:
			if alts == nil {
				return
			}
			var group []string
			for _, b := range re.Sub {
				var breq []string
				walk(b, &breq, nil) // nested alternations prove nothing here
				best := ""
				for _, l := range breq {
					if len(l) > len(best) {
						best = l
					}
				}
				if best == "" {
					return
				}
				group = append(group, best)
			}
			*alts = append(*alts, group)
		}
	}
	walk(re, &req, &oneOf)
	slices.SortStableFunc(req, func(a, b string) int { return len(b) - len(a) })
	for _, l := range req {
		if len(also) == maxAlso {
			break
		}
		// The longest literal is already checked, and so is the prefix
		// (also at the start, where Contains would find it anyway).
		if len(l) < minAlso || l == prefix || l == longest || slices.Contains(also, l) {
			continue
		}
		also = append(also, l)
	}
	return also, oneOf
}

// anchoredAtStart reports whether every match of re must begin at the start
// of the text.
func anchoredAtStart(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpBeginText:
		return true
	case syntax.OpConcat:
		return len(re.Sub) > 0 && anchoredAtStart(re.Sub[0])
	case syntax.OpCapture:
		return anchoredAtStart(re.Sub[0])
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if !anchoredAtStart(s) {
				return false
			}
		}
		return true
	}
	return false
}

// literals derives the prefilter from a parsed pattern: prefix is the
// literal text right after the ^ anchor, longest the longest other literal
// every match must contain. Both are empty when nothing can be proven; case-folded
// literals are skipped rather than handled, as a prefilter may only be
// conservative.
func literals(re *syntax.Regexp) (prefix, longest string) {
	if re.Op == syntax.OpConcat && len(re.Sub) > 1 && re.Sub[0].Op == syntax.OpBeginText {
		if s := re.Sub[1]; s.Op == syntax.OpLiteral && s.Flags&syntax.FoldCase == 0 {
			prefix = string(s.Rune)
		}
	}
	var walk func(*syntax.Regexp)
	walk = func(re *syntax.Regexp) {
		switch re.Op {
		case syntax.OpLiteral:
			if re.Flags&syntax.FoldCase == 0 && len(string(re.Rune)) > len(longest) && string(re.Rune) != prefix {
				longest = string(re.Rune)
			}
		case syntax.OpConcat:
			for _, s := range re.Sub {
				walk(s)
			}
		case syntax.OpCapture, syntax.OpPlus:
			walk(re.Sub[0])
		case syntax.OpRepeat:
			if re.Min >= 1 {
				walk(re.Sub[0])
			}
		}
	}
	walk(re)
	return prefix, longest
}
