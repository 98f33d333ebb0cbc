package metrics

import "testing"

// sysban_banned_packets_total: zero for every running jail before any
// packet, counts added per jail, and kept for a jail not running (the
// fake pipeline runs sshd only).
func TestBannedPackets(t *testing.T) {
	rec, _, url := start(t)
	_, fams := scrape(t, url)
	if v := value(t, fams, "sysban_banned_packets_total", "jail", "sshd"); v != 0 {
		t.Errorf("before any packet: %v, want 0", v)
	}
	rec.BannedPackets("sshd", 3)
	rec.BannedPackets("sshd", 2)
	rec.BannedPackets("sshd", 0)  // ignored
	rec.BannedPackets("sshd", -4) // ignored
	rec.BannedPackets("gone", 1)
	_, fams = scrape(t, url)
	for _, c := range []struct {
		jail string
		want float64
	}{{"sshd", 5}, {"gone", 1}} {
		if v := value(t, fams, "sysban_banned_packets_total", "jail", c.jail); v != c.want {
			t.Errorf("jail %s: %v, want %v", c.jail, v, c.want)
		}
	}
}
