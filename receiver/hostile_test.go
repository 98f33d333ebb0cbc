package receiver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// dialFrom dials addr from a chosen local address (any of 127.0.0.0/8 is
// ours on Linux), so one test can play many sources.
func dialFrom(t *testing.T, network, local string, addr net.Addr) net.Conn {
	t.Helper()
	var la net.Addr
	switch network {
	case "tcp":
		la = &net.TCPAddr{IP: net.ParseIP(local)}
	case "udp":
		la = &net.UDPAddr{IP: net.ParseIP(local)}
	}
	d := net.Dialer{LocalAddr: la, Timeout: 30 * time.Second}
	c, err := d.Dial(network, addr.String())
	if err != nil {
		t.Fatalf("dial %s from %s: %v", addr, local, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// closedByServer reports whether the server closed c (EOF or reset) within
// 30 seconds: a wait for an event, long enough for a loaded CI machine.
func closedByServer(c net.Conn) bool {
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err := c.Read(make([]byte, 1))
	var ne net.Error
	return err != nil && !(errors.As(err, &ne) && ne.Timeout())
}

// startWith runs a receiver with handler h until the test ends.
func startWith(t *testing.T, specs []ListenerSpec, h Handler, opts Options) *Receiver {
	t.Helper()
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	r, err := New(specs, h, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return r
}

// At the per-source bound a new connection evicts that source's
// connection silent longest; other sources keep theirs.
func TestTCPPerSourceLimitEvictsSilentLongest(t *testing.T) {
	rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}}, Options{MaxConnectionsPerSource: 2})
	addr := rr.r.Addrs()[0]
	a := dialFrom(t, "tcp", "127.0.0.1", addr)
	b := dialFrom(t, "tcp", "127.0.0.1", addr)
	other := dialFrom(t, "tcp", "127.0.0.2", addr)
	waitFor(t, "three connections", func() bool { return rr.stats(0).Connections == 3 })
	// a speaks after b connected: b is now the one silent longest.
	a.Write([]byte("<13>a\n"))
	rr.c.waitN(t, 1)
	c := dialFrom(t, "tcp", "127.0.0.1", addr)
	if !closedByServer(b) {
		t.Fatal("the silent connection was not evicted")
	}
	// The count is not ordered with the close b saw: wait for it, then
	// check that it stays at one.
	waitFor(t, "source_connection_limit count", func() bool { return rr.stats(0).Dropped[ReasonSourceConnectionLimit] >= 1 })
	c.Write([]byte("<13>c\n"))
	a.Write([]byte("<13>a2\n"))
	other.Write([]byte("<13>other\n"))
	msgs := rr.c.waitN(t, 4)
	texts := map[string]bool{}
	for _, m := range msgs {
		texts[m.Text] = true
	}
	if !texts["c"] || !texts["a2"] || !texts["other"] {
		t.Errorf("messages after the eviction: %v", texts)
	}
	if st := rr.stats(0); st.Dropped[ReasonSourceConnectionLimit] != 1 || st.Dropped[ReasonConnectionLimit] != 0 || st.Connections != 3 {
		t.Errorf("stats = %+v", st)
	}
}

// A connection that never sends a complete frame is closed after
// FirstFrameTimeout; one that did is kept until IdleTimeout.
func TestTCPFirstFrameTimeout(t *testing.T) {
	// The talker's frame is on the wire before the receiver serves its
	// connection, but the clock starts when it does: only a scheduling
	// stall past the timeout could cut the talker, and under -race on a
	// loaded CI machine 100ms stalls happen, and rarely whole seconds.
	// Two seconds is far beyond that and well inside closedByServer's 30.
	rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}}, Options{FirstFrameTimeout: 2 * time.Second})
	addr := rr.r.Addrs()[0]
	talker := dialFrom(t, "tcp", "127.0.0.1", addr)
	talker.Write([]byte("<13>hello\n"))
	rr.c.waitN(t, 1)
	silent := dialFrom(t, "tcp", "127.0.0.1", addr)
	partial := dialFrom(t, "tcp", "127.0.0.1", addr)
	partial.Write([]byte("<13>never ends"))
	if !closedByServer(silent) || !closedByServer(partial) {
		t.Fatal("a connection without a complete frame outlived FirstFrameTimeout")
	}
	if got := rr.stats(0).Dropped[ReasonFirstFrameTimeout]; got != 2 {
		t.Errorf("first_frame_timeout = %d, want 2", got)
	}
	talker.Write([]byte("<13>still here\n"))
	if m := rr.c.waitN(t, 2)[1]; m.Text != "still here" {
		t.Errorf("talker's second message = %q", m.Text)
	}
}

