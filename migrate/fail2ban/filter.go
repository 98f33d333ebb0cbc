package fail2ban

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"regexp/syntax"
	"slices"
	"strconv"
	"strings"

	"github.com/sysban/sysban/pipeline"
)

// PatternResult says what became of one failregex or ignoreregex.
type PatternResult struct {
	Kind   string `json:"kind"`             // failregex or ignoreregex
	From   string `json:"from"`             // as fail2ban reads it (interpolated)
	To     string `json:"to,omitempty"`     // sysban's pattern; empty when not carried
	Status Status `json:"status"`           // carried, changed or dropped
	Why    string `json:"reason,omitempty"` // for changed and dropped
	// Backtracking is set when the pattern needs a backtracking engine
	// (look-around, back-references, atomic or possessive forms).
	Backtracking bool `json:"backtracking,omitempty"`
}

// FilterResult is a translated filter.d file.
type FilterResult struct {
	Name     string               `json:"name"`           // sysban filter name
	Source   string               `json:"source"`         // fail2ban filter name (filter.d/<source>.conf)
	Args     map[string]string    `json:"args,omitempty"` // the jail's arguments to it ([mode=...])
	Files    []string             `json:"files"`          // read, in order
	Spec     *pipeline.FilterSpec `json:"-"`              // nil when not carried
	Patterns []PatternResult      `json:"patterns"`
	Notes    []Item               `json:"notes,omitempty"`
	// NotCarried says why the filter as a whole could not be carried.
	NotCarried string `json:"not_carried,omitempty"`
	// ProgramsGuessed is set when no _daemon or journalmatch named the
	// programs: the user must check them.
	ProgramsGuessed bool `json:"programs_guessed,omitempty"`
}

// prefixMarker stands for fail2ban's syslog line prefix ("host prog[pid]: ")
// while patterns are interpolated; sysban matches after that prefix.
const prefixMarker = "\x00PREFIX\x00"

// prefixNames are the names fail2ban's common.conf gives the line prefix
// (0.8 called it __line_prefix).
var prefixNames = []string{"__prefix_line", "__line_prefix", "__prefix_line_sl"}

// regexTags are fail2ban's pattern tags, which are not option references.
var hostTags = []string{"<HOST>", "<ADDR>", "<IP4>", "<IP6>", "<DNS>", "<CIDR>", "<SUBNET>"}

var (
	tagRE = regexp.MustCompile(`<([A-Za-z_][A-Za-z0-9_./-]*)>`)
	// leadingProgram finds a 0.8-era pattern's program tag: "vchkpw-smtp: ".
	leadingProgram = regexp.MustCompile(`^\^?([A-Za-z][A-Za-z0-9_.-]*(?:/[A-Za-z0-9_.-]+)*)(?:\\\[\\d\+\\\])?: `)
	fieldTagRE     = regexp.MustCompile(`</?F-[A-Za-z0-9_-]+>`)
	hostGroup      = regexp.MustCompile(`\(\?P<host>`)
	contentRE      = regexp.MustCompile(`<F-CONTENT>(.*?)</F-CONTENT>`)
	// Python forms RE2 lacks, each a reason a pattern needs backtracking.
	backtrackForms = []struct {
		re   *regexp.Regexp
		what string
	}{
		{regexp.MustCompile(`\(\?<?[=!]`), "look-around"},
		{regexp.MustCompile(`\(\?P=|\\[1-9]`), "a back-reference"},
		{regexp.MustCompile(`\(\?>`), "an atomic group"},
		{regexp.MustCompile(`[*+?}]\+`), "a possessive quantifier"},
	}
)

