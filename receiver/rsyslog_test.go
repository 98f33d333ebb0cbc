package receiver

import (
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestRealRsyslog runs rsyslogd with a private config that relays what a
// program logs to its unix socket to our listeners with the stock templates
// (traditional, RSYSLOG_ForwardFormat, RSYSLOG_SyslogProtocol23Format with
// octet counting, LF-framed TCP) and checks every copy parses the same.
func TestRealRsyslog(t *testing.T) {
	rsyslogd, err := exec.LookPath("rsyslogd")
	if err != nil {
		t.Skip("rsyslogd not installed")
	}
	loggerPath, err := exec.LookPath("logger")
	if err != nil {
		t.Skip("logger(1) not installed")
	}
	rr := start(t, []ListenerSpec{{UDP, "127.0.0.1:0"}, {TCP, "127.0.0.1:0"}}, Options{Now: time.Now})
	port := func(i int) uint16 {
		return rr.r.Addrs()[i].(interface{ AddrPort() netip.AddrPort }).AddrPort().Port()
	}
	dir := filepath.Dir(sockPath(t, "x"))
	os.MkdirAll(dir, 0o755)
	in := filepath.Join(dir, "in.sock")
	conf := fmt.Sprintf(`global(workDirectory=%[1]q)
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket=%[2]q)
action(type="omfwd" target="127.0.0.1" port="%[3]d" protocol="udp" template="RSYSLOG_TraditionalForwardFormat")
action(type="omfwd" target="127.0.0.1" port="%[3]d" protocol="udp" template="RSYSLOG_ForwardFormat")
action(type="omfwd" target="127.0.0.1" port="%[4]d" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
action(type="omfwd" target="127.0.0.1" port="%[4]d" protocol="tcp" template="RSYSLOG_ForwardFormat")
`, dir, in, port(0), port(1))
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rsyslogd, "-n", "-f", confPath, "-i", filepath.Join(dir, "pid"))
	var stderr strings.Builder
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Skipf("cannot start rsyslogd: %v", err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitFor(t, "rsyslogd's input socket", func() bool { _, err := os.Stat(in); return err == nil })

	text := "Failed password for invalid user admin from 203.0.113.99 port 4711 ssh2"
	if out, err := exec.Command(loggerPath, "-u", in, "-p", "auth.notice", "-t", "sshd", "-i", text).CombinedOutput(); err != nil {
		t.Fatalf("logger: %v: %s", err, out)
	}
	waitFor(t, "four relayed copies", func() bool {
		n := 0
		for _, m := range rr.c.snapshot() {
			if m.Text == text {
				n++
			}
		}
		return n == 4
	})
	host, _ := os.Hostname()
	host, _, _ = strings.Cut(host, ".")
	for _, m := range rr.c.snapshot() {
		if m.AppName != "sshd" || m.ProcID == "" || m.Hostname != host || m.Facility != 4 || m.Severity != 5 || m.Timestamp.IsZero() {
			t.Errorf("relayed message %+v", m)
		}
	}
	if st := rr.r.Stats(); st[0].ParseErrors+st[1].ParseErrors != 0 {
		t.Errorf("parse errors: %+v", st)
	}
}
