package pipeline

import (
	"fmt"
	"math/rand/v2"
	"regexp"
	"regexp/syntax"
	"slices"
	"strings"
	"testing"

	"github.com/sysban/sysban/pipeline/internal/sample"
)

// checkFast fails when p's fast matcher, where it decides, reports
// anything but what its regexp reports for text: the same match or none,
// and the same captures.
func checkFast(t testing.TB, re regex, prog *fastProg, text string) fastResult {
	t.Helper()
	var buf [fastMaxSlots]int
	res := prog.run(text, buf[:])
	want := re.FindStringSubmatchIndex(text)
	switch res {
	case fastMatched:
		if got := buf[:prog.slots]; !slices.Equal(got, want) {
			t.Fatalf("fast matcher differs from regexp\nregex %s\ntext  %q\nfast   %v\nregexp %v", re, text, got, want)
		}
	case fastNoMatch:
		if want != nil {
			t.Fatalf("fast matcher misses what regexp matches\nregex %s\ntext  %q\nregexp %v", re, text, want)
		}
	}
	return res
}

// fastCompiled compiles src as compilePattern does (Perl syntax) but
// without the pattern rules, for shapes the built-in filters do not have.
func fastCompiled(t testing.TB, src string) (*regexp.Regexp, *fastProg) {
	t.Helper()
	tree, err := syntax.Parse(src, syntax.Perl)
	if err != nil {
		t.Fatalf("%s: %v", src, err)
	}
	re := regexp.MustCompile(src)
	return re, compileFast(tree, re.NumSubexp())
}

// sampleTexts are the messages of every annotated sample line.
func sampleTexts(t testing.TB) []string {
	t.Helper()
	var out []string
	for _, path := range samplePaths(t) {
		fx, err := sample.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, fl := range fx.Lines {
			out = append(out, fl.Msg.Text)
		}
	}
	return out
}

// TestFastMatchesRegexp runs every built-in pattern's fast matcher against
// its regexp over every sample line and variants of it that stop early,
// run on, carry non-ASCII text or an injected address, and checks that
// the fast matcher decides (does not hand back to the regexp) on every
// sample line of the patterns it compiles.
func TestFastMatchesRegexp(t *testing.T) {
	texts := sampleTexts(t)
	var variants []string
	for _, s := range texts {
		variants = append(variants, s, s+" ", s+" from 192.0.2.1 port 22", strings.ToUpper(s), strings.ReplaceAll(s, " ", "  "),
			strings.Replace(s, " ", " é ", 1), s+"\xff", s+"\n", "\xff"+s)
		for i := 1; i < len(s); i += 7 {
			variants = append(variants, s[:i], s[:i]+"ü"+s[i:])
		}
	}
	var fast, slow int
	matchers, pres := builtinMatchers(t)
	for i, p := range matchers {
		if p.fast == nil {
			slow++
			t.Logf("regexp only: %s", p.re)
			continue
		}
		fast++
		// A line its prefilter rejects never reaches the matcher (and both
		// fail at the first literal); checking them all took minutes under
		// -race. FuzzFastMatch tries arbitrary text.
		for _, s := range texts {
			if pres[i] != nil && !pres[i].mayMatch(s) {
				continue
			}
			if checkFast(t, p.re, p.fast, s) == fastGaveUp && !strings.ContainsFunc(s, func(r rune) bool { return r >= 0x80 }) {
				t.Errorf("fast matcher gave up on an ASCII sample line\nregex %s\ntext  %q", p.re, s)
			}
		}
		for _, s := range variants {
			if pres[i] == nil || pres[i].mayMatch(s) {
				checkFast(t, p.re, p.fast, s)
			}
		}
	}
	t.Logf("%d patterns matched without the regexp VM, %d with it", fast, slow)
	if fast == 0 || slow > fast/10 {
		t.Errorf("only %d of %d built-in patterns have a fast matcher", fast, fast+slow)
	}
}

// builtinMatchers are the matchers of every built-in pattern and of
// every filter's attempt rules, with the prefilter that guards each (nil:
// none, every line reaches it).
func builtinMatchers(t testing.TB) (out []*matcher, pres []*prefilter) {
	for _, p := range builtinPatterns(t) {
		out = append(out, &p.matcher)
		pres = append(pres, &p.pre)
	}
	for _, spec := range BuiltinFilters() {
		f, err := CompileFilter(spec)
		if err != nil {
			t.Fatal(err)
		}
		if a := f.attempts; a != nil {
			// Their prefilters are left out here (held to the regexes by
			// TestPrefilterSound), so every variant reaches them.
			for _, ms := range [][]attemptMatcher{a.lines, a.quiet, a.ends, a.provisional} {
				for i := range ms {
					out = append(out, &ms[i].matcher)
					pres = append(pres, nil)
				}
			}
			for i := range a.success {
				out = append(out, &a.success[i].matcher)
				pres = append(pres, &a.success[i].pre)
			}
		}
	}
	return out, pres
}

