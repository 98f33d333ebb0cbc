package filters_test

import (
	"testing"
)

func TestQpopperFilter(t *testing.T) {
	runCases(t, "qpopper", "", []lineCase{
		// qpopper 4 on FreeBSD, its masked address replaced.
		{"freebsd password", "qpopper", `foo@example.com at client.example.org (192.0.2.7): -ERR [AUTH] Password supplied for "foo@example.com" is incorrect.`, "192.0.2.7"},
		{"freebsd refused", "inetd", "refused connection from 192.0.2.7, service qpopper (tcp)", "192.0.2.7"},
		{"refused hostname", "inetd", "refused connection from client.example.org, service qpopper (tcp)", "client.example.org"},
		{"refused ipv6", "inetd", "refused connection from 2001:db8::7, service qpopper (tcp6)", "2001:db8::7"},
		{"popper ident", "popper", `bob at 192.0.2.7 (192.0.2.7): -ERR [AUTH] Password supplied for "bob" is incorrect.`, "192.0.2.7"},
		{"old without tag", "qpopper", `bob at client.example.org (192.0.2.7): -ERR Password supplied for "bob" is incorrect.`, "192.0.2.7"},
		{"pam", "qpopper", `bob at client.example.org (192.0.2.7): -ERR [AUTH] PAM authentication failed for user "bob": Authentication failure (7)`, "192.0.2.7"},
		// Benign.
		{"refused other service", "inetd", "refused connection from 192.0.2.7, service sshd (tcp)", ""},
		{"stats", "qpopper", "Stats: bob 0 0 3 4567 client.example.org 192.0.2.7", ""},
		{"io error", "qpopper", "(null) at client.example.org (192.0.2.7): -ERR POP EOF or I/O Error", ""},
		// Hostile: the user is written twice, first and last.
		{"user with peer", "qpopper", `x at y (10.0.0.1): -ERR [AUTH] Password supplied for "x at client.example.org (192.0.2.7): -ERR [AUTH] Password supplied for "x at y (10.0.0.1): -ERR [AUTH] Password supplied for "x" is incorrect.`, ""},
		{"user with paren", "qpopper", `x(10.0.0.1) at client.example.org (192.0.2.7): -ERR [AUTH] Password supplied for "x(10.0.0.1)" is incorrect.`, "192.0.2.7"},
	})
}
