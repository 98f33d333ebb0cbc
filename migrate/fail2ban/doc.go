// Package fail2ban reads a fail2ban configuration directory the way
// fail2ban itself reads it and translates it into a sysban configuration,
// with a report of what was carried, changed or dropped. It backs
// `sysban import-fail2ban`.
//
// Layout, in the order data flows:
//
//   - ini.go: one INI file, parsed with the rules of Python's configparser
//     as fail2ban configures it: section headers, "key = value" or
//     "key: value", continuation lines indented deeper than their key,
//     whole-line comments starting with '#' or ';', inline comments only
//     after " ;", keys lower-cased, a key or section twice in one file an
//     error.
//   - layers.go: files layered as fail2ban layers them. A name such as
//     "jail" is jail.conf, jail.d/*.conf, jail.local, jail.d/*.local
//     (alphabetical within each group); every file pulls in its
//     [INCLUDES] before/after files (and their .local companions) around
//     itself. Later files override earlier keys of the same section; the
//     overridden value stays reachable as %(known/key)s. Values are
//     interpolated on demand: %(key)s from the section, then [DEFAULT];
//     %(default/key)s, %(known/key)s, %(section/key)s; %(__name__)s is the
//     section's name.
//   - filter.go: a filter.d file turned into a sysban filter, or the reason
//     why not: pattern.go translates each failregex/ignoreregex (prefix,
//     prefregex, tags, Python spellings), programs.go finds the syslog
//     programs it reads; builtin.go: fail2ban's filter names that sysban's
//     built-in filters replace.
//   - translate.go: [DEFAULT], fail2ban.conf and the output; jail.go: each
//     jail's filter, actions, ports and log paths; report.go: the migration
//     report.
//
// Bounds, because the directory may be anything: a file is at most
// MaxFileSize, a value (raw or interpolated) at most MaxValueSize,
// interpolation at most MaxInterpolationDepth references deep (fail2ban's
// own parser stops at the same depth), includes at most MaxIncludeDepth
// files deep. Exceeding one is an error that names the file, section and
// key; nothing loops or grows without limit.
//
// Patterns: fail2ban matches a failregex against the log line with its time
// stamp cut out; sysban matches the message text after the program tag (or,
// for a daemon's own file forwarded by imfile, the whole line). So the
// syslog prefix (%(__prefix_line)s) becomes the ^ anchor, a leading time
// stamp a daemon writes is skipped, fail2ban's "\[\]" (the hole where a
// bracketed time was) becomes a bracketed stamp, a prefregex is joined with
// each pattern, and a pattern fail2ban searched for anywhere keeps that
// meaning behind "^.*?" with a report entry asking to anchor it. The test
// suite runs the translated stock filters over fail2ban's own annotated
// sample logs and requires that they count no line fail2ban does not.
//
// Regexes: sysban runs Go's RE2, which guarantees linear time on every
// line an attacker writes. A filter with Python patterns that RE2 cannot
// express (look-around, back-references, atomic groups) is carried with
// engine: backtrack, so that all its patterns run on the pipeline's
// bounded backtracking engine (each match limited to matchtimeout, a match
// that runs out counting as no match); the report says which pattern
// needed it and why. (?P=name) becomes \k<name>, and a field a
// back-reference names stays a group of that name. Possessive quantifiers,
// which that engine does not read either, and multi-line patterns are
// reported as not carried, with the pattern and the reason; nothing is
// dropped silently or loosened.
package fail2ban
