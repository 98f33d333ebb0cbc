package e2e

import (
	"encoding/base64"
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"
	"testing"
)

// liveDovecotSASL is a Dovecot with no mail protocols, only the auth
// socket postfix's smtpd asks (smtpd_sasl_type = dovecot).
const liveDovecotSASL = liveDovecotAuth + `protocols =
service auth {
  unix_listener %[1]s/auth-postfix {
    mode = 0666
  }
}
`

// livePostfixMain is postfix's main.cf; %[1]s is its directory, %[2]s
// Dovecot's auth socket.
const livePostfixMain = `compatibility_level = 3.6
queue_directory = %[1]s/queue
data_directory = %[1]s/data
myhostname = mx.example.test
mydomain = example.test
mydestination = example.test
inet_interfaces = 192.0.2.1, [2001:db8::1]
inet_protocols = all
mynetworks = 127.0.0.0/8
alias_maps =
alias_database =
local_recipient_maps = unix:passwd.byname
smtpd_relay_restrictions = permit_mynetworks permit_sasl_authenticated reject_unauth_destination
smtpd_tls_security_level = none
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = %[2]s
smtpd_error_sleep_time = 0
smtpd_banner = mx.example.test ESMTP
home_mailbox = Maildir/
`

// livePostfixMaster is a master.cf without chroot: smtpd on port 25 and
// the services a rejected or authenticated session touches.
const livePostfixMaster = `smtp      inet  n       -       n       -       -       smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
proxymap  unix  -       -       n       -       -       proxymap
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
smtp      unix  -       -       n       -       -       smtp
`

// TestLivePostfix drives the distribution's Postfix with Dovecot SASL:
// AUTH failures (passwd-file and PAM accounts), relay and unknown-recipient
// rejects, and successes.
func TestLivePostfix(t *testing.T) {
	version := needLive(t, "postfix", "/usr/sbin/postfix", "/usr/lib/postfix/sbin/master", "/usr/sbin/dovecot")
	l := newLive(t, "postfix", version, liveConfig(
		liveJail("postfix-sasl", "postfix-sasl", "25", "tcp"),
		liveJail("postfix", "postfix", "25", "tcp"),
		// Dovecot's filter reads the SASL backend's lines of the same
		// attempts; its jail watches a port nobody uses here.
		liveJail("dovecot", "dovecot", "9", "tcp")))
	l.exact, l.port = true, 25
	l.watch = []string{"dovecot"}
	l.noPAMDelay()
	l.startDovecot("sasl", liveDovecotSASL, "yes")
	sasl := l.path("sasl/auth-postfix")
	l.waitFor("Dovecot's auth socket", eventually, func() bool { _, err := os.Stat(sasl); return err == nil })
	l.write("postfix/main.cf", fmt.Sprintf(livePostfixMain, l.path("postfix"), sasl), 0o644)
	l.write("postfix/master.cf", livePostfixMaster, 0o644)
	etc := l.path("postfix")
	for _, d := range []string{"queue", "data"} {
		os.MkdirAll(l.path("postfix/"+d), 0o755)
	}
	os.Chown(l.path("postfix/data"), postfixUID(t), -1)
	// postfix check makes the queue's directories; both log to syslog.
	l.spawn("sh", "-c", `postfix -c "$0" check && exec /usr/lib/postfix/sbin/master -c "$0" -d`, etc)
	l.waitPort("tcp", serverV4, 25)

	clean := l.succeed(
		family{"AUTH success", "postfix-sasl", false, l.smtp("", liveMailUser, livePassword)},
		family{"local delivery", "postfix", false, l.smtp(liveUser+"@example.test", "", "")},
	)
	l.drive(
		family{"AUTH PLAIN wrong password passwd-file", "postfix-sasl", false, l.smtp("", liveMailUser, "wrong")},
		family{"AUTH PLAIN wrong password passwd-file", "postfix-sasl", true, l.smtp("", liveMailUser, "wrong")},
		family{"AUTH PLAIN wrong password PAM", "postfix-sasl", false, l.smtp("", liveUser, "wrong")},
		family{"relay denied", "postfix", false, l.smtp("someone@elsewhere.test", "", "")},
		family{"unknown recipient", "postfix", false, l.smtp("nosuchuser@example.test", "", "")},
		family{"unknown recipient", "postfix", true, l.smtp("nosuchuser@example.test", "", "")},
	)
	l.assertBans(25, clean, "AUTH PLAIN wrong password passwd-file")
	l.alive()
}

// postfixUID is the uid of the postfix account, which owns its data
// directory.
func postfixUID(t *testing.T) int {
	t.Helper()
	u, err := user.Lookup("postfix")
	if err != nil {
		t.Skipf("live postfix test needs the postfix account: %v", err)
	}
	id, _ := strconv.Atoi(u.Uid)
	return id
}

// finalReply reports whether an SMTP or FTP reply line is its reply's last.
func finalReply(line string) bool { return len(line) >= 4 && line[3] == ' ' }

// smtp opens an SMTP session: EHLO, then AUTH PLAIN when user is not "",
// then one message to rcpt when rcpt is not ""; the error carries the
// first refusal.
func (l *live) smtp(rcpt, user, password string) func(string) error {
	return func(from string) error {
		s, err := l.greeted(from, 25, finalReply)
		if err != nil {
			return err
		}
		defer s.c.Close()
		defer s.send("QUIT", finalReply)
		steps := []struct{ cmd, want string }{{"EHLO client.example.test", "250"}}
		if user != "" {
			plain := base64.StdEncoding.EncodeToString([]byte("\x00" + user + "\x00" + password))
			steps = append(steps, struct{ cmd, want string }{"AUTH PLAIN " + plain, "235"})
		}
		if rcpt != "" {
			steps = append(steps,
				struct{ cmd, want string }{"MAIL FROM:<sender@client.example.test>", "250"},
				struct{ cmd, want string }{"RCPT TO:<" + rcpt + ">", "250"},
				struct{ cmd, want string }{"DATA", "354"},
				struct{ cmd, want string }{"Subject: live\r\n\r\nhello\r\n.", "250"})
		}
		for _, st := range steps {
			reply, err := s.send(st.cmd, finalReply)
			if err != nil {
				return err
			}
			if !strings.HasPrefix(reply, st.want) {
				return fmt.Errorf("smtp: %s", reply)
			}
		}
		return nil
	}
}
