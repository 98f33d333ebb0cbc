package main

import (
	"os"
	"strings"
	"testing"

	"github.com/sysban/sysban/pipeline/filters"
)

const docPath = "../../../../docs/filters.md"

// TestTableUpToDate fails when the filter table committed in
// docs/filters.md is not what the registry generates.
func TestTableUpToDate(t *testing.T) {
	doc, err := os.ReadFile(docPath)
	if err != nil {
		t.Fatal(err)
	}
	want, err := withTable(doc, table(filters.All()))
	if err != nil {
		t.Fatal(err)
	}
	if string(want) != string(doc) {
		t.Errorf("docs/filters.md: the filter table is stale: run go generate ./pipeline/filters")
	}
}

// TestTable: a row per filter with its programs, summary, modes, vars,
// correlations (those that share a summary listed once) and whom it
// trusts.
func TestTable(t *testing.T) {
	got := table([]filters.Spec{
		{Name: "a", Summary: "one", Programs: []string{"p", "q*"}, Trust: filters.Trust{Users: []string{"root"}}},
		{
			Name: "b", Summary: "two", Programs: []string{"r"},
			Trust: filters.Trust{Users: []string{"root", "b"}, Units: []string{"b.service"}},
			Modes: map[string][]string{"z": nil, "normal": nil, "y": nil},
			Vars:  map[string][]string{"v": nil},
			Correlate: []filters.Correlation{
				{Summary: "pid: x + y"}, {Summary: "pid: x + y"}, {Summary: "id: u + w"},
			},
		},
	})
	want := "| filter | programs | catches | modes | vars | multi-line | trusts (users; exes; units) |\n" +
		"|---|---|---|---|---|---|---|\n" +
		"| [a](#a) | `p`, `q*` | one |  |  |  | root |\n" +
		"| [b](#b) | `r` | two | `y`, `z` | `v` | pid: x + y; id: u + w | root, b; any; `b.service` |\n"
	if got != want {
		t.Errorf("table:\n%s\nwant:\n%s", got, want)
	}
}

// TestWithTableNeedsMarkers: a file without the markers is an error, not a
// table appended somewhere.
func TestWithTableNeedsMarkers(t *testing.T) {
	for _, doc := range []string{"", beginMarker, endMarker, endMarker + beginMarker} {
		if _, err := withTable([]byte(doc), "x"); err == nil || !strings.Contains(err.Error(), "markers") {
			t.Errorf("%q: err %v, want one about the markers", doc, err)
		}
	}
	got, err := withTable([]byte("a\n"+beginMarker+"old\n"+endMarker+"b\n"), "new\n")
	if err != nil || string(got) != "a\n"+beginMarker+"new\n"+endMarker+"b\n" {
		t.Errorf("got %q, %v", got, err)
	}
}