// translateFilter reads filter.d/name as fail2ban would for a jail that
// passes args (its filter = name[args]) and translates it.
func translateFilter(fsys fs.FS, name, sysbanName string, args map[string]string) FilterResult {
	res := FilterResult{Name: sysbanName, Source: name, Args: args}
	l, err := readLayers(fsys, "filter.d/"+name)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			res.NotCarried = fmt.Sprintf("filter.d/%s.conf not found: fail2ban would not start this jail", name)
		} else {
			res.NotCarried = err.Error()
		}
		return res
	}
	res.Files = l.Files()
	vars := map[string]string{}
	for k, v := range args {
		vars[k] = v
	}
	for _, p := range prefixNames {
		vars[p] = prefixMarker
	}
	// [Init] values: the jail's arguments win over them.
	init := map[string]string{}
	for _, k := range l.OwnKeys("Init") {
		if v, err := l.Get("Init", k, nil); err == nil {
			init[k] = v
		}
	}
	for k, v := range args {
		init[k] = v
	}
	get := func(key string) (string, error) {
		v, err := l.Get("Definition", key, vars)
		if errors.Is(err, ErrNoOption) {
			if iv, ok := init[key]; ok {
				return iv, nil
			}
			return "", err
		}
		if err != nil {
			return "", err
		}
		return substituteTags(v, func(tag string) (string, bool) {
			if iv, ok := init[tag]; ok {
				return iv, true
			}
			if strings.Contains(tag, "/") { // <section/key>, e.g. guacamole's <L_catalina/failregex>
				v, err := l.GetRef("Definition", tag, vars)
				return v, err == nil
			}
			v, err := l.Get("Definition", tag, vars)
			return v, err == nil
		})
	}
	fail, err := get("failregex")
	if err != nil && !errors.Is(err, ErrNoOption) {
		res.NotCarried = "failregex: " + err.Error()
		return res
	}
	ignore, err := get("ignoreregex")
	if err != nil && !errors.Is(err, ErrNoOption) {
		res.NotCarried = "ignoreregex: " + err.Error()
		return res
	}
	pref, err := get("prefregex")
	if err != nil && !errors.Is(err, ErrNoOption) {
		res.NotCarried = "prefregex: " + err.Error()
		return res
	}
	daemon, _ := get("_daemon")
	journal, _ := get("journalmatch")
	programs, guessed := programsFor(name, daemon, journal)
	if guessed {
		if tags := programTags(fail); len(tags) > 0 {
			programs = tags
		}
	}
	res.ProgramsGuessed = guessed
	if guessed {
		res.Notes = append(res.Notes, Item{Status: StatusChanged, Key: "programs", To: strings.Join(programs, ", "),
			Why: "the filter names no daemon (_daemon) or journalmatch: the programs are guessed from its name or the program tags its patterns start with; check them"})
	}
	if ml, err := get("maxlines"); err == nil {
		if n, _ := strconv.Atoi(strings.TrimSpace(ml)); n > 1 {
			res.Notes = append(res.Notes, Item{Status: StatusDropped, Key: "maxlines", From: ml,
				Why: "sysban matches one message at a time; failures told by two lines are sysban correlations (as the built-in sendmail-auth and sshd do)"})
		}
	}
	if dp, err := get("datepattern"); err == nil && dp != "" {
		res.Notes = append(res.Notes, Item{Status: StatusDropped, Key: "datepattern", From: dp,
			Why: "sysban takes the time from the syslog header and counts on its own clock"})
	}
	if journal != "" {
		res.Notes = append(res.Notes, Item{Status: StatusChanged, Key: "journalmatch", From: journal, To: "programs: " + strings.Join(programs, ", "),
			Why: "sysban receives the journal through the forwarder and routes by program"})
	}

	spec := pipeline.FilterSpec{Name: sysbanName, Programs: programs}
	ignoreLost := false
	for _, kind := range []string{"failregex", "ignoreregex"} {
		value := fail
		if kind == "ignoreregex" {
			value = ignore
		}
		for _, line := range strings.Split(value, "\n") {
			if strings.TrimSpace(line) == "" {
				continue
			}
			pr := translatePattern(kind, strings.TrimSpace(line), pref, programs)
			if pr.Status != StatusDropped {
				if kind == "failregex" {
					spec.FailRegex = append(spec.FailRegex, pr.To)
				} else {
					spec.IgnoreRegex = append(spec.IgnoreRegex, pr.To)
				}
			} else if kind == "ignoreregex" {
				ignoreLost = true
			}
			res.Patterns = append(res.Patterns, pr)
		}
	}
	switch {
	case ignoreLost:
		res.NotCarried = "an ignoreregex could not be carried: without it the filter would count lines fail2ban ignored"
	case len(spec.FailRegex) == 0:
		res.NotCarried = "no failregex could be carried"
	default:
		if _, err := pipeline.CompileFilter(spec); err != nil {
			res.NotCarried = err.Error()
		} else {
			res.Spec = &spec
		}
	}
	return res
}

