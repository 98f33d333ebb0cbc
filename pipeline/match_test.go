package pipeline

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/sysban/sysban"
)

func TestCheck(t *testing.T) {
	p := newTestPipeline(t, Config{}, Options{})
	ms := p.Check("Failed password for root from ::ffff:192.0.2.7 port 22 ssh2", "sshd-session")
	if len(ms) != 1 {
		t.Fatalf("matches %+v, want 1", ms)
	}
	m := ms[0]
	if m.Filter != "sshd" || m.Pattern != 0 || m.Host != "::ffff:192.0.2.7" || m.Addr != netip.MustParseAddr("192.0.2.7") || m.Ignored || !strings.HasPrefix(m.Regex, "^Failed ") {
		t.Errorf("match %+v", m)
	}
	if ms := p.Check("Failed password for root from 192.0.2.7 port 22 ssh2", "sudo"); len(ms) != 0 {
		t.Errorf("sudo routed to sshd: %+v", ms)
	}
	if ms := p.Check("Failed password for root from 192.0.2.7 port 22 ssh2", ""); len(ms) != 1 {
		t.Errorf("empty program: %+v, want the sshd match", ms)
	}
	if ms := p.Check("pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost=host.example user=root", "sshd"); len(ms) != 1 || ms[0].Addr.IsValid() || ms[0].Host != "host.example" {
		t.Errorf("hostname: %+v", ms)
	}
	// Check counts nothing.
	if st := p.Stats(); st.Messages != 0 || st.Jails["sshd"].TotalFailed != 0 {
		t.Errorf("Check changed stats: %+v", st)
	}
}

func TestStripSolarisID(t *testing.T) {
	tests := []struct{ in, out string }{
		{"[ID 800047 auth.info] Failed password for root from 192.0.2.7 port 22 ssh2", "Failed password for root from 192.0.2.7 port 22 ssh2"},
		{"[ID 702911 mail.notice] x", "x"},
		{"[ID 1 a.b] ", ""},
		// Not an id: kept as the daemon wrote it.
		{"[ID x auth.info] y", "[ID x auth.info] y"},
		{"[ID 800047 auth] y", "[ID 800047 auth] y"},
		{"[ID 800047 .info] y", "[ID 800047 .info] y"},
		{"[ID 800047 auth.] y", "[ID 800047 auth.] y"},
		{"[ID 800047 auth.info]y", "[ID 800047 auth.info]y"},
		{"[ID 800047 auth.info", "[ID 800047 auth.info"},
		{"[ID 1234567890123 a.b] y", "[ID 1234567890123 a.b] y"},
		{"x [ID 800047 auth.info] y", "x [ID 800047 auth.info] y"},
		{"[ID ", "[ID "},
		{"", ""},
	}
	for _, tt := range tests {
		if out := stripSolarisID(tt.in); out != tt.out {
			t.Errorf("stripSolarisID(%q) = %q, want %q", tt.in, out, tt.out)
		}
	}
	// The id before rsyslog's repeat reduction or inside it.
	for _, in := range []string{
		"[ID 800047 auth.info] message repeated 2 times: [ x] \n",
		"message repeated 2 times: [ [ID 800047 auth.info] x]",
	} {
		if text, n := matchText(in); text != "x" || n != 2 {
			t.Errorf("matchText(%q): %q, %d; want \"x\", 2", in, text, n)
		}
	}
}

func TestUnwrapRepeated(t *testing.T) {
	tests := []struct {
		in  string
		out string
		n   int
	}{
		{"message repeated 3 times: [ Failed password for root from 192.0.2.7 port 22 ssh2]", "Failed password for root from 192.0.2.7 port 22 ssh2", 3},
		{"message repeated 2 times: [Invalid user x from 192.0.2.7 port 22]", "Invalid user x from 192.0.2.7 port 22", 2},
		{"message repeated 999999999 times: [ x]", "x", maxRepeats},
		{"message repeated 0 times: [ x]", "x", 1},
		{"message repeated many times: [ x]", "message repeated many times: [ x]", 1},
		{"message repeated 3 times: [ x", "message repeated 3 times: [ x", 1},
		{"message repeated 3 times [ x]", "message repeated 3 times [ x]", 1},
		{"Failed password for root from 192.0.2.7 port 22 ssh2", "Failed password for root from 192.0.2.7 port 22 ssh2", 1},
		{"", "", 1},
	}
	for _, tt := range tests {
		out, n := unwrapRepeated(tt.in)
		if out != tt.out || n != tt.n {
			t.Errorf("unwrapRepeated(%q) = %q, %d; want %q, %d", tt.in, out, n, tt.out, tt.n)
		}
	}
	// A repeated line counts as that many failures.
	p := newTestPipeline(t, Config{}, Options{})
	p.Handle(&sysban.Message{AppName: "sshd", Text: "message repeated 3 times: [ Failed password for root from 192.0.2.7 port 22 ssh2]"})
	if got := queued(p); len(got) != 1 || got[0].Failures != 3 {
		t.Fatalf("bans %v, want one after 3 failures", got)
	}
}

func TestTrimBlanksRight(t *testing.T) {
	for _, in := range []string{"", " ", "x", "x \t\r\n", " x ", "x\x00 ", "x\v", "\n\n", "a b\t"} {
		if got, want := trimBlanksRight(in), strings.TrimRight(in, " \t\r\n"); got != want {
			t.Errorf("trimBlanksRight(%q) = %q, want %q", in, got, want)
		}
	}
}
