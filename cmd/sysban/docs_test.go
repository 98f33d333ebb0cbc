package main

import (
	"os"
	"strings"
	"testing"

	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/pipeline"
)

// Every built-in filter has a ready jail in the built-in config and a
// section in docs/filters.md, so users find what sysban ships.
func TestEveryFilterHasJailAndDocs(t *testing.T) {
	cfg, err := config.Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	jails := map[string]config.Jail{}
	for _, j := range cfg.Jails {
		jails[j.Name] = j
	}
	doc, err := os.ReadFile("../../docs/filters.md")
	if err != nil {
		t.Fatal(err)
	}
	for name := range pipeline.BuiltinFilters() {
		j, ok := jails[name]
		if !ok {
			t.Errorf("built-in filter %s has no jail in configs/sysban.yaml", name)
		} else if j.Enabled != (name == "sshd") {
			t.Errorf("jail %s enabled=%v: only sshd is enabled by default", name, j.Enabled)
		}
		if !strings.Contains(string(doc), "| "+name+" |") {
			t.Errorf("docs/filters.md has no table row for %s", name)
		}
	}
}

// The README's config example and the example filter file parse.
func TestREADMEConfigExamples(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	blocks := strings.Split(string(readme), "```yaml\n")
	n := 0
	for _, b := range blocks[1:] {
		text := b[:strings.Index(b, "```")]
		if strings.HasPrefix(text, "name:") {
			continue // a `sysban test` filter file, not a config
		}
		n++
		if _, err := config.Parse("README.md example", []byte(text), nil); err != nil {
			t.Errorf("README example does not load:\n%s\n%v", text, err)
		}
	}
	if n < 2 {
		t.Errorf("found %d YAML config examples in README.md, want the filter and actions examples", n)
	}
}
