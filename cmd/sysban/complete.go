package main

// What completes a word of a sysban command line. The bash, zsh and fish
// scripts hold no knowledge of the commands: on each TAB they run
// `sysban completion candidates -- WORDS...` and offer what it prints, so
// the three shells complete alike and what they offer follows the command
// table, the flags' usage texts, the configuration's filters and the
// running daemon's jails.

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/control"
)

// candidatesVerb is the hidden argument of `sysban completion` that the
// scripts call; it is no shell name, so it cannot clash with one.
const candidatesVerb = "candidates"

// jailLookupTimeout bounds asking the daemon for its jails: a TAB must not
// hang on a stuck daemon.
const jailLookupTimeout = time.Second

// argKind is what a command's positional argument is.
type argKind int

const (
	argNone    argKind = iota // free text (an address): nothing to offer
	argJail                   // a jail of the running daemon
	argCommand                // a sysban command
	argShell                  // a shell completion knows
	argFleet                  // a fleet subcommand
	argTarget                 // a test target: filter, jail, all or a filter file
	argFile                   // a file or directory name
)

// positionals lists, per command, what its positional arguments are, in
// order; a command missing here takes none.
var positionals = map[string][]argKind{
	"status":          {argJail},
	"ban":             {argJail, argNone},
	"unban":           {argNone},
	"banned":          {argNone},
	"fleet":           {argFleet},
	"test":            {argTarget, argFile},
	"import-fail2ban": {argFile},
	"help":            {argCommand},
	"completion":      {argShell},
}

// flagsFirst are the commands whose flags must come before their
// arguments (package flag stops at the first argument); the others take
// flags anywhere.
var flagsFirst = map[string]bool{"import-fail2ban": true}

// flagValues says what a flag's value is, for the flags whose value can be
// completed; other flags' values (durations, modes) get nothing.
var flagValues = map[string]argKind{
	"--jail":   argJail,
	"--config": argFile,
	"--out":    argFile,
	"--socket": argFile,
}

// candidate is one completion: the word and, where there is one, what it
// means (zsh and fish show it beside the word).
type candidate struct {
	word, desc string
}

// completion is the answer for one word: the candidates, and whether the
// shell should offer file names too.
type completion struct {
	words []candidate
	files bool
}

// completer answers completions. jails asks the daemon at socket for the
// names of its enabled jails; tests point it at a fake daemon.
type completer struct {
	jails   func(socket string) []string
	environ []string
}

// complete answers for the last of words, the words after "sysban" up to
// and including the one the cursor is on (empty at a fresh word).
func (cp completer) complete(words []string) completion {
	if len(words) <= 1 {
		var out []candidate
		for _, c := range commands() {
			_, text := splitSummary(c)
			out = append(out, candidate{c.name, text})
		}
		return completion{words: out}
	}
	c, ok := lookup(words[0])
	if !ok {
		return completion{}
	}
	flags := flagSpecs(c)
	cur := words[len(words)-1]
	var (
		seen      = map[string]string{} // flag values given so far
		npos      int                   // positional arguments so far
		onlyArgs  bool                  // after "--": no more flags
		wantValue string                // the flag the next word is the value of
	)
	for _, w := range words[1 : len(words)-1] {
		switch {
		case wantValue != "":
			seen[wantValue], wantValue = w, ""
		case w == "--" && !onlyArgs:
			onlyArgs = true
		case strings.HasPrefix(w, "-") && w != "-" && !onlyArgs && !(flagsFirst[c.name] && npos > 0):
			name, value, hasValue := strings.Cut(w, "=")
			name = "--" + strings.TrimLeft(name, "-")
			if hasValue {
				seen[name] = value
			} else if f, ok := findFlag(flags, name); ok && f.value {
				wantValue = name
			}
		default:
			npos++
		}
	}
	switch {
	case wantValue != "":
		return cp.arg(flagValues[wantValue], seen)
	case strings.HasPrefix(cur, "-") && !onlyArgs && !(flagsFirst[c.name] && npos > 0):
		var out []candidate
		for _, f := range flags {
			out = append(out, candidate{f.name, f.usage})
		}
		return completion{words: out}
	}
	kinds := positionals[c.name]
	if npos >= len(kinds) {
		return completion{}
	}
	return cp.arg(kinds[npos], seen)
}

func findFlag(flags []flagSpec, name string) (flagSpec, bool) {
	for _, f := range flags {
		if f.name == name {
			return f, true
		}
	}
	return flagSpec{}, false
}

// arg answers for an argument of kind k; seen holds the flags given so
// far (--socket for the daemon's jails, --config for test's targets).
func (cp completer) arg(k argKind, seen map[string]string) completion {
	switch k {
	case argJail:
		return completion{words: words(cp.jails(seen["--socket"]))}
	case argCommand:
		return completion{words: words(commandNames())}
	case argShell:
		return completion{words: words(completionShells)}
	case argFleet:
		return completion{words: words([]string{"keygen", "status"})}
	case argTarget:
		return completion{words: words(cp.testTargets(seen["--config"])), files: true}
	case argFile:
		return completion{files: true}
	}
	return completion{}
}

func words(list []string) []candidate {
	out := make([]candidate, len(list))
	for i, w := range list {
		out[i] = candidate{word: w}
	}
	return out
}

// testTargets are the names `sysban test` takes: all, every filter and
// every jail of the configuration (the built-in one, or the one --config
// names). A configuration that does not load gives "all" alone.
func (cp completer) testTargets(configPath string) []string {
	names := []string{"all"}
	cfg, err := config.Load(configPath, cp.environ)
	if err != nil {
		return names
	}
	names = append(names, slices.Collect(maps.Keys(cfg.AllFilters()))...)
	for _, j := range cfg.Jails {
		names = append(names, j.Name)
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// daemonJails asks the daemon at socket for its enabled jails; an
// unreachable daemon (not running, or no permission on its socket) gives
// none.
func daemonJails(socket string) []string {
	c, err := control.Dial(socket)
	if err != nil {
		return nil
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), jailLookupTimeout)
	defer cancel()
	st, err := c.Status(ctx)
	if err != nil {
		return nil
	}
	var out []string
	for _, j := range st.Jails {
		if j.Enabled {
			out = append(out, j.Name)
		}
	}
	return out
}

// writeCandidates prints an answer as the scripts read it: the first line
// "files" or "nofiles", then one candidate a line, its description after
// a tab. A name holding a control character (a jail named so in a
// configuration) is left out rather than split into two candidates.
func writeCandidates(w io.Writer, c completion) {
	if c.files {
		fmt.Fprintln(w, "files")
	} else {
		fmt.Fprintln(w, "nofiles")
	}
	for _, cand := range c.words {
		if strings.ContainsAny(cand.word+cand.desc, "\t\n\r") {
			continue
		}
		if cand.desc == "" {
			fmt.Fprintln(w, cand.word)
		} else {
			fmt.Fprintf(w, "%s\t%s\n", cand.word, cand.desc)
		}
	}
}

// cmdCandidates is `sysban completion candidates [--] WORDS...`.
func cmdCandidates(args []string, stdout io.Writer) int {
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	cp := completer{jails: daemonJails, environ: os.Environ()}
	writeCandidates(stdout, cp.complete(args))
	return 0
}
