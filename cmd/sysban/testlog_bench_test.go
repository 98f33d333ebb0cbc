package main

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// BenchmarkTestAllLog runs the whole `sysban test all` command (reader,
// workers, consumer, report) over the bench's mixed log, the one
// `go run ./scripts/bench -sections gen -workdir DIR` writes to
// DIR/mixed.log: the figure issue 9 sets a target for, here to be read
// with -cpuprofile and -benchmem (allocs/line is the figure to keep near
// zero). Point SYSBAN_BENCH_LOG at the file (a head of it is enough);
// without it the benchmark skips, as the log is too large for testdata.
func BenchmarkTestAllLog(b *testing.B) {
	path := os.Getenv("SYSBAN_BENCH_LOG")
	if path == "" {
		b.Skip("SYSBAN_BENCH_LOG not set: generate a log with scripts/bench -sections gen -workdir DIR")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	lines := float64(bytes.Count(data, []byte{'\n'}))
	c := &testCmd{stdout: discard{}, stderr: discard{}, clock: time.Now}
	b.ReportAllocs()
	for b.Loop() {
		if code := c.run([]string{"all", path}); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
	n := float64(b.N) * lines
	b.ReportMetric(n/b.Elapsed().Seconds(), "lines/s")
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/n, "ns/line")
}
