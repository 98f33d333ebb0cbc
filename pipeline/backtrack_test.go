package pipeline

import (
	"bytes"
	"log/slog"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// btSpec is a user filter on the backtracking engine: a login failure
// unless the user is one the admin excuses by look-ahead, a repeated
// token told by a back-reference, and an ignoreregex with look-behind.
func btSpec() FilterSpec {
	return FilterSpec{
		Name:     "appauth",
		Programs: []string{"app"},
		Engine:   EngineBacktrack,
		FailRegex: []string{
			`^login failed for (?!monitor\b)(?P<user>\S+) from <HOST>(?: port \d+)?$`,
			`^token (?P<tok>[a-z]+) reused as \k<tok> by <HOST>$`,
		},
		IgnoreRegex: []string{`^login failed for \S+ from \S+ (?<=192\.0\.2\.77 )port 1$`},
		Modes:       map[string][]string{"strict": {`^probe (?>[a-z]+) from <HOST>$`}},
		Correlate: []Correlation{{
			Open:  `^session (?P<key>\d+) opened by (?!.*\(trusted\))<HOST>`,
			Close: `^session (?P<key>\d+) (?:closed|dropped): (?!ok\b)\w+`,
		}},
	}
}

func TestBacktrackMatches(t *testing.T) {
	f, err := CompileFilterMode(btSpec(), "strict")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		line, host string
		pattern    int // -1: no match
		ignored    bool
	}{
		{"login failed for alice from 198.51.100.4", "198.51.100.4", 0, false},
		{"login failed for alice from 2001:db8::7 port 4022", "2001:db8::7", 0, false},
		{"login failed for monitor from 198.51.100.4", "", -1, false},               // look-ahead excuses it
		{"login failed for monitoring from 198.51.100.4", "198.51.100.4", 0, false}, // \b: another user
		{"login failed for bob from 192.0.2.77 port 1", "192.0.2.77", 0, true},      // look-behind ignoreregex
		{"token abc reused as abc by 203.0.113.5", "203.0.113.5", 1, false},
		{"token abc reused as abd by 203.0.113.5", "", -1, false}, // back-reference differs
		{"probe xyz from 203.0.113.6", "203.0.113.6", 2, false},   // atomic group, strict mode
		{"login failed for ü from 198.51.100.9", "198.51.100.9", 0, false},
		{"login failed for bob from 198.51.100.4 port 1", "198.51.100.4", 0, false}, // look-behind sees another address
	}
	for _, tt := range tests {
		r := f.match(tt.line, true)
		got := -1
		if r.pattern != nil {
			got = r.pattern.index
		}
		if got != tt.pattern || r.host != tt.host || (r.ignore != nil) != tt.ignored {
			t.Errorf("%q: pattern %d host %q ignored %v, want %d %q %v", tt.line, got, r.host, r.ignore != nil, tt.pattern, tt.host, tt.ignored)
		}
		// The prefilter only skips work: the verdict is the same without it.
		if r2 := f.match(tt.line, false); r2.pattern != r.pattern || r2.host != r.host {
			t.Errorf("%q: prefilter changed the verdict", tt.line)
		}
	}
}