// TestFastMatchShapes pins the semantics that are easy to get wrong: the
// regex's priority order (greedy, lazy, alternation order), captures in
// optional groups and loops, what is left to the regexp.
func TestFastMatchShapes(t *testing.T) {
	tests := []struct {
		re    string
		texts []string
		fast  bool // compiles to a fast program
	}{
		{`^Failed \S+ for (?:invalid user )?.* from (?P<host>[0-9.]+)(?: port \d+)?(?: ssh2)?$`, []string{
			"Failed password for root from 1.2.3.4 port 22 ssh2",
			"Failed password for invalid user x from 9.9.9.9 from 1.2.3.4 port 22 ssh2",
			"Failed password for from 1.2.3.4",
			"Failed password for x from 1.2.3.4 port ssh2",
		}, true},
		// Lazy and greedy runs and groups.
		{`^a(.*?)b(.*)c$`, []string{"abc", "aXbYbZc", "abbcc", "ab", "acbc"}, true},
		{`^(a+?)(a*)`, []string{"aaaa", "a", ""}, true},
		{`^(?:(ab)|(a))(b?)`, []string{"ab", "abb", "a", "b"}, true},
		{`^(?:(x)y)+z`, []string{"xyxyz", "xyz", "xyxz", "z"}, true},
		{`^(?:(x)y)*?(xy)z`, []string{"xyxyz", "xyz", "z"}, true},
		{`^x{2,4}?(x*)`, []string{"xxxxxx", "x", "xx"}, true},
		{`^(?i)Failed (\S+)`, []string{"FAILED Pw", "failed pw", "faiLed", "Failed \u212a"}, true},
		{`^(?i:k+)(.)`, []string{"kKk.", "\u212ak."}, true},
		{`^[^\]]*\](.)`, []string{"abc]d", "é]d", "]"}, true},
		{`^.*$`, []string{"a\nb", "ab"}, true},
		// Counted repetitions of groups, spelled out as Simplify does.
		{`^(?:(a)b){2,3}(.*)`, []string{"ababab", "abab", "ab", "abababab"}, true},
		{`^(a|b){0,2}?(a*)c`, []string{"aac", "bac", "c", "abac"}, true},
		{`^(?:(a)|b){2,}c`, []string{"abc", "bac", "ac", "bbbbac"}, true},
		{`^(?:[^\s:]*:){4}`, []string{"a:b::c:", "a:b:c", "é:::"}, true},
		{`^(?s).*$`, []string{"a\nb"}, true},
		// Outside the subset: the regexp decides.
		{`^\bfoo`, []string{"foo"}, false},
		{`^(?:a*)*b`, []string{"aab"}, false},
		{`^\x{fffd}`, []string{"\xff"}, false},
		{`^(a)(b)(c)(d)(e)(f)(g)(h)`, []string{"abcdefgh"}, false},
	}
	for _, tt := range tests {
		re, prog := fastCompiled(t, tt.re)
		if (prog != nil) != tt.fast {
			t.Errorf("%s: fast program %v, want %v", tt.re, prog != nil, tt.fast)
			continue
		}
		if prog == nil {
			continue
		}
		for _, s := range tt.texts {
			checkFast(t, re, prog, s)
		}
	}
}

// TestFastMatchGivesUp checks that hostile text costs a bounded attempt
// and then the regexp's answer: a run of nested choices that would
// backtrack without end, and a text of many near matches.
func TestFastMatchGivesUp(t *testing.T) {
	re, prog := fastCompiled(t, `^(?:a|ab)*(?:a|ab)*(?:a|ab)*c`)
	text := strings.Repeat("ab", 200)
	if got := checkFast(t, re, prog, text); got != fastGaveUp {
		t.Errorf("nested loops over %d bytes: %v, want to give up", len(text), got)
	}
	re, prog = fastCompiled(t, `^x .* from (?P<host>\S+) .* port \d+$`)
	text = "x " + strings.Repeat(" from 1.2.3.4 ", 300)
	if got := checkFast(t, re, prog, text); got != fastGaveUp {
		t.Errorf("many near matches: %v, want to give up", got)
	}
}

