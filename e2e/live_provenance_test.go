package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"golang.org/x/crypto/ssh"
)

// TestLiveProvenanceSSHD: Debian's OpenSSH server logs through a real
// rsyslog running the shipped deploy/forwarders/rsyslog-trusted.conf, and
// the sshd jail has provenance: require. Wrong passwords from a client in
// the peer namespace count one failure each, ban it at maxretry and drop
// its packets: the kernel's word on sshd's lines (uid, exe, comm), as
// rsyslog's imuxsock takes it and the template passes it on, fits the sshd
// filter's Trust. The same failure line written by user nobody with logger
// to /dev/log, through the same rsyslog, bans nothing and is counted as
// untrusted (metric and `sysban status sshd`).
func TestLiveProvenanceSSHD(t *testing.T) {
	version := needLive(t, "openssh-server", "/usr/sbin/sshd", "ssh-keygen", "openssl", "setpriv")
	l := newLive(t, "sshd-provenance", version, fmt.Sprintf(`
jails:
  sshd:
    enabled: true
    provenance: require
    maxretry: %d
    findtime: 10m
    bantime: 1h
    ports: [22]
`, liveMaxRetry), liveOptions{trusted: true})
	l.noPAMDelay()
	l.exact, l.port = true, 22
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", l.path("ssh_host_ed25519_key")).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	l.spawn("/usr/sbin/sshd", "-D", "-f", l.write("sshd_config", fmt.Sprintf(liveSSHDConfig, l.dir), 0o644))
	l.waitPort("tcp", serverV4, 22)

	wrong := func(from string) error { return l.sshLogin(from, liveUser, nil, ssh.Password("wrong")) }
	l.drive(family{"password", "sshd", false, wrong})
	if t.Failed() {
		return
	}
	attacker := l.rows[0].from
	if n := l.untrusted("sshd"); n != 0 {
		t.Errorf("sshd's own failures: %d counted as untrusted, want 0 (its origin does not fit the sshd filter's Trust)", n)
	}
	l.checkVouched("sshd", func(v vouched) string {
		if v.uid != "0" || (v.exe != "/usr/sbin/sshd" && v.exe != "") || (v.comm != "sshd" && v.comm != "") {
			return "want uid 0, exe /usr/sbin/sshd, comm sshd"
		}
		return ""
	})

	// Replay sshd's own failure lines as nobody, naming a fresh address.
	var replay []string
	for _, a := range l.rows {
		for _, line := range a.lines {
			if i := strings.Index(line, "]: Failed password for "); i >= 0 && strings.Contains(line, " sshd[") {
				replay = append(replay, line[i+len("]: "):])
			}
		}
	}
	if len(replay) != liveMaxRetry {
		t.Fatalf("sshd logged %d Failed password lines for %d attempts, want one each", len(replay), liveMaxRetry)
	}
	victim := l.attacker(false)
	before := l.totalFailed("sshd")
	for _, line := range replay {
		// In the launch namespace /dev/log is rsyslog's socket; logger
		// finds it there by default, as on a host.
		args := []string{"netns", "exec", l.srv, "sh", l.path("launch.sh"), l.root, l.rsock,
			"setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
			"logger", "--socket-errors=on", "-t", "sshd", "-p", "auth.info", "--", strings.ReplaceAll(line, attacker, victim)}
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			t.Fatalf("logger as nobody to /dev/log: %v\n%s", err, out)
		}
	}
	l.waitFor("nobody's lines counted as untrusted", eventually, func() bool {
		v, _ := findMetric(l.scrape(), "sysban_failures_untrusted_total", `jail="sshd"`)
		return v == float64(len(replay))
	})
	if n := l.untrusted("sshd"); n != len(replay) {
		t.Errorf("sysban status sshd: untrusted %d, want %d", n, len(replay))
	}
	if n := l.totalFailed("sshd") - before; n != 0 {
		t.Errorf("nobody's lines counted %d failures, want 0", n)
	}
	if l.isBanned("sshd_v4", victim) || l.dropped(victim, 22) {
		t.Errorf("nobody's forged sshd lines banned %s", victim)
	}
	l.checkVouched("sshd", func(v vouched) string {
		// logger exits at once: rsyslog often finds no exe or comm for it.
		if v.uid == "0" || v.uid == "65534" && (v.exe == "/usr/bin/logger" || v.exe == "") {
			return "" // sshd's (checked above), or nobody's logger as the kernel says
		}
		return "want sshd's uid 0, or nobody's (65534) /usr/bin/logger"
	})
	if !l.vouchedSeen(func(v vouched) bool { return v.tag == "sshd:" && v.uid == "65534" }) {
		t.Errorf("rsyslog vouched for no line of nobody's logger (uid 65534)")
	}
	l.alive()
}