// TestBacktrackCorrelation: keys and hosts of backtracking opens and closes
// map to the same fields as RE2's.
func TestBacktrackCorrelation(t *testing.T) {
	tester, err := NewTester([]FilterSpec{btSpec()}, TesterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	msg := func(text string) *sysban.Message { return &sysban.Message{AppName: "app", Text: text} }
	if ms := tester.Test(msg("session 42 opened by 198.51.100.8")); len(ms) != 1 || !ms[0].Pending || ms[0].Host != "198.51.100.8" {
		t.Fatalf("open: %+v", ms)
	}
	if ms := tester.Test(msg("session 42 closed: ok")); len(ms) != 0 {
		t.Fatalf("close with ok (excluded by look-ahead): %+v", ms)
	}
	ms := tester.Test(msg("session 42 dropped: denied"))
	if len(ms) != 1 || !ms[0].Correlated || ms[0].Addr != netip.MustParseAddr("198.51.100.8") {
		t.Fatalf("close: %+v", ms)
	}
	if ms := tester.Test(msg("session 43 opened by 198.51.100.8 (trusted)")); len(ms) != 0 {
		t.Fatalf("trusted open: %+v", ms)
	}
}

func TestBacktrackValidation(t *testing.T) {
	re2 := func(fail string) FilterSpec {
		return FilterSpec{Name: "u", Programs: []string{"app"}, FailRegex: []string{fail}}
	}
	bt := func(fail string) FilterSpec {
		s := re2(fail)
		s.Engine = EngineBacktrack
		return s
	}
	timeout := func(d time.Duration) FilterSpec {
		s := bt(`^x <HOST>$`)
		s.MatchTimeout = d
		return s
	}
	withEngine := func(e string) FilterSpec {
		s := re2(`^x <HOST>$`)
		s.Engine = e
		return s
	}
	re2Timeout := re2(`^x <HOST>$`)
	re2Timeout.MatchTimeout = time.Millisecond
	tests := []struct {
		name string
		spec FilterSpec
		want string // substring of the error; "" for none
	}{
		{"look-ahead on RE2 names the key", re2(`^x (?!y)<HOST>$`), "set engine: backtrack on the filter"},
		{"back-reference on RE2 names the key", re2(`^(a)\1 <HOST>$`), "set engine: backtrack"},
		{"RE2 syntax error stays plain", re2(`^x ( <HOST>`), "error parsing regexp"},
		{"look-ahead opted in", bt(`^x (?!y)<HOST>$`), ""},
		{"plain RE2 pattern on backtrack", bt(`^x <HOST>$`), ""},
		{"unanchored", bt(`x (?!y)<HOST>`), "not anchored"},
		{"top-level alternation", bt(`^x <HOST>|y <HOST>`), "more than once"},
		{"top-level alternation, one host", bt(`^x <HOST>$|y`), "not anchored"},
		{"alternation inside a group", bt(`^(?:x|y) <HOST>$`), ""},
		{"bar in a class", bt(`^[|] <HOST>$`), ""},
		{"multi-line flag", bt(`^(?m)x <HOST>$`), "the m flag"},
		{"multi-line flag in a group", bt(`^x (?im:y) <HOST>$`), "the m flag"},
		{"second host group", bt(`^(?<host>\S+) <HOST>$`), "besides <HOST>"},
		{"missing host", bt(`^x (?!y)$`), "missing <HOST>"},
		{"bad backtracking syntax", bt(`^x (?<!<HOST>`), "backtracking engine"},
		{"timeout default", timeout(0), ""},
		{"timeout ceiling", timeout(MaxMatchTimeout), ""},
		{"timeout above the ceiling", timeout(time.Second), "matchtimeout 1s"},
		{"timeout below 1ms", timeout(time.Microsecond), "matchtimeout"},
		{"timeout on RE2", re2Timeout, "only for engine: backtrack"},
		{"unknown engine", withEngine("pcre"), `engine "pcre"`},
		{"re2 spelled out", withEngine(EngineRE2), ""},
	}
	for _, tt := range tests {
		_, err := CompileFilter(tt.spec)
		switch {
		case tt.want == "" && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("%s: error %v, want one with %q", tt.name, err, tt.want)
		}
	}
}

// TestBuiltinFiltersStayOnRE2: the backtracking engine is for user filters
// that opt in; every built-in filter runs in linear time.
func TestBuiltinFiltersStayOnRE2(t *testing.T) {
	for name, spec := range BuiltinFilters() {
		if spec.Engine != "" || spec.MatchTimeout != 0 {
			t.Errorf("built-in filter %s: engine %q, match timeout %v: built-in filters stay on RE2", name, spec.Engine, spec.MatchTimeout)
		}
		f, err := CompileFilter(spec)
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.patterns {
			if _, ok := p.re.(*backtrackRegex); ok {
				t.Errorf("built-in filter %s: pattern %q runs on the backtracking engine", name, p.src)
			}
		}
	}
}

// TestBacktrackCatastrophic: a pattern that backtracks exponentially on a
// line of a's runs out of its timeout, the line counts as no match, the
// timeout is counted and logged once, and the next lines are handled as
// before.
func TestBacktrackCatastrophic(t *testing.T) {
	spec := FilterSpec{
		Name:         "slow",
		Programs:     []string{"app"},
		Engine:       EngineBacktrack,
		MatchTimeout: time.Millisecond,
		FailRegex:    []string{`^bad (?:a|aa)+b from <HOST>$`, `^bad (a+)+! from <HOST>$`},
	}
	var logs bytes.Buffer
	jail := JailSpec{Name: "slow", Filter: "slow", MaxRetry: 2, FindTime: time.Hour, BanTime: time.Hour}
	p := newTestPipeline(t, Config{Filters: map[string]FilterSpec{"slow": spec}, Jails: []JailSpec{jail}},
		Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	// Exponentially many ways to split the a's: without the bound this
	// would not end.
	evil := "bad " + strings.Repeat("a", 60) + "? from 203.0.113.50"
	for range 3 {
		p.Handle(&sysban.Message{AppName: "app", Text: evil})
	}
	if got := p.Stats().FilterTimeouts["slow"]; got != 6 {
		t.Errorf("timeouts %d, want 6 (two patterns, three lines)", got)
	}
	if n := strings.Count(logs.String(), "backtracking match timed out"); n != 1 {
		t.Errorf("%d timeout warnings, want 1 (rate-limited):\n%s", n, logs.String())
	}
	if st := p.Stats().Jails["slow"]; st.TotalFailed != 0 {
		t.Errorf("a timed-out line counted %d failures", st.TotalFailed)
	}
	for range 2 {
		p.Handle(&sysban.Message{AppName: "app", Text: "bad aaa! from 198.51.100.20"})
	}
	bans := queued(p)
	if len(bans) != 1 || bans[0].Addr != netip.MustParseAddr("198.51.100.20") {
		t.Fatalf("bans after the slow lines: %+v", bans)
	}
	// A reload keeps the count.
	if err := p.Reload(Config{Filters: map[string]FilterSpec{"slow": spec}, Jails: []JailSpec{jail}}); err != nil {
		t.Fatal(err)
	}
	if got := p.Stats().FilterTimeouts["slow"]; got != 6 {
		t.Errorf("timeouts after reload %d, want 6", got)
	}
}

// TestBacktrackInjection: a backtracking pattern is held to the anchoring
// of RE2 ones, so an address an attacker writes into the user name is never
// the one banned.
func TestBacktrackInjection(t *testing.T) {
	spec := btSpec()
	jail := JailSpec{Name: "app", Filter: "appauth", MaxRetry: 1, FindTime: time.Hour, BanTime: time.Hour}
	p := newTestPipeline(t, Config{Filters: map[string]FilterSpec{"appauth": spec}, Jails: []JailSpec{jail}}, Options{})
	for _, text := range []string{
		"login failed for x from 203.0.113.66 from 198.51.100.30",           // \S+ takes no spaces: no match
		"login failed for evil from 203.0.113.66 port 1 from 198.51.100.30", // not at the end: no match
		"token a reused as a by 203.0.113.66 x",
		"note: login failed for a from 203.0.113.66", // not at the start
	} {
		p.Handle(&sysban.Message{AppName: "app", Text: text})
	}
	if bans := queued(p); len(bans) != 0 {
		t.Fatalf("injected lines banned %+v", bans)
	}
	// The unanchored form that would allow the last one is refused.
	spec.FailRegex = []string{`login failed for (?!monitor)\S+ from <HOST>$`}
	if _, err := CompileFilter(spec); err == nil || !strings.Contains(err.Error(), "not anchored") {
		t.Fatalf("unanchored backtracking pattern: %v", err)
	}
}

func TestBacktrackPrefix(t *testing.T) {
	tests := []struct{ re, want string }{
		{`^login failed (?!x)`, "login failed "},
		{`^abc?d`, "ab"},
		{`^ab{2}`, "a"},
		{`^ü+x`, ""},
		{`^aü*x`, "a"},
		{`^\d+`, ""},
		{`^(?i)abc`, ""},
		{`^abc`, "abc"},
	}
	for _, tt := range tests {
		if got := backtrackPrefix(tt.re); got != tt.want {
			t.Errorf("backtrackPrefix(%q) = %q, want %q", tt.re, got, tt.want)
		}
	}
}

// FuzzBacktrackPattern compiles user-written patterns (config is outside
// input) on the backtracking engine and matches them: no panic, and the
// prefilter never rejects a line the pattern matches.
func FuzzBacktrackPattern(f *testing.F) {
	for _, p := range append(btSpec().FailRegex, `^x (?<=a)<HOST>(?!b)\1`, `^[|]<HOST>`, `^a{2}<HOST>`, `^(?i)ab <HOST>`) {
		f.Add(p, "login failed for alice from 198.51.100.4")
	}
	f.Fuzz(func(t *testing.T, src, line string) {
		if len(src) > 200 || len(line) > 200 {
			return
		}
		spec := FilterSpec{Name: "fz", Programs: []string{"p"}, Engine: EngineBacktrack, MatchTimeout: time.Millisecond, FailRegex: []string{src}}
		fl, err := CompileFilter(spec)
		if err != nil {
			return
		}
		p := &fl.fail[0]
		loc := p.re.FindStringSubmatchIndex(line)
		if loc != nil && !p.pre.mayMatch(line) {
			t.Fatalf("prefilter %q rejects %q, which %q matches", p.pre.prefix, line, src)
		}
		for i := 0; i+1 < len(loc); i += 2 {
			if loc[i] > loc[i+1] || loc[i+1] > len(line) || (loc[i] < 0) != (loc[i+1] < 0) {
				t.Fatalf("bad location %v for %q", loc, line)
			}
		}
		fl.match(line, true)
	})
}
