package nft

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	sysban "github.com/sysban/sysban"
	"golang.org/x/sys/unix"
)

// Defaults for Options.
const (
	DefaultTable     = "sysban"
	DefaultPriority  = -10 // filter - 10; see the package documentation
	DefaultChunkSize = 1000
)

// Options configure a Backend. The zero value is usable.
type Options struct {
	Table     string // table name in family inet; default "sysban"
	Priority  *int   // input hook priority of the "input" chain; nil means DefaultPriority (-10, see package doc)
	NetNS     int    // network namespace fd to work in; 0 = the current one
	Logger    *slog.Logger
	ChunkSize int // elements per set-element message; default 1000, capped at maxChunkSize

	// ObserveWrite, if set, is called after each netlink batch the kernel
	// committed, with the operation ("setup", "apply" or "remove"), how long
	// the batch took and how many set elements it carried. It feeds the
	// sysban_nft_write_seconds histogram. It runs with the Backend's lock
	// held, so it must be quick (a histogram Observe is).
	ObserveWrite func(op string, d time.Duration, elements int)
}

// Backend owns the sysban table in one network namespace. It is the single
// writer of that table; its methods are safe for concurrent use and are
// serialised by a mutex.
type Backend struct {
	opts  Options
	log   *slog.Logger
	table *nftables.Table

	mu     sync.Mutex
	conn   *nftables.Conn
	nl     *netlink.Conn // the socket under conn, for deadlines and buffers
	closed bool
	jails  map[string]*jailSets   // set by Setup
	books  map[string]*prefixBook // per jail: its prefix bans and the segments the kernel holds (prefixes.go)
	rules  []sysban.JailRule      // as given to the last successful Setup, in order; nil before it and after Teardown
	gen    uint64                 // counts successful Setups; Guard uses it to notice a reload under it
	nextID uint32                 // set IDs for the next batch (see doc.go)

	// portID is the netlink port ID of conn's socket. Guard's monitor
	// ignores notifications of changes this socket made.
	portID atomic.Uint32
	// lastApply is when the last Apply ended (Unix nanoseconds): Guard
	// defers its periodic element comparisons while Applies stream.
	lastApply atomic.Int64

	// Batch limits derived from the socket buffers we actually got.
	maxBatchBytes int
	maxBatchMsgs  int
}

// socketBuffer is what we ask for as netlink send and receive buffer. A
// batch is one sendmsg, so the send buffer bounds the batch (the kernel
// refuses a message longer than sk_sndbuf-32 with EMSGSIZE); every message
// of the batch is acknowledged, so the receive buffer bounds how many
// messages one batch may hold before acks are dropped (ENOBUFS). 16 MiB
// holds about 400,000 elements per batch. Memory is only used while a batch
// is in flight.
const socketBuffer = 16 << 20

// ackCost is a generous estimate of the receive-buffer space (skb truesize)
// one acknowledgement takes.
const ackCost = 2048

