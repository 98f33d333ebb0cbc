package receiver

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysban/sysban"
)

// streamListener serves TCP, TLS or unix stream: one accept goroutine and
// one goroutine per connection, bounded by MaxConnections overall and
// MaxConnectionsPerSource per source. At either bound the connection that
// has gone longest without a complete frame is closed to make room
// (evicted), so idle connections cannot lock out a forwarder that has
// something to say. The accept loop does no I/O on a connection (the TLS
// handshake runs in the connection's goroutine), so no client can stall
// it; it asks the kernel (sock_diag, ~2 us) which local user, if any, owns
// the peer socket.
type streamListener struct {
	r      *Receiver
	s      ListenerSpec
	name   string
	ln     net.Listener
	tlsCfg *tls.Config // non-nil for tls listeners
	c      counters
	diag   *sockDiag // nil: not tcp, or the kernel refused (then no uids)

	mu       sync.Mutex
	conns    map[*streamConn]struct{}
	bySource map[sourceKey]int // open connections per source; entries exist only while > 0, so len <= MaxConnections
	closed   bool
	wg       sync.WaitGroup

	bigBufs bufBudget // read buffers above the frame bound, for busy senders
}

// sourceKey is what MaxConnectionsPerSource counts by: the peer address,
// and for a peer on this host, where every local user shares 127.0.0.1,
// the user owning the peer socket too (uid -1: remote, or unknown).
type sourceKey struct {
	addr netip.Addr
	uid  int64
}

// streamConn is one open connection.
type streamConn struct {
	conn net.Conn
	key  sourceKey // zero addr: unix stream, no per-source bound
	// lastFrame is when the connection last delivered a complete frame
	// (unix nanos), its accept time until the first: eviction closes the
	// connection with the oldest.
	lastFrame atomic.Int64
	evicted   bool // guarded by the listener's mu: already untracked
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
		if err := r.socketPerm(s.Address); err != nil {
			ul.Close() // unlinks the file
			return nil, err
		}
		ln = ul
	}
	return &streamListener{r: r, s: s, name: s.Name(), ln: ln, tlsCfg: tlsCfg,
		conns: make(map[*streamConn]struct{}), bySource: make(map[sourceKey]int)}, nil
}

// close stops accepting and closes every open connection, which unblocks
// their reads; serve then waits for the goroutines.
func (l *streamListener) close() error {
	l.mu.Lock()
	l.closed = true
	for c := range l.conns {
		c.conn.Close()
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
	if l.s.Network != UnixStream {
		// Owned by this goroutine, the only one that looks up. Without
		// it loopback senders share one per-source bound and carry no
		// uid: worse, not fatal.
		d, err := newSockDiag()
		if err != nil {
			log.Warn("receiver: no sock_diag; loopback senders are not told apart by user", "err", err)
		}
		l.diag = d
		defer d.close()
	}
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
		key := sourceKey{uid: -1}
		var creds peerCreds
		switch a := conn.RemoteAddr().(type) {
		case *net.TCPAddr:
			sender = a.AddrPort()
			sender = netip.AddrPortFrom(sysban.CanonicalAddr(sender.Addr()), sender.Port())
			if !l.r.allowed(sender.Addr()) {
				l.r.refuse(&l.c, l.name, sender)
				conn.Close()
				continue
			}
			key.addr = sender.Addr()
			// Every address, not only loopback: a local user may
			// connect to one of the host's other addresses. For a
			// remote peer the kernel finds no socket (no uid).
			creds = l.localCreds(conn, sender, log)
			key.uid = creds.uid
		default:
			creds = unixPeerCreds(conn)
		}
		creds = l.r.relayed(creds)
		sc := &streamConn{conn: conn, key: key}
		sc.lastFrame.Store(time.Now().UnixNano())
		if !l.track(sc) {
			conn.Close()
			continue
		}
		l.wg.Go(func() {
			defer l.untrack(sc)
			l.serveConn(sc, sender, creds, log)
		})
	}
}

