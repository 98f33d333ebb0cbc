package receiver

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// collector is a Handler that keeps copies of what it got.
type collector struct {
	mu   sync.Mutex
	msgs []sysban.Message
}

func (c *collector) Handle(m *sysban.Message) {
	c.mu.Lock()
	c.msgs = append(c.msgs, *m)
	c.mu.Unlock()
}

func (c *collector) snapshot() []sysban.Message {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]sysban.Message(nil), c.msgs...)
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (c *collector) waitN(t *testing.T, n int) []sysban.Message {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d messages", n), func() bool { return len(c.snapshot()) >= n })
	return c.snapshot()
}

type running struct {
	once   sync.Once
	r      *Receiver
	c      *collector
	cancel context.CancelFunc
	done   chan error
}

// start runs a receiver on specs and stops it (checking Run's result) when
// the test ends.
func start(t *testing.T, specs []ListenerSpec, opts Options) *running {
	t.Helper()
	c := &collector{}
	if opts.Now == nil {
		opts.Now = func() time.Time { return testNow }
	}
	r, err := New(specs, c, opts)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return runReceiver(t, r, c)
}

// runReceiver runs r, made by New with c as its Handler, and stops it
// (checking Run's result) when the test ends.
func runReceiver(t *testing.T, r *Receiver, c *collector) *running {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	rr := &running{r: r, c: c, cancel: cancel, done: done}
	t.Cleanup(func() { rr.stop(t) })
	return rr
}

