package e2e

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The test network: a "server" namespace running sysban, joined by a veth
// pair to an "outside" namespace holding the attackers and a clean peer.
// Addresses come from the documentation ranges (RFC 5737, RFC 3849); they
// exist only inside these namespaces.
const (
	serverV4  = "192.0.2.1"
	serverV6  = "2001:db8::1"
	outsideV6 = "2001:db8::2"
	cleanV4   = "192.0.2.200"
)

// outsideV4 are the outside namespace's addresses; each test case attacks
// from its own so that bans do not interfere.
var outsideV4 = []string{"192.0.2.2", "192.0.2.3", "192.0.2.4", "192.0.2.5", "192.0.2.6", "192.0.2.7", "192.0.2.8", cleanV4}

var (
	binary   string // the sysban binary under test, built by TestMain
	skipWhy  string // why the suite cannot run here, if it cannot
	worldSeq atomic.Int64
)

func TestMain(m *testing.M) {
	code := func() int {
		flag.Parse() // for testing.Short, before m.Run parses them
		skipWhy = prerequisites()
		if skipWhy == "" {
			dir, err := os.MkdirTemp("", "sysban-e2e-bin")
			if err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
			defer os.RemoveAll(dir)
			binary = filepath.Join(dir, "sysban")
			args := []string{"build", "-o", binary}
			if os.Getenv("E2E_RACE") != "" {
				args = append(args, "-race")
			}
			cmd := exec.Command("go", append(args, "../cmd/sysban")...)
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				fmt.Fprintf(os.Stderr, "e2e: build sysban: %v\n", err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// prerequisites says what is missing for the end-to-end suite, or "".
func prerequisites() string {
	if testing.Short() {
		return "e2e tests do not run with -short (scripts/test -short runs the unit tests alone)"
	}
	if os.Geteuid() != 0 {
		return "e2e tests need root (network namespaces, nftables); run them as root, e.g. sudo scripts/test"
	}
	for _, tool := range []string{"ip", "nft", "logger", "rsyslogd", "socat"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Sprintf("e2e tests need %s (apt-get install -y iproute2 nftables bsdutils rsyslog socat)", tool)
		}
	}
	if out, err := exec.Command("unshare", "-n", "nft", "list", "ruleset").CombinedOutput(); err != nil {
		return fmt.Sprintf("e2e tests need nf_tables in a new network namespace: %v: %s", err, bytes.TrimSpace(out))
	}
	return ""
}

// world is one pair of namespaces with sysban running in the server one.
type world struct {
	t       *testing.T
	srv     string // namespace names
	out     string
	veth    string // the outside namespace's end of the veth pair
	dir     string // temp dir: config, unix sockets, logs
	daemon  *exec.Cmd
	logs    *syncBuffer
	exited  chan struct{}
	udpPort int
	tcpPort int
	sock    string   // sysban's unix datagram socket
	control string   // sysban's control socket
	wrap    []string // runs the daemon: setpriv for runAs
	vs, vo  string   // the veth link's ends in srv and out
	env     []string
}

type worldOptions struct {
	config string // YAML jails/filters etc.; listen section is added by the harness
	allow  string // listen.allow override (YAML list)
	extra  string // extra listen lines
	// before runs once the namespaces exist, before the daemon starts
	// (servers the daemon talks to, such as an SMTP server).
	before func(w *world)
	// runAs, when not 0, runs the daemon as that uid (and gid) with only
	// CAP_NET_ADMIN, as the systemd unit does; dir is then theirs.
	runAs int
	env   []string // added to the daemon's environment
}

const defaultJails = `
jails:
  sshd:
    enabled: true
    maxretry: 3
    findtime: 1m
    bantime: 1h
    ports: [ssh]
`

func newWorld(t *testing.T, opt worldOptions) *world {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	n := worldSeq.Add(1)
	w := &world{
		t:       t,
		srv:     fmt.Sprintf("sbsrv%d-%d", os.Getpid(), n),
		out:     fmt.Sprintf("sbout%d-%d", os.Getpid(), n),
		dir:     t.TempDir(),
		udpPort: 5514,
		tcpPort: 5514,
		env:     opt.env,
	}
	if opt.runAs != 0 {
		w.dir, w.wrap = userDir(t, opt.runAs), asUser(opt.runAs)
	}
	w.sock = filepath.Join(w.dir, "syslog.sock")
	t.Cleanup(w.close)

	vs, vo := fmt.Sprintf("sbv%ds", n), fmt.Sprintf("sbv%do", n)
	w.veth = vo
	w.vs, w.vo = vs, vo
	w.sh("ip", "netns", "add", w.srv)
	w.sh("ip", "netns", "add", w.out)
	w.sh("ip", "link", "add", vs, "netns", w.srv, "type", "veth", "peer", "name", vo, "netns", w.out)
	w.inSrv("ip", "link", "set", "lo", "up")
	w.inOut("ip", "link", "set", "lo", "up")
	w.inSrv("ip", "addr", "add", serverV4+"/24", "dev", vs)
	w.inSrv("ip", "addr", "add", serverV6+"/64", "dev", vs, "nodad")
	for _, a := range outsideV4 {
		w.inOut("ip", "addr", "add", a+"/24", "dev", vo)
	}
	w.inOut("ip", "addr", "add", outsideV6+"/64", "dev", vo, "nodad")
	w.inSrv("ip", "link", "set", vs, "up")
	w.inOut("ip", "link", "set", vo, "up")

	cfg := opt.config
	if cfg == "" {
		cfg = defaultJails
	}
	allow := opt.allow
	if allow == "" {
		allow = `["127.0.0.0/8", "::1/128"]`
	}
	w.control = filepath.Join(w.dir, "control.sock")
	full := fmt.Sprintf(`
listen:
  udp: ["127.0.0.1:%d", "%s:%d"]
  tcp: ["127.0.0.1:%d"]
  unix: ["%s", "stream:%s"]
  allow: %s
%s
log:
  level: debug
state:
  dir: %s
control:
  socket: %s
%s`, w.udpPort, serverV4, w.udpPort, w.tcpPort, w.sock, w.sock+"-stream", allow, opt.extra,
		filepath.Join(w.dir, "state"), w.control, cfg)
	path := filepath.Join(w.dir, "sysban.yaml")
	if err := os.WriteFile(path, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	if opt.before != nil {
		opt.before(w)
	}
	w.start(path)
	return w
}

// start runs the daemon in the server namespace and waits until its
// listeners answer.
func (w *world) start(configPath string) {
	t := w.t
	t.Helper()
	w.logs = &syncBuffer{}
	argv := append([]string{"netns", "exec", w.srv}, w.wrap...)
	w.daemon = exec.Command("ip", append(argv, binary, "run", "--config", configPath)...)
	w.daemon.Env = append(os.Environ(), w.env...)
	w.daemon.Stdout, w.daemon.Stderr = w.logs, w.logs
	if err := w.daemon.Start(); err != nil {
		t.Fatalf("start sysban: %v", err)
	}
	w.exited = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(w.daemon, w.exited)
	w.waitFor("sysban to start", eventually, func() bool {
		return strings.Contains(w.logs.String(), "sysban started")
	})
}

// stop sends sig to the daemon and waits for it to exit.
func (w *world) stop(sig os.Signal) {
	if w.daemon == nil || w.daemon.Process == nil {
		return
	}
	_ = w.daemon.Process.Signal(sig)
	select {
	case <-w.exited:
	case <-time.After(eventually):
		_ = w.daemon.Process.Kill()
		<-w.exited
		w.t.Errorf("sysban did not stop within %v of %v", eventually, sig)
	}
}

// alive fails the test if the daemon has exited.
func (w *world) alive() {
	w.t.Helper()
	select {
	case <-w.exited:
		w.t.Fatalf("sysban exited: %v\nlogs:\n%s", w.daemon.ProcessState, w.logs.String())
	default:
	}
}

func (w *world) close() {
	w.stop(os.Interrupt)
	if w.t.Failed() && w.logs != nil {
		w.t.Logf("sysban logs:\n%s", w.logs.String())
	}
	exec.Command("ip", "netns", "del", w.srv).Run()
	exec.Command("ip", "netns", "del", w.out).Run()
}

func (w *world) sh(name string, args ...string) string {
	w.t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		w.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (w *world) inSrv(args ...string) string {
	w.t.Helper()
	return w.sh("ip", append([]string{"netns", "exec", w.srv}, args...)...)
}

func (w *world) inOut(args ...string) string {
	w.t.Helper()
	return w.sh("ip", append([]string{"netns", "exec", w.out}, args...)...)
}

// waitFor polls cond until it holds or the deadline passes.
func (w *world) waitFor(what string, limit time.Duration, cond func() bool) {
	w.t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			w.t.Fatalf("timed out after %v waiting for %s\nsysban logs:\n%s", limit, what, w.logs.String())
		}
		select {
		case <-w.exited:
			w.t.Fatalf("sysban exited while waiting for %s: %v\nlogs:\n%s", what, w.daemon.ProcessState, w.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// element is one member of a kernel set, from `nft -j list set`.
type element struct {
	Addr    string
	Timeout int // seconds; 0 = none (permanent)
	Expires int // seconds left
}

// banned lists the elements of set inet <table> <set> in the server namespace.
func (w *world) banned(table, set string) []element {
	w.t.Helper()
	return w.elements("list", "set", "inet", table, set)
}

// bannedAnywhere reports whether addr is an element of any set of
// sysban's table, in whatever jail.
func (w *world) bannedAnywhere(addr string) bool {
	w.t.Helper()
	for _, e := range w.elements("list", "table", "inet", "sysban") {
		if e.Addr == addr {
			return true
		}
	}
	return false
}

// elements lists the set elements nft -j prints for the command args
// (a set, or a table with its sets) in the server namespace.
func (w *world) elements(args ...string) []element {
	w.t.Helper()
	out, err := exec.Command("ip", append([]string{"netns", "exec", w.srv, "nft", "-j"}, args...)...).CombinedOutput()
	if err != nil {
		return nil // table not (yet) there
	}
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		w.t.Fatalf("nft -j output: %v\n%s", err, out)
	}
	var elems []element
	for _, obj := range doc.Nftables {
		raw, ok := obj["set"]
		if !ok {
			continue
		}
		var s struct {
			Elem []json.RawMessage `json:"elem"`
		}
		if err := json.Unmarshal(raw, &s); err != nil {
			w.t.Fatalf("nft set json: %v", err)
		}
		for _, e := range s.Elem {
			var plain string
			if json.Unmarshal(e, &plain) == nil {
				elems = append(elems, element{Addr: plain})
				continue
			}
			var wrapped struct {
				Elem struct {
					Val     json.RawMessage `json:"val"`
					Timeout int             `json:"timeout"`
					Expires int             `json:"expires"`
				} `json:"elem"`
			}
			if err := json.Unmarshal(e, &wrapped); err == nil && wrapped.Elem.Val != nil {
				elems = append(elems, element{Addr: elemValue(w.t, wrapped.Elem.Val), Timeout: wrapped.Elem.Timeout, Expires: wrapped.Elem.Expires})
				continue
			}
			// An interval element without timeout: the value itself.
			elems = append(elems, element{Addr: elemValue(w.t, e)})
		}
	}
	return elems
}

func (w *world) isBanned(set, addr string) bool {
	for _, e := range w.banned("sysban", set) {
		if e.Addr == addr {
			return true
		}
	}
	return false
}

func (w *world) waitBanned(set, addr string) {
	w.t.Helper()
	w.waitFor(addr+" in set "+set, eventually, func() bool { return w.isBanned(set, addr) })
}

// logger runs util-linux logger in the server namespace.
func (w *world) logger(args ...string) {
	w.t.Helper()
	w.inSrv(append([]string{"logger"}, args...)...)
}

// inNS runs f on an OS thread switched into namespace ns. Sockets created
// there stay in that namespace after f returns; the thread itself is
// discarded (never unlocked) so no other goroutine inherits the namespace.
func inNS(ns string, f func() error) error {
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		fd, err := unix.Open("/run/netns/"+ns, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			errc <- err
			return
		}
		defer unix.Close(fd)
		if err := unix.Setns(fd, unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("setns %s: %w", ns, err)
			return
		}
		errc <- f()
	}()
	return <-errc
}

// serve listens on TCP port in the server namespace and answers "hi\n" to
// every connection until the test ends.
func (w *world) serve(port int) {
	w.t.Helper()
	var ln net.Listener
	err := inNS(w.srv, func() error {
		var err error
		ln, err = net.Listen("tcp", fmt.Sprintf(":%d", port))
		return err
	})
	if err != nil {
		w.t.Fatalf("listen in %s: %v", w.srv, err)
	}
	w.t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hi\n"))
			c.Close()
		}
	}()
}

// The harness's time budgets. eventually bounds a wait for something that
// must happen: it fails the test only if the event never comes, so it is
// generous enough for a CI machine under load (the race detector, other
// test binaries, live daemons) and costs nothing when the event is prompt.
// silence is how long a connection attempt must go unanswered to count as
// dropped: the SYN-ACK comes from the kernel, not from a scheduled
// process, so on a working path it takes microseconds even under load.
const (
	eventually = 30 * time.Second
	silence    = time.Second
)

// dial connects from address from in the outside namespace to to:port,
// giving up after silence.
func (w *world) dial(from, to string, port int) (net.Conn, error) {
	w.t.Helper()
	var c net.Conn
	var dialErr error
	err := inNS(w.out, func() error {
		src := netip.MustParseAddr(from)
		d := net.Dialer{Timeout: silence, LocalAddr: &net.TCPAddr{IP: src.AsSlice()}}
		c, dialErr = d.Dial("tcp", net.JoinHostPort(to, fmt.Sprint(port)))
		return nil
	})
	if err != nil {
		w.t.Fatal(err)
	}
	return c, dialErr
}

// canConnect reports whether the server (w.serve) answers from address
// from: it tries until one attempt is answered "hi", for up to eventually,
// so a slow machine never reads as a ban. Use it where the connection must
// work; use blocked where it must not.
func (w *world) canConnect(from, to string, port int) bool {
	w.t.Helper()
	deadline := time.Now().Add(eventually)
	for {
		got, err := w.greeting(from, to, port)
		if err == nil && got == "hi\n" {
			return true
		}
		if time.Now().After(deadline) {
			w.t.Logf("%s -> %s:%d: no answer for %v (last attempt: %q, %v)", from, to, port, eventually, got, err)
			return false
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// greeting is one attempt of canConnect: what the server sent first.
func (w *world) greeting(from, to string, port int) (string, error) {
	w.t.Helper()
	c, err := w.dial(from, to, port)
	if err != nil {
		return "", err
	}
	defer c.Close()
	// The answer comes from the test's own server goroutine, which a
	// loaded machine may schedule late: wait for it as for an event.
	c.SetReadDeadline(time.Now().Add(eventually))
	buf := make([]byte, 3)
	n, err := io.ReadFull(c, buf)
	return string(buf[:n]), err
}

// blocked reports whether a connection from address from to to:port is
// refused by the kernel or goes unanswered for the whole silence: what a
// reject or a drop verdict does. A connection the kernel accepts is not
// blocked, whatever the server then says; any other failure (no route, no
// such address) fails the test, since it is not a ban. A test asserting a
// block first shows, with canConnect, that the same path works unbanned.
func (w *world) blocked(from, to string, port int) bool {
	w.t.Helper()
	c, err := w.dial(from, to, port)
	switch {
	case err == nil:
		c.Close()
		return false
	case timedOut(err), refused(err):
		return true
	}
	w.t.Fatalf("%s -> %s:%d: %v: neither accepted, dropped nor refused", from, to, port, err)
	return false
}

// blockedWhileBanned is blocked for a ban short enough to expire during
// the attempt: it fails the test, as one that cannot tell, if the element
// elem of set left the kernel before the attempt ended.
func (w *world) blockedWhileBanned(set, elem, from, to string, port int) bool {
	w.t.Helper()
	blocked := w.blocked(from, to, port)
	if !blocked && !w.isBanned(set, elem) {
		w.t.Fatalf("the ban of %s in %s expired before the connection attempt from %s ended: a machine too slow for this test's bantime", elem, set, from)
	}
	return blocked
}

// refusedBy reports whether a connection from address from to to:port is
// refused at once (a TCP reset or ICMP unreachable: a reject verdict, or
// a port nothing serves), as opposed to dropped or accepted.
func (w *world) refusedBy(from, to string, port int) bool {
	w.t.Helper()
	c, err := w.dial(from, to, port)
	if err == nil {
		c.Close()
	}
	return refused(err)
}

func refused(err error) bool { return errors.Is(err, unix.ECONNREFUSED) }

// timedOut: the dial or read timed out (for a dial: no SYN-ACK, no reset).
func timedOut(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// sendUDP sends raw datagrams to addr from namespace ns.
func sendUDP(ns, addr string, payloads ...[]byte) error {
	return inNS(ns, func() error {
		c, err := net.Dial("udp", addr)
		if err != nil {
			return err
		}
		defer c.Close()
		for _, p := range payloads {
			if _, err := c.Write(p); err != nil && !errors.Is(err, unix.ECONNREFUSED) {
				return err
			}
		}
		return nil
	})
}

// sendTCP writes raw bytes to addr from namespace ns and closes.
func sendTCP(ns, addr string, data []byte) error {
	return inNS(ns, func() error {
		c, err := net.DialTimeout("tcp", addr, eventually)
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetWriteDeadline(time.Now().Add(eventually))
		_, err = c.Write(data)
		return err
	})
}

// syncBuffer is a bytes.Buffer safe for the daemon's output goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// elemValue renders an element value of nft -j: an address as is, a
// prefix as "addr/len", a range as "first-last".
func elemValue(t *testing.T, raw json.RawMessage) string {
	t.Helper()
	var plain string
	if json.Unmarshal(raw, &plain) == nil {
		return plain
	}
	var v struct {
		Prefix *struct {
			Addr string `json:"addr"`
			Len  int    `json:"len"`
		} `json:"prefix"`
		Range []string `json:"range"`
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("nft element value %s: %v", raw, err)
	}
	switch {
	case v.Prefix != nil:
		return fmt.Sprintf("%s/%d", v.Prefix.Addr, v.Prefix.Len)
	case len(v.Range) == 2:
		return v.Range[0] + "-" + v.Range[1]
	}
	t.Fatalf("nft element value %s: neither address, prefix nor range", raw)
	return ""
}
