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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/sysban/sysban"
)

// benchBucketEnv makes the test binary the bucket's server for
// BenchmarkLateJoiner100k: its value is how many bans to publish.
const benchBucketEnv = "SYSBAN_FLEET_BENCH_BANS"

// benchSeedEnv, when set, is the user nkey seed the bucket server's
// publishing node ("collector") logs in with and signs its bans with
// (BenchmarkLateJoinerSigned100k).
const benchSeedEnv = "SYSBAN_FLEET_BENCH_SEED"

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
	if seed := os.Getenv(benchSeedEnv); seed != "" {
		cc, srv = signingServer(t, seed)
	}
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

// signingServer is testServer with "collector" logging in with the nkey
// of seed, and so signing what it publishes.
func signingServer(t *testing.T, seed string) (*Config, *Server) {
	kp, err := nkeys.FromSeed([]byte(seed))
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	nodes := map[string]string{}
	for _, n := range testNodes {
		nodes[n] = testPassword
	}
	nodes["collector"] = pub
	c := &Config{Name: "collector", Decide: true, Enforce: true, NKeySeed: "(in memory)", nkey: kp,
		Embedded: &Embedded{Listen: "127.0.0.1:-1", StoreDir: t.TempDir(), Nodes: nodes}}
	return c, serveConfig(t, c)
}

// benchBucket starts the bucket server holding n bans in a child process
// (signed with the nkey of seed unless it is "") and returns its URL and
// its PID.
func benchBucket(b *testing.B, n int, seed string) (url string, pid int) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBenchBucketServer$", "-test.count=1")
	cmd.Env = append(os.Environ(), benchBucketEnv+"="+strconv.Itoa(n), benchSeedEnv+"="+seed)
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

// cpuTime is a process's user + system CPU time so far, from /proc (the
// clock ticks of /proc/PID/stat are 1/100 s on Linux).
func cpuTime(pid int) (time.Duration, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The fields after the command's name (in parentheses, which may
	// hold spaces): utime and stime are the 12th and 13th of them.
	_, rest, ok := strings.Cut(string(data), ") ")
	f := strings.Fields(rest)
	if !ok || len(f) < 13 {
		return 0, fmt.Errorf("stat of %d: %q", pid, data)
	}
	var ticks int64
	for _, s := range f[11:13] {
		t, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return 0, err
		}
		ticks += t
	}
	return time.Duration(ticks) * 10 * time.Millisecond, nil
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
func BenchmarkLateJoiner100k(b *testing.B) { benchLateJoiner(b, false) }

// BenchmarkLateJoinerSigned100k is BenchmarkLateJoiner100k with every ban
// signed by its deciding node and the enforcer verifying each (trustkeys):
// a verification per ban, on every core.
func BenchmarkLateJoinerSigned100k(b *testing.B) { benchLateJoiner(b, true) }

