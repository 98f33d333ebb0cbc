package receiver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/sysban/sysban"
)

// streamListener serves TCP, TLS or unix stream: one accept goroutine and
// one goroutine per connection, bounded by MaxConnections overall and
// MaxConnectionsPerSource per address. The accept loop does no I/O on a
// connection (the TLS handshake runs in the connection's goroutine), so no
// client can stall it.
type streamListener struct {
	r      *Receiver
	s      ListenerSpec
	name   string
	ln     net.Listener
	tlsCfg *tls.Config // non-nil for tls listeners
	c      counters

	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	bySource map[netip.Addr]int // open connections per address; entries exist only while > 0, so len <= MaxConnections
	closed   bool
	wg       sync.WaitGroup
}

func (l *streamListener) addr() net.Addr     { return l.ln.Addr() }
func (l *streamListener) stats() *counters   { return &l.c }
func (l *streamListener) spec() ListenerSpec { return l.s }

func (r *Receiver) bindStream(s ListenerSpec) (listener, error) {
	var ln net.Listener
	var tlsCfg *tls.Config
	switch s.Network {
	case TCP, TLS:
		ap, err := netip.ParseAddrPort(s.Address)
		if err != nil && s.Network == TLS {
			// RFC 5425 gives TLS syslog its own port: allow "host" alone.
			if a, aerr := netip.ParseAddr(strings.Trim(s.Address, "[]")); aerr == nil {
				ap, err = netip.AddrPortFrom(a, TLSDefaultPort), nil
			}
		}
		if err != nil {
			return nil, fmt.Errorf("bad address: %w", err)
		}
		if s.Network == TLS {
			if tlsCfg, err = serverTLS(r.opts.TLS); err != nil {
				return nil, err
			}
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
	return &streamListener{r: r, s: s, name: s.Name(), ln: ln, tlsCfg: tlsCfg,
		conns: make(map[net.Conn]struct{}), bySource: make(map[netip.Addr]int)}, nil
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
		if id, ok := l.track(conn, sender.Addr()); !ok {
			conn.Close()
			if id >= 0 {
				l.r.dropLogged(&l.c, id, l.name, sender,
					"receiver: stream connection over the limit; closed (further ones counted, logged every 10s)")
			}
			continue
		}
		l.wg.Go(func() {
			defer l.untrack(conn, sender.Addr())
			l.serveConn(conn, sender, log)
		})
	}
}

// track registers conn unless the listener is closed (id -1) or at
// MaxConnections or MaxConnectionsPerSource (id says which).
func (l *streamListener) track(conn net.Conn, src netip.Addr) (reasonID, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return -1, false
	case len(l.conns) >= l.r.opts.MaxConnections:
		return reasonConnectionLimit, false
	case src.IsValid() && l.bySource[src] >= l.r.opts.MaxConnectionsPerSource:
		return reasonSourceConnectionLimit, false
	}
	l.conns[conn] = struct{}{}
	if src.IsValid() {
		l.bySource[src]++
	}
	l.c.connections.Store(int64(len(l.conns)))
	return 0, true
}

func (l *streamListener) untrack(conn net.Conn, src netip.Addr) {
	conn.Close()
	l.mu.Lock()
	delete(l.conns, conn)
	if src.IsValid() {
		if n := l.bySource[src] - 1; n > 0 {
			l.bySource[src] = n
		} else {
			delete(l.bySource, src)
		}
	}
	l.c.connections.Store(int64(len(l.conns)))
	l.mu.Unlock()
}

// frameClock sets a stream's read deadlines. Between frames a connection
// may stay silent for IdleTimeout; once a frame has started, it must end
// within FrameTimeout of its first byte however the bytes trickle in, or
// the read fails with a timeout while midFrame is set. It wraps both the
// connection (as the scanner's reader) and the splitter (as its split
// function), which the scanner calls from the same goroutine in turn.
// Deadlines are wall-clock socket time, not Options.Now.
type frameClock struct {
	conn       net.Conn
	sp         *Splitter
	idle       time.Duration
	frame      time.Duration
	midFrame   bool      // the last split left a frame unfinished
	frameStart time.Time // when that frame's first bytes were read
	expired    bool      // a read timed out mid-frame
}

// errFrameTimeout stops the scanner from handing out, as if the sender had
// ended it, the partial frame a timed-out slow sender left in the buffer.
var errFrameTimeout = errors.New("frame timeout")

func (fc *frameClock) Read(b []byte) (int, error) {
	dl := time.Now().Add(fc.idle)
	if fc.midFrame {
		if end := fc.frameStart.Add(fc.frame); end.Before(dl) {
			dl = end
		}
	}
	if err := fc.conn.SetReadDeadline(dl); err != nil {
		return 0, err
	}
	n, err := fc.conn.Read(b)
	var ne net.Error
	if err != nil && fc.midFrame && errors.As(err, &ne) && ne.Timeout() {
		fc.expired = true
	}
	return n, err
}

func (fc *frameClock) Split(data []byte, atEOF bool) (int, []byte, error) {
	if fc.expired {
		return 0, nil, errFrameTimeout
	}
	adv, tok, err := fc.sp.Split(data, atEOF)
	mid := adv < len(data) || fc.sp.midFrame()
	if mid && !fc.midFrame {
		// The unfinished bytes came with the read that just returned.
		fc.frameStart = time.Now()
	}
	fc.midFrame = mid
	return adv, tok, err
}

func (l *streamListener) serveConn(conn net.Conn, sender netip.AddrPort, log *slog.Logger) {
	if l.tlsCfg != nil {
		tc, ok := l.handshake(conn, sender, log)
		if !ok {
			return
		}
		conn = tc
	}
	loggedTooLarge := false
	sp := l.r.format.newSplitter(func(reason string, n int) {
		l.c.drop(reason)
		if reason == ReasonTooLarge && !loggedTooLarge {
			loggedTooLarge = true // once per connection: a flood must not flood the log
			log.Warn("receiver: dropped oversized frame", "sender", sender, "size", n, "max", l.r.opts.MaxMessageSize)
		}
	})
	fc := &frameClock{conn: conn, sp: sp, idle: l.r.opts.IdleTimeout, frame: l.r.opts.FrameTimeout}
	sc := bufio.NewScanner(fc)
	sc.Buffer(make([]byte, 0, 4096), sp.BufferSize())
	sc.Split(fc.Split)
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
			if fc.expired {
				l.r.dropLogged(&l.c, reasonFrameTimeout, l.name, sender,
					"receiver: frame not completed in time (slow sender); connection closed, partial frame dropped (further ones counted, logged every 10s)",
					"frame_timeout", l.r.opts.FrameTimeout)
				return
			}
			log.Debug("receiver: idle connection closed", "sender", sender)
			return
		}
		log.Debug("receiver: connection ended", "sender", sender, "err", err)
	}
}
