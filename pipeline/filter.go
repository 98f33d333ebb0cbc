package pipeline

import (
	"errors"
	"fmt"
	"path"
	"regexp"
	"regexp/syntax"
	"strings"
	"time"
)

// FilterSpec describes a filter as configured: which programs it reads and
// which lines of theirs are failures.
type FilterSpec struct {
	Name string
	// Programs are the app names it reads: exact ("sshd", "postfix/smtpd")
	// or path.Match globs ("postfix*/smtpd").
	Programs []string
	// FailRegex are Go RE2 regexes with the placeholder <HOST>, matched
	// against Message.Text. Each must be anchored with ^ and contain <HOST>
	// exactly once.
	FailRegex []string
	// IgnoreRegex: a line matching any of these is not a failure. They must
	// be anchored with ^ too; <HOST> is allowed but not required.
	IgnoreRegex []string
	// Modes adds failregexes by mode name (sshd: "ddos", "aggressive"). A
	// jail running mode M uses FailRegex plus Modes[M]; "normal" or "" is
	// FailRegex alone.
	Modes map[string][]string
	// Vars are default values of <VAR:name> placeholders in this filter's
	// patterns (named's flooded domains, apache's probed paths). Each
	// expands to an alternation of the quoted literals; config may replace
	// a filter's vars.
	Vars map[string][]string
	// Correlate are multi-line failures: a line that opens a pending
	// failure under a key, completed by a later line with the same key.
	Correlate []Correlation
}

// Correlation is a failure told by two lines of one filter's programs, with
// other lines interleaved: e.g. sendmail's "<qid>: AUTH failure" completed
// by "<qid>: ... [IP] did not issue MAIL...", or sshd's pid with
// "Connection from IP" then "Disconnecting: Too many authentication
// failures". Exactly one of Open and Close contains <HOST>.
type Correlation struct {
	// Open starts a pending failure. The key is its (?P<key>...) group or,
	// when it has none, the message's ProcID.
	Open string
	// Close completes it when it carries the same key within Window.
	Close string
	// Window is how long an open key waits; 0 means 10 minutes.
	Window time.Duration
}

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
	exact  []string
	globs  []string
	fail   []pattern
	ignore []pattern
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
}

// mayMatch is the prefilter: false means the regex cannot match text.
func (p *pattern) mayMatch(text string) bool {
	return strings.HasPrefix(text, p.prefix) && strings.Contains(text, p.literal)
}

// Name returns the filter's name.
func (f *Filter) Name() string { return f.name }

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
	if r.pattern < 0 {
		return r
	}
	for i := range f.ignore {
		p := &f.ignore[i]
		if prefilter && !p.mayMatch(text) {
			continue
		}
		if p.re.MatchString(text) {
			r.ignore = i
			break
		}
	}
	return r
}

// CompileFilter checks and compiles spec. Errors name the filter and the
// regex index and say why, e.g.
// "pipeline: filter sshd: failregex[2]: missing <HOST>".
func CompileFilter(spec FilterSpec) (*Filter, error) {
	if spec.Name == "" {
		return nil, errors.New("pipeline: filter without a name")
	}
	f := &Filter{name: spec.Name}
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
	if len(spec.FailRegex) == 0 {
		return nil, fmt.Errorf("pipeline: filter %s: no failregex", spec.Name)
	}
	for i, src := range spec.FailRegex {
		p, err := compilePattern(src, true)
		if err != nil {
			return nil, fmt.Errorf("pipeline: filter %s: failregex[%d]: %w", spec.Name, i, err)
		}
		f.fail = append(f.fail, p)
	}
	for i, src := range spec.IgnoreRegex {
		p, err := compilePattern(src, false)
		if err != nil {
			return nil, fmt.Errorf("pipeline: filter %s: ignoreregex[%d]: %w", spec.Name, i, err)
		}
		f.ignore = append(f.ignore, p)
	}
	return f, nil
}

func compilePattern(src string, needHost bool) (pattern, error) {
	p := pattern{src: src, host: -1}
	switch n := strings.Count(src, hostPlaceholder); {
	case n == 0 && needHost:
		return p, errors.New("missing <HOST>")
	case n > 1:
		return p, errors.New("<HOST> more than once: which address to ban would be ambiguous")
	}
	expanded := strings.Replace(src, hostPlaceholder, hostPattern, 1)
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
	names := re.SubexpNames()
	for i, name := range names {
		if name != hostGroup {
			continue
		}
		if p.host >= 0 {
			return p, fmt.Errorf("capture group named %q besides <HOST>", hostGroup)
		}
		p.host = i
	}
	p.re = re
	p.prefix, p.literal = literals(tree)
	return p, nil
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
