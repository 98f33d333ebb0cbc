package pipeline

import (
	"strings"
	"testing"
	"time"
)

// sshdOnly compiles the builtin sshd filter.
func sshdOnly(t testing.TB) *Filter {
	t.Helper()
	f, err := CompileFilter(BuiltinFilters()["sshd"])
	if err != nil {
		t.Fatalf("compile builtin sshd: %v", err)
	}
	return f
}

func TestCompileFilterErrors(t *testing.T) {
	ok := FilterSpec{Name: "f", Programs: []string{"p"}, FailRegex: []string{`^x <HOST>$`}}
	tests := []struct {
		name string
		mod  func(*FilterSpec)
		want string // substring of the error; "" means no error
	}{
		{"valid", func(*FilterSpec) {}, ""},
		{"valid glob", func(s *FilterSpec) { s.Programs = []string{"postfix*/smtpd"} }, ""},
		{"valid case-insensitive anchor", func(s *FilterSpec) { s.FailRegex = []string{`(?i)^x <HOST>$`} }, ""},
		{"alternation with two hosts", func(s *FilterSpec) { s.FailRegex = []string{`^a <HOST>$|^b <HOST>$`} }, "more than once"},
		{"no name", func(s *FilterSpec) { s.Name = "" }, "without a name"},
		{"no programs", func(s *FilterSpec) { s.Programs = nil }, "filter f: no programs"},
		{"bad glob", func(s *FilterSpec) { s.Programs = []string{"a["} }, "filter f: programs[0]"},
		{"no failregex", func(s *FilterSpec) { s.FailRegex = nil }, "filter f: no failregex"},
		{"missing host", func(s *FilterSpec) { s.FailRegex = []string{`^a <HOST>$`, `^b <HOST>$`, `^c$`} }, "filter f: failregex[2]: missing <HOST>"},
		{"two hosts", func(s *FilterSpec) { s.FailRegex = []string{`^<HOST> <HOST>$`} }, "failregex[0]: <HOST> more than once"},
		{"syntax error", func(s *FilterSpec) { s.FailRegex = []string{`^(x <HOST>$`} }, "filter f: failregex[0]: error parsing regexp: missing closing )"},
		{"unanchored", func(s *FilterSpec) { s.FailRegex = []string{`from <HOST> port`} }, "failregex[0]: not anchored"},
		{"multiline anchor", func(s *FilterSpec) { s.FailRegex = []string{`(?m)^from <HOST>$`} }, "not anchored"},
		{"user host group", func(s *FilterSpec) { s.FailRegex = []string{`^(?P<host>x) <HOST>$`} }, "capture group named"},
		{"ignore unanchored", func(s *FilterSpec) { s.IgnoreRegex = []string{`Accepted`} }, "filter f: ignoreregex[0]: not anchored"},
		{"ignore ok", func(s *FilterSpec) { s.IgnoreRegex = []string{`^x 10\.`} }, ""},
		{"var ok", func(s *FilterSpec) {
			s.FailRegex = []string{`^query <VAR:d> from <HOST>$`}
			s.Vars = map[string][]string{"d": {"a.example"}}
		}, ""},
		{"var unknown", func(s *FilterSpec) {
			s.FailRegex = []string{`^query <VAR:domains> from <HOST>$`}
			s.Vars = map[string][]string{"paths": {"/x"}}
		}, "filter f: failregex[0]: <VAR:domains>: unknown var (it has: paths)"},
		{"var empty", func(s *FilterSpec) {
			s.IgnoreRegex = []string{`^x <VAR:d>$`}
			s.Vars = map[string][]string{"d": {}}
		}, "filter f: ignoreregex[0]: <VAR:d>: var has no values"},
		{"var in mode", func(s *FilterSpec) { s.Modes = map[string][]string{"ddos": {`^y <VAR:nope> <HOST>$`}} }, "filter f: modes[ddos][0]: <VAR:nope>: unknown var"},
		{"mode missing host", func(s *FilterSpec) { s.Modes = map[string][]string{"ddos": {`^y$`}} }, "filter f: modes[ddos][0]: missing <HOST>"},
		{"correlate ok", func(s *FilterSpec) {
			s.Correlate = []Correlation{{Open: `^(?P<key>\w+): opened by <HOST>$`, Close: `^(?P<key>\w+): failed$`}}
		}, ""},
		{"correlate only", func(s *FilterSpec) {
			s.FailRegex = nil
			s.Correlate = []Correlation{{Open: `^(?P<key>\w+): opened by <HOST>$`, Close: `^(?P<key>\w+): failed$`}}
		}, ""},
		{"correlate two hosts", func(s *FilterSpec) {
			s.Correlate = []Correlation{{Open: `^open <HOST>$`, Close: `^close <HOST>$`}}
		}, "filter f: correlate[0]: exactly one of open and close must contain <HOST>"},
		{"correlate no host", func(s *FilterSpec) {
			s.Correlate = []Correlation{{Open: `^open$`, Close: `^close$`}}
		}, "correlate[0]: exactly one"},
		{"correlate unanchored close", func(s *FilterSpec) {
			s.Correlate = []Correlation{{Open: `^open <HOST>$`, Close: `close$`}}
		}, "filter f: correlate[0]: close: not anchored"},
		{"correlate negative window", func(s *FilterSpec) {
			s.Correlate = []Correlation{{Open: `^open <HOST>$`, Close: `^close$`, Window: -time.Second}}
		}, "correlate[0]: window -1s"},
		{"correlate key twice", func(s *FilterSpec) {
			s.Correlate = []Correlation{{Open: `^(?P<key>a)(?P<key>b) <HOST>$`, Close: `^close$`}}
		}, "correlate[0]: open: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := ok
			tt.mod(&spec)
			_, err := CompileFilter(spec)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("unexpected error: %v", err)
			case tt.want != "" && err == nil:
				t.Fatalf("no error, want one containing %q", tt.want)
			case tt.want != "" && !strings.Contains(err.Error(), tt.want):
				t.Fatalf("error %q does not contain %q", err, tt.want)
			case err != nil && !strings.HasPrefix(err.Error(), "pipeline: "):
				t.Fatalf("error %q lacks the stage prefix", err)
			}
		})
	}
}

