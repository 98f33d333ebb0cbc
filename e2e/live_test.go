package e2e

// The live-daemon harness (issue 15): real daemons from the distribution,
// started with a small config under the test's temp dir, in sysban's server
// namespace and in a private mount namespace whose /dev/log is the test
// rsyslogd's input socket, so that they log through the real rsyslog to
// sysban exactly as on a host. A scripted client in the outside namespace
// makes one attempt at a time; after each, the harness waits until sysban
// has handled every line rsyslog passed on and records the daemon's lines
// (rsyslog's file copy) and what the jail counted (status total_failed).

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// liveRecordEnv names a directory that receives each daemon's annotated
// capture (<daemon>.log) when set, e.g. ../pipeline/filters/testdata/live.
const liveRecordEnv = "LIVE_RECORD_DIR"

// livePassword is the password of the test user and of every account the
// daemons' own user databases (passwd-file, htpasswd) hold.
const (
	liveUser     = "sbtester"
	livePassword = "correct-horse-7"
	liveUID      = 2407
)

// launchScript runs a daemon with the harness's view of the system: ROOT/etc
// (a copy of /etc with the test user in passwd, shadow and group, and PAM
// tweaks) bound over /etc — the whole directory, because a file bound on
// its own is dropped from the namespace when the host replaces that file
// (useradd renames a new passwd into place) — and a /dev whose
// log socket is the test rsyslogd's. It runs in the mount namespace `ip
// netns exec` gives each command, so none of it is seen outside. Arguments:
// ROOT RSOCK COMMAND ARGS...
const launchScript = `set -eu
root=$1 rsock=$2
shift 2
mount --bind "$root/etc" /etc
dev=$root/dev
mkdir -p "$dev/pts" "$dev/shm"
for n in null zero full random urandom tty; do
	[ -e "$dev/$n" ] || : >"$dev/$n"
	mount --bind "/dev/$n" "$dev/$n"
done
mount --rbind /dev/pts "$dev/pts"
mount --bind /dev/shm "$dev/shm"
ln -sfn pts/ptmx "$dev/ptmx"
if [ -e /dev/net/tun ]; then
	mkdir -p "$dev/net"
	[ -e "$dev/net/tun" ] || : >"$dev/net/tun"
	mount --bind /dev/net/tun "$dev/net/tun"
fi
[ -e "$dev/log" ] || : >"$dev/log"
mount --bind "$rsock" "$dev/log"
mount --rbind "$dev" /dev
mkdir -p /run/sshd
exec "$@"
`

// live is one daemon under test in a world.
type live struct {
	*world
	name    string // the daemon, as in the evidence file name
	version string // its package version (dpkg), for the evidence
	rsock   string // the test rsyslogd's input: the daemons' /dev/log
	capture string // rsyslog's file copy of every message
	root    string // the files the launch script binds over /etc and /dev
	nextV4  atomic.Int32
	nextV6  atomic.Int32
	rows    []attempt
	// exact: the daemon's filters count one failure per attempt, and the
	// test asserts it (drive, succeed); port is the daemon's, for drops.
	exact bool
	port  int
	// known says, per family name, why the family does not count one
	// failure per attempt yet: its counts are recorded, not asserted.
	known map[string]string
	// watch are further jails whose counts each attempt records: other
	// filters that read the same lines (Dovecot's for postfix's SASL).
	watch []string
}

// attempt is what one client attempt produced.
type attempt struct {
	family  string // what the client did, e.g. "password"
	jail    string // the jail that should count it
	from    string // the client's address
	lines   []string
	want    int    // failures the attempt is: 1, 0 for a success, N for N passwords
	counted int    // the jail's total_failed grew by this much
	others  string // other watching jails that counted, e.g. "dovecot +3"
	banned  bool   // the address is in the jail's set afterwards
	err     error
}

// liveDaemonPackages maps the binaries the live tests need to the Debian
// packages that hold them (installed by .ci/run and scripts/test).
func needLive(t *testing.T, pkg string, tools ...string) string {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if _, err := os.Stat(tool); err != nil {
				t.Skipf("live %s test needs %s (apt-get install -y %s)", pkg, tool, pkg)
			}
		}
	}
	out, err := exec.Command("dpkg-query", "-W", "-f", "${Version}", pkg).Output()
	if err != nil {
		return "unknown version"
	}
	return string(out)
}

