package pipeline

import (
	"regexp/syntax"
	"slices"
	"strings"
)

// The literal prefilter: cheap substring tests that every line a pattern
// matches must pass, derived from the parsed regex when the pattern is
// compiled, so that most lines are rejected without running the regex.
// It may only ever be conservative: a line it rejects is a line the regex
// would not match (FuzzPrefilterSound holds it to that).

// prefilter is what every match of one pattern contains.
type prefilter struct {
	// prefix is a literal every match starts with: patterns are anchored,
	// so HasPrefix rejects most lines after comparing a few bytes.
	prefix string
	// literal is the longest other literal every match contains; it
	// rejects lines that share the prefix but not the message, e.g.
	// "pam_unix(sshd:session)" against "pam_unix(sshd:auth)". Empty
	// strings always pass.
	literal string
	// also are the other literals every match contains (longest first,
	// at most maxAlso); oneOf are alternations of which every match
	// contains at least one branch's literal. They reject the benign
	// lines that carry the pattern's longest literal too, e.g. dovecot's
	// "Login: user=<u>, method=PLAIN, rip=..." against its failure
	// patterns: a few Contains calls cost less than one regex run, which
	// was 45% of `sysban test` in the profile.
	also  []string
	oneOf [][]string
	// The same literals as needles, which is how mayMatch searches
	// them (compile makes them from the strings above).
	litN   needle
	alsoN  []needle
	oneOfN [][]needle
}

// compile makes the needles of p's literals.
func (p *prefilter) compile() {
	p.litN = newNeedle(p.literal)
	p.alsoN = p.alsoN[:0]
	for _, l := range p.also {
		p.alsoN = append(p.alsoN, newNeedle(l))
	}
	p.oneOfN = p.oneOfN[:0]
	for _, alts := range p.oneOf {
		var ns []needle
		for _, a := range alts {
			ns = append(ns, newNeedle(a))
		}
		p.oneOfN = append(p.oneOfN, ns)
	}
}

// maxAlso bounds the extra literal checks per pattern: each costs a
// substring search on every line that got that far.
const maxAlso = 4

// minAlso is the shortest literal worth checking besides the longest: one
// or two bytes occur in almost every line.
const minAlso = 3

// mayMatch is the prefilter: false means the regex cannot match text.
func (p *prefilter) mayMatch(text string) bool {
	if !strings.HasPrefix(text, p.prefix) || !p.litN.in(text) {
		return false
	}
	for i := range p.alsoN {
		if !p.alsoN[i].in(text) {
			return false
		}
	}
	for _, alts := range p.oneOfN {
		if !anyIn(text, alts) {
			return false
		}
	}
	return true
}

func anyIn(text string, alts []needle) bool {
	for i := range alts {
		if alts[i].in(text) {
			return true
		}
	}
	return false
}

// newPrefilter derives the prefilter from a parsed pattern: prefix is the
// literal text right after the ^ anchor; the literals every match must
// contain give literal (the longest besides the prefix, the first of equal
// length) and also (the next longest); the alternations every match
// contains one branch of give oneOf, each branch by its own longest
// required literal (an alternation with a branch that requires none proves
// nothing and is left out). Case-folded, optional and starred parts are
// skipped.
func newPrefilter(re *syntax.Regexp) prefilter {
	var p prefilter
	if re.Op == syntax.OpConcat && len(re.Sub) > 1 && re.Sub[0].Op == syntax.OpBeginText {
		if s := re.Sub[1]; s.Op == syntax.OpLiteral && s.Flags&syntax.FoldCase == 0 {
			p.prefix = string(s.Rune)
		}
	}
	var req []string
	requiredLiterals(re, &req, &p.oneOf)
	for _, l := range req {
		if len(l) > len(p.literal) && l != p.prefix {
			p.literal = l
		}
	}
	slices.SortStableFunc(req, func(a, b string) int { return len(b) - len(a) })
	for _, l := range req {
		if len(p.also) == maxAlso {
			break
		}
		// The longest literal is already checked, and so is the prefix
		// (also at the start, where Contains would find it anyway).
		if len(l) < minAlso || l == p.prefix || l == p.literal || slices.Contains(p.also, l) {
			continue
		}
		p.also = append(p.also, l)
	}
	p.compile()
	return p
}

// requiredLiterals is the one walk over a parsed regex: it appends to req
// the literals every match of re contains, in the order they occur, and to
// alts (when not nil) the alternations every match takes a branch of, as
// each branch's longest required literal. Alternations nested in a branch
// prove nothing at that depth and are not descended into.
func requiredLiterals(re *syntax.Regexp, req *[]string, alts *[][]string) {
	switch re.Op {
	case syntax.OpLiteral:
		if re.Flags&syntax.FoldCase == 0 {
			*req = append(*req, string(re.Rune))
		}
	case syntax.OpConcat:
		for _, s := range re.Sub {
			requiredLiterals(s, req, alts)
		}
	case syntax.OpCapture, syntax.OpPlus:
		requiredLiterals(re.Sub[0], req, alts)
	case syntax.OpRepeat:
		if re.Min >= 1 {
			requiredLiterals(re.Sub[0], req, alts)
		}
	case syntax.OpAlternate:
		if alts == nil {
			return
		}
		var group []string
		for _, b := range re.Sub {
			var breq []string
			requiredLiterals(b, &breq, nil)
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
