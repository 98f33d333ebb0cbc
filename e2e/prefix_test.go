package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// TestIPv6PrefixBan: an attacker in the outside namespace holds 20
// addresses of one /64 and sends one failure from each through a real
// forwarder (rsyslogd). After maxretry of them the /64 is banned: a TCP
// SYN from a 21st address of that /64 is dropped, one from the
// neighbouring /64 is answered; the ban survives nft flush ruleset and a
// kill -9; the CLI shows and lifts the covering ban by any address inside
// it.
func TestIPv6PrefixBan(t *testing.T) {
	w := newWorld(t, worldOptions{})
	const attackNet = "2001:db8:aaaa:1::"
	addrOf := func(i int) string { return fmt.Sprintf("%s%x", attackNet, i) }
	neighbour := "2001:db8:aaaa:2::1"
	// The attacker's /64s are routed over the veth link.
	w.inSrv("ip", "-6", "route", "add", "2001:db8:aaaa::/48", "dev", w.vs)
	for i := 1; i <= 21; i++ {
		w.inOut("ip", "addr", "add", addrOf(i)+"/128", "dev", w.vo, "nodad")
	}
	w.inOut("ip", "addr", "add", neighbour+"/128", "dev", w.vo, "nodad")
	w.serve(22)
	if !w.canConnect(addrOf(21), serverV6, 22) {
		t.Fatal("before any ban, the 21st address must reach the server")
	}

	rsock := w.rsyslog()
	for i := 1; i <= 20; i++ {
		sshdFailures(w, rsock, addrOf(i), 1)
	}
	w.waitBanned("sshd_v6net", attackNet+"/64")
	if w.isBanned("sshd_v6", addrOf(3)) {
		t.Error("the single address went into the hash set: want the /64 only")
	}
	if !w.blocked(addrOf(21), serverV6, 22) {
		t.Error("a 21st address of the banned /64 still connects")
	}
	if !w.canConnect(neighbour, serverV6, 22) {
		t.Error("the neighbouring /64 is blocked too")
	}

	// The guard puts the prefix back after nft flush ruleset, and a
	// restart after kill -9 restores it from the store.
	w.inSrv("nft", "flush", "ruleset")
	w.waitFor("the /64 back after nft flush ruleset", eventually, func() bool { return w.isBanned("sshd_v6net", attackNet+"/64") })
	w.stop(syscall.SIGKILL)
	w.inSrv("nft", "delete", "table", "inet", "sysban")
	w.start(filepath.Join(w.dir, "sysban.yaml"))
	w.waitBanned("sshd_v6net", attackNet+"/64")
	if !w.blocked(addrOf(21), serverV6, 22) {
		t.Error("the /64 restored after kill -9 but a 21st address still connects")
	}

	out, code := w.cli("banned", addrOf(99), "--json")
	var bans []struct {
		Jail, Prefix, Addr string
	}
	if code != 0 || json.Unmarshal([]byte(out), &bans) != nil || len(bans) != 1 || bans[0].Prefix != attackNet+"/64" {
		t.Fatalf("sysban banned %s: exit %d\n%s", addrOf(99), code, out)
	}
	if out, code := w.cli("unban", addrOf(99)); code != 0 || !strings.Contains(out, "unbanned "+attackNet+"/64 from sshd (the ban covering "+addrOf(99)+")") {
		t.Fatalf("sysban unban %s: exit %d\n%s", addrOf(99), code, out)
	}
	w.waitFor("the /64 to leave the kernel", eventually, func() bool { return !w.isBanned("sshd_v6net", attackNet+"/64") })
	if !w.canConnect(addrOf(21), serverV6, 22) {
		t.Error("still blocked after the unban")
	}
	w.alive()
}

