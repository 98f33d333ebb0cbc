package pipeline

import (
	"errors"
	"fmt"
	"maps"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline/internal/sample"
	"github.com/sysban/sysban/receiver"
)

// FuzzBuiltinFilters runs arbitrary text through every built-in filter in
// every mode any of them has, the way `sysban test` and the daemon match
// it. The other fuzz targets of this package put attacker text into the
// lines of one group of filters; this one covers the whole set as it is
// shipped, so a filter added to BuiltinFilters is fuzzed without anyone
// writing a target for it. It is seeded with every line of the annotated
// sample logs in filters/testdata/, alone and in runs of consecutive lines (so
// multi-line correlations open and close).
//
// Each input is up to 8 lines; every line goes to one program of each
// filter. What must hold whatever the text:
//   - at most one match per filter per line, with a pattern index that
//     names the pattern reported (and an ignore index when ignored);
//   - a failure's host is a non-empty substring of the text seen so far
//     in this input, with no blank, bracket or quote in it, and its
//     address, when it has one, is canonical and is the host's;
//   - a line completes a multi-line failure only after a line of this
//     input opened one for that filter (each input is its own sender, so
//     opens of earlier inputs never meet it).
func FuzzBuiltinFilters(f *testing.F) {
	for _, path := range samplePaths(f) {
		fx, err := sample.Read(path)
		if err != nil {
			f.Fatal(err)
		}
		var texts []string
		for _, fl := range fx.Lines {
			texts = append(texts, fl.Msg.Text)
			f.Add(fl.Msg.Text)
		}
		for i := 0; i+1 < len(texts); i += 4 {
			f.Add(strings.Join(texts[i:min(i+4, len(texts))], "\n"))
		}
	}
	f.Add("")
	f.Add("\x00\xff\n\n\n")

	builtins := BuiltinFilters()
	specs := make([]FilterSpec, 0, len(builtins))
	modes := []string{""}
	var programs []string
	for _, name := range slices.Sorted(maps.Keys(builtins)) {
		spec := builtins[name]
		specs = append(specs, spec)
		for m := range spec.Modes {
			if !slices.Contains(modes, m) {
				modes = append(modes, m)
			}
		}
		// One program per filter reaches every filter; a glob is made
		// concrete the way a daemon's name would fill it.
		p := strings.NewReplacer("*", "x", "?", "x").Replace(spec.Programs[0])
		if !slices.Contains(programs, p) {
			programs = append(programs, p)
		}
	}
	slices.Sort(modes)
	testers := make([]*Tester, len(modes))
	for i, m := range modes {
		t, err := NewTester(specs, TesterOptions{Mode: m})
		if err != nil {
			f.Fatalf("mode %q: %v", m, err)
		}
		testers[i] = t
	}
	sender := 0
	f.Fuzz(func(t *testing.T, input string) {
		lines := strings.Split(input, "\n")
		if len(lines) > 8 {
			lines = lines[:8]
		}
		for mi, tester := range testers {
			// Correlation keys are scoped by the sending host: a fresh
			// host per input and mode keeps inputs independent.
			sender++
			hostname := fmt.Sprintf("fuzz%d", sender)
			var seen strings.Builder
			opened := map[string]int{}
			for _, line := range lines {
				seen.WriteString(line)
				seen.WriteByte('\n')
				for _, prog := range programs {
					ms := tester.Test(&sysban.Message{Hostname: hostname, AppName: prog, ProcID: "1", Text: line})
					checkMatches(t, tester, modes[mi], prog, line, seen.String(), opened, ms)
				}
			}
		}
	})
}

