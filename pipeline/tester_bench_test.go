package pipeline

import (
	"bufio"
	"os"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/receiver"
)

// BenchmarkTesterLog runs every built-in filter over a real-sized mixed log
// (the one `go run ./scripts/bench -sections gen -workdir DIR` writes to
// DIR/mixed.log), parsed beforehand so the figure is matching alone. Point
// SYSBAN_BENCH_LOG at the file; without it the benchmark skips, as the log is
// too large to keep in testdata.
func BenchmarkTesterLog(b *testing.B) {
	path := os.Getenv("SYSBAN_BENCH_LOG")
	if path == "" {
		b.Skip("SYSBAN_BENCH_LOG not set: generate a log with scripts/bench -sections gen -workdir DIR")
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	var msgs []sysban.Message
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() && len(msgs) < 200000 {
		var m sysban.Message
		_ = receiver.ParseFileLine(sc.Bytes(), now, &m)
		msgs = append(msgs, m)
	}
	var specs []FilterSpec
	for _, s := range BuiltinFilters() {
		specs = append(specs, s)
	}
	tester, err := NewTester(specs, TesterOptions{Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tester.Test(&msgs[i%len(msgs)])
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
