package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// netns is a network namespace the bench created, with only loopback up.
type netns struct {
	name string
}

func newNetns(ctx context.Context, name string) (*netns, error) {
	if out, err := exec.CommandContext(ctx, "ip", "netns", "add", name).CombinedOutput(); err != nil {
		return nil, fmt.Errorf("netns: add %s: %v: %s", name, err, bytes.TrimSpace(out))
	}
	n := &netns{name: name}
	if out, err := exec.CommandContext(ctx, "ip", "netns", "exec", name, "ip", "link", "set", "lo", "up").CombinedOutput(); err != nil {
		n.Close()
		return nil, fmt.Errorf("netns: %s: lo up: %v: %s", name, err, bytes.TrimSpace(out))
	}
	return n, nil
}

func (n *netns) Close() {
	_ = exec.Command("ip", "netns", "delete", n.name).Run()
}

// do runs f on an OS thread that joined the namespace. Sockets f opens stay
// in the namespace and can be used from any goroutine afterwards. The thread
// is never unlocked, so the runtime retires it instead of reusing it outside.
func (n *netns) do(f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+n.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- fmt.Errorf("netns: open %s: %w", n.name, err)
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("netns: setns %s: %w", n.name, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// fd opens the namespace file for APIs that take a namespace fd (nft.Options).
func (n *netns) fd() (int, error) {
	fd, err := unix.Open("/run/netns/"+n.name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("netns: open %s: %w", n.name, err)
	}
	return fd, nil
}

func (n *netns) dial(network, addr string) (net.Conn, error) {
	var c net.Conn
	err := n.do(func() error {
		var err error
		c, err = net.Dial(network, addr)
		return err
	})
	return c, err
}

// httpClient dials inside the namespace, for the daemon's metrics endpoint.
func (n *netns) httpClient() *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DisableKeepAlives: true,
		DialContext: func(_ context.Context, network, addr string) (net.Conn, error) {
			return n.dial(network, addr)
		},
	}}
}

// syncBuffer collects a child's output while it runs.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The daemon may log at length under load; keep the head, which has
	// the start line, and a bounded amount after it.
	if s.b.Len() > 4<<20 {
		return len(p), nil
	}
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// daemon is sysban running in a namespace.
type daemon struct {
	ns      *netns
	cmd     *exec.Cmd
	logs    *syncBuffer
	exited  chan struct{}
	metrics string // host:port inside ns
	client  *http.Client
	started time.Duration // exec to "sysban started"
	dir     string
}

// daemonConfig returns a config that keeps every path inside dir.
func daemonConfig(dir, body string) string {
	return fmt.Sprintf(`
listen:
  udp: ["127.0.0.1:5514"]
  tcp: ["127.0.0.1:5514"]
  unix: [%q]
state:
  dir: %q
control:
  socket: %q
metrics:
  listen: 127.0.0.1:9642
log:
  level: info
%s`, filepath.Join(dir, "syslog.sock"), filepath.Join(dir, "state"), filepath.Join(dir, "control.sock"), body)
}

