// Command sysban is the sysban daemon and its command-line tool: it receives
// syslog, matches authentication failures per jail and bans offenders in
// nftables. This package only parses flags and wires the stages together.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
)

// command is one verb of the sysban binary. It returns the exit code:
// 0 ok, 1 the command failed, 2 bad usage or configuration.
type command struct {
	name    string
	summary string // one line for the usage text: the synopsis, two spaces or more, what it does
	run     func(args []string, stdout, stderr io.Writer) int
}

// commands is the explicit registry of verbs, in usage order.
func commands() []command {
	return []command{
		{"run", "run [--config FILE]     run the daemon (no --config: the built-in configs/sysban.yaml; --observe: decide bans, enforce none)", cmdRun},
		{"check", "check [--config FILE]   validate the configuration and print the jails it enables", cmdCheck},
		{"status", "status [JAIL] [--all]   show the enabled jails (--all: every one), counters and listeners, or one jail and its bans", cmdStatus},
		{"ban", "ban JAIL ADDR [--for D]  ban an address or prefix by hand (D: 10m, 1h, 1d, -1 = permanent)", cmdBan},
		{"unban", "unban ADDR [--jail J]   lift the bans covering an address or prefix (unban --all: every ban)", cmdUnban},
		{"banned", "banned [ADDR]           list bans: which jails ban ADDR (or a prefix around it), until when and why", cmdBanned},
		{"fleet", "fleet status|keygen F    the fleet: servers, connection, lag, bans per node and scope, outbox, held, stream leader, watch server; keygen: a node's nkey seed to F", cmdFleet},
		{"reload", "reload                  re-read the configuration; a bad one is refused and the old one kept", cmdReload},
		{"test", "test FILTER|all LOGFILE  run filters over a log file, like fail2ban-regex (test -h: more)", cmdTest},
		{"import-fail2ban", "import-fail2ban [DIR]   translate /etc/fail2ban (or DIR) to sysban YAML with a migration report (--out, --json, --check)", cmdImportFail2ban},
		{"version", "version                 print the version, commit and build date", cmdVersion},
		{"help", "help [COMMAND]          this list, or one command's flags and arguments", cmdHelp},
		{"completion", "completion bash|zsh|fish  print a shell completion script (help completion: how to install it)", cmdCompletion},
	}
}

func usage() string {
	var b strings.Builder
	b.WriteString("usage: sysban <command> [flags]\n\ncommands:\n")
	width := 0
	for _, c := range commands() {
		synopsis, _ := splitSummary(c)
		width = max(width, len(synopsis))
	}
	for _, c := range commands() {
		synopsis, text := splitSummary(c)
		fmt.Fprintf(&b, "  %-*s  %s\n", width, synopsis, text)
	}
	return b.String()
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage())
		return 2
	}
	name, args := args[0], args[1:]
	switch name {
	case "--version", "-v":
		name = "version"
	case "--help", "-h":
		name = "help"
	}
	for _, c := range commands() {
		if c.name == name {
			return c.run(args, stdout, stderr)
		}
	}
	fmt.Fprintf(stderr, "sysban: unknown command %q\n\n%s", name, usage())
	return 2
}

// configFlags parses the flags of run and check.
func configFlags(name string, args []string, stdout, stderr io.Writer) (*Main, bool) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		if name == "run" {
			fmt.Fprintf(fs.Output(), "usage: sysban %s [--config FILE] [--observe]\n", name)
		} else {
			fmt.Fprintf(fs.Output(), "usage: sysban %s [--config FILE]\n", name)
		}
		fs.PrintDefaults()
	}
	configPath := fs.String("config", "", "config file layered over the built-in one (conf.d/*.yaml beside it are read too)")
	var observe *bool
	if name == "run" {
		observe = fs.Bool("observe", false, "observe mode for every jail: decide and record bans, never touch the firewall")
	}
	if err := fs.Parse(args); err != nil {
		return nil, false
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "sysban %s: unexpected argument %q\n", name, fs.Arg(0))
		return nil, false
	}
	m := &Main{ConfigPath: *configPath, Stdout: stdout, Stderr: stderr, Environ: os.Environ()}
	if observe != nil {
		m.ObserveAll = *observe
	}
	return m, true
}

func cmdRun(args []string, stdout, stderr io.Writer) int {
	// Nothing in the daemon reads heap profiles (nats-server links the
	// profiler; sysban never opens its port), and the sampling costs the
	// runtime's bucket table and a stack walk every 512 KiB allocated, which
	// maps the binary's function tables back in at idle.
	runtime.MemProfileRate = 0
	m, ok := configFlags("run", args, stdout, stderr)
	if !ok {
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	err := m.Run(ctx)
	if err == nil {
		return 0
	}
	fmt.Fprintf(stderr, "sysban: %v\n", err)
	var cerr *configError
	if errors.As(err, &cerr) {
		return 2
	}
	return 1
}

func cmdCheck(args []string, stdout, stderr io.Writer) int {
	m, ok := configFlags("check", args, stdout, stderr)
	if !ok {
		return 2
	}
	return m.Check()
}
