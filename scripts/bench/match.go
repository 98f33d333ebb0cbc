package main

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// logStart is the generated log's first time stamp: fixed, so the file is
// byte-for-byte the same in every run with the same seed.
var logStart = time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)

// sectionGen writes the mixed log the matching section reads.
func (b *bench) sectionGen() error {
	b.logPath = filepath.Join(b.dir, "mixed.log")
	f, err := os.Create(b.logPath)
	if err != nil {
		return fmt.Errorf("gen: %w", err)
	}
	t0 := time.Now()
	c, err := WriteLog(f, NewGenerator(b.opts.seed, b.opts.attackers), b.opts.lines, logStart)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("gen: %w", cerr)
	}
	if err != nil {
		return err
	}
	el := time.Since(t0)
	b.counts = c
	st, _ := os.Stat(b.logPath)
	b.add(result{section: "gen", name: "mixed log written", target: "-",
		value: fmt.Sprintf("%s lines", si(float64(c.Lines))),
		ratio: fmt.Sprintf("%.1f MB, %s", float64(st.Size())/1e6, el.Round(time.Millisecond)), status: "INFO"})
	b.add(result{section: "gen", name: "failures / two-line opens in it", target: "-",
		value: fmt.Sprintf("%d / %d", c.Failures, c.Pending),
		ratio: fmt.Sprintf("%.1f%% failures", 100*float64(c.Failures)/float64(c.Lines)), status: "INFO"})
	return nil
}

var (
	linesRE = regexp.MustCompile(`Lines: (\d+) read, (\d+) matched, (\d+) ignored, (\d+) pending, (\d+) missed`)
	sameRE  = regexp.MustCompile(`Attempts: \d+ failures counted; (\d+) more failure lines`)
	timeRE  = regexp.MustCompile(`Time: \S+, (\d+) lines/s \(CPU \S+, (\d+) lines per CPU second\)`)
)

// sectionMatch times `sysban test all` over the log and checks that it
// found exactly the failures the generator wrote. It runs three times and
// reports the median: the first run after gen often reads the 136 MB log
// back from disk (this machine's page cache is reclaimed within seconds),
// which is I/O, not matching; all three rates are printed.
func (b *bench) sectionMatch(ctx context.Context) error {
	type run struct {
		read, matched, same, pending int
		inner, perCPU                float64
		wall                         time.Duration
	}
	var runs []run
	for range 3 {
		var out, errb bytes.Buffer
		cmd := exec.CommandContext(ctx, b.bin, "test", "all", b.logPath)
		cmd.Stdout, cmd.Stderr = &out, &errb
		t0 := time.Now()
		err := cmd.Run()
		wall := time.Since(t0)
		if err != nil {
			return fmt.Errorf("match: sysban test all: %v: %s", err, errb.Bytes())
		}
		m := linesRE.FindSubmatch(out.Bytes())
		if m == nil {
			return fmt.Errorf("match: no Lines: summary in sysban test output")
		}
		n := func(i int) int { v, _ := strconv.Atoi(string(m[i])); return v }
		r := run{read: n(1), matched: n(2), pending: n(4), wall: wall}
		if s := sameRE.FindSubmatch(out.Bytes()); s != nil {
			r.same, _ = strconv.Atoi(string(s[1]))
		}
		if t := timeRE.FindSubmatch(out.Bytes()); t != nil {
			r.inner, _ = strconv.ParseFloat(string(t[1]), 64)
			r.perCPU, _ = strconv.ParseFloat(string(t[2]), 64)
		}
		runs = append(runs, r)
	}
	all := make([]string, len(runs))
	for i, r := range runs {
		all[i] = si(r.inner)
	}
	slices.SortStableFunc(runs, func(x, y run) int { return cmp.Compare(x.inner, y.inner) })
	med := runs[len(runs)/2]
	read, matched, same, pending, inner, perCPU, wall := med.read, med.matched, med.same, med.pending, med.inner, med.perCPU, med.wall
	// Issue 9: more patterns must not cost the throughput, and the figure
	// must reach 1.5M lines/s on the two-core machine.
	const target = 1.5e6
	// The figure is sysban's own (read, parse, route, match; without
	// process start and the report); the whole command is shown beside it.
	b.add(result{section: "match", name: "sysban test all, lines/s (own timer, median of 3)", target: "≥ 1.50M",
		value: si(inner), ratio: fmt.Sprintf("%.2f× target; runs %s", inner/target, strings.Join(all, " ")), status: passIf(inner >= target)})
	b.add(result{section: "match", name: "  same, per CPU second / whole command", target: "-",
		value: si(perCPU), ratio: fmt.Sprintf("whole cmd %s/s", si(rate(float64(read), wall))), status: "INFO"})
	ok := read == b.counts.Lines && matched == b.counts.Failures && same == b.counts.Same && pending == b.counts.Pending
	b.add(result{section: "match", name: "detections = generated failures", target: fmt.Sprintf("%d", b.counts.Failures),
		value: fmt.Sprintf("%d", matched), ratio: fmt.Sprintf("same attempt %d/%d, pending %d/%d", same, b.counts.Same, pending, b.counts.Pending), status: passIf(ok)})
	return nil
}
