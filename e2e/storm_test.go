package e2e

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestKillNineDuringBanStorm feeds about 10,000 new bans a second over TCP,
// kills the daemon with SIGKILL in the middle of the storm, flushes the
// whole ruleset (as a firewall reload or a reboot would) and restarts it:
// every address the log announced as banned (msg=ban) must be back in the
// kernel set. Bans decided but not yet stored may be gone: they were never
// announced.
func TestKillNineDuringBanStorm(t *testing.T) {
	w := newWorld(t, worldOptions{config: `
jails:
  sshd:
    enabled: true
    maxretry: 1
    findtime: 1m
    bantime: 1h
    ports: [ssh]
`})
	// The kill comes with the feeder still sending, once the storm has
	// run for stormFor and at least stormBans were announced: on a loaded
	// machine the second takes longer, which changes nothing asserted.
	const perSecond, stormBans, stormFor = 10_000, 1_000, 2 * time.Second
	var conn net.Conn
	if err := inNS(w.srv, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", w.tcpPort), eventually)
		return err
	}); err != nil {
		t.Fatalf("connect to sysban's TCP listener: %v", err)
	}
	defer conn.Close()

	// The feeder writes perSecond/100 lines every 10 ms, each from a new
	// address, until the connection breaks (the kill) or for eventually.
	began := time.Now()
	sent := make(chan int, 1)
	go func() {
		bw := bufio.NewWriterSize(conn, 64<<10)
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		n := 0
		for end := time.Now().Add(eventually); time.Now().Before(end); {
			<-tick.C
			stamp := time.Now().Format(time.Stamp)
			for range perSecond / 100 {
				fmt.Fprintf(bw, "<38>%s srv sshd[4242]: Failed password for invalid user admin from %s port 40000 ssh2\n", stamp, stormAddr(n))
				n++
			}
			conn.SetWriteDeadline(time.Now().Add(eventually))
			if bw.Flush() != nil {
				break
			}
		}
		sent <- n
	}()

	time.Sleep(stormFor)
	w.waitFor(fmt.Sprintf("%d bans announced", stormBans), eventually, func() bool {
		return strings.Count(w.logs.String(), " msg=ban ") >= stormBans
	})
	w.stop(syscall.SIGKILL)
	stormed := time.Since(began).Round(time.Millisecond)
	n := <-sent
	announced := announcedBans(w.logs.String())
	if len(announced) < stormBans {
		t.Fatalf("only %d bans announced from %d failures sent before the kill: no storm", len(announced), n)
	}

	w.inSrv("nft", "flush", "ruleset")
	w.start(filepath.Join(w.dir, "sysban.yaml"))
	inKernel := make(map[string]bool)
	for _, e := range w.banned("sysban", "sshd_v4") {
		inKernel[e.Addr] = true
	}
	var lost []string
	for a := range announced {
		if !inKernel[a] {
			lost = append(lost, a)
		}
	}
	t.Logf("storm: %d failures sent in %v, one new address each; after kill -9, nft flush ruleset and restart: announced %d, restored %d, lost %d",
		n, stormed, len(announced), len(inKernel), len(lost))
	if len(lost) > 0 {
		t.Errorf("%d bans announced in the log but not in the kernel after the restart, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	w.alive()
}

// stormAddr is the storm's n-th attacker: 10.x.y.z with z in 1..250.
func stormAddr(n int) netip.Addr {
	hi := n / 250
	return netip.AddrFrom4([4]byte{10, byte(hi >> 8), byte(hi), byte(n%250 + 1)})
}

var banLine = regexp.MustCompile(`(?m)^.* msg=ban .*\baddr=(\S+)`)

// announcedBans returns the addresses of the daemon's "ban" log lines.
func announcedBans(logs string) map[string]bool {
	out := make(map[string]bool)
	for _, m := range banLine.FindAllStringSubmatch(logs, -1) {
		out[strings.Trim(m[1], `"`)] = true
	}
	return out
}
