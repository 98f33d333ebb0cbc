package receiver

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"time"

	"github.com/sysban/sysban"
)

// streamListener serves TCP or unix stream: one accept goroutine and one
// goroutine per connection, bounded by MaxConnections.
type streamListener struct {
	r    *Receiver
	s    ListenerSpec
	name string
	ln   net.Listener
	c    counters

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

func (l *streamListener) addr() net.Addr     { return l.ln.Addr() }
func (l *streamListener) stats() *counters   { return &l.c }
func (l *streamListener) spec() ListenerSpec { return l.s }

func (r *Receiver) bindStream(s ListenerSpec) (listener, error) {
	var ln net.Listener
	switch s.Network {
	case TCP:
		ap, err := netip.ParseAddrPort(s.Address)
		if err != nil {
			return nil, fmt.Errorf("bad address: %w", err)
		}
		tl, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
		if err != nil {
			return nil, err
		}
		ln = tl
	default:
		if err := prepareSocketPath(s.Address); err != nil {
			return nil, err
		}
		ul, err := net.ListenUnix("unix", &net.UnixAddr{Name: s.Address, Net: "unix"})
		if err != nil {
			return nil, err
		}
		if err := os.Chmod(s.Address, r.opts.SocketMode); err != nil {
			ul.Close() // unlinks the file
			return nil, fmt.Errorf("chmod socket: %w", err)
		}
		ln = ul
	}
	return &streamListener{r: r, s: s, name: s.Name(), ln: ln, conns: make(map[net.Conn]struct{})}, nil
}

// close stops accepting and closes every open connection, which unblocks
// their reads; serve then waits for the goroutines.
func (l *streamListener) close() error {
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.Close()
	}
	l.mu.Unlock()
	err := l.ln.Close()
	if isClosedErr(err) {
		return nil
	}
	return err
}

func (l *streamListener) serve(ctx context.Context) {
	log := l.r.opts.Logger.With("listener", l.name)
	defer l.wg.Wait()
	backoff := 5 * time.Millisecond
	for {
		conn, err := l.ln.Accept()
		if err != nil {
			if ctx.Err() != nil || isClosedErr(err) {
				return
			}
			// EMFILE and friends: log, back off so we do not spin, retry.
			log.Error("receiver: accept", "err", err)
			if !pause(ctx, backoff) {
				return
			}
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		var sender netip.AddrPort
		if ta, ok := conn.RemoteAddr().(*net.TCPAddr); ok {
			sender = ta.AddrPort()
			sender = netip.AddrPortFrom(sysban.CanonicalAddr(sender.Addr()), sender.Port())
			if !l.r.allowed(sender.Addr()) {
				l.r.refuse(&l.c, l.name, sender)
				conn.Close()
				continue
			}
		}
		if !l.track(conn) {
			l.c.drop(ReasonConnectionLimit)
			conn.Close()
			continue
		}
		l.wg.Go(func() {
			defer l.untrack(conn)
			l.serveConn(conn, sender, log)
		})
	}
}

// track registers conn unless the listener is at MaxConnections or closed.
func (l *streamListener) track(conn net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed || len(l.conns) >= l.r.opts.MaxConnections {
		return false
	}
	l.conns[conn] = struct{}{}
	l.c.connections.Store(int64(len(l.conns)))
	return true
}

func (l *streamListener) untrack(conn net.Conn) {
	conn.Close()
	l.mu.Lock()
	delete(l.conns, conn)
	l.c.connections.Store(int64(len(l.conns)))
	l.mu.Unlock()
}

// idleReader pushes the read deadline forward before every read, so a
// connection is closed only after IdleTimeout without any data.
type idleReader struct {
	conn    net.Conn
	timeout time.Duration
}

func (r idleReader) Read(b []byte) (int, error) {
	if err := r.conn.SetReadDeadline(time.Now().Add(r.timeout)); err != nil {
		return 0, err
	}
	return r.conn.Read(b)
}

func (l *streamListener) serveConn(conn net.Conn, sender netip.AddrPort, log *slog.Logger) {
	loggedTooLarge := false
	sp := l.r.format.newSplitter(func(reason string, n int) {
		l.c.drop(reason)
		if reason == ReasonTooLarge && !loggedTooLarge {
			loggedTooLarge = true // once per connection: a flood must not flood the log
			log.Warn("receiver: dropped oversized frame", "sender", sender, "size", n, "max", l.r.opts.MaxMessageSize)
		}
	})
	sc := bufio.NewScanner(idleReader{conn: conn, timeout: l.r.opts.IdleTimeout})
	sc.Buffer(make([]byte, 0, 4096), sp.BufferSize())
	sc.Split(sp.Split)
	p := l.r.format.newParser()
	var m sysban.Message
	for sc.Scan() {
		b := sc.Bytes()
		if len(b) == 0 {
			l.c.drop(ReasonEmpty)
			continue
		}
		l.r.deliver(p, &m, b, l.name, sender, &l.c)
	}
	if err := sc.Err(); err != nil && !isClosedErr(err) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			log.Debug("receiver: idle connection closed", "sender", sender)
			return
		}
		log.Debug("receiver: connection ended", "sender", sender, "err", err)
	}
}
