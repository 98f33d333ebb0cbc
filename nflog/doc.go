// Package nflog watches the traffic the kernel logs for sysban. Its one
// job: read NFLOG group X (the group nft's log rules send to, see the nft
// package's nflog.go) and turn each logged packet into an event.
//
// Two kinds of packets arrive, told apart by their log prefix:
//
//   - "sysban:ban:<jail>": a packet from an address banned in <jail>, seen
//     just before the jail's rule dropped or rejected it. It becomes a
//     Sink.BannedPacket call, which the daemon counts per jail
//     (sysban_banned_packets_total) and per address (Traffic).
//   - "sysban:probe": a new connection to a trap port, a port nothing on
//     the host serves. It becomes a sysban.Message from program
//     "sysban-nflog" whose text sysban writes itself ("probe from
//     203.0.113.9 to tcp port 23"), handed to Sink.Handle like a syslog
//     message, so the portprobe filter and jail ban scanners like any
//     other offender.
//
// The packet bytes come from the network: ParsePacket reads the IPv4 or
// IPv6 header and the TCP or UDP ports with every length checked, and
// anything else with a sysban-looking prefix is counted and ignored, since
// any process with CAP_NET_ADMIN can log to the group.
//
// The netlink side is github.com/florianl/go-nflog/v2, whose defects are
// handled in reader.go: its read loop stops for good when the error
// function returns non-zero (ENOBUFS, which only means the kernel dropped
// messages, must not stop it), it never reports that it stopped, its
// Close blocks until the registration context is cancelled, its socket
// buffer is the system default, and it flattens kernel errors into text.
package nflog
