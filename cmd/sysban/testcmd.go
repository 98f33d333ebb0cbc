package main

// `sysban test` is sysban's fail2ban-regex: it runs filters over a log file
// the way the daemon would run them over the same lines arriving as syslog,
// and reports what matched. It only wires receiver.ParseFileLine, the config
// and pipeline.Tester together and formats the result.

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unicode/utf8"

	"go.yaml.in/yaml/v3"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/config"
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

// Limits that keep a hostile or huge log from exhausting memory: lines
// longer than maxLineLen are skipped (and counted), and the address report
// lists at most maxAddrs addresses with at most maxAddrTimes times each.
const (
	readBufSize  = 1 << 20
	maxLineLen   = readBufSize
	maxAddrs     = 100000
	maxAddrTimes = 10
)

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
	tst := &tally{opts: opts, label: label, mode: mode, addrs: map[string]*addrHits{}}
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
	var jbuf []byte
	start := c.clock()
	wall := start
	var cpu0 time.Duration
	if c.cpu != nil {
		cpu0 = c.cpu()
	}
	prepare := func(pl *parsedLine) {
		parseLine(pl, wall, defaultProgram)
		tester.Prematch(&pl.msg, &pl.pre)
	}
	rerr := parallelLines(in, testWorkers(), prepare, func(pl *parsedLine) {
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
		matches := tester.TestPrematched(m, &pl.pre)
		v := tst.add(m, matches)
		switch {
		case opts.json:
			jbuf = appendJSONLine(jbuf[:0], tst.lines, m, matches, v)
			out.Write(jbuf)
		case opts.printMatched && (v.kind == lineMatched || v.kind == linePending),
			opts.printMissed && v.kind == lineMissed,
			opts.printIgnore && v.kind == lineIgnored:
			tst.printLine(out, pl.raw, v)
		}
	})
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

// selectFilters resolves the FILTER|JAIL|FILTERFILE|all argument to filter
// specs and the mode to run them in; label describes the choice.
func (c *testCmd) selectFilters(o testOptions) (filters []pipeline.FilterSpec, mode, label string, err error) {
	cfg, err := config.Load(o.configPath, c.environ)
	if err != nil {
		return nil, "", "", err
	}
	specs := pipeline.BuiltinFilters()
	for name, spec := range cfg.Filters {
		spec.Name = name
		specs[name] = spec
	}
	mode = o.mode
	t := o.target
	isPath := strings.ContainsRune(t, '/') || strings.HasSuffix(t, ".yaml") || strings.HasSuffix(t, ".yml")
	switch {
	case t == "all":
		for _, name := range slices.Sorted(maps.Keys(specs)) {
			filters = append(filters, specs[name])
		}
		return filters, mode, "all filters", nil
	case isPath:
		spec, err := loadFilterFile(t)
		if err != nil {
			return nil, "", "", err
		}
		return []pipeline.FilterSpec{spec}, mode, "filter " + spec.Name + " from " + t, nil
	}
	for _, j := range cfg.Jails {
		if j.Name != t {
			continue
		}
		if j.Filter == pipeline.RecidiveFilter {
			return nil, "", "", fmt.Errorf("jail %s counts sysban's own bans (filter %s), not log lines: there is nothing to test on a log", j.Name, j.Filter)
		}
		spec, ok := specs[j.Filter]
		if !ok {
			return nil, "", "", fmt.Errorf("jail %s: no filter named %q", j.Name, j.Filter)
		}
		if mode == "" {
			mode = j.Mode
		}
		return []pipeline.FilterSpec{spec}, mode, "jail " + j.Name + " (filter " + j.Filter + ")", nil
	}
	if spec, ok := specs[t]; ok {
		return []pipeline.FilterSpec{spec}, mode, "filter " + t, nil
	}
	if st, serr := os.Stat(t); serr == nil && st.Mode().IsRegular() {
		spec, err := loadFilterFile(t)
		if err != nil {
			return nil, "", "", err
		}
		return []pipeline.FilterSpec{spec}, mode, "filter " + spec.Name + " from " + t, nil
	}
	names := slices.Sorted(maps.Keys(specs))
	for _, j := range cfg.Jails {
		if _, ok := specs[j.Name]; !ok {
			names = append(names, j.Name)
		}
	}
	slices.Sort(names)
	return nil, "", "", fmt.Errorf("%q is no filter, jail or filter file; known: all, %s", t, strings.Join(names, ", "))
}

