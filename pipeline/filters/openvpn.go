package filters

// OpenVPN pieces. A log file line starts with the time (2.4 and older:
// "Tue Jun 10 18:57:41 2014 ", 2.5+: "2024-06-10 18:57:41 "); syslog lines
// do not. A server prefixes per-client lines with the peer, "IP:port " or,
// once a certificate authenticated it, "CN/IP:port "; some versions print
// the address family ("[AF_INET]", "[AF_INET6]").
//
// The CN is the client's (certificate holder's) text and comes first, so
// it may be anything, "10.0.0.1:1 TLS Error: TLS handshake failed" included.
// Every pattern that binds the leading peer therefore ends in fixed text and
// $: the peer is the "IP:port" that the fixed tail follows at the end of the
// line, whatever the CN says. VERIFY ERROR ends in free text, so there the
// CN must be one word (ovpnPeerWord) and IgnoreRegex covers the rest.
const (
	ovpnTime     = `^(?:[A-Z][a-z]{2} [A-Z][a-z]{2} [ 0-9]\d \d{2}:\d{2}:\d{2} \d{4} |\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} )?`
	ovpnPeer     = `(?:.*/)?(?:\[AF_INET6?\])?<HOST>:\d+ `
	ovpnPeerWord = `(?:\S+/)?(?:\[AF_INET6?\])?<HOST>:\d+ `
	// ovpnAnyPeer is the optional prefix of lines whose peer is bound
	// elsewhere (after "from", at the end of the line).
	ovpnAnyPeer = `(?:(?:.*/)?(?:\[AF_INET6?\])?[0-9A-Fa-f.:]+:\d+ )?`
	ovpnFrom    = ` from (?:\[AF_INET6?\])?<HOST>:\d+$`
)