// TestObserveMode: a jail with observe: true decides the ban, records it
// and shows it as observed in sysban banned and status, while the kernel
// set stays empty and the attacker still connects; a reload that turns
// observe off enforces the observed ban that has not expired.
func TestObserveMode(t *testing.T) {
	w := newWorld(t, worldOptions{config: defaultJails + "    observe: true\n"})
	w.serve(22)
	attacker := outsideV4[0]
	for _, line := range failures(attacker, 3) {
		w.logger("-n", "127.0.0.1", "-P", fmt.Sprint(w.udpPort), "-d", "-t", "sshd", "--", line)
	}
	w.waitFor("the observed ban to be recorded", eventually, func() bool {
		out, code := w.cli("banned", attacker)
		return code == 0 && strings.Contains(out, attacker+" [observed]")
	})
	if out, _ := w.cli("status"); !strings.Contains(out, "observe") {
		t.Errorf("status does not show the jail in observe mode:\n%s", out)
	}
	if w.isBanned("sshd_v4", attacker) {
		t.Fatal("observe mode put the ban in the kernel")
	}
	if !w.canConnect(attacker, serverV4, 22) {
		t.Fatal("observe mode blocked the attacker")
	}
	if !strings.Contains(w.logs.String(), "observed ban (observe mode: not enforced)") {
		t.Error("the log does not say the ban was only observed")
	}

	path := filepath.Join(w.dir, "sysban.yaml")
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(strings.Replace(string(cfg), "    observe: true\n", "", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := w.cli("reload"); code != 0 {
		t.Fatalf("reload: exit %d\n%s", code, out)
	}
	w.waitBanned("sshd_v4", attacker)
	if !w.blocked(attacker, serverV4, 22) {
		t.Error("the enforced ban does not block")
	}
	if out, _ := w.cli("banned", attacker); strings.Contains(out, "[observed]") {
		t.Errorf("still shown as observed after enforcing:\n%s", out)
	}
	w.alive()
}

// TestEscalationAndFallback: four /64s of one /48 banned within the window
// ban the /48 (the shipped sshd rule: count 4 within 1h), which blocks a
// fifth /64 of it and expires with its bantime; a /64 holding an ignoreip
// address is banned narrower, sparing that address.
func TestEscalationAndFallback(t *testing.T) {
	w := newWorld(t, worldOptions{config: `
jails:
  sshd:
    enabled: true
    maxretry: 1
    findtime: 1m
    bantime: 8s
    ports: [ssh]
    ignoreip: ["127.0.0.0/8", "::1/128", "2001:db8:bbbb:1::8000/128"]
`})
	w.inSrv("ip", "-6", "route", "add", "2001:db8::/32", "dev", w.vs)
	probe, spared, neighbour := "2001:db8:aaaa:5::1", "2001:db8:bbbb:1::8000", "2001:db8:bbbb:1::1"
	for _, a := range []string{probe, spared, neighbour} {
		w.inOut("ip", "addr", "add", a+"/128", "dev", w.vo, "nodad")
	}
	w.serve(22)
	for _, a := range []string{probe, spared, neighbour} {
		if !w.canConnect(a, serverV6, 22) {
			t.Fatalf("before any ban, %s must reach the server", a)
		}
	}

	rsock := w.rsyslog()
	for i := 1; i <= 4; i++ {
		sshdFailures(w, rsock, fmt.Sprintf("2001:db8:aaaa:%d::7", i), 1)
	}
	w.waitBanned("sshd_v6net", "2001:db8:aaaa::/48")
	if !w.blockedWhileBanned("sshd_v6net", "2001:db8:aaaa::/48", probe, serverV6, 22) {
		t.Error("a fifth /64 of the escalated /48 still connects")
	}
	if !strings.Contains(w.logs.String(), `msg="escalated ban"`) {
		t.Error("the escalation is not logged")
	}
	w.waitFor("the /48 to expire with its bantime", eventually, func() bool { return !w.isBanned("sshd_v6net", "2001:db8:aaaa::/48") })
	if !w.canConnect(probe, serverV6, 22) {
		t.Error("still blocked after the /48 expired")
	}

	// The ignored address sits in the attacker's /64: the ban narrows.
	sshdFailures(w, rsock, neighbour, 1)
	w.waitFor("the narrowed ban", eventually, func() bool {
		return w.isBanned("sshd_v6net", "2001:db8:bbbb:1::/113")
	})
	if !strings.Contains(w.logs.String(), "ban narrowed") {
		t.Error("the narrowing is not logged")
	}
	if !w.blockedWhileBanned("sshd_v6net", "2001:db8:bbbb:1::/113", neighbour, serverV6, 22) {
		t.Error("the attacker inside the narrowed ban still connects")
	}
	if !w.canConnect(spared, serverV6, 22) {
		t.Error("the ignoreip address was banned with its /64")
	}
	w.alive()
}
