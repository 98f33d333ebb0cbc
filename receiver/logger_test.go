package receiver

import (
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// TestRealLogger sends with util-linux logger(1) over UDP, TCP and a unix
// datagram socket, in both RFC 3164 and RFC 5424, and checks the fields.
func TestRealLogger(t *testing.T) {
	loggerPath, err := exec.LookPath("logger")
	if err != nil {
		t.Skip("logger(1) not installed")
	}
	hostname, _ := os.Hostname()
	hostname, _, _ = strings.Cut(hostname, ".")
	path := sockPath(t, "logger.sock")
	// A real clock: logger stamps the current time.
	rr := start(t, []ListenerSpec{{UDP, "127.0.0.1:0"}, {TCP, "127.0.0.1:0"}, {UnixGram, path}}, Options{Now: time.Now})
	udpPort := strconv.Itoa(int(rr.r.Addrs()[0].(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()))
	tcpPort := strconv.Itoa(int(rr.r.Addrs()[1].(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()))

	tests := []struct {
		name     string
		args     []string
		hostname string // "" when the shape carries none
		msgID    string
	}{
		{"udp rfc3164", []string{"-d", "-n", "127.0.0.1", "-P", udpPort, "--rfc3164"}, hostname, ""},
		{"udp rfc5424", []string{"-d", "-n", "127.0.0.1", "-P", udpPort, "--rfc5424", "--msgid", "AUTH"}, hostname, "AUTH"},
		{"tcp octet-count rfc5424", []string{"-T", "-n", "127.0.0.1", "-P", tcpPort, "--octet-count", "--rfc5424"}, hostname, ""},
		{"tcp rfc3164", []string{"-T", "-n", "127.0.0.1", "-P", tcpPort, "--rfc3164"}, hostname, ""},
		{"unix rfc3164", []string{"-u", path, "--rfc3164"}, hostname, ""},
		// Without a format flag logger writes the local glibc shape: no hostname.
		{"unix local default", []string{"-u", path}, "", ""},
		{"unix rfc5424", []string{"-u", path, "--rfc5424"}, hostname, ""},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			text := "Failed password for root from 203.0.113." + strconv.Itoa(i) + " port 22 ssh2"
			args := append(append([]string{}, tc.args...), "-p", "auth.warning", "-t", "sshd-session", "-i", text)
			before := time.Now().Add(-2 * time.Second)
			if out, err := exec.Command(loggerPath, args...).CombinedOutput(); err != nil {
				t.Fatalf("logger %v: %v: %s", args, err, out)
			}
			var m sysban.Message
			waitFor(t, "logger's message", func() bool {
				for _, got := range rr.c.snapshot() {
					if got.Text == text {
						m = got
						return true
					}
				}
				return false
			})
			if m.AppName != "sshd-session" || m.Hostname != tc.hostname || m.MsgID != tc.msgID ||
				m.Facility != 4 || m.Severity != 4 || m.ProcID == "" {
				t.Errorf("got %+v", m)
			}
			if m.Timestamp.Before(before) || m.Timestamp.After(time.Now().Add(2*time.Second)) {
				t.Errorf("timestamp %v is not now", m.Timestamp)
			}
		})
	}
}