// liveOptions are newLive's optional choices.
type liveOptions struct {
	// trusted: rsyslog forwards with the shipped rsyslog-trusted.conf
	// (each sender's kernel-vouched properties in [sysban@32473 ...])
	// instead of RSYSLOG_ForwardFormat, and writes those properties per
	// message to vouched.log (rsyslogTrustedCapture).
	trusted bool
}

// newLive starts sysban with config (its jails) and a capturing rsyslogd,
// and prepares the launch root with the test user.
func newLive(t *testing.T, name, version, config string, opts ...liveOptions) *live {
	t.Helper()
	// Attempts are counted and banned per address here: every IPv6
	// attacker of these tests shares the server's /64, which prefix
	// counting (ipv6prefix: 64) would make one offender.
	w := newWorld(t, worldOptions{config: "defaults:\n  ipv6prefix: 128\n" + config})
	l := &live{world: w, name: name, version: version}
	// Unprivileged daemon processes (dovenull, postfix, ...) must reach
	// sockets and files under the temp dir.
	for d := w.dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		os.Chmod(d, 0o755)
	}
	l.capture = filepath.Join(w.dir, "capture.log")
	if len(opts) > 0 && opts[0].trusted {
		l.rsock = w.rsyslogTrustedCapture(l.capture, l.path("vouched.log"))
	} else {
		l.rsock = w.rsyslogCapture(l.capture)
	}
	l.root = filepath.Join(w.dir, "root")
	os.MkdirAll(l.root, 0o755)
	if out, err := exec.Command("cp", "-a", "/etc", l.root).CombinedOutput(); err != nil {
		t.Fatalf("copy /etc: %v\n%s", err, out)
	}
	l.writeUsers()
	l.write("launch.sh", launchScript, 0o755)
	l.nextV4.Store(20)
	l.nextV6.Store(0x20)
	t.Cleanup(func() { l.report() })
	return l
}

// path is a file under the world's temp dir.
func (l *live) path(name string) string { return filepath.Join(l.dir, name) }

// write creates the file name under the temp dir (and its directories).
func (l *live) write(name, content string, mode os.FileMode) string {
	l.t.Helper()
	p := l.path(name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		l.t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		l.t.Fatal(err)
	}
	return p
}

// writeUsers copies the system's passwd, shadow and group with the test
// user added, its password hashed by openssl as crypt(3) SHA-512.
func (l *live) writeUsers() {
	t := l.t
	t.Helper()
	hash, err := exec.Command("openssl", "passwd", "-6", livePassword).Output()
	if err != nil {
		t.Fatalf("openssl passwd: %v", err)
	}
	home := l.path("home")
	os.MkdirAll(home, 0o755)
	os.Chown(home, liveUID, liveUID)
	add := map[string]string{
		"passwd": fmt.Sprintf("%s:x:%d:%d:sysban live test:%s:/bin/sh\n", liveUser, liveUID, liveUID, home),
		"shadow": fmt.Sprintf("%s:%s:20000:0:99999:7:::\n", liveUser, strings.TrimSpace(string(hash))),
		"group":  fmt.Sprintf("%s:x:%d:\n", liveUser, liveUID),
	}
	for name, extra := range add {
		sys, err := os.ReadFile(filepath.Join(l.root, "etc", name))
		if err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if name == "shadow" {
			mode = 0o640
		}
		l.write("root/etc/"+name, string(sys)+extra, mode)
	}
}

// spawn starts a daemon in the server namespace through the launch script
// and stops its process group when the test ends.
func (l *live) spawn(args ...string) *exec.Cmd {
	t := l.t
	t.Helper()
	full := append([]string{"netns", "exec", l.srv, "sh", l.path("launch.sh"), l.root, l.rsock}, args...)
	cmd := exec.Command("ip", full...)
	out := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", args[0], err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		stopGroup(cmd.Process.Pid, done)
		if t.Failed() {
			t.Logf("%s output:\n%s", args[0], out.String())
		}
	})
	return cmd
}

// stopGroup stops the process group pgid: SIGTERM, then SIGKILL if done is
// not closed (its leader reaped) within 5 s.
func stopGroup(pgid int, done <-chan struct{}) {
	syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		syscall.Kill(-pgid, syscall.SIGKILL)
		<-done
	}
}