// TestFastMatchDeep checks that a loop with an entry per character (a
// quoted string, as exim logs the client's command) is decided by the
// fast matcher past the stack run keeps in its frame.
func TestFastMatchDeep(t *testing.T) {
	re, prog := fastCompiled(t, `^error in "(?:[^"\\]|\\.)*" H=\[(?P<host>[0-9.]+)\]$`)
	text := `error in "` + strings.Repeat(`AUTH \"x\" `, 40) + `" H=[192.0.2.7]`
	if got := checkFast(t, re, prog, text); got != fastMatched {
		t.Errorf("a %d-byte quoted string: %v, want matched", len(text), got)
	}
}

// TestFastMatchRandom compares random patterns of the subset's parts with
// their regexps over random texts of a small alphabet, where choices and
// backtracking meet often.
func TestFastMatchRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 3000 {
		src := "^" + randomPattern(rng, 3)
		if _, err := syntax.Parse(src, syntax.Perl); err != nil {
			continue
		}
		re, prog := fastCompiled(t, src)
		if prog == nil {
			continue
		}
		for range 20 {
			checkFast(t, re, prog, randomText(rng))
		}
	}
}

func randomPattern(rng *rand.Rand, depth int) string {
	atoms := []string{"a", "b", "ab", " ", `\S`, `\d`, ".", "[ab]", "[^a]", `\s`, "$", "x", "é", "[^é]", `[^\n]`}
	if depth == 0 {
		return atoms[rng.IntN(len(atoms))]
	}
	var b strings.Builder
	for range 1 + rng.IntN(3) {
		var part string
		switch rng.IntN(6) {
		case 0:
			part = "(" + randomPattern(rng, depth-1) + ")"
		case 1:
			part = "(?:" + randomPattern(rng, depth-1) + "|" + randomPattern(rng, depth-1) + ")"
		default:
			part = atoms[rng.IntN(len(atoms))]
		}
		if strings.HasPrefix(part, "(") || len(part) == 1 || strings.HasPrefix(part, `\`) || strings.HasPrefix(part, "[") {
			part += []string{"", "", "*", "+", "?", "*?", "+?", "??", "{1,2}", "{2}"}[rng.IntN(10)]
		}
		b.WriteString(part)
	}
	return b.String()
}

func randomText(rng *rand.Rand) string {
	alphabet := []string{"a", "a", "b", "b", " ", "1", "x", "\n", "é", "\xff", "\xc3"}
	var b strings.Builder
	for range rng.IntN(12) {
		b.WriteString(alphabet[rng.IntN(len(alphabet))])
	}
	return b.String()
}

// FuzzFastMatch holds every built-in pattern's fast matcher to its regexp
// on arbitrary text, seeded with every sample line.
func FuzzFastMatch(f *testing.F) {
	for _, s := range sampleTexts(f) {
		f.Add(s)
	}
	var progs []*matcher
	matchers, _ := builtinMatchers(f)
	for _, p := range matchers {
		if p.fast != nil {
			progs = append(progs, p)
		}
	}
	f.Fuzz(func(t *testing.T, text string) {
		for _, p := range progs {
			checkFast(t, p.re, p.fast, text)
		}
	})
}

// FuzzFastMatchShape holds the fast matcher to regexp on arbitrary
// patterns (anchored, as every pattern is) and texts.
func FuzzFastMatchShape(f *testing.F) {
	f.Add(`a(.*?)b(.*)c$`, "aXbYbZc")
	f.Add(`Failed \S+ for (?:invalid user )?.* from ([0-9.]+)(?: port \d+)?$`, "Failed pw for x from 1.2.3.4 port 22")
	f.Add(`(?:(x)y)+z`, "xyxyz")
	f.Add(`(?i)ab[^c]+?c`, "ABxxc")
	f.Fuzz(func(t *testing.T, src, text string) {
		src = "^(?:" + src + ")"
		tree, err := syntax.Parse(src, syntax.Perl)
		if err != nil {
			return
		}
		re, err := regexp.Compile(src)
		if err != nil {
			return
		}
		if prog := compileFast(tree, re.NumSubexp()); prog != nil {
			checkFast(t, re, prog, text)
		}
	})
}

func (r fastResult) String() string {
	return [...]string{"no match", "matched", "gave up"}[r]
}

var _ fmt.Stringer = fastResult(0)
