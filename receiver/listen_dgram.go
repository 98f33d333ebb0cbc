package receiver

// Where the listener code comes from, and why.
//
// gopkg.in/mcuadros/go-syslog.v2 is the design's syslog server library. Its
// extension point, format.Format (GetParser + GetSplitFunc), is what we keep:
// Format in format.go implements it with our RFC 6587 splitter and our parser
// (leodido/go-syslog/v4 machines behind our own PRI/time handling), and every
// listener here frames and parses through that same Format.
//
// The socket side is ours because v2.3.0's server cannot be made safe for a
// front door that attackers write into: its RFC 3164 parser panics on the
// 4-byte datagram "<13>"; it pins SO_RCVBUF to 64 KiB and funnels every
// datagram through one parse goroutine behind a 10-slot channel (40% loss at
// 100k msg/s); it keeps only the first line of a datagram; it reads streams
// with a default bufio.Scanner, so a frame over 64 KiB resets the connection
// and loses what follows; lastError is a data race; Kill can panic (closes
// the datagram channel while a reader may still send) and leaks idle TCP
// connections; and it takes no net.Listener, so connection limits, sender
// allowlists and idle timeouts cannot be added. Here instead: one goroutine
// per datagram socket, on udp reading batches with recvmmsg into buffers
// and headers made once (dgram_batch.go says why not x/net's ReadBatch),
// with a configurable receive buffer, and calling the Handler inline; one
// goroutine per stream connection with limits, timeouts and a clean
// shutdown that waits for every goroutine.

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysban/sysban"
)

// batchSize is how many datagrams one recvmmsg call may return.
const batchSize = 64

type dgramListener struct {
	r    *Receiver
	s    ListenerSpec
	name string
	conn net.PacketConn
	path string // unix socket file to remove on close
	c    counters

	limiter *senderLimiter // nil unless udp with Options.RatePerSender
}

func (l *dgramListener) addr() net.Addr     { return l.conn.LocalAddr() }
func (l *dgramListener) stats() *counters   { return &l.c }
func (l *dgramListener) spec() ListenerSpec { return l.s }

func (l *dgramListener) close() error {
	err := l.conn.Close()
	if l.path != "" {
		// net does not unlink datagram socket files; leave no stale one.
		if rerr := os.Remove(l.path); rerr != nil && !errors.Is(rerr, os.ErrNotExist) && err == nil {
			err = rerr
		}
	}
	if isClosedErr(err) {
		return nil
	}
	return err
}

func (r *Receiver) bindUDP(s ListenerSpec) (listener, error) {
	ap, err := netip.ParseAddrPort(s.Address)
	if err != nil {
		return nil, fmt.Errorf("bad address: %w", err)
	}
	conn, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(ap))
	if err != nil {
		return nil, err
	}
	if err := setRcvBuf(conn, r.opts.ReadBuffer); err != nil {
		conn.Close()
		return nil, err
	}
	return &dgramListener{r: r, s: s, name: s.Name(), conn: conn,
		limiter: newSenderLimiter(r.opts.RatePerSender, r.opts.RateBurst, r.opts.RateMaxSenders)}, nil
}

func (r *Receiver) bindUnixgram(s ListenerSpec) (listener, error) {
	if err := prepareSocketPath(s.Address); err != nil {
		return nil, err
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: s.Address, Net: "unixgram"})
	if err != nil {
		return nil, err
	}
	if err := r.socketPerm(s.Address); err != nil {
		conn.Close()
		os.Remove(s.Address)
		return nil, err
	}
	if err := setRcvBuf(conn, r.opts.ReadBuffer); err != nil {
		conn.Close()
		os.Remove(s.Address)
		return nil, err
	}
	if err := passCreds(conn); err != nil {
		conn.Close()
		os.Remove(s.Address)
		return nil, fmt.Errorf("SO_PASSCRED: %w", err)
	}
	return &dgramListener{r: r, s: s, name: s.Name(), conn: conn, path: s.Address}, nil
}

// prepareSocketPath creates the socket's directory and removes a stale
// socket left by a previous run. Anything else at the path is an error: we
// must never delete a regular file because a config named it.
func prepareSocketPath(path string) error {
	if path == "" || path[0] == '@' {
		return nil // abstract socket: nothing on disk
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create socket directory: %w", err)
	}
	fi, err := os.Lstat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil
	case err != nil:
		return fmt.Errorf("stat socket path: %w", err)
	case fi.Mode()&os.ModeSocket == 0:
		return fmt.Errorf("%s exists and is not a socket", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("remove stale socket: %w", err)
	}
	return nil
}

// socketPerm gives a unix socket file Options.SocketMode and
// Options.SocketGroup.
func (r *Receiver) socketPerm(path string) error {
	if err := os.Chmod(path, r.opts.SocketMode); err != nil {
		return fmt.Errorf("chmod socket: %w", err)
	}
	if r.opts.SocketGroup > 0 {
		if err := os.Chown(path, -1, r.opts.SocketGroup); err != nil {
			return fmt.Errorf("chown socket to group %d: %w", r.opts.SocketGroup, err)
		}
	}
	return nil
}