// waitPort waits until something listens on addr:port in the server
// namespace (the daemon is up).
func (l *live) waitPort(network, addr string, port int) {
	l.t.Helper()
	target := net.JoinHostPort(addr, fmt.Sprint(port))
	l.waitFor(network+" "+target+" to listen", eventually, func() bool {
		var ok bool
		inNS(l.srv, func() error {
			c, err := net.DialTimeout(network, target, 300*time.Millisecond)
			if err == nil {
				ok = true
				c.Close()
			}
			return nil
		})
		return ok
	})
}

// attacker gives a fresh outside address of the family (so that one
// family's ban never stops the next), added to the outside end of the veth.
func (l *live) attacker(v6 bool) string {
	l.t.Helper()
	var a string
	if v6 {
		a = fmt.Sprintf("2001:db8::%x", l.nextV6.Add(1))
		l.inOut("ip", "addr", "add", a+"/64", "dev", l.veth, "nodad")
	} else {
		n := l.nextV4.Add(1)
		if n > 190 {
			l.t.Fatal("out of attacker addresses")
		}
		a = fmt.Sprintf("192.0.2.%d", n)
		l.inOut("ip", "addr", "add", a+"/24", "dev", l.veth)
	}
	return a
}

// server is the server's address of the family of from.
func server(from string) string {
	if netip.MustParseAddr(from).Is6() {
		return serverV6
	}
	return serverV4
}

// dialFrom dials the server's port from the outside namespace with source
// address from; the connection stays in that namespace.
func (l *live) dialFrom(from string, port int) (net.Conn, error) {
	var c net.Conn
	err := inNS(l.out, func() error {
		d := net.Dialer{Timeout: 2 * time.Second, LocalAddr: &net.TCPAddr{IP: netip.MustParseAddr(from).AsSlice()}}
		var err error
		c, err = d.Dial("tcp", net.JoinHostPort(server(from), fmt.Sprint(port)))
		return err
	})
	return c, err
}

// session dials the server's port from address from for a client
// conversation: its reads wait as long as a loaded machine needs, up to
// eventually, but give up once from is banned (the answers are dropped
// then and will not come).
func (l *live) session(from string, port int) (net.Conn, error) {
	c, err := l.dialFrom(from, port)
	if err != nil {
		return nil, err
	}
	until := time.Now().Add(eventually)
	c.SetWriteDeadline(until)
	return &patientConn{Conn: c, until: until, banned: func() bool { return l.bannedAnywhere(from) }}, nil
}

// patientConn reads in slices of a second; after a slice without data it
// asks banned whether to stop waiting.
type patientConn struct {
	net.Conn
	until  time.Time
	banned func() bool
}

func (c *patientConn) Read(p []byte) (int, error) {
	for {
		slice := time.Now().Add(time.Second)
		if slice.After(c.until) {
			slice = c.until
		}
		c.Conn.SetReadDeadline(slice)
		n, err := c.Conn.Read(p)
		if n > 0 || !timedOut(err) || !time.Now().Before(c.until) || c.banned() {
			return n, err
		}
	}
}

// jailStatus is the part of `sysban status JAIL --json` the harness reads.
type jailStatus struct {
	TotalFailed uint64 `json:"total_failed"`
}

func (l *live) totalFailed(jail string) int {
	l.t.Helper()
	out, code := l.cli("status", jail, "--json")
	var st jailStatus
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		l.t.Fatalf("status %s --json (exit %d): %v\n%s", jail, code, err, out)
	}
	return int(st.TotalFailed)
}

// handled is the number of messages sysban's pipeline has handled.
func (l *live) handled() int {
	l.t.Helper()
	out, code := l.cli("status", "--json")
	var st struct {
		Messages uint64 `json:"messages"`
	}
	if err := json.Unmarshal([]byte(out), &st); code != 0 || err != nil {
		l.t.Fatalf("status --json (exit %d): %v\n%s", code, err, out)
	}
	return int(st.Messages)
}

// captured reads rsyslog's file copy.
func (l *live) captured() []string {
	b, err := os.ReadFile(l.capture)
	if err != nil {
		return nil
	}
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	return lines
}

