package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
)

// What `sysban test` counts and how it reports it: each line's verdict
// (judge), the tally per filter, pattern and address, and the report at
// the end (or the one-line summary of --json).

// The address report lists at most maxAddrs addresses with at most
// maxAddrTimes times each, however large the log.
const (
	maxAddrs     = 100000
	maxAddrTimes = 10
)

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
	// Addresses are values in slices, not an object each: the tally is
	// most of what `sysban test` keeps, and the garbage collector marks
	// a few large slices faster than many small objects.
	addrs   map[string]int32 // host -> index into hosts
	hosts   []addrHits       // in order of first failure
	times   []addrTime       // every host's first times, chained by next
	dropped uint64           // failures of hosts beyond maxAddrs
	// zones and filterIndex are what addrTime refers to by index, so
	// that times, the largest part, holds no pointer to mark.
	zones       []*time.Location
	filterIndex map[string]int32 // name -> index into filters

	elapsed, cpu time.Duration
}

// filterTally is one filter's share of the report.
type filterTally struct {
	patterns, ignores []string  // as written, indexed as Match indexes them
	hits, ignHits     []uint64  // lines per pattern / per ignoreregex
	kinds             [5]uint64 // lines by lineKind
}

type addrHits struct {
	host  string
	count uint64
	// The first maxAddrTimes failures: first and last index t.times,
	// n is how many.
	first, last int32
	n           int32
}

// addrTime is a failure's time (Unix seconds and nanoseconds, and its
// zone as an index into tally.zones), filter (into tally.filters) and
// pattern.
type addrTime struct {
	sec     int64
	nsec    int32
	zone    int32
	filter  int32
	pattern int32
	next    int32 // the host's next time in t.times; -1 for none
	zero    bool  // the line had no time
}

// at is the time stored by newAddrTime.
func (t *tally) at(a *addrTime) time.Time {
	if a.zero {
		return time.Time{}
	}
	return time.Unix(a.sec, int64(a.nsec)).In(t.zones[a.zone])
}

// newAddrTime stores ts (with its zone), filter and pattern.
func (t *tally) newAddrTime(ts time.Time, filter string, pattern int) addrTime {
	a := addrTime{filter: t.filterIndex[filter], pattern: int32(pattern), next: -1}
	if ts.IsZero() {
		a.zero = true
		return a
	}
	a.sec, a.nsec = ts.Unix(), int32(ts.Nanosecond())
	loc := ts.Location()
	// Lines carry a handful of zones at most (usually one); the last
	// one added is the likeliest.
	a.zone = -1
	for i := len(t.zones) - 1; i >= 0; i-- {
		if t.zones[i] == loc {
			a.zone = int32(i)
			break
		}
	}
	if a.zone < 0 {
		a.zone = int32(len(t.zones))
		t.zones = append(t.zones, loc)
	}
	return a
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
	t.filterIndex = make(map[string]int32, len(t.filters))
	for i, f := range t.filters {
		t.filterIndex[f] = int32(i)
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
		i, ok := t.addrs[mt.Host]
		if !ok {
			if len(t.addrs) >= maxAddrs {
				t.dropped++
				continue
			}
			// A copy: mt.Host is a view of the line's batch (testread.go).
			host := strings.Clone(mt.Host)
			i = int32(len(t.hosts))
			t.addrs[host] = i
			t.hosts = append(t.hosts, addrHits{host: host, first: -1, last: -1})
		}
		a := &t.hosts[i]
		a.count++
		if a.n < maxAddrTimes {
			k := int32(len(t.times))
			t.times = append(t.times, t.newAddrTime(m.Timestamp, mt.Filter, mt.Pattern))
			if a.last >= 0 {
				t.times[a.last].next = k
			} else {
				a.first = k
			}
			a.last = k
			a.n++
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
	for _, a := range t.hosts {
		fmt.Fprintf(w, "  %s  %d failure(s)\n", a.host, a.count)
		for k := a.first; k >= 0; k = t.times[k].next {
			at := &t.times[k]
			when := "(no time)"
			if ts := t.at(at); !ts.IsZero() {
				when = ts.Format(stampLayout)
			}
			fmt.Fprintf(w, "      %s  %s #%d\n", when, t.filters[at.filter], at.pattern+1)
		}
		if a.count > uint64(a.n) {
			fmt.Fprintf(w, "      ... %d more\n", a.count-uint64(a.n))
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

// writeShort is the summary of --json mode, for stderr.
func (t *tally) writeShort(w io.Writer) {
	fmt.Fprintf(w, "sysban test: %d lines, %d matched, %d ignored, %d pending, %d missed, %d skipped; %s, %s\n",
		t.lines, t.matched, t.ignored, t.pending, t.missed, t.tooLong, t.elapsed.Round(time.Microsecond), t.rate())
}
