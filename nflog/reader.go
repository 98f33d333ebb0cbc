package nflog

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	gonflog "github.com/florianl/go-nflog/v2"
	"golang.org/x/sys/unix"

	"github.com/sysban/sysban"
)

// Sink receives the events. The daemon implements it.
type Sink interface {
	// Handle takes a probe written as a message, like receiver.Handler:
	// *pipeline.Pipeline fits. It must not retain m.
	Handle(m *sysban.Message)
	// BannedPacket counts one logged packet p of an address banned in
	// jail. It must be quick: it runs for every logged packet.
	BannedPacket(jail string, p Packet, at time.Time)
}

// Defaults for Options.
const (
	DefaultSnaplen   = 128
	DefaultQueueSize = 4096
	// socketBuffer is the receive buffer asked for: at 128 bytes a packet
	// (about 250 with netlink framing) it holds some 16,000 logged
	// packets, a few seconds of every log rule at its limit.
	socketBuffer = 4 << 20
	// flushTimeout is how long the kernel holds logged packets before
	// sending a batch that is not full, in 1/100 s: 0.1 s instead of the
	// kernel's default 1 s, so a probe counts at once.
	flushTimeout = 10
	// closeWait bounds how long Close waits for the library's read loop.
	closeWait = 2 * time.Second
	// lossReport is how often losses are logged at most.
	lossReport = time.Minute
)

// Options configure a Reader.
type Options struct {
	Group     uint16       // NFLOG group to read
	Snaplen   uint32       // bytes of each packet the kernel copies; default DefaultSnaplen
	NetNS     int          // network namespace fd; 0 = the current one
	QueueSize int          // events waiting for the Sink; default DefaultQueueSize
	Logger    *slog.Logger // default: discard
}

// Stats are a Reader's counters since Open.
type Stats struct {
	Packets   uint64 // logged packets received
	Banned    uint64 // of them, from banned addresses, delivered
	Probes    uint64 // of them, probes delivered
	Foreign   uint64 // with a prefix not sysban's (another rule logging to the group)
	Malformed uint64 // whose headers could not be read, or no probe after all
	Dropped   uint64 // dropped because the Sink fell behind (queue full)
	Lost      uint64 // times the kernel dropped messages for a full socket buffer (ENOBUFS)
}

// event is one parsed packet on its way to the Sink.
type event struct {
	kind Kind
	jail string
	p    Packet
	at   time.Time
}

// Reader reads one NFLOG group. Open binds the group, Run delivers the
// events until its context ends, Close (called by Run) unbinds.
type Reader struct {
	opts Options
	log  *slog.Logger
	nf   *gonflog.Nflog

	// loopCtx is the context the library's read loop was registered with
	// and stop cancels it. It has to exist at Open, before Run's context
	// does, hence kept here.
	loopCtx  context.Context
	stop     context.CancelFunc
	stopped  chan struct{} // closed when the read loop ends
	stopOnce sync.Once
	failed   chan error // the error that ended the read loop, if any
	events   chan event // never closed: the read loop may outlive Close by a moment

	closeOnce sync.Once
	closeErr  error

	packets, banned, probes, foreign, malformed, dropped, lost atomic.Uint64
}

// Open binds the group and starts reading. It fails with an explanation
// when the kernel has no nfnetlink_log, when sysban lacks CAP_NET_ADMIN and
// when another program already reads the group. Call Run, or Close.
func Open(opts Options) (*Reader, error) {
	if opts.Snaplen == 0 {
		opts.Snaplen = DefaultSnaplen
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	r := &Reader{
		opts:    opts,
		log:     log,
		stopped: make(chan struct{}),
		failed:  make(chan error, 1),
		events:  make(chan event, opts.QueueSize),
	}
	nf, err := gonflog.Open(&gonflog.Config{
		Group: opts.Group,
		// The library's default copy mode is CopyNone: no payload at
		// all. Bufsize is the copy range (not a buffer size); the log
		// rule's snaplen also applies, the smaller wins.
		Copymode: gonflog.CopyPacket,
		Bufsize:  opts.Snaplen,
		Timeout:  flushTimeout,
		NetNS:    opts.NetNS,
		Logger:   libLogger{log},
	})
	if err != nil {
		return nil, r.explain("open netlink", err)
	}
	r.nf = nf
	// The library leaves the socket at the system default (about 200
	// KiB); a burst of logged packets overflows it and the kernel drops
	// messages (ENOBUFS). FORCE needs CAP_NET_ADMIN, which reading NFLOG
	// needs anyway; the plain option is capped by net.core.rmem_max.
	if rc, err := nf.Con.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) {
			if unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, socketBuffer) != nil {
				_ = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, socketBuffer)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	r.loopCtx, r.stop = ctx, cancel
	if err := nf.RegisterWithErrorFunc(ctx, r.hook, r.onError); err != nil {
		cancel()
		_ = nf.Close()
		return nil, r.explain(fmt.Sprintf("bind group %d", opts.Group), err)
	}
	log.Info("nflog: reading group", "group", opts.Group, "snaplen", opts.Snaplen)
	return r, nil
}

