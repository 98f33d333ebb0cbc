package main

import (
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/sysban/sysban/migrate/fail2ban"
)

// cmdImportFail2ban translates a fail2ban configuration directory; the
// work is in package migrate/fail2ban. The YAML goes to --out or stdout,
// the report to stdout with --out, else to stderr.
func cmdImportFail2ban(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("import-fail2ban", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("out", "", "write the sysban YAML to this file (default: stdout)")
	asJSON := fs.Bool("json", false, "write the report as JSON")
	check := fs.Bool("check", false, "exit 1 if anything could not be carried")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	dir := "/etc/fail2ban"
	switch fs.NArg() {
	case 0:
	case 1:
		dir = fs.Arg(0)
	default:
		fmt.Fprintf(stderr, "sysban import-fail2ban: want at most one directory, got %d arguments\n", fs.NArg())
		return 2
	}
	res, err := fail2ban.Import(os.DirFS(dir), dir)
	if err != nil {
		fmt.Fprintf(stderr, "sysban import-fail2ban: %v\n", err)
		return 1
	}
	reportTo := stderr
	if *out != "" {
		if err := os.WriteFile(*out, res.YAML, 0o644); err != nil {
			fmt.Fprintf(stderr, "sysban import-fail2ban: %v\n", err)
			return 1
		}
		reportTo = stdout
	} else if _, err := stdout.Write(res.YAML); err != nil {
		return 1
	}
	write := res.Report.WriteText
	if *asJSON {
		write = res.Report.WriteJSON
	}
	if err := write(reportTo); err != nil {
		return 1
	}
	if *check && !res.Report.Complete() {
		return 1
	}
	return 0
}
