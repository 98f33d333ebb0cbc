package fail2ban

import (
	"regexp"
	"regexp/syntax"
	"strings"

	"github.com/sysban/sysban/pipeline"
)

// translatePattern turns one fail2ban pattern into a sysban one.
func translatePattern(kind, src, prefregex string, programs []string) PatternResult {
	pr := PatternResult{Kind: kind, From: strings.ReplaceAll(src, prefixMarker, "%(__prefix_line)s")}
	drop := func(why string) PatternResult {
		pr.Status, pr.Why, pr.To = StatusDropped, why, ""
		return pr
	}
	var notes []string
	p := src
	// Leading inline flags ("(?i)^Failed ...") go back on after the
	// anchor; Python's verbose, ASCII and locale flags have no RE2 form.
	flags := leadingFlags().FindString(p)
	if flags != "" {
		if strings.ContainsAny(flags, "xaLu") {
			return drop("its inline flags " + flags + " have no Go equivalent (verbose, ASCII or locale mode)")
		}
		p = strings.TrimPrefix(p, flags)
	}
	if prefregex != "" {
		inner := strings.TrimPrefix(p, "^")
		if inner == p {
			inner = ".*?" + inner + ".*"
		}
		// The multi-line id only matters across lines; within one line
		// its group is the syslog prefix like any other.
		pref := strings.NewReplacer("<F-MLFID>", "", "</F-MLFID>", "").Replace(prefregex)
		loc := contentRE().FindStringSubmatchIndex(pref)
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
		if !f.re().MatchString(p) {
			continue
		}
		if f.what == possessive {
			return drop("it uses a possessive quantifier, which neither Go's RE2 nor sysban's backtracking engine reads: write it as an atomic group, (?>X*) for X*+")
		}
		pr.Backtracking = true
		notes = append(notes, "it uses "+f.what+", which Go's RE2 engine cannot run (RE2 guarantees linear time on attacker-written lines): the filter runs on sysban's bounded backtracking engine (engine: backtrack), where a match that takes longer than matchtimeout (10ms) counts as no match")
		break
	}
	// fail2ban cuts the time stamp out of the line before matching, so its
	// patterns for logs with a bracketed time in the middle (Apache's
	// error_log, nginx's access log) say "\[\]" where the stamp was.
	if strings.Contains(p, `\[\]`) {
		p = strings.ReplaceAll(p, `\[\]`, `\[[^\]]{1,64}\]`)
		notes = append(notes, `fail2ban's "\[\]" (where it cut out the time stamp) is a bracketed time stamp`)
	}
	refs := backrefNames(p)
	p = fieldTagRE().ReplaceAllStringFunc(p, func(t string) string {
		if strings.HasPrefix(t, "</") {
			return ")"
		}
		// A field a back-reference names stays a group of that name (as
		// fail2ban makes every field one); the others need no capture.
		if name := strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(t, "<F-"), ">")); refs[name] {
			return "(?P<" + name + ">"
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
		if loc := hostGroup().FindStringIndex(p); loc != nil {
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
	if pr.Backtracking {
		// Python's named back-reference; the engine spells it \k<name>.
		p = namedBackref().ReplaceAllString(p, `\k<$1>`)
	}
	// Python spellings Go reads differently.
	p = strings.ReplaceAll(p, `\Z`, `\z`)
	p = strings.ReplaceAll(p, `{,`, `{0,`)
	if flags != "" {
		p = "^" + flags + strings.TrimPrefix(p, "^")
	}
	pr.To = p
	spec := pipeline.FilterSpec{Name: "check", Programs: []string{"check"}, Engine: engineOf(pr.Backtracking)}
	if kind == "failregex" {
		spec.FailRegex = []string{p}
	} else {
		spec.FailRegex = []string{"^<HOST>$"}
		spec.IgnoreRegex = []string{p}
	}
	if _, err := pipeline.CompileFilter(spec); err != nil {
		_, perr := syntax.Parse(strings.ReplaceAll(p, "<HOST>", "x"), syntax.Perl)
		if perr != nil && !pr.Backtracking {
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

// namedBackref finds Python's (?P=name).
var namedBackref = lazyRegexp(`\(\?P=([A-Za-z_][A-Za-z0-9_]*)\)`)

// backrefNames are the group names p's (?P=name) back-references name,
// except sysban's own host and key groups, which no field may become.
func backrefNames(p string) map[string]bool {
	refs := map[string]bool{}
	for _, m := range namedBackref().FindAllStringSubmatch(p, -1) {
		if n := strings.ToLower(m[1]); n != "host" && n != "key" {
			refs[n] = true
		}
	}
	return refs
}

// engineOf is the engine a filter with (or without) backtracking
// patterns runs on.
func engineOf(backtracking bool) string {
	if backtracking {
		return pipeline.EngineBacktrack
	}
	return ""
}

// leadingFlags finds inline flags at a pattern's start, "(?i)".
var leadingFlags = lazyRegexp(`^\(\?[aiLmsux]+\)`)

// leadingStamp matches the time stamps daemons write at the start of their
// own log files (fail2ban removes them before matching): "[Sat Jun 30
// 04:09:24 2012]", "[2012-02-13 17:21:54]", "2012/04/09 11:53:29",
// "2026-11-21T10:00:00.123+01:00", "21-Nov-2026 10:00:00.123",
// "Apr-07-13 07:08:36", Unix seconds "1386543323.000" (squid),
// "Tue Jun 10 18:57:41 2014", "Jun 10 18:57:41". Only the daemon writes the
// start of its line, so skipping a stamp there lets no attacker text in.
const leadingStamp = `(?:\[[^\]]{1,64}\]` +
	`|\d{4}[-/]\d\d[-/]\d\d[ T]\d\d:\d\d:\d\d(?:[.,]\d+)?(?: ?(?:Z|[+-]\d\d:?\d\d))?` +
	`|\d\d-[A-Za-z]{3}-\d{4} \d\d:\d\d:\d\d(?:\.\d+)?` +
	`|[A-Z][a-z]{2}-\d\d-\d\d(?:\d\d)? \d\d:\d\d:\d\d` +
	`|[A-Z][a-z]{2} [A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? \d{4}` +
	`|[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d` +
	`|\d{10}(?:\.\d+)?)`

// skipStamp puts an optional leading time stamp, and the white space after
// it, before rest (a pattern without its ^). RE2 gives the white space
// back when rest needs it.
func skipStamp(rest string) string {
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
