package e2e

import (
	"fmt"
	"testing"
)

// TestMailThroughRsyslog sends mail-daemon lines through a real rsyslogd to
// sysban: sendmail's two-line SASL failure (as sendmail 8.13 + saslauthd on CentOS 5 log it: the "AUTH failure"
// line names no address, the same queue id's "did not issue MAIL" line
// does), interleaved with saslauthd, sshd and another session's lines, and
// postfix's SASL failures. Each must end as a kernel ban in its jail's set.
func TestMailThroughRsyslog(t *testing.T) {
	w := newWorld(t, worldOptions{config: `
jails:
  sshd:
    enabled: false
  sendmail-auth:
    enabled: true
    maxretry: 2
    findtime: 10m
    ports: [smtp, submission]
  postfix-sasl:
    enabled: true
    maxretry: 3
    findtime: 10m
    ports: [smtp, submission, smtps]
`})
	rsock := w.rsyslog()
	send := func(tag string, pid int, msg string) {
		w.logger("-u", rsock, "-t", tag, fmt.Sprintf("--id=%d", pid), "-p", "mail.info", "--", msg)
	}

	sendmailAttacker, postfixAttacker, bystander := outsideV4[0], outsideV4[1], outsideV4[2]
	for i, qid := range []string{"s0QBU1Ir002370", "s0QBU7Kq002371"} {
		pid := 2370 + i
		send("sendmail", pid, fmt.Sprintf("NOQUEUE: connect from attacker.example [%s]", sendmailAttacker))
		send("sendmail", pid, qid+": AUTH failure (LOGIN): authentication failure (-13) SASL(-13): authentication failure: checkpass failed, user=chi, relay=attacker.example ["+sendmailAttacker+"]")
		// Lines of other daemons and another SMTP session interleave.
		send("saslauthd", 27264, "pam_unix(smtp:auth): authentication failure; logname= uid=0 euid=0 tty= ruser= rhost=")
		send("sshd", 999, "Accepted publickey for deploy from 192.0.2.9 port 50000 ssh2")
		send("sendmail", 3000+i, fmt.Sprintf("s0QBZZZZ00300%d: from=<a@b.example>, size=10, class=0, nrcpts=1, relay=[%s]", i, bystander))
		send("sendmail", pid, fmt.Sprintf("%s: attacker.example [%s] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", qid, sendmailAttacker))
	}
	for i := 0; i < 3; i++ {
		send("postfix/smtpd", 4000+i, fmt.Sprintf("warning: unknown[%s]: SASL LOGIN authentication failed: UGFzc3dvcmQ6", postfixAttacker))
	}

	w.waitBanned("sendmail-auth_v4", sendmailAttacker)
	w.waitBanned("postfix-sasl_v4", postfixAttacker)
	for _, set := range []string{"sendmail-auth_v4", "postfix-sasl_v4"} {
		if w.isBanned(set, bystander) {
			t.Errorf("%s banned in %s: it only relayed mail", bystander, set)
		}
	}
	w.alive()
}
