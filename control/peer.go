package control

import (
	"context"
	"net"
	"net/http"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// peer is the process at the other end of a control connection, as the
// kernel reports it (SO_PEERCRED): it cannot be forged by the client.
type peer struct {
	uid, pid int
	known    bool
}

type peerKey struct{}

// peerListener accepts unix connections, at most max at a time (Accept
// waits for a slot), and reads each one's peer credentials at accept.
type peerListener struct {
	*net.UnixListener
	slots chan struct{}
}

func newPeerListener(ln *net.UnixListener, max int) *peerListener {
	return &peerListener{UnixListener: ln, slots: make(chan struct{}, max)}
}

func (l *peerListener) Accept() (net.Conn, error) {
	l.slots <- struct{}{}
	c, err := l.UnixListener.AcceptUnix()
	if err != nil {
		<-l.slots
		return nil, err
	}
	pc := &peerConn{UnixConn: c, release: func() { <-l.slots }}
	if raw, err := c.SyscallConn(); err == nil {
		raw.Control(func(fd uintptr) {
			if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
				pc.peer = peer{uid: int(cred.Uid), pid: int(cred.Pid), known: true}
			}
		})
	}
	return pc, nil
}

// peerConn is an accepted connection with its peer and its listener slot.
type peerConn struct {
	*net.UnixConn
	peer    peer
	once    sync.Once
	release func()
}

func (c *peerConn) Close() error {
	err := c.UnixConn.Close()
	c.once.Do(c.release)
	return err
}

// withPeer stores the connection's peer in its context, so handlers can
// refuse strangers and logs can say who banned or unbanned.
func withPeer(ctx context.Context, c net.Conn) context.Context {
	if pc, ok := c.(*peerConn); ok {
		return context.WithValue(ctx, peerKey{}, pc.peer)
	}
	return ctx
}

func peerOf(r *http.Request) peer {
	p, _ := r.Context().Value(peerKey{}).(peer)
	return p
}

// allowPeer refuses callers that are neither root nor the daemon's own
// user. The socket's mode already keeps them out; this holds even if
// someone loosens the mode or the directory by hand.
func allowPeer(next http.Handler) http.Handler {
	self := os.Geteuid()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p := peerOf(r); p.known && p.uid != 0 && p.uid != self {
			writeJSON(w, http.StatusForbidden, errorBody{Error: "control: only root may use the control socket", Code: "forbidden"})
			return
		}
		next.ServeHTTP(w, r)
	})
}