// hook runs on the library's read goroutine for every logged packet. It
// parses and queues without blocking, so the socket keeps being drained
// whatever the Sink does; it always returns 0, since anything else ends
// the library's read loop for good.
func (r *Reader) hook(a gonflog.Attribute) int {
	r.packets.Add(1)
	if a.Prefix == nil {
		r.foreign.Add(1)
		return 0
	}
	kind, jail, ok := ParsePrefix(*a.Prefix)
	if !ok {
		r.foreign.Add(1)
		return 0
	}
	if a.Payload == nil {
		r.malformed.Add(1)
		return 0
	}
	p, err := ParsePacket(*a.Payload)
	if err != nil {
		r.malformed.Add(1)
		return 0
	}
	select {
	case r.events <- event{kind: kind, jail: jail, p: p, at: time.Now()}:
	default:
		r.dropped.Add(1)
	}
	return 0
}

// onError is the library's error function. Its return value decides
// whether the read loop goes on (0) or ends (anything else) without a word
// to anyone, so an end is recorded here for Run.
func (r *Reader) onError(err error) int {
	if errors.Is(err, unix.ENOBUFS) {
		// The kernel could not queue messages for us and dropped them;
		// the socket itself is fine.
		r.lost.Add(1)
		return 0
	}
	if r.loopCtx.Err() != nil {
		// Stopping: the library cancels a blocked read with a deadline
		// in the past, which lands here as a timeout.
		r.markStopped()
		return 1
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return 0
	}
	select {
	case r.failed <- err:
	default:
	}
	r.markStopped()
	return 1
}

func (r *Reader) markStopped() { r.stopOnce.Do(func() { close(r.stopped) }) }

// Run hands the events to sink until ctx is done (it then returns nil) or
// the read loop fails (it returns why). Either way it closes the reader.
// Losses are logged, at most once a minute.
func (r *Reader) Run(ctx context.Context, sink Sink) error {
	defer r.Close()
	tick := time.NewTicker(lossReport)
	defer tick.Stop()
	var reported Stats
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-r.failed:
			return fmt.Errorf("nflog: group %d: read: %w", r.opts.Group, err)
		case ev := <-r.events:
			r.deliver(sink, ev)
		case <-tick.C:
			reported = r.reportLosses(reported)
		}
	}
}

// deliver hands one event to sink.
func (r *Reader) deliver(sink Sink, ev event) {
	switch ev.kind {
	case KindBanned:
		r.banned.Add(1)
		sink.BannedPacket(ev.jail, ev.p, ev.at)
	case KindProbe:
		// The rule matched a new connection; a payload saying otherwise
		// (a foreign rule with our prefix) is no probe.
		m, ok := ProbeMessage(ev.p, r.opts.Group, ev.at)
		if !ok {
			r.malformed.Add(1)
			return
		}
		r.probes.Add(1)
		sink.Handle(m)
	}
}

// reportLosses logs what was lost since last and returns the new counts.
func (r *Reader) reportLosses(last Stats) Stats {
	st := r.Stats()
	if st.Dropped > last.Dropped || st.Lost > last.Lost {
		r.log.Warn("nflog: logged packets lost; counts and probes may be low",
			"group", r.opts.Group, "queue_full", st.Dropped-last.Dropped, "kernel_enobufs", st.Lost-last.Lost)
	}
	if st.Foreign > last.Foreign || st.Malformed > last.Malformed {
		r.log.Debug("nflog: logged packets ignored", "group", r.opts.Group,
			"foreign_prefix", st.Foreign-last.Foreign, "malformed", st.Malformed-last.Malformed)
	}
	return st
}

