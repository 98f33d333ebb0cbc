package main

import (
	"bytes"
	"flag"
	"os"
	"os/exec"
	"strconv"
	"strings"
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

// The bash script is loaded into a real bash and asked what it completes.
func TestBashCompletion(t *testing.T) {
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("bash not installed")
	}
	tests := []struct {
		words string // COMP_WORDS, the last one being completed
		want  string
	}{
		{"sysban ba", "ban banned"},
		{"sysban completion f", "fish"},
		{"sysban help unb", "unban"},
		{"sysban unban --a", "--all"},
		{"sysban test --print-all-m", "--print-all-matched --print-all-missed"},
	}
	for _, tt := range tests {
		words := strings.Fields(tt.words)
		script := bashCompletion() + `
COMP_WORDS=(` + strings.Join(words, " ") + `)
COMP_CWORD=` + strconv.Itoa(len(words)-1) + `
_sysban
echo "${COMPREPLY[*]}"
`
		out, err := exec.Command("bash", "-c", script).CombinedOutput()
		if err != nil {
			t.Fatalf("bash: %v\n%s", err, out)
		}
		if got := strings.TrimSpace(string(out)); got != tt.want {
			t.Errorf("%q completes to %q, want %q", tt.words, got, tt.want)
		}
	}
}

// zsh and fish check their scripts' syntax where they are installed.
func TestOtherShellsParse(t *testing.T) {
	for shell, script := range map[string]string{"zsh": zshCompletion(), "fish": fishCompletion()} {
		if _, err := exec.LookPath(shell); err != nil {
			t.Logf("%s not installed: its script is not parsed", shell)
			continue
		}
		out, err := exec.Command(shell, "-n", "-c", script).CombinedOutput()
		if err != nil {
			t.Errorf("%s -n: %v\n%s", shell, err, out)
		}
	}
	for _, want := range []string{"compdef _sysban sysban", "'ban:ban an address or prefix by hand"} {
		if !strings.Contains(zshCompletion(), want) {
			t.Errorf("zsh script lacks %q", want)
		}
	}
	if !strings.Contains(fishCompletion(), "__fish_seen_subcommand_from unban' -l all") {
		t.Error("fish script lacks unban --all")
	}
}