// startDaemon writes cfg to dir and runs bin in ns until "sysban started".
// wrap, if any, is a command prefix that ends by exec'ing the binary
// (env, taskset), so the child's pid stays sysban's.
func startDaemon(ctx context.Context, bin string, ns *netns, dir, cfg string, wrap ...string) (*daemon, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	path := filepath.Join(dir, "sysban.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		return nil, fmt.Errorf("daemon: %w", err)
	}
	d := &daemon{ns: ns, logs: &syncBuffer{}, exited: make(chan struct{}), metrics: "127.0.0.1:9642", client: ns.httpClient(), dir: dir}
	// ip netns exec execs the binary after setns, so the child's pid is
	// sysban's own (for /proc/PID/status).
	argv := append(append([]string{"netns", "exec", ns.name}, wrap...), bin, "run", "--config", path)
	d.cmd = exec.Command("ip", argv...)
	d.cmd.Stdout, d.cmd.Stderr = d.logs, d.logs
	t0 := time.Now()
	if err := d.cmd.Start(); err != nil {
		return nil, fmt.Errorf("daemon: start: %w", err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	err := poll(ctx, 30*time.Second, 2*time.Millisecond, func() (bool, error) {
		select {
		case <-d.exited:
			return false, fmt.Errorf("daemon exited: %s", d.logs.String())
		default:
		}
		return strings.Contains(d.logs.String(), "sysban started"), nil
	})
	d.started = time.Since(t0)
	if err != nil {
		d.stop()
		return nil, fmt.Errorf("daemon: waiting for start: %w", err)
	}
	return d, nil
}

func (d *daemon) pid() int { return d.cmd.Process.Pid }

// stop ends the daemon with SIGTERM and waits for it (SIGKILL after 10 s).
func (d *daemon) stop() {
	_ = d.cmd.Process.Signal(unix.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(10 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
	// Kept for reading after the run (-keep or -workdir).
	_ = os.WriteFile(filepath.Join(d.dir, "daemon.log"), []byte(d.logs.String()), 0o644)
}

// sample is one Prometheus sample of the text exposition.
type sample struct {
	name, labels string
	value        float64
}

type scrape []sample

// sum adds every sample of name whose labels contain sub.
func (s scrape) sum(name, sub string) float64 {
	var v float64
	for _, x := range s {
		if x.name == name && strings.Contains(x.labels, sub) {
			v += x.value
		}
	}
	return v
}

func (d *daemon) scrape() (scrape, error) {
	resp, err := d.client.Get("http://" + d.metrics + "/metrics")
	if err != nil {
		return nil, fmt.Errorf("metrics: %w", err)
	}
	defer resp.Body.Close()
	return parseMetrics(resp.Body)
}

// parseMetrics reads the Prometheus text format: name{labels} value.
func parseMetrics(r io.Reader) (scrape, error) {
	var out scrape
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		sp := strings.LastIndexByte(line, ' ')
		if sp < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[sp+1:], 64)
		if err != nil {
			continue
		}
		key := line[:sp]
		name, labels := key, ""
		if i := strings.IndexByte(key, '{'); i >= 0 {
			name, labels = key[:i], key[i:]
		}
		out = append(out, sample{name, labels, v})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("metrics: read: %w", err)
	}
	return out, nil
}

// settle polls a counter every 5 ms until it has not moved for quiet (the
// daemon has drained its sockets) or reaches want (0: no target), and
// returns it.
func (d *daemon) settle(ctx context.Context, name, sub string, want float64, quiet, limit time.Duration) (float64, error) {
	return d.settleEvery(ctx, name, sub, want, quiet, limit, 5*time.Millisecond)
}

// settleEvery is settle polling every period. Each poll is a metrics scrape
// whose CPU the daemon pays: a section that charges the daemon's CPU to
// the messages it took polls less often.
func (d *daemon) settleEvery(ctx context.Context, name, sub string, want float64, quiet, limit, period time.Duration) (float64, error) {
	var last float64 = -1
	lastChange := time.Now()
	var val float64
	err := poll(ctx, limit, period, func() (bool, error) {
		s, err := d.scrape()
		if err != nil {
			return false, err
		}
		val = s.sum(name, sub)
		if want > 0 && val >= want {
			return true, nil
		}
		if val != last {
			last, lastChange = val, time.Now()
			return false, nil
		}
		return time.Since(lastChange) >= quiet, nil
	})
	return val, err
}

// settleBans waits until every ban decided so far is kept: the ban queue
// is empty and sysban_bans_total (which counts a ban once it is in the
// store) has stopped changing. It returns that count. Waiting for the
// count alone is not enough: it grows a batch at a time, and one batch
// (an fsync, a netlink write of thousands of elements) can take longer
// than the quiet period on a loaded machine.
func (d *daemon) settleBans(ctx context.Context, limit time.Duration) (float64, error) {
	deadline := time.Now().Add(limit)
	for {
		bans, err := d.settle(ctx, "sysban_bans_total", "", 0, 500*time.Millisecond, time.Until(deadline))
		if err != nil {
			return bans, err
		}
		s, err := d.scrape()
		if err != nil {
			return bans, err
		}
		if s.sum("sysban_queue_depth", "") == 0 && s.sum("sysban_bans_total", "") == bans {
			return bans, nil
		}
		if time.Now().After(deadline) {
			return bans, fmt.Errorf("bans still queued after %v", limit)
		}
	}
}

// rss reads VmRSS and VmHWM (bytes) of pid.
func rss(pid int) (cur, peak int64, err error) {
	r, err := rssOf(pid)
	return r.rss, r.hwm, err
}

// poll calls f every interval until it reports done, fails, or limit passes.
func poll(ctx context.Context, limit, interval time.Duration, f func() (bool, error)) error {
	deadline := time.Now().Add(limit)
	var lastErr error
	for {
		done, err := f()
		if done {
			return nil
		}
		lastErr = err
		if time.Now().After(deadline) {
			if lastErr != nil {
				return fmt.Errorf("timed out after %s: %w", limit, lastErr)
			}
			return fmt.Errorf("timed out after %s", limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
	}
}
