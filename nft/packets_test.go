package nft

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	sysban "github.com/sysban/sysban"
	"golang.org/x/sys/unix"
)

// inNetNS runs fn on a thread switched into ns. Sockets fn creates stay in
// ns and may be used from any goroutine afterwards.
func inNetNS(ns *netNS, fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the runtime discards the thread, and with it the
		// namespace switch, when this goroutine ends.
		runtime.LockOSThread()
		if err := unix.Setns(ns.fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns.name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// silence is how long a connection attempt must go unanswered to count as
// dropped. The SYN-ACK or reset comes from the kernel, not from a
// scheduled process, so on a working path it takes microseconds even on a
// loaded machine; and a test asserting a drop first shows the same path
// answering unbanned.
const silence = time.Second

// dialFrom connects from local to remote inside ns, giving up after wait.
func dialFrom(ns *netNS, local netip.Addr, remote netip.AddrPort, wait time.Duration) error {
	return inNetNS(ns, func() error {
		d := net.Dialer{
			LocalAddr: net.TCPAddrFromAddrPort(netip.AddrPortFrom(local, 0)),
			Timeout:   wait,
		}
		c, err := d.DialContext(context.Background(), "tcp", remote.String())
		if err != nil {
			return err
		}
		return c.Close()
	})
}

// TestRealPackets bans a client of a TCP server across a veth pair between
// two namespaces and checks what the client sees: drop leaves connecting
// unanswered (a timeout), reject refuses (a reset), and a second address of
// the same client, and other ports, are unaffected. Every path is first
// shown to connect unbanned; connections that must work get 30 s.
func TestRealPackets(t *testing.T) {
	srv, cli := newNetNS(t, "s"), newNetNS(t, "c")
	// ip -n NAME is "ip netns exec NAME ip" for ip itself.
	ip := func(args ...string) { t.Helper(); srv.exec(t, append([]string{"ip"}, args...)...) }
	ip("link", "add", "vs", "type", "veth", "peer", "name", "vc", "netns", cli.name)
	ip("addr", "add", "10.99.0.1/24", "dev", "vs")
	ip("addr", "add", "fd99::1/64", "dev", "vs", "nodad")
	ip("link", "set", "vs", "up")
	for _, a := range []string{"10.99.0.2/24", "10.99.0.3/24"} {
		cli.exec(t, "ip", "addr", "add", a, "dev", "vc")
	}
	for _, a := range []string{"fd99::2/64", "fd99::3/64"} {
		cli.exec(t, "ip", "addr", "add", a, "dev", "vc", "nodad")
	}
	cli.exec(t, "ip", "link", "set", "vc", "up")

	const sshPort, webPort = 2222, 8080
	// One listener per family: Go decides whether "tcp" on [::] is dual
	// stack by probing once per process, possibly in a namespace where
	// IPv6 loopback is down.
	for _, l := range []struct{ network, addr string }{
		{"tcp4", fmt.Sprintf("0.0.0.0:%d", sshPort)}, {"tcp6", fmt.Sprintf("[::]:%d", sshPort)},
		{"tcp4", fmt.Sprintf("0.0.0.0:%d", webPort)}, {"tcp6", fmt.Sprintf("[::]:%d", webPort)},
	} {
		listenTCP(t, srv, l.network, l.addr)
	}

	var (
		bad4, good4 = addr("10.99.0.2"), addr("10.99.0.3")
		bad6, good6 = addr("fd99::2"), addr("fd99::3")
		srv4, srv6  = addr("10.99.0.1"), addr("fd99::1")
	)
	to := func(a netip.Addr, port uint16) netip.AddrPort { return netip.AddrPortFrom(a, port) }

	// The link takes a moment to come up; wait until every client connects
	// to both ports.
	for _, c := range []struct{ from, to netip.Addr }{{bad4, srv4}, {good4, srv4}, {bad6, srv6}, {good6, srv6}} {
		for _, port := range []uint16{sshPort, webPort} {
			if err := connects(cli, c.from, to(c.to, port)); err != nil {
				t.Fatalf("%v cannot reach %v before any ban: %v", c.from, to(c.to, port), err)
			}
		}
	}

	b := openIn(t, srv, Options{})
	setup(t, b,
		sysban.JailRule{Name: "ssh", Ports: []sysban.PortRange{pr(sshPort, sshPort)}, Protocol: sysban.TCP, Verdict: sysban.Drop},
		sysban.JailRule{Name: "web", Ports: []sysban.PortRange{pr(webPort, webPort)}, Protocol: sysban.TCP, Verdict: sysban.Reject},
	)
	now := time.Now()
	apply(t, b,
		sysban.Ban{Jail: "ssh", Addr: bad4, Start: now, Duration: time.Hour},
		sysban.Ban{Jail: "ssh", Addr: bad6, Start: now, Duration: time.Hour},
		sysban.Ban{Jail: "web", Addr: bad4, Start: now, Duration: sysban.Permanent},
		sysban.Ban{Jail: "web", Addr: bad6, Start: now, Duration: sysban.Permanent},
	)

	timedOut := func(err error) bool {
		var ne net.Error
		return errors.As(err, &ne) && ne.Timeout()
	}
	refused := func(err error) bool { return errors.Is(err, syscall.ECONNREFUSED) }
	tests := []struct {
		name     string
		from, to netip.AddrPort
		want     func(error) bool // nil: must connect
		wantDesc string
	}{
		{"banned v4 dropped", to(bad4, 0), to(srv4, sshPort), timedOut, "no answer (timeout)"},
		{"banned v6 dropped", to(bad6, 0), to(srv6, sshPort), timedOut, "no answer (timeout)"},
		{"other v4 address passes", to(good4, 0), to(srv4, sshPort), nil, ""},
		{"other v6 address passes", to(good6, 0), to(srv6, sshPort), nil, ""},
		{"banned v4 rejected", to(bad4, 0), to(srv4, webPort), refused, "connection refused (reset)"},
		{"banned v6 rejected", to(bad6, 0), to(srv6, webPort), refused, "connection refused (reset)"},
		{"other v4 address on web passes", to(good4, 0), to(srv4, webPort), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == nil {
				if err := connects(cli, tt.from.Addr(), tt.to); err != nil {
					t.Errorf("dial %v -> %v: %v, want a connection", tt.from.Addr(), tt.to, err)
				}
				return
			}
			// A reset and a timeout are the verdicts' own outcomes: the
			// one cannot be the other slowed down.
			if err := dialFrom(cli, tt.from.Addr(), tt.to, silence); !tt.want(err) {
				t.Errorf("dial %v -> %v: %v, want %s", tt.from.Addr(), tt.to, err, tt.wantDesc)
			}
		})
	}

	// Unbanning restores access.
	if err := b.Remove(testCtx(t), "ssh", singles(bad4)); err != nil {
		t.Fatalf("Remove: %v", err)
	}
	if err := connects(cli, bad4, to(srv4, sshPort)); err != nil {
		t.Errorf("after Remove, dial %v: %v", bad4, err)
	}
}

// connects dials from local to remote in ns until a connection succeeds,
// for up to 30 s (a link coming up, a loaded machine), and returns the
// last error if none did.
func connects(ns *netNS, local netip.Addr, remote netip.AddrPort) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := dialFrom(ns, local, remote, silence)
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
}