// substituteTags replaces <name> tags that name options (fail2ban resolves
// them after interpolation, e.g. sshd's <mdre-normal>), recursively and
// bounded; pattern tags such as <HOST> resolve to nothing and stay.
func substituteTags(v string, lookup func(string) (string, bool)) (string, error) {
	for depth := 0; ; depth++ {
		changed := false
		out := tagRE.ReplaceAllStringFunc(v, func(t string) string {
			name := strings.ToLower(t[1 : len(t)-1])
			if slices.Contains(hostTags, strings.ToUpper(t)) || name == "skiplines" || strings.HasPrefix(name, "f-") {
				return t
			}
			if r, ok := lookup(name); ok {
				changed = true
				return r
			}
			return t
		})
		if len(out) > MaxValueSize {
			return "", fmt.Errorf("tag substitution longer than %d bytes", MaxValueSize)
		}
		if !changed {
			return out, nil
		}
		if depth >= MaxInterpolationDepth {
			return "", fmt.Errorf("<tag> substitution deeper than %d (a loop?)", MaxInterpolationDepth)
		}
		v = out
	}
}

// translatePattern turns one fail2ban pattern into a sysban one.
func translatePattern(kind, src, prefregex string, programs []string) PatternResult {
	pr := PatternResult{Kind: kind, From: strings.ReplaceAll(src, prefixMarker, "%(__prefix_line)s")}
	drop := func(why string) PatternResult {
		pr.Status, pr.Why, pr.To = StatusDropped, why, ""
		return pr
	}
	var notes []string
	p := src
	if prefregex != "" {
		inner := strings.TrimPrefix(p, "^")
		if inner == p {
			inner = ".*?" + inner + ".*"
		}
		// The multi-line id only matters across lines; within one line
		// its group is the syslog prefix like any other.
		pref := strings.NewReplacer("<F-MLFID>", "", "</F-MLFID>", "").Replace(prefregex)
		loc := contentRE.FindStringSubmatchIndex(pref)
		if loc == nil {
			return drop("its prefregex has no <F-CONTENT>...</F-CONTENT> to put the pattern in")
		}
		if c := pref[loc[2]:loc[3]]; c != ".+" {
			notes = append(notes, "the prefregex's content ("+c+") is not also required of the line")
		}
		p = pref[:loc[0]] + "(?:" + inner + ")" + pref[loc[1]:]
		notes = append(notes, "joined with the filter's prefregex")
	}
	switch {
	case strings.Contains(p, "<SKIPLINES>") || strings.Contains(p, `\n`):
		return drop("a multi-line pattern: sysban matches one message at a time; write a sysban correlation (two patterns sharing a key, as the built-in sendmail-auth does)")
	case strings.Contains(p, "<F-NOFAIL>") || strings.Contains(p, "<F-MLFID>") || strings.Contains(p, "<F-MLFAILED>"):
		return drop("it marks part of a multi-line failure (<F-NOFAIL>/<F-MLFID>), which sysban expresses as a correlation")
	}
	for _, f := range backtrackForms {
		if f.re.MatchString(p) {
			pr.Backtracking = true
			return drop("it uses " + f.what + ", which Go's RE2 engine cannot run (it guarantees linear time on attacker-written lines); a bounded backtracking engine is not in sysban yet: rewrite it without, or split it into patterns and an ignoreregex")
		}
	}
	p = fieldTagRE.ReplaceAllStringFunc(p, func(t string) string {
		if strings.HasPrefix(t, "</") {
			return ")"
		}
		return "(?:"
	})
	for _, t := range hostTags[1:] {
		if strings.Contains(p, t) {
			p = strings.ReplaceAll(p, t, "<HOST>")
			notes = append(notes, t+" is sysban's <HOST> (an address; a hostname only with usedns)")
		}
	}
	if !strings.Contains(p, "<HOST>") {
		if loc := hostGroup.FindStringIndex(p); loc != nil {
			if end := groupEnd(p, loc[0]); end > 0 {
				p = p[:loc[0]] + "<HOST>" + p[end:]
				notes = append(notes, "its (?P<host>...) group is sysban's strict <HOST>")
			}
		}
	}
	if n := strings.Count(p, "<HOST>"); n > 1 {
		return drop("<HOST> appears more than once: which address to ban would be ambiguous; split it into one pattern per <HOST>")
	} else if n == 0 && kind == "failregex" {
		return drop("no <HOST>: the pattern names no address to ban")
	}
	switch {
	case strings.HasPrefix(strings.TrimLeft(p, "^"), prefixMarker):
		// "^^%(__prefix_line)s" happens when a prefregex anchors a piece
		// that is anchored already (freeswitch). fail2ban's prefix also
		// matches nothing: lines of a daemon's own file (with its time
		// stamp, which fail2ban cut out) reach the same pattern.
		p = "^" + skipStamp(strings.TrimPrefix(strings.TrimLeft(p, "^"), prefixMarker))
	case strings.Contains(p, prefixMarker):
		return drop("the syslog line prefix (%(__prefix_line)s) is not at its start")
	case strings.HasPrefix(p, "^"):
		p = "^" + skipStamp(strings.TrimPrefix(p, "^"))
		notes = append(notes, "fail2ban anchored it after the line's time stamp; sysban anchors it at the start of the message text, after the program tag or a daemon's own time stamp")
	default:
		if rest, ok := stripProgram(p, programs); ok {
			p = "^" + rest
			notes = append(notes, "its leading program tag is the filter's programs; anchored at the message start")
		} else {
			p = "^.*?" + p
			notes = append(notes, "fail2ban searched the whole line for it; it is kept unanchored (^.*?), so text an attacker writes into the line can still match it, as before: anchor it once `sysban test` shows your lines")
		}
	}
	// Python spellings Go reads differently.
	p = strings.ReplaceAll(p, `\Z`, `\z`)
	p = strings.ReplaceAll(p, `{,`, `{0,`)
	pr.To = p
	spec := pipeline.FilterSpec{Name: "check", Programs: []string{"check"}}
	if kind == "failregex" {
		spec.FailRegex = []string{p}
	} else {
		spec.FailRegex = []string{"^<HOST>$"}
		spec.IgnoreRegex = []string{p}
	}
	if _, err := pipeline.CompileFilter(spec); err != nil {
		_, perr := syntax.Parse(strings.ReplaceAll(p, "<HOST>", "x"), syntax.Perl)
		if perr != nil {
			return drop("Go's RE2 cannot read it: " + perr.Error())
		}
		return drop(err.Error())
	}
	pr.Status = StatusCarried
	if notes != nil {
		pr.Status = StatusChanged
		pr.Why = strings.Join(notes, "; ")
	}
	return pr
}

