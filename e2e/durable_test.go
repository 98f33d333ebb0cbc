package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestKillNineKeepsBans bans an address, kills the daemon with SIGKILL,
// deletes its table (as a firewall reload or a reboot would), and restarts
// it: the ban must come back from the state directory with the time it had
// left, not a fresh bantime.
func TestKillNineKeepsBans(t *testing.T) {
	w := newWorld(t, worldOptions{})
	state := filepath.Join(w.dir, "state")
	w.serve(22)
	attacker := outsideV4[0]
	if !w.canConnect(attacker, serverV4, 22) {
		t.Fatal("before any ban, the attacker must reach port 22")
	}
	for _, line := range failures(attacker, 3) {
		w.logger("-n", "127.0.0.1", "-P", fmt.Sprint(w.udpPort), "-d", "-t", "sshd", "-p", "auth.info", "--", line)
	}
	w.waitBanned("sshd_v4", attacker)
	if entries, err := os.ReadDir(state); err != nil || len(entries) == 0 {
		t.Fatalf("the daemon wrote nothing to state.dir %s: %v", state, err)
	}
	before := setElement(w, "sshd_v4", attacker)
	if before.Expires <= 0 || before.Expires > 3600 {
		t.Fatalf("ban of %s: expires in %ds, want (0, 3600]", attacker, before.Expires)
	}
	// Let some of the bantime pass, so a ban restored with a fresh
	// bantime would show it.
	w.waitFor("2s of the ban to pass", eventually, func() bool {
		return setElement(w, "sshd_v4", attacker).Expires <= before.Expires-2
	})
	w.stop(syscall.SIGKILL)
	w.inSrv("nft", "delete", "table", "inet", "sysban")
	if w.isBanned("sshd_v4", attacker) {
		t.Fatal("the ban is still in the kernel after deleting the table")
	}
	killed := time.Now()

	w.start(filepath.Join(w.dir, "sysban.yaml"))
	w.waitBanned("sshd_v4", attacker)
	after := setElement(w, "sshd_v4", attacker)
	elapsed := int(time.Since(killed).Seconds()) + 1
	// Restored with its remaining time: at most what was left before the
	// kill (which is already 2s under the bantime), and not much less.
	if after.Timeout > before.Expires-2+1 || after.Expires > before.Expires-2+1 {
		t.Errorf("restored ban: timeout %ds, expires in %ds; it had %ds left before the kill: the bantime was restarted",
			after.Timeout, after.Expires, before.Expires-2)
	}
	if after.Expires < before.Expires-2-elapsed-2 {
		t.Errorf("restored ban expires in %ds, want about %ds", after.Expires, before.Expires-2-elapsed)
	}
	if !w.blocked(attacker, serverV4, 22) {
		t.Errorf("%s is in the set after the restore but still connects", attacker)
	}
	if !w.canConnect(cleanV4, serverV4, 22) {
		t.Error("the clean peer is blocked after the restore")
	}
	w.alive()
}

// setElement returns addr's element in set of the sysban table, failing the
// test when it is not there.
func setElement(w *world, set, addr string) element {
	w.t.Helper()
	for _, e := range w.banned("sysban", set) {
		if e.Addr == addr {
			return e
		}
	}
	w.t.Fatalf("%s not in set %s", addr, set)
	return element{}
}