func (rr *running) stop(t *testing.T) {
	rr.once.Do(func() {
		rr.cancel()
		select {
		case err := <-rr.done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
	})
}

func (rr *running) stats(i int) ListenerStats { return rr.r.Stats()[i] }

func dial(t *testing.T, network string, addr net.Addr) net.Conn {
	t.Helper()
	c, err := net.Dial(network, addr.String())
	if err != nil {
		t.Fatalf("dial %s %s: %v", network, addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func sockPath(t *testing.T, name string) string {
	// Unix socket paths are limited to 108 bytes; t.TempDir can be long.
	dir, err := os.MkdirTemp("", "rcv")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "sub", name)
}

const sshLine = "<38>Nov 21 18:40:46 web1 sshd[1234]: Failed password for root from 203.0.113.7 port 52144 ssh2"

func TestUDPReceive(t *testing.T) {
	rr := start(t, []ListenerSpec{{UDP, "127.0.0.1:0"}}, Options{})
	c := dial(t, "udp", rr.r.Addrs()[0])
	for _, d := range []string{sshLine + "\n", "<13>a\n<14>b\n", "<13>multi\nline"} {
		if _, err := c.Write([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	msgs := rr.c.waitN(t, 4)
	m := msgs[0]
	if m.Hostname != "web1" || m.AppName != "sshd" || m.ProcID != "1234" || !strings.HasPrefix(m.Text, "Failed password") {
		t.Errorf("bad message %+v", m)
	}
	if m.Listener != "udp:127.0.0.1:0" || m.Sender.Addr() != netip.MustParseAddr("127.0.0.1") || m.Sender.Port() == 0 || !m.Received.Equal(testNow) {
		t.Errorf("bad socket fields: listener %q sender %v received %v", m.Listener, m.Sender, m.Received)
	}
	var texts []string
	for _, m := range msgs[1:] {
		texts = append(texts, m.Text)
	}
	if strings.Join(texts, "|") != "a|b|multi\nline" {
		t.Errorf("texts = %q", texts)
	}
	if st := rr.stats(0); st.Received != 4 || st.ParseErrors != 0 {
		t.Errorf("stats = %+v", st)
	}
}

func TestUDPHostileKeepsListenerAlive(t *testing.T) {
	rr := start(t, []ListenerSpec{{UDP, "127.0.0.1:0"}}, Options{MaxMessageSize: 1024})
	c := dial(t, "udp", rr.r.Addrs()[0])
	hostile := []string{"<13>", "", "<>", "<999>", strings.Repeat("\xff\x00<", 700), "\x00\x00\x00", "     ",
		`<13>1 2026-11-21T18:40:46Z h a 1 - [x@1 a="`, "99999999999 ", strings.Repeat("A", 5000)}
	for _, d := range hostile {
		if _, err := c.Write([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	c.Write([]byte(sshLine))
	waitFor(t, "the valid line after hostile ones", func() bool {
		for _, m := range rr.c.snapshot() {
			if m.AppName == "sshd" {
				return true
			}
		}
		return false
	})
	st := rr.stats(0)
	if st.Dropped[ReasonEmpty] != 2 || st.Dropped[ReasonTooLarge] != 2 {
		t.Errorf("dropped = %v, want 2 empty (\"\", NULs) and 2 too_large", st.Dropped)
	}
	// "<13>", "<>", "<999>", "     ", SD open, "99999999999 " are delivered
	// with a parse error so their text is not lost.
	if st.ParseErrors != 6 || st.Received != 7 {
		t.Errorf("stats = %+v, want 6 parse errors and 7 received", st)
	}
}

func TestUDPAllowlist(t *testing.T) {
	rr := start(t, []ListenerSpec{{UDP, "127.0.0.1:0"}, {UDP, "[::1]:0"}},
		Options{Allow: []netip.Prefix{netip.MustParsePrefix("::1/128")}})
	c4 := dial(t, "udp", rr.r.Addrs()[0])
	c6, err := net.Dial("udp", rr.r.Addrs()[1].String())
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	defer c6.Close()
	c4.Write([]byte(sshLine))
	c6.Write([]byte(sshLine))
	rr.c.waitN(t, 1)
	waitFor(t, "the v4 drop", func() bool { return rr.stats(0).Dropped[ReasonSenderNotAllowed] == 1 })
	if got := rr.c.snapshot(); len(got) != 1 || got[0].Sender.Addr() != netip.IPv6Loopback() {
		t.Errorf("got %+v, want one message from ::1", got)
	}
	// A reload's list applies to the next message.
	rr.r.SetAllow([]netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")})
	c4.Write([]byte(sshLine))
	rr.c.waitN(t, 2)
	if got := rr.c.snapshot(); got[1].Sender.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("after SetAllow got %+v, want a message from 127.0.0.1", got[1])
	}
}

func TestAllowedUnmapsIPv4(t *testing.T) {
	r := &Receiver{}
	r.SetAllow([]netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")})
	for addr, want := range map[string]bool{"192.0.2.7": true, "::ffff:192.0.2.7": true, "198.51.100.1": false, "::1": false} {
		if got := r.allowed(netip.MustParseAddr(addr)); got != want {
			t.Errorf("allowed(%s) = %v, want %v", addr, got, want)
		}
	}
	r.SetAllow(nil)
	if !r.allowed(netip.MustParseAddr("127.0.0.2")) || !r.allowed(netip.IPv6Loopback()) || r.allowed(netip.MustParseAddr("192.0.2.1")) {
		t.Error("default allowlist is not loopback only")
	}
}

func TestTCPReceive(t *testing.T) {
	rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}}, Options{MaxMessageSize: 256})
	c := dial(t, "tcp", rr.r.Addrs()[0])
	big := "<13>" + strings.Repeat("x", 300)
	stream := fmt.Sprintf("%d %s", len(sshLine), sshLine) + "junk<13>lf frame\n" + big + "\n" +
		fmt.Sprintf("%d %s", len(big), big) + "7 <14>oct"
	// Write in small pieces so frames straddle reads.
	for i := 0; i < len(stream); i += 13 {
		if _, err := c.Write([]byte(stream[i:min(i+13, len(stream))])); err != nil {
			t.Fatal(err)
		}
	}
	msgs := rr.c.waitN(t, 3)
	if msgs[0].AppName != "sshd" || msgs[1].Text != "lf frame" || msgs[2].Text != "oct" {
		t.Errorf("messages = %+v", msgs)
	}
	st := rr.stats(0)
	if st.Dropped[ReasonTooLarge] != 2 || st.Dropped[ReasonGarbage] != 1 || st.Connections != 1 {
		t.Errorf("stats = %+v", st)
	}
	if msgs[0].Sender.Addr() != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("sender = %v", msgs[0].Sender)
	}
}

func TestTCPAllowlistClosesConnection(t *testing.T) {
	rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}}, Options{Allow: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}})
	c := dial(t, "tcp", rr.r.Addrs()[0])
	if !closedByServer(c) {
		t.Fatal("connection from a sender not allowed stayed open")
	}
	if st := rr.stats(0); st.Dropped[ReasonSenderNotAllowed] != 1 {
		t.Errorf("stats = %+v", st)
	}
}

// At MaxConnections a new connection evicts the one silent longest.
func TestTCPMaxConnections(t *testing.T) {
	rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}}, Options{MaxConnections: 2})
	a := dial(t, "tcp", rr.r.Addrs()[0])
	b := dial(t, "tcp", rr.r.Addrs()[0])
	waitFor(t, "two connections", func() bool { return rr.stats(0).Connections == 2 })
	a.Write([]byte("<13>a\n"))
	rr.c.waitN(t, 1)
	newcomer := dial(t, "tcp", rr.r.Addrs()[0])
	if !closedByServer(b) {
		t.Fatal("the silent connection was not evicted")
	}
	waitFor(t, "connection_limit count", func() bool { return rr.stats(0).Dropped[ReasonConnectionLimit] == 1 })
	newcomer.Write([]byte("<13>new\n"))
	a.Write([]byte("<13>a2\n"))
	rr.c.waitN(t, 3)
	if n := rr.stats(0).Connections; n != 2 {
		t.Errorf("connections = %d, want 2", n)
	}
}

