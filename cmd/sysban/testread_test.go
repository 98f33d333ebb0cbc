package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/receiver"
)

// TestParallelLinesKeepsOrder: whatever the worker count and however the
// input falls into batches (long lines, a line over the limit, no final
// newline), every line arrives once, in order, parsed as ParseFileLine
// parses it alone.
func TestParallelLinesKeepsOrder(t *testing.T) {
	var in bytes.Buffer
	var want []string
	for i := range 5000 {
		var line string
		switch {
		case i == 1234:
			line = strings.Repeat("x", maxLineLen+10) // skipped whole
		case i%997 == 0:
			line = fmt.Sprintf("Nov  2 10:00:%02d h sshd[%d]: %s", i%60, i, strings.Repeat("y", batchBytes)) // over a batch
		default:
			line = fmt.Sprintf("Nov  2 10:00:%02d h sshd[%d]: Failed password for root from 192.0.2.%d port 22 ssh2", i%60, i, i%250)
		}
		want = append(want, line)
		in.WriteString(line)
		if i != 4999 {
			in.WriteByte('\n')
		}
	}
	wall := time.Date(2026, 11, 21, 0, 0, 0, 0, time.UTC)
	for _, workers := range []int{1, 3} {
		t.Run(fmt.Sprint("workers=", workers), func(t *testing.T) {
			n := 0
			newParse := func() func(*parsedLine) {
				var p receiver.FileParser
				return func(pl *parsedLine) { parseLine(&p, pl, wall, "") }
			}
			err := parallelLines(bytes.NewReader(in.Bytes()), workers, newParse, func(pl *parsedLine) {
				defer func() { n++ }()
				if n >= len(want) {
					t.Fatalf("line %d: more lines than sent", n)
				}
				if n == 1234 {
					if !pl.tooLong || pl.raw != nil {
						t.Errorf("line %d: tooLong=%v len(raw)=%d, want a skipped line", n, pl.tooLong, len(pl.raw))
					}
					return
				}
				if got := strings.TrimSuffix(string(pl.raw), "\n"); got != want[n] {
					t.Fatalf("line %d = %.60q, want %.60q", n, got, want[n])
				}
				var m sysban.Message
				perr := receiver.ParseFileLine(pl.raw, wall, &m)
				if fmt.Sprint(perr) != fmt.Sprint(pl.err) || m.AppName != pl.msg.AppName || m.ProcID != pl.msg.ProcID ||
					m.Text != pl.msg.Text || !m.Timestamp.Equal(pl.msg.Timestamp) {
					t.Fatalf("line %d parsed as %+v (%v), want %+v (%v)", n, pl.msg, pl.err, m, perr)
				}
			}, true)
			if err != nil {
				t.Fatal(err)
			}
			if n != len(want) {
				t.Fatalf("%d lines, want %d", n, len(want))
			}
		})
	}
}

// TestParallelLinesReadError: a read error ends the input with that error,
// after every line read before it.
func TestParallelLinesReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	data := strings.Repeat("Nov  2 10:00:00 h sshd[1]: hello\n", 3000)
	r := io.MultiReader(strings.NewReader(data), iotest.ErrReader(boom))
	n := 0
	err := parallelLines(r, 2, func() func(*parsedLine) { return func(*parsedLine) {} }, func(*parsedLine) { n++ }, false)
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if n != 3000 {
		t.Errorf("%d lines before the error, want 3000", n)
	}
}

// TestLinesOutliveNoBatch runs `sysban test all` over every filter's
// sample lines (correlations, attempts, many addresses), again and again
// so that batches are recycled, once as usual and once with every batch
// overwritten as soon as the consumer is done with it. A string of a line
// kept past its batch (an address in the tally, a key in the correlation
// state) would read '#'s in the second run: the reports must be the same.
func TestLinesOutliveNoBatch(t *testing.T) {
	paths, err := filepath.Glob("../../pipeline/filters/testdata/*.log")
	if err != nil || len(paths) == 0 {
		t.Fatalf("no sample logs: %v", err)
	}
	var samples bytes.Buffer
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for line := range strings.Lines(string(data)) {
			if !strings.HasPrefix(line, "#") && strings.TrimSpace(line) != "" {
				samples.WriteString(line)
			}
		}
	}
	log := filepath.Join(t.TempDir(), "samples.log")
	var in bytes.Buffer
	for in.Len() < 12*batchBytes {
		in.Write(samples.Bytes())
	}
	if err := os.WriteFile(log, in.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return time.Date(2026, 12, 31, 0, 0, 0, 0, time.UTC) }
	run := func(poison bool, args ...string) string {
		var out, errb bytes.Buffer
		c := &testCmd{stdout: &out, stderr: &errb, clock: clock, poisonBatches: poison}
		if code := c.run(append(args, "all", log)); code != 0 {
			t.Fatalf("exit %d: %s", code, errb.String())
		}
		return out.String() + errb.String()
	}
	for _, args := range [][]string{{"--print-all-matched"}, {"--json"}} {
		plain, poisoned := run(false, args...), run(true, args...)
		if !strings.Contains(plain, "failures counted") && !strings.Contains(plain, `"matched":true`) {
			t.Fatalf("%v: no failures in the report:\n%.2000s", args, plain)
		}
		if plain != poisoned {
			a, b := strings.Split(plain, "\n"), strings.Split(poisoned, "\n")
			for i := range min(len(a), len(b)) {
				if a[i] != b[i] {
					t.Fatalf("%v: line %d differs once batches are overwritten:\n  %s\n  %s", args, i+1, a[i], b[i])
				}
			}
			t.Fatalf("%v: %d lines, %d once batches are overwritten", args, len(a), len(b))
		}
	}
}