// Open connects to nf_tables (in opts.NetNS if set) and checks that it may
// use it. It does not change the ruleset; call Setup for that.
func Open(opts Options) (*Backend, error) {
	if opts.Table == "" {
		opts.Table = DefaultTable
	}
	if !validName(opts.Table) {
		return nil, fmt.Errorf("nft: invalid table name %q", opts.Table)
	}
	if opts.Priority == nil {
		p := DefaultPriority
		opts.Priority = &p
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	switch {
	case opts.ChunkSize <= 0:
		opts.ChunkSize = DefaultChunkSize
	case opts.ChunkSize > maxChunkSize:
		log.Warn("nft: chunk size too large for one netlink attribute, capped",
			"requested", opts.ChunkSize, "used", maxChunkSize)
		opts.ChunkSize = maxChunkSize
	}
	b := &Backend{
		opts:  opts,
		log:   log,
		table: &nftables.Table{Name: opts.Table, Family: nftables.TableFamilyINet},
		jails: map[string]*jailSets{},
		books: map[string]*prefixBook{},
	}
	if err := b.dial(); err != nil {
		return nil, err
	}
	// Listing tables needs CAP_NET_ADMIN and the nf_tables module, so it
	// tells us now, with a clear message, rather than at the first ban.
	if _, err := b.conn.ListTablesOfFamily(nftables.TableFamilyINet); err != nil {
		_ = b.conn.CloseLasting()
		return nil, explain("probe nf_tables", err)
	}
	return b, nil
}

// dial opens the lasting netlink connection and tunes its socket.
func (b *Backend) dial() error {
	conn, nl, err := openConn(b.opts.NetNS)
	if err != nil {
		return err
	}
	b.conn, b.nl = conn, nl
	b.portID.Store(nl.PID())
	b.tuneSocket()
	return nil
}

// openConn opens a lasting nftables connection in the network namespace
// netns (0: the current one) and returns it with the socket under it.
func openConn(netns int) (*nftables.Conn, *netlink.Conn, error) {
	var nl *netlink.Conn
	capture := func(c *netlink.Conn) error {
		nl = c
		return nil
	}
	conn, err := nftables.New(
		nftables.AsLasting(),
		nftables.WithNetNSFd(netns),
		nftables.WithSockOptions(capture),
	)
	if err != nil {
		return nil, nil, explain("open netlink", err)
	}
	if nl == nil {
		_ = conn.CloseLasting()
		return nil, nil, errors.New("nft: open netlink: library did not expose the socket")
	}
	return conn, nl, nil
}

// tuneSocket raises the socket buffers and derives the batch limits. Failure
// to raise them is not fatal: smaller limits just mean more batches.
func (b *Backend) tuneSocket() {
	// Errors carry only the errno and the header, not a copy of the whole
	// (up to 64 KiB) message they answer, which would fill the receive
	// buffer. Extended acks stay off: mdlayher/netlink misparses a capped
	// extended ack and loses the errno ("not enough data for netlink error
	// code"), and we need the errno (ENOENT in Remove).
	if err := b.nl.SetOption(netlink.CapAcknowledge, true); err != nil {
		b.log.Debug("nft: netlink cap-ack not set", "err", err)
	}
	setBuf(b.nl, unix.SO_SNDBUFFORCE, unix.SO_SNDBUF, socketBuffer)
	setBuf(b.nl, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, socketBuffer)

	wb, err := b.nl.WriteBuffer()
	if err != nil || wb <= 0 {
		wb = 212992 // the usual Linux default
	}
	rb, err := b.nl.ReadBuffer()
	if err != nil || rb <= 0 {
		rb = 212992
	}
	if err := widenDumps(b.nl); err != nil {
		b.log.Debug("nft: netlink dump size not raised", "err", err)
	}
	// The kernel reports twice the requested size (it accounts for
	// overhead); half of it is what payload can really use.
	b.maxBatchBytes = max(wb/2, 64<<10)
	b.maxBatchMsgs = max(rb/ackCost, 16)
	b.log.Debug("nft: netlink socket", "sndbuf", wb, "rcvbuf", rb,
		"max_batch_bytes", b.maxBatchBytes, "max_batch_msgs", b.maxBatchMsgs)
}

// dumpBuffer is the largest part the kernel sends of a dump (32 KiB less
// skb overhead).
const dumpBuffer = 32 << 10

// widenDumps makes the kernel send dumps in 32 KiB parts instead of 4 KiB.
// The kernel sizes each part of a dump by the largest buffer this socket
// has ever passed to recvmsg, and mdlayher/netlink always passes exactly
// the size of the message waiting, so parts would stay at one page. That
// matters for set elements: the kernel resumes every part by walking the
// set from the start, so reading n elements costs O(n^2 / part size); with
// 100,000 elements, 4 KiB parts take about 1.7 s. One peek with a large
// buffer at an answer we asked for fixes the size for the socket's life.
func widenDumps(nl *netlink.Conn) error {
	req := netlink.Message{
		Header: netlink.Header{
			Type:  netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8 | unix.NFT_MSG_GETGEN),
			Flags: netlink.Request,
		},
		Data: []byte{unix.AF_UNSPEC, unix.NFNETLINK_V0, 0, 0},
	}
	// The kernel answers at once; the deadline only guards against a
	// misbehaving one.
	if err := nl.SetReadDeadline(time.Now().Add(5 * time.Second)); err != nil {
		return err
	}
	defer func() { _ = nl.SetReadDeadline(time.Time{}) }()
	if _, err := nl.Send(req); err != nil {
		return err
	}
	rc, err := nl.SyscallConn()
	if err != nil {
		return err
	}
	buf := make([]byte, dumpBuffer)
	var perr error
	err = rc.Read(func(fd uintptr) bool {
		_, _, _, _, perr = unix.Recvmsg(int(fd), buf, nil, unix.MSG_PEEK|unix.MSG_DONTWAIT)
		return perr != unix.EAGAIN
	})
	if err == nil {
		err = perr
	}
	// Consume the answer whatever happened, so the next request does not
	// read it.
	if _, rerr := nl.Receive(); err == nil {
		err = rerr
	}
	return err
}

