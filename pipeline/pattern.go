package pipeline

import (
	"errors"
	"fmt"
	"regexp"
	"regexp/syntax"
	"strings"
)

// Patterns: a filter's regexes as written (with <HOST>, <VAR:name> and
// (?P<key>...)) compiled into what matching needs. The prefilter each
// pattern carries is in prefilter.go, matching in match.go.

// hostPlaceholder is replaced in patterns by hostPattern.
const hostPlaceholder = "<HOST>"

// hostGroup names the capture group <HOST> expands to.
const hostGroup = "host"

// hostPattern is what <HOST> expands to: an IPv6 address (also IPv4-mapped
// and with a zone) or a dotted IPv4 address / hostname. It is strict on
// purpose — no spaces, brackets, quotes or trailing punctuation — so the
// capture can never swallow neighbouring text an attacker wrote;
// netip.ParseAddr decides afterwards whether it is an address.
//
// The IPv6 branch needs two colons, as every IPv6 text has: "1.2.3.4:5060"
// has one, so it is an IPv4 address, and a pattern that allows ":port"
// after <HOST> gets the port. A bare IPv6 address followed by ":port" is
// taken whole here and split by capture (hostport.go), which knows whether
// the pattern accepts a port there. The branch is kept short on purpose:
// the backtracker clears a bitmap as large as the program for every match.
const hostPattern = `(?P<host>` +
	`[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:]*(?:\.[0-9.]*)?(?:%[0-9A-Za-z._-]+)?` + // IPv6
	`|[0-9A-Za-z](?:[0-9A-Za-z_.-]*[0-9A-Za-z])?` + // IPv4 or hostname
	`)`

// patternKind is the role a pattern plays in its filter.
type patternKind uint8

const (
	failPattern   patternKind = iota // a failregex: a match is a failure of its host
	ignorePattern                    // an ignoreregex: a match excuses the line
	openPattern                      // a Correlation's Open: a match is pending
	closePattern                     // a Correlation's Close: completes a pending open
)

// pattern is one compiled regex of a filter, with what a match of it means
// and the cheap literal test that must pass before the regex is worth
// running. Matching reports the pattern itself (result.pattern), so source,
// kind, mode and index travel with every match.
type pattern struct {
	src  string // as written
	kind patternKind
	// mode is the mode whose failregexes it is one of; "" for
	// FilterSpec.FailRegex (every mode) and for the other kinds.
	mode string
	// index is its place in Filter.Patterns() (failregexes, opens and
	// closes) or, for an ignoreregex, in Filter.IgnorePatterns(); it is
	// what Match.Pattern and Match.IgnoreIndex report.
	index int
	// corr is the correlation an open or close belongs to; nil otherwise.
	corr *correlation
	matcher
	host int // submatch index of the host group; -1 when absent
	key  int // submatch index of the (?P<key>...) group; -1 when absent
	pre  prefilter
}

// matcher is a compiled regex and, when it is an RE2 pattern in the fast
// matcher's subset (fastmatch.go), the same regex as a fast program, which
// answers first.
type matcher struct {
	re   regex     // *regexp.Regexp, or *backtrackRegex (backtrack.go)
	fast *fastProg // nil: outside the subset, or not RE2
}

// newMatcher is the matcher of re, an RE2 pattern parsed as tree.
func newMatcher(re *regexp.Regexp, tree *syntax.Regexp) matcher {
	return matcher{re: re, fast: compileFast(tree, re.NumSubexp())}
}

// find is re.FindStringSubmatchIndex(text), by the fast program when it
// decides; loc is scratch of fastMaxSlots ints the result may use.
func (m *matcher) find(text string, loc []int) []int {
	if m.fast != nil {
		switch m.fast.run(text, loc) {
		case fastMatched:
			return loc[:m.fast.slots]
		case fastNoMatch:
			return nil
		}
	}
	return m.re.FindStringSubmatchIndex(text)
}

// matches is re.MatchString(text), by the fast program when it decides.
func (m *matcher) matches(text string) bool {
	if m.fast != nil {
		var loc [fastMaxSlots]int
		switch m.fast.run(text, loc[:]) {
		case fastMatched:
			return true
		case fastNoMatch:
			return false
		}
	}
	return m.re.MatchString(text)
}

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

// compilePattern checks and compiles src as a pattern of kind.
func compilePattern(src string, kind patternKind, vars map[string][]string) (pattern, error) {
	p := pattern{src: src, kind: kind, host: -1, key: -1}
	expanded, err := expandPattern(src, kind, vars)
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
	p.matcher = newMatcher(re, tree)
	p.pre = newPrefilter(tree)
	return p, nil
}

// expandPattern checks the <HOST> of src, a pattern of kind, and expands
// it and the <VAR:name> placeholders: the text either engine compiles.
func expandPattern(src string, kind patternKind, vars map[string][]string) (string, error) {
	switch n := strings.Count(src, hostPlaceholder); {
	case n == 0 && kind == failPattern:
		return "", errors.New("missing <HOST>")
	case n > 1:
		return "", errors.New("<HOST> more than once: which address to ban would be ambiguous")
	}
	// <HOST> first, then vars: a var value that reads "<HOST>" stays a
	// literal instead of becoming a second host capture.
	return expandVars(strings.Replace(src, hostPlaceholder, hostPattern, 1), vars)
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
