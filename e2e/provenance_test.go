package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProvenanceRequire: under provenance: require the same sshd failure
// line, written by user nobody with logger straight to each of sysban's
// listeners, forged [sysban@32473 uid="0"] included, and through a real
// rsyslog with the shipped forwarder file, bans nothing and is counted as
// untrusted; the same line from root's "sshd" through rsyslog bans.
func TestProvenanceRequire(t *testing.T) {
	w := newWorld(t, worldOptions{
		extra:  "  unixgroup: nogroup\n",
		config: "\ndefaults:\n  provenance: require\n" + defaultJails,
		before: func(w *world) {
			// nobody must reach the sockets in the test's directory.
			for _, d := range []string{w.dir, filepath.Dir(w.dir)} {
				if err := os.Chmod(d, 0o755); err != nil {
					w.t.Fatal(err)
				}
			}
		},
	})
	rsock := w.rsyslogTrusted()
	tcp := fmt.Sprintf("-n 127.0.0.1 -P %d -T --octet-count", w.tcpPort)
	udp := fmt.Sprintf("-n 127.0.0.1 -P %d -d", w.udpPort)
	cases := []struct {
		name, attacker string
		args           []string
	}{
		{"unix datagram", "198.18.1.1", []string{"-u", w.sock, "--socket-errors=on"}},
		{"unix stream", "198.18.1.2", []string{"-u", w.sock + "-stream", "--socket-errors=on"}},
		{"tcp loopback", "198.18.1.3", strings.Fields(tcp)},
		{"tcp loopback, forged origin", "198.18.1.4", append(strings.Fields(tcp), "--rfc5424", "--sd-id", "sysban@32473", "--sd-param", `uid="0"`, "--sd-param", `exe="/usr/sbin/sshd"`)},
		{"udp", "198.18.1.5", strings.Fields(udp)},
		{"rsyslog with the shipped template", "198.18.1.6", []string{"-u", rsock, "--socket-errors=on"}},
	}
	for _, c := range cases {
		for _, line := range failures(c.attacker, 3) {
			args := append([]string{"netns", "exec", w.srv, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "logger"}, c.args...)
			args = append(args, "-t", "sshd", "-p", "auth.info", "--", line)
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("%s: logger as nobody: %v\n%s", c.name, err, out)
			}
		}
	}
	// Root's sshd (here logger under that name, as root) through rsyslog.
	trusted := "198.18.1.9"
	for _, line := range failures(trusted, 3) {
		w.inSrv(w.sshdLogger(), "-u", rsock, "-t", "sshd", "-p", "auth.info", "--", line)
	}
	w.waitBanned("sshd_v4", trusted)
	want := float64(3 * len(cases))
	w.waitFor("every forged failure counted as untrusted", eventually, func() bool {
		v, _ := findMetric(w.scrape(), "sysban_failures_untrusted_total", `jail="sshd"`)
		return v == want
	})
	for _, c := range cases {
		if w.isBanned("sshd_v4", c.attacker) {
			t.Errorf("%s: nobody's lines banned %s", c.name, c.attacker)
		}
	}
	if v, _ := findMetric(w.scrape(), "sysban_failures_total", `jail="sshd"`); v != 3 {
		t.Errorf("sysban_failures_total = %v, want 3 (root's sshd only)", v)
	}
	w.alive()
}

// sshdLogger returns a copy of logger named sshd: run as root, its lines
// carry what the sshd filter trusts (uid 0, exe and comm "sshd").
func (w *world) sshdLogger() string {
	w.t.Helper()
	sshd := filepath.Join(w.dir, "sshd")
	if _, err := os.Stat(sshd); err != nil {
		w.sh("cp", "/usr/bin/logger", sshd)
	}
	return sshd
}

// TestProvenancePreferByDefault: the attack, on the default
// provenance (prefer): nobody's sshd lines on a connection to the loopback
// TCP port carry nobody's uid and ban nothing; lines without a vouched
// sender (root's logger, a forwarder's uid without the template) count.
// nobody's connection stays open until its lines are counted: one that
// closes before sysban asks the kernel for its owner has none (as UDP),
// which prefer counts and require does not (TestProvenanceRequire).
func TestProvenancePreferByDefault(t *testing.T) {
	w := newWorld(t, worldOptions{})
	tcp := strings.Fields(fmt.Sprintf("-n 127.0.0.1 -P %d -T --octet-count -t sshd", w.tcpPort))
	forged, relayed := "198.18.2.1", "198.18.2.2"
	cmd := exec.Command("ip", "netns", "exec", w.srv, "setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
		"socat", "-u", "STDIN", fmt.Sprintf("TCP:127.0.0.1:%d", w.tcpPort))
	nobody, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nobody.Close(); cmd.Wait() })
	for _, line := range failures(forged, 3) {
		if _, err := fmt.Fprintf(nobody, "<38>1 - h sshd 7 - - %s\n", line); err != nil {
			t.Fatalf("socat as nobody: %v\n%s", err, out.String())
		}
	}
	for _, line := range failures(relayed, 3) {
		w.logger(append(tcp, "--", line)...)
	}
	w.waitBanned("sshd_v4", relayed)
	w.waitFor("nobody's failures counted as untrusted", eventually, func() bool {
		v, _ := findMetric(w.scrape(), "sysban_failures_untrusted_total", `jail="sshd"`)
		return v == 3
	})
	if w.isBanned("sshd_v4", forged) {
		t.Errorf("nobody's lines banned %s", forged)
	}
}
