package fleet

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// linkProxy forwards TCP connections to a server until cut: then it stops
// reading and writing without closing anything, as a link that died
// without a FIN or RST (a cable pulled, a veth set down). Connections made
// after restore are forwarded again.
type linkProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	dead  chan struct{} // closed while cut
	conns []net.Conn
}

func newLinkProxy(t *testing.T, target string) *linkProxy {
	t.Helper()
	// Small receive buffers (set before the connections exist, so that
	// the window stays small): once cut, the client's writes block soon.
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		return c.Control(func(fd uintptr) { _ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
	}}
	ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &linkProxy{ln: ln, target: target}
	t.Cleanup(p.close)
	go p.accept()
	return p
}

func (p *linkProxy) url() string { return "nats://" + p.ln.Addr().String() }

func (p *linkProxy) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			c.Close()
			continue
		}
		p.mu.Lock()
		p.conns = append(p.conns, c, s)
		p.mu.Unlock()
		go p.pump(c, s)
		go p.pump(s, c)
	}
}

// pump copies from src to dst; once the link is cut it stops for good
// (the bytes in flight are lost, as on a dead link).
func (p *linkProxy) pump(dst, src net.Conn) {
	buf := make([]byte, 4096)
	for {
		n, err := src.Read(buf)
		if err != nil {
			return
		}
		p.mu.Lock()
		dead := p.dead
		p.mu.Unlock()
		if dead != nil {
			<-make(chan struct{}) // blocked like the link; ended by close
		}
		if _, err := dst.Write(buf[:n]); err != nil {
			return
		}
	}
}

// cut kills the link of every current connection.
func (p *linkProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dead = make(chan struct{})
}

// restore forwards new connections again (the dead ones stay dead).
func (p *linkProxy) restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.dead = nil
	p.conns = nil
}

func (p *linkProxy) close() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// A decider whose link dies silently while it publishes a storm: the
// client's writes block on the full socket and, once it notices, it
// refuses publications ("outbound buffer limit exceeded": its reconnect
// buffer is off). Every ban must land in the outbox, promptly (not after
// the client's default one-minute write timeout), and reach the bucket once
// the link is back.
func TestDeadLinkPublicationsGoToOutbox(t *testing.T) {
	cc, srv := testServer(t, t.TempDir())
	startNode(t, cc, srv)
	proxy := newLinkProxy(t, strings.TrimPrefix(srv.ClientURL(), "nats://"))
	ac := nodeConfig("hosta", proxy.url())
	ac.Enforce = false
	a := startNode(t, ac, nil)
	eventually(t, "hosta connected", func() bool { return a.connected.Load() })
	b := startNode(t, nodeConfig("hostb", srv.ClientURL()), nil)

	proxy.cut()
	// One batch of large values (three long lines each), more than the
	// socket's buffers take, so that the client's write blocks.
	const n = 3000
	long := strings.Repeat("x", 512)
	bans := make([]sysban.Ban, 0, n)
	for i := range n {
		bans = append(bans, sysban.Ban{Jail: "sshd", Addr: netip.AddrFrom4([4]byte{10, 9, byte(i >> 8), byte(i)}),
			Start: time.Now(), Duration: time.Hour, Failures: 3, Lines: []string{long, long, long}})
	}
	if err := a.Publisher(nopApplier{}).Apply(context.Background(), bans); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	within(t, 30*time.Second, fmt.Sprintf("all %d publications in the outbox", n), func() bool { return a.outboxLen() == n })
	t.Logf("outbox full after %v", time.Since(t0))
	if got := b.local.len(); got != 0 {
		t.Fatalf("hostb got %d bans through a dead link", got)
	}
	proxy.restore()
	within(t, 60*time.Second, fmt.Sprintf("all %d bans on hostb", n), func() bool { return b.local.len() == n })
	within(t, 30*time.Second, "hosta's outbox empty", func() bool { return a.outboxLen() == 0 })
}