func benchLateJoiner(b *testing.B, signed bool) {
	const n = 100000
	seed, trust := "", map[string]string(nil)
	if signed {
		kp, pub := newNKey(b)
		s, err := kp.Seed()
		if err != nil {
			b.Fatal(err)
		}
		seed, trust = string(s), map[string]string{"collector": pub}
	}
	url, pid := benchBucket(b, n, seed)
	if rss, err := vmRSS(pid); err == nil {
		b.ReportMetric(float64(rss)/(1<<20), "MiB-server-RSS")
	}
	for range b.N {
		runtime.GC()
		base, allocs0 := heapNow()
		h := sampleHeap()
		local := &countLocal{}
		c := nodeConfig("hostb", url)
		c.TrustKeys = trust
		if err := c.Validate(); err != nil {
			b.Fatal(err)
		}
		cpu0, _ := cpuTime(os.Getpid())
		scpu0, _ := cpuTime(pid)
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
		cpu1, _ := cpuTime(os.Getpid())
		scpu1, _ := cpuTime(pid)
		b.ReportMetric((cpu1 - cpu0).Seconds(), "CPU-s/join")
		b.ReportMetric((scpu1 - scpu0).Seconds(), "server-CPU-s/join")
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

// BenchmarkPropagation times a ban from the decider's Publisher.Apply to
// the enforcer's Local (in memory here: the kernel and store part is
// measured by scripts/bench's fleet section) and each stage on the way,
// through the node's trace hook: queued for the fleet, handed to the NATS
// client, acknowledged by the server, delivered by the enforcer's watch,
// applied. Each stage is reported as p50 and p99 from the decision, in ms.
// Idle: one ban at a time. Storm: 10,000 bans/s in batches of 50 every
// 5 ms (as the ban worker forms them during a storm), the last ban of each
// batch sampled. On the embedded single server and on a 3-node cluster of
// embedded servers (R3), the decider and the enforcer connected to
// different servers.
func BenchmarkPropagation(b *testing.B) {
	b.Run("embedded", func(b *testing.B) {
		cc, srv := testServer(b, b.TempDir())
		dc := *cc
		dc.Enforce = false
		ec := nodeConfig("hostb", srv.ClientURL())
		ec.Decide = false
		benchPropagation(b, &dc, srv, ec)
	})
	b.Run("cluster", func(b *testing.B) {
		cfgs, _ := startCluster(b, []string{"n1", "n2", "n3"})
		dc, ec := *cfgs[0], *cfgs[2]
		dc.Enforce, dc.Embedded, dc.Servers = false, nil, dc.Servers[:1]
		ec.Decide, ec.Embedded, ec.Servers = false, nil, ec.Servers[2:]
		benchPropagation(b, &dc, nil, &ec)
	})
}

func benchPropagation(b *testing.B, dc *Config, srv *Server, ec *Config) {
	tr := &propTracer{at: map[string]*[stages]time.Time{}, applied: make(chan string, 1024)}
	trace := func(o *Options) { o.trace = tr.mark }
	decider := startNode(b, dc, srv, trace)
	enforcer := startNode(b, ec, nil, trace)
	within(b, 10*time.Second, "both connected", func() bool { return decider.connected.Load() && enforcer.connected.Load() })
	time.Sleep(200 * time.Millisecond) // the enforcer's watch is live
	pub := decider.Publisher(nopApplier{})
	next := 0
	newBan := func() sysban.Ban {
		next++
		addr := netip.AddrFrom4([4]byte{10, byte(next >> 16), byte(next >> 8), byte(next)})
		// A jail's ban carries its last failure lines, as in a daemon.
		line := "Failed password for invalid user admin from " + addr.String() + " port 52211 ssh2"
		return sysban.Ban{Jail: "sshd", Addr: addr, Start: time.Now(), Duration: time.Hour, Failures: 5, Lines: []string{line, line, line}}
	}
	b.Run("idle", func(b *testing.B) {
		tr.reset()
		for range b.N {
			bn := newBan()
			tr.track(dc.Name, bn)
			_ = pub.Apply(context.Background(), []sysban.Ban{bn})
			tr.wait(b, 1)
			// Idle: past streamGap, so that the enforcer does not take
			// the next ban for part of a storm and linger for more.
			time.Sleep(streamGap + time.Millisecond)
		}
		tr.report(b)
	})
	b.Run("storm", func(b *testing.B) {
		tr.reset()
		before := enforcer.local.len()
		tick := time.NewTicker(5 * time.Millisecond)
		defer tick.Stop()
		cpu0 := processCPU()
		for range b.N {
			<-tick.C
			batch := make([]sysban.Ban, 50)
			for i := range batch {
				batch[i] = newBan()
			}
			tr.track(dc.Name, batch[len(batch)-1])
			_ = pub.Apply(context.Background(), batch)
		}
		tr.wait(b, b.N)
		within(b, 30*time.Second, "every ban of the storm applied", func() bool { return enforcer.local.len()-before == b.N*50 })
		// CPU time, not wall time: the machine is shared. Both nodes and
		// the server run in this process, so it is the whole path's cost.
		b.ReportMetric(float64(processCPU()-cpu0)/float64(time.Microsecond)/float64(b.N*50), "cpu-µs/ban")
		tr.report(b)
	})
}

// processCPU is the CPU time (user and system) this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// propTracer keeps the stage times of the sampled bans.
type propTracer struct {
	mu      sync.Mutex
	at      map[string]*[stages]time.Time // key -> when it passed each stage
	decided map[string]time.Time
	applied chan string
}

func (p *propTracer) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.at, p.decided = map[string]*[stages]time.Time{}, map[string]time.Time{}
}

// track samples bn, decided now by node.
func (p *propTracer) track(node string, bn sysban.Ban) {
	k := Key{Node: node, Jail: bn.Jail, Prefix: AddrKey(bn.Addr)}.String()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.at[k] = &[stages]time.Time{}
	p.decided[k] = time.Now()
}

func (p *propTracer) mark(s stage, key string) {
	now := time.Now()
	p.mu.Lock()
	t := p.at[key]
	if t != nil && t[s].IsZero() {
		t[s] = now
	}
	p.mu.Unlock()
	if t != nil && s == stageApplied {
		p.applied <- key
	}
}

// wait waits for n sampled bans to be applied.
func (p *propTracer) wait(b *testing.B, n int) {
	timeout := time.After(30 * time.Second)
	for range n {
		select {
		case <-p.applied:
		case <-timeout:
			b.Fatalf("sampled bans not applied within 30 s")
		}
	}
}

// report adds p50 and p99 of each stage, from the decision, in ms.
func (p *propTracer) report(b *testing.B) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for s := range stages {
		var ds []time.Duration
		for k, t := range p.at {
			if !t[s].IsZero() {
				ds = append(ds, t[s].Sub(p.decided[k]))
			}
		}
		if len(ds) == 0 {
			continue
		}
		slices.Sort(ds)
		ms := func(q int) float64 { return float64(ds[min(len(ds)-1, len(ds)*q/100)]) / 1e6 }
		b.ReportMetric(ms(50), "ms-p50-"+stageNames[s])
		b.ReportMetric(ms(99), "ms-p99-"+stageNames[s])
	}
}
