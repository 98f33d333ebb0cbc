package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The forwarder files in deploy/forwarders are what the README tells users
// to install; these tests run the real rsyslog and syslog-ng on exactly
// those files, changing only what names this machine (paths, the TLS
// target's address), and each must deliver a ban.

// forwarderFile returns deploy/forwarders/name, changed as deployFile
// changes it.
func forwarderFile(t *testing.T, name string, pairs ...string) string {
	t.Helper()
	return deployFile(t, filepath.Join("forwarders", name), pairs...)
}

// deployFile returns deploy/name with each old string of pairs replaced by
// the new one after it. An old string the file no longer holds fails the
// test, so the file cannot drift from what is tested.
func deployFile(t *testing.T, name string, pairs ...string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "deploy", name))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			t.Fatalf("deploy/%s no longer contains %q; update the test", name, pairs[i])
		}
		s = strings.ReplaceAll(s, pairs[i], pairs[i+1])
	}
	return s
}

func sshdFailures(w *world, sock, attacker string, n int) {
	for i := range n {
		w.logger("-u", sock, "-t", "sshd", fmt.Sprintf("--id=%d", 4000+i), "-p", "auth.info",
			"Failed password for root from "+attacker+" port 4711 ssh2")
	}
}

func TestForwarderRsyslogUDP(t *testing.T) {
	w := newWorld(t, worldOptions{})
	rsock := w.rsyslogWith(forwarderFile(t, "rsyslog/60-sysban-udp.conf"))
	sshdFailures(w, rsock, outsideV4[0], 3)
	w.waitBanned("sshd_v4", outsideV4[0])
	w.alive()
}

// TCP with the disk-assisted queue, plus imfile reading an OpenVPN log
// file: both a syslog sender and a file line end as bans.
func TestForwarderRsyslogTCPAndImfile(t *testing.T) {
	w := newWorld(t, worldOptions{config: defaultJails + `
  openvpn:
    enabled: true
    maxretry: 2
`})
	logs := map[string]string{}
	for _, name := range []string{"named", "openvpn", "apache"} {
		logs[name] = filepath.Join(w.dir, name+".log")
		if err := os.WriteFile(logs[name], nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	imfile := forwarderFile(t, "rsyslog/55-sysban-imfile.conf",
		"/var/log/named/security.log", logs["named"],
		"/var/log/openvpn/openvpn.log", logs["openvpn"],
		"/var/log/apache2/error.log", logs["apache"])
	rsock := w.rsyslogWith(imfile + forwarderFile(t, "rsyslog/60-sysban-tcp.conf"))

	sshdFailures(w, rsock, outsideV4[0], 3)
	vpn := outsideV4[1]
	f, err := os.OpenFile(logs["openvpn"], os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		// OpenVPN's own file format: its ctime stamp, then the peer.
		fmt.Fprintf(f, "%s %s:%d Connection reset, restarting [0]\n", time.Now().Format("Mon Jan _2 15:04:05 2006"), vpn, 51000+i)
	}
	f.Close()
	w.waitBanned("sshd_v4", outsideV4[0])
	w.waitBanned("openvpn_v4", vpn)
	if _, err := os.Stat(filepath.Join(w.dir, "rsyslog-work")); err != nil {
		t.Error(err)
	}
	w.alive()
}

// TLS with gtls: rsyslog checks sysban's certificate by name, sysban
// requires rsyslog's client certificate.
func TestForwarderRsyslogTLS(t *testing.T) {
	if skipWhy == "" {
		if _, err := os.Stat("/usr/lib/x86_64-linux-gnu/rsyslog/lmnsd_gtls.so"); err != nil {
			t.Skip("needs rsyslog-gnutls")
		}
	}
	dir := userDir(t, 0)
	w, caCert, caKey := tlsWorld(t, dir, "sysban.example.org")
	cliCert, cliKey := makeCert(t, caCert, caKey, "mx1.example.org", false)
	writePEM(t, filepath.Join(dir, "client.pem"), "CERTIFICATE", cliCert.Raw)
	writeKey(t, filepath.Join(dir, "client.key"), cliKey)
	rsock := w.rsyslogWith(forwarderFile(t, "rsyslog/60-sysban-tls.conf",
		`target="sysban.example.org"`, `target="127.0.0.1"`,
		"/etc/rsyslog-tls/", dir+"/"))
	sshdFailures(w, rsock, outsideV4[2], 3)
	w.waitBanned("sshd_v4", outsideV4[2])
	w.alive()
}

// syslogNG finds a syslog-ng binary: on PATH, or unpacked (not installed:
// syslog-ng-core conflicts with rsyslog) where scripts/test puts it.
func syslogNG(t *testing.T) (argv, env []string) {
	t.Helper()
	if p, err := exec.LookPath("syslog-ng"); err == nil {
		return []string{p}, nil
	}
	root := os.Getenv("SYSBAN_E2E_SYSLOG_NG")
	if root == "" {
		root = "/var/cache/sysban-e2e/syslog-ng"
	}
	bin := filepath.Join(root, "usr/sbin/syslog-ng")
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("needs syslog-ng: run scripts/test as root (it unpacks syslog-ng-core to %s) or install it", root)
	}
	mods, _ := filepath.Glob(filepath.Join(root, "usr/lib/syslog-ng/[0-9]*"))
	if len(mods) != 1 {
		t.Fatalf("no module directory under %s/usr/lib/syslog-ng", root)
	}
	return []string{bin, "--module-path=" + mods[0]}, []string{"LD_LIBRARY_PATH=" + filepath.Join(root, "usr/lib/syslog-ng")}
}

// Each destination of the syslog-ng file, chosen in its log statement.
func TestForwarderSyslogNG(t *testing.T) {
	w := newWorld(t, worldOptions{})
	argv, env := syslogNG(t)
	for i, dest := range []string{"d_sysban_syslog", "d_sysban_tcp", "d_sysban_unix"} {
		t.Run(dest, func(t *testing.T) {
			dir := filepath.Join(w.dir, "syslog-ng-"+dest)
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			in := filepath.Join(dir, "in.sock")
			conf := "@version: 3.38\nsource s_src { unix-dgram(\"" + in + "\"); };\n" +
				forwarderFile(t, "syslog-ng/sysban.conf",
					"/run/sysban/syslog-stream.sock", w.sock+"-stream",
					"log { source(s_src); destination(d_sysban_syslog); };", "log { source(s_src); destination("+dest+"); };")
			confPath := filepath.Join(dir, "syslog-ng.conf")
			if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
				t.Fatal(err)
			}
			args := append(argv, "-F", "--no-caps", "-f", confPath, "-R", filepath.Join(dir, "persist"),
				"-p", filepath.Join(dir, "pid"), "-c", filepath.Join(dir, "ctl"))
			w.forwarder(t, "syslog-ng", env, in, args...)
			attacker := outsideV4[3+i]
			sshdFailures(w, in, attacker, 3)
			w.waitBanned("sshd_v4", attacker)
		})
	}
	w.alive()
}

