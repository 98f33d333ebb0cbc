package pipeline

import (
	"strings"
	"unicode/utf8"
)

// The literal matcher: most failregexes are literal text, typed holes
// (<HOST>, \S+, \d+, .*) and optional groups, and on a line that matches
// Go's backtracker spent ~2 µs stepping through them rune by rune (half of
// `sysban test`'s instructions, docs/performance.md). compileFast
// (fastcompile.go) turns the parsed pattern (regexp/syntax's tree, the
// same one regexp compiles) into a small program of coarse steps —
// compare a literal, take a run of class bytes, branch, save a capture —
// and run walks it as a backtracking matcher in the regex's own priority
// order, so it finds the very match Go's leftmost-first semantics define,
// captures included. Runs are found with IndexByte where the class allows
// it, and the count a run tries next is chosen by the byte the following
// literal starts with, so ".* from <HOST>" jumps to the last " from ".
//
// It gives up, and the pattern's regexp answers instead, whenever exactness
// would take more than this small subset:
//   - at compile time: a pattern not anchored at the start, any construct
//     outside the subset (word boundaries, line anchors, a loop over a
//     group that can match empty, case-folded non-ASCII, U+FFFD in a
//     literal), more than fastMaxSlots capture slots or fastMaxInst
//     instructions;
//   - at run time: a non-ASCII byte where a class is tested, unless the
//     class holds every non-ASCII rune and the run ends before a known
//     ASCII byte (Go decodes runes, and where one ends decides the
//     positions a backtracker may return to); a folded literal meeting
//     one; more than fastMaxDepth backtracking entries; or more
//     steps than fastBudget allows, so attacker text costs at most a
//     bounded attempt plus the regexp.
// TestFastMatchesRegexp, TestFastMatchRandom, FuzzFastMatch and
// FuzzFastMatchShape hold it to regexp on every built-in pattern and on
// arbitrary ones.

// fastMaxSlots bounds the capture slots (two per group, group 0 included)
// a fast program fills; patterns with more groups use their regexp.
const fastMaxSlots = 16

// fastMaxStack is the depth of the backtracking stack kept in run's own
// frame (zeroed on every call, so kept small); fastMaxDepth is as deep as
// it may grow on the heap before the regexp takes over.
const (
	fastMaxStack = 48
	fastMaxDepth = 4096
)

// fastBudget is how many steps (instructions, bytes scanned, retries) a
// match may take on a text of n bytes before it falls back.
func fastBudget(n int) int { return 256 + 8*n }

// fastOp is what a step of a fast program does.
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

// fastInst is one step of a fast program; which fields count depends on
// op.
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

// fastFrame is a backtracking entry: a branch to resume (pc, pos), a run to
// retry with count n (up to hi when not greedy), or a capture slot to
// restore (pc -1-slot, old value in pos).
type fastFrame struct {
	pc, pos, n, hi int32
}

// fastResult is how run ended.
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
	// The stack starts in this frame; a deeper match (a loop over a
	// quoted string pushes an entry per character) moves it to the heap,
	// up to fastMaxDepth.
	var first [fastMaxStack]fastFrame
	stack := first[:0]
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
				if len(stack) == fastMaxDepth {
					return fastGaveUp
				}
				stack = append(stack, fastFrame{pc: pc, pos: pos, n: c, hi: k})
			}
			pos += c
			pc++
		case fastSplit:
			if len(stack) == fastMaxDepth {
				return fastGaveUp
			}
			stack = append(stack, fastFrame{pc: in.y, pos: pos, n: -1})
			pc = in.x
		case fastJmp:
			pc = in.x
		case fastSave:
			// The old value matters only to a branch that may yet be
			// resumed: with none below, a failure ends the match.
			if len(stack) > 0 {
				if len(stack) == fastMaxDepth {
					return fastGaveUp
				}
				stack = append(stack, fastFrame{pc: -1 - in.x, pos: int32(loc[in.x])})
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
			if len(stack) == 0 {
				return fastNoMatch
			}
			budget--
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
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
				stack = append(stack, fastFrame{pc: f.pc, pos: f.pos, n: c, hi: f.hi})
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
