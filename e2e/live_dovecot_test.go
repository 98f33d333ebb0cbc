package e2e

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"testing"
)

// liveDovecotAuth is the authentication part of the live tests' Dovecot
// configs; %[1]s is the instance's directory, %[2]s yes or no for
// auth_verbose.
const liveDovecotAuth = `base_dir = %[1]s/run
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_verbose = %[2]s
auth_failure_delay = 0
log_path = syslog
syslog_facility = mail
default_internal_user = dovecot
default_login_user = dovenull
passdb {
  driver = passwd-file
  args = scheme=PLAIN %[1]s/users
}
passdb {
  driver = pam
  args = dovecot
}
userdb {
  driver = static
  args = uid=` + "2407 gid=2407" + ` home=%[1]s/mail/%%u
}
# Dovecot delays an address's logins after failures (auth penalty, 2 s
# doubling to 15 s); without the anvil socket it does not, which keeps the
# run short and changes nothing logged.
service anvil {
  unix_listener anvil-auth-penalty {
    mode = 0
  }
}
`

// liveDovecotConfig is a dovecot.conf for one IMAP and POP3 instance;
// %[1]s and %[2]s are liveDovecotAuth's, %[3]d and %[4]d the IMAP and POP3
// ports.
const liveDovecotConfig = liveDovecotAuth + `protocols = imap pop3
listen = 192.0.2.1, 2001:db8::1
mail_location = maildir:%[1]s/mail/%%u
service imap-login {
  inet_listener imap {
    port = %[3]d
  }
}
service pop3-login {
  inet_listener pop3 {
    port = %[4]d
  }
}
`

// startDovecot starts one Dovecot instance under dir with the test
// accounts: liveMailUser in its passwd-file, liveUser through PAM. config
// is a format over liveDovecotAuth's arguments and extra.
func (l *live) startDovecot(dir, config, verbose string, extra ...any) {
	l.t.Helper()
	mail := l.path(dir + "/mail")
	os.MkdirAll(mail, 0o755)
	os.Chown(mail, liveUID, liveUID)
	l.write(dir+"/users", fmt.Sprintf("%s:{PLAIN}%s\n", liveMailUser, livePassword), 0o644)
	cfg := l.write(dir+"/dovecot.conf", fmt.Sprintf(config, append([]any{l.path(dir), verbose}, extra...)...), 0o644)
	l.spawn("/usr/sbin/dovecot", "-F", "-c", cfg)
}

// liveMailUser is the account of dovecot's passwd-file (the PAM account
// is liveUser).
const liveMailUser = "mailer"

// TestLiveDovecot drives the distribution's Dovecot (IMAP and POP3 over
// plain TCP) with a passwd-file and PAM, once with auth_verbose = yes and
// once with no: wrong passwords of both databases, an unknown user,
// several wrong passwords on one connection, and successes.
func TestLiveDovecot(t *testing.T) {
	version := needLive(t, "dovecot-core", "/usr/sbin/dovecot", "/usr/lib/dovecot/imap-login", "/usr/lib/dovecot/pop3-login", "openssl")
	l := newLive(t, "dovecot", version, fmt.Sprintf(`
jails:
  sshd:
    enabled: false
  dovecot:
    enabled: true
    maxretry: %d
    findtime: 10m
    bantime: 1h
    ports: [110, 143, 1110, 1143]
`, liveMaxRetry))
	l.noPAMDelay()
	l.exact, l.port = true, 143
	for _, inst := range []struct {
		verbose    string
		imap, pop3 int
	}{{"yes", 143, 110}, {"no", 1143, 1110}} {
		l.startDovecot(fmt.Sprintf("dovecot-%d", inst.imap), liveDovecotConfig, inst.verbose, inst.imap, inst.pop3)
	}
	for _, port := range []int{143, 110, 1143, 1110} {
		l.waitPort("tcp", serverV4, port)
	}

	for _, inst := range []struct {
		verbose    string
		imap, pop3 int
	}{{"yes", 143, 110}, {"no", 1143, 1110}} {
		mode := "auth_verbose=" + inst.verbose
		name := func(n string) string { return n + ", " + mode }
		clean := l.succeed(
			family{name("IMAP success passwd-file"), "dovecot", false, l.imapLogin(inst.imap, liveMailUser, livePassword)},
			family{name("IMAP success PAM"), "dovecot", false, l.imapLogin(inst.imap, liveUser, livePassword)},
			family{name("POP3 success passwd-file"), "dovecot", false, l.pop3Login(inst.pop3, liveMailUser, livePassword)},
		)
		fams := []family{
			{name("IMAP password passwd-file"), "dovecot", false, l.imapLogin(inst.imap, liveMailUser, "wrong")},
			{name("IMAP password PAM"), "dovecot", false, l.imapLogin(inst.imap, liveUser, "wrong")},
			{name("IMAP unknown user"), "dovecot", false, l.imapLogin(inst.imap, "nosuchuser", "wrong")},
			{name("POP3 password PAM"), "dovecot", true, l.pop3Login(inst.pop3, liveUser, "wrong")},
		}
		if inst.verbose == "yes" { // the rest adds no new kind of line with no
			fams = append(fams,
				family{name("IMAP password passwd-file"), "dovecot", true, l.imapLogin(inst.imap, liveMailUser, "wrong")},
				family{name("POP3 password passwd-file"), "dovecot", false, l.pop3Login(inst.pop3, liveMailUser, "wrong")})
		}
		l.drive(fams...)
		// Every wrong password of a connection on that one connection:
		// maxretry of them ban.
		from := l.attacker(false)
		a := l.try(fmt.Sprintf("IMAP %d passwords on one connection, %s", liveMaxRetry, mode), "dovecot", from, liveMaxRetry,
			l.imapLogin(inst.imap, liveMailUser, strings.Repeat("wrong ", liveMaxRetry)))
		if a.counted != liveMaxRetry || !a.banned {
			t.Errorf("%s: %d wrong passwords on one connection counted %d, banned %v", mode, liveMaxRetry, a.counted, a.banned)
		}
		if l.isBanned("dovecot_v4", clean) {
			t.Errorf("%s: the clean client %s is banned", mode, clean)
		}
	}
	l.alive()
}

