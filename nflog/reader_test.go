package nflog

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysban/sysban"
)

// testNS is a network namespace of the test's own, so the rules it logs
// with never touch the host.
type testNS struct {
	name string
	fd   int
}

func newTestNS(t *testing.T) *testNS {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (network namespaces, nftables, NFLOG)")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s not installed", tool)
		}
	}
	name := fmt.Sprintf("sbnflog-%d-%d", os.Getpid(), time.Now().UnixNano()%1e6)
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot create a network namespace: %v: %s", err, out)
	}
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	ns := &testNS{name: name, fd: fd}
	t.Cleanup(func() {
		unix.Close(fd)
		exec.Command("ip", "netns", "del", name).Run()
	})
	ns.run(t, "ip", "link", "set", "lo", "up")
	return ns
}

func (ns *testNS) run(t *testing.T, args ...string) {
	t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", ns.name}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

// sendUDP sends one datagram to 127.0.0.1:port inside ns.
func (ns *testNS) sendUDP(t *testing.T, port int) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread goes with the goroutine
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			errc <- err
			return
		}
		c, err := net.Dial("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		_, err = c.Write([]byte("x"))
		errc <- err
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// recordingSink keeps what it is given.
type recordingSink struct {
	mu     sync.Mutex
	msgs   []string
	banned []string
}

func (s *recordingSink) Handle(m *sysban.Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m.AppName+": "+m.Text)
}

func (s *recordingSink) BannedPacket(jail string, p Packet, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.banned = append(s.banned, fmt.Sprintf("%s %s %d", jail, p.Src, p.DstPort))
}

func (s *recordingSink) snapshot() (msgs, banned []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string{}, s.msgs...), append([]string{}, s.banned...)
}

// TestReaderKernel logs real packets to a group in a namespace and checks
// that the Reader turns each prefix into the right event, counts foreign
// prefixes, and that a second reader of the same group is refused with an
// explanation.
func TestReaderKernel(t *testing.T) {
	ns := newTestNS(t)
	const group = 7422
	ns.run(t, "nft", fmt.Sprintf(`add table inet t
add chain inet t c { type filter hook input priority 0; policy accept; }
add rule inet t c udp dport 9001 log group %[1]d prefix "sysban:probe" snaplen 128
add rule inet t c udp dport 9002 log group %[1]d prefix "sysban:ban:sshd" snaplen 128
add rule inet t c udp dport 9003 log group %[1]d prefix "other" snaplen 128`, group))

	r, err := Open(Options{Group: group, NetNS: ns.fd})
	if err != nil {
		if strings.Contains(err.Error(), "not available") {
			t.Skipf("skipped: %v", err)
		}
		t.Fatalf("Open: %v", err)
	}
	// Only one listener per group: a second is refused, clearly.
	if r2, err := Open(Options{Group: group, NetNS: ns.fd}); err == nil {
		r2.Close()
		t.Error("a second reader of the same group was not refused")
	} else if !strings.Contains(err.Error(), "group 7422") {
		t.Errorf("second reader: unclear error %v", err)
	}

	sink := &recordingSink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, sink) }()

	for _, port := range []int{9001, 9001, 9002, 9003} {
		ns.sendUDP(t, port)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		msgs, banned := sink.snapshot()
		if len(msgs) == 2 && len(banned) == 1 && r.Stats().Foreign == 1 {
			if msgs[0] != "sysban-nflog: probe from 127.0.0.1 to udp port 9001" {
				t.Errorf("probe message %q", msgs[0])
			}
			if banned[0] != "sshd 127.0.0.1 9002" {
				t.Errorf("banned packet %q", banned[0])
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30s: messages %q, banned %q, stats %+v", msgs, banned, r.Stats())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30s of its context's end")
	}
	if st := r.Stats(); st.Packets != 4 || st.Probes != 2 || st.Banned != 1 || st.Malformed != 0 {
		t.Errorf("stats %+v", st)
	}
	// Closed: the group is free again.
	r3, err := Open(Options{Group: group, NetNS: ns.fd})
	if err != nil {
		t.Fatalf("reopen after Run ended: %v", err)
	}
	if err := r3.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
}