// leadingStamp matches the time stamps daemons write at the start of their
// own log files (fail2ban removes them before matching): "[Sat Jun 30
// 04:09:24 2012]", "[2012-02-13 17:21:54]", "2012/04/09 11:53:29",
// "2026-11-21T10:00:00.123+01:00", "21-Nov-2026 10:00:00.123",
// "Tue Jun 10 18:57:41 2014", "Jun 10 18:57:41". Only the daemon writes the
// start of its line, so skipping a stamp there lets no attacker text in.
const leadingStamp = `(?:\[[^\]]{1,64}\]` +
	`|\d{4}[-/]\d\d[-/]\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?: ?(?:Z|[+-]\d\d:?\d\d))?` +
	`|\d\d-[A-Za-z]{3}-\d{4} \d\d:\d\d:\d\d(?:\.\d+)?` +
	`|[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4}` +
	`|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d)`

// skipStamp puts an optional leading time stamp before rest (a pattern
// without its ^). When rest starts by matching white space itself, the
// stamp takes none, else it takes what follows it.
func skipStamp(rest string) string {
	for _, ws := range []string{" ", `\s`, "(?: ", `(?:\s`} {
		if strings.HasPrefix(rest, ws) {
			return "(?:" + leadingStamp + ")?" + rest
		}
	}
	return "(?:" + leadingStamp + `\s*)?` + rest
}

// groupEnd returns the index just after the group that opens at p[start],
// or -1 when it does not close.
func groupEnd(p string, start int) int {
	depth := 0
	inClass := false
	for i := start; i < len(p); i++ {
		switch c := p[i]; {
		case c == '\\':
			i++
		case inClass:
			if c == ']' {
				inClass = false
			}
		case c == '[':
			inClass = true
		case c == '(':
			depth++
		case c == ')':
			depth--
			if depth == 0 {
				return i + 1
			}
		}
	}
	return -1
}

// stripProgram removes a leading "prog: " or "prog[pid]: " naming one of
// programs (0.8-era patterns included the program tag, which sysban's
// routing already matched).
func stripProgram(p string, programs []string) (string, bool) {
	for _, prog := range programs {
		lit := regexp.QuoteMeta(prog)
		for _, form := range []string{prog + ": ", lit + ": ", prog + `\[\d+\]: `, lit + `\[\d+\]: `} {
			if strings.HasPrefix(p, form) {
				return strings.TrimPrefix(p, form), true
			}
		}
	}
	return "", false
}

// notPrograms are words daemons start messages with, never program tags.
var notPrograms = []string{"warning", "error", "fatal", "info", "notice", "debug", "client", "user", "reject", "panic"}