// A sender that trickles a frame byte by byte keeps resetting the idle
// timeout; the frame timeout closes it anyway and drops the partial frame.
func TestFrameTimeoutSlowloris(t *testing.T) {
	tests := []struct{ name, trickle string }{
		{"lf frame", "<13>" + strings.Repeat("slow", 100)},
		{"octet counted", "400 <13>" + strings.Repeat("slow", 100)},
		{"oversized frame being skipped", "<13>" + strings.Repeat("x", 300) + strings.Repeat("slow", 100)},
		{"garbage", strings.Repeat("slow", 100)},
	}
	const frameTimeout = 300 * time.Millisecond
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}}, Options{
				MaxMessageSize: 256, IdleTimeout: time.Minute, FrameTimeout: frameTimeout,
			})
			c := dial(t, "tcp", rr.r.Addrs()[0])
			// A complete frame first: the clock runs per frame, not per
			// connection.
			c.Write([]byte("<13>complete\n"))
			rr.c.waitN(t, 1)
			began := time.Now()
			stop := make(chan struct{})
			var wg sync.WaitGroup
			wg.Go(func() {
				tick := time.NewTicker(10 * time.Millisecond) // the sender's pace, not a wait
				defer tick.Stop()
				for i := 0; ; i = (i + 1) % len(tc.trickle) {
					if _, err := c.Write([]byte{tc.trickle[i]}); err != nil {
						return
					}
					select {
					case <-stop:
						return
					case <-tick.C:
					}
				}
			})
			defer func() { close(stop); wg.Wait() }()
			if !closedByServer(c) {
				t.Fatal("trickling connection still open after 30s")
			}
			if took := time.Since(began); took < frameTimeout {
				t.Errorf("closed after %v, before the frame timeout", took)
			}
			waitFor(t, "frame_timeout count", func() bool { return rr.stats(0).Dropped[ReasonFrameTimeout] == 1 })
			if msgs := rr.c.snapshot(); len(msgs) != 1 {
				t.Errorf("partial frame delivered: %+v", msgs[1:])
			}
		})
	}
}

// Complete frames sent slowly, for longer than the frame timeout in all,
// keep the connection: the clock runs per frame.
func TestFrameTimeoutSpareSlowCompleteFrames(t *testing.T) {
	// A frame's two writes are 20 ms apart; a second is far beyond any
	// scheduling stall between them.
	const frameTimeout = time.Second
	rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}}, Options{FrameTimeout: frameTimeout})
	c := dial(t, "tcp", rr.r.Addrs()[0])
	began := time.Now()
	for i := 0; time.Since(began) < 2*frameTimeout; i++ {
		// Each frame in two writes 20ms apart; the next frame only once
		// this one is delivered, so each frame takes far less than the
		// frame timeout even on a loaded machine, the frames together
		// twice as long.
		fmt.Fprintf(c, "<13>frame %d", i)
		time.Sleep(20 * time.Millisecond) // the sender's pace, not a wait
		c.Write([]byte("\n"))
		rr.c.waitN(t, i+1)
	}
	if st := rr.stats(0); st.Connections != 1 || st.Dropped[ReasonFrameTimeout] != 0 {
		t.Errorf("stats = %+v, want the connection kept", st)
	}
}

// An oversized frame is logged once with its size, counted, and the
// connection goes on with the next frame.
func TestOversizedFrameKeepsConnection(t *testing.T) {
	var logs lockedBuffer
	rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}}, Options{
		MaxMessageSize: 256, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	c := dial(t, "tcp", rr.r.Addrs()[0])
	big := "<13>" + strings.Repeat("x", 1000)
	fmt.Fprintf(c, "%s\n%d %s%s\n<13>after\n", big, len(big), big, big)
	if m := rr.c.waitN(t, 1)[0]; m.Text != "after" {
		t.Errorf("message = %+v", m)
	}
	if st := rr.stats(0); st.Dropped[ReasonTooLarge] != 3 || st.Connections != 1 {
		t.Errorf("stats = %+v, want 3 too_large and the connection kept", st)
	}
	if n := strings.Count(logs.String(), "dropped oversized frame"); n != 1 || !strings.Contains(logs.String(), "max=256") {
		t.Errorf("oversized frames logged %d times, want once with the limit:\n%s", n, logs.String())
	}
}

