package pipeline

import (
	"fmt"
	"slices"
	"testing"

	"github.com/sysban/sysban/pipeline/internal/sample"
)

// builtinPatterns compiles every built-in filter in every mode and returns
// all their patterns: failregexes, ignoreregexes, correlation opens and
// closes, and (as patterns of their own) the attempt rules' regexes with
// their prefilters.
func builtinPatterns(t testing.TB) []*pattern {
	t.Helper()
	var out []*pattern
	for name, spec := range BuiltinFilters() {
		modes := append([]string{"normal"}, sortedKeys(spec.Modes)...)
		for _, mode := range modes {
			f, err := CompileFilterMode(spec, mode)
			if err != nil {
				t.Fatalf("%s mode %s: %v", name, mode, err)
			}
			for i := range f.fail {
				out = append(out, &f.fail[i])
			}
			for i := range f.ignore {
				out = append(out, &f.ignore[i])
			}
			for i := range f.corr {
				out = append(out, &f.corr[i].open, &f.corr[i].close)
			}
			if a := f.attempts; a != nil && mode == "normal" {
				for _, ms := range [][]attemptMatcher{a.lines, a.quiet, a.ends, a.provisional} {
					for _, m := range ms {
						out = append(out, &pattern{src: fmt.Sprint(m.re), matcher: m.matcher, pre: m.pre, host: -1, key: -1})
					}
				}
			}
		}
	}
	return out
}

// checkPrefilterSound fails when a pattern's regex matches text that its
// prefilter rejected: the prefilter may only ever skip lines the regex
// would not match, or the daemon would miss failures.
func checkPrefilterSound(t testing.TB, pats []*pattern, text string) {
	t.Helper()
	for _, p := range pats {
		if p.re.MatchString(text) && !p.pre.mayMatch(text) {
			t.Fatalf("prefilter rejects a line its regex matches:\nregex %s\nprefix %q literal %q also %q oneOf %q\nline %q",
				p.src, p.pre.prefix, p.pre.literal, p.pre.also, p.pre.oneOf, text)
		}
	}
}

// FuzzPrefilterSound checks the literal prefilter of every built-in pattern
// against its regex on arbitrary text, seeded with every sample line.
func FuzzPrefilterSound(f *testing.F) {
	for _, path := range samplePaths(f) {
		fx, err := sample.Read(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, fl := range fx.Lines {
			f.Add(fl.Msg.Text)
		}
	}
	pats := builtinPatterns(f)
	f.Fuzz(func(t *testing.T, text string) {
		checkPrefilterSound(t, pats, text)
	})
}

func TestMoreLiterals(t *testing.T) {
	tests := []struct {
		re    string
		also  []string
		oneOf [][]string
	}{
		// Every literal of a concatenation is required; the prefix and
		// the longest are checked already, short ones are not worth it.
		{`^Failed (?:password|publickey) for .* from <HOST> port \d+$`, []string{" port ", " for "}, [][]string{{"assword", "ublickey"}}},
		// An optional part proves nothing.
		{`^abc(?: optional literal)? from <HOST>$`, nil, nil},
		// An alternation with a branch that requires no literal proves
		// nothing either.
		{`^x (?:Aborted login|\d+) from <HOST>$`, nil, nil},
		{`^(?:imap|pop3)-login: (?:Aborted login|Disconnected) rip=<HOST>, lip=`, []string{", lip=", " rip="}, [][]string{{"imap", "pop3"}, {"Aborted login", "Disconnected"}}},
		// Case-folded text is skipped.
		{`^(?i:failed) for user from <HOST> port \d+`, []string{" port "}, nil},
	}
	for _, tt := range tests {
		p, err := compilePattern(tt.re, failPattern, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.re, err)
		}
		if !slices.Equal(p.pre.also, tt.also) {
			t.Errorf("%s: also %q, want %q", tt.re, p.pre.also, tt.also)
		}
		if !slices.EqualFunc(p.pre.oneOf, tt.oneOf, slices.Equal) {
			t.Errorf("%s: oneOf %q, want %q", tt.re, p.pre.oneOf, tt.oneOf)
		}
	}
}

// TestPrefilterRejectsBenign pins what the extra literals are for: benign
// lines that carry a failure pattern's longest literal are rejected before
// the regex runs.
func TestPrefilterRejectsBenign(t *testing.T) {
	f, err := CompileFilter(BuiltinFilters()["dovecot"])
	if err != nil {
		t.Fatal(err)
	}
	line := "imap-login: Login: user=<alice@example.org>, method=PLAIN, rip=192.0.2.7, lip=192.0.2.1, mpid=4242, TLS, session=<abc>"
	for i := range f.fail {
		if f.fail[i].pre.mayMatch(line) {
			t.Errorf("dovecot failregex[%d] %s: prefilter passes a successful login", i, f.fail[i].src)
		}
	}
	checkPrefilterSound(t, builtinPatterns(t), line)
}

// TestMailFiltersCompile: every mode of the mail filters compiles and
// every failregex gives the prefilter something to reject lines on.
func TestMailFiltersCompile(t *testing.T) {
	names := []string{"dovecot", "postfix", "postfix-sasl", "sendmail-reject", "qpopper", "qmail", "squirrelmail"}
	builtins := BuiltinFilters()
	for _, name := range names {
		spec, ok := builtins[name]
		if !ok {
			t.Errorf("no built-in filter %q", name)
			continue
		}
		modes := []string{""}
		for m := range spec.Modes {
			modes = append(modes, m)
		}
		for _, mode := range modes {
			f, err := CompileFilterMode(spec, mode)
			if err != nil {
				t.Errorf("%s mode %q: %v", name, mode, err)
				continue
			}
			// Every pattern must give the prefilter something to
			// reject lines on, or it runs the regex over every line of
			// the program.
			for i, p := range f.fail {
				if len(p.pre.prefix)+len(p.pre.literal) < 6 {
					t.Errorf("%s failregex %d %q: prefilter prefix %q literal %q too weak", name, i, p.src, p.pre.prefix, p.pre.literal)
				}
			}
		}
	}
}
