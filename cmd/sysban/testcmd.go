package main

// `sysban test` is sysban's fail2ban-regex: it runs filters over a log file
// the way the daemon would run them over the same lines arriving as syslog,
// and reports what matched. It only wires receiver.ParseFileLine, the config
// and pipeline.Tester together and formats the result:
//
//   - testcmd.go: the flags and the run loop;
//   - testtarget.go: which filters FILTER|JAIL|FILTERFILE|all means;
//   - testread.go: opening the log, cutting it into lines, parsing and
//     pre-matching them on the spare cores, in order;
//   - testreport.go: each line's verdict, the tally and the report;
//   - testjson.go: the --json object of a line (lineRecord).

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
)

const testUsage = `usage: sysban test [flags] FILTER|JAIL|FILTERFILE|all LOGFILE|-

Runs filters over a log file as the daemon runs them over syslog and reports
hits per pattern, the addresses found and the lines matched, missed, ignored
and pending (first line of a multi-line failure).

  FILTER      a built-in filter or one from the config's filters
  JAIL        a jail of the config: its filter, in its mode
  FILTERFILE  a YAML file (a path with '/' or ending in .yaml/.yml) holding
              one filter in the config schema: programs, failregex,
              ignoreregex, vars, and an optional name (default: the file name)
  all         every filter, each reading only its programs, as the daemon routes
  LOGFILE     a log file (.gz is read compressed), or - for standard input:
              syslog file lines (Mmm dd hh:mm:ss host prog[pid]: msg), ISO
              times, <PRI> wire lines, or bare messages (with --program)

flags:
`

// testOptions are the flags and arguments of `sysban test`.
type testOptions struct {
	json                                   bool
	printMissed, printMatched, printIgnore bool
	program, mode, configPath              string
	target, logPath                        string
}

// testCmd runs `sysban test`; its fields are what a test replaces.
type testCmd struct {
	stdin          io.Reader
	stdout, stderr io.Writer
	environ        []string
	clock          func() time.Time // wall clock: elapsed time and the year of BSD stamps
	// cpu reports the process's CPU time; nil leaves it out of the report.
	// Both are shown because on a busy host the wall clock mostly measures
	// the other processes.
	cpu func() time.Duration
	// poisonBatches overwrites each batch of lines once it is done
	// with, so that a test sees any string kept past its line's batch
	// (testread.go).
	poisonBatches bool
}

func cmdTest(args []string, stdout, stderr io.Writer) int {
	c := &testCmd{stdin: os.Stdin, stdout: stdout, stderr: stderr, environ: os.Environ(), clock: time.Now, cpu: processCPU}
	return c.run(args)
}