// An LF frame cut off at the bound is logged with the bytes seen as a
// lower bound ("size_at_least"), an octet-counted one with its size;
// garbage and empty frames are logged too, each rate-limited.
func TestDropsAreLogged(t *testing.T) {
	for _, tc := range []struct {
		name, send, want string
	}{
		{"unterminated LF frame", "<13>" + strings.Repeat("x", 4000), "size_at_least="},
		{"octet-counted", fmt.Sprintf("%d <13>%s", 4004, strings.Repeat("x", 4000)), "size=4004"},
		{"garbage", "\x00\x01 junk\n<13>after\n", "not a syslog frame"},
		{"empty", "2 \r\n<13>after\n", "empty frame"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs lockedBuffer
			rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}}, Options{
				MaxMessageSize: 256, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			c := dial(t, "tcp", rr.r.Addrs()[0])
			c.Write([]byte(tc.send))
			waitFor(t, "the drop logged", func() bool { return strings.Contains(logs.String(), tc.want) })
		})
	}
}

// textCounter counts delivered messages by the first word of their text.
type textCounter struct{ slow, flood atomic.Int64 }

func (h *textCounter) Handle(m *sysban.Message) {
	if strings.HasPrefix(m.Text, "slow") {
		h.slow.Add(1)
	} else {
		h.flood.Add(1)
	}
}

// floodEnv makes the test binary a UDP flooder (see TestHelperUDPFlooder).
const floodEnv = "SYSBAN_TEST_UDP_FLOOD"

// TestHelperUDPFlooder is not a test: run by TestUDPFloodDoesNotStarve-
// OtherListener as a separate process, it floods the address in floodEnv
// from four sockets until killed. A separate process, because an attacker
// competes with us for the CPU, not for the Go scheduler.
func TestHelperUDPFlooder(t *testing.T) {
	addr := os.Getenv(floodEnv)
	if addr == "" {
		t.Skip("helper process for TestUDPFloodDoesNotStarveOtherListener")
	}
	flood := []byte("<13>Nov 21 18:40:46 web1 sshd[1]: flood " + strings.Repeat("f", 200))
	for i := range 4 {
		c := dialFrom(t, "udp", fmt.Sprintf("127.0.1.%d", i+1), udpAddr(addr))
		go func() {
			for {
				c.Write(flood)
			}
		}()
	}
	// Never outlive the test: stop when the parent closes our stdin (or
	// dies), and after a minute whatever happens.
	done := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute):
	}
}

type udpAddr string

func (a udpAddr) Network() string { return "udp" }
func (a udpAddr) String() string  { return string(a) }

