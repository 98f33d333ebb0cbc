package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"os/exec"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// liveMaxRetry is the maxretry of every live jail: each family makes this
// many failed attempts from one address.
const liveMaxRetry = 3

// liveSSHDConfig is an sshd_config for the live test; %[1]s is the temp dir.
const liveSSHDConfig = `Port 22
ListenAddress 192.0.2.1
ListenAddress [2001:db8::1]
HostKey %[1]s/ssh_host_ed25519_key
PidFile %[1]s/sshd.pid
UsePAM yes
PasswordAuthentication yes
KbdInteractiveAuthentication yes
PubkeyAuthentication yes
AuthorizedKeysFile %[1]s/authorized_keys
StrictModes no
AllowUsers ` + liveUser + `
SyslogFacility AUTH
LogLevel INFO
MaxStartups 100
`

// TestLiveSSHD drives the distribution's OpenSSH server, with PAM, through
// rsyslog to sysban: password, keyboard-interactive (PAM) and publickey
// failures, an invalid user, an AllowUsers refusal, successes, and the
// pre-auth probes (banner garbage, no identification, an old key exchange)
// that the sshd filter's ddos mode counts.
func TestLiveSSHD(t *testing.T) {
	version := needLive(t, "openssh-server", "/usr/sbin/sshd", "ssh-keygen", "openssl")
	l := newLive(t, "sshd", version, fmt.Sprintf(`
jails:
  sshd:
    enabled: true
    maxretry: %[1]d
    findtime: 10m
    bantime: 1h
    ports: [22]
  sshd-probe:
    enabled: true
    filter: sshd
    mode: ddos
    maxretry: %[1]d
    findtime: 10m
    bantime: 1h
    ports: [22]
`, liveMaxRetry))
	l.noPAMDelay()
	l.exact, l.port = true, 22
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", l.path("ssh_host_ed25519_key")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	_, goodKey, _ := ed25519.GenerateKey(rand.Reader)
	goodSigner, _ := ssh.NewSignerFromKey(goodKey)
	_, badKey, _ := ed25519.GenerateKey(rand.Reader)
	badSigner, _ := ssh.NewSignerFromKey(badKey)
	l.write("authorized_keys", string(ssh.MarshalAuthorizedKey(goodSigner.PublicKey())), 0o644)
	cfg := l.write("sshd_config", fmt.Sprintf(liveSSHDConfig, l.dir), 0o644)
	l.spawn("/usr/sbin/sshd", "-D", "-f", cfg)
	l.waitPort("tcp", serverV4, 22)
	l.waitPort("tcp", serverV6, 22)

	login := func(user string, auth ...ssh.AuthMethod) func(string) error {
		return func(from string) error { return l.sshLogin(from, user, nil, auth...) }
	}
	password := func(pw string) ssh.AuthMethod { return ssh.Password(pw) }
	kbd := func(pw string) ssh.AuthMethod {
		return ssh.KeyboardInteractive(func(_, _ string, qs []string, _ []bool) ([]string, error) {
			answers := make([]string, len(qs))
			for i := range answers {
				answers[i] = pw
			}
			return answers, nil
		})
	}
	// Successes and harmless traffic: counted by no jail.
	clean := l.succeed(
		family{"success password", "sshd", false, login(liveUser, password(livePassword))},
		family{"success keyboard-interactive", "sshd", false, login(liveUser, kbd(livePassword))},
		family{"success publickey", "sshd", false, login(liveUser, ssh.PublicKeys(goodSigner))},
	)
	// One wrong password, then the right one on the same connection.
	// It counts one failure: the success neither erases nor adds.
	if a := l.try("password then success", "sshd", l.attacker(false), 1, login(liveUser, password("wrong"), kbd(livePassword))); a.err != nil || a.counted != 1 {
		t.Errorf("password then success: counted %d, want 1 (client: %v)", a.counted, a.err)
	}
	l.drive(
		family{"password", "sshd", false, login(liveUser, password("wrong"))},
		family{"password", "sshd", true, login(liveUser, password("wrong"))},
		family{"keyboard-interactive", "sshd", false, login(liveUser, kbd("wrong"))},
		family{"publickey", "sshd", false, login(liveUser, ssh.PublicKeys(badSigner))},
		family{"invalid user", "sshd", false, login("nosuchuser", password("wrong"))},
		family{"invalid user", "sshd", true, login("nosuchuser", password("wrong"))},
		family{"AllowUsers refusal", "sshd", false, login("daemon", password("wrong"))},
		family{"banner garbage", "sshd-probe", false, l.rawProbe(22, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		family{"banner garbage", "sshd-probe", true, l.rawProbe(22, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")},
		family{"no identification", "sshd-probe", false, l.rawProbe(22, "")},
		family{"old kex", "sshd-probe", false, func(from string) error {
			return l.sshLogin(from, liveUser, []string{"diffie-hellman-group1-sha1"}, password(livePassword))
		}},
	)
	// What is right already: K wrong passwords ban the client, and its
	// packets are then dropped.
	l.assertBans(22, clean, "password")
	l.alive()
}

// sshLogin opens an SSH connection from from as user with the auth methods
// in order; kex limits the key exchanges when not nil.
func (l *live) sshLogin(from, user string, kex []string, auth ...ssh.AuthMethod) error {
	c, err := l.session(from, 22)
	if err != nil {
		return err
	}
	defer c.Close()
	cfg := &ssh.ClientConfig{
		User:            user,
		Auth:            auth,
		HostKeyCallback: ssh.InsecureIgnoreHostKey(),
		Timeout:         5 * time.Second,
	}
	cfg.KeyExchanges = kex
	conn, chans, reqs, err := ssh.NewClientConn(c, net.JoinHostPort(server(from), "22"), cfg)
	if err != nil {
		return err
	}
	// Authenticated: that is the outcome. Closing may fail when sshd ends
	// the session itself (a PAM session error).
	ssh.NewClient(conn, chans, reqs).Close()
	return nil
}

// rawProbe connects to port, writes send (nothing when ""), reads what the
// server answers until it closes or a second passes, and hangs up.
func (l *live) rawProbe(port int, send string) func(string) error {
	return func(from string) error {
		c, err := l.dialFrom(from, port)
		if err != nil {
			return err
		}
		defer c.Close()
		if send != "" {
			if _, err := io.WriteString(c, send); err != nil {
				return err
			}
			c.SetReadDeadline(time.Now().Add(time.Second))
			io.Copy(io.Discard, c)
		}
		return nil
	}
}