// setRcvBuf sizes the kernel receive queue so bursts survive while the
// handler is busy. SO_RCVBUFFORCE needs CAP_NET_ADMIN but ignores
// net.core.rmem_max; without it SO_RCVBUF is capped by rmem_max.
func setRcvBuf(conn interface {
	SyscallConn() (syscall.RawConn, error)
}, size int) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return fmt.Errorf("receive buffer: %w", err)
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, size) == nil {
			return
		}
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, size)
	})
	if err == nil {
		err = serr
	}
	if err != nil {
		return fmt.Errorf("set receive buffer to %d: %w", size, err)
	}
	return nil
}

func (l *dgramListener) serve(ctx context.Context) {
	log := l.r.opts.Logger.With("listener", l.name)
	// One extra byte tells a datagram of exactly MaxMessageSize from a
	// truncated larger one.
	bufSize := l.r.opts.MaxMessageSize + 1
	if udp, ok := l.conn.(*net.UDPConn); ok {
		l.serveUDP(ctx, udp, bufSize, log)
		return
	}
	l.serveUnix(ctx, bufSize, log)
}

// serveUDP reads batches of datagrams (dgram_batch.go) and delivers them
// in order; when the queue is empty it parks on the runtime's poller.
func (l *dgramListener) serveUDP(ctx context.Context, udp *net.UDPConn, bufSize int, log interface {
	Error(string, ...any)
}) {
	rc, err := udp.SyscallConn()
	if err != nil {
		log.Error("receiver: udp socket", "err", err)
		return
	}
	p := l.r.format.newParser()
	var m sysban.Message
	b := newUDPBatch(batchSize, bufSize)
	defer b.release()
	var (
		n    int
		rerr error
	)
	// Made once: a closure per read would be an allocation per batch.
	// Returning false on EAGAIN makes RawConn.Read wait until the socket
	// is readable and call it again.
	recv := func(fd uintptr) bool {
		n, rerr = b.recv(fd)
		return rerr != unix.EAGAIN
	}
	for {
		err := rc.Read(recv)
		if err == nil && rerr == unix.EINTR {
			continue
		}
		if err == nil {
			err = rerr
		}
		if err != nil {
			if ctx.Err() != nil || isClosedErr(err) {
				return
			}
			log.Error("receiver: read batch", "err", err)
			if !pause(ctx, 10*time.Millisecond) {
				return
			}
			continue
		}
		// One clock read per batch: the batch arrived together, and a read
		// per message was a fifth of the receive path's CPU.
		now := l.r.format.now()
		for i := range n {
			data, truncated := b.datagram(i)
			l.handleDatagram(p, &m, data, truncated, now, b.sender(i), nil)
		}
	}
}

func (l *dgramListener) serveUnix(ctx context.Context, bufSize int, log interface {
	Error(string, ...any)
}) {
	uc := l.conn.(*net.UnixConn)
	p := l.r.format.newParser()
	var m sysban.Message
	buf := make([]byte, bufSize)
	oob := make([]byte, credsOOB)
	for {
		n, oobn, flags, _, err := uc.ReadMsgUnix(buf, oob)
		if err != nil {
			if ctx.Err() != nil || isClosedErr(err) {
				return
			}
			log.Error("receiver: read", "err", err)
			if !pause(ctx, 10*time.Millisecond) {
				return
			}
			continue
		}
		creds := l.r.relayed(parseCredsOOB(oob[:oobn]))
		l.handleDatagram(p, &m, buf[:n], n >= bufSize || flags&unix.MSG_TRUNC != 0, l.r.format.now(), netip.AddrPort{}, &creds)
	}
}

// handleDatagram checks and delivers one datagram received at now. creds
// is nil for udp (whose sender is then checked against Options.Allow) and
// the kernel's word on the sender for unix datagrams.
func (l *dgramListener) handleDatagram(p *parser, m *sysban.Message, b []byte, truncated bool, now time.Time, sender netip.AddrPort, creds *peerCreds) {
	if creds == nil {
		if !l.r.allowed(sender.Addr()) {
			l.r.refuse(&l.c, l.name, sender)
			return
		}
		if l.r.opts.RemoteStreamOnly && !sender.Addr().IsLoopback() {
			l.r.dropLogged(&l.c, reasonUDPRemoteRefused, l.name, sender,
				"receiver: udp from a remote sender refused (listen.remotestreamonly: forward over tcp or tls); dropped (further ones counted, logged every 10s)")
			return
		}
	}
	if truncated {
		l.r.dropLogged(&l.c, reasonTooLarge, l.name, sender,
			"receiver: dropped oversized datagram (further ones counted, logged every 10s)",
			"size_at_least", len(b), "max", l.r.opts.MaxMessageSize)
		return
	}
	b = trimTrailing(b)
	if len(b) == 0 {
		l.r.dropLogged(&l.c, reasonEmpty, l.name, sender,
			"receiver: dropped an empty datagram (further ones counted, logged every 10s)")
		return
	}
	nowNano := now.UnixNano()
	forEachDatagramMessage(b, func(line []byte) {
		if l.limiter != nil && !l.limiter.allow(sender.Addr(), nowNano) {
			l.r.dropLogged(&l.c, reasonRateLimited, l.name, sender,
				"receiver: sender over its udp rate limit; dropped (further ones counted, logged every 10s)")
			return
		}
		l.r.deliver(p, m, line, now, l.name, sender, creds, &l.c)
	})
}

// pause waits d unless ctx ends first; it keeps a persistent socket error
// from turning a read loop into a busy loop. It reports whether to go on.
func pause(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
