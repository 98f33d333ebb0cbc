package receiver

// The udp intake: one recvmmsg(2) per batch of datagrams, on buffers and
// headers made once per listener.
//
// This replaced golang.org/x/net's ipv4/ipv6 PacketConn.ReadBatch, which
// makes the same system call. A profile of the daemon under the UDP bench,
// on one CPU (GOMAXPROCS=1, every thread on that CPU), put about a third of
// the daemon's CPU around that call rather than in it:
//   - ReadBatch repacks all 64 message headers before every call and turns
//     each datagram's source address into a new *net.UDPAddr: a header
//     walk and an allocation per datagram, for an address we only need as
//     a netip.AddrPort;
//   - it enters the kernel through syscall.Syscall, which tells the
//     scheduler that the call may block. With one P, sysmon takes the P
//     from a recvmmsg that copies a full batch (tens of µs), hands it to
//     another thread, and the return has to win it back: futex wake-ups
//     and thread switches, 13% of the daemon's samples in sysmon alone.
//
// The socket is non-blocking and the call passes MSG_DONTWAIT, so recvmmsg
// returns as soon as the queue is empty and never blocks its thread: a raw
// system call (no scheduler hand-off) is correct for it, as for any other
// call that cannot block. Waiting for the next datagram stays with the
// runtime's poller, through syscall.RawConn.Read.
//
// gopkg.in/mcuadros/go-syslog.v2 keeps its job here: framing and parsing go
// through Format (format.go), its format.Format; only the socket read
// below it is ours, as it already was (listen_dgram.go says why).

import (
	"encoding/binary"
	"net/netip"
	"unsafe"

	"golang.org/x/sys/unix"
)

// sockaddrRoom holds either family's socket address as the kernel writes
// it: a sockaddr_in6 is the larger.
type sockaddrRoom [unix.SizeofSockaddrInet6]byte

// udpBatch is one listener's receive state for recvmmsg: a buffer, an
// iovec, a source address and a message header per slot, all reused.
type udpBatch struct {
	hdrs    []unix.Mmsghdr
	iovs    []unix.Iovec
	names   []sockaddrRoom
	bufs    [][]byte
	bufSize int
	filled  int    // slots the last call filled: their headers need a reset
	mapped  []byte // the slab when it is an anonymous mapping: release unmaps it
}

// newUDPBatch makes n slots of bufSize bytes each. Only the pages a
// datagram writes become resident, so the usual short messages cost a page
// per slot, not bufSize.
//
// The slots are cut from one allocation at a stride that is a whole number
// of cache lines but not of pages. Allocated one by one, every buffer of
// more than 32 KiB starts on a page boundary, so the short datagrams of a
// batch all land at the same page offset, in the same few cache sets, and
// evict each other between the kernel's copy and the parse. Staggered,
// the kernel's copy into them fell from 15% to 11% of the intake's CPU
// (BenchmarkUDPIntake under perf).
//
// The slab is an anonymous mapping outside the Go heap when the kernel
// gives one. On the heap its 4.6 MB (64 slots of 64 KiB plus) counted as
// live data that is never garbage, so the collector let the rest of the
// heap grow by as much again before it ran: an idle daemon's resident set
// crept from about 12 to 18 MiB over minutes. The pages of a mapping, like
// those of a heap allocation, become resident only when a datagram writes
// them. release gives the mapping back once the listener stops.
func newUDPBatch(n, bufSize int) *udpBatch {
	const line = 64
	stride := (bufSize+line-1)/line*line + line
	if stride%4096 == 0 {
		stride += line
	}
	var mapped []byte
	slab, err := unix.Mmap(-1, 0, n*stride, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANON)
	if err == nil {
		mapped = slab
	} else {
		slab = make([]byte, n*stride)
	}
	b := &udpBatch{
		mapped:  mapped,
		hdrs:    make([]unix.Mmsghdr, n),
		iovs:    make([]unix.Iovec, n),
		names:   make([]sockaddrRoom, n),
		bufs:    make([][]byte, n),
		bufSize: bufSize,
		filled:  n,
	}
	for i := range n {
		b.bufs[i] = slab[i*stride : i*stride+bufSize : i*stride+bufSize]
		b.iovs[i].Base = &b.bufs[i][0]
		b.iovs[i].SetLen(bufSize)
		h := &b.hdrs[i].Hdr
		h.Name = &b.names[i][0]
		h.Iov = &b.iovs[i]
		h.SetIovlen(1)
	}
	return b
}

// release unmaps the slab if it is a mapping. No datagram's bytes may be
// used after it: handleDatagram copies what it keeps, and the listener
// calls release only when it has stopped reading.
func (b *udpBatch) release() {
	if b.mapped != nil {
		_ = unix.Munmap(b.mapped)
		b.mapped = nil
		b.bufs = nil
	}
}

// recv reads up to len(b.hdrs) queued datagrams from the socket fd with
// one recvmmsg and returns how many it read; with none queued it returns
// unix.EAGAIN.
func (b *udpBatch) recv(fd uintptr) (int, error) {
	// The kernel overwrote the address length and flags of the slots it
	// filled last time; the rest are as set here before.
	for i := range b.filled {
		b.hdrs[i].Hdr.Namelen = uint32(len(sockaddrRoom{}))
		b.hdrs[i].Hdr.Flags = 0
		b.hdrs[i].Len = 0
	}
	b.filled = 0
	n, _, errno := unix.RawSyscall6(unix.SYS_RECVMMSG, fd, uintptr(unsafe.Pointer(&b.hdrs[0])),
		uintptr(len(b.hdrs)), unix.MSG_DONTWAIT, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	b.filled = int(n)
	return int(n), nil
}

// datagram returns slot i's bytes after a recv, and whether the datagram
// was larger than the buffer (then the bytes are its start). A datagram
// that fills the buffer exactly counts as larger: the buffer is one byte
// over the largest message allowed.
func (b *udpBatch) datagram(i int) (data []byte, truncated bool) {
	n := int(b.hdrs[i].Len)
	return b.bufs[i][:n], n >= b.bufSize || b.hdrs[i].Hdr.Flags&unix.MSG_TRUNC != 0
}

// sender returns slot i's source address after a recv.
func (b *udpBatch) sender(i int) netip.AddrPort {
	return parseSockaddr(b.names[i][:min(int(b.hdrs[i].Hdr.Namelen), len(sockaddrRoom{}))])
}

// parseSockaddr reads a sockaddr_in or sockaddr_in6 as the kernel wrote
// it (family in host order, port in network order) into a canonical
// address (IPv4-mapped IPv6 as IPv4, no zone), without allocating.
// Anything else, or too short, is the zero AddrPort, which no allow list
// contains.
func parseSockaddr(raw []byte) netip.AddrPort {
	if len(raw) < 2 {
		return netip.AddrPort{}
	}
	switch binary.NativeEndian.Uint16(raw) {
	case unix.AF_INET:
		if len(raw) < unix.SizeofSockaddrInet4 {
			return netip.AddrPort{}
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte(raw[4:8])), binary.BigEndian.Uint16(raw[2:]))
	case unix.AF_INET6:
		if len(raw) < unix.SizeofSockaddrInet6 {
			return netip.AddrPort{}
		}
		// The scope id (raw[24:28]) is dropped, as CanonicalAddr drops
		// zones.
		return netip.AddrPortFrom(netip.AddrFrom16([16]byte(raw[8:24])).Unmap(), binary.BigEndian.Uint16(raw[2:]))
	}
	return netip.AddrPort{}
}
