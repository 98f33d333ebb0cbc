package receiver

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sysban/sysban"
)

// Handler receives every parsed message. It is called from listener
// goroutines concurrently and must not retain m after returning; the strings
// inside m may be retained (they never alias reused buffers).
type Handler interface{ Handle(m *sysban.Message) }

// Network is a listener's socket type.
type Network string

const (
	UDP        Network = "udp"
	TCP        Network = "tcp"
	UnixGram   Network = "unixgram" // unix datagram, like /dev/log
	UnixStream Network = "unix"     // unix stream
	// TLS is syslog over TLS (RFC 5425): a TCP listener whose connections
	// are TLS 1.2+ with Options.TLS, framed like TCP. Its Address may omit
	// the port ("0.0.0.0", "[::]"); the RFC's 6514 is then used.
	TLS Network = "tls"
)

// TLSDefaultPort is RFC 5425's port for syslog over TLS.
const TLSDefaultPort = 6514

// ListenerSpec is one socket to listen on. Address is "host:port" for udp,
// tcp and tls ("127.0.0.1:5514", "[::1]:0") and a path for unix sockets.
type ListenerSpec struct {
	Network Network
	Address string
}

// Name identifies the listener in messages, stats and logs, e.g.
// "udp:127.0.0.1:5514" or "unixgram:/run/sysban/syslog.sock".
func (s ListenerSpec) Name() string { return string(s.Network) + ":" + s.Address }

// Options tune a Receiver. The zero value is usable.
type Options struct {
	// Allow lists the senders accepted on udp and tcp; others are counted
	// (sender_not_allowed) and dropped, TCP connections closed at accept.
	// Empty means loopback only (127.0.0.0/8, ::1/128). Unix sockets are
	// always allowed: file permissions guard them.
	Allow []netip.Prefix
	// ReadBuffer is SO_RCVBUF for datagram sockets, default 8 MiB. It is set
	// with SO_RCVBUFFORCE (ignores net.core.rmem_max, needs CAP_NET_ADMIN)
	// and falls back to SO_RCVBUF, which the kernel caps at rmem_max.
	ReadBuffer int
	// ReservedPrograms are program names (Message.AppName) that only
	// sysban's own sources may use, such as the messages NFLOG probes
	// become: a message claiming one is counted (reserved_program), logged
	// and dropped, so that an allowed sender cannot write "probe" lines
	// that ban an address of its choosing.
	ReservedPrograms []string
	// JournalPrograms are program names (Message.AppName) whose messages
	// are lines journalctl wrote, piped into logger by a host that only
	// has journald: the line's own time, host, program and pid replace the
	// message's (journal.go). Only list the tag such a pipe uses: any
	// sender of that program can then speak for any program.
	JournalPrograms []string
	// MaxMessageSize bounds one message, default 64 KiB. Larger frames are
	// counted (too_large), logged once per connection and dropped; the
	// stream is resynchronised and the connection kept.
	MaxMessageSize int
	// MaxConnections bounds open stream connections per listener, default
	// 1024. A new connection beyond it evicts the open one that has gone
	// longest without a complete frame (connection_limit), so idle
	// connections cannot keep a forwarder out.
	MaxConnections int
	// MaxConnectionsPerSource bounds the open tcp and tls connections from
	// one source per listener, default 16, so that one host cannot take
	// every MaxConnections slot; a new one beyond it evicts that source's
	// connection silent longest (source_connection_limit). A source is an
	// address, and for a peer on this host (127.0.0.1 is every local
	// user's) an address and the uid owning the peer socket (sock_diag). Unix stream
	// connections have no source and only count against MaxConnections.
	MaxConnectionsPerSource int
	// FirstFrameTimeout closes a stream connection that has not sent one
	// complete frame this long after connecting (after its TLS
	// handshake), default 10 seconds (first_frame_timeout): forwarders
	// connect when they have something to send.
	FirstFrameTimeout time.Duration
	// Forwarders are the local uids whose messages are relayed for
	// others (rsyslog, syslog-ng: root, syslog), default [0]. Their own
	// uid says nothing about a line's author: a message from one carries
	// the origin in its [sysban@32473 ...] structured data when the
	// forwarder template wrote it, and none otherwise. A message from any
	// other local uid carries that uid (and on unix sockets its gid and
	// pid), and [sysban@32473] in it is ignored.
	Forwarders []uint32
	// TLSForwarders trusts the [sysban@32473 ...] structured data of tls
	// clients whose certificate was verified (listen.tlsclientca): a
	// remote forwarder's key is what makes it one. Off by default.
	TLSForwarders bool
	// IdleTimeout closes a stream connection that sent nothing for this
	// long, default 5 minutes.
	IdleTimeout time.Duration
	// FrameTimeout bounds how long one stream frame may take to arrive,
	// from its first byte to its last, default 30 seconds. A sender that
	// trickles bytes (slowloris) resets IdleTimeout with every byte; this
	// closes its connection and drops the partial frame (frame_timeout).
	FrameTimeout time.Duration
	// TLS is the server configuration of tls listeners; New fails if a tls
	// listener is given without it. Build it with TLSConfig, or bring your
	// own: New clones it and raises MinVersion to TLS 1.2 if it is lower.
	TLS *tls.Config
	// HandshakeTimeout bounds a TLS handshake, default 10 seconds. The
	// handshake runs in the connection's own goroutine, never in the accept
	// loop, so a silent client only holds one connection slot this long
	// (counted as tls_handshake when it fails or times out).
	HandshakeTimeout time.Duration
	// RatePerSender, if positive, limits the messages accepted per second
	// from one source address on each udp listener (a token bucket per
	// address); messages over it are dropped (rate_limited). Zero, the
	// default, means no limit. Streams need no such limit: TCP's flow
	// control already slows a sender to the speed we read at.
	RatePerSender float64
	// RateBurst is the bucket size of RatePerSender: how many messages a
	// sender may send at once after being quiet. Default: one second's
	// worth (RatePerSender rounded up), at least 1.
	RateBurst int
	// RateMaxSenders bounds the per-address buckets one udp listener keeps,
	// default 16384. When full, buckets that have refilled (their sender
	// was quiet) are forgotten, which loses nothing; senders beyond that
	// share one overflow bucket, so forged-source floods cannot grow
	// memory and cannot steal the budget of senders already tracked.
	RateMaxSenders int
	// RemoteStreamOnly refuses udp datagrams from non-loopback sources
	// (udp_remote_refused): UDP source addresses can be forged, TCP and TLS
	// ones cannot (a handshake must complete). Remote hosts must then
	// forward over tcp or tls; local programs may still use udp and unix.
	RemoteStreamOnly bool
	// SocketMode is the permission of unix socket files, default 0660 (owner
	// root, so only root and the socket's group may log). Use 0666 for a
	// /dev/log replacement that unprivileged programs must reach.
	SocketMode fs.FileMode
	// SocketGroup, if positive, is the group given the unix socket files
	// (listen.unixgroup), so that with SocketMode 0660 exactly root and
	// that group's members may log to them; 0 leaves the creator's group.
	SocketGroup int
	// Now is the clock for Received and for RFC 3164 year inference; its
	// location is the zone assumed for header times without one. Default
	// time.Now (local time).
	Now func() time.Time
	// Logger receives operational logs; nil discards them.
	Logger *slog.Logger
}

