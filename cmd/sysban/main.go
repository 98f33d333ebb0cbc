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
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = ""

const usage = `usage: sysban <command> [flags]

commands:
  run [--config FILE]     run the daemon (no --config: the built-in configs/sysban.yaml)
  check [--config FILE]   validate the configuration and print the jails it enables
  version                 print the version
`

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command and returns the process exit code: 0 ok, 1 the
// command failed, 2 bad usage or configuration.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "run", "check":
		fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
		fs.SetOutput(stderr)
		configPath := fs.String("config", "", "config file layered over the built-in one (conf.d/*.yaml beside it are read too)")
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() > 0 {
			fmt.Fprintf(stderr, "sysban %s: unexpected argument %q\n", cmd, fs.Arg(0))
			return 2
		}
		m := &Main{ConfigPath: *configPath, Stdout: stdout, Stderr: stderr, Environ: os.Environ()}
		if cmd == "check" {
			return m.Check()
		}
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		err := m.Run(ctx)
		var cerr *configError
		switch {
		case err == nil:
			return 0
		case errors.As(err, &cerr):
			fmt.Fprintf(stderr, "sysban: %v\n", err)
			return 2
		default:
			fmt.Fprintf(stderr, "sysban: %v\n", err)
			return 1
		}
	case "version", "--version", "-v":
		fmt.Fprintf(stdout, "sysban %s\n", Version())
		return 0
	case "help", "--help", "-h":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "sysban: unknown command %q\n\n%s", cmd, usage)
		return 2
	}
}

// Version is the build's version: the -X value, else the module version or
// VCS revision the toolchain recorded, else "devel".
func Version() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v := bi.Main.Version; v != "" && v != "(devel)" {
			return v
		}
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "devel-" + s.Value[:12]
			}
		}
	}
	return "devel"
}
