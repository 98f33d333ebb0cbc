package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestIntakeNotBlinded: idle connections cannot shut out a forwarder.
// 1,100 idle connections from 110 loopback addresses fill the TCP
// listener's 1,024 slots, and 16 more from 127.0.0.1 held by user nobody
// fill nobody's per-source share of 127.0.0.1; the real rsyslog, whose
// connection the flood evicted, still delivers through the shipped
// forwarder file, and the attacker in its lines is banned, with the
// listener still full and no idle connection timed out: eviction let it in.
// The metrics show the evictions.
func TestIntakeNotBlinded(t *testing.T) {
	const (
		sources   = 110
		perSource = 10
		nobodyN   = 16
	)
	// Our end of 1,116 connections, the daemon's end in its own process.
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err == nil && lim.Cur < 8192 {
		lim.Cur = min(max(lim.Max, 8192), 1<<20)
		lim.Max = max(lim.Max, lim.Cur)
		if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
			t.Skipf("cannot raise RLIMIT_NOFILE to 8192 for 1,116 connections: %v", err)
		}
	}
	// No idle connection times out during the test (firstframetimeout far
	// beyond it), so the only way for rsyslog's lines in is eviction.
	w := newWorld(t, worldOptions{extra: "  maxconnections: 1024\n  maxconnectionspersource: 16\n  firstframetimeout: 1h\n"})
	rsock := w.rsyslogTrusted()
	// rsyslog opens its connection before the flood, which evicts it.
	w.logger("-u", rsock, "-t", "test", "--", "before the flood")
	w.waitFor("rsyslog's connection", eventually, func() bool {
		v, _ := findMetric(w.scrape(), "sysban_messages_received_total", `listener="tcp:127.0.0.1:5514"`)
		return v >= 1
	})

	target := fmt.Sprintf("127.0.0.1:%d", w.tcpPort)
	var held []net.Conn
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	if err := inNS(w.srv, func() error {
		for i := range sources * perSource {
			src := net.IPv4(127, 0, 0, byte(2+i/perSource))
			d := net.Dialer{LocalAddr: &net.TCPAddr{IP: src}, Timeout: eventually}
			c, err := d.Dial("tcp", target)
			if err != nil {
				return fmt.Errorf("idle connection %d from %v: %w", i, src, err)
			}
			held = append(held, c)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	w.holdAsNobody(nobodyN, target)
	// Every slot taken, every connection beyond 1,024 of ours,
	// nobody's and rsyslog's evicted.
	const want = sources*perSource + nobodyN + 1 - 1024
	w.waitFor("the listener full", eventually, func() bool {
		text := w.scrape()
		open, _ := findMetric(text, "sysban_listener_connections", `listener="tcp:127.0.0.1:5514"`)
		evicted, _ := findMetric(text, "sysban_messages_dropped_total", `listener="tcp:127.0.0.1:5514",reason="connection_limit"`)
		return open == 1024 && evicted == want
	})
	if n := w.inSrv("sh", "-c", "ss -Htnp state established dport = :5514 | grep -c socat || true"); strings.TrimSpace(n) != fmt.Sprint(nobodyN) {
		t.Fatalf("%s of nobody's %d connections open, want all", strings.TrimSpace(n), nobodyN)
	}

	attacker := outsideV4[0]
	began := time.Now()
	for _, line := range failures(attacker, 3) {
		w.inSrv(w.sshdLogger(), "-u", rsock, "-t", "sshd", "-p", "authpriv.info", "--", line)
	}
	w.waitFor(attacker+" banned", eventually, func() bool { return w.isBanned("sshd_v4", attacker) })
	took := time.Since(began)
	text := w.scrape()
	evicted, _ := findMetric(text, "sysban_messages_dropped_total", `listener="tcp:127.0.0.1:5514",reason="connection_limit"`)
	timedOut, _ := findMetric(text, "sysban_messages_dropped_total", `listener="tcp:127.0.0.1:5514",reason="first_frame_timeout"`)
	t.Logf("banned %v after the first line, through %d idle connections; connection_limit evictions %v", took.Round(time.Millisecond), len(held)+nobodyN, evicted)
	// The ban came through a full listener: no slot was freed by a timeout.
	if open, _ := findMetric(text, "sysban_listener_connections", `listener="tcp:127.0.0.1:5514"`); open != 1024 || timedOut != 0 {
		t.Errorf("at the ban: %v connections open, %v first-frame timeouts; want the listener full (1024) and none timed out", open, timedOut)
	}
	if evicted < want+1 { // and one more for rsyslog's return
		t.Errorf("connection_limit evictions = %v, want at least %d", evicted, want+1)
	}
	w.alive()
}

// TestPerUIDSourceLimit: on loopback the per-source bound counts per user:
// nobody filling its 16 connections from 127.0.0.1 evicts its own, never
// root's.
func TestPerUIDSourceLimit(t *testing.T) {
	w := newWorld(t, worldOptions{extra: "  maxconnectionspersource: 4\n"})
	target := fmt.Sprintf("127.0.0.1:%d", w.tcpPort)
	var mine net.Conn
	if err := inNS(w.srv, func() error {
		var err error
		mine, err = net.DialTimeout("tcp", target, eventually)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer mine.Close()
	w.holdAsNobody(6, target)
	w.waitFor("two of nobody's connections evicted", eventually, func() bool {
		v, _ := findMetric(w.scrape(), "sysban_messages_dropped_total", `listener="tcp:127.0.0.1:5514",reason="source_connection_limit"`)
		return v == 2
	})
	// Root's connection, the oldest and silent, was not among them.
	mine.SetDeadline(time.Now().Add(eventually))
	if _, err := fmt.Fprintf(mine, "<38>1 - h sshd 1 - - %s\n", failures(outsideV4[1], 1)[0]); err != nil {
		t.Fatal(err)
	}
	w.waitFor("root's message", eventually, func() bool {
		v, _ := findMetric(w.scrape(), "sysban_failures_total", `jail="sshd"`)
		return v == 1
	})
}

// holdAsNobody opens n idle connections to target (in the server
// namespace) owned by user nobody: socat processes running as uid 65534,
// each holding one while its stdin stays open, until the test ends.
func (w *world) holdAsNobody(n int, target string) {
	t := w.t
	t.Helper()
	stdin, hold, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stdin.Close(); hold.Close() })
	out := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("socat:\n%s", out.String())
		}
	})
	for range n {
		// ip netns exec needs root: drop to nobody after it.
		cmd := exec.Command("ip", "netns", "exec", w.srv, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			"socat", "-u", "STDIN", "TCP:"+target)
		cmd.Stdin, cmd.Stderr = stdin, out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	}
}
