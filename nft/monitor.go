package nft

import (
	"encoding/binary"
	"errors"
	"sync/atomic"

	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// monitor reads nf_tables change notifications (the NFNLGRP_NFTABLES
// multicast group) and kicks Guard when another process changed the table.
//
// It is written against the netlink socket rather than google/nftables'
// Monitor: in v0.3.0 that monitor's type filter is
// "monitorFlags&1<<msgType == 0", which Go parses as
// "(monitorFlags&1)<<msgType == 0", so a deletions-only monitor drops
// every message; and it decodes every element of every notification, while
// Guard only needs each message's type, sender and table name.
type monitor struct {
	nl       *netlink.Conn
	done     chan struct{} // closed when run returns
	stopping atomic.Bool
	err      error // why run returned, when not stopped; read after done
}

// startMonitor starts the monitor, or logs why it cannot (once) and leaves
// the reconcile to do the work.
func (g *guard) startMonitor(kick, overrun chan<- struct{}) {
	nl, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: g.b.opts.NetNS})
	if err == nil {
		err = nl.JoinGroup(unix.NFNLGRP_NFTABLES)
		if err != nil {
			_ = nl.Close()
		}
	}
	if err != nil {
		if !g.monWarned {
			g.log.Warn("nft: guard: cannot watch nftables changes; relying on the reconcile every interval",
				"interval", g.opts.Interval, "err", err)
			g.monWarned = true
		}
		return
	}
	g.monWarned = false
	setBuf(nl, unix.SO_RCVBUFFORCE, unix.SO_RCVBUF, monitorBuffer)
	m := &monitor{nl: nl, done: make(chan struct{})}
	g.mon = m
	go m.run(g.b.table.Name, &g.b.portID, kick, overrun)
}

// stopMonitor stops the monitor and waits for its goroutine.
func (g *guard) stopMonitor() {
	m := g.mon
	if m == nil {
		return
	}
	g.mon = nil
	m.stopping.Store(true)
	_ = m.nl.Close()
	<-m.done
}

// monitorDone is closed when the monitor stops by itself; nil (never
// ready) without a monitor.
func (g *guard) monitorDone() <-chan struct{} {
	if g.mon == nil {
		return nil
	}
	return g.mon.done
}

// run reads notifications until the socket fails or is closed. A change
// of ours by someone else kicks; lost notifications signal overrun.
//
// It reads each datagram into one buffer kept for the monitor's life and
// looks at its messages in place: every element this host adds comes back
// here as a notification (the kernel sends them to any listener, and the
// committer gets its own), 100,000 of them after a late join and 10,000 a
// second in a storm, and reading them through netlink.Conn.Receive
// allocated a buffer and a message slice per datagram, megabytes of
// garbage only to find them ours.
func (m *monitor) run(table string, self *atomic.Uint32, kick, overrun chan<- struct{}) {
	defer close(m.done)
	rc, err := m.nl.SyscallConn()
	if err != nil {
		m.err = err
		_ = m.nl.Close()
		return
	}
	buf := make([]byte, monitorDatagram)
	for {
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			n, _, _, _, rerr = unix.Recvmsg(int(fd), buf, nil, unix.MSG_DONTWAIT)
			return rerr != unix.EAGAIN
		})
		if m.stopping.Load() {
			return
		}
		if err == nil {
			err = rerr
		}
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) {
				// Notifications were dropped; any of them may have been
				// the one that matters. Our own large Applies cause this
				// too (one notification per element).
				signal(overrun)
				continue
			}
			m.err = err
			_ = m.nl.Close()
			return
		}
		if foreignIn(buf[:n], table, self.Load()) {
			signal(kick)
		}
	}
}

// monitorDatagram is the largest notification datagram: the kernel packs
// a transaction's notifications into datagrams of at most a page or two.
const monitorDatagram = 64 << 10

// foreignIn reports whether any netlink message in the datagram b is a
// foreignChange; a malformed datagram counts as one (the check it causes
// says for sure).
func foreignIn(b []byte, table string, self uint32) bool {
	for len(b) > 0 {
		if len(b) < unix.NLMSG_HDRLEN {
			return true
		}
		n := int(binary.NativeEndian.Uint32(b))
		if n < unix.NLMSG_HDRLEN || n > len(b) {
			return true
		}
		msg := netlink.Message{
			Header: netlink.Header{
				Length: uint32(n),
				Type:   netlink.HeaderType(binary.NativeEndian.Uint16(b[4:])),
				Flags:  netlink.HeaderFlags(binary.NativeEndian.Uint16(b[6:])),
				PID:    binary.NativeEndian.Uint32(b[12:]),
			},
			Data: b[unix.NLMSG_HDRLEN:n],
		}
		if foreignChange(msg, table, self) {
			return true
		}
		b = b[min(len(b), (n+unix.NLMSG_ALIGNTO-1)&^(unix.NLMSG_ALIGNTO-1)):]
	}
	return false
}

// signal makes a pending kick without blocking: one pending is enough.
func signal(kick chan<- struct{}) {
	select {
	case kick <- struct{}{}:
	default:
	}
}

// foreignChange reports whether msg notifies a change, made by a socket
// other than self (our port ID), that can damage table inet table: a table,
// chain, rule or set created or deleted, or set elements deleted, in that
// table. Additions count because a rule or chain added to our table may
// change what it does; elements added by others do not. A message it
// cannot parse counts as a change: the check it causes is cheap and says
// for sure.
func foreignChange(msg netlink.Message, table string, self uint32) bool {
	if msg.Header.Type>>8 != unix.NFNL_SUBSYS_NFTABLES {
		return false
	}
	if self != 0 && msg.Header.PID == self {
		return false
	}
	switch msg.Header.Type & 0xff {
	case unix.NFT_MSG_NEWTABLE, unix.NFT_MSG_DELTABLE,
		unix.NFT_MSG_NEWCHAIN, unix.NFT_MSG_DELCHAIN,
		unix.NFT_MSG_NEWRULE, unix.NFT_MSG_DELRULE,
		unix.NFT_MSG_NEWSET, unix.NFT_MSG_DELSET,
		unix.NFT_MSG_DELSETELEM:
	default:
		return false
	}
	// nfgenmsg: family, version, resource id.
	if len(msg.Data) < 4 {
		return true
	}
	if msg.Data[0] != unix.NFPROTO_INET {
		return false
	}
	ad, err := netlink.NewAttributeDecoder(msg.Data[4:])
	if err != nil {
		return true
	}
	// The table name is attribute 1 in every one of these messages
	// (NFTA_TABLE_NAME, NFTA_CHAIN_TABLE, NFTA_RULE_TABLE, NFTA_SET_TABLE,
	// NFTA_SET_ELEM_LIST_TABLE).
	for ad.Next() {
		if ad.Type() == unix.NFTA_TABLE_NAME {
			return ad.String() == table
		}
	}
	return ad.Err() != nil
}
