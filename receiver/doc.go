// Package receiver is sysban's front door: it owns the syslog sockets (UDP,
// TCP, TLS, unix datagram and unix stream), turns the bytes that arrive on
// them into *sysban.Message values and hands each one to a Handler.
//
// Everything that reaches a socket is written by whoever can reach it, which
// includes the attackers sysban is meant to ban, so every byte is treated as
// hostile: nothing here panics on input, nothing grows without bound, and a
// message that cannot be parsed is still delivered with its raw text so that
// the filters downstream never silently miss a line.
//
// Hostile senders meet bounds, each counted in ListenerStats.Dropped by
// reason: senders outside Options.Allow are refused; stream connections are
// limited per listener and per source (address; on loopback address and
// the peer socket's uid, from sock_diag), and at either limit the
// connection silent longest is evicted, so idle connections cannot lock a
// forwarder out; a connection without a complete frame within
// Options.FirstFrameTimeout, or idle too long, is closed, and so is one
// whose current frame does not complete within Options.FrameTimeout
// (slowloris); oversized frames are dropped and the
// stream resynchronised; udp senders can be held to a per-address rate in
// a bounded map. There are no queues: each listener reads in its own
// goroutine (one per stream connection) and calls the Handler inline, so a
// flood on one listener cannot starve another, and the kernel's socket
// buffers are the only backlog.
//
// Spoofing: a UDP datagram's source address is whatever the sender wrote,
// so on UDP Allow only filters honest senders and a forged flood can pass
// it. Options.RemoteStreamOnly accepts UDP from loopback alone, making
// remote hosts use TCP or TLS, whose source addresses a handshake proves.
// What the receiver reports as Message.Sender is the forwarder; the
// pipeline bans the address found in the message text and never its
// sender, so no forged datagram can get the forwarder itself banned.
//
// Provenance (origin.go): every Message carries an Origin, who wrote it as
// far as the kernel vouches: SCM_CREDENTIALS per unix datagram,
// SO_PEERCRED per unix stream, the peer socket's uid per loopback TCP
// connection; from a forwarder's socket (Options.Forwarders, or a verified
// TLS client with Options.TLSForwarders) the [sysban@32473 ...] structured
// data its template wrote instead. UDP carries none.
//
// TLS (RFC 5425) listeners take Options.TLS, built by TLSConfig from PEM
// files: TLS 1.2 or later, optional client certificates (mutual TLS) and
// allowed client names; the handshake runs in the connection's goroutine
// under Options.HandshakeTimeout, so silent clients cannot block accepts.
//
// Parsing takes what senders write, not only what the RFCs allow, where
// the reading is unambiguous: an RFC 3164 line without a header time
// ("<34>sshd[12]: msg") keeps its tag; an RFC 5424 structured-data value
// with an unescaped ']' is read by its quotes. Where it is not, the
// message keeps its text and no header field is made up: a first word
// with brackets ("host[1] sshd[2]:", "[sshd]:") is neither hostname nor
// program. A message whose header does not parse is still delivered,
// counted (ListenerStats.ParseErrors) and logged at most every 10 s per
// listener.
//
// Framing (RFC 6587 for streams, one message per datagram) and parsing
// (RFC 3164 in all its real-world shapes and RFC 5424) are exposed through
// Format, which also satisfies gopkg.in/mcuadros/go-syslog.v2's format.Format
// so the same code can be plugged into a go-syslog.v2 server.
package receiver
