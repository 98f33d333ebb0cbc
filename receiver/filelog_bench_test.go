package receiver

import (
	"bufio"
	"os"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// BenchmarkParseFileLineLog parses the lines of a real-sized mixed log (the
// one `go run ./scripts/bench -sections gen -workdir DIR` writes to
// DIR/mixed.log) into one reused Message, as `sysban test` does. Point
// SYSBAN_BENCH_LOG at the file; without it the benchmark skips.
func BenchmarkParseFileLineLog(b *testing.B) {
	path := os.Getenv("SYSBAN_BENCH_LOG")
	if path == "" {
		b.Skip("SYSBAN_BENCH_LOG not set: generate a log with scripts/bench -sections gen -workdir DIR")
	}
	f, err := os.Open(path)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	var lines [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() && len(lines) < 200000 {
		lines = append(lines, append([]byte(nil), sc.Bytes()...))
	}
	// A "now" late in the year, as when a June log is tested in November.
	now := time.Date(2026, 11, 21, 20, 0, 0, 0, time.UTC)
	var m sysban.Message
	b.ReportAllocs()
	b.SetBytes(0)
	i := 0
	for b.Loop() {
		_ = ParseFileLine(lines[i%len(lines)], now, &m)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