// vouched is one line of vouched.log: a message's tag and the sender's
// properties the shipped forwarder file passed on, and its text.
type vouched struct{ tag, uid, gid, pid, exe, comm, unit, msg string }

// vouchedLog reads vouched.log (liveOptions.trusted).
func (l *live) vouchedLog() []vouched {
	l.t.Helper()
	b, err := os.ReadFile(l.path("vouched.log"))
	if err != nil {
		l.t.Fatalf("rsyslog's vouched copy: %v", err)
	}
	var out []vouched
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.SplitN(line, " ", 8)
		if len(f) != 8 {
			l.t.Fatalf("vouched.log: %q: want TAG, 6 properties and the text", line)
		}
		v := vouched{tag: f[0], msg: f[7]}
		for i, p := range []*string{&v.uid, &v.gid, &v.pid, &v.exe, &v.comm, &v.unit} {
			_, *p, _ = strings.Cut(f[i+1], "=")
		}
		out = append(out, v)
	}
	return out
}

// checkVouched applies bad to the vouched properties of every line whose
// tag is program's, reports the ones it returns a reason for, and logs
// each distinct set seen (the evidence of what rsyslog passes on).
func (l *live) checkVouched(program string, bad func(vouched) string) {
	l.t.Helper()
	seen := map[vouched]int{}
	for _, v := range l.vouchedLog() {
		if v.tag != program+":" && !strings.HasPrefix(v.tag, program+"[") {
			continue
		}
		key := v
		key.tag, key.pid, key.msg = program, "*", ""
		if seen[key]++; seen[key] > 1 {
			continue
		}
		if v.exe == "" {
			l.t.Logf("%s line without exe (its process had exited when rsyslog looked): %s", program, v.msg)
		}
		if why := bad(v); why != "" {
			l.t.Errorf("%s line vouched as uid=%s gid=%s exe=%q comm=%q unit=%q: %s", program, v.uid, v.gid, v.exe, v.comm, v.unit, why)
		}
	}
	if len(seen) == 0 {
		l.t.Errorf("no %s line in rsyslog's vouched copy", program)
	}
	for v, n := range seen {
		l.t.Logf("%s lines vouched as uid=%s gid=%s exe=%q comm=%q unit=%q: %d", program, v.uid, v.gid, v.exe, v.comm, v.unit, n)
	}
}

// vouchedSeen says whether any line of vouched.log satisfies match.
func (l *live) vouchedSeen(match func(vouched) bool) bool {
	for _, v := range l.vouchedLog() {
		if match(v) {
			return true
		}
	}
	return false
}

// untrusted is the jail's untrusted count as `sysban status JAIL` gives it.
func (l *live) untrusted(jail string) int {
	l.t.Helper()
	out, code := l.cli("status", jail, "--json")
	var st struct {
		Untrusted uint64 `json:"untrusted"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		l.t.Fatalf("status %s --json (exit %d): %v\n%s", jail, code, err, out)
	}
	return int(st.Untrusted)
}
