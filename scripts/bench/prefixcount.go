package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
)

// Prefix counting must not slow the common path down (issue 17: within 5%
// of counting single addresses). `sysban test` only matches, it does not
// count, so the match section's pair runs the generated log through a
// whole pipeline in this process (parse, route, match, count per jail,
// decide bans; bans go nowhere): once with every jail counting IPv6 by
// /64 (the default) and once by /128, alternating, countPasses each. The
// figure is CPU time per line (this process: the counting goroutine, the
// ban worker and the collector), the median pass of each; wall time on a
// shared machine says little.

const countPasses = 3

// discardBans is a ban chain's end that keeps nothing.
type discardBans struct{}

func (discardBans) Apply(context.Context, []sysban.Ban) error { return nil }

// countConfig enables a jail for every built-in syslog filter, as the
// daemon sections do (ingestConfig), counting IPv6 by v6bits.
func countConfig(v6bits int) pipeline.Config {
	cfg := pipeline.Config{MaxTracked: 100_000}
	for name := range pipeline.BuiltinFilters() {
		if name == "portprobe" {
			continue
		}
		cfg.Jails = append(cfg.Jails, pipeline.JailSpec{Name: name, Filter: name, MaxRetry: 5,
			FindTime: time.Hour, BanTime: time.Hour, IPv6Prefix: v6bits, IPv4Prefix: 32})
	}
	slices.SortFunc(cfg.Jails, func(a, b pipeline.JailSpec) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return cfg
}

// countPass runs the log through a pipeline counting IPv6 by v6bits and
// returns the process CPU time it took, the lines read and the failures
// the jails counted.
func (b *bench) countPass(v6bits int) (cpu time.Duration, lines int, failures uint64, err error) {
	clock := logStart
	pl, err := pipeline.New(countConfig(v6bits), discardBans{}, pipeline.Options{Now: func() time.Time { return clock }})
	if err != nil {
		return 0, 0, 0, fmt.Errorf("count: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	worker := make(chan struct{})
	go func() { _ = pl.Run(ctx); close(worker) }()
	defer func() { cancel(); <-worker }()
	in, err := os.Open(b.logPath)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("count: %w", err)
	}
	defer in.Close()
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	cpu0 := processCPUSelf()
	n := 0
	for sc.Scan() {
		var m sysban.Message
		if receiver.ParseFileLine(sc.Bytes(), clock, &m) == nil && !m.Timestamp.IsZero() {
			clock = m.Timestamp
		}
		pl.Handle(&m)
		n++
	}
	cpu = processCPUSelf() - cpu0
	for _, js := range pl.Stats().Jails {
		failures += js.TotalFailed
	}
	return cpu, n, failures, sc.Err()
}

// processCPUSelf is this process's user+system time.
func processCPUSelf() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// sectionMatchPrefix prints the pair and their ratio against the target.
func (b *bench) sectionMatchPrefix() error {
	per := map[int][]float64{}
	failures := map[int]uint64{}
	lines := 0
	for range countPasses {
		for _, bits := range []int{128, 64} {
			cpu, n, f, err := b.countPass(bits)
			if err != nil {
				return err
			}
			per[bits] = append(per[bits], float64(cpu.Nanoseconds())/float64(max(n, 1)))
			lines, failures[bits] = n, f
		}
	}
	off, on := median(per[128]), median(per[64])
	b.add(result{section: "match", name: fmt.Sprintf("pipeline over the log (%s lines), IPv6 counted by /128", si(float64(lines))), target: "-",
		value: fmt.Sprintf("%.2f µs/line", off/1e3), ratio: fmt.Sprintf("CPU, median of %d", countPasses), status: "INFO"})
	b.add(result{section: "match", name: "  same, IPv6 counted by /64 (prefix counting on)", target: "≤ 1.05× /128",
		value: fmt.Sprintf("%.2f µs/line", on/1e3), ratio: fmt.Sprintf("%.3f× /128", on/off), status: passIf(on <= 1.05*off)})
	// The generated IPv6 attackers each hold a /64 of their own, so both
	// count the same failures: a difference would mean they did not run
	// the same work.
	b.add(result{section: "match", name: "  failures counted by the jails, /64 vs /128", target: fmt.Sprint(failures[128]),
		value: fmt.Sprint(failures[64]), ratio: "-", status: passIf(failures[64] == failures[128] && failures[64] > 0)})
	return nil
}