// loadFilterFile reads a FILTERFILE: one filter in the config schema, with
// an optional name. It is checked by the config's own strict decoder (as if
// it were filters.NAME in a config file), so the file behaves exactly as the
// same filter would in the config, unknown keys and bad regexes included.
func loadFilterFile(path string) (pipeline.FilterSpec, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return pipeline.FilterSpec{}, fmt.Errorf("filter file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return pipeline.FilterSpec{}, fmt.Errorf("filter file %s: %w", path, err)
	}
	if doc == nil {
		return pipeline.FilterSpec{}, fmt.Errorf("filter file %s: empty: want programs and failregex", path)
	}
	name := defaultFilterName(path)
	if n, ok := doc["name"]; ok {
		s, isStr := n.(string)
		if !isStr || s == "" {
			return pipeline.FilterSpec{}, fmt.Errorf("filter file %s: name: want a string", path)
		}
		name = s
		delete(doc, "name")
	}
	wrapped, err := yaml.Marshal(map[string]any{"filters": map[string]any{name: doc}})
	if err != nil {
		return pipeline.FilterSpec{}, fmt.Errorf("filter file %s: %w", path, err)
	}
	cfg, err := config.Parse(path, wrapped, nil)
	if err != nil {
		return pipeline.FilterSpec{}, fmt.Errorf("filter file: %w", err)
	}
	spec := cfg.Filters[name]
	spec.Name = name
	if _, err := pipeline.CompileFilter(spec); err != nil {
		return pipeline.FilterSpec{}, fmt.Errorf("filter file %s: %w", path, err)
	}
	return spec, nil
}

// defaultFilterName makes a filter name from a file name, within the
// config's rules for names (lower case, [a-z0-9_-], at most 32): dots and
// capitals would otherwise be split and folded by the config loader.
func defaultFilterName(path string) string {
	base := strings.TrimSuffix(strings.TrimSuffix(filepath.Base(path), ".yaml"), ".yml")
	b := []byte(strings.ToLower(base))
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	if len(b) == 0 || b[0] < 'a' || b[0] > 'z' {
		b = append([]byte("f-"), b...)
	}
	return string(b[:min(len(b), 32)])
}

// open opens the log: "-" is standard input, *.gz is decompressed.
func (c *testCmd) open(path string) (io.Reader, func(), error) {
	if path == "-" {
		return c.stdin, func() {}, nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("log file: %w", err)
	}
	if st, err := f.Stat(); err == nil && st.IsDir() {
		f.Close()
		return nil, nil, fmt.Errorf("log file %s: is a directory", path)
	}
	if !strings.HasSuffix(path, ".gz") {
		return f, func() { f.Close() }, nil
	}
	z, err := gzip.NewReader(f)
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("log file %s: %w", path, err)
	}
	return z, func() { z.Close(); f.Close() }, nil
}

var errLineTooLong = errors.New("line too long")

// readLine returns the next line without copying it (valid until the next
// call). A line longer than the reader's buffer is skipped whole and
// reported as errLineTooLong.
func readLine(r *bufio.Reader) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != bufio.ErrBufferFull {
		return line, err
	}
	for err == bufio.ErrBufferFull {
		_, err = r.ReadSlice('\n')
	}
	if err != nil && err != io.EOF {
		return nil, err
	}
	return nil, errLineTooLong
}

// lineKind is what a line turned out to be.
type lineKind uint8

const (
	lineMissed  lineKind = iota
	lineMatched          // a failure (including a completed multi-line one)
	lineIgnored          // a failregex matched but an ignoreregex vetoed it
	linePending          // it opened a multi-line failure
	lineSame             // a failure line of an attempt already counted (counts nothing)
)

func (k lineKind) String() string {
	return [...]string{"missed", "matched", "ignored", "pending", "same attempt"}[k]
}

// verdict is one line's outcome: its kind and the match that decided it.
type verdict struct {
	kind  lineKind
	match *pipeline.Match // nil for missed lines
}

// judge picks the match that tells a line's kind: a failure first, then a
// pending open, then an ignored match.
func judge(matches []pipeline.Match) verdict {
	var v verdict
	for i := range matches {
		mt := &matches[i]
		k := lineIgnored
		switch {
		case !mt.Ignored && !mt.Pending && !mt.Repeat:
			return verdict{lineMatched, mt}
		case mt.Pending && !mt.Ignored:
			k = linePending
		case mt.Repeat && !mt.Ignored:
			k = lineSame
		}
		if v.match == nil || k != lineIgnored && v.kind == lineIgnored {
			v = verdict{k, mt}
		}
	}
	return v
}

