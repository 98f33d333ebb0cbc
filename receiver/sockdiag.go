package receiver

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"time"

	"golang.org/x/sys/unix"
)

// sockDiag asks the kernel's socket table (NETLINK_SOCK_DIAG, inet_diag)
// who owns the other end of a loopback connection: the uid that created
// the peer's socket, which the peer cannot choose or forge. One exact
// lookup by 4-tuple costs a netlink round trip (see BenchmarkPeerUID),
// paid once per accepted loopback connection, never per message.
//
// There is no /proc/net/tcp fallback: a scan of that table cost 3.7 ms
// per lookup with a thousand sockets open, in the accept loop, so a
// connection flood would stall accepting. Without sock_diag (a sandbox
// that forbids it) loopback senders carry no uid and share their
// address's per-source bound; the listener says so at start.
//
// A sockDiag is used by one goroutine (a listener's accept loop).
type sockDiag struct {
	fd  int
	seq uint32
	buf []byte
}

// Sizes of the kernel structures (linux/inet_diag.h, linux/netlink.h).
const (
	nlmsgHdrLen     = 16
	inetDiagSockID  = 48 // sport, dport, src[4], dst[4], if, cookie[2]
	inetDiagReqLen  = 8 + inetDiagSockID
	inetDiagMsgUID  = 4 + inetDiagSockID + 12 // offset of idiag_uid in inet_diag_msg
	inetDiagMsgIno  = inetDiagMsgUID + 4      // and of idiag_inode
	sockDiagTimeout = time.Second
)

func newSockDiag() (*sockDiag, error) {
	fd, err := unix.Socket(unix.AF_NETLINK, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.NETLINK_SOCK_DIAG)
	if err != nil {
		return nil, fmt.Errorf("sock_diag socket: %w", err)
	}
	// A lookup is answered at once or not at all; never hang the
	// accept loop on a kernel that does not answer.
	tv := unix.NsecToTimeval(sockDiagTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sock_diag timeout: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("sock_diag bind: %w", err)
	}
	return &sockDiag{fd: fd, buf: make([]byte, 4096)}, nil
}

func (d *sockDiag) close() {
	if d != nil {
		unix.Close(d.fd)
	}
}

var errNoSocket = errors.New("sock_diag: no such socket")

// uid returns the owner of the socket whose local address is peer and
// whose remote address is local: the far end of a TCP connection we
// accepted from peer on local (proto unix.IPPROTO_TCP). The kernel's UDP
// lookup runs the other way round (the socket that would receive from
// the first address): for a UDP sender pass local and peer swapped. Not
// used for UDP: the sender's socket is usually gone before we read.
func (d *sockDiag) uid(proto uint8, peer, local netip.AddrPort) (uint32, error) {
	peerA, localA := peer.Addr().Unmap(), local.Addr().Unmap()
	family := uint8(unix.AF_INET6)
	if peerA.Is4() && localA.Is4() {
		family = unix.AF_INET
	} else {
		peerA, localA = netip.AddrFrom16(peerA.As16()), netip.AddrFrom16(localA.As16())
	}
	d.seq++
	req := make([]byte, nlmsgHdrLen+inetDiagReqLen)
	ne := binary.NativeEndian
	ne.PutUint32(req[0:], uint32(len(req)))
	ne.PutUint16(req[4:], unix.SOCK_DIAG_BY_FAMILY)
	ne.PutUint16(req[6:], unix.NLM_F_REQUEST)
	ne.PutUint32(req[8:], d.seq)
	r := req[nlmsgHdrLen:]
	r[0], r[1] = family, proto
	ne.PutUint32(r[4:], 0xffffffff) // every state
	id := r[8:]
	binary.BigEndian.PutUint16(id[0:], peer.Port())
	binary.BigEndian.PutUint16(id[2:], local.Port())
	if family == unix.AF_INET {
		a, b := peerA.As4(), localA.As4()
		copy(id[4:], a[:])
		copy(id[20:], b[:])
	} else {
		a, b := peerA.As16(), localA.As16()
		copy(id[4:], a[:])
		copy(id[20:], b[:])
	}
	ne.PutUint32(id[40:], 0xffffffff) // INET_DIAG_NOCOOKIE
	ne.PutUint32(id[44:], 0xffffffff)
	if err := unix.Sendto(d.fd, req, 0, &unix.SockaddrNetlink{Family: unix.AF_NETLINK}); err != nil {
		return 0, fmt.Errorf("sock_diag send: %w", err)
	}
	for {
		n, _, err := unix.Recvfrom(d.fd, d.buf, 0)
		if err != nil {
			return 0, fmt.Errorf("sock_diag receive: %w", err)
		}
		b := d.buf[:n]
		for len(b) >= nlmsgHdrLen {
			l := int(ne.Uint32(b[0:]))
			typ := ne.Uint16(b[4:])
			seq := ne.Uint32(b[8:])
			if l < nlmsgHdrLen || l > len(b) {
				return 0, errors.New("sock_diag: truncated reply")
			}
			body := b[nlmsgHdrLen:l]
			b = b[min(len(b), (l+3)&^3):]
			if seq != d.seq {
				continue // a late answer to an earlier, timed-out lookup
			}
			switch typ {
			case unix.NLMSG_ERROR:
				if len(body) >= 4 {
					if errno := -int32(ne.Uint32(body)); errno != 0 {
						if unix.Errno(errno) == unix.ENOENT {
							return 0, errNoSocket
						}
						return 0, fmt.Errorf("sock_diag: %w", unix.Errno(errno))
					}
				}
				return 0, errNoSocket
			case unix.SOCK_DIAG_BY_FAMILY:
				if len(body) < inetDiagMsgIno+4 {
					return 0, errors.New("sock_diag: short reply")
				}
				// No inode: no process holds the socket any more. A peer
				// that closed before we asked is left as a time-wait
				// socket, which the kernel reports with uid 0: taken as
				// is, any user's connection closed at once would read as
				// root's (a forwarder's).
				if ne.Uint32(body[inetDiagMsgIno:]) == 0 {
					return 0, errNoSocket
				}
				return ne.Uint32(body[inetDiagMsgUID:]), nil
			}
		}
	}
}
