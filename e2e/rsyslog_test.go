package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
)

// rsyslog starts a real rsyslogd in the server namespace that reads its own
// unix socket and forwards everything to sysban over TCP, octet-counted, in
// RSYSLOG_ForwardFormat — the setup the README recommends. It returns the
// socket path local programs (logger -u) write to.
func (w *world) rsyslog() string {
	return w.rsyslogWith(fmt.Sprintf(`
*.* action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp"
           template="RSYSLOG_ForwardFormat" TCP_Framing="octet-counted")
`, w.tcpPort))
}

// rsyslogCapture is rsyslog that also writes every message it forwards to
// the file capture, in the classic file format with the host name "live",
// which `sysban test` reads.
func (w *world) rsyslogCapture(capture string) string {
	return w.rsyslogWith(fmt.Sprintf(`
*.* action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp"
           template="RSYSLOG_ForwardFormat" TCP_Framing="octet-counted")
`, w.tcpPort) + fmt.Sprintf(captureRules, capture))
}

// captureRules write every message to a file (%s) in the classic file
// format with the host name "live".
const captureRules = `template(name="live" type="string" string="%%timereported%% live %%syslogtag%%%%msg:::sp-if-no-1st-sp%%%%msg:::drop-last-lf%%\n")
*.* action(type="omfile" file="%s" template="live")
`

// rsyslogTrustedCapture is rsyslogTrusted that also writes the capture
// (as rsyslogCapture does) and, in vouched, each message's tag with the
// sender's properties as the shipped file computes them for sysban
// ($.sysban_*), one line each: "TAG uid=U gid=G pid=P exe=E comm=C unit=N MSG".
func (w *world) rsyslogTrustedCapture(capture, vouched string) string {
	return w.rsyslogTrustedWith(fmt.Sprintf(captureRules, capture) + fmt.Sprintf(`
template(name="vouched" type="string" string="%%syslogtag%% uid=%%$.sysban_uid%% gid=%%$.sysban_gid%% pid=%%$.sysban_pid%% exe=%%$.sysban_exe%% comm=%%$.sysban_comm%% unit=%%$.sysban_unit%% %%msg:::drop-last-lf%%\n")
*.* action(type="omfile" file="%s" template="vouched")
`, vouched))
}

// rsyslogTrusted starts rsyslogd with the forwarder file sysban ships
// (deploy/forwarders/rsyslog-trusted.conf, which sends to 127.0.0.1:5514
// over TCP). It returns the input socket's path.
func (w *world) rsyslogTrusted() string {
	w.t.Helper()
	return w.rsyslogTrustedWith("")
}

// rsyslogTrustedWith is rsyslogTrusted with further rules after the
// shipped file's (they see its $.sysban_* variables).
func (w *world) rsyslogTrustedWith(rules string) string {
	w.t.Helper()
	if w.tcpPort != 5514 {
		w.t.Fatalf("the shipped forwarder file sends to port 5514, the world listens on %d", w.tcpPort)
	}
	shipped, err := filepath.Abs("../deploy/forwarders/rsyslog-trusted.conf")
	if err != nil {
		w.t.Fatal(err)
	}
	return w.rsyslogWith(fmt.Sprintf("include(file=%q)\n", shipped) + rules)
}

// rsyslogWith starts a real rsyslogd in the server namespace with its own
// work directory and an input socket, running rules (the forwarding part
// of a configuration). It returns the input socket's path. The socket
// takes the senders' trusted properties as the shipped forwarder file
// asks (Annotate, ParseTrusted: into $!, never into the text), which
// other rules ignore.
func (w *world) rsyslogWith(rules string) string {
	t := w.t
	t.Helper()
	rsock := filepath.Join(w.dir, "rsyslog-in.sock")
	work := filepath.Join(w.dir, "rsyslog-work")
	if err := os.MkdirAll(work, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`
global(workDirectory="%s")
module(load="imuxsock" SysSock.Use="off")
input(type="imuxsock" Socket="%s" CreatePath="on" Annotate="on" ParseTrusted="on")
%s`, work, rsock, rules)
	confPath := filepath.Join(w.dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	w.forwarder(t, "rsyslogd", nil, rsock, "rsyslogd", "-n", "-f", confPath, "-i", filepath.Join(w.dir, "rsyslog.pid"))
	return rsock
}

// forwarder runs a syslog daemon (argv, with env added) in the server
// namespace until t ends, and waits for its input socket to appear.
func (w *world) forwarder(t *testing.T, name string, env []string, socket string, argv ...string) {
	t.Helper()
	out := &syncBuffer{}
	cmd := exec.Command("ip", append([]string{"netns", "exec", w.srv}, argv...)...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		if t.Failed() {
			t.Logf("%s output:\n%s", name, out.String())
		}
	})
	w.waitFor(name+"'s input socket", eventually, func() bool {
		_, err := os.Stat(socket)
		return err == nil
	})
}