// tally accumulates what the report shows.
type tally struct {
	opts  testOptions
	label string
	mode  string

	lines, matched, missed, ignored, pending uint64
	same, failures                           uint64 // same-attempt lines; failures the matched lines count
	noProgram, tooLong                       uint64
	shapes                                   [5]uint64 // by shape index, see countShape

	filters []string // in order
	byName  map[string]*filterTally
	addrs   map[string]*addrHits // host -> its failures
	order   []string             // hosts in order of first failure
	dropped uint64               // failures of hosts beyond maxAddrs

	elapsed, cpu time.Duration
}

// filterTally is one filter's share of the report.
type filterTally struct {
	patterns, ignores []string  // as written, indexed as Match indexes them
	hits, ignHits     []uint64  // lines per pattern / per ignoreregex
	kinds             [5]uint64 // lines by lineKind
}

type addrHits struct {
	count uint64
	times []addrTime // the first maxAddrTimes
}

type addrTime struct {
	t       time.Time
	filter  string
	pattern int
}

var shapeNames = [5]string{
	"syslog file (Mmm dd hh:mm:ss host prog: msg)",
	"ISO 8601 (YYYY-MM-DDThh:mm:ss host prog: msg)",
	"syslog wire (<PRI>...)",
	"daemon's own time stamp (whole line is the message)",
	"no header (whole line is the message)",
}

func (t *tally) init(tester *pipeline.Tester) {
	t.filters = tester.Filters()
	t.byName = make(map[string]*filterTally, len(t.filters))
	for _, f := range t.filters {
		ft := &filterTally{patterns: tester.Patterns(f), ignores: tester.IgnorePatterns(f)}
		ft.hits = make([]uint64, len(ft.patterns))
		ft.ignHits = make([]uint64, len(ft.ignores))
		t.byName[f] = ft
	}
}

// countShape classifies the line's header from ParseFileLine's result.
func (t *tally) countShape(line []byte, err error) {
	i := 4
	switch {
	case len(line) > 0 && line[0] == '<' && !errors.Is(err, receiver.ErrNoHeader):
		i = 2
	case err == nil && len(line) > 0 && line[0] >= '0' && line[0] <= '9':
		i = 1
	case err == nil:
		i = 0
	}
	t.shapes[i]++
}

// add counts one line's matches and returns its verdict.
func (t *tally) add(m *sysban.Message, matches []pipeline.Match) verdict {
	v := judge(matches)
	switch v.kind {
	case lineMatched:
		t.matched++
		t.failures += uint64(max(v.match.Count, 1))
	case lineSame:
		t.same++
	case lineIgnored:
		t.ignored++
	case linePending:
		t.pending++
	default:
		t.missed++
	}
	for i := range matches {
		mt := &matches[i]
		ft := t.byName[mt.Filter]
		if ft == nil {
			continue // not a filter we were given; cannot happen
		}
		k := judge(matches[i : i+1]).kind
		ft.kinds[k]++
		// A pattern's hits are the lines it made failures (or opened):
		// lines an ignoreregex vetoed are counted under that ignoreregex,
		// so the hits add up to the matched and pending counts.
		if !mt.Ignored && mt.Pattern >= 0 && mt.Pattern < len(ft.hits) {
			ft.hits[mt.Pattern]++
		}
		if mt.Ignored {
			if mt.IgnoreIndex >= 0 && mt.IgnoreIndex < len(ft.ignHits) {
				ft.ignHits[mt.IgnoreIndex]++
			}
			continue
		}
		if mt.Pending || mt.Repeat || mt.Host == "" {
			continue
		}
		a := t.addrs[mt.Host]
		if a == nil {
			if len(t.addrs) >= maxAddrs {
				t.dropped++
				continue
			}
			a = &addrHits{}
			t.addrs[mt.Host] = a
			t.order = append(t.order, mt.Host)
		}
		a.count++
		if len(a.times) < maxAddrTimes {
			a.times = append(a.times, addrTime{m.Timestamp, mt.Filter, mt.Pattern})
		}
	}
	return v
}

// printLine prints one line for --print-all-*: its number, verdict, the
// filter and pattern that decided it, the host, then the line as read.
func (t *tally) printLine(w *bufio.Writer, line []byte, v verdict) {
	line = bytes.TrimRight(line, "\r\n")
	fmt.Fprintf(w, "%-7s line %d", v.kind, t.lines)
	if v.match != nil {
		fmt.Fprintf(w, " %s #%d", v.match.Filter, v.match.Pattern+1)
		if v.kind == lineMatched {
			fmt.Fprintf(w, " host %s", v.match.Host)
		}
		if v.kind == lineIgnored {
			fmt.Fprintf(w, " ignoreregex #%d", v.match.IgnoreIndex+1)
		}
	}
	w.WriteString(" | ")
	w.Write(line)
	w.WriteByte('\n')
}

