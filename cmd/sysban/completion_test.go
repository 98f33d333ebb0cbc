package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// runAsSysban makes the test binary act as the sysban binary: the shells
// under test run `sysban completion candidates` through a symlink to it.
const runAsSysban = "TEST_RUN_AS_SYSBAN" // not SYSBAN_*: the config reads those as settings

func TestMain(m *testing.M) {
	if os.Getenv(runAsSysban) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

func TestCompleter(t *testing.T) {
	cp := completer{
		jails: func(socket string) []string {
			if socket == "/other.sock" {
				return []string{"other"}
			}
			return []string{"postfix", "sshd"}
		},
		environ: os.Environ(),
	}
	tests := []struct {
		words []string
		want  string // the candidates, space-separated; "+files" when files complete too
	}{
		{[]string{""}, strings.Join(commandNames(), " ")},
		{[]string{"status", ""}, "postfix sshd"},
		{[]string{"status", "--socket", "/other.sock", ""}, "other"},
		{[]string{"status", "--socket=/other.sock", ""}, "other"},
		{[]string{"status", "--socket", ""}, "+files"},
		{[]string{"status", "sshd", ""}, ""},
		{[]string{"status", "--all", ""}, "postfix sshd"},
		{[]string{"ban", "sshd", ""}, ""},
		{[]string{"ban", "--for", "1h", ""}, "postfix sshd"},
		{[]string{"ban", "--for", ""}, ""},
		{[]string{"unban", "--jail", ""}, "postfix sshd"},
		{[]string{"unban", "--"}, "--all --jail --json --socket"},
		{[]string{"unban", "--", "-"}, ""},
		{[]string{"fleet", ""}, "keygen status"},
		{[]string{"fleet", "status", ""}, ""},
		{[]string{"help", ""}, strings.Join(commandNames(), " ")},
		{[]string{"help", "run", ""}, ""},
		{[]string{"completion", ""}, "bash zsh fish"},
		{[]string{"run", "--config", ""}, "+files"},
		{[]string{"run", ""}, ""},
		{[]string{"import-fail2ban", ""}, "+files"},
		{[]string{"import-fail2ban", "--out", ""}, "+files"},
		{[]string{"import-fail2ban", "--j"}, "--check --json --out"},
		{[]string{"import-fail2ban", "/etc/fail2ban", "--j"}, ""},
		{[]string{"test", "sshd", "auth.log", "--print-all-m"}, "--config --json --mode --print-all-ignored --print-all-matched --print-all-missed --program"},
		{[]string{"test", "--config", "/nonexistent.yaml", ""}, "all +files"},
		{[]string{"test", "sshd", ""}, "+files"},
		{[]string{"test", "sshd", "auth.log", ""}, ""},
		{[]string{"nope", ""}, ""},
	}
	for _, tt := range tests {
		c := cp.complete(tt.words)
		var got []string
		for _, w := range c.words {
			got = append(got, w.word)
		}
		if c.files {
			got = append(got, "+files")
		}
		if g := strings.Join(got, " "); g != tt.want {
			t.Errorf("complete(%q) = %q, want %q", tt.words, g, tt.want)
		}
	}
	// test's first argument: all, the built-in filters and the jails.
	c := cp.complete([]string{"test", "s"})
	var names []string
	for _, w := range c.words {
		names = append(names, w.word)
	}
	for _, want := range []string{"all", "sshd", "postfix-sasl", "recidive"} {
		if !slices.Contains(names, want) {
			t.Errorf("test targets %v lack %s", names, want)
		}
	}
}

// shellQuery is one completion asked of the real shells: the command line
// up to the cursor, and the candidates every shell must offer, sorted.
type shellQuery struct {
	line string
	want []string
}

// shellQueries are asked of bash, zsh and fish alike. sock is a fake
// daemon's control socket (its enabled jails: postfix-sasl, sshd); dir
// holds sysban.yaml and syslog.txt and is the shells' working directory.
func shellQueries(sock, dir string) []shellQuery {
	return []shellQuery{
		{"sysban sta", []string{"status"}},
		{"sysban ba", []string{"ban", "banned"}},
		{"sysban unban --j", []string{"--jail", "--json"}},
		{"sysban test --print-all-m", []string{"--print-all-matched", "--print-all-missed"}},
		{"sysban help unb", []string{"unban"}},
		{"sysban help run ", nil},
		{"sysban completion f", []string{"fish"}},
		{"sysban fleet ", []string{"keygen", "status"}},
		{"sysban status --socket " + sock + " ", []string{"postfix-sasl", "sshd"}},
		{"sysban ban --socket " + sock + " p", []string{"postfix-sasl"}},
		{"sysban unban 192.0.2.1 --socket " + sock + " --jail ", []string{"postfix-sasl", "sshd"}},
		{"sysban test ssh", []string{"sshd"}},
		{"sysban test sys", []string{"sysban.yaml", "syslog.txt"}},
		{"sysban run --config " + dir + "/sysb", []string{"sysban.yaml"}},
	}
}

// TestShellCompletion loads each completion script into the real shell
// and asks that shell what it completes.
func TestShellCompletion(t *testing.T) {
	bin, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	pathDir := t.TempDir()
	if err := os.Symlink(bin, filepath.Join(pathDir, "sysban")); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{"sysban.yaml", "syslog.txt"} {
		writeFile(t, dir, name, "")
	}
	sock := serveFake(t, &fakeDaemon{start: time.Now()})
	queries := shellQueries(sock, dir)
	// Built with -race, each run of the test binary would sleep a second
	// at exit (the race runtime's atexit_sleep_ms) for every TAB.
	// The shells' own state (fish's universal variables, history) goes to
	// a directory of the test's, not the user's home.
	home := t.TempDir()
	env := append(os.Environ(), runAsSysban+"=1", "PATH="+pathDir+":"+os.Getenv("PATH"), "GORACE=atexit_sleep_ms=0 "+os.Getenv("GORACE"),
		"HOME="+home, "XDG_CONFIG_HOME="+home, "XDG_DATA_HOME="+home, "XDG_CACHE_HOME="+home)

	shells := []struct {
		name string
		ask  func(t *testing.T, queries []shellQuery) (*exec.Cmd, error)
	}{
		{"bash", bashAsk},
		{"zsh (autoloaded from fpath)", zshAsk("fpath")},
		{"zsh (sourced)", zshAsk("source")},
		{"fish", fishAsk},
	}
	for _, sh := range shells {
		t.Run(sh.name, func(t *testing.T) {
			cmd, err := sh.ask(t, queries)
			if err != nil {
				t.Skip(err)
			}
			cmd.Dir, cmd.Env = dir, env
			out, err := cmd.Output()
			if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
				t.Skipf("%s: zsh lacks the zsh/zpty module: the zsh completion script is not tested", sh.name)
			}
			if err != nil {
				t.Fatalf("%s: %v\n%s%s", sh.name, err, out, stderrOf(err))
			}
			answers := splitAnswers(string(out))
			if len(answers) != len(queries) {
				t.Fatalf("%s answered %d of %d queries:\n%s", sh.name, len(answers), len(queries), out)
			}
			for i, q := range queries {
				if !slices.Equal(answers[i], q.want) {
					t.Errorf("%s completes %q to %q, want %q", sh.name, q.line, answers[i], q.want)
				}
			}
		})
	}
}

