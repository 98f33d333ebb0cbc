package pipeline

import (
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Compiling a parsed pattern into a fast program (fastmatch.go runs it):
// the parse tree is walked once, each node becoming literal comparisons,
// class runs, branches and capture saves in the order Go's own compiler
// lays them out, so that trying them in program order is trying them in
// the regex's priority order.

// compileFast compiles a parsed pattern with ncap capture groups; nil when
// it is outside the subset.
func compileFast(re *syntax.Regexp, ncap int) *fastProg {
	// The program only tries a match at the start of the text.
	if 2*(ncap+1) > fastMaxSlots || !anchoredAtStart(re) {
		return nil
	}
	c := fastCompiler{}
	c.emit(fastInst{op: fastSave, x: 0})
	if !c.compile(re) {
		return nil
	}
	c.emit(fastInst{op: fastSave, x: 1})
	c.emit(fastInst{op: fastMatch})
	for i := range c.inst {
		in := &c.inst[i]
		in.next, in.stop = -1, -1
		if in.op != fastRun {
			continue
		}
		j := i + 1
		for j < len(c.inst) && c.inst[j].op == fastSave {
			j++
		}
		if j < len(c.inst) && c.inst[j].op == fastLit && c.inst[j].lit[0] < utf8.RuneSelf {
			in.next = int16(c.inst[j].lit[0])
		}
		in.wide = in.wide && in.next >= 0 && in.max < 0 && in.min <= 1
		if in.wide {
			in.stop = in.class.onlyMissing()
		}
	}
	return &fastProg{inst: c.inst, slots: 2 * (ncap + 1)}
}

type fastCompiler struct {
	inst []fastInst
}

func (c *fastCompiler) emit(in fastInst) int {
	c.inst = append(c.inst, in)
	return len(c.inst) - 1
}

// compile appends re's instructions; false when re is outside the subset.
func (c *fastCompiler) compile(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpEmptyMatch:
		return true
	case syntax.OpBeginText:
		c.emit(fastInst{op: fastBegin})
		return true
	case syntax.OpEndText:
		c.emit(fastInst{op: fastEnd})
		return true
	case syntax.OpLiteral:
		return c.literal(re)
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		set, _, ok := singleClass(re)
		if !ok {
			return false
		}
		c.emit(fastInst{op: fastRun, min: 1, max: 1, greedy: true, class: set})
		return true
	case syntax.OpCapture:
		c.emit(fastInst{op: fastSave, x: int32(2 * re.Cap)})
		if !c.compile(re.Sub[0]) {
			return false
		}
		c.emit(fastInst{op: fastSave, x: int32(2*re.Cap + 1)})
		return true
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if !c.compile(s) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		var jumps []int
		for i, s := range re.Sub {
			split := -1
			if i < len(re.Sub)-1 {
				split = c.emit(fastInst{op: fastSplit})
				c.inst[split].x = int32(len(c.inst))
			}
			if !c.compile(s) {
				return false
			}
			if split >= 0 {
				jumps = append(jumps, c.emit(fastInst{op: fastJmp}))
				c.inst[split].y = int32(len(c.inst))
			}
		}
		for _, j := range jumps {
			c.inst[j].x = int32(len(c.inst))
		}
		return true
	case syntax.OpStar, syntax.OpPlus, syntax.OpQuest, syntax.OpRepeat:
		return c.repeat(re)
	}
	return false // word boundaries, line anchors, OpNoMatch
}

// literal compiles a literal string: byte comparison is exact when the
// literal holds no U+FFFD (Go's decoding of an invalid byte, which the same
// bytes would not compare equal to); folded only when ASCII.
func (c *fastCompiler) literal(re *syntax.Regexp) bool {
	fold := re.Flags&syntax.FoldCase != 0
	var b strings.Builder
	for _, r := range re.Rune {
		if r == utf8.RuneError || (fold && r >= utf8.RuneSelf) {
			return false
		}
		if fold && 'A' <= r && r <= 'Z' {
			r += 'a' - 'A'
		}
		b.WriteRune(r)
	}
	op := fastLit
	if fold {
		op = fastFold
	}
	c.emit(fastInst{op: op, lit: b.String()})
	return true
}

// repeat compiles *, +, ? and {n,m}: of one character as a run, of a
// group with branches and loops (counted ones spelled out), except a loop
// over a group that can match empty, where Go's rules for empty
// iterations would have to be copied.
func (c *fastCompiler) repeat(re *syntax.Regexp) bool {
	greedy := re.Flags&syntax.NonGreedy == 0
	min, max := int32(0), int32(-1)
	switch re.Op {
	case syntax.OpPlus:
		min = 1
	case syntax.OpQuest:
		max = 1
	case syntax.OpRepeat:
		min, max = int32(re.Min), int32(re.Max)
	}
	if set, wide, ok := singleClass(re.Sub[0]); ok {
		c.emit(fastInst{op: fastRun, min: min, max: max, greedy: greedy, class: set, wide: wide})
		return true
	}
	sub := re.Sub[0]
	if re.Op == syntax.OpRepeat {
		return c.counted(sub, int(min), int(max), re.Flags)
	}
	if re.Op != syntax.OpQuest && canBeEmpty(sub) {
		return false
	}
	// pick orders a split's targets by greediness: x is tried first.
	pick := func(split int, body, out int32) {
		if greedy {
			c.inst[split].x, c.inst[split].y = body, out
		} else {
			c.inst[split].x, c.inst[split].y = out, body
		}
	}
	switch re.Op {
	case syntax.OpQuest:
		split := c.emit(fastInst{op: fastSplit})
		if !c.compile(sub) {
			return false
		}
		pick(split, int32(split+1), int32(len(c.inst)))
	case syntax.OpStar:
		split := c.emit(fastInst{op: fastSplit})
		if !c.compile(sub) {
			return false
		}
		c.emit(fastInst{op: fastJmp, x: int32(split)})
		pick(split, int32(split+1), int32(len(c.inst)))
	case syntax.OpPlus:
		start := int32(len(c.inst))
		if !c.compile(sub) {
			return false
		}
		split := c.emit(fastInst{op: fastSplit})
		pick(split, start, int32(len(c.inst)))
	}
	return true
}

