package fail2ban

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
)

// TestBacktrackingFilters imports fail2ban-style filters (written for this
// test) whose patterns use look-ahead, look-behind, back-references and
// atomic groups: they are carried on the bounded backtracking engine, the
// report says so and why, the output passes sysban's check, and the
// filters count what fail2ban would.
func TestBacktrackingFilters(t *testing.T) {
	dir := t.TempDir()
	files := map[string]string{
		"jail.conf": "[DEFAULT]\nenabled = true\n[webauth]\n[relay]\n[possessive]\n",
		// A custom filter excusing the health checker by negative look-ahead,
		// with a look-behind ignoreregex.
		"filter.d/webauth.conf": "[Definition]\n_daemon = webauth\n" +
			"failregex = ^%(__prefix_line)sauth failure user=(?!healthcheck\\b)\\S+ rhost=<HOST>$\n" +
			"ignoreregex = ^%(__prefix_line)sauth failure user=\\S+ rhost=\\S+(?<=\\.local)$\n",
		// A repeated id told by Python's named back-reference, beside a
		// pattern RE2 could run alone (one filter, one engine).
		"filter.d/relay.conf": "[Definition]\n_daemon = relayd\n" +
			"failregex = ^%(__prefix_line)sid=(?P<id>\\w+) replayed as (?P=id) from <HOST>$\n" +
			"            ^%(__prefix_line)sdenied (?>[a-z]+) from <HOST>$\n" +
			"            ^%(__prefix_line)sbad helo from <HOST>$\n" +
			"            ^%(__prefix_line)suser <F-USER>\\S+</F-USER> relogged as (?P=user) from <HOST>$\n",
		"filter.d/possessive.conf": "[Definition]\n_daemon = poss\nfailregex = ^%(__prefix_line)sx a++ from <HOST>$\n",
	}
	for name, text := range files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cfg, rep := imported(t, dir)
	res, err := Import(os.DirFS(dir), dir)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(res.YAML), "engine: backtrack") {
		t.Errorf("output without engine: backtrack:\n%s", res.YAML)
	}
	var text strings.Builder
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"uses look-around, which Go's RE2 engine cannot run",
		"runs on sysban's bounded backtracking engine (engine: backtrack)",
		"uses a back-reference",
		"neither Go's RE2 nor sysban's backtracking engine reads",
	} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("report lacks %q:\n%s", want, text.String())
		}
	}
	if c := rep.Counts; c.FiltersBacktracking != 2 || c.FiltersTranslated != 2 || c.FiltersNotCarried != 1 {
		t.Errorf("counts %+v: want 2 backtracking filters, both translated, possessive not carried", c)
	}
	if r := reportOf(t, rep, "possessive"); r.NotCarried == "" {
		t.Error("a possessive quantifier was carried")
	}
	for _, name := range []string{"webauth", "relay"} {
		if spec := cfg.Filters[name]; spec.Engine != pipeline.EngineBacktrack {
			t.Errorf("filter %s: engine %q", name, spec.Engine)
		}
	}
	tester, err := pipeline.NewTester([]pipeline.FilterSpec{cfg.Filters["webauth"], cfg.Filters["relay"]}, pipeline.TesterOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ prog, text, host string }{
		{"webauth", "auth failure user=alice rhost=198.51.100.3", "198.51.100.3"},
		{"webauth", "auth failure user=healthcheck rhost=198.51.100.3", ""},
		{"webauth", "auth failure user=healthcheckers rhost=198.51.100.3", "198.51.100.3"},
		{"webauth", "auth failure user=bob rhost=printer.local", ""}, // ignored
		{"relayd", "id=ab12 replayed as ab12 from 203.0.113.4", "203.0.113.4"},
		{"relayd", "id=ab12 replayed as ab13 from 203.0.113.4", ""},
		{"relayd", "denied xyz from 203.0.113.5", "203.0.113.5"},
		{"relayd", "bad helo from 2001:db8::9", "2001:db8::9"},
		{"relayd", "user ann relogged as ann from 192.0.2.10", "192.0.2.10"}, // a field back-referenced
		{"relayd", "user ann relogged as bo from 192.0.2.10", ""},
	} {
		host := ""
		for _, m := range tester.Test(&sysban.Message{AppName: tt.prog, Text: tt.text}) {
			if !m.Ignored {
				host = m.Host
			}
		}
		if host != tt.host {
			t.Errorf("%s %q: failure of %q, want %q", tt.prog, tt.text, host, tt.host)
		}
	}
}
