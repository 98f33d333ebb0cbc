package main

import (
	"bytes"
	"flag"
	"os"
	"testing"
)

var updateMan = flag.Bool("update-man", false, "rewrite docs/sysban.8 (same as go generate)")

// docs/sysban.8 is generated from the help text; a change to a command's
// summary or flags without `go generate ./cmd/sysban` fails here.
func TestManPageFresh(t *testing.T) {
	const path = "../../docs/sysban.8"
	if *updateMan {
		if err := os.WriteFile(path, []byte(manPage()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != manPage() {
		t.Fatalf("%s is stale: run go generate ./cmd/sysban", path)
	}
	for _, c := range commands() {
		if !bytes.Contains(got, []byte(".B sysban "+roff(c.name))) {
			t.Errorf("man page has no entry for %s", c.name)
		}
	}
}

func TestHelpCommand(t *testing.T) {
	checkRuns(t, []runCase{
		{[]string{"help"}, 0, "completion bash|zsh|fish  print a shell completion script", ""},
		{[]string{"--help"}, 0, "ban JAIL ADDR [--for D]   ban an address or prefix by hand", ""},
		{[]string{"help", "ban"}, 0, "-for string", ""},
		{[]string{"help", "run"}, 0, "usage: sysban run [--config FILE] [--observe]\n  -config string", ""},
		{[]string{"help", "test"}, 0, "-print-all-missed", ""},
		{[]string{"help", "completion"}, 0, "bash-completion/completions/sysban", ""},
		{[]string{"help", "nope"}, 2, "", `unknown command "nope"`},
		{[]string{"help", "--man"}, 0, ".TH SYSBAN 8", ""},
		{[]string{"completion"}, 2, "", "usage: sysban completion bash|zsh|fish"},
		{[]string{"completion", "tcsh"}, 2, "", `unknown shell "tcsh"`},
	})
}