// noPAMDelay binds a common-auth whose pam_unix does not wait after a
// failure (about 2 s): it keeps the run short and changes nothing logged.
func (l *live) noPAMDelay() {
	l.t.Helper()
	l.write("root/etc/pam.d/common-auth", strings.Replace(l.readSystem("/etc/pam.d/common-auth"), "pam_unix.so", "pam_unix.so nodelay", 1), 0o644)
}

// textSession is a line-based client session (IMAP, POP3, SMTP, FTP).
type textSession struct {
	c net.Conn
	r *bufio.Reader
}

// greeted dials port from from and reads the server's greeting up to the
// line done accepts; the caller closes s.c.
func (l *live) greeted(from string, port int, done func(string) bool) (*textSession, error) {
	c, err := l.session(from, port)
	if err != nil {
		return nil, err
	}
	s := &textSession{c: c, r: bufio.NewReader(c)}
	for {
		line, err := s.line()
		if err != nil {
			c.Close()
			return nil, err
		}
		if done(line) {
			return s, nil
		}
	}
}

// anyLine accepts every reply line: IMAP's and POP3's one-line greetings
// and POP3's answers.
func anyLine(string) bool { return true }

// line reads one reply line.
func (s *textSession) line() (string, error) {
	l, err := s.r.ReadString('\n')
	return strings.TrimRight(l, "\r\n"), err
}

// send writes a command line and reads reply lines until done says the
// reply is complete; it returns the last line.
func (s *textSession) send(cmd string, done func(string) bool) (string, error) {
	if _, err := fmt.Fprintf(s.c, "%s\r\n", cmd); err != nil {
		return "", err
	}
	for {
		l, err := s.line()
		if err != nil || done(l) {
			return l, err
		}
	}
}

// imapLogin logs in with each password in turn on one connection and
// logs out; the error says whether the last login failed.
func (l *live) imapLogin(port int, user string, passwords ...string) func(string) error {
	if len(passwords) == 1 {
		passwords = strings.Fields(passwords[0])
	}
	return func(from string) error {
		s, err := l.greeted(from, port, anyLine)
		if err != nil {
			return err
		}
		defer s.c.Close()
		var last string
		for i, pw := range passwords {
			tag := fmt.Sprintf("a%d", i)
			if last, err = s.send(fmt.Sprintf("%s LOGIN %s %q", tag, user, pw), func(l string) bool { return strings.HasPrefix(l, tag+" ") }); err != nil {
				return err
			}
		}
		s.send("z LOGOUT", func(l string) bool { return strings.HasPrefix(l, "z ") })
		if !strings.HasPrefix(last, fmt.Sprintf("a%d OK", len(passwords)-1)) {
			return fmt.Errorf("imap: %s", last)
		}
		return nil
	}
}

// pop3Login logs in with USER/PASS and quits.
func (l *live) pop3Login(port int, user, password string) func(string) error {
	return func(from string) error {
		s, err := l.greeted(from, port, anyLine)
		if err != nil {
			return err
		}
		defer s.c.Close()
		if _, err := s.send("USER "+user, anyLine); err != nil {
			return err
		}
		last, err := s.send("PASS "+password, anyLine)
		if err != nil {
			return err
		}
		s.send("QUIT", anyLine)
		if !strings.HasPrefix(last, "+OK") {
			return fmt.Errorf("pop3: %s", last)
		}
		return nil
	}
}