// Flooding one UDP listener from another process must not starve another
// listener: each reads in its own goroutine, so a slow sender on B gets
// every message through, one at a time, while A is saturated.
func TestUDPFloodDoesNotStarveOtherListener(t *testing.T) {
	if testing.Short() {
		t.Skip("floods loopback for a few seconds")
	}
	h := &textCounter{}
	r := startWith(t, []ListenerSpec{{UDP, "127.0.0.1:0"}, {UDP, "127.0.0.2:0"}}, h, Options{})
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperUDPFlooder$")
	cmd.Env = append(os.Environ(), floodEnv+"="+r.Addrs()[0].String())
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start flooder: %v", err)
	}
	t.Cleanup(func() { stdin.Close(); cmd.Process.Kill(); cmd.Wait() })
	// The helper is a fresh process of a (maybe -race) test binary on a
	// maybe loaded machine: give it time to start.
	deadline := time.Now().Add(60 * time.Second)
	for h.flood.Load() < 1000 {
		if time.Now().After(deadline) {
			t.Fatalf("the flooder did not get going: %d messages on A", h.flood.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}

	b := dial(t, "udp", r.Addrs()[1])
	const n = 200
	var worst time.Duration
	floodBefore := h.flood.Load()
	for i := range n {
		began := time.Now()
		fmt.Fprintf(b, "<13>Nov 21 18:40:46 web1 sshd[1]: slow %d", i)
		waitFor(t, fmt.Sprintf("slow message %d on B", i), func() bool { return h.slow.Load() == int64(i+1) })
		worst = max(worst, time.Since(began))
	}
	flooded := h.flood.Load() - floodBefore
	t.Logf("B: %d/%d delivered one at a time, worst %v; A meanwhile delivered %d flood messages", h.slow.Load(), n, worst, flooded)
	if st := r.Stats()[1]; st.Received != n {
		t.Errorf("B received %d, want %d", st.Received, n)
	}
	if flooded < n {
		t.Errorf("A delivered only %d messages while B took %d: was it flooded?", flooded, n)
	}
}

// A thousand idle connections held open on one TCP listener (as many
// sources, each under its per-source limit, and the listener at its
// MaxConnections) do not block accepts on another.
func TestTCPIdleConnectionsDoNotBlockOtherListener(t *testing.T) {
	const held = 1000
	rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}, {TCP, "127.0.0.2:0"}}, Options{MaxConnections: held})
	a := rr.r.Addrs()[0]
	for i := range held {
		dialFrom(t, "tcp", fmt.Sprintf("127.0.%d.%d", 2+i/10, 1+i%10), a)
	}
	waitFor(t, "A full", func() bool { return rr.stats(0).Connections == held })
	dialFrom(t, "tcp", "127.0.9.9", a) // evicts one: A stays full
	waitFor(t, "an eviction on A", func() bool { return rr.stats(0).Dropped[ReasonConnectionLimit] == 1 })
	// The eviction is counted when the old connection is closed, the new
	// one when its serving starts: between the two A may hold one less.
	waitFor(t, "A full again after the eviction", func() bool { return rr.stats(0).Connections == held })
	began := time.Now()
	b := dial(t, "tcp", rr.r.Addrs()[1])
	b.Write([]byte("<13>Nov 21 18:40:46 web1 sshd[1]: through B\n"))
	m := rr.c.waitN(t, 1)[0]
	t.Logf("B delivered %v after connecting, with A holding %d idle connections", time.Since(began), held)
	if m.Text != "through B" || m.Listener != "tcp:127.0.0.2:0" {
		t.Errorf("message = %+v", m)
	}
	if st := rr.stats(0); st.Dropped[ReasonConnectionLimit] != 1 {
		t.Errorf("A dropped = %v, want one connection_limit", st.Dropped)
	}
}

func TestUDPRateLimitPerSender(t *testing.T) {
	var now atomic.Int64
	now.Store(testNow.UnixNano())
	rr := start(t, []ListenerSpec{{UDP, "127.0.0.1:0"}}, Options{
		RatePerSender: 2, RateBurst: 5,
		Now: func() time.Time { return time.Unix(0, now.Load()) },
	})
	addr := rr.r.Addrs()[0]
	processed := func() uint64 { st := rr.stats(0); return st.Received + st.Dropped[ReasonRateLimited] }
	send := func(c net.Conn, n int) {
		want := processed() + uint64(n)
		for range n {
			c.Write([]byte(sshLine))
		}
		waitFor(t, "the datagrams to be handled", func() bool { return processed() == want })
	}
	a := dialFrom(t, "udp", "127.0.0.1", addr)
	b := dialFrom(t, "udp", "127.0.0.2", addr)
	send(a, 8) // the burst of 5 passes, 3 dropped
	send(b, 3) // another sender has its own bucket
	now.Add(int64(time.Second))
	send(a, 3) // one second refills 2
	st := rr.stats(0)
	if st.Received != 5+3+2 || st.Dropped[ReasonRateLimited] != 3+1 {
		t.Errorf("received %d, rate_limited %d; want 10 and 4", st.Received, st.Dropped[ReasonRateLimited])
	}
	// Several messages in one datagram each take a token.
	now.Add(int64(10 * time.Second))
	send(b, 0)
	b.Write([]byte("<13>a\n<13>b\n<13>c\n<13>d\n<13>e\n<13>f\n<13>g"))
	waitFor(t, "batched datagram", func() bool { return processed() == 10+4+7 })
	if got := rr.stats(0).Dropped[ReasonRateLimited]; got != 4+2 {
		t.Errorf("rate_limited = %d after a 7-line datagram with 5 tokens, want 6", got)
	}
}