// settle waits until the daemon has stopped logging (the capture has not
// grown for quiet) and sysban has handled every line rsyslog passed on.
func (l *live) settle(quiet time.Duration) {
	l.t.Helper()
	last, since := -1, time.Now()
	l.waitFor("the daemon's lines to reach sysban", eventually, func() bool {
		n := len(l.captured())
		if n != last {
			last, since = n, time.Now()
			return false
		}
		return time.Since(since) >= quiet && l.handled() >= n
	})
}

// mark writes an attempt boundary into the log stream (and so into the
// capture): a line of its own program that no filter reads.
func (l *live) mark(text string) {
	l.t.Helper()
	l.inSrv("logger", "-u", l.rsock, "-t", "sysban-live", "-p", "user.notice", "--", text)
}

// try makes one attempt of a family from an address with client, and
// records the daemon's lines and what the jail counted.
func (l *live) try(family, jail, from string, want int, client func(from string) error) attempt {
	l.t.Helper()
	l.settle(150 * time.Millisecond)
	before := 0
	if jail != "" {
		before = l.totalFailed(jail)
	}
	watched := make([]int, len(l.watch))
	for i, j := range l.watch {
		watched[i] = l.totalFailed(j)
	}
	l.mark(fmt.Sprintf("attempt %s from %s", family, from))
	l.settle(50 * time.Millisecond)
	start := len(l.captured())
	err := client(from)
	l.settle(300 * time.Millisecond)
	a := attempt{family: family, jail: jail, from: from, want: want, err: err}
	if jail != "" {
		a.counted = l.totalFailed(jail) - before
		if a.counted < want {
			// On a loaded machine the daemon may log after a pause:
			// give its last lines a second before the next attempt.
			l.settle(time.Second)
			a.counted = l.totalFailed(jail) - before
		}
	}
	a.lines = l.captured()[start:]
	for i, j := range l.watch {
		if n := l.totalFailed(j) - watched[i]; n != 0 {
			a.others += fmt.Sprintf(" %s +%d", j, n)
		}
	}
	if jail != "" {
		a.banned = l.isBanned(jail+setSuffix(from), from)
	}
	l.rows = append(l.rows, a)
	l.t.Logf("%s %s from %s: %d lines, counted %d%s, banned %v, client: %v", l.name, family, from, len(a.lines), a.counted, a.others, a.banned, err)
	return a
}

func setSuffix(addr string) string {
	if netip.MustParseAddr(addr).Is6() {
		return "_v6"
	}
	return "_v4"
}

// report logs the evidence table and, when liveRecordEnv is set, writes
// the capture annotated with attempt boundaries.
func (l *live) report() {
	if l.t.Failed() {
		l.t.Logf("everything rsyslog received:\n%s", strings.Join(l.captured(), "\n"))
	}
	if len(l.rows) == 0 {
		return
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## Live capture of %s %s (Debian), through rsyslog to sysban, by the e2e\n", l.name, l.version)
	fmt.Fprintf(&b, "## test; regenerate with %s=../pipeline/filters/testdata/live go test ./e2e/ -run TestLive.\n", liveRecordEnv)
	fmt.Fprintf(&b, "## Each \"## attempt\" line opens one client attempt and says what the jail\n")
	fmt.Fprintf(&b, "## counted for it when captured; the lines after it are what the daemon logged.\n")
	for _, a := range l.rows {
		note := ""
		if a.err != nil {
			msg := a.err.Error()
			if len(msg) > 70 {
				msg = msg[:70] + "..."
			}
			note = fmt.Sprintf(" (client: %s)", msg)
		}
		if a.others != "" {
			note += "; also counted by" + a.others
		}
		fmt.Fprintf(&b, "## attempt %s from %s, jail %s: want %d, %d lines, counted %d, banned after: %v%s\n",
			a.family, a.from, a.jail, a.want, len(a.lines), a.counted, a.banned, note)
		for _, line := range a.lines {
			if strings.Contains(line, " sysban-live: ") {
				continue
			}
			// The temp dir is the run's own: written as /srv/live.
			fmt.Fprintln(&b, strings.ReplaceAll(line, l.dir, "/srv/live"))
		}
	}
	l.t.Logf("evidence for %s:\n%s\n%s", l.name, b.String(), l.table())
	if dir := os.Getenv(liveRecordEnv); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			l.t.Error(err)
			return
		}
		if err := os.WriteFile(filepath.Join(dir, l.name+".log"), []byte(b.String()), 0o644); err != nil {
			l.t.Error(err)
		}
	}
}