// localCreds asks the kernel who owns the peer socket of a connection
// from this host (in this network namespace). A remote peer, or one
// already gone, leaves the uid unknown (-1), logged at debug.
func (l *streamListener) localCreds(conn net.Conn, sender netip.AddrPort, log *slog.Logger) peerCreds {
	creds := noCreds
	local, ok := conn.LocalAddr().(*net.TCPAddr)
	if l.diag == nil || !ok {
		return creds
	}
	uid, err := l.diag.uid(unix.IPPROTO_TCP, sender, local.AddrPort())
	if err != nil {
		if !errors.Is(err, errNoSocket) || sender.Addr().IsLoopback() {
			log.Debug("receiver: owner of the peer socket unknown", "sender", sender, "err", err)
		}
		return creds
	}
	creds.known, creds.uid = true, int64(uid)
	return creds
}

// track registers c unless the listener is closed. At MaxConnections, or
// at MaxConnectionsPerSource for c's source, it first evicts the
// connection (of that source, at the per-source bound) that has gone
// longest without a complete frame; c itself has just been accepted, so
// it is never the one.
func (l *streamListener) track(c *streamConn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	perSource := c.key.addr.IsValid()
	if perSource && l.bySource[c.key] >= l.r.opts.MaxConnectionsPerSource {
		l.evictLocked(reasonSourceConnectionLimit, func(o *streamConn) bool { return o.key == c.key },
			"receiver: per-source connection limit reached; closed that source's connection silent longest (further ones counted, logged every 10s)")
	}
	if len(l.conns) >= l.r.opts.MaxConnections {
		l.evictLocked(reasonConnectionLimit, func(*streamConn) bool { return true },
			"receiver: connection limit reached; closed the connection silent longest (further ones counted, logged every 10s)")
	}
	l.conns[c] = struct{}{}
	if perSource {
		l.bySource[c.key]++
	}
	l.c.connections.Store(int64(len(l.conns)))
	return true
}

// evictLocked closes the matching connection with the oldest lastFrame
// and untracks it at once (its goroutine's untrack then does nothing). A
// scan of at most MaxConnections entries, only when a bound is reached.
func (l *streamListener) evictLocked(id reasonID, match func(*streamConn) bool, msg string) {
	var victim *streamConn
	var oldest int64
	for o := range l.conns {
		if !match(o) {
			continue
		}
		if t := o.lastFrame.Load(); victim == nil || t < oldest {
			victim, oldest = o, t
		}
	}
	if victim == nil {
		return
	}
	l.forgetLocked(victim)
	var sender netip.AddrPort
	if a, ok := victim.conn.RemoteAddr().(*net.TCPAddr); ok {
		sender = a.AddrPort()
	}
	// Counted before the close, as every other drop that closes a
	// connection is: a peer that sees its connection closed finds the
	// eviction already in the stats.
	l.r.dropLogged(&l.c, id, l.name, sender, msg, "silent_for", time.Since(time.Unix(0, oldest)).Round(time.Millisecond), "uid", victim.key.uid)
	victim.conn.Close()
}

func (l *streamListener) forgetLocked(c *streamConn) {
	c.evicted = true
	delete(l.conns, c)
	if c.key.addr.IsValid() {
		if n := l.bySource[c.key] - 1; n > 0 {
			l.bySource[c.key] = n
		} else {
			delete(l.bySource, c.key)
		}
	}
	l.c.connections.Store(int64(len(l.conns)))
}

func (l *streamListener) untrack(c *streamConn) {
	c.conn.Close()
	l.mu.Lock()
	if !c.evicted {
		l.forgetLocked(c)
	}
	l.mu.Unlock()
}

