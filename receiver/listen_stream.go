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
	"os"
	"strings"
	"sync"
	"sync/atomic"
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

	bigBufs bufBudget // read buffers above the frame bound, for busy senders
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
	if tok != nil {
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

func (l *streamListener) serveConn(conn net.Conn, sender netip.AddrPort, log *slog.Logger) {
	if l.tlsCfg != nil {
		tc, ok := l.handshake(conn, sender, log)
		if !ok {
			return
		}
		conn = tc
	}
	sp := l.r.format.newSplitter(func(reason string, n int) {
		if reason != ReasonTooLarge {
			l.c.drop(reason)
			return
		}
		// Logged per listener, not per connection: a sender opening many
		// connections must not flood the log either.
		l.r.dropLogged(&l.c, reasonTooLarge, l.name, sender,
			"receiver: dropped oversized frame (further ones counted, logged every 10s)",
			"size", n, "max", l.r.opts.MaxMessageSize)
	})
	fc := &frameClock{conn: conn, sp: sp, idle: l.r.opts.IdleTimeout, frame: l.r.opts.FrameTimeout, msgClock: l.r.format.now}
	p := l.r.format.newParser()
	var m sysban.Message
	err := readFrames(fc, sp.BufferSize(), &l.bigBufs, func(b []byte) {
		if len(b) == 0 {
			l.c.drop(ReasonEmpty)
			return
		}
		l.r.deliver(p, &m, b, fc.readNow, l.name, sender, &l.c)
	})
	if err != nil && !isClosedErr(err) {
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
