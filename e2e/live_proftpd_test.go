package e2e

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// liveProFTPDDir is where scripts/test unpacks proftpd-core: the package
// conflicts with vsftpd (both provide ftp-server), so it is never
// installed next to it. LIVE_PROFTPD_DIR names another directory.
const liveProFTPDDir = "/var/cache/sysban-e2e/proftpd"

// liveProFTPDConfig is the server's config; %[1]s is its directory. No
// SystemLog: its log goes to syslog (Debian's own config writes a file
// instead, /var/log/proftpd/proftpd.log, which rsyslog's imfile would
// forward; not driven here). PAM
// (Debian's proftpd service: pam_listfile, then common-auth) checks the
// passwords, as Debian's does; mod_delay's pause after a failure is off.
const liveProFTPDConfig = `ServerType standalone
ServerName "live"
DefaultServer on
UseIPv6 on
Port 21
User nobody
Group nogroup
PidFile %[1]s/proftpd.pid
ScoreboardFile %[1]s/proftpd.scoreboard
DelayTable none
DelayEngine off
WtmpLog off
UseReverseDNS off
RequireValidShell off
AuthOrder mod_auth_pam.c* mod_auth_unix.c
AuthPAM on
AuthPAMConfig proftpd
MaxLoginAttempts 3
`

// TestLiveProFTPD drives Debian's ProFTPD 1.3.8 (the unpacked package, PAM,
// its log to syslog): wrong passwords (IPv4, IPv6), an unknown user, and a
// login that works.
func TestLiveProFTPD(t *testing.T) {
	dir := os.Getenv("LIVE_PROFTPD_DIR")
	if dir == "" {
		dir = liveProFTPDDir
	}
	// An installed proftpd-core (no vsftpd on this machine) goes first.
	bin, version := "/usr/sbin/proftpd", ""
	if _, err := os.Stat(bin); err != nil {
		bin = dir + "/usr/sbin/proftpd"
		if b, err := os.ReadFile(dir + "/version"); err == nil {
			version = strings.TrimSpace(string(b)) + ", unpacked"
		}
	}
	if v := needLive(t, "proftpd-core", bin); version == "" {
		version = v
	}
	l := newLive(t, "proftpd", version, liveConfig(liveJail("proftpd", "proftpd", "21", "tcp")))
	l.exact, l.port = true, 21
	l.noPAMDelay()
	// The package's PAM service (pam_listfile, common-auth), also when it
	// is only unpacked.
	if b, err := os.ReadFile(dir + "/etc/pam.d/proftpd"); err == nil && bin != "/usr/sbin/proftpd" {
		l.write("root/etc/pam.d/proftpd", string(b), 0o644)
	}
	cfg := l.write("proftpd.conf", fmt.Sprintf(liveProFTPDConfig, l.dir), 0o644)
	// As Debian's unit runs it: a daemon (--nodaemon would log to stderr,
	// not syslog), found by its pid file to be stopped.
	t.Cleanup(func() { l.stopByPIDFile(l.path("proftpd.pid")) })
	l.spawn(bin, "--config", cfg)
	l.waitPort("tcp", serverV4, 21)
	clean := l.succeed(family{"success", "proftpd", false, l.ftpLogin(21, liveUser, livePassword)})
	l.drive(
		family{"password", "proftpd", false, l.ftpLogin(21, liveUser, "wrong")},
		family{"password", "proftpd", true, l.ftpLogin(21, liveUser, "wrong")},
		family{"unknown user", "proftpd", false, l.ftpLogin(21, "nosuchuser", "wrong")},
	)
	l.assertBans(21, clean, "password")
	l.alive()
}

// stopByPIDFile stops a daemon that left its process group (it forked and
// called setsid) by the pid in its pid file, and waits up to 10 s for it.
func (l *live) stopByPIDFile(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return
	}
	syscall.Kill(pid, syscall.SIGTERM)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if syscall.Kill(pid, 0) != nil {
			return
		}
	}
	syscall.Kill(pid, syscall.SIGKILL)
}
