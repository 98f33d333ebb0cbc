package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
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
			parse := func(pl *parsedLine) { pl.err = receiver.ParseFileLine(pl.raw, wall, &pl.msg) }
			err := parallelLines(bytes.NewReader(in.Bytes()), workers, parse, func(pl *parsedLine) {
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
			})
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
	err := parallelLines(r, 2, func(*parsedLine) {}, func(*parsedLine) { n++ })
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want %v", err, boom)
	}
	if n != 3000 {
		t.Errorf("%d lines before the error, want 3000", n)
	}
}
