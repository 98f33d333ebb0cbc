package pipeline

import (
	"strings"
)

// What of a message's text the filters see: vendor prefixes and relay
// repeat reductions undone before matching.

// matchText is the part of a message's text the filters match: trailing
// blanks trimmed, a Solaris message id dropped (stripSolarisID) and
// rsyslog's repeat reduction undone (unwrapRepeated), with the number of
// failures the line stands for.
func matchText(raw string) (string, int) {
	// The id may stand before the reduction's text or inside its
	// brackets, depending on which side of the relay reduced the lines.
	text, n := unwrapRepeated(stripSolarisID(trimBlanksRight(raw)))
	return stripSolarisID(text), n
}

// trimBlanksRight is strings.TrimRight(s, " \t\r\n") without building the
// cutset's byte set on every call (on every line).
func trimBlanksRight(s string) string {
	for len(s) > 0 {
		switch s[len(s)-1] {
		case ' ', '\t', '\r', '\n':
			s = s[:len(s)-1]
		default:
			return s
		}
	}
	return s
}

// stripSolarisID drops the message id Solaris and illumos syslog put
// before the text of every daemon's message ("[ID 800047 auth.info]
// Failed password for ..."), so every filter's anchored patterns see what
// the daemon wrote. Only a well-formed id at the very start is dropped:
// "[ID ", digits, "] " around one "facility.level" word; the start of the
// text is the daemon's, never the client's.
func stripSolarisID(text string) string {
	const prefix = "[ID "
	if !strings.HasPrefix(text, prefix) {
		return text
	}
	rest := text[len(prefix):]
	i := 0
	for i < len(rest) && i < 12 && '0' <= rest[i] && rest[i] <= '9' {
		i++
	}
	if i == 0 || i >= len(rest) || rest[i] != ' ' {
		return text
	}
	end := strings.Index(rest[i+1:], "] ")
	if end <= 0 {
		return text
	}
	word := rest[i+1 : i+1+end]
	dot := strings.IndexByte(word, '.')
	if dot <= 0 || dot == len(word)-1 || strings.ContainsAny(word, " []") {
		return text
	}
	return rest[i+1+end+2:]
}

// maxRepeats caps how many failures one "message repeated" line counts;
// anything near MaxRetry already decides, the cap only bounds the work.
const maxRepeats = 100

// unwrapRepeated undoes rsyslog's repeated-message reduction, which turns
// identical consecutive lines into
// "message repeated 3 times: [ Failed password for root from ...]": it
// returns the inner line and how many failures it stands for. fail2ban users
// meet this with "RepeatedMsgReduction on"; without unwrapping, a burst of
// identical failures would count once and the inner line would not match
// the anchored patterns at all.
func unwrapRepeated(text string) (string, int) {
	const prefix, mid = "message repeated ", " times: ["
	if !strings.HasPrefix(text, prefix) || !strings.HasSuffix(text, "]") {
		return text, 1
	}
	rest := text[len(prefix) : len(text)-1]
	n, i := 0, 0
	for ; i < len(rest) && i < 9 && '0' <= rest[i] && rest[i] <= '9'; i++ {
		n = n*10 + int(rest[i]-'0')
	}
	if i == 0 || !strings.HasPrefix(rest[i:], mid) {
		return text, 1
	}
	return strings.Trim(rest[i+len(mid):], " "), min(max(n, 1), maxRepeats)
}