// frameClock sets a stream's read deadlines. Between frames a connection
// may stay silent for IdleTimeout; once a frame has started, it must end
// within FrameTimeout of its first byte however the bytes trickle in, or
// the read fails with a timeout while midFrame is set. It wraps both the
// connection (as readFrames' reader) and the splitter (as its split
// function), which readFrames calls from the same goroutine in turn.
// Deadlines are wall-clock socket time, not Options.Now.
type frameClock struct {
	conn       net.Conn
	sp         *Splitter
	idle       time.Duration
	frame      time.Duration
	midFrame   bool             // the last split left a frame unfinished
	frameStart time.Time        // when that frame's first bytes were read
	expired    bool             // a read timed out mid-frame
	deadline   time.Time        // the read deadline last set; zero before the first read
	readAt     time.Time        // when the last read returned
	now        func() time.Time // nil: time.Now (tests step it)
	// firstBy is when the first complete frame is due (FirstFrameTimeout
	// after the connection was ready); zero once one arrived or when
	// there is no such bound. Past it the read fails with firstExpired.
	firstBy      time.Time
	firstExpired bool
	// lastFrame, if set, gets the time of the read that brought the
	// latest complete frame, for eviction; stamped once per read.
	lastFrame *atomic.Int64
	stamped   time.Time
	// msgClock, if set, is read once per read into readNow: the receive
	// time of every frame that read brought. A clock read per frame was
	// a fifth of a busy stream's CPU.
	msgClock func() time.Time
	readNow  time.Time
}

func (fc *frameClock) clock() time.Time {
	if fc.now != nil {
		return fc.now()
	}
	return time.Now()
}

// slack is how far a deadline may lag behind the one Read would set
// before Read re-arms it: 1/16 of the shorter timeout, at most a second.
// Re-arming updates a runtime timer, and a busy stream reads thousands of
// times a second (and nearly every bulk read ends inside a frame, which
// starts a new frame clock). With the slack a silent connection, or a
// frame, is cut at most that much early, never late; a deadline earlier
// than the one set is always set at once.
func (fc *frameClock) slack() time.Duration {
	return min(fc.idle, fc.frame, 16*time.Second) / 16
}

// errFrameTimeout stops the scanner from handing out, as if the sender had
// ended it, the partial frame a timed-out slow sender left in the buffer.
var errFrameTimeout = errors.New("frame timeout")

func (fc *frameClock) Read(b []byte) (int, error) {
	dl := fc.clock().Add(fc.idle)
	if !fc.firstBy.IsZero() && fc.firstBy.Before(dl) {
		dl = fc.firstBy
	}
	if fc.midFrame {
		if end := fc.frameStart.Add(fc.frame); end.Before(dl) {
			dl = end
		}
	}
	if fc.deadline.IsZero() || dl.Before(fc.deadline) || dl.Sub(fc.deadline) > fc.slack() {
		if err := fc.conn.SetReadDeadline(dl); err != nil {
			return 0, err
		}
		fc.deadline = dl
	}
	n, err := fc.conn.Read(b)
	fc.readAt = fc.clock()
	if fc.msgClock != nil {
		fc.readNow = fc.msgClock()
	}
	var ne net.Error
	if err != nil && errors.As(err, &ne) && ne.Timeout() {
		switch {
		case !fc.firstBy.IsZero() && !fc.readAt.Before(fc.firstBy):
			fc.firstExpired = true
		case fc.midFrame:
			fc.expired = true
		}
	}
	return n, err
}