// openvpn is written from the messages OpenVPN 2.x prints about
// peers that fail the TLS handshake, its HMAC/tls-crypt firewall, certificate
// or password checks, or that speak something else than OpenVPN to a TCP
// port.
//
// Deliberately not failures: "TLS key negotiation failed to occur within 60
// seconds" (always followed by "TLS handshake failed", so it would count
// twice) and the "TLS_ERROR: BIO read tls_read_plaintext error" lines that
// accompany a failed handshake.
func openvpn() Spec {
	return Spec{
		Name:    "openvpn",
		Trust:   Trust{Users: []string{"root", "openvpn"}, Exes: []string{"openvpn"}, Units: []string{"openvpn*.service"}},
		Summary: "non-OpenVPN TCP peers, TLS/HMAC/tls-crypt/certificate/password failures",
		// ovpn-*: the name "--daemon NAME" and distribution units give.
		Programs: []string{"openvpn", "ovpn-*"},
		FailRegex: []string{
			// 176.114.32.92:3509 WARNING: Bad encapsulated packet length from peer (36695), which must be > 0 and <= 1560 -- please ensure that --tun-mtu or --link-mtu is equal on both peers -- this condition could also indicate a possible active attack on the TCP link -- [Attempting restart...]
			// A TCP peer sending non-OpenVPN bytes: port scanners and probes.
			ovpnTime + ovpnPeer + `WARNING: Bad encapsulated packet length from peer \(\d+\), which must be > 0 and <= \d+ -- please ensure that --tun-mtu or --link-mtu is equal on both peers(?: -- this condition could also indicate a possible active attack on the TCP link)?(?: -- \[Attempting restart\.\.\.\])?$`,
			// 192.0.2.7:51234 Connection reset, restarting [0]
			// Only a peer that never authenticated: once its certificate
			// passed, the server writes "CN/IP:port", and that reset is
			// how every TCP client's session ends (seen live, 2.6.14).
			ovpnTime + `(?:\[AF_INET6?\])?<HOST>:\d+ Connection reset, restarting \[-?\d+\]$`,
			// 192.0.2.7:51234 TLS Error: TLS handshake failed
			ovpnTime + ovpnPeer + `TLS Error: TLS handshake failed$`,
			// 192.0.2.7:51234 TLS Error: incoming packet authentication failed from [AF_INET]192.0.2.7:51234
			// Packets without the tls-auth HMAC: the "from" address is
			// the packet's source, bound there; the prefix may be absent.
			ovpnTime + ovpnAnyPeer + `TLS Error: incoming packet authentication failed` + ovpnFrom,
			// TLS Error: tls-crypt unwrapping failed from [AF_INET]192.0.2.7:51234
			ovpnTime + ovpnAnyPeer + `TLS Error: tls-crypt unwrapping failed` + ovpnFrom,
			// TLS Error: cannot locate HMAC in incoming packet from [AF_INET]192.0.2.7:51234
			ovpnTime + ovpnAnyPeer + `TLS Error: cannot locate HMAC in incoming packet` + ovpnFrom,
			// TLS Error: unknown opcode received from [AF_INET]192.0.2.7:51234 op=9
			// TLS Error: client->client or server->server connection attempted from [AF_INET]192.0.2.7:51234
			// TLS Error: can not extract tls-crypt-v2 client key from [AF_INET]192.0.2.7:51234   (2.5+)
			// TLS Error: could not determine wrapping from [AF_INET]192.0.2.7:51234   (2.5+)
			// Packets no OpenVPN peer of this server sends: scanners and
			// strangers; the packet's source ends the line.
			ovpnTime + ovpnAnyPeer + `TLS Error: (?:unknown opcode received|client->client or server->server connection attempted|can not extract tls-crypt-v2 client key|could not determine wrapping) from (?:\[AF_INET6?\])?<HOST>:\d+(?: op=\d+)?$`,
			// 192.0.2.7:51234 VERIFY ERROR: depth=0, error=certificate has expired: CN=client1
			// The subject at the end is the peer's text; see IgnoreRegex.
			ovpnTime + ovpnPeerWord + `VERIFY ERROR: depth=\d+, error=.*$`,
			// 192.0.2.7:51234 TLS Auth Error: Auth Username/Password verification failed for peer
			ovpnTime + ovpnPeer + `TLS Auth Error: Auth Username/Password verification failed for peer$`,
		},
		IgnoreRegex: []string{
			// VERIFY ERROR ends in free text, so the trailing $ does not
			// protect it: a CN with spaces such as
			// "10.0.0.1:1 VERIFY ERROR: depth=0, error=x" would put a
			// second address first. A genuine line says VERIFY ERROR once.
			`^.* VERIFY ERROR: .* VERIFY ERROR: `,
			// Nor does it protect a session line of an authenticated client
			// whose CN is "10.0.0.1:1 VERIFY ERROR: depth=0, error=x": the
			// line reads "<CN>/192.0.2.7:51234 SIGUSR1[...] ...", and the
			// CN's first word would be taken for the peer. A genuine
			// error text is OpenSSL's reason and the certificate's subject,
			// which has no "/IP:port " in it unless its own holder wrote
			// one; that line is not counted, and the same attempt's "TLS
			// handshake failed" line still is.
			`^(?:.* )?VERIFY ERROR: depth=\d+, error=.*/(?:\[AF_INET6?\])?[0-9A-Fa-f.:]+:\d+ `,
		},
		// A peer whose certificate fails verification prints "VERIFY
		// ERROR", OpenSSL's and the TLS layer's errors, then "TLS Error:
		// TLS handshake failed" (2.1-2.6): one attempt, one failure. On a
		// TCP server, the instance the bad-length warning (or a failed
		// handshake) restarts then prints "Connection reset, restarting
		// [0]" for the same peer in the same second
		// (socket.c/forward.c, 2.3-2.6): the reset joins that attempt,
		// and counts alone only when nothing else was said about it.
		//
		// Over UDP a client whose first packet the server drops (a wrong
		// or missing tls-auth/tls-crypt key, tls-crypt-v2 trouble, a
		// client talking to a client) resends it after 2, 4, 8, 16 s
		// until its handshake window (--hand-window, 60 s) closes, from
		// the same source port, and the server prints its "from" line
		// for every copy (ssl_pkt.c, 2.4-2.6): the lines of one address
		// and port within 60 s are one attempt. A restarted client, or
		// another client behind the address, sends from another port.
		Attempts: &AttemptRules{
			Lines: []string{
				`^(?:.* )?VERIFY ERROR: depth=`,
				`^(?:.* )?TLS Error: TLS handshake failed$`,
				`^(?:.* )?WARNING: Bad encapsulated packet length from peer `,
				`^(?:.* )?Connection reset, restarting \[-?\d+\]$`,
			},
			Resends: []string{
				`^(?:.* )?TLS Error: (?:incoming packet authentication failed|tls-crypt unwrapping failed|cannot locate HMAC in incoming packet|can not extract tls-crypt-v2 client key|could not determine wrapping|client->client or server->server connection attempted) from (?:\[AF_INET6?\])?[0-9A-Fa-f.:]+:(?P<session>\d+)$`,
			},
		},
	}
}
