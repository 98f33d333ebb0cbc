package receiver

// Provenance: who wrote a message, as the kernel tells it.
//
// The text of a syslog line is written by whoever sends it, program tag
// included, so "sshd" in a line proves nothing. What the sender cannot
// choose is the identity the kernel attaches to its socket:
//   - unix datagram sockets: SCM_CREDENTIALS on every datagram
//     (SO_PASSCRED): uid, gid and pid;
//   - unix stream sockets: SO_PEERCRED of the connecting process;
//   - tcp from this host (loopback or any of its addresses): the uid that
//     owns the peer socket, from the kernel's socket table (sock_diag),
//     once per connection; none when the sender has closed it by then
//     (the kernel's time-wait socket says uid 0 but belongs to no one).
// UDP carries none: a lookup per datagram would cost ~2 us (BenchmarkPeerUID),
// more than the rest of the receive path, and a datagram's peer socket
// may be gone by then.
//
// A forwarder (rsyslog, syslog-ng, running as root or syslog) relays other
// programs' lines, so its uid says nothing about their authors. It can
// pass on what the kernel told it about them in structured data, which
// sysban's forwarder template (deploy/forwarders/rsyslog-trusted.conf)
// writes as [sysban@32473 uid="..." gid="..." pid="..." exe="..."
// comm="..." unit="..."]. That element is trusted only on a message whose
// own socket the kernel says is a forwarder's (Options.Forwarders), or
// from a tls client with a verified certificate (Options.TLSForwarders);
// from anyone else it is ignored, since anyone can write it.

import (
	"crypto/tls"
	"encoding/binary"
	"net"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/sysban/sysban"
)

// OriginSDID is the SD-ID of the structured data element that carries a
// message's trusted properties from a forwarder; 32473 is the example
// enterprise number of RFC 5612, as an IANA private enterprise number is
// not needed for a name only sysban reads.
const OriginSDID = "sysban@32473"

// peerCreds is what the kernel says about the socket a message came from.
type peerCreds struct {
	known         bool // uid (and maybe gid, pid) came from the kernel
	uid, gid, pid int64
	relay         bool // a forwarder's: take the origin from OriginSDID
}

var noCreds = peerCreds{uid: -1, gid: -1, pid: -1}

// relayed marks creds of a forwarder uid as a relay.
func (r *Receiver) relayed(c peerCreds) peerCreds {
	if c.known && c.uid >= 0 && slices.Contains(r.opts.Forwarders, uint32(c.uid)) {
		c.relay = true
	}
	return c
}

// tlsCreds: a tls client with a verified certificate is a forwarder when
// Options.TLSForwarders says so; anything else carries no origin.
func (r *Receiver) tlsCreds(tc *tls.Conn) peerCreds {
	c := noCreds
	if r.opts.TLSForwarders && len(tc.ConnectionState().VerifiedChains) > 0 {
		c.relay = true
	}
	return c
}

// origin is the Message.Origin of a message from these creds with this
// structured data.
func (c *peerCreds) origin(sd map[string]map[string]string) sysban.Origin {
	switch {
	case c == nil:
		return sysban.Origin{UID: -1, GID: -1, PID: -1}
	case c.relay:
		return OriginFromSD(sd[OriginSDID])
	case c.known:
		return sysban.Origin{Vouched: sysban.VouchSocket, UID: c.uid, GID: c.gid, PID: c.pid}
	}
	return sysban.Origin{UID: -1, GID: -1, PID: -1}
}

// OriginFromSD reads the params of an OriginSDID element. Without a
// valid uid nobody vouches (the forwarder had no trusted properties for
// that message: kernel log, network input); gid and pid are -1 when
// absent or not numbers.
func OriginFromSD(params map[string]string) sysban.Origin {
	o := sysban.Origin{UID: -1, GID: -1, PID: -1}
	// One pass over the few params: cheaper than a hash lookup per name.
	var exe, comm, unit string
	for k, v := range params {
		switch k {
		case "uid":
			if id, ok := sdID(v); ok {
				o.UID = id
			}
		case "gid":
			if id, ok := sdID(v); ok {
				o.GID = id
			}
		case "pid":
			if id, ok := sdID(v); ok {
				o.PID = id
			}
		case "exe":
			exe = v
		case "comm":
			comm = v
		case "unit":
			unit = v
		}
	}
	if o.UID < 0 {
		return sysban.Origin{UID: -1, GID: -1, PID: -1}
	}
	o.Vouched, o.Exe, o.Comm, o.Unit = sysban.VouchForwarder, exe, comm, unit
	return o
}

// sdID parses a uid, gid or pid: decimal, 0 to 2^32-2 (2^32-1 is the
// kernel's "no id").
func sdID(s string) (int64, bool) {
	if s == "" || len(s) > 10 || s[0] == '+' || s[0] == '-' {
		return 0, false
	}
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil || v == 1<<32-1 {
		return 0, false
	}
	return int64(v), true
}

// unixPeerCreds reads SO_PEERCRED of a unix stream connection.
func unixPeerCreds(conn net.Conn) peerCreds {
	c := noCreds
	uc, ok := conn.(*net.UnixConn)
	if !ok {
		return c
	}
	rc, err := uc.SyscallConn()
	if err != nil {
		return c
	}
	_ = rc.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			c = peerCreds{known: true, uid: int64(cred.Uid), gid: int64(cred.Gid), pid: int64(cred.Pid)}
		}
	})
	return c
}

// credsOOB is room for one SCM_CREDENTIALS control message.
var credsOOB = unix.CmsgSpace(unix.SizeofUcred)

// parseCredsOOB reads the SCM_CREDENTIALS a unix datagram came with
// (SO_PASSCRED is set on the socket, so the kernel always adds it) without
// the allocations of unix.ParseSocketControlMessage: it runs per datagram.
func parseCredsOOB(oob []byte) peerCreds {
	for len(oob) > 0 {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break
		}
		if h.Level == unix.SOL_SOCKET && h.Type == unix.SCM_CREDENTIALS && len(data) >= unix.SizeofUcred {
			ne := binary.NativeEndian
			return peerCreds{known: true, pid: int64(int32(ne.Uint32(data[0:]))), uid: int64(ne.Uint32(data[4:])), gid: int64(ne.Uint32(data[8:]))}
		}
		oob = rest
	}
	return noCreds
}

// passCreds turns on SO_PASSCRED so every datagram brings its sender's
// credentials.
func passCreds(conn *net.UnixConn) error {
	rc, err := conn.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	return serr
}

// Provenance says what a listener of spec s can tell about who sent a
// message (for `sysban check` and the start-up log).
func (s ListenerSpec) Provenance(tlsForwarders bool) string {
	const fwd = "; forwarders' [" + OriginSDID + "]"
	switch s.Network {
	case UnixGram:
		return "uid,gid,pid per datagram (SO_PASSCRED)" + fwd
	case UnixStream:
		return "uid,gid,pid per connection (SO_PEERCRED)" + fwd
	case TCP:
		return "uid per connection from this host (sock_diag)" + fwd + "; none from other hosts"
	case TLS:
		if tlsForwarders {
			return "verified clients' [" + OriginSDID + "]"
		}
		return "none"
	}
	return "none"
}
