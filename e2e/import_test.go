package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportedFail2banConfigBans imports a fail2ban configuration (the
// CentOS 5 host of the seed documents) with `sysban import-fail2ban`, drops
// the result into conf.d/ and checks that its jails ban: one on a built-in
// filter (ssh-iptables, filter sshd) and one on a translated filter.d file
// (sendmail-smtp), each from its own ports and with fail2ban's REJECT.
func TestImportedFail2banConfigBans(t *testing.T) {
	w := newWorld(t, worldOptions{
		// The imported mail actions go to an MTA on 127.0.0.1:25, which
		// this world lacks (port 25 serves the ban check): their retries
		// must not hold up the daemon's exit.
		config: "jails: {}\nnotify:\n  draintimeout: 1s\n",
		before: func(w *world) {
			confd := filepath.Join(w.dir, "conf.d")
			if err := os.MkdirAll(confd, 0o755); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command(binary, "import-fail2ban", "--out", filepath.Join(confd, "50-fail2ban.yaml"),
				"../migrate/fail2ban/testdata/seed000-centos5").CombinedOutput()
			if err != nil {
				t.Fatalf("import-fail2ban: %v\n%s", err, out)
			}
		},
	})
	w.serve(22)
	w.serve(25)
	sshAttacker, mailAttacker := outsideV4[0], outsideV4[1]
	if !w.canConnect(sshAttacker, serverV4, 22) || !w.canConnect(mailAttacker, serverV4, 25) {
		t.Fatal("before any ban, the attackers must reach ports 22 and 25")
	}
	udp := []string{"-n", "127.0.0.1", "-P", fmt.Sprint(w.udpPort), "-d", "--rfc3164"}

	for _, line := range failures(sshAttacker, 5) { // maxretry = 5
		w.logger(append(udp, "-t", "sshd", "-p", "authpriv.info", "--", line)...)
	}
	w.waitBanned("ssh-iptables_v4", sshAttacker)
	if !w.blocked(sshAttacker, serverV4, 22) {
		t.Errorf("%s is banned in ssh-iptables but still reaches ssh", sshAttacker)
	}
	if !w.canConnect(sshAttacker, serverV4, 25) {
		t.Errorf("%s is banned from smtp too: ssh-iptables bans port 22 only", sshAttacker)
	}

	for i := range 5 {
		line := fmt.Sprintf("s538V2ge%06d: [%s] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", i, mailAttacker)
		w.logger(append(udp, "-t", "sendmail", "-p", "mail.info", "--", line)...)
	}
	w.waitBanned("sendmail-smtp_v4", mailAttacker)
	if !w.blocked(mailAttacker, serverV4, 25) {
		t.Errorf("%s is banned in sendmail-smtp but still reaches smtp", mailAttacker)
	}
	if !w.canConnect(cleanV4, serverV4, 25) || !w.canConnect(cleanV4, serverV4, 22) {
		t.Error("the clean peer is blocked")
	}
	rules := w.inSrv("nft", "list", "table", "inet", "sysban")
	if !strings.Contains(rules, "reject") {
		t.Errorf("fail2ban's iptables REJECT was not carried:\n%s", rules)
	}
	w.alive()
}
