package main

import (
	"bufio"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
)

// `sysban test` parses and pre-matches lines on the spare cores and
// finishes them on one. Parsing, routing and the failregexes are stateless
// and nearly all of a line's cost; what is left (multi-line correlation,
// whose state and clock, the lines' own times, depend on what came before,
// and the tally) must run in log order. So a reader cuts the input into
// batches, workers prepare each batch's lines in parallel, and the
// consumer takes batches strictly in input order. Batches are recycled,
// and a line's message is cut from its batch's bytes (FileParser), so the
// steady state allocates nothing per line.
//
// That has one rule: a line's strings (its message's fields, the hosts of
// its matches) are views of its batch's buffer, which the next batch read
// into it overwrites. Nothing may read them after the consumer is done
// with the batch; whatever outlives a line must be copied (the Tester's
// correlation state copies what it keeps, the tally its addresses).
// TestLinesOutliveNoBatch holds the whole command to it.

// Batch sizes: big enough that channel operations and wakeups are noise
// next to parsing (a batch is ~100-500 µs of work), small enough that a
// handful in flight per worker stays a few MiB.
const (
	batchLines = 1024
	batchBytes = 256 << 10
)

// parsedLine is one input line and what the workers made of it.
type parsedLine struct {
	raw       []byte // the line as read, into its batch's buf
	msg       sysban.Message
	err       error // ParseFileLine's error
	tooLong   bool  // skipped: longer than maxLineLen; raw and msg are empty
	noProgram bool  // the line named no program; msg.AppName is the default
	pre       pipeline.Prematched
}

// lineBatch is a run of consecutive lines; ready is closed once every line
// is parsed. readErr, set on the last batch only, is how the input ended
// (nil at EOF).
type lineBatch struct {
	lines   []parsedLine
	buf     []byte
	ready   chan struct{}
	readErr error
}

// parallelLines reads r to its end, runs a prepare function on each line
// (not too long) on workers goroutines, each goroutine with its own from
// newPrepare, then calls each(line) for every line in input order, and
// returns the read error that ended the input (nil at EOF). Its goroutines
// have stopped when it returns. poison overwrites every batch's bytes once
// each is done with them, for tests (see the file's comment).
func parallelLines(r io.Reader, workers int, newPrepare func() func(*parsedLine), each func(*parsedLine), poison bool) error {
	if workers < 1 {
		workers = 1
	}
	inFlight := 2 * workers
	free := make(chan *lineBatch, inFlight+1)
	for range inFlight + 1 {
		free <- &lineBatch{lines: make([]parsedLine, 0, batchLines), buf: make([]byte, 0, batchBytes)}
	}
	work := make(chan *lineBatch, inFlight)
	ordered := make(chan *lineBatch, inFlight)

	var wg sync.WaitGroup
	for range workers {
		wg.Add(1)
		prepare := newPrepare()
		go func() {
			defer wg.Done()
			for b := range work {
				for i := range b.lines {
					pl := &b.lines[i]
					if !pl.tooLong {
						prepare(pl)
					}
				}
				close(b.ready)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(ordered)
		defer close(work)
		br := bufio.NewReaderSize(r, readBufSize)
		for {
			b := <-free
			err := fillBatch(br, b)
			b.ready = make(chan struct{})
			b.readErr = err
			// ordered first: the consumer must see batches in the order
			// they were cut, whichever worker finishes first.
			ordered <- b
			work <- b
			if err != nil {
				return
			}
		}
	}()

	var readErr error
	for b := range ordered {
		<-b.ready
		for i := range b.lines {
			each(&b.lines[i])
		}
		if b.readErr != nil && b.readErr != io.EOF {
			readErr = b.readErr
		}
		// The lines' strings die here, before the reader writes the
		// next batch's bytes under them.
		clear(b.lines)
		if poison {
			b.poison()
		}
		free <- b
	}
	wg.Wait()
	return readErr
}

// fillBatch reads up to batchLines lines (or about batchBytes) into b,
// copying each: bufio's slices are only valid until its next read. It
// returns the error that ended the input, if it did (io.EOF at the end).
func fillBatch(br *bufio.Reader, b *lineBatch) error {
	b.lines, b.buf = b.lines[:0], b.buf[:0]
	for len(b.lines) < batchLines && len(b.buf) < batchBytes {
		line, err := readLine(br)
		if err == errLineTooLong {
			b.next().tooLong = true
			continue
		}
		if len(line) > 0 {
			// A line may be far longer than the batch's room; it gets a
			// buffer of its own rather than growing the shared one, whose
			// earlier lines' slices must stay valid.
			var raw []byte
			if len(b.buf)+len(line) <= cap(b.buf) {
				start := len(b.buf)
				b.buf = append(b.buf, line...)
				raw = b.buf[start:len(b.buf):len(b.buf)]
			} else {
				raw = append([]byte(nil), line...)
			}
			b.next().raw = raw
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// next appends a line to b and returns it, zero: the consumer cleared
// the entries it used. Entries are reused, not reallocated: a line's
// Prematched holds an array of results.
func (b *lineBatch) next() *parsedLine {
	if len(b.lines) < cap(b.lines) {
		b.lines = b.lines[:len(b.lines)+1]
	} else {
		b.lines = append(b.lines, parsedLine{})
	}
	return &b.lines[len(b.lines)-1]
}

// poison overwrites the bytes of b's lines, which a string kept past the
// batch would show.
func (b *lineBatch) poison() {
	buf := b.buf[:cap(b.buf)]
	for i := range buf {
		buf[i] = '#'
	}
}

// parseLine is the usual prepare step: p parses the line as ParseFileLine
// does (wall anchors the year of BSD stamps), its strings cut from the
// batch's bytes, then the default program for lines without one.
func parseLine(p *receiver.FileParser, pl *parsedLine, wall time.Time, defaultProgram string) {
	// pl.raw is not written again until the consumer is done with the
	// batch (the file's comment), so it can be read as a string.
	line := unsafe.String(unsafe.SliceData(pl.raw), len(pl.raw))
	pl.err = p.ParseString(line, wall, &pl.msg)
	if pl.msg.AppName == "" {
		pl.noProgram = true
		pl.msg.AppName = defaultProgram
	}
}

// testWorkers is how many goroutines parse and pre-match for `sysban
// test`: one per core. The consumer (correlation, tally) needs about a
// third of a line's CPU and sleeps whenever it waits for a batch, so with
// one core left to it (GOMAXPROCS-1 workers) that core idled for the rest
// and the workers were the bound; with a worker on every core the
// scheduler gives the consumer's idle time to the workers.
func testWorkers() int {
	return max(1, runtime.GOMAXPROCS(0))
}

// Lines longer than maxLineLen are skipped (and counted): a hostile or
// huge log must not exhaust memory.
const (
	readBufSize = 1 << 20
	maxLineLen  = readBufSize
)

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