// checkMatches asserts FuzzBuiltinFilters' invariants on one line's matches.
func checkMatches(t *testing.T, tester *Tester, mode, prog, line, seen string, opened map[string]int, ms []Match) {
	t.Helper()
	where := fmt.Sprintf("mode %q program %s line %q", mode, prog, line)
	filters := map[string]bool{}
	for _, m := range ms {
		if filters[m.Filter] {
			t.Fatalf("%s: two matches from %s", where, m.Filter)
		}
		filters[m.Filter] = true
		pats := tester.Patterns(m.Filter)
		if m.Pattern < 0 || m.Pattern >= len(pats) || m.Regex != pats[m.Pattern] {
			t.Fatalf("%s: %s: pattern %d %q is not one of the filter's", where, m.Filter, m.Pattern, m.Regex)
		}
		ign := tester.IgnorePatterns(m.Filter)
		if m.Ignored != (m.IgnoreIndex >= 0) || m.IgnoreIndex >= len(ign) {
			t.Fatalf("%s: %s: ignored %v with ignore index %d of %d", where, m.Filter, m.Ignored, m.IgnoreIndex, len(ign))
		}
		if m.Pending && m.Correlated {
			t.Fatalf("%s: %s: pending and correlated at once", where, m.Filter)
		}
		if m.Pending {
			if !m.Ignored {
				opened[m.Filter]++
			}
			if m.Host == "" {
				continue // the close will carry it
			}
		}
		if m.Correlated {
			if opened[m.Filter] == 0 {
				t.Fatalf("%s: %s completed a failure no line of this input opened", where, m.Filter)
			}
			opened[m.Filter]--
		}
		if m.Host == "" || strings.ContainsAny(m.Host, " \t\r\n[]'\"") || !strings.Contains(seen, m.Host) {
			t.Fatalf("%s: %s: bad host %q", where, m.Filter, m.Host)
		}
		if m.Addr.IsValid() && (m.Addr.Is4In6() || m.Addr.Zone() != "") {
			t.Fatalf("%s: %s: address %v not canonical", where, m.Filter, m.Addr)
		}
		if a, err := netip.ParseAddr(m.Host); err == nil && m.Addr != sysban.CanonicalAddr(a) {
			t.Fatalf("%s: %s: host %q reported as address %v", where, m.Filter, m.Host, m.Addr)
		}
	}
}

// FuzzFileLines is `sysban test` over a log file: raw lines, header and
// all, read by receiver.ParseFileLine and matched by every built-in filter.
// It is seeded with the sample logs' lines as written, so the fuzzer
// mutates real headers (times, hosts, program names, pids) as well as
// texts; FuzzBuiltinFilters covers the texts behind fixed programs. The
// invariants are the same, except that a line's sender is its own header
// (a mutated header may name any host, so inputs are not independent and a
// completed multi-line failure is only checked for a clean host).
func FuzzFileLines(f *testing.F) {
	for _, path := range samplePaths(f) {
		fx, err := sample.Read(path)
		if err != nil {
			f.Fatal(err)
		}
		for _, fl := range fx.Lines {
			f.Add(fl.Raw)
		}
	}
	f.Add("Jun  9 03:35:33 h sshd[1]: \xff")
	f.Add("2026-11-21T10:00:00.123456+01:00 mail postfix/smtpd[4911]: warning: unknown[192.0.2.7]: SASL LOGIN authentication failed: authentication failure")
	specs := slices.Collect(maps.Values(BuiltinFilters()))
	tester, err := NewTester(specs, TesterOptions{Now: sample.YearStart})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, line string) {
		var m sysban.Message
		if err := receiver.ParseFileLine([]byte(line), sample.YearStart(), &m); err != nil && !errors.Is(err, receiver.ErrNoHeader) {
			return // refused: `sysban test` reports the line and goes on
		}
		if !strings.Contains(line, m.Text) || !strings.Contains(line, m.AppName) {
			t.Fatalf("%q: parsed program %q text %q are not parts of the line", line, m.AppName, m.Text)
		}
		for _, mt := range tester.Test(&m) {
			if mt.Ignored || mt.Pending {
				continue
			}
			// A completion's host may come from an earlier input's line.
			if mt.Host == "" || strings.ContainsAny(mt.Host, " \t\r\n[]'\"") || (!mt.Correlated && !strings.Contains(m.Text, mt.Host)) {
				t.Fatalf("%q: %s: bad host %q", line, mt.Filter, mt.Host)
			}
			if a, err := netip.ParseAddr(mt.Host); err == nil && mt.Addr != sysban.CanonicalAddr(a) {
				t.Fatalf("%q: %s: host %q reported as address %v", line, mt.Filter, mt.Host, mt.Addr)
			}
		}
	})
}