func TestIgnoreRegexVetoes(t *testing.T) {
	f, err := CompileFilter(FilterSpec{
		Name:        "f",
		Programs:    []string{"p"},
		FailRegex:   []string{`^fail from <HOST>$`},
		IgnoreRegex: []string{`^fail from 10\.`},
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.match("fail from 10.1.2.3", true); r.pattern != &f.fail[0] || r.ignore != &f.ignore[0] {
		t.Errorf("10.1.2.3: got %+v, want failregex 0 vetoed by ignoreregex 0", r)
	}
	if r := f.match("fail from 192.0.2.1", true); r.pattern != &f.fail[0] || r.ignore != nil {
		t.Errorf("192.0.2.1: got %+v, want failregex 0, not ignored", r)
	}
}

func TestLiterals(t *testing.T) {
	tests := []struct {
		re, prefix, literal string
	}{
		{`^Failed (?:password|publickey) for .* from <HOST> port \d+$`, "Failed ", " from "},
		{`^pam_unix\(sshd:auth\): authentication failure; rhost=<HOST>$`, "pam_unix(sshd:auth): authentication failure; rhost=", ""},
		{`^(?:error: )?maximum authentication attempts exceeded for .* from <HOST>$`, "", "maximum authentication attempts exceeded for "},
		{`(?i)^failed for <HOST>$`, "", ""},
		{`^(?:a|b) <HOST>$`, "", " "},
	}
	for _, tt := range tests {
		p, err := compilePattern(tt.re, failPattern, nil)
		if err != nil {
			t.Fatalf("%s: %v", tt.re, err)
		}
		if p.pre.prefix != tt.prefix {
			t.Errorf("%s: prefix %q, want %q", tt.re, p.pre.prefix, tt.prefix)
		}
		if p.pre.literal != tt.literal {
			t.Errorf("%s: literal %q, want %q", tt.re, p.pre.literal, tt.literal)
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{
		"Failed password for invalid user x from 10.0.0.1 from 192.0.2.7 port 22 ssh2",
		"pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=::ffff:1.2.3.4  user=root",
		"Invalid user  from 2001:db8::1%eth0 port 1",
		"Unable to negotiate with 1.2.3.4 port 4: no matching cipher found. Their offer: \xff",
		"",
	} {
		f.Add(s, "sshd")
	}
	f.Add("s0QBU1Ir002370: AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed", "sendmail")
	f.Add("Connection from 192.0.2.7 port 4444 on 192.0.2.1 port 22", "sshd")
	p := newTestPipeline(f, Config{}, Options{})
	f.Fuzz(func(t *testing.T, text, program string) {
		for _, m := range append(p.Check(text, program), p.Check(text, "")...) {
			if m.Correlated {
				t.Fatalf("stateless Check completed a correlation: %+v", m)
			}
			// The host is always a substring of the line and never spans
			// whitespace; when it parses it is reported canonically. A
			// pending open may have none (the close will carry it).
			if m.Pending && m.Host == "" {
				continue
			}
			if !strings.Contains(text, m.Host) || m.Host == "" || strings.ContainsAny(m.Host, " \t\n[]'\"") {
				t.Fatalf("bad host %q from %q", m.Host, text)
			}
			if m.Addr.IsValid() && (m.Addr.Is4In6() || m.Addr.Zone() != "") {
				t.Fatalf("address %v not canonical", m.Addr)
			}
			if m.Regex == "" || m.Filter == "" {
				t.Fatalf("incomplete match %+v", m)
			}
		}
	})
}