const stampLayout = "2006-01-02 15:04:05 -0700"

func (t *tally) writeReport(w *bufio.Writer) {
	mode := t.mode
	if mode == "" {
		mode = "normal"
	}
	fmt.Fprintf(w, "\nsysban test: %s, mode %s, log %s\n", t.label, mode, t.opts.logPath)

	fmt.Fprintf(w, "\nPatterns (#, hits, pattern):\n")
	single := len(t.filters) == 1
	for _, f := range t.filters {
		var total uint64
		ft := t.byName[f]
		for _, h := range ft.hits {
			total += h
		}
		if !single && total == 0 {
			continue
		}
		k := ft.kinds
		fmt.Fprintf(w, "  %s: %d matched, %d ignored, %d pending", f, k[lineMatched], k[lineIgnored], k[linePending])
		if k[lineSame] > 0 {
			fmt.Fprintf(w, ", %d same attempt", k[lineSame])
		}
		w.WriteByte('\n')
		for i, p := range ft.patterns {
			if ft.hits[i] == 0 && !single {
				continue
			}
			fmt.Fprintf(w, "    %3d) %8d  %s\n", i+1, ft.hits[i], p)
		}
		for i, p := range ft.ignores {
			if ft.ignHits[i] == 0 && !single {
				continue
			}
			fmt.Fprintf(w, "    ignoreregex %d) %8d  %s\n", i+1, ft.ignHits[i], p)
		}
	}
	if !single && t.matched+t.ignored+t.pending == 0 {
		fmt.Fprintf(w, "  (no pattern of %d filters matched)\n", len(t.filters))
	}

	fmt.Fprintf(w, "\nAddresses found: %d\n", len(t.addrs))
	for _, host := range t.order {
		a := t.addrs[host]
		fmt.Fprintf(w, "  %s  %d failure(s)\n", host, a.count)
		for _, at := range a.times {
			when := "(no time)"
			if !at.t.IsZero() {
				when = at.t.Format(stampLayout)
			}
			fmt.Fprintf(w, "      %s  %s #%d\n", when, at.filter, at.pattern+1)
		}
		if a.count > uint64(len(a.times)) {
			fmt.Fprintf(w, "      ... %d more\n", a.count-uint64(len(a.times)))
		}
	}
	if t.dropped > 0 {
		fmt.Fprintf(w, "  ... and %d failures of further addresses (only the first %d addresses are listed)\n", t.dropped, maxAddrs)
	}

	fmt.Fprintf(w, "\nLine headers:\n")
	for i, n := range t.shapes {
		if n > 0 {
			fmt.Fprintf(w, "  %8d  %s\n", n, shapeNames[i])
		}
	}
	if t.noProgram > 0 {
		p := t.opts.program
		switch {
		case p != "":
			fmt.Fprintf(w, "  %8d  without a program: read as %s (--program)\n", t.noProgram, p)
		case len(t.filters) == 1:
			fmt.Fprintf(w, "  %8d  without a program: read as the filter's first program\n", t.noProgram)
		default:
			fmt.Fprintf(w, "  %8d  without a program: no filter reads them (use --program)\n", t.noProgram)
		}
	}

	fmt.Fprintf(w, "\nLines: %d read, %d matched, %d ignored, %d pending, %d missed", t.lines, t.matched, t.ignored, t.pending, t.missed)
	if t.tooLong > 0 {
		fmt.Fprintf(w, ", %d skipped (longer than %d bytes)", t.tooLong, maxLineLen)
	}
	w.WriteByte('\n')
	if t.same > 0 || t.failures != t.matched {
		// Attempt accounting (issue 15): lines of an attempt already
		// counted count nothing, an end line may count several.
		fmt.Fprintf(w, "Attempts: %d failures counted; %d more failure lines were of attempts already counted\n", t.failures, t.same)
	}
	if t.missed > 0 && !t.opts.printMissed {
		fmt.Fprintf(w, "Missed lines are not shown: --print-all-missed prints them.\n")
	}
	fmt.Fprintf(w, "Time: %s, %s\n", t.elapsed.Round(time.Microsecond), t.rate())
}

// rate is lines per second of wall time and, when known, per second of
// CPU time.
func (t *tally) rate() string {
	if t.elapsed <= 0 {
		return "- lines/s"
	}
	s := strconv.FormatFloat(float64(t.lines)/t.elapsed.Seconds(), 'f', 0, 64) + " lines/s"
	if t.cpu > 0 {
		s += fmt.Sprintf(" (CPU %s, %.0f lines per CPU second)", t.cpu.Round(time.Microsecond), float64(t.lines)/t.cpu.Seconds())
	}
	return s
}