func TestIdleTimeout(t *testing.T) {
	rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}}, Options{IdleTimeout: 50 * time.Millisecond})
	c := dial(t, "tcp", rr.r.Addrs()[0])
	c.Write([]byte("<13>a\n"))
	rr.c.waitN(t, 1)
	c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("idle connection not closed by the server: %v", err)
	}
	waitFor(t, "connection count to drop", func() bool { return rr.stats(0).Connections == 0 })
}

func TestUnixgramReceive(t *testing.T) {
	path := sockPath(t, "log.sock")
	rr := start(t, []ListenerSpec{{UnixGram, path}}, Options{})
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want 0660", fi.Mode().Perm())
	}
	c := dial(t, "unixgram", rr.r.Addrs()[0])
	c.Write([]byte("<83>Nov 21 18:40:46 sshd-session[77]: error: PAM: Authentication failure\x00"))
	c.Write([]byte{})
	c.Write([]byte("<13>"))
	msgs := rr.c.waitN(t, 2)
	m := msgs[0]
	if m.Hostname != "" || m.AppName != "sshd-session" || m.ProcID != "77" || m.Text != "error: PAM: Authentication failure" || m.Sender.IsValid() {
		t.Errorf("bad message %+v", m)
	}
	rr.stop(t)
	if _, err := os.Lstat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket file left behind: %v", err)
	}
}

func TestUnixStreamReceive(t *testing.T) {
	path := sockPath(t, "stream.sock")
	rr := start(t, []ListenerSpec{{UnixStream, path}}, Options{})
	c := dial(t, "unix", rr.r.Addrs()[0])
	c.Write([]byte("<13>Nov 21 18:40:46 su: one\x00<13>Nov 21 18:40:47 su: two\n"))
	msgs := rr.c.waitN(t, 2)
	if msgs[0].Text != "one" || msgs[1].Text != "two" || msgs[0].AppName != "su" {
		t.Errorf("messages = %+v", msgs)
	}
}

func TestNewErrors(t *testing.T) {
	taken, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	regular := filepath.Join(t.TempDir(), "file")
	os.WriteFile(regular, []byte("keep me"), 0o600)
	tests := []struct {
		spec ListenerSpec
		want string
	}{
		{ListenerSpec{UDP, taken.LocalAddr().String()}, "address already in use"},
		{ListenerSpec{UDP, "localhost:514"}, "bad address"},
		{ListenerSpec{"sctp", "127.0.0.1:1"}, "unknown network"},
		{ListenerSpec{UnixGram, regular}, "not a socket"},
	}
	for _, tc := range tests {
		_, err := New([]ListenerSpec{{TCP, "127.0.0.1:0"}, tc.spec}, &collector{}, Options{})
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), tc.spec.Name()) {
			t.Errorf("New(%v) error = %v, want it to name the listener and say %q", tc.spec, err, tc.want)
		}
	}
	if b, _ := os.ReadFile(regular); string(b) != "keep me" {
		t.Error("a regular file at a socket path was touched")
	}
}

