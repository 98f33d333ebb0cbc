package pipeline

import (
	"regexp/syntax"
	"strings"
	"unicode"
	"unicode/utf8"
)

// The literal matcher: most failregexes are literal text, typed holes
// (<HOST>, \S+, \d+, .*) and optional groups, and on a line that matches
// Go's backtracker spends ~2 µs stepping through them rune by rune (half of
// `sysban test`'s instructions, docs/performance.md). compileFast turns the
// parsed pattern (regexp/syntax's tree, the same one regexp compiles) into
// a small program of coarse steps — compare a literal, take a run of class
// bytes, branch, save a capture — and runFast walks it as a backtracking
// matcher in the regex's own priority order, so it finds the very match
// Go's leftmost-first semantics define, captures included.
//
// It gives up, and the pattern's regexp answers instead, whenever exactness
// would take more than this small subset:
//   - at compile time: any construct outside it (word boundaries, line
//     anchors, a repetition of a group that can match empty, counted
//     repetitions of groups, case-folded non-ASCII, U+FFFD in a literal,
//     more than fastMaxSlots capture slots);
//   - at run time: a class tested against a non-ASCII byte (Go decodes
//     runes there, and where one ends decides the positions a backtracker
//     may return to), a folded literal meeting one, more backtracking
//     entries than fit in its fixed stack, or more steps than
//     fastBudget allows (attacker text must not make a line cost more
//     than the regexp plus a bounded attempt).
// TestFastMatchesRegexp and FuzzFastMatch hold it to regexp on every
// built-in pattern.

// fastMaxSlots bounds the capture slots (two per group, group 0 included)
// a fast program fills; patterns with more groups use their regexp.
const fastMaxSlots = 16

// fastMaxStack is the depth of the backtracking stack; a match that needs
// more falls back to the regexp.
const fastMaxStack = 48

// fastBudget is how many steps (instructions, bytes scanned, retries) a
// match may take on a text of n bytes before it falls back.
func fastBudget(n int) int { return 256 + 8*n }

type fastOp uint8

const (
	fastLit   fastOp = iota // the text continues with lit
	fastFold                // ... with lit, ASCII case folded (lit is lower case)
	fastRun                 // min..max bytes of class, greedy or not
	fastSplit               // try x, on failure y
	fastJmp                 // continue at x
	fastSave                // slot x = pos
	fastBegin               // pos is 0
	fastEnd                 // pos is the end of the text
	fastMatch               // done
)

// asciiSet is a set of bytes below 0x80.
type asciiSet [2]uint64

func (s *asciiSet) has(b byte) bool { return s[b>>6]&(1<<(b&63)) != 0 }
func (s *asciiSet) add(b byte)      { s[b>>6] |= 1 << (b & 63) }

type fastInst struct {
	op     fastOp
	greedy bool
	// next is the byte that must follow a run (the first of the literal
	// after it, saves skipped), -1 when unknown: counts that leave another
	// byte there are not tried.
	next int16
	// wide: the run takes non-ASCII bytes as members. Only for a class
	// that holds every non-ASCII rune, unbounded and with next known:
	// then every count tried ends before the ASCII byte next, which is
	// a rune boundary however Go decodes what precedes it, and one byte
	// or more is one rune or more. stop (-1: none) is the one ASCII byte
	// such a class lacks ('\n' for '.'), so that IndexByte finds the run.
	wide     bool
	stop     int16
	x, y     int32 // split targets (x preferred), jump target, save slot
	min, max int32 // run bounds; max -1 is unbounded
	lit      string
	class    asciiSet
}

// fastProg is a compiled pattern; nil when the pattern is outside the
// subset.
type fastProg struct {
	inst  []fastInst
	slots int // capture slots the regexp reports: 2*(NumSubexp+1)
}

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
// group (that cannot match empty, where Go's rules for empty iterations
// would have to be copied) with branches and loops; a counted repetition
// of a group is left to the regexp.
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
			// runes (K, ſ), which runFast never accepts anyway.
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

// fastFrame is a backtracking entry: a branch to resume (pc, pos), a run to
// retry with count n (up to hi when not greedy), or a capture slot to
// restore (pc -1-slot, old value in pos).
type fastFrame struct {
	pc, pos, n, hi int32
}

// fastResult is how runFast ended.
type fastResult uint8

const (
	fastNoMatch fastResult = iota
	fastMatched
	fastGaveUp // the regexp must decide
)