// counted compiles sub{min,max} of a group as regexp/syntax's Simplify
// spells it out: min copies, then max-min nested optional copies
// (x{2,4} is xx(x(x)?)?), or for no max a last copy repeated (x{2,} is
// xx+). Copies of a capture fill the same slots, so the last iteration's
// text is the one reported, as with the regexp.
func (c *fastCompiler) counted(sub *syntax.Regexp, min, max int, flags syntax.Flags) bool {
	if max == -1 {
		op := syntax.OpStar
		if min > 0 {
			op, min = syntax.OpPlus, min-1
		}
		for range min {
			if !c.compile(sub) {
				return false
			}
		}
		return c.repeat(&syntax.Regexp{Op: op, Flags: flags, Sub: []*syntax.Regexp{sub}})
	}
	for range min {
		if !c.compile(sub) || len(c.inst) > fastMaxInst {
			return false
		}
	}
	if max == min {
		return true
	}
	// Nest the optional copies: each split's "skip" leads past all of them.
	var splits []int
	greedy := flags&syntax.NonGreedy == 0
	for range max - min {
		splits = append(splits, c.emit(fastInst{op: fastSplit}))
		if !c.compile(sub) || len(c.inst) > fastMaxInst {
			return false
		}
	}
	end := int32(len(c.inst))
	for _, s := range splits {
		if greedy {
			c.inst[s].x, c.inst[s].y = int32(s+1), end
		} else {
			c.inst[s].x, c.inst[s].y = end, int32(s+1)
		}
	}
	return true
}

// fastMaxInst bounds a program: counted repetitions are spelled out,
// and a pattern that grows past this is left to its regexp.
const fastMaxInst = 4096

// singleClass is the ASCII part of a one-character expression: a class,
// any character, or a one-rune literal; wide when it also holds every
// non-ASCII rune. Other non-ASCII members need not be known: run gives up
// on a non-ASCII byte unless the run is wide.
func singleClass(re *syntax.Regexp) (set asciiSet, wide, ok bool) {
	switch re.Op {
	case syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		for b := 0; b < utf8.RuneSelf; b++ {
			if b != '\n' || re.Op == syntax.OpAnyChar {
				set.add(byte(b))
			}
		}
		return set, true, true
	case syntax.OpCharClass:
		for i := 0; i+1 < len(re.Rune); i += 2 {
			lo, hi := re.Rune[i], re.Rune[i+1]
			for r := lo; r <= hi && r < utf8.RuneSelf; r++ {
				set.add(byte(r))
			}
			if lo <= utf8.RuneSelf && hi >= unicode.MaxRune {
				wide = true
			}
		}
		return set, wide, true
	case syntax.OpLiteral:
		if len(re.Rune) != 1 || re.Rune[0] >= utf8.RuneSelf {
			return set, false, false
		}
		r := byte(re.Rune[0])
		set.add(r)
		if re.Flags&syntax.FoldCase != 0 {
			// The simple folds of an ASCII letter include non-ASCII
			// runes (K, ſ), which run never accepts anyway.
			switch {
			case 'a' <= r && r <= 'z':
				set.add(r - 'a' + 'A')
			case 'A' <= r && r <= 'Z':
				set.add(r - 'A' + 'a')
			}
		}
		return set, false, true
	}
	return set, false, false
}

// onlyMissing is the one ASCII byte s lacks; -1 when it lacks none or
// several.
func (s *asciiSet) onlyMissing() int16 {
	missing := int16(-1)
	for b := 0; b < utf8.RuneSelf; b++ {
		if !s.has(byte(b)) {
			if missing >= 0 {
				return -1
			}
			missing = int16(b)
		}
	}
	return missing
}

// canBeEmpty reports whether re may match the empty string (conservative:
// true when unsure).
func canBeEmpty(re *syntax.Regexp) bool {
	switch re.Op {
	case syntax.OpLiteral:
		return len(re.Rune) == 0
	case syntax.OpCharClass, syntax.OpAnyChar, syntax.OpAnyCharNotNL:
		return false
	case syntax.OpCapture, syntax.OpPlus:
		return canBeEmpty(re.Sub[0])
	case syntax.OpRepeat:
		return re.Min == 0 || canBeEmpty(re.Sub[0])
	case syntax.OpConcat:
		for _, s := range re.Sub {
			if !canBeEmpty(s) {
				return false
			}
		}
		return true
	case syntax.OpAlternate:
		for _, s := range re.Sub {
			if canBeEmpty(s) {
				return true
			}
		}
		return false
	}
	return true
}