// processCPU is the CPU time the process has used (user and system).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// writeShort is the summary of --json mode, for stderr.
func (t *tally) writeShort(w io.Writer) {
	fmt.Fprintf(w, "sysban test: %d lines, %d matched, %d ignored, %d pending, %d missed, %d skipped; %s, %s\n",
		t.lines, t.matched, t.ignored, t.pending, t.missed, t.tooLong, t.elapsed.Round(time.Microsecond), t.rate())
}

// appendJSONLine appends the --json object of one line. It is written by
// hand rather than with encoding/json to avoid reflection and allocations
// per line; the test decodes it with encoding/json.
func appendJSONLine(b []byte, n uint64, m *sysban.Message, matches []pipeline.Match, v verdict) []byte {
	b = append(b, `{"line":`...)
	b = strconv.AppendUint(b, n, 10)
	b = append(b, `,"matched":`...)
	b = strconv.AppendBool(b, v.kind == lineMatched)
	b = append(b, `,"host":`...)
	if (v.kind == lineMatched || v.kind == lineSame) && v.match.Host != "" {
		b = appendJSONString(b, v.match.Host)
	} else {
		b = append(b, "null"...)
	}
	b = append(b, `,"filter":`...)
	if v.match != nil {
		b = appendJSONString(b, v.match.Filter)
		b = append(b, `,"pattern":`...)
		b = strconv.AppendInt(b, int64(v.match.Pattern), 10)
		b = append(b, `,"regex":`...)
		b = appendJSONString(b, v.match.Regex)
	} else {
		b = append(b, `null,"pattern":null,"regex":null`...)
	}
	b = append(b, `,"ignored":`...)
	b = strconv.AppendBool(b, v.kind == lineIgnored)
	b = append(b, `,"pending":`...)
	b = strconv.AppendBool(b, v.kind == linePending)
	b = append(b, `,"correlated":`...)
	b = strconv.AppendBool(b, v.kind == lineMatched && v.match.Correlated)
	b = append(b, `,"same_attempt":`...)
	b = strconv.AppendBool(b, v.kind == lineSame)
	b = append(b, `,"failures":`...)
	failures := 0
	if v.kind == lineMatched {
		failures = max(v.match.Count, 1)
	}
	b = strconv.AppendInt(b, int64(failures), 10)
	b = append(b, `,"timestamp":`...)
	if m.Timestamp.IsZero() {
		b = append(b, "null"...)
	} else {
		b = append(b, '"')
		b = m.Timestamp.AppendFormat(b, time.RFC3339Nano)
		b = append(b, '"')
	}
	b = appendJSONField(b, "hostname", m.Hostname)
	b = appendJSONField(b, "app", m.AppName)
	b = appendJSONField(b, "procid", m.ProcID)
	b = appendJSONField(b, "msgid", m.MsgID)
	b = append(b, `,"message":`...)
	b = appendJSONString(b, m.Text)
	if len(matches) > 1 {
		// Several filters read this program and matched: list them all.
		b = append(b, `,"matches":[`...)
		for i := range matches {
			mt := &matches[i]
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"filter":`...)
			b = appendJSONString(b, mt.Filter)
			b = append(b, `,"pattern":`...)
			b = strconv.AppendInt(b, int64(mt.Pattern), 10)
			b = append(b, `,"host":`...)
			if mt.Host != "" {
				b = appendJSONString(b, mt.Host)
			} else {
				b = append(b, "null"...)
			}
			b = append(b, `,"ignored":`...)
			b = strconv.AppendBool(b, mt.Ignored)
			b = append(b, `,"pending":`...)
			b = strconv.AppendBool(b, mt.Pending)
			b = append(b, `,"correlated":`...)
			b = strconv.AppendBool(b, mt.Correlated)
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	return append(b, "}\n"...)
}

// appendJSONField appends ,"key":value with null for an empty value.
func appendJSONField(b []byte, key, value string) []byte {
	b = append(b, ',', '"')
	b = append(b, key...)
	b = append(b, '"', ':')
	if value == "" {
		return append(b, "null"...)
	}
	return appendJSONString(b, value)
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD
// (as encoding/json does); control bytes, quotes and backslashes are
// escaped. Unlike encoding/json it leaves <, > and & alone: the regexes in
// the output hold <HOST>, and people read this output.
func appendJSONString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		// U+2028 and U+2029 are valid JSON but break JavaScript parsers.
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