// setBuf sets a socket buffer, preferring the FORCE variant (which needs
// CAP_NET_ADMIN, which we need anyway) because the plain one is capped by
// net.core.[rw]mem_max.
func setBuf(nl *netlink.Conn, force, plain, size int) {
	rc, err := nl.SyscallConn()
	if err != nil {
		return
	}
	_ = rc.Control(func(fd uintptr) {
		if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, force, size) != nil {
			_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, plain, size)
		}
	})
}

// resetConn replaces the connection after an error or an interrupted
// operation: unread acknowledgements of a failed batch would otherwise be
// taken as answers to the next request.
func (b *Backend) resetConn() {
	if b.conn != nil {
		_ = b.conn.CloseLasting()
	}
	b.conn, b.nl = nil, nil
	b.portID.Store(0)
	if err := b.dial(); err != nil {
		b.log.Error("nft: reopen netlink", "err", err)
	}
}

// do runs fn with the connection, under b.mu (held by the caller), honouring
// ctx: a deadline or cancellation interrupts a blocked netlink call.
func (b *Backend) do(ctx context.Context, fn func(c *nftables.Conn) error) error {
	if b.closed {
		return errors.New("nft: backend closed")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if b.conn == nil {
		if err := b.dial(); err != nil {
			return err
		}
	}
	nl := b.nl
	if d, ok := ctx.Deadline(); ok {
		_ = nl.SetDeadline(d)
	}
	stop := context.AfterFunc(ctx, func() { _ = nl.SetDeadline(time.Unix(1, 0)) })
	err := fn(b.conn)
	interrupted := !stop()
	if err == nil && !interrupted {
		_ = nl.SetDeadline(time.Time{})
		return nil
	}
	// After an error the socket may hold unread answers, and after an
	// interruption a deadline in the past: start afresh either way. An
	// operation that completed despite a late cancellation still succeeded.
	b.resetConn()
	if err == nil {
		return nil
	}
	if cerr := ctx.Err(); cerr != nil && (interrupted || errors.Is(err, os.ErrDeadlineExceeded)) {
		return cerr
	}
	return err
}

// Close releases the netlink connection. It leaves the table, and with it
// every ban, in the kernel.
func (b *Backend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return nil
	}
	b.closed = true
	if b.conn == nil {
		return nil
	}
	err := b.conn.CloseLasting()
	b.conn, b.nl = nil, nil
	if err != nil {
		return fmt.Errorf("nft: close: %w", err)
	}
	return nil
}

// explain wraps a netlink error, turning the two errors an operator can fix
// into instructions.
func explain(op string, err error) error {
	switch {
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return fmt.Errorf("nft: %s: netlink: operation not permitted: sysban needs CAP_NET_ADMIN (run as root or grant the capability): %w", op, err)
	case errors.Is(err, syscall.EPROTONOSUPPORT), errors.Is(err, syscall.EOPNOTSUPP),
		errors.Is(err, syscall.EAFNOSUPPORT):
		return fmt.Errorf("nft: %s: nf_tables kernel module not available (modprobe nf_tables, or use a kernel with CONFIG_NF_TABLES): %w", op, err)
	}
	return fmt.Errorf("nft: %s: %w", op, err)
}

// validName reports whether s is usable as a table or set name: the kernel
// takes any string, but operators read and name bans with the nft tool, so
// names stay plain: ASCII letters, digits, '_', '-' and '.', not starting
// with '-' or '.'. A leading digit is allowed because the configuration
// allows jail names like "3proxy"; the kernel takes such set names and
// "nft list ruleset" shows them, but nft 1.0.6 cannot name them on its
// command line ("nft list set inet sysban 3proxy_v4" is a syntax error).
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_':
		case i > 0 && (c == '-' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// maxNameLen keeps "<jail>_v4" well inside the kernel's 256-byte name limit.
const maxNameLen = 200
