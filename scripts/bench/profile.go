package main

import (
	"bufio"
	"fmt"
	"os"
	"runtime/pprof"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
)

// profileMatch runs what `sysban test all` runs (ParseFileLine, then a
// Tester with every built-in filter) over the generated log in this
// process, under the CPU profiler, and writes the profile to path. Read it
// with: go tool pprof -top BINARY path (or without BINARY: symbols are in
// the profile).
func (b *bench) profileMatch(path string) error {
	var specs []pipeline.FilterSpec
	for _, f := range pipeline.BuiltinFilters() {
		specs = append(specs, f)
	}
	now := logStart
	tst, err := pipeline.NewTester(specs, pipeline.TesterOptions{Now: func() time.Time { return now }})
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	in, err := os.Open(b.logPath)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer in.Close()
	out, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	defer out.Close()
	if err := pprof.StartCPUProfile(out); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var m sysban.Message
	n := 0
	t0 := time.Now()
	for sc.Scan() {
		_ = receiver.ParseFileLine(sc.Bytes(), now, &m)
		tst.Test(&m)
		n++
	}
	el := time.Since(t0)
	pprof.StopCPUProfile()
	if err := sc.Err(); err != nil {
		return fmt.Errorf("profile: read: %w", err)
	}
	b.add(result{section: "match", name: "in-process Tester under profiler", target: "-",
		value: si(rate(float64(n), el)) + "/s", ratio: "profile " + path, status: "INFO"})
	return nil
}