// programTags collects the program tags that start 0.8-era patterns
// ("vchkpw-smtp: password fail ..."): fail2ban matched them in the line,
// sysban routes by them.
func programTags(failregex string) []string {
	var out []string
	for _, line := range strings.Split(failregex, "\n") {
		m := leadingProgram.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || slices.Contains(notPrograms, strings.ToLower(m[1])) || slices.Contains(out, m[1]) {
			continue
		}
		out = append(out, m[1])
	}
	slices.Sort(out)
	return out
}

// knownDaemons are program names a filter's name may start with.
var knownDaemons = []string{"sshd", "dovecot", "postfix", "sendmail", "saslauthd", "named", "openvpn", "apache", "httpd",
	"nginx", "qpopper", "vsftpd", "proftpd", "pure-ftpd", "squirrelmail", "vpopmail", "vchkpw", "qmail", "courier",
	"cyrus", "exim", "asterisk", "lighttpd", "mysqld", "monit", "squid", "webmin", "dropbear", "rblsmtpd", "smtpd"}

// programsFor derives the syslog programs a filter reads: from its
// _daemon regex, else its journalmatch, else its name. guessed is true
// for the last.
func programsFor(name, daemon, journal string) ([]string, bool) {
	if daemon != "" {
		if globs, ok := regexToGlobs(daemon); ok {
			return globs, false
		}
	}
	for _, f := range strings.Fields(journal) {
		k, v, _ := strings.Cut(f, "=")
		switch k {
		case "SYSLOG_IDENTIFIER":
			return []string{v}, false
		case "_SYSTEMD_UNIT":
			return []string{strings.TrimSuffix(strings.TrimSuffix(v, ".service"), "@")}, false
		}
	}
	var out []string
	for _, d := range knownDaemons {
		if strings.Contains(name, d) {
			out = append(out, d)
		}
	}
	for _, p := range slices.Clone(out) {
		switch p {
		case "postfix":
			out = append(out, "postfix/*", "postfix-*/*")
		case "vchkpw", "vpopmail":
			out = append(out, "vchkpw-*")
		case "apache", "httpd":
			out = append(out, "apache2", "httpd")
		}
	}
	if len(out) == 0 {
		out = []string{name}
	}
	slices.Sort(out)
	return slices.Compact(out), true
}

// regexToGlobs lists the program globs a _daemon regex such as
// "(?:sshd|sshd-session)" or "postfix(-\w+)?/\w+" matches: at most 16,
// else ok is false.
func regexToGlobs(re string) ([]string, bool) {
	tree, err := syntax.Parse(re, syntax.Perl)
	if err != nil {
		return nil, false
	}
	var walk func(*syntax.Regexp) ([]string, bool)
	walk = func(r *syntax.Regexp) ([]string, bool) {
		switch r.Op {
		case syntax.OpLiteral:
			s := string(r.Rune)
			if r.Flags&syntax.FoldCase != 0 {
				s = strings.ToLower(s)
			}
			return []string{globQuote(s)}, true
		case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
			return []string{"?"}, true
		case syntax.OpStar, syntax.OpPlus, syntax.OpRepeat:
			return []string{"*"}, true
		case syntax.OpQuest:
			sub, ok := walk(r.Sub[0])
			return append([]string{""}, sub...), ok
		case syntax.OpCapture:
			return walk(r.Sub[0])
		case syntax.OpEmptyMatch, syntax.OpBeginLine, syntax.OpEndLine, syntax.OpBeginText, syntax.OpEndText, syntax.OpWordBoundary:
			return []string{""}, true
		case syntax.OpAlternate:
			var out []string
			for _, s := range r.Sub {
				sub, ok := walk(s)
				if !ok {
					return nil, false
				}
				out = append(out, sub...)
			}
			return out, len(out) <= 16
		case syntax.OpConcat:
			out := []string{""}
			for _, s := range r.Sub {
				sub, ok := walk(s)
				if !ok {
					return nil, false
				}
				var next []string
				for _, a := range out {
					for _, b := range sub {
						next = append(next, a+b)
					}
				}
				if len(next) > 16 {
					return nil, false
				}
				out = next
			}
			return out, true
		}
		return nil, false
	}
	globs, ok := walk(tree)
	if !ok {
		return nil, false
	}
	var out []string
	for _, g := range globs {
		for strings.Contains(g, "**") {
			g = strings.ReplaceAll(g, "**", "*")
		}
		if g != "" {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	out = slices.Compact(out)
	return out, len(out) > 0
}