// The BSD syslog.conf lines: the address each forwards to is sysban's
// default listener, and what FreeBSD and OpenBSD syslogd send there
// (FreeBSD: no hostname, or relayed with "Forwarded from HOST:"; OpenBSD:
// with a hostname) bans.
func TestForwarderBSDSyslogConf(t *testing.T) {
	w := newWorld(t, worldOptions{})
	target := func(name string) string {
		t.Helper()
		for _, line := range strings.Split(forwarderFile(t, name), "\n") {
			if f := strings.Fields(line); len(f) == 2 && f[0] == "*.*" && strings.HasPrefix(f[1], "@") {
				if !strings.Contains(line, "\t") {
					t.Errorf("%s: %q: syslogd wants a tab between selector and action", name, line)
				}
				return strings.TrimPrefix(f[1], "@")
			}
		}
		t.Fatalf("%s: no active *.* @host:port line", name)
		return ""
	}
	stamp := time.Now().Format(time.Stamp)
	line := func(attacker string) string {
		return "sshd[77]: Failed password for root from " + attacker + " port 4711 ssh2"
	}
	free, open := outsideV4[0], outsideV4[1]
	fb := target("bsd/freebsd-syslog.conf")
	if err := sendUDP(w.srv, fb,
		[]byte("<38>"+stamp+" "+line(free)),
		[]byte("<38>"+stamp+" Forwarded from web3.example.org: "+line(free)),
		[]byte("<38>"+stamp+" Forwarded from 192.0.2.60: "+line(free))); err != nil {
		t.Fatal(err)
	}
	ob := target("bsd/openbsd-syslog.conf")
	for range 3 {
		if err := sendUDP(w.srv, ob, []byte("<38>"+stamp+" obsd "+line(open))); err != nil {
			t.Fatal(err)
		}
	}
	w.waitBanned("sshd_v4", free)
	w.waitBanned("sshd_v4", open)
	w.alive()
}

// A host with only journald pipes journalctl into util-linux logger
// (deploy/forwarders/journald.md): logger sends each journal line as its
// own message under the pipe's tag, over TCP in RFC 5424, and sysban,
// told the tag in listen.journalprograms, filters the line as sshd's.
// The lines are what `journalctl -o short-iso`, `-o short` and
// `-o short-iso-precise` print; journald itself is not needed to write them.
func TestForwarderJournalctlLogger(t *testing.T) {
	w := newWorld(t, worldOptions{extra: "  journalprograms: [journal-fwd]"})
	now := time.Now()
	journal := func(name, attacker string) string {
		lines := []string{
			now.Format("2006-01-02T15:04:05-0700") + " web1 sshd[4711]: Failed password for root from " + attacker + " port 4711 ssh2",
			now.Format("Jan 02 15:04:05") + " web1 sshd[4712]: Failed password for root from " + attacker + " port 4712 ssh2",
			now.Format("2006-01-02T15:04:05.000000-0700") + " web1 sshd[4713]: Failed password for root from " + attacker + " port 4713 ssh2",
		}
		file := filepath.Join(w.dir, name)
		if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		return file
	}
	// Under a tag not listed ("root" is what logger writes without -t)
	// the lines are logger's own text and ban nobody.
	w.logger("--tcp", "-n", "127.0.0.1", "-P", fmt.Sprint(w.tcpPort), "-t", "root", "-f", journal("other.txt", outsideV4[2]))
	w.logger("--tcp", "-n", "127.0.0.1", "-P", fmt.Sprint(w.tcpPort), "-t", "journal-fwd", "-f", journal("journal.txt", outsideV4[1]))
	w.waitBanned("sshd_v4", outsideV4[1])
	if w.isBanned("sshd_v4", outsideV4[2]) {
		t.Errorf("%s banned from lines under a tag not in listen.journalprograms", outsideV4[2])
	}
	w.alive()
}