// Stats returns the counters.
func (r *Reader) Stats() Stats {
	return Stats{
		Packets: r.packets.Load(), Banned: r.banned.Load(), Probes: r.probes.Load(),
		Foreign: r.foreign.Load(), Malformed: r.malformed.Load(),
		Dropped: r.dropped.Load(), Lost: r.lost.Load(),
	}
}

// Close stops reading and releases the group. It is safe to call more
// than once and after Run.
func (r *Reader) Close() error {
	r.closeOnce.Do(func() {
		// The library's Close waits for a goroutine that only ends when
		// the registration context is cancelled: cancel first, or Close
		// blocks for ever. Waiting for the read loop to notice keeps its
		// WaitGroup from being waited on while that goroutine may still
		// be adding to it. The loop can also end without telling us (a
		// cancel between two reads), hence the bound.
		r.stop()
		t := time.NewTimer(closeWait)
		select {
		case <-r.stopped:
		case <-t.C:
		}
		t.Stop()
		if err := r.nf.Close(); err != nil {
			r.closeErr = fmt.Errorf("nflog: group %d: close: %w", r.opts.Group, err)
		}
		r.log.Info("nflog: stopped reading group", "group", r.opts.Group, "stats", fmt.Sprintf("%+v", r.Stats()))
	})
	return r.closeErr
}

// explain turns the errors an operator can fix into instructions. The
// library formats kernel errors into its own with %v, so errors.Is cannot
// see the errno; the errno's text is matched instead.
func (r *Reader) explain(op string, err error) error {
	text := err.Error()
	has := func(e syscall.Errno) bool { return errors.Is(err, e) || strings.Contains(text, e.Error()) }
	g := r.opts.Group
	switch {
	case has(syscall.EPERM), has(syscall.EACCES):
		if holder := groupHolder(g); holder != "" {
			return fmt.Errorf("nflog: %s: group %d is already read by another program (netlink port %s in /proc/net/netfilter/nfnetlink_log: ulogd, tcpdump -i nflog:%d, another sysban?); stop it or set nflog.group: %w", op, g, holder, g, err)
		}
		return fmt.Errorf("nflog: %s: operation not permitted: reading NFLOG needs CAP_NET_ADMIN (run as root or grant the capability), or another program holds group %d: %w", op, g, err)
	case has(syscall.EINVAL), has(syscall.ENOENT), has(syscall.EPROTONOSUPPORT), has(syscall.EOPNOTSUPP), has(syscall.EAFNOSUPPORT):
		return fmt.Errorf("nflog: %s: nfnetlink_log not available (modprobe nfnetlink_log, or a kernel with CONFIG_NETFILTER_NETLINK_LOG; or set nflog.enabled: false): %w", op, err)
	case has(syscall.EBUSY):
		return fmt.Errorf("nflog: %s: group %d is busy (already bound on this socket): %w", op, g, err)
	}
	return fmt.Errorf("nflog: %s: %w", op, err)
}

// groupHolder returns the netlink port id listening on group according to
// /proc/net/netfilter/nfnetlink_log ("" when none or unreadable). Lines
// are "group portid qlen copy_mode copy_range flushtimeout use".
func groupHolder(group uint16) string {
	data, err := os.ReadFile("/proc/net/netfilter/nfnetlink_log")
	if err != nil {
		return ""
	}
	return parseHolder(string(data), group)
}

func parseHolder(table string, group uint16) string {
	for _, line := range strings.Split(table, "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		if n, err := strconv.ParseUint(f[0], 10, 16); err == nil && uint16(n) == group {
			return f[1]
		}
	}
	return ""
}

// libLogger passes the library's messages to slog at debug level. The
// library reports its normal shutdown ("context canceled", a failed
// unbind on the closed socket) through Errorf; real errors reach onError.
type libLogger struct{ log *slog.Logger }

func (l libLogger) Debugf(format string, args ...any) {
	l.log.Debug("nflog: library: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}

func (l libLogger) Errorf(format string, args ...any) {
	l.log.Debug("nflog: library: " + strings.TrimSpace(fmt.Sprintf(format, args...)))
}
