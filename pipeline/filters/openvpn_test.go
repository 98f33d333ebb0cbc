package filters_test

import (
	"testing"
)

func TestOpenVPNFilter(t *testing.T) {
	const badLen = "WARNING: Bad encapsulated packet length from peer (36695), which must be > 0 and <= 1560 -- please ensure that --tun-mtu or --link-mtu is equal on both peers -- this condition could also indicate a possible active attack on the TCP link -- [Attempting restart...]"
	runCases(t, "openvpn", "", []lineCase{
		{"bad length 2.x file form", "openvpn", "Tue Jun 10 18:57:41 2014 176.114.32.92:3509 " + badLen, "176.114.32.92"},
		{"bad length syslog", "openvpn", "58.60.243.60:26629 " + badLen, "58.60.243.60"},
		{"bad length short", "openvpn", "192.0.2.7:51234 WARNING: Bad encapsulated packet length from peer (5635), which must be > 0 and <= 1627 -- please ensure that --tun-mtu or --link-mtu is equal on both peers", "192.0.2.7"},
		{"bad length iso time", "openvpn", "2024-06-10 18:57:41 192.0.2.7:51234 " + badLen, "192.0.2.7"},
		{"connection reset", "openvpn", "192.0.2.7:51234 Connection reset, restarting [0]", "192.0.2.7"},
		{"connection reset file form", "openvpn", "Tue Jun 10 19:00:43 2014 192.0.2.7:51234 Connection reset, restarting [0]", "192.0.2.7"},
		{"connection reset minus one", "ovpn-server", "192.0.2.7:51234 Connection reset, restarting [-1]", "192.0.2.7"},
		{"handshake failed", "openvpn", "192.0.2.7:51234 TLS Error: TLS handshake failed", "192.0.2.7"},
		{"handshake failed af_inet", "openvpn", "[AF_INET]192.0.2.7:51234 TLS Error: TLS handshake failed", "192.0.2.7"},
		{"handshake failed cn", "openvpn", "client1/192.0.2.7:51234 TLS Error: TLS handshake failed", "192.0.2.7"},
		{"handshake failed ipv6", "openvpn", "2001:db8::7:51234 TLS Error: TLS handshake failed", "2001:db8::7"},
		{"handshake failed mapped", "openvpn", "[AF_INET6]::ffff:192.0.2.7:51234 TLS Error: TLS handshake failed", "::ffff:192.0.2.7"},
		{"hmac auth failed", "openvpn", "192.0.2.7:51234 TLS Error: incoming packet authentication failed from [AF_INET]192.0.2.7:51234", "192.0.2.7"},
		{"hmac auth failed no prefix", "openvpn", "TLS Error: incoming packet authentication failed from [AF_INET]192.0.2.7:51234", "192.0.2.7"},
		{"hmac auth failed v6", "openvpn", "TLS Error: incoming packet authentication failed from [AF_INET6]2001:db8::7:1194", "2001:db8::7"},
		{"hmac auth failed old", "openvpn", "TLS Error: incoming packet authentication failed from 192.0.2.7:51234", "192.0.2.7"},
		{"tls-crypt", "openvpn", "TLS Error: tls-crypt unwrapping failed from [AF_INET]192.0.2.7:51234", "192.0.2.7"},
		{"tls-crypt iso time", "openvpn", "2024-06-10 18:57:41 TLS Error: tls-crypt unwrapping failed from [AF_INET6]2001:db8::7:51234", "2001:db8::7"},
		{"no hmac", "openvpn", "TLS Error: cannot locate HMAC in incoming packet from [AF_INET]192.0.2.7:51234", "192.0.2.7"},
		{"verify error", "openvpn", "192.0.2.7:51234 VERIFY ERROR: depth=0, error=certificate has expired: CN=client1", "192.0.2.7"},
		{"verify error old subject", "openvpn", "192.0.2.7:51234 VERIFY ERROR: depth=1, error=unable to get local issuer certificate: /C=US/O=x/CN=ca", "192.0.2.7"},
		{"auth user pass", "openvpn", "192.0.2.7:51234 TLS Auth Error: Auth Username/Password verification failed for peer", "192.0.2.7"},

		// Benign lines.
		{"peer connection initiated", "openvpn", "192.0.2.7:51234 [client1] Peer Connection Initiated with [AF_INET]192.0.2.7:51234", ""},
		{"tls key negotiation", "openvpn", "192.0.2.7:51234 TLS Error: TLS key negotiation failed to occur within 60 seconds (check your network connectivity)", ""},
		{"verify ok", "openvpn", "192.0.2.7:51234 VERIFY OK: depth=0, CN=client1", ""},
		{"init complete", "openvpn", "Initialization Sequence Completed", ""},
		{"wrong program", "sshd", "192.0.2.7:51234 TLS Error: TLS handshake failed", ""},

		// Hostile: the CN and certificate subject are the client's.
		{"cn with host", "openvpn", "10.0.0.1:1194/192.0.2.7:51234 TLS Error: TLS handshake failed", "192.0.2.7"},
		{"cn with slash and host", "openvpn", "x/10.0.0.1:1/192.0.2.7:51234 Connection reset, restarting [0]", ""},
		{"authenticated client's reset", "openvpn", "good/192.0.2.7:38125 Connection reset, restarting [0]", ""},
		{"cn with spaces", "openvpn", "10.0.0.1:1 TLS Error: TLS handshake failed/192.0.2.7:51234 TLS Error: TLS handshake failed", "192.0.2.7"},
		{"cn with client tag", "openvpn", "[client 10.0.0.1]/192.0.2.7:51234 TLS Error: TLS handshake failed", "192.0.2.7"},
		{"cn with spaces verify", "openvpn", "my client/192.0.2.7:51234 VERIFY ERROR: depth=0, error=certificate revoked: CN=my client", ""},
		{"cn faking verify", "openvpn", "10.0.0.1:1 VERIFY ERROR: depth=0, error=x/192.0.2.7:51234 VERIFY ERROR: depth=0, error=certificate revoked: CN=x", ""},
		{"subject with host", "openvpn", "192.0.2.7:51234 VERIFY ERROR: depth=0, error=certificate revoked: CN=from [AF_INET]10.0.0.1:1", "192.0.2.7"},
		{"from trailing garbage", "openvpn", "TLS Error: tls-crypt unwrapping failed from [AF_INET]192.0.2.7:51234 from [AF_INET]10.0.0.1:1", ""},
		{"cn before from", "openvpn", "x from [AF_INET]10.0.0.1:1/192.0.2.7:51234 TLS Error: incoming packet authentication failed from [AF_INET]192.0.2.7:51234", "192.0.2.7"},
	})
}
