package e2e

import (
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
)

// TestRecidiveAndIncrement bans one attacker twice in sshd (the second ban
// twice as long, from the store's history through bantime increment) and
// checks that the two bans, with a restart between them, make the recidive
// jail ban it from every port, while a clean peer still connects everywhere.
func TestRecidiveAndIncrement(t *testing.T) {
	w := newWorld(t, worldOptions{config: `
jails:
  sshd:
    enabled: true
    maxretry: 2
    findtime: 1m
    bantime: 2s
    ports: [ssh]
    bantimeincrement: {enabled: true, multiplier: 2, maxtime: 1h}
  recidive:
    enabled: true
    maxretry: 2
    findtime: 1m
    bantime: 1h
`})
	const otherPort = 8080
	w.serve(22)
	w.serve(otherPort)
	attacker := outsideV4[0]
	for _, port := range []int{22, otherPort} {
		if !w.canConnect(attacker, serverV4, port) {
			t.Fatalf("before any ban, %s cannot reach port %d", attacker, port)
		}
	}
	attack := func(round int) {
		t.Helper()
		for i := range 2 {
			line := fmt.Sprintf("Failed password for invalid user guest%d from %s port %d ssh2", round, attacker, 41000+10*round+i)
			w.logger("-n", "127.0.0.1", "-P", fmt.Sprint(w.udpPort), "-d", "-t", "sshd", "--", line)
		}
	}
	timeout := func(set string) int {
		for _, e := range w.banned("sysban", set) {
			if e.Addr == attacker {
				return e.Timeout
			}
		}
		return -1
	}

	// First offence: bantime 2s, sshd's port only, not yet a recidivist.
	attack(1)
	w.waitBanned("sshd_v4", attacker)
	if got := timeout("sshd_v4"); got < 1 || got > 2 {
		t.Errorf("first ban timeout %ds, want the 2s bantime", got)
	}
	if !w.blocked(attacker, serverV4, 22) {
		t.Error("banned in sshd but still connects to port 22")
	}
	if !w.canConnect(attacker, serverV4, otherPort) {
		t.Errorf("an sshd ban blocks port %d too", otherPort)
	}
	w.waitFor("the first ban to expire", eventually, func() bool { return !w.isBanned("sshd_v4", attacker) })
	if w.isBanned("recidive_v4", attacker) {
		t.Fatal("one ban made a recidive ban with maxretry 2")
	}
	// A restart between the offences: recidive's count of the first ban
	// must come back from the store, or the second would not be its second.
	w.stop(syscall.SIGTERM)
	w.start(filepath.Join(w.dir, "sysban.yaml"))

	// Second offence: twice as long, and recidive's second count.
	attack(2)
	w.waitBanned("sshd_v4", attacker)
	if got := timeout("sshd_v4"); got < 3 || got > 4 {
		t.Errorf("second ban timeout %ds, want 4s (bantime 2s x multiplier 2)", got)
	}
	w.waitBanned("recidive_v4", attacker)
	if got := timeout("recidive_v4"); got < 3590 || got > 3600 {
		t.Errorf("recidive ban timeout %ds, want 1h", got)
	}
	for _, port := range []int{22, otherPort} {
		if !w.blocked(attacker, serverV4, port) {
			t.Errorf("in recidive_v4 but still connects to port %d", port)
		}
		if !w.canConnect(cleanV4, serverV4, port) {
			t.Errorf("the clean peer cannot connect to port %d", port)
		}
	}
	// The sshd ban runs out; recidive's keeps holding every port.
	w.waitFor("the second sshd ban to expire", eventually, func() bool { return !w.isBanned("sshd_v4", attacker) })
	if !w.blocked(attacker, serverV4, otherPort) || !w.isBanned("recidive_v4", attacker) {
		t.Error("the recidive ban did not outlast the sshd ban")
	}
	w.alive()
}