// shellMissing is the skip reason for a shell that is not installed.
func shellMissing(shell string) error {
	if _, err := exec.LookPath(shell); err != nil {
		return fmt.Errorf("%s is not installed (Debian package %s; .ci/run installs it): its completion script is not tested", shell, shell)
	}
	return nil
}

// bashAsk sets COMP_WORDS and COMP_CWORD as bash's programmable completion
// would and calls the function the script registered with complete -F.
func bashAsk(t *testing.T, queries []shellQuery) (*exec.Cmd, error) {
	if err := shellMissing("bash"); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(bashCompletion)
	b.WriteString("fn=$(complete -p sysban | sed -n 's/.*-F \\([^ ]*\\) .*/\\1/p')\n")
	for _, q := range queries {
		words := strings.Split(q.line, " ")
		quoted := make([]string, len(words))
		for i, w := range words {
			quoted[i] = "'" + w + "'"
		}
		fmt.Fprintf(&b, "COMP_WORDS=(%s); COMP_CWORD=%d; COMPREPLY=(); $fn; echo @@Q; printf '%%s\\n' \"${COMPREPLY[@]}\"\n",
			strings.Join(quoted, " "), len(words)-1)
	}
	return exec.Command("bash", "--norc", "--noprofile", "-c", b.String()), nil
}

// zshAsk drives an interactive zsh in a pseudo-terminal
// (testdata/complete.zsh), with the script autoloaded from $fpath or
// sourced after compinit.
func zshAsk(mode string) func(t *testing.T, queries []shellQuery) (*exec.Cmd, error) {
	return func(t *testing.T, queries []shellQuery) (*exec.Cmd, error) {
		if err := shellMissing("zsh"); err != nil {
			return nil, err
		}
		driver, err := filepath.Abs("testdata/complete.zsh")
		if err != nil {
			t.Fatal(err)
		}
		script := writeFile(t, t.TempDir(), "_sysban", zshCompletion)
		args := []string{"-f", driver, mode, script}
		for _, q := range queries {
			args = append(args, q.line)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		t.Cleanup(cancel)
		return exec.CommandContext(ctx, "zsh", args...), nil
	}
}

// fishAsk asks fish's own `complete -C`, which prints what fish would
// offer for a command line.
func fishAsk(t *testing.T, queries []shellQuery) (*exec.Cmd, error) {
	if err := shellMissing("fish"); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString(fishCompletion)
	for _, q := range queries {
		fmt.Fprintf(&b, "echo @@Q; complete -C %s\n", fishQuote(q.line))
	}
	return exec.Command("fish", "--no-config", "-c", b.String()), nil
}

func fishQuote(s string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(s, `\`, `\\`), "'", `\'`) + "'"
}

// splitAnswers splits a shell's output at the "@@Q" lines into the
// candidates of each query, without their descriptions (after a tab) or
// directories, sorted.
func splitAnswers(out string) [][]string {
	var answers [][]string
	for _, line := range strings.Split(out, "\n") {
		line = strings.TrimRight(line, "\r")
		switch {
		case line == "@@Q":
			answers = append(answers, nil)
		case line != "" && len(answers) > 0:
			word, _, _ := strings.Cut(line, "\t")
			last := &answers[len(answers)-1]
			*last = append(*last, filepath.Base(word))
		}
	}
	for i := range answers {
		slices.Sort(answers[i])
		answers[i] = slices.Compact(answers[i])
	}
	return answers
}

func stderrOf(err error) string {
	if ee, ok := err.(*exec.ExitError); ok {
		return string(ee.Stderr)
	}
	return ""
}
