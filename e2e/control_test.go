package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
)

var hangup = syscall.SIGHUP

// cli runs the sysban binary's control verbs against the world's daemon.
func (w *world) cli(args ...string) (string, int) {
	w.t.Helper()
	args = append(args, "--socket", w.control)
	out, err := exec.Command(binary, args...).CombinedOutput()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		w.t.Fatalf("sysban %v: %v", args, err)
	}
	return string(out), code
}

// TestControlVerbs drives the running daemon with the CLI over its control
// socket: status, a manual ban that lands in the kernel, banned, unban.
func TestControlVerbs(t *testing.T) {
	w := newWorld(t, worldOptions{})
	w.serve(22)
	attacker, manual := outsideV4[0], outsideV4[1]
	for _, line := range failures(attacker, 3) {
		w.logger("-n", "127.0.0.1", "-P", fmt.Sprint(w.udpPort), "-d", "-t", "sshd", "--", line)
	}
	w.waitBanned("sshd_v4", attacker)

	out, code := w.cli("status", "sshd")
	for _, want := range []string{"Currently failed:", "Total failed:      3", "Currently banned:  1", "Total banned:      1", attacker} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("sysban status sshd (exit %d) lacks %q:\n%s", code, want, out)
		}
	}
	var st struct {
		Jails []struct {
			Name        string `json:"name"`
			TotalBanned int    `json:"total_banned"`
		} `json:"jails"`
		Listeners []struct {
			Name     string `json:"name"`
			Received int    `json:"received"`
		} `json:"listeners"`
	}
	out, code = w.cli("status", "--json")
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		t.Fatalf("status --json (exit %d): %v\n%s", code, err, out)
	}
	received := 0
	for _, l := range st.Listeners {
		received += l.Received
	}
	if received < 3 {
		t.Errorf("listeners received %d messages, want at least the 3 sent: %+v", received, st.Listeners)
	}

	// A manual ban goes to the kernel like any other.
	if !w.canConnect(manual, serverV4, 22) {
		t.Fatalf("before its ban, %s must reach port 22", manual)
	}
	if out, code := w.cli("ban", "sshd", manual, "--for", "1d"); code != 0 || !strings.Contains(out, "banned "+manual) {
		t.Fatalf("sysban ban (exit %d):\n%s", code, out)
	}
	w.waitBanned("sshd_v4", manual)
	if !w.blocked(manual, serverV4, 22) {
		t.Errorf("manually banned %s still connects", manual)
	}
	// The daemon refuses to ban what it protects.
	if out, code := w.cli("ban", "sshd", "127.0.0.1"); code != 1 || !strings.Contains(out, "loopback") {
		t.Errorf("ban of loopback: exit %d\n%s", code, out)
	}
	if out, code := w.cli("banned", attacker); code != 0 || !strings.Contains(out, "Failed password for invalid user admin2 from "+attacker) {
		t.Errorf("sysban banned %s (exit %d) does not say why:\n%s", attacker, code, out)
	}

	if out, code := w.cli("unban", attacker); code != 0 || !strings.Contains(out, "unbanned "+attacker) {
		t.Fatalf("sysban unban (exit %d):\n%s", code, out)
	}
	if w.isBanned("sshd_v4", attacker) {
		t.Error("unbanned address still in the kernel set")
	}
	if !w.canConnect(attacker, serverV4, 22) {
		t.Error("unbanned address still cannot connect")
	}
	if out, code := w.cli("unban", attacker); code != 1 || !strings.Contains(out, "not banned") {
		t.Errorf("second unban: exit %d\n%s", code, out)
	}
	// After an unban the same failures ban again.
	for _, line := range failures(attacker, 3) {
		w.logger("-n", "127.0.0.1", "-P", fmt.Sprint(w.udpPort), "-d", "-t", "sshd", "--", line)
	}
	w.waitBanned("sshd_v4", attacker)
	if out, code := w.cli("unban", "--all"); code != 0 || !strings.Contains(out, "2") {
		t.Errorf("unban --all (exit %d):\n%s", code, out)
	}
	if w.isBanned("sshd_v4", attacker) || w.isBanned("sshd_v4", manual) {
		t.Error("bans left after unban --all")
	}
}

