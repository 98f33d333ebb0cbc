package fail2ban

import (
	"regexp/syntax"
	"slices"
	"strings"
)

// notPrograms are words daemons start messages with, never program tags.
var notPrograms = []string{"warning", "error", "fatal", "info", "notice", "debug", "client", "user", "reject", "panic"}

// programTags collects the program tags that start 0.8-era patterns
// ("vchkpw-smtp: password fail ..."): fail2ban matched them in the line,
// sysban routes by them.
func programTags(failregex string) []string {
	var out []string
	for _, line := range strings.Split(failregex, "\n") {
		m := leadingProgram().FindStringSubmatch(strings.TrimSpace(line))
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