func TestSenderLimiterBounded(t *testing.T) {
	const sec = int64(time.Second)
	addr := func(i int) netip.Addr { return netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}) }
	tests := []struct {
		name  string
		steps []struct {
			at   int64
			from int
			want bool
		}
		wantTracked int
	}{
		{"own buckets under the bound", []struct {
			at   int64
			from int
			want bool
		}{{0, 1, true}, {0, 1, false}, {0, 2, true}, {0, 2, false}}, 2},
		{"full map: newcomers share the overflow bucket", []struct {
			at   int64
			from int
			want bool
		}{{0, 1, true}, {0, 2, true}, {0, 3, true}, {0, 4, false}, {0, 1, false}}, 2},
		{"refilled buckets are swept to make room", []struct {
			at   int64
			from int
			want bool
		}{{0, 1, true}, {0, 2, true}, {2 * sec, 3, true}, {2 * sec, 4, true}}, 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := newSenderLimiter(1, 1, 2)
			for i, s := range tc.steps {
				if got := l.allow(addr(s.from), 1+s.at); got != s.want {
					t.Errorf("step %d (sender %d at %ds): allow = %v, want %v", i, s.from, s.at/sec, got, s.want)
				}
			}
			if len(l.buckets) != tc.wantTracked {
				t.Errorf("tracking %d senders, want %d (bound 2)", len(l.buckets), tc.wantTracked)
			}
		})
	}
	if newSenderLimiter(0, 5, 10) != nil {
		t.Error("rate 0 must mean no limiter")
	}
}

// localRemoteAddr is a non-loopback address of this host, for playing a
// remote sender; tests skip without one.
func localRemoteAddr(t *testing.T) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skipf("interface addresses: %v", err)
	}
	for _, a := range addrs {
		if p, err := netip.ParsePrefix(a.String()); err == nil && p.Addr().Is4() && !p.Addr().IsLoopback() {
			return p.Addr()
		}
	}
	t.Skip("no non-loopback IPv4 address to send from")
	return netip.Addr{}
}

func TestRemoteStreamOnly(t *testing.T) {
	remote := localRemoteAddr(t)
	allow := []netip.Prefix{netip.PrefixFrom(remote, 32), netip.MustParsePrefix("127.0.0.0/8")}
	for _, on := range []bool{false, true} {
		t.Run(fmt.Sprintf("RemoteStreamOnly=%v", on), func(t *testing.T) {
			rr := start(t, []ListenerSpec{{UDP, remote.String() + ":0"}, {UDP, "127.0.0.1:0"}, {TCP, remote.String() + ":0"}},
				Options{Allow: allow, RemoteStreamOnly: on})
			dialFrom(t, "udp", remote.String(), rr.r.Addrs()[0]).Write([]byte("<13>remote udp"))
			dialFrom(t, "udp", "127.0.0.1", rr.r.Addrs()[1]).Write([]byte("<13>local udp"))
			dialFrom(t, "tcp", remote.String(), rr.r.Addrs()[2]).Write([]byte("<13>remote tcp\n"))
			want := 3
			if on {
				want = 2
				waitFor(t, "the remote datagram refused", func() bool { return rr.stats(0).Dropped[ReasonUDPRemoteRefused] == 1 })
			}
			got := rr.c.waitN(t, want)
			texts := map[string]bool{}
			for _, m := range got {
				texts[m.Text] = true
			}
			if !texts["local udp"] || !texts["remote tcp"] || texts["remote udp"] == on {
				t.Errorf("delivered %v", texts)
			}
		})
	}
}

// Oversized frames are logged per listener, not per connection: a sender
// opening connection after connection cannot flood the log. The count
// still has every one.
func TestOversizedFramesLoggedPerListener(t *testing.T) {
	var logs lockedBuffer
	rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}, {UDP, "127.0.0.1:0"}}, Options{
		MaxMessageSize: 256, Logger: slog.New(slog.NewTextHandler(&logs, nil)),
	})
	big := "<13>" + strings.Repeat("x", 1000)
	for i := 0; i < 3; i++ {
		c := dial(t, "tcp", rr.r.Addrs()[0])
		fmt.Fprintf(c, "%s\n<13>after%d\n", big, i)
	}
	u := dial(t, "udp", rr.r.Addrs()[1])
	for i := 0; i < 3; i++ {
		u.Write([]byte(big))
	}
	waitFor(t, "every oversized frame counted", func() bool {
		return rr.stats(0).Dropped[ReasonTooLarge] == 3 && rr.stats(1).Dropped[ReasonTooLarge] == 3
	})
	if n := strings.Count(logs.String(), "dropped oversized frame"); n != 1 {
		t.Errorf("oversized TCP frames on 3 connections logged %d times, want once per listener:\n%s", n, logs.String())
	}
	if n := strings.Count(logs.String(), "dropped oversized datagram"); n != 1 || !strings.Contains(logs.String(), "dropped_total=") {
		t.Errorf("oversized datagrams logged %d times, want once with the running total:\n%s", n, logs.String())
	}
}