// run matches text; on fastMatched, loc[:prog.slots] holds the match and
// captures as regexp.FindStringSubmatchIndex reports them.
func (prog *fastProg) run(text string, loc []int) fastResult {
	if len(text) >= 1<<30 {
		return fastGaveUp
	}
	loc = loc[:prog.slots]
	for i := range loc {
		loc[i] = -1
	}
	var stack [fastMaxStack]fastFrame
	sp := 0
	budget := fastBudget(len(text))
	inst := prog.inst
	pc, pos := int32(0), int32(0)
	n := int32(len(text))
	for {
		budget--
		if budget < 0 {
			return fastGaveUp
		}
		in := &inst[pc]
		ok := true
		switch in.op {
		case fastLit:
			if strings.HasPrefix(text[pos:], in.lit) {
				pos += int32(len(in.lit))
				pc++
			} else {
				ok = false
			}
		case fastFold:
			if int(n-pos) < len(in.lit) {
				ok = false
				break
			}
			for i := 0; i < len(in.lit); i++ {
				b := text[int(pos)+i]
				if b >= utf8.RuneSelf {
					return fastGaveUp
				}
				if 'A' <= b && b <= 'Z' {
					b += 'a' - 'A'
				}
				if b != in.lit[i] {
					ok = false
					break
				}
			}
			if ok {
				pos += int32(len(in.lit))
				pc++
			}
		case fastRun:
			limit := n - pos
			if in.max >= 0 && in.max < limit {
				limit = in.max
			}
			k := int32(0)
			if in.stop >= 0 {
				k = int32(strings.IndexByte(text[pos:pos+limit], byte(in.stop)))
				if k < 0 {
					k = limit
				}
			} else {
				for k < limit {
					b := text[pos+k]
					if b >= utf8.RuneSelf {
						if !in.wide {
							return fastGaveUp
						}
					} else if !in.class.has(b) {
						break
					}
					k++
				}
			}
			budget -= int(k)
			c, more := in.pick(text, pos, in.min, k)
			if c < 0 {
				ok = false
				break
			}
			if more {
				if sp == fastMaxStack {
					return fastGaveUp
				}
				stack[sp] = fastFrame{pc: pc, pos: pos, n: c, hi: k}
				sp++
			}
			pos += c
			pc++
		case fastSplit:
			if sp == fastMaxStack {
				return fastGaveUp
			}
			stack[sp] = fastFrame{pc: in.y, pos: pos, n: -1}
			sp++
			pc = in.x
		case fastJmp:
			pc = in.x
		case fastSave:
			// The old value matters only to a branch that may yet be
			// resumed: with none below, a failure ends the match.
			if sp > 0 {
				if sp == fastMaxStack {
					return fastGaveUp
				}
				stack[sp] = fastFrame{pc: -1 - in.x, pos: int32(loc[in.x])}
				sp++
			}
			loc[in.x] = int(pos)
			pc++
		case fastBegin:
			if pos == 0 {
				pc++
			} else {
				ok = false
			}
		case fastEnd:
			if pos == n {
				pc++
			} else {
				ok = false
			}
		case fastMatch:
			return fastMatched
		}
		if ok {
			continue
		}
		// Backtrack: undo captures down to the latest branch or run.
		for {
			if sp == 0 {
				return fastNoMatch
			}
			budget--
			sp--
			f := stack[sp]
			if f.pc < 0 {
				loc[-1-f.pc] = int(f.pos)
				continue
			}
			if f.n < 0 { // a split's other branch
				pc, pos = f.pc, f.pos
				break
			}
			r := &inst[f.pc]
			var c int32
			var more bool
			if r.greedy {
				c, more = r.pick(text, f.pos, r.min, f.n-1)
			} else {
				c, more = r.pick(text, f.pos, f.n+1, f.hi)
			}
			if c < 0 {
				continue
			}
			if more {
				stack[sp] = fastFrame{pc: f.pc, pos: f.pos, n: c, hi: f.hi}
				sp++
			}
			pc, pos = f.pc+1, f.pos+c
			break
		}
	}
}

// pick chooses the count a run at pos tries next among lo..hi (greedy:
// the largest, else the smallest) whose following byte can start what
// comes after it (any, when next is unknown); -1 when none. more: other
// counts remain to retry.
func (in *fastInst) pick(text string, pos, lo, hi int32) (c int32, more bool) {
	if lo > hi {
		return -1, false
	}
	if in.next >= 0 {
		end := min(int(pos+hi)+1, len(text))
		if int(pos+lo) >= end {
			return -1, false
		}
		span := text[pos+lo : end]
		var i int
		if in.greedy {
			i = strings.LastIndexByte(span, byte(in.next))
		} else {
			i = strings.IndexByte(span, byte(in.next))
		}
		if i < 0 {
			return -1, false
		}
		c = lo + int32(i)
		if in.greedy {
			return c, c > lo
		}
		return c, c < hi
	}
	if in.greedy {
		return hi, hi > lo
	}
	return lo, lo < hi
}
