package fleet

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// benchBucketEnv makes the test binary the bucket's server for
// BenchmarkLateJoiner100k: its value is how many bans to publish.
const benchBucketEnv = "SYSBAN_FLEET_BENCH_BANS"

// TestBenchBucketServer is not a test: run by BenchmarkLateJoiner100k as a
// child process, it runs the embedded server, publishes the bans, prints
// "READY <url>" and serves until its stdin closes. In a process of its own,
// the benchmark's heap figures are the enforcer's alone.
func TestBenchBucketServer(t *testing.T) {
	n, err := strconv.Atoi(os.Getenv(benchBucketEnv))
	if err != nil {
		t.Skip("the bucket server of BenchmarkLateJoiner100k; runs only as its child process")
	}
	cc, srv := testServer(t, t.TempDir())
	pubNode := startNode(t, cc, srv)
	bans := make([]sysban.Ban, 0, 1000)
	pub := pubNode.Publisher(nopApplier{})
	for i := range n {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		bans = append(bans, sysban.Ban{Jail: "sshd", Addr: a, Start: time.Now(), Duration: time.Hour, Failures: 5,
			Lines: []string{"Failed password for invalid user admin from " + a.String() + " port 52144 ssh2"}})
		if len(bans) == cap(bans) {
			pub.Apply(context.Background(), bans)
			bans = bans[:0]
		}
	}
	deadline := time.Now().Add(300 * time.Second)
	for counterValue(t, pubNode.stats.published) < float64(n) {
		if time.Now().After(deadline) {
			t.Fatalf("published %.0f of %d", counterValue(t, pubNode.stats.published), n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	runtime.GC()
	fmt.Printf("READY %s\n", srv.ClientURL())
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// benchBucket starts the bucket server holding n bans in a child process
// and returns its URL and its PID.
func benchBucket(b *testing.B, n int) (url string, pid int) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchBucketServer$", "-test.count=1")
	cmd.Env = append(os.Environ(), benchBucketEnv+"="+strconv.Itoa(n))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "READY "); ok {
			go func() { _, _ = io.Copy(io.Discard, stdout) }()
			return u, cmd.Process.Pid
		}
	}
	b.Fatalf("bucket server ended before it was ready: %v", sc.Err())
	return "", 0
}

// countLocal is a Local that only counts what it is handed: the benchmark's
// heap is then the node's, not an in-memory kernel's.
type countLocal struct{ applied atomic.Int64 }

func (c *countLocal) ApplyFleet(_ context.Context, es []Entry) error {
	c.applied.Add(int64(len(es)))
	return nil
}
func (c *countLocal) InForce(time.Time, func(Applied)) error { return nil }
func (c *countLocal) Lift(context.Context, []Applied) error  { return nil }

// heapSampler follows the heap's objects bytes until stopped: the peak a
// resync reaches, sampled every millisecond.
type heapSampler struct {
	stop chan struct{}
	wg   sync.WaitGroup
	peak uint64
}

func sampleHeap() *heapSampler {
	h := &heapSampler{stop: make(chan struct{})}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(s)
			h.peak = max(h.peak, s[0].Value.Uint64())
			select {
			case <-h.stop:
				return
			case <-t.C:
			}
		}
	}()
	return h
}

func (h *heapSampler) done() uint64 { close(h.stop); h.wg.Wait(); return h.peak }

func heapNow() (objects, allocs uint64) {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64(), s[1].Value.Uint64()
}

// vmRSS is a process's resident set, from /proc.
func vmRSS(pid int) (uint64, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "status"))
	if err != nil {
		return 0, err
	}
	for _, l := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(l, "VmRSS:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS for %d", pid)
}

// BenchmarkLateJoiner100k: an enforcer starting against 100,000 fleet bans,
// from connect to every ban handed to Local (one that only counts: the
// kernel and store part is measured by scripts/bench's fleet section). The
// server runs in a child process, so that the heap figures are the
// enforcer's: MiB-heap-peak is the most its heap held during the join
// (sampled every ms), MiB-heap-kept what it keeps after a GC (both above
// the heap before it started), B-alloc/ban what it allocated per ban.
// MiB-server-RSS is the server process's with the bans (and its own
// publishing node). Wall time (s/join) is noisy on a loaded machine; the
// heap and allocation figures are not.
func BenchmarkLateJoiner100k(b *testing.B) {
	const n = 100000
	url, pid := benchBucket(b, n)
	if rss, err := vmRSS(pid); err == nil {
		b.ReportMetric(float64(rss)/(1<<20), "MiB-server-RSS")
	}
	for range b.N {
		runtime.GC()
		base, allocs0 := heapNow()
		h := sampleHeap()
		local := &countLocal{}
		c := nodeConfig("hostb", url)
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		node, err := New(context.Background(), Options{Config: c, Local: local, EnabledJails: []string{"sshd"},
			OutboxPath: filepath.Join(b.TempDir(), OutboxFile), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = node.Run(ctx); close(done) }()
		deadline := time.Now().Add(120 * time.Second)
		for local.applied.Load() < n {
			if time.Now().After(deadline) {
				b.Fatalf("%d of %d bans after 120 s", local.applied.Load(), n)
			}
			time.Sleep(time.Millisecond)
		}
		took := time.Since(t0)
		for counterValue(b, node.stats.resyncs) < 1 {
			time.Sleep(time.Millisecond)
		}
		peak := h.done()
		_, allocs1 := heapNow()
		runtime.GC()
		debug.FreeOSMemory()
		kept, _ := heapNow()
		b.ReportMetric(took.Seconds(), "s/join")
		b.ReportMetric(float64(peak-min(peak, base))/(1<<20), "MiB-heap-peak")
		b.ReportMetric(float64(kept-min(kept, base))/(1<<20), "MiB-heap-kept")
		b.ReportMetric(float64(allocs1-allocs0)/n, "B-alloc/ban")
		runtime.KeepAlive(node)
		cancel()
		<-done
		node.Close()
	}
}
