// Command gendoc writes the table of built-in filters in docs/filters.md
// from filters.All, between the marker comments that hold it; the rest of
// the file is written by hand. Run through `go generate ./pipeline/filters`;
// TestTableUpToDate fails when the committed table is stale.
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"

	"github.com/sysban/sysban/pipeline/filters"
)

// The markers around the generated table in docs/filters.md.
const (
	beginMarker = "<!-- Generated from pipeline/filters by `go generate ./pipeline/filters`: edit the filters, not this table. -->\n"
	endMarker   = "<!-- End of the generated table. -->\n"
)

func main() {
	doc := flag.String("doc", "docs/filters.md", "the Markdown file whose table to rewrite")
	flag.Parse()
	if err := rewrite(*doc); err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}

// rewrite replaces the table in the file at path.
func rewrite(path string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc, err := withTable(old, table(filters.All()))
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if bytes.Equal(doc, old) {
		return nil
	}
	return os.WriteFile(path, doc, 0o644)
}

// withTable returns doc with the text between the markers replaced by
// table.
func withTable(doc []byte, table string) ([]byte, error) {
	begin := bytes.Index(doc, []byte(beginMarker))
	end := bytes.Index(doc, []byte(endMarker))
	if begin < 0 || end < begin {
		return nil, errors.New("no table markers: want the begin and end comments of gendoc, in that order")
	}
	begin += len(beginMarker)
	out := slices.Concat(doc[:begin], []byte(table), doc[end:])
	return out, nil
}

// table renders specs as a Markdown table, one row per filter in the
// registry's order.
func table(specs []filters.Spec) string {
	var b strings.Builder
	b.WriteString("| filter | programs | catches | modes | vars | multi-line | trusts (users; exes; units) |\n")
	b.WriteString("|---|---|---|---|---|---|---|\n")
	for _, s := range specs {
		var multi []string
		for _, c := range s.Correlate {
			if !slices.Contains(multi, c.Summary) {
				multi = append(multi, c.Summary)
			}
		}
		modes := slices.DeleteFunc(slices.Sorted(maps.Keys(s.Modes)), func(m string) bool { return m == "normal" })
		fmt.Fprintf(&b, "| [%s](#%s) | %s | %s | %s | %s | %s | %s |\n",
			s.Name, s.Name, code(s.Programs), s.Summary, code(modes),
			code(slices.Sorted(maps.Keys(s.Vars))), strings.Join(multi, "; "), trusts(s.Trust))
	}
	return b.String()
}

// trusts renders whom a filter trusts: users; executables; units, the
// parts it declares.
func trusts(t filters.Trust) string {
	if t.Internal {
		return "sysban itself"
	}
	parts := []string{strings.Join(t.Users, ", ")}
	if len(t.Exes) > 0 || len(t.Units) > 0 {
		exes := code(t.Exes)
		if exes == "" {
			exes = "any"
		}
		parts = append(parts, exes)
	}
	if len(t.Units) > 0 {
		parts = append(parts, code(t.Units))
	}
	return strings.Join(parts, "; ")
}

// code renders names as a comma-separated list of code spans.
func code(names []string) string {
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "`" + n + "`"
	}
	return strings.Join(quoted, ", ")
}