// TestReloadRefusesBadConfig reloads a broken config (refused, the old one
// keeps running and banning), then a good one that drops a jail (its bans
// lifted) and changes another.
func TestReloadRefusesBadConfig(t *testing.T) {
	w := newWorld(t, worldOptions{config: defaultJails + `
  vsftpd:
    enabled: true
    maxretry: 1
    ports: [ftp]
`})
	ftpAttacker := outsideV4[1]
	w.logger("-n", "127.0.0.1", "-P", fmt.Sprint(w.udpPort), "-d", "-t", "vsftpd", "--",
		fmt.Sprintf(`[pid 3] [bob] FAIL LOGIN: Client "%s"`, ftpAttacker))
	w.waitBanned("vsftpd_v4", ftpAttacker)

	path := filepath.Join(w.dir, "sysban.yaml")
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := strings.Replace(string(good), "maxretry: 3", "maxretry: three", 1)
	if err := os.WriteFile(path, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out, code := w.cli("reload")
	if code != 1 || !strings.Contains(out, "jails.sshd.maxretry") {
		t.Fatalf("reload of a broken config: exit %d, want 1 naming the key:\n%s", code, out)
	}
	if out, _ := w.cli("status"); !strings.Contains(out, "REFUSED") {
		t.Errorf("status does not show the refused reload:\n%s", out)
	}
	// The old config still bans.
	attacker := outsideV4[0]
	for _, line := range failures(attacker, 3) {
		w.logger("-n", "127.0.0.1", "-P", fmt.Sprint(w.udpPort), "-d", "-t", "sshd", "--", line)
	}
	w.waitBanned("sshd_v4", attacker)

	// A good config without vsftpd, with sshd at maxretry 2; SIGHUP this time.
	next := strings.Replace(string(good), "maxretry: 3", "maxretry: 2", 1)
	next = next[:strings.Index(next, "  vsftpd:")]
	if err := os.WriteFile(path, []byte(next), 0o644); err != nil {
		t.Fatal(err)
	}
	w.daemon.Process.Signal(hangup)
	w.waitFor("the reload to lift vsftpd's bans", eventually, func() bool {
		out, err := exec.Command("ip", "netns", "exec", w.srv, "nft", "list", "table", "inet", "sysban").CombinedOutput()
		return err == nil && !strings.Contains(string(out), "vsftpd")
	})
	// The reload swaps the kernel ruleset first and forgets the removed
	// jail's bans in the store after (reload.go): the listing follows.
	w.waitFor("the removed jail's ban to leave the listing", eventually, func() bool {
		out, code := w.cli("banned", ftpAttacker)
		return code == 1 && !strings.Contains(out, "vsftpd")
	})
	// sshd kept its state: the attacker is still banned, the counters
	// carried over, and the new maxretry applies.
	if !w.isBanned("sshd_v4", attacker) {
		t.Error("reload lost sshd's ban")
	}
	second := outsideV4[2]
	for _, line := range failures(second, 2) {
		w.logger("-n", "127.0.0.1", "-P", fmt.Sprint(w.udpPort), "-d", "-t", "sshd", "--", line)
	}
	w.waitBanned("sshd_v4", second)
	if out, _ := w.cli("status", "sshd"); !strings.Contains(out, "Total banned:      2") {
		t.Errorf("counters did not survive the reload:\n%s", out)
	}
	w.alive()
}

// TestMetricsScrape scrapes /metrics inside the server namespace before
// and after a ban.
func TestMetricsScrape(t *testing.T) {
	w := newWorld(t, worldOptions{})
	before := w.scrape()
	for _, name := range []string{"sysban_messages_received_total", "sysban_bans_total", "sysban_banned",
		"sysban_nft_write_seconds_count", "sysban_queue_depth", "sysban_reload_success"} {
		if _, ok := findMetric(before, name, ""); !ok {
			t.Errorf("metric %s missing from the scrape", name)
		}
	}
	attacker := outsideV4[0]
	for _, line := range failures(attacker, 3) {
		w.logger("-n", "127.0.0.1", "-P", fmt.Sprint(w.udpPort), "-d", "-t", "sshd", "--", line)
	}
	w.waitBanned("sshd_v4", attacker)
	w.waitFor("sysban_bans_total{jail=sshd} to reach 1", eventually, func() bool {
		v, _ := findMetric(w.scrape(), "sysban_bans_total", `jail="sshd"`)
		return v == 1
	})
	after := w.scrape()
	if v, _ := findMetric(after, "sysban_failures_total", `jail="sshd"`); v != 3 {
		t.Errorf("sysban_failures_total{jail=sshd} = %v, want 3", v)
	}
	if v, _ := findMetric(after, "sysban_banned", `jail="sshd"`); v != 1 {
		t.Errorf("sysban_banned{jail=sshd} = %v, want 1", v)
	}
	if v, _ := findMetric(after, "sysban_messages_received_total", `listener="udp:127.0.0.1:5514"`); v < 3 {
		t.Errorf("messages received on udp = %v, want >= 3", v)
	}
	if v, _ := findMetric(after, "sysban_nft_write_seconds_count", `op="apply"`); v < 1 {
		t.Errorf("no nft apply write observed: %v", v)
	}
}

// scrape fetches the daemon's metrics from inside its namespace. The
// connection is dialled on the namespaced thread; http.Transport would dial
// on another goroutine, outside it.
func (w *world) scrape() string {
	w.t.Helper()
	var conn net.Conn
	if err := inNS(w.srv, func() error {
		var err error
		conn, err = net.DialTimeout("tcp", "127.0.0.1:9642", eventually)
		return err
	}); err != nil {
		w.t.Fatalf("scrape metrics: %v", err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(eventually))
	req, _ := http.NewRequest("GET", "http://127.0.0.1:9642/metrics", nil)
	req.Close = true
	if err := req.Write(conn); err != nil {
		w.t.Fatalf("scrape metrics: %v", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), req)
	if err != nil {
		w.t.Fatalf("scrape metrics: %v", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		w.t.Fatalf("scrape metrics: status %d: %v", resp.StatusCode, err)
	}
	return string(b)
}

// findMetric returns the value of the first sample of name whose labels
// contain label (all samples when label is "").
func findMetric(text, name, label string) (float64, bool) {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		if label != "" && !strings.Contains(line, label) {
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		return v, err == nil
	}
	return 0, false
}

// TestMailOnBan runs a real SMTP server in the server namespace and checks
// that a ban in a jail with a mail action sends a mail with a sound date,
// the jail, the address and the failure lines.
func TestMailOnBan(t *testing.T) {
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	inbox := &mailbox{}
	w := newWorld(t, worldOptions{config: `
actions:
  mail-admin:
    on: [ban]
    mail:
      server: 127.0.0.1:2525
      tls: off
      from: "sysban <sysban@example.org>"
      to: [root@example.org]
jails:
  sshd:
    enabled: true
    maxretry: 3
    findtime: 1m
    ports: [ssh]
    actions: [mail-admin]
`, before: func(w *world) { inbox.serve(w) }})
	attacker := outsideV4[0]
	for _, line := range failures(attacker, 3) {
		w.logger("-n", "127.0.0.1", "-P", fmt.Sprint(w.udpPort), "-d", "-t", "sshd", "--", line)
	}
	w.waitBanned("sshd_v4", attacker)
	w.waitFor("a mail at the SMTP server", eventually, func() bool { return inbox.count() > 0 })
	msg, err := mail.ReadMessage(strings.NewReader(inbox.first()))
	if err != nil {
		t.Fatalf("mail does not parse: %v\n%s", err, inbox.first())
	}
	date, err := msg.Header.Date()
	if err != nil || time.Since(date) > time.Minute || time.Until(date) > time.Minute {
		t.Errorf("Date %q (%v): want a parseable date near now", msg.Header.Get("Date"), err)
	}
	body, _ := io.ReadAll(msg.Body)
	text := msg.Header.Get("Subject") + "\n" + string(body)
	for _, want := range []string{"sshd", attacker, "Failed password for invalid user admin0 from " + attacker} {
		if !strings.Contains(strings.ReplaceAll(text, "=\r\n", ""), want) {
			t.Errorf("mail lacks %q:\n%s", want, text)
		}
	}
}

// mailbox is a minimal real SMTP server (emersion/go-smtp) collecting mail.
type mailbox struct {
	mu   sync.Mutex
	msgs []string
}

func (mb *mailbox) count() int    { mb.mu.Lock(); defer mb.mu.Unlock(); return len(mb.msgs) }
func (mb *mailbox) first() string { mb.mu.Lock(); defer mb.mu.Unlock(); return mb.msgs[0] }

func (mb *mailbox) serve(w *world) {
	var ln net.Listener
	if err := inNS(w.srv, func() error {
		var err error
		ln, err = net.Listen("tcp", "127.0.0.1:2525")
		return err
	}); err != nil {
		w.t.Fatalf("smtp listen: %v", err)
	}
	srv := smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &mailSession{mb: mb}, nil }))
	srv.Domain = "mx.test"
	srv.AllowInsecureAuth = true
	go srv.Serve(ln)
	w.t.Cleanup(func() { srv.Close() })
}

type mailSession struct{ mb *mailbox }

func (s *mailSession) Mail(string, *smtp.MailOptions) error { return nil }
func (s *mailSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (s *mailSession) Reset()                               {}
func (s *mailSession) Logout() error                        { return nil }
func (s *mailSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.mb.mu.Lock()
	s.mb.msgs = append(s.mb.msgs, string(b))
	s.mb.mu.Unlock()
	return nil
}
