package pipeline

import "strings"

// A needle is a literal the prefilter looks for in every line that got
// that far, about four per line. strings.Contains finds a literal by its
// first byte, and a literal the prefilter keeps often starts with a space
// (" rip=", " port "), which a log line has every few bytes: each one
// cost a call into IndexByte and a compare. A needle is found by its
// rarest byte instead (rarest in log text, by byteCommonness), and the
// literal compared around each place that byte occurs. The answer is
// strings.Contains's (TestNeedleAsContains, FuzzNeedle); only the speed
// depends on the guess.
type needle struct {
	s   string
	off int // index in s of the byte searched for
}

func newNeedle(s string) needle {
	nd := needle{s: s}
	for i := 1; i < len(s); i++ {
		if byteCommonness(s[i]) < byteCommonness(s[nd.off]) {
			nd.off = i
		}
	}
	return nd
}

// in reports whether text contains nd.s.
func (nd *needle) in(text string) bool {
	n := len(nd.s)
	switch {
	case n == 0:
		return true
	case n > len(text):
		return false
	case n == 1:
		return strings.IndexByte(text, nd.s[0]) >= 0
	}
	c := nd.s[nd.off]
	// The rare byte of a match sits at p in [off, hi).
	hi := len(text) - n + nd.off + 1
	for i := nd.off; i < hi; {
		j := strings.IndexByte(text[i:hi], c)
		if j < 0 {
			return false
		}
		p := i + j
		if text[p-nd.off:p-nd.off+n] == nd.s {
			return true
		}
		i = p + 1
	}
	return false
}

// byteCommonness is a rough rank of how often byte c occurs in log lines
// (higher: more often): the blank first, then lower-case letters by their
// frequency in English text, digits, the punctuation of addresses and
// key=value pairs, then the rest. It is a guess that makes searches
// fast, never one that makes them right.
func byteCommonness(c byte) int {
	switch {
	case c == ' ':
		return 100
	case c >= 'a' && c <= 'z':
		return letterCommonness[c-'a']
	case c >= '0' && c <= '9':
		return 60
	case c >= 'A' && c <= 'Z':
		return 30
	}
	switch c {
	case '.', ':':
		return 50
	case '-', '=', ',', '/':
		return 35
	case '[', ']', '(', ')', '_', '<', '>', '@', '\'', '"':
		return 20
	}
	return 10
}

// letterCommonness ranks 'a'..'z' by their frequency in English text.
var letterCommonness = [26]int{
	84, 48, 66, 68, 90, 55, 54, 70, 82, 20, 38, 72, 62, // a..m
	81, 83, 58, 15, 79, 80, 85, 64, 40, 45, 25, 50, 15, // n..z
}