func (o *Options) setDefaults() {
	if len(o.Allow) == 0 {
		o.Allow = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}
	if o.ReadBuffer <= 0 {
		o.ReadBuffer = 8 << 20
	}
	if o.MaxMessageSize <= 0 {
		o.MaxMessageSize = maxMessageSizeDefault
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 1024
	}
	if o.MaxConnectionsPerSource <= 0 {
		o.MaxConnectionsPerSource = 16
	}
	if o.FirstFrameTimeout <= 0 {
		o.FirstFrameTimeout = 10 * time.Second
	}
	if o.Forwarders == nil {
		o.Forwarders = []uint32{0}
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 5 * time.Minute
	}
	if o.FrameTimeout <= 0 {
		o.FrameTimeout = 30 * time.Second
	}
	if o.HandshakeTimeout <= 0 {
		o.HandshakeTimeout = 10 * time.Second
	}
	if o.RatePerSender < 0 {
		o.RatePerSender = 0
	}
	if o.RatePerSender > 0 && o.RateBurst <= 0 {
		o.RateBurst = max(1, int(math.Ceil(o.RatePerSender)))
	}
	if o.RateMaxSenders <= 0 {
		o.RateMaxSenders = 16384
	}
	if o.SocketMode == 0 {
		o.SocketMode = 0o660
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// ListenerStats is a snapshot of one listener's counters.
type ListenerStats struct {
	Name        string
	Received    uint64            // messages handed to the Handler
	Dropped     map[string]uint64 // by reason: every Reason* constant, zeros included
	ParseErrors uint64            // messages delivered with a parse error (raw text kept)
	Connections int               // stream connections open now
}

// reasons are indexed by the reason* ids below; the order is fixed so the
// hot paths count by index, not by string.
var reasons = [...]string{
	ReasonSenderNotAllowed, ReasonTooLarge, ReasonConnectionLimit, ReasonEmpty, ReasonGarbage,
	ReasonSourceConnectionLimit, ReasonFrameTimeout, ReasonRateLimited, ReasonUDPRemoteRefused,
	ReasonTLSHandshake, ReasonTLSClientRefused, ReasonReservedProgram, ReasonFirstFrameTimeout,
}

type reasonID int

const (
	reasonSenderNotAllowed reasonID = iota
	reasonTooLarge
	reasonConnectionLimit
	reasonEmpty
	reasonGarbage
	reasonSourceConnectionLimit
	reasonFrameTimeout
	reasonRateLimited
	reasonUDPRemoteRefused
	reasonTLSHandshake
	reasonTLSClientRefused
	reasonReservedProgram
	reasonFirstFrameTimeout
)

// Reasons returns every drop reason, in a fixed order: the keys of
// ListenerStats.Dropped, for exporters that want zeros before the first drop.
func Reasons() []string { return append([]string(nil), reasons[:]...) }

type counters struct {
	received     atomic.Uint64
	parseErrors  atomic.Uint64
	connections  atomic.Int64
	dropped      [len(reasons)]atomic.Uint64
	lastLog      [len(reasons)]atomic.Int64 // unix nanos of the last log line per reason
	lastParseLog atomic.Int64               // unix nanos of the last parse error logged
}

// dropLogEvery bounds how often a listener logs one kind of drop: a
// forged-source flood must show up in the log without flooding it.
const dropLogEvery = 10 * time.Second

// refuse counts a message or connection from a sender outside Options.Allow
// and logs it, at most once per dropLogEvery per listener.
func (r *Receiver) refuse(c *counters, listener string, sender netip.AddrPort) {
	r.dropLogged(c, reasonSenderNotAllowed, listener, sender,
		"receiver: sender not allowed by listen.allow; dropped (further ones counted, logged every 10s)")
}

// dropLogged counts a drop and logs it at most once per dropLogEvery per
// listener and reason; the log line carries the running total.
func (r *Receiver) dropLogged(c *counters, id reasonID, listener string, sender netip.AddrPort, msg string, args ...any) {
	c.dropped[id].Add(1)
	if !r.logDue(&c.lastLog[id]) {
		return
	}
	args = append(args, "listener", listener, "sender", sender, "reason", reasons[id], "dropped_total", c.dropped[id].Load())
	r.opts.Logger.Warn(msg, args...)
}

// parseFailed counts a message whose header did not parse, and logs it at
// most once per dropLogEvery per listener. Such a message is not dropped:
// it goes on with what was read, at least its text, and usually no
// program, so that no route takes it (the pipeline counts it unrouted).
// The log says why, so that a sender's format mistake is found without a
// packet capture.
func (r *Receiver) parseFailed(c *counters, err error, listener string, sender netip.AddrPort) {
	total := c.parseErrors.Add(1)
	if !r.logDue(&c.lastParseLog) {
		return
	}
	r.opts.Logger.Warn("receiver: syslog header not parsed; message kept as text (further ones counted, logged every 10s)",
		"listener", listener, "sender", sender, "err", err, "parse_errors_total", total)
}

// logDue reports whether a rate-limited line whose last one was written
// at *last (unix nanos) may be written now, and if so notes now there: at
// most one per dropLogEvery, and one goroutine of those racing wins.
func (r *Receiver) logDue(last *atomic.Int64) bool {
	now := r.opts.Now().UnixNano()
	prev := last.Load()
	return now-prev >= int64(dropLogEvery) && last.CompareAndSwap(prev, now)
}

func (c *counters) drop(reason string) {
	for i, r := range reasons {
		if r == reason {
			c.dropped[i].Add(1)
			return
		}
	}
}

// listener is one bound socket and the code that serves it.
type listener interface {
	serve(ctx context.Context)
	close() error
	addr() net.Addr
	stats() *counters
	spec() ListenerSpec
}

// Receiver owns the syslog sockets and feeds the Handler.
type Receiver struct {
	h         Handler
	opts      Options
	format    *Format
	listeners []listener
	closeOnce sync.Once
	closeErr  error
	running   atomic.Bool
	// allow is Options.Allow, swapped by SetAllow on a reload.
	allow atomic.Pointer[[]netip.Prefix]
}

// New binds every listener now, so configuration errors (address in use,
// permission denied, bad address) surface before the daemon reports ready.
// For unix sockets it creates the parent directory, removes a stale socket
// file (only if it is a socket) and sets Options.SocketMode on the new one.
func New(specs []ListenerSpec, h Handler, opts Options) (*Receiver, error) {
	if h == nil {
		return nil, errors.New("receiver: nil handler")
	}
	opts.setDefaults()
	r := &Receiver{
		h:      h,
		opts:   opts,
		format: &Format{MaxMessageSize: opts.MaxMessageSize, Now: opts.Now},
	}
	r.allow.Store(&opts.Allow)
	seen := make(map[string]bool)
	for _, s := range specs {
		if seen[s.Name()] {
			r.Close()
			return nil, fmt.Errorf("receiver: listener %s: listed twice", s.Name())
		}
		seen[s.Name()] = true
		l, err := r.bind(s)
		if err != nil {
			r.Close()
			return nil, fmt.Errorf("receiver: listener %s: %w", s.Name(), err)
		}
		r.listeners = append(r.listeners, l)
	}
	return r, nil
}

func (r *Receiver) bind(s ListenerSpec) (listener, error) {
	switch s.Network {
	case UDP:
		return r.bindUDP(s)
	case UnixGram:
		return r.bindUnixgram(s)
	case TCP, TLS, UnixStream:
		return r.bindStream(s)
	default:
		return nil, fmt.Errorf("unknown network %q (want udp, tcp, tls, unixgram or unix)", s.Network)
	}
}

// Run serves every listener until ctx is done, then closes the listeners
// and all connections and waits for its goroutines. It returns nil on a
// clean shutdown. Run may be called once.
func (r *Receiver) Run(ctx context.Context) error {
	if !r.running.CompareAndSwap(false, true) {
		return errors.New("receiver: Run called twice")
	}
	var wg sync.WaitGroup
	for _, l := range r.listeners {
		wg.Go(func() { l.serve(ctx) })
	}
	<-ctx.Done()
	err := r.Close()
	wg.Wait()
	return err
}

// Close closes every socket. Run calls it on shutdown; call it directly only
// to release the sockets of a Receiver that is never Run.
func (r *Receiver) Close() error {
	r.closeOnce.Do(func() {
		var errs []error
		for _, l := range r.listeners {
			if err := l.close(); err != nil {
				errs = append(errs, fmt.Errorf("receiver: close %s: %w", l.spec().Name(), err))
			}
		}
		r.closeErr = errors.Join(errs...)
	})
	return r.closeErr
}

// Addrs returns the bound addresses in spec order (useful with port 0).
func (r *Receiver) Addrs() []net.Addr {
	out := make([]net.Addr, len(r.listeners))
	for i, l := range r.listeners {
		out[i] = l.addr()
	}
	return out
}

// Stats returns a snapshot of every listener's counters, in spec order.
func (r *Receiver) Stats() []ListenerStats {
	out := make([]ListenerStats, len(r.listeners))
	for i, l := range r.listeners {
		c := l.stats()
		st := ListenerStats{
			Name:        l.spec().Name(),
			Received:    c.received.Load(),
			ParseErrors: c.parseErrors.Load(),
			Connections: int(c.connections.Load()),
			Dropped:     make(map[string]uint64, len(reasons)),
		}
		for j, reason := range reasons {
			st.Dropped[reason] = c.dropped[j].Load()
		}
		out[i] = st
	}
	return out
}

// SetAllow replaces Options.Allow (empty: loopback only, as in New) for
// the messages and connections that come after it; connections already
// accepted stay.
func (r *Receiver) SetAllow(allow []netip.Prefix) {
	o := Options{Allow: allow}
	o.setDefaults()
	r.allow.Store(&o.Allow)
}

func (r *Receiver) allowed(a netip.Addr) bool {
	a = sysban.CanonicalAddr(a)
	for _, p := range *r.allow.Load() {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// deliver parses one message received at now (when the read that brought
// it returned; it becomes Message.Received and anchors RFC 3164 year
// inference) and hands it to the handler. m and p belong to the calling
// goroutine and are reused across messages.
func (r *Receiver) deliver(p *parser, m *sysban.Message, b []byte, now time.Time, name string, sender netip.AddrPort, creds *peerCreds, c *counters) {
	*m = sysban.Message{}
	if err := p.parse(b, now, m); err != nil {
		r.parseFailed(c, err, name, sender)
	}
	m.Received = now
	m.Listener = name
	m.Sender = sender
	m.Origin = creds.origin(m.StructuredData)
	// Before the reserved check, so that a forwarded line cannot claim a
	// reserved program either.
	for _, prog := range r.opts.JournalPrograms {
		if m.AppName == prog {
			unwrapJournal(m, now)
			break
		}
	}
	for _, prog := range r.opts.ReservedPrograms {
		if m.AppName == prog {
			r.dropLogged(c, reasonReservedProgram, name, sender,
				"receiver: dropped a message claiming a program only sysban writes (further ones counted, logged every 10s)",
				"program", prog)
			return
		}
	}
	c.received.Add(1)
	r.h.Handle(m)
}

func isClosedErr(err error) bool {
	return errors.Is(err, net.ErrClosed) || err != nil && strings.Contains(err.Error(), "use of closed network connection")
}
