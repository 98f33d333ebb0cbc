package filters_test

// The fixture runner: every testdata/*.log is an annotated sample log of
// the filter its file name names, run through a Tester holding that filter
// alone, line by line in file order so multi-line correlation works. The
// format is in testdata/README.md (and package pipeline/internal/sample,
// which reads it); the Tester's clock is the line's timestamp (a step back
// in time is taken as a new year), so a gap in the times can expire a
// correlation window.

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/pipeline/filters"
	"github.com/sysban/sysban/pipeline/internal/sample"
)

// samplePaths returns testdata/*.log.
func samplePaths(t testing.TB) []string {
	t.Helper()
	paths, err := sample.Paths("testdata")
	if err != nil {
		t.Fatal(err)
	}
	return paths
}

// outcomeOf renders what the tester did with a line the way annotations
// write it.
func outcomeOf(ms []pipeline.Match) string {
	if len(ms) == 0 {
		return sample.Annotation(false, false, false, false, 0, "")
	}
	return sample.Annotation(true, ms[0].Ignored, ms[0].Pending, ms[0].Repeat, ms[0].Count, ms[0].Host)
}

// TestFixtures runs every annotated sample log.
func TestFixtures(t *testing.T) {
	builtins := pipeline.BuiltinFilters()
	for _, path := range samplePaths(t) {
		t.Run(filepath.Base(path), func(t *testing.T) {
			fx, err := sample.Read(path)
			if err != nil {
				t.Fatal(err)
			}
			spec, ok := builtins[fx.Filter]
			if !ok {
				t.Fatalf("no built-in filter %q for %s", fx.Filter, path)
			}
			var now time.Time
			tester, err := pipeline.NewTester([]pipeline.FilterSpec{spec}, pipeline.TesterOptions{Now: func() time.Time { return now }, Mode: fx.Mode})
			if err != nil {
				t.Fatal(err)
			}
			counts := map[string]int{}
			for _, fl := range fx.Lines {
				if ts := fl.Msg.Timestamp; !ts.IsZero() {
					// File times have no year: a step back is a new year.
					for ts.Before(now) {
						ts = ts.AddDate(1, 0, 0)
					}
					now = ts
				}
				ms := tester.Test(&fl.Msg)
				if len(ms) > 1 {
					t.Fatalf("%s:%d: %d matches from one filter", path, fl.No, len(ms))
				}
				got := outcomeOf(ms)
				if got != fl.Want {
					detail := ""
					if len(ms) == 1 {
						detail = fmt.Sprintf(" (pattern %d: %s)", ms[0].Pattern, ms[0].Regex)
					}
					t.Errorf("%s:%d: %q: got %q, want %q%s", path, fl.No, fl.Raw, got, fl.Want, detail)
				}
				kind, _, _ := strings.Cut(fl.Want, " ")
				counts[kind]++
			}
			// A sample that never matches, or matches everything, tests
			// little.
			if counts["match"] == 0 || counts["miss"] == 0 {
				t.Errorf("%s: %d matches and %d misses: a sample needs both", path, counts["match"], counts["miss"])
			}
			t.Logf("%d lines: %v", len(fx.Lines), counts)
		})
	}
}

// TestEveryBuiltinHasFixture: every built-in filter has testdata/NAME.log,
// every testdata/*.log names a built-in filter, and every pattern of a
// filter is matched by some line of its samples (across its mode files).
func TestEveryBuiltinHasFixture(t *testing.T) {
	builtins := pipeline.BuiltinFilters()
	hits := map[string]map[string]bool{} // filter -> pattern source -> hit
	for _, path := range samplePaths(t) {
		fx, err := sample.Read(path)
		if err != nil {
			t.Fatal(err)
		}
		spec, ok := builtins[fx.Filter]
		if !ok {
			t.Errorf("%s: no built-in filter %q", path, fx.Filter)
			continue
		}
		tester, err := pipeline.NewTester([]pipeline.FilterSpec{spec}, pipeline.TesterOptions{Mode: fx.Mode})
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if hits[fx.Filter] == nil {
			hits[fx.Filter] = map[string]bool{}
		}
		for _, fl := range fx.Lines {
			for _, m := range tester.Test(&fl.Msg) {
				hits[fx.Filter][m.Regex] = true
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
		for _, m := range slices.Sorted(maps.Keys(spec.Modes)) {
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

// TestRegistry: filters.All is sorted by name without duplicates, every
// filter has a summary for the docs table and its own NAME.go, and the
// registry and the sample files match one to one (NAME.log for every
// filter; every NAME[.MODE].log names a filter that has MODE).
func TestRegistry(t *testing.T) {
	all := filters.All()
	names := make([]string, len(all))
	for i, f := range all {
		names[i] = f.Name
		if f.Summary == "" || strings.ContainsAny(f.Summary, "|\n") {
			t.Errorf("%s: summary %q: want one line without |", f.Name, f.Summary)
		}
		if _, err := os.Stat(strings.ReplaceAll(f.Name, "-", "_") + ".go"); err != nil {
			t.Errorf("%s: no file of its own: %v", f.Name, err)
		}
	}
	if !slices.IsSorted(names) || len(slices.Compact(slices.Clone(names))) != len(names) {
		t.Errorf("filters.All: %v, want sorted by name without duplicates", names)
	}
	byName := pipeline.BuiltinFilters()
	if len(byName) != len(all) {
		t.Errorf("BuiltinFilters has %d filters, filters.All %d", len(byName), len(all))
	}
	samples := map[string]bool{}
	for _, path := range samplePaths(t) {
		base := strings.TrimSuffix(filepath.Base(path), ".log")
		name, mode, _ := strings.Cut(base, ".")
		samples[name] = samples[name] || mode == ""
		spec, ok := byName[name]
		if !ok {
			t.Errorf("%s: no filter %s in the registry", path, name)
			continue
		}
		if _, ok := spec.Modes[mode]; mode != "" && !ok {
			t.Errorf("%s: filter %s has no mode %s", path, name, mode)
		}
	}
	for _, name := range names {
		if !samples[name] {
			t.Errorf("filter %s has no testdata/%s.log", name, name)
		}
	}
}
