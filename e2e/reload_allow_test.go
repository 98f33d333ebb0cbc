package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestReloadListenAllow: listen.allow changes on reload. A sender outside
// it is dropped (counted as sender_not_allowed) and bans nothing; after a
// reload that allows its network, the same failures from it ban.
func TestReloadListenAllow(t *testing.T) {
	w := newWorld(t, worldOptions{allow: `["127.0.0.0/8"]`})
	attacker := outsideV4[1]
	send := func() {
		for _, line := range failures(attacker, 3) {
			// From the outside namespace: the sender is an outside address.
			w.inOut("logger", "-n", serverV4, "-P", fmt.Sprint(w.udpPort), "-d", "-t", "sshd", "--", line)
		}
	}
	send()
	w.waitFor("the outside sender's messages to be dropped", eventually, func() bool {
		label := fmt.Sprintf(`listener="udp:%s:%d",reason="sender_not_allowed"`, serverV4, w.udpPort)
		v, _ := findMetric(w.scrape(), "sysban_messages_dropped_total", label)
		return v >= 3
	})
	if w.isBanned("sshd_v4", attacker) {
		t.Fatal("a sender outside listen.allow banned")
	}

	path := filepath.Join(w.dir, "sysban.yaml")
	cfg, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(string(cfg), `allow: ["127.0.0.0/8"]`, fmt.Sprintf(`allow: ["127.0.0.0/8", "%s/24"]`, outsideV4[0]), 1)
	if next == string(cfg) {
		t.Fatal("the harness's listen.allow line was not found")
	}
	if err := os.WriteFile(path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	if out, code := w.cli("reload"); code != 0 {
		t.Fatalf("reload with a new listen.allow: exit %d\n%s", code, out)
	}
	send()
	w.waitBanned("sshd_v4", attacker)
	w.alive()
}
