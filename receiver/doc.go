// Package receiver is sysban's front door: it owns the syslog sockets (UDP,
// TCP, unix datagram and unix stream), turns the bytes that arrive on them
// into *sysban.Message values and hands each one to a Handler.
//
// Everything that reaches a socket is written by whoever can reach it, which
// includes the attackers sysban is meant to ban, so every byte is treated as
// hostile: nothing here panics on input, nothing grows without bound, and a
// message that cannot be parsed is still delivered with its raw text so that
// the filters downstream never silently miss a line.
//
// Framing (RFC 6587 for streams, one message per datagram) and parsing
// (RFC 3164 in all its real-world shapes and RFC 5424) are exposed through
// Format, which also satisfies gopkg.in/mcuadros/go-syslog.v2's format.Format
// so the same code can be plugged into a go-syslog.v2 server.
package receiver
