package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"testing"
	"time"
)

// nflogConfig enables NFLOG with one trap port and the portprobe jail.
const nflogConfig = `
nflog:
  enabled: true
  banned: true
  trapports:
    tcp: [2323]
jails:
  sshd:
    enabled: true
    maxretry: 3
    findtime: 1m
    bantime: 1h
    ports: [ssh]
  portprobe:
    enabled: true
    maxretry: 3
    findtime: 1m
    bantime: 1h
`

// needNFLOG skips unless the kernel can log to userspace through NFLOG.
func needNFLOG(t *testing.T) {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	// The file exists once nfnetlink_log is loaded or built in.
	const proc = "/proc/net/netfilter/nfnetlink_log"
	if _, err := os.Stat(proc); err == nil {
		return
	}
	out, err := exec.Command("modprobe", "nfnetlink_log").CombinedOutput()
	if _, serr := os.Stat(proc); serr != nil {
		t.Skipf("NFLOG tests need the nfnetlink_log kernel module (no %s; modprobe nfnetlink_log: %v %s)", proc, err, out)
	}
}

// TestNFLOGPortProbe: the outside namespace knocks on a trap port nothing
// serves; the probes reach the portprobe jail through NFLOG and the
// scanner is banned in the kernel, while the clean peer, which never
// knocked, still connects.
func TestNFLOGPortProbe(t *testing.T) {
	needNFLOG(t)
	w := newWorld(t, worldOptions{config: nflogConfig})
	w.serve(22)
	scanner := outsideV4[0]
	if !w.canConnect(scanner, serverV4, 22) {
		t.Fatal("before any probe, the scanner must reach port 22")
	}
	t0 := time.Now()
	for range 3 {
		if !w.blocked(scanner, serverV4, 2323) {
			t.Fatal("something answers on the trap port")
		}
	}
	w.waitBanned("portprobe_v4", scanner)
	t.Logf("scanner banned %v after its first probe", time.Since(t0).Round(time.Millisecond))
	if !w.blocked(scanner, serverV4, 22) {
		t.Errorf("%s is banned by portprobe (all ports) but still connects to port 22", scanner)
	}
	if !w.canConnect(cleanV4, serverV4, 22) || w.isBanned("portprobe_v4", cleanV4) {
		t.Error("the clean peer is blocked")
	}
	w.alive()
}

// TestNFLOGBannedPackets bans a peer in sshd, has it keep trying, and
// checks that its dropped packets are counted per jail on the metrics
// endpoint while they stay dropped.
func TestNFLOGBannedPackets(t *testing.T) {
	needNFLOG(t)
	w := newWorld(t, worldOptions{config: nflogConfig})
	w.serve(22)
	attacker := outsideV4[1]
	if !w.canConnect(attacker, serverV4, 22) {
		t.Fatal("before any ban, the attacker must reach port 22")
	}
	before, ok := findMetric(w.scrape(), "sysban_banned_packets_total", `jail="sshd"`)
	if !ok || before != 0 {
		t.Fatalf("sysban_banned_packets_total{jail=sshd} = %v (present %v), want 0 before any ban", before, ok)
	}
	for _, line := range failures(attacker, 3) {
		w.logger("-n", "127.0.0.1", "-P", fmt.Sprint(w.udpPort), "-d", "-t", "sshd", "--", line)
	}
	w.waitBanned("sshd_v4", attacker)
	for range 3 {
		if !w.blocked(attacker, serverV4, 22) {
			t.Fatalf("%s is banned but connects: logging changed the verdict", attacker)
		}
	}
	var got float64
	w.waitFor("sysban_banned_packets_total{jail=sshd} to rise", eventually, func() bool {
		got, _ = findMetric(w.scrape(), "sysban_banned_packets_total", `jail="sshd"`)
		return got >= 3
	})
	t.Logf("sysban_banned_packets_total{jail=sshd} = %v after 3 connection attempts", got)
	// `sysban banned ADDR` tells the admin the ban is being knocked on.
	out, code := w.cli("banned", attacker, "--json")
	var bans []struct {
		Jail           string `json:"jail"`
		BlockedPackets uint64 `json:"blocked_packets"`
	}
	if err := json.Unmarshal([]byte(out), &bans); code != 0 || err != nil || len(bans) != 1 || bans[0].Jail != "sshd" || bans[0].BlockedPackets < 3 {
		t.Errorf("sysban banned %s --json: exit %d, %v: %s; want the sshd ban with at least 3 blocked packets", attacker, code, err, out)
	}
	if !w.canConnect(cleanV4, serverV4, 22) {
		t.Error("the clean peer is blocked")
	}
	w.alive()
}
