package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestHealAfterFlushRuleset bans an attacker, wipes the server's whole
// ruleset the way an admin or a firewall manager does, and checks that the
// ban comes back in the kernel (how soon is logged: milliseconds on a quiet
// machine) and the attacker is dropped again, while the clean peer still
// connects. Then the same after loading
// a Debian-style /etc/nftables.conf ("flush ruleset" and a table of its
// own) with nft -f, and after deleting the one element from an idle table.
func TestHealAfterFlushRuleset(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.serve(22)
	attacker := outsideV4[0]
	if !w.canConnect(attacker, serverV4, 22) {
		t.Fatal("before any ban, the attacker must reach port 22")
	}
	for _, line := range failures(attacker, 3) {
		w.logger("-n", "127.0.0.1", "-P", fmt.Sprint(w.udpPort), "-d", "-t", "sshd", "--", line)
	}
	w.waitBanned("sshd_v4", attacker)
	if !w.blocked(attacker, serverV4, 22) {
		t.Fatalf("%s banned but still connects", attacker)
	}

	conf := filepath.Join(w.dir, "nftables.conf")
	if err := os.WriteFile(conf, []byte("flush ruleset\n"+
		"table inet filter {\n"+
		"\tchain input { type filter hook input priority filter; policy accept; }\n"+
		"}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// No subtests: the harness fails w.t, the parent test.
	for _, damage := range []struct {
		name string
		cmd  []string
	}{
		{"nft flush ruleset", []string{"nft", "flush", "ruleset"}},
		{"nft -f nftables.conf", []string{"nft", "-f", conf}},
		// One element, after a few idle seconds: the guard's checks have
		// been reading nothing since its last full one (the kernel's
		// ruleset generation and the store's stayed put).
		{"nft delete element, idle", []string{"nft", "delete", "element", "inet", "sysban", "sshd_v4", "{ " + attacker + " }"}},
	} {
		if damage.name == "nft delete element, idle" {
			time.Sleep(3 * time.Second) // more than a guard interval of checks
		}
		t0 := time.Now()
		w.inSrv(damage.cmd...)
		w.waitFor("the ban to be restored in the kernel after "+damage.name, eventually, func() bool {
			return w.isBanned("sshd_v4", attacker)
		})
		t.Logf("ban back in the kernel %v after %s", time.Since(t0).Round(time.Millisecond), damage.name)
		for _, e := range w.banned("sysban", "sshd_v4") {
			// Restored with the time it had left of its hour, not a fresh
			// hour and not permanent.
			if e.Addr == attacker && (e.Timeout == 0 || e.Expires > 3600 || e.Expires < 3500) {
				t.Errorf("restored element %+v: want about an hour left", e)
			}
		}
		if !w.blocked(attacker, serverV4, 22) {
			t.Errorf("%s connects after %s although the ban is back", attacker, damage.name)
		}
		if !w.canConnect(cleanV4, serverV4, 22) {
			t.Errorf("the clean peer is blocked after %s", damage.name)
		}
	}
	w.alive()
}
