package pipeline

// The fixture runner: every testdata/*.log is an annotated sample log of
// the filter its file name names, run through a Tester holding that filter
// alone, line by line in file order so multi-line correlation works.
//
// Format (also in testdata/README.md, which filter authors follow):
//
//	## comment; blank lines are skipped
//	## mode: ddos            optional, before the first log line
//	# match HOST             the next line is a failure of HOST (as captured)
//	# miss                   the next line is no failure
//	# ignore                 a failregex matches but an ignoreregex vetoes it
//	# pending                the next line opens a multi-line failure
//	Mmm dd hh:mm:ss host prog[pid]: message
//
// File names: FILTER.log, or FILTER.MODE.log to run a mode (the part after
// the first dot). Log lines are parsed by receiver.ParseFileLine, as
// `sysban test` parses them; the Tester's clock is the line's timestamp
// (a step back in time is taken as a new year), so a gap in the times can
// expire a correlation window.

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/receiver"
)

// fixtureYearStart is the "now" the year of file lines is inferred from.
var fixtureYearStart = time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC)

// fixtureLine is one annotated log line.
type fixtureLine struct {
	no   int    // line number in the file
	want string // "match HOST", "miss", "ignore" or "pending"
	raw  string
	msg  sysban.Message
}

// fixture is one parsed testdata file.
type fixture struct {
	path, filter, mode string
	lines              []fixtureLine
}

func readFixture(path string) (*fixture, error) {
	base := strings.TrimSuffix(filepath.Base(path), ".log")
	fx := &fixture{path: path, filter: base}
	if i := strings.IndexByte(base, '.'); i >= 0 {
		fx.filter, fx.mode = base[:i], base[i+1:]
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<20)
	var want string
	for no := 1; sc.Scan(); no++ {
		line := sc.Text()
		switch {
		case strings.TrimSpace(line) == "":
			continue
		case strings.HasPrefix(line, "## mode:"):
			if len(fx.lines) > 0 {
				return nil, fmt.Errorf("%s:%d: mode directive after the first log line", path, no)
			}
			fx.mode = strings.TrimSpace(strings.TrimPrefix(line, "## mode:"))
			continue
		case strings.HasPrefix(line, "##"):
			continue
		case strings.HasPrefix(line, "#"):
			if want != "" {
				return nil, fmt.Errorf("%s:%d: two annotations in a row", path, no)
			}
			want = strings.TrimSpace(strings.TrimPrefix(line, "#"))
			if want != "miss" && want != "ignore" && want != "pending" && !strings.HasPrefix(want, "match ") {
				return nil, fmt.Errorf("%s:%d: annotation %q: want match HOST, miss, ignore or pending", path, no, want)
			}
			continue
		}
		if want == "" {
			return nil, fmt.Errorf("%s:%d: log line without an annotation before it", path, no)
		}
		fl := fixtureLine{no: no, want: want, raw: line}
		if err := receiver.ParseFileLine([]byte(line), fixtureYearStart, &fl.msg); err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, no, err)
		}
		fx.lines = append(fx.lines, fl)
		want = ""
	}
	if want != "" {
		return nil, fmt.Errorf("%s: annotation at the end without a log line", path)
	}
	return fx, sc.Err()
}

func fixturePaths(t testing.TB) []string {
	t.Helper()
	paths, err := filepath.Glob("testdata/*.log")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no testdata/*.log: %v", err)
	}
	return paths
}

// outcomeOf renders what the tester did with a line the way annotations
// write it.
func outcomeOf(ms []Match) string {
	switch {
	case len(ms) == 0:
		return "miss"
	case ms[0].Ignored:
		return "ignore"
	case ms[0].Pending:
		return "pending"
	}
	return "match " + ms[0].Host
}

// TestFixtures runs every annotated sample log.
func TestFixtures(t *testing.T) {
	builtins := BuiltinFilters()
	for _, path := range fixturePaths(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			fx, err := readFixture(path)
			if err != nil {
				t.Fatal(err)
			}
			spec, ok := builtins[fx.filter]
			if !ok {
				t.Fatalf("no built-in filter %q for %s", fx.filter, path)
			}
			var now time.Time
			tester, err := NewTester([]FilterSpec{spec}, TesterOptions{Now: func() time.Time { return now }, Mode: fx.mode})
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]int{}
			for _, fl := range fx.lines {
				if ts := fl.msg.Timestamp; !ts.IsZero() {
					// File times have no year: a step back is a new year.
					for ts.Before(now) {
						ts = ts.AddDate(1, 0, 0)
					}
					now = ts
				}
				ms := tester.Test(&fl.msg)
				if len(ms) > 1 {
					t.Fatalf("%s:%d: %d matches from one filter", path, fl.no, len(ms))
				}
				got := outcomeOf(ms)
				if got != fl.want {
					detail := ""
					if len(ms) == 1 {
						detail = fmt.Sprintf(" (pattern %d: %s)", ms[0].Pattern, ms[0].Regex)
					}
					t.Errorf("%s:%d: %q: got %q, want %q%s", path, fl.no, fl.raw, got, fl.want, detail)
				}
				kind, _, _ := strings.Cut(fl.want, " ")
				counts[kind]++
			}
			// A sample that never matches, or matches everything, tests
			// little.
			if counts["match"] == 0 || counts["miss"] == 0 {
				t.Errorf("%s: %d matches and %d misses: a sample needs both", path, counts["match"], counts["miss"])
			}
			t.Logf("%d lines: %v", len(fx.lines), counts)
		})
	}
}

// TestEveryBuiltinHasFixture: every built-in filter has testdata/NAME.log,
// every testdata/*.log names a built-in filter, and every pattern of a
// filter is matched by some line of its samples (across its mode files).
func TestEveryBuiltinHasFixture(t *testing.T) {
	builtins := BuiltinFilters()
	hits := map[string]map[string]bool{} // filter -> pattern source -> hit
	for _, path := range fixturePaths(t) {
		fx, err := readFixture(path)
		if err != nil {
			t.Fatal(err)
		}
		spec, ok := builtins[fx.filter]
		if !ok {
			t.Errorf("%s: no built-in filter %q", path, fx.filter)
			continue
		}
		tester, err := NewTester([]FilterSpec{spec}, TesterOptions{Mode: fx.mode})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if hits[fx.filter] == nil {
			hits[fx.filter] = map[string]bool{}
		}
		for _, fl := range fx.lines {
			for _, m := range tester.Test(&fl.msg) {
				hits[fx.filter][m.Regex] = true
			}
		}
	}
	names := make([]string, 0, len(builtins))
	for name := range builtins {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if _, err := os.Stat(filepath.Join("testdata", name+".log")); err != nil {
			t.Errorf("built-in filter %s has no testdata/%s.log", name, name)
			continue
		}
		spec := builtins[name]
		all := slices.Clone(spec.FailRegex)
		for _, m := range sortedKeys(spec.Modes) {
			all = append(all, spec.Modes[m]...)
		}
		for _, c := range spec.Correlate {
			all = append(all, c.Open, c.Close)
		}
		for _, src := range all {
			if !hits[name][src] {
				t.Errorf("%s: no sample line matches pattern %s", name, src)
			}
		}
	}
}