func (c *testCmd) run(args []string) int {
	opts, code := c.parseFlags(args)
	if code >= 0 {
		return code
	}
	filters, mode, label, err := c.selectFilters(opts)
	if err != nil {
		fmt.Fprintf(c.stderr, "sysban test: %v\n", err)
		return 2
	}
	tst := &tally{opts: opts, label: label, mode: mode, addrs: map[string]int32{}}
	cur := c.clock()
	tester, err := pipeline.NewTester(filters, pipeline.TesterOptions{
		// Correlation windows follow the log's own times, not the wall
		// clock: a file of last month's lines correlates as it did then.
		Now:  func() time.Time { return cur },
		Mode: mode,
	})
	if err != nil {
		fmt.Fprintf(c.stderr, "sysban test: %v\n", err)
		return 2
	}
	tst.init(tester)
	// A lone filter reads lines without a program as its own, so a daemon's
	// own log file (openvpn.log) can be tested without --program.
	defaultProgram := opts.program
	if defaultProgram == "" && len(filters) == 1 && len(filters[0].Programs) > 0 {
		defaultProgram = filters[0].Programs[0]
	}

	in, closeIn, err := c.open(opts.logPath)
	if err != nil {
		fmt.Fprintf(c.stderr, "sysban test: %v\n", err)
		return 2
	}
	defer closeIn()

	out := bufio.NewWriterSize(c.stdout, 64<<10)
	defer out.Flush()
	var rw recordWriter
	start := c.clock()
	wall := start
	var cpu0 time.Duration
	if c.cpu != nil {
		cpu0 = c.cpu()
	}
	newPrepare := func() func(*parsedLine) {
		var p receiver.FileParser // one per worker: it caches
		return func(pl *parsedLine) {
			parseLine(&p, pl, wall, defaultProgram)
			tester.Prematch(&pl.msg, &pl.pre)
		}
	}
	var matches []pipeline.Match // one line's, reused for the next
	rerr := parallelLines(in, testWorkers(), newPrepare, func(pl *parsedLine) {
		tst.lines++
		if pl.tooLong {
			tst.tooLong++
			return
		}
		m := &pl.msg
		tst.countShape(pl.raw, pl.err)
		if !m.Timestamp.IsZero() {
			cur = m.Timestamp
		}
		if pl.noProgram {
			tst.noProgram++
		}
		matches = tester.AppendPrematched(matches[:0], m, &pl.pre)
		v := tst.add(m, matches)
		switch {
		case opts.json:
			out.Write(rw.line(tst.lines, m, matches, v))
		case opts.printMatched && (v.kind == lineMatched || v.kind == linePending),
			opts.printMissed && v.kind == lineMissed,
			opts.printIgnore && v.kind == lineIgnored:
			tst.printLine(out, pl.raw, v)
		}
		clear(matches) // its strings are the line's (testread.go)
	}, c.poisonBatches)
	if rerr != nil {
		fmt.Fprintf(c.stderr, "sysban test: read %s: %v\n", opts.logPath, rerr)
		return 2
	}
	tst.elapsed = c.clock().Sub(start)
	if c.cpu != nil {
		tst.cpu = c.cpu() - cpu0
	}
	if opts.json {
		tst.writeShort(c.stderr)
		return 0
	}
	tst.writeReport(out)
	return 0
}

// parseFlags returns the options, or an exit code >= 0 when the command
// must stop (2 for bad usage, 0 for -h).
func (c *testCmd) parseFlags(args []string) (testOptions, int) {
	var o testOptions
	fs := flag.NewFlagSet("test", flag.ContinueOnError)
	fs.SetOutput(c.stderr)
	fs.Usage = func() {
		fmt.Fprint(c.stderr, testUsage)
		fs.PrintDefaults()
	}
	fs.BoolVar(&o.json, "json", false, "print one JSON object per input line on stdout (summary on stderr)")
	fs.BoolVar(&o.printMissed, "print-all-missed", false, "print every line no filter matched")
	fs.BoolVar(&o.printMatched, "print-all-matched", false, "print every line that is a failure, and every first line of a multi-line one (pending)")
	fs.BoolVar(&o.printIgnore, "print-all-ignored", false, "print every line an ignoreregex vetoed")
	fs.StringVar(&o.program, "program", "", "program for lines that name none (bare messages, daemons' own log files)")
	fs.StringVar(&o.mode, "mode", "", "filter mode (normal, ddos, aggressive...); default: the jail's, else normal")
	fs.StringVar(&o.configPath, "config", "", "config file layered over the built-in one (for its filters and jails)")
	// Flags may follow the arguments (sysban test sshd auth.log --json),
	// which package flag alone does not allow.
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			if errors.Is(err, flag.ErrHelp) {
				return o, 0
			}
			return o, 2
		}
		if fs.NArg() == 0 {
			break
		}
		pos = append(pos, fs.Arg(0))
		args = fs.Args()[1:]
	}
	if len(pos) != 2 {
		fmt.Fprintf(c.stderr, "sysban test: want FILTER|JAIL|FILTERFILE|all and LOGFILE|-, got %d arguments\n\n", len(pos))
		fs.Usage()
		return o, 2
	}
	o.target, o.logPath = pos[0], pos[1]
	return o, -1
}

// processCPU is the CPU time the process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