func TestStaleSocketReplaced(t *testing.T) {
	path := sockPath(t, "stale.sock")
	os.MkdirAll(filepath.Dir(path), 0o755)
	old, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	old.Close() // leaves the file behind, as a crashed daemon would
	start(t, []ListenerSpec{{UnixGram, path}}, Options{})
}

func TestRunStopsWithoutLeaks(t *testing.T) {
	before := runtime.NumGoroutine()
	path := sockPath(t, "s.sock")
	c := &collector{}
	r, err := New([]ListenerSpec{{UDP, "127.0.0.1:0"}, {TCP, "127.0.0.1:0"}, {UnixGram, path + "g"}, {UnixStream, path}}, c, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	// Open idle stream connections that the shutdown must close.
	tc, _ := net.Dial("tcp", r.Addrs()[1].String())
	uc, _ := net.Dial("unix", path)
	waitFor(t, "connections", func() bool { s := r.Stats(); return s[1].Connections == 1 && s[3].Connections == 1 })
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run = %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return")
	}
	tc.Close()
	uc.Close()
	waitFor(t, "goroutines to exit", func() bool { return runtime.NumGoroutine() <= before })
}

// TestReservedProgramDropped: a message claiming a program only sysban
// writes is counted and dropped on every kind of listener; the messages
// around it are delivered.
func TestReservedProgramDropped(t *testing.T) {
	rr := start(t, []ListenerSpec{{UDP, "127.0.0.1:0"}, {TCP, "127.0.0.1:0"}},
		Options{ReservedPrograms: []string{"sysban-nflog"}})
	forged := "<38>Nov 21 18:40:46 web1 sysban-nflog: probe from 192.0.2.9 to tcp port 23"
	u := dial(t, "udp", rr.r.Addrs()[0])
	for _, d := range []string{forged, sshLine} {
		if _, err := u.Write([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	c := dial(t, "tcp", rr.r.Addrs()[1])
	if _, err := c.Write([]byte(forged + "\n" + sshLine + "\n")); err != nil {
		t.Fatal(err)
	}
	for _, m := range rr.c.waitN(t, 2) {
		if m.AppName != "sshd" {
			t.Errorf("delivered %+v, want only the sshd lines", m)
		}
	}
	waitFor(t, "both drops counted", func() bool {
		return rr.stats(0).Dropped[ReasonReservedProgram] == 1 && rr.stats(1).Dropped[ReasonReservedProgram] == 1
	})
	for i := range 2 {
		if st := rr.stats(i); st.Received != 1 {
			t.Errorf("listener %d: received %d, want 1 (the sshd line)", i, st.Received)
		}
	}
}

// A message whose header does not parse is delivered as text and counted;
// the first of a burst is logged with the reason, the rest only counted
// (one line per dropLogEvery per listener), so a sender's format mistake
// shows up in the log without flooding it.
func TestParseErrorsLoggedRateLimited(t *testing.T) {
	var logs lockedBuffer
	rr := start(t, []ListenerSpec{{TCP, "127.0.0.1:0"}}, Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	c := dial(t, "tcp", rr.r.Addrs()[0])
	bad := `<38>1 - h sshd 1 - [meta@1 user="say "hi" x"] Failed` + "\n"
	c.Write([]byte(bad + bad + bad + sshLine + "\n"))
	got := rr.c.waitN(t, 4)
	if got[0].AppName != "sshd" || got[0].Text != bad[4:len(bad)-1] {
		t.Errorf("refused message delivered as %+v, want its header fields and all of it as text", got[0])
	}
	if st := rr.stats(0); st.ParseErrors != 3 {
		t.Errorf("parse errors = %d, want 3", st.ParseErrors)
	}
	out := logs.String()
	if n := strings.Count(out, "syslog header not parsed"); n != 1 || !strings.Contains(out, "parse_errors_total=1") || !strings.Contains(out, "parse rfc5424") {
		t.Errorf("parse errors logged %d times, want once with the reason and the total:\n%s", n, out)
	}
}
