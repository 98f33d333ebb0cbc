package receiver

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// dialLoopback returns both ends of a loopback TCP connection.
func dialLoopback(t testing.TB, network, addr string) (client, server net.Conn) {
	t.Helper()
	ln, err := net.Listen(network, addr)
	if err != nil {
		t.Skipf("no %s loopback: %v", network, err)
	}
	defer ln.Close()
	client, err = net.Dial(network, ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	server, err = ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close(); server.Close() })
	return client, server
}

// diagLoopback opens a loopback connection and a sockDiag to look up its
// peer: the addresses of the server's end.
func diagLoopback(t testing.TB, network, addr string) (d *sockDiag, peer, local netip.AddrPort) {
	t.Helper()
	_, srv := dialLoopback(t, network, addr)
	d, err := newSockDiag()
	if err != nil {
		t.Skipf("sock_diag unavailable: %v", err)
	}
	t.Cleanup(d.close)
	return d, srv.RemoteAddr().(*net.TCPAddr).AddrPort(), srv.LocalAddr().(*net.TCPAddr).AddrPort()
}

// TestPeerUIDOfClosedPeer: a peer that sent and closed before the lookup
// (a time-wait socket now, which the kernel reports with uid 0) has no
// owner, rather than root for an owner.
func TestPeerUIDOfClosedPeer(t *testing.T) {
	client, srv := dialLoopback(t, "tcp4", "127.0.0.1:0")
	d, err := newSockDiag()
	if err != nil {
		t.Skipf("sock_diag unavailable: %v", err)
	}
	t.Cleanup(d.close)
	peer, local := srv.RemoteAddr().(*net.TCPAddr).AddrPort(), srv.LocalAddr().(*net.TCPAddr).AddrPort()
	client.Write([]byte("x"))
	client.Close()
	// The client's FIN has arrived (and been acknowledged) once our end
	// reads EOF: its socket is a time-wait socket from then on.
	srv.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := io.ReadAll(srv); err != nil {
		t.Fatal(err)
	}
	if uid, err := d.uid(unix.IPPROTO_TCP, peer, local); !errors.Is(err, errNoSocket) {
		t.Errorf("closed peer: uid %d, err %v; want errNoSocket (no owner)", uid, err)
	}
}

func TestPeerUIDFromSockDiag(t *testing.T) {
	for _, tc := range []struct{ network, addr string }{{"tcp4", "127.0.0.1:0"}, {"tcp6", "[::1]:0"}} {
		t.Run(tc.network, func(t *testing.T) {
			d, peer, local := diagLoopback(t, tc.network, tc.addr)
			uid, err := d.uid(unix.IPPROTO_TCP, peer, local)
			if err != nil {
				t.Fatal(err)
			}
			if want := uint32(os.Geteuid()); uid != want {
				t.Errorf("uid %d, want %d (ours)", uid, want)
			}
			// A tuple nobody holds is not found, and says so.
			gone := netip.AddrPortFrom(peer.Addr(), peer.Port()^0x5555)
			if _, err := d.uid(unix.IPPROTO_TCP, gone, local); err == nil {
				t.Errorf("lookup of %v found a socket", gone)
			}
		})
	}
}

// BenchmarkPeerUID is the cost sock_diag adds to each accepted loopback
// connection (and would add to each UDP datagram, were it looked up per
// datagram).
func BenchmarkPeerUID(b *testing.B) {
	d, peer, local := diagLoopback(b, "tcp4", "127.0.0.1:0")
	for b.Loop() {
		if _, err := d.uid(unix.IPPROTO_TCP, peer, local); err != nil {
			b.Fatal(err)
		}
	}
}