func (fc *frameClock) Split(data []byte, atEOF bool) (int, []byte, error) {
	if fc.expired || fc.firstExpired {
		return 0, nil, errFrameTimeout
	}
	adv, tok, err := fc.sp.Split(data, atEOF)
	if tok != nil {
		fc.firstBy = time.Time{}
		if fc.lastFrame != nil && !fc.stamped.Equal(fc.readAt) {
			fc.stamped = fc.readAt
			fc.lastFrame.Store(fc.readAt.UnixNano())
		}
		// A frame ended; the next one starts in data[adv:], which the
		// next call sees. Keeping the flag set here would run one
		// frame clock across every frame of a sender that stays ahead
		// of us (each read ending inside a frame) and cut it off after
		// FrameTimeout however fast it sends.
		fc.midFrame = false
		return adv, tok, err
	}
	mid := adv < len(data) || fc.sp.midFrame()
	if mid && !fc.midFrame {
		// No frame ended since the last read, or this one began after
		// the last frame that did: its first bytes came with that read.
		fc.frameStart = fc.readAt
	}
	fc.midFrame = mid
	return adv, tok, err
}

func (l *streamListener) serveConn(sc *streamConn, sender netip.AddrPort, creds peerCreds, log *slog.Logger) {
	conn := sc.conn
	if l.tlsCfg != nil {
		tc, ok := l.handshake(conn, sender, log)
		if !ok {
			return
		}
		conn = tc
		creds = l.r.tlsCreds(tc)
	}
	var sp *Splitter
	sp = l.r.format.newSplitter(func(reason string, n int) {
		// Logged per listener, not per connection: a sender opening many
		// connections must not flood the log either.
		switch {
		case reason == ReasonGarbage:
			l.r.dropLogged(&l.c, reasonGarbage, l.name, sender,
				"receiver: skipped bytes that are not a syslog frame (further ones counted, logged every 10s)")
		case reason != ReasonTooLarge:
			l.c.drop(reason)
		case sp.atLeast:
			// An LF frame cut off at the bound: its end was never seen.
			l.r.dropLogged(&l.c, reasonTooLarge, l.name, sender,
				"receiver: dropped oversized frame (further ones counted, logged every 10s)",
				"size_at_least", n, "max", l.r.opts.MaxMessageSize)
		default:
			l.r.dropLogged(&l.c, reasonTooLarge, l.name, sender,
				"receiver: dropped oversized frame (further ones counted, logged every 10s)",
				"size", n, "max", l.r.opts.MaxMessageSize)
		}
	})
	fc := &frameClock{conn: conn, sp: sp, idle: l.r.opts.IdleTimeout, frame: l.r.opts.FrameTimeout, msgClock: l.r.format.now,
		firstBy: time.Now().Add(l.r.opts.FirstFrameTimeout), lastFrame: &sc.lastFrame}
	p := l.r.format.newParser()
	var m sysban.Message
	err := readFrames(fc, sp.BufferSize(), &l.bigBufs, func(b []byte) {
		if len(b) == 0 {
			l.r.dropLogged(&l.c, reasonEmpty, l.name, sender,
				"receiver: dropped an empty frame (further ones counted, logged every 10s)")
			return
		}
		l.r.deliver(p, &m, b, fc.readNow, l.name, sender, &creds, &l.c)
	})
	if err != nil && !isClosedErr(err) {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			if fc.firstExpired {
				l.r.dropLogged(&l.c, reasonFirstFrameTimeout, l.name, sender,
					"receiver: no complete frame within listen.firstframetimeout of connecting; connection closed (further ones counted, logged every 10s)",
					"first_frame_timeout", l.r.opts.FirstFrameTimeout)
				return
			}
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

// Read buffer sizes for a stream. A connection starts with readBufMin; a
// read that fills the buffer (the sender is ahead of us) doubles it, up to
// readBufMax, so a busy forwarder is read in 256 KiB gulps (one syscall per
// ~2000 frames instead of ~40); a short read with little pending shrinks it
// back, so only connections that keep their buffer full hold a large one.
// Frames longer than the buffer grow it up to the splitter's bound as
// before.
//
// Buffers up to the splitter's bound (what one frame may need, and what
// each connection could always hold) are free; beyond it a connection
// needs one of the listener's bigReadBufs slots, so a flood of
// connections that each fill their buffer once cannot hold more than
// bigReadBufs x readBufMax more than before.
const (
	readBufMin  = 4 << 10
	readBufMax  = 256 << 10
	bigReadBufs = 32
)

// bufBudget counts a listener's read buffers above the splitter's bound.
type bufBudget struct{ n atomic.Int32 }

func (b *bufBudget) take() bool {
	if b == nil {
		return true
	}
	if b.n.Add(1) > bigReadBufs {
		b.n.Add(-1)
		return false
	}
	return true
}

func (b *bufBudget) give() {
	if b != nil {
		b.n.Add(-1)
	}
}

// readFrames is the stream read loop (what bufio.Scanner did, with an
// adaptive buffer): it reads through fc, frames with fc.Split and calls fn
// with each frame, which is valid only until fn returns. It returns nil at
// EOF, else the first read error (a timeout stays a timeout even when the
// split then refuses the partial frame) or the split's error. maxFrame is
// the largest buffer the splitter may need to see one frame whole; budget
// (nil: unlimited) grants buffers above it.
func readFrames(fc *frameClock, maxFrame int, budget *bufBudget, fn func([]byte)) error {
	maxBuf := max(maxFrame, readBufMax)
	buf := make([]byte, readBufMin)
	big := false // buf is above maxFrame and holds a budget slot
	defer func() {
		if big {
			budget.give()
		}
	}()
	start, end := 0, 0
	var rerr error
	grow := false
	for {
		// Hand out every complete frame buffered; stop when the splitter
		// needs more bytes (or, after a read error, when it has no more).
		for start < end || rerr != nil {
			adv, tok, err := fc.Split(buf[start:end], rerr != nil)
			if err != nil {
				if rerr != nil && rerr != io.EOF {
					return rerr
				}
				return err
			}
			if adv < 0 || adv > end-start {
				return fmt.Errorf("receiver: split advanced %d of %d bytes", adv, end-start)
			}
			start += adv
			if tok == nil {
				if rerr == io.EOF {
					return nil
				}
				if rerr != nil {
					return rerr
				}
				break
			}
			if adv == 0 {
				// A token without progress would repeat forever; the
				// splitter never does this, so it is a bug, not input.
				return io.ErrNoProgress
			}
			fn(tok)
		}
		if start == end {
			start, end = 0, 0
		}
		if start > 0 && (end == len(buf) || start > len(buf)/2) {
			end = copy(buf, buf[start:end])
			start = 0
		}
		if end == len(buf) || grow && len(buf) < readBufMax {
			// A frame longer than the buffer, or a sender that filled
			// the last read: a bigger buffer.
			if len(buf) >= maxBuf {
				// The splitter bounds a frame below maxFrame, so this
				// is a splitter bug; refuse rather than grow unbounded.
				return bufio.ErrTooLong
			}
			size := min(2*len(buf), maxBuf)
			if size > maxFrame && !big {
				// Only for speed (a frame fits in maxFrame): take a
				// slot, or read on with the buffer we have.
				big = budget.take()
				if !big {
					size = max(len(buf), min(size, maxFrame))
				}
			}
			if size > len(buf) {
				nb := make([]byte, size)
				end = copy(nb, buf[start:end])
				buf, start = nb, 0
			}
			if end == len(buf) {
				return bufio.ErrTooLong // as above: no room to read into
			}
		}
		space := len(buf) - end
		n, err := fc.Read(buf[end:])
		if n < 0 || n > space {
			return fmt.Errorf("receiver: read returned %d for %d bytes", n, space)
		}
		end += n
		grow = n == space && space >= len(buf)/2
		if err != nil {
			rerr = err
			continue
		}
		if len(buf) > readBufMin && n < readBufMin/2 && end-start <= readBufMin/2 {
			// A trickle again: give the large buffer back.
			nb := make([]byte, readBufMin)
			end = copy(nb, buf[start:end])
			buf, start = nb, 0
			if big {
				big = false
				budget.give()
			}
		}
	}
}
