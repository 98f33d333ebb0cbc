package pipeline

import (
	"net/netip"
	"runtime"
	"strconv"
	"testing"
	"time"
)

// Budgets of live heap per tracked address that failed once, with a
// typical sshd line. 256 MiB of RSS for 1,000,000 such addresses leaves
// about 128 bytes of live heap each at GOGC=100, less what the rest of the
// daemon holds; bytesPerTracked is the whole cost at a million (the line
// ring's share included), bytesPerRecord what the layout costs without the
// lines, which are bounded per jail rather than per address. Measured with
// this layout: ~72 and ~55 (40-byte record, the slab's growth slack, ~8
// bytes of index); the pointer-per-address layout before it took 172
// (HeapAlloc, 1M addresses).
const (
	bytesPerTracked = 110
	bytesPerRecord  = 64
)

func TestTrackedBytesPerAddress(t *testing.T) {
	tests := []struct {
		name  string
		n     int
		short bool // runs with -short
		total bool // check bytesPerTracked too (meaningful at a million)
	}{
		{"100k", 100_000, true, false},
		{"1M", 1_000_000, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if testing.Short() && !tt.short {
				t.Skip("allocates ~100 MB; skipped with -short")
			}
			n := tt.n
			spec := JailSpec{Name: "sshd", Filter: "sshd", MaxRetry: 5, FindTime: time.Hour, BanTime: time.Hour}
			var before, after runtime.MemStats
			runtime.GC()
			runtime.ReadMemStats(&before)
			// A quarter to spare: shards fill unevenly and none may evict.
			j := newJail(spec, n+n/4, 1)
			var buf []byte
			for i := range n {
				a := distinctAddr(i)
				buf = append(buf[:0], "Failed password for invalid user admin from "...)
				buf = a.AppendTo(buf)
				buf = append(buf, " port "...)
				buf = strconv.AppendInt(buf, int64(1024+i%60000), 10)
				buf = append(buf, " ssh2"...)
				// string(buf) is garbage once failure returns: the jail
				// keeps a copy, which is what is measured.
				if v := j.failure(a, int64(i), string(buf)); v.ban || v.evicted {
					t.Fatalf("failure %d: unexpected %+v", i, v)
				}
			}
			runtime.GC()
			runtime.ReadMemStats(&after)
			lines := 0
			for i := range j.shards {
				lines += cap(j.shards[i].tracked.lines.buf)
			}
			alloc := float64(after.HeapAlloc-before.HeapAlloc) / float64(n)
			inuse := float64(after.HeapInuse-before.HeapInuse) / float64(n)
			record := inuse - float64(lines)/float64(n)
			t.Logf("%d addresses: %.1f bytes live (HeapAlloc), %.1f in use (HeapInuse) per address; %.1f without the %d MiB of lines",
				n, alloc, inuse, record, lines>>20)
			if record > bytesPerRecord {
				t.Errorf("%.1f bytes per tracked address without lines, budget %d", record, bytesPerRecord)
			}
			if tt.total && inuse > bytesPerTracked {
				t.Errorf("%.1f bytes per tracked address, budget %d", inuse, bytesPerTracked)
			}
			if got, _ := j.counts(int64(n)); got != n {
				t.Errorf("tracking %d addresses, want %d", got, n)
			}
			runtime.KeepAlive(j)
		})
	}
}

// distinctAddr is the i-th of 2^24 distinct IPv4 addresses.
func distinctAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{100, byte(64 + i>>16), byte(i >> 8), byte(i)})
}