// dropped reports whether from's TCP connections to port no longer get
// through (the ban's packets are dropped).
func (l *live) dropped(from string, port int) bool {
	c, err := l.dialFrom(from, port)
	if err != nil {
		return true
	}
	c.Close()
	return false
}

// table sums the rows up per family and address family, as the docs'
// table shows them: lines per attempt and counted per attempt (min-max).
func (l *live) table() string {
	type agg struct {
		key                               string
		n, linesMin, linesMax, cMin, cMax int
		banned                            bool
	}
	var order []*agg
	byKey := map[string]*agg{}
	for _, a := range l.rows {
		fam := "IPv4"
		if netip.MustParseAddr(a.from).Is6() {
			fam = "IPv6"
		}
		key := fmt.Sprintf("%s | %s | %s", a.family, a.jail, fam)
		g := byKey[key]
		if g == nil {
			g = &agg{key: key, linesMin: len(a.lines), cMin: a.counted}
			byKey[key] = g
			order = append(order, g)
		}
		g.n++
		g.linesMin, g.linesMax = min(g.linesMin, len(a.lines)), max(g.linesMax, len(a.lines))
		g.cMin, g.cMax = min(g.cMin, a.counted), max(g.cMax, a.counted)
		g.banned = g.banned || a.banned
	}
	span := func(lo, hi int) string {
		if lo == hi {
			return fmt.Sprint(lo)
		}
		return fmt.Sprintf("%d-%d", lo, hi)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "| family | jail | addr | attempts | lines/attempt | counted/attempt | banned |\n")
	for _, g := range order {
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %v |\n", g.key, g.n, span(g.linesMin, g.linesMax), span(g.cMin, g.cMax), g.banned)
	}
	return b.String()
}

// readSystem reads a file of the distribution's configuration the test
// builds on, and skips the test when it is not there.
func (l *live) readSystem(path string) string {
	l.t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		l.t.Skipf("live %s test needs %s: %v", l.name, path, err)
	}
	return string(b)
}

// family is one kind of client attempt a live test drives.
type family struct {
	name, jail string // jail "" : no filter reads the daemon (counted 0)
	v6         bool
	client     func(from string) error
}

// drive makes liveMaxRetry attempts of each family, each family from a
// fresh address, and stops a family once its address is banned. When the
// live test asserts attempts (l.exact), every attempt of a family not
// known to miss must count one failure, the address must not be banned
// before the maxretry-th attempt and must be after it, and its packets
// must then be dropped.
func (l *live) drive(fams ...family) {
	l.t.Helper()
	for _, f := range fams {
		from := l.attacker(f.v6)
		known := l.known[f.name]
		for i := 1; i <= liveMaxRetry; i++ {
			a := l.try(f.name, f.jail, from, 1, f.client)
			if l.exact && known == "" {
				if a.counted != 1 {
					l.t.Errorf("%s from %s, attempt %d: counted %d failures, want 1", f.name, from, i, a.counted)
				}
				if a.banned != (i == liveMaxRetry) {
					l.t.Errorf("%s from %s: banned after attempt %d is %v, want a ban at attempt %d (maxretry)", f.name, from, i, a.banned, liveMaxRetry)
				}
			}
			if a.banned {
				if l.exact && known == "" && !l.dropped(from, l.port) {
					l.t.Errorf("%s from %s: banned but still connects to port %d", f.name, from, l.port)
				}
				break
			}
		}
		if known != "" {
			l.t.Logf("%s: not asserted yet: %s", f.name, known)
		}
	}
}

// succeed makes each family's attempt once from one clean address, expects
// the client to succeed, and returns the address.
func (l *live) succeed(fams ...family) string {
	l.t.Helper()
	clean := l.attacker(false)
	for _, f := range fams {
		a := l.try(f.name, f.jail, clean, 0, f.client)
		if a.err != nil {
			l.t.Errorf("%s from %s: %v", f.name, clean, a.err)
		}
		if l.exact && a.counted != 0 {
			l.t.Errorf("%s from %s: a success counted %d failures", f.name, clean, a.counted)
		}
	}
	return clean
}
