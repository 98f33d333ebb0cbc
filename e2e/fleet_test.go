package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The fleet network: a collector and two hosts on one LAN (a bridge in a
// namespace of its own), and an attacker on the same LAN. The collector
// runs sysban with the embedded NATS server; host A forwards its logs to
// it with rsyslog; host B only enforces. The addresses are the README's
// (deploy/fleet), so that TestFleetExample runs its files unchanged.
const (
	fleetCollector = "10.0.0.1"
	fleetHostA     = "10.0.0.2"
	fleetHostB     = "10.0.0.3"
	fleetAttacker  = "10.0.0.66"
	fleetAttacker2 = "10.0.0.67"
)

type fleetNet struct {
	t                   *testing.T
	seq                 int64 // in the namespace and link names
	lan, attacker       string
	collector, a, b     *world
	collectorConfig     string
	hostAConfig, hostBC string
	keys                map[*world]string // each host's public nkey
	jails               string            // every host's jails section; fleetJails unless set
	forwarders          map[*world]string // each host's rsyslog input socket, once started
}

// newFleetNet builds the namespaces; the daemons are started by the test.
func newFleetNet(t *testing.T) *fleetNet {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	n := worldSeq.Add(1)
	pid := os.Getpid()
	f := &fleetNet{t: t, seq: n, lan: fmt.Sprintf("sbflan%d-%d", pid, n), attacker: fmt.Sprintf("sbfatk%d-%d", pid, n)}
	host := func(name string) *world {
		w := &world{t: t, srv: fmt.Sprintf("sbf%s%d-%d", name, pid, n), out: f.attacker, dir: t.TempDir()}
		w.control = filepath.Join(w.dir, "control.sock")
		t.Cleanup(w.close)
		return w
	}
	f.collector, f.a, f.b = host("c"), host("a"), host("b")
	t.Cleanup(func() {
		exec.Command("ip", "netns", "del", f.lan).Run()
		exec.Command("ip", "netns", "del", f.attacker).Run()
	})
	sh := f.collector.sh
	sh("ip", "netns", "add", f.lan)
	sh("ip", "netns", "add", f.attacker)
	sh("ip", "netns", "exec", f.lan, "ip", "link", "add", "br0", "type", "bridge")
	sh("ip", "netns", "exec", f.lan, "ip", "link", "set", "br0", "up")
	link := func(ns, addr, tag string) {
		if ns != f.attacker {
			sh("ip", "netns", "add", ns)
		}
		host, port := fmt.Sprintf("sbf%s%dh", tag, n), fmt.Sprintf("sbf%s%dp", tag, n)
		sh("ip", "link", "add", host, "netns", ns, "type", "veth", "peer", "name", port, "netns", f.lan)
		sh("ip", "netns", "exec", f.lan, "ip", "link", "set", port, "master", "br0", "up")
		sh("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
		sh("ip", "netns", "exec", ns, "ip", "addr", "add", addr+"/24", "dev", host)
		sh("ip", "netns", "exec", ns, "ip", "link", "set", host, "up")
	}
	link(f.collector.srv, fleetCollector, "c")
	link(f.a.srv, fleetHostA, "a")
	link(f.b.srv, fleetHostB, "b")
	link(f.attacker, fleetAttacker, "x")
	sh("ip", "netns", "exec", f.attacker, "ip", "addr", "add", fleetAttacker2+"/24", "dev", fmt.Sprintf("sbfx%dh", n))
	return f
}

// config writes a host's sysban config: the common part, then extra.
func (f *fleetNet) config(w *world, extra string) string {
	f.t.Helper()
	text := fmt.Sprintf(`
log: {level: debug}
state: {dir: %s}
control: {socket: %s}
metrics: {listen: off}
%s`, filepath.Join(w.dir, "state"), w.control, extra)
	path := filepath.Join(w.dir, "sysban.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		f.t.Fatal(err)
	}
	return path
}

const fleetJails = `
jails:
  sshd: {enabled: true, maxretry: 3, findtime: 1m, bantime: 1h, ports: [ssh]}
`

// start runs the collector (decides, embedded server) and both hosts
// (enforce only, no listeners, no jails of their own besides the set).
func (f *fleetNet) start(scope string) { f.startWith(scope, false) }

// startWith is start; with aDecides, host A also decides from its own
// TCP listener on 127.0.0.1:5514. The fleet runs as the README recommends
// over a network: nkeys, TLS to the collector's embedded server, and
// enforcers that apply only signed bans of the deciding nodes.
func (f *fleetNet) startWith(scope string, aDecides bool) {
	f.t.Helper()
	keys := f.credentials()
	f.keys = keys
	f.collector.start(f.config(f.collector, fmt.Sprintf(`
listen:
  tcp: ["%s:5514"]
  allow: ["10.0.0.0/24"]
%s
fleet:
  name: collector
  roles: [decide, enforce]
  nkeyseed: %s
  scope: [%s]
  origins: ["hosta-log=hosta", "hostb-log=hostb"]
  embedded:
    listen: %s:4222
    tls: {cert: %s, key: %s}
    nodes: ["collector=%s", "hosta=%s", "hostb=%s"]
`, fleetCollector, f.jailsSection(), f.seed(f.collector), scope, fleetCollector,
		filepath.Join(f.collector.dir, "nats.pem"), filepath.Join(f.collector.dir, "nats.key"), keys[f.collector], keys[f.a], keys[f.b])))
	for _, h := range []struct {
		w      *world
		name   string
		decide bool
	}{{f.a, "hosta", aDecides}, {f.b, "hostb", false}} {
		h.w.start(f.hostConfig(h.w, h.name, h.decide, fleetCollector, ""))
	}
}

// hostConfig writes host A's or B's config: it enforces (and decides,
// with decide, from a TCP listener on 127.0.0.1:5514), its NATS server at
// server; extra goes into its fleet section.
func (f *fleetNet) hostConfig(w *world, name string, decide bool, server, extra string) string {
	listen, roles := "{udp: [], tcp: []}", "[enforce]"
	if decide {
		listen, roles = `{udp: [], tcp: ["127.0.0.1:5514"]}`, "[decide, enforce]"
	}
	return f.config(w, fmt.Sprintf(`
listen: %s
%s
fleet:
  name: %s
  roles: %s
  servers: ["tls://%s:4222"]
  nkeyseed: %s
  tls: {ca: %s}
  trustkeys: ["collector=%s", "hosta=%s"]
%s`, listen, f.jailsSection(), name, roles, server, f.seed(w), filepath.Join(f.collector.dir, "ca.pem"), f.keys[f.collector], f.keys[f.a], extra))
}

func (f *fleetNet) jailsSection() string {
	if f.jails != "" {
		return f.jails
	}
	return fleetJails
}

// credentials makes each host's nkey with `sysban fleet keygen` (seed in
// its directory) and the collector's TLS certificate for its address,
// signed by a CA every host trusts; it returns the public keys.
func (f *fleetNet) credentials() map[*world]string {
	f.t.Helper()
	keys := map[*world]string{}
	for _, w := range []*world{f.collector, f.a, f.b} {
		if _, err := os.Stat(f.seed(w)); err == nil {
			os.Remove(f.seed(w)) // keygen never overwrites
		}
		out, err := exec.Command(binary, "fleet", "keygen", f.seed(w)).Output()
		if err != nil {
			f.t.Fatalf("fleet keygen: %v", err)
		}
		keys[w] = strings.TrimSpace(string(out))
	}
	dir := f.collector.dir
	caCert, caKey := makeCert(f.t, nil, nil, "fleet CA", true)
	writePEM(f.t, filepath.Join(dir, "ca.pem"), "CERTIFICATE", caCert.Raw)
	cert, key := makeCert(f.t, caCert, caKey, fleetCollector, false)
	writePEM(f.t, filepath.Join(dir, "nats.pem"), "CERTIFICATE", cert.Raw)
	writeKey(f.t, filepath.Join(dir, "nats.key"), key)
	return keys
}

func (f *fleetNet) seed(w *world) string { return filepath.Join(w.dir, "fleet.seed") }

// fleetStatus is the part of `sysban fleet status --json` the tests read.
type fleetStatus struct {
	Connected bool                      `json:"connected"`
	Applied   int                       `json:"applied"`
	Outbox    int                       `json:"outbox"`
	Bans      map[string]map[string]int `json:"bans"`
}

func fleetStatusOf(t *testing.T, w *world) fleetStatus {
	t.Helper()
	out, _ := w.cli("fleet", "status", "--json")
	var st fleetStatus
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("fleet status: %v\n%s", err, out)
	}
	return st
}

// attackFromA writes sshd failures of addr to host A's rsyslog, which
// forwards them to the collector under the hostname "hosta-log".
func (f *fleetNet) attackFromA(addr string) { f.failuresFrom(f.a, "hosta-log", addr, 3) }

// failuresFrom writes n sshd failures of addr to w's rsyslog (started on
// first use), which forwards them to the collector under hostname.
func (f *fleetNet) failuresFrom(w *world, hostname, addr string, n int) {
	f.t.Helper()
	sock, ok := f.forwarders[w]
	if !ok {
		sock = w.rsyslogWith(fmt.Sprintf(`
global(localHostname="%s")
*.* action(type="omfwd" target="%s" port="5514" protocol="tcp"
           template="RSYSLOG_ForwardFormat" TCP_Framing="octet-counted")
`, hostname, fleetCollector))
		if f.forwarders == nil {
			f.forwarders = map[*world]string{}
		}
		f.forwarders[w] = sock
	}
	for i := range n {
		w.sh("ip", "netns", "exec", w.srv, "logger", "-u", sock, "-t", "sshd",
			fmt.Sprintf("Failed password for root from %s port %d ssh2", addr, 40000+i))
	}
}

func TestFleetBanReachesEveryHost(t *testing.T) {
	f := newFleetNet(t)
	f.start("")
	f.b.serve(22)
	if !f.b.canConnect(fleetAttacker, fleetHostB, 22) {
		t.Fatal("attacker cannot reach host B before any ban")
	}
	f.attackFromA(fleetAttacker)
	f.b.waitBanned("sshd_v4", fleetAttacker)
	f.a.waitBanned("sshd_v4", fleetAttacker)
	if !f.b.blocked(fleetAttacker, fleetHostB, 22) {
		t.Error("host B's kernel let the attacker through")
	}
	if !f.b.canConnect(fleetAttacker2, fleetHostB, 22) {
		t.Error("host B dropped a clean peer")
	}
	// Host B counts a fleet ban and records it in its store after the
	// kernel has it (the store write is batched behind the kernel's), so
	// the set can show it before either: wait for both, then check them.
	var out string
	var st fleetStatus
	f.b.waitFor("host B to record and count the fleet ban", eventually, func() bool {
		out, _ = f.b.cli("banned", fleetAttacker)
		st = fleetStatusOf(t, f.b)
		return strings.Contains(out, "decided by node") && st.Applied > 0 && len(st.Bans["collector"]) > 0
	})
	// `sysban banned` on host B says who decided it and from whose log.
	if !strings.Contains(out, "decided by node collector, origin hosta") {
		t.Errorf("banned on host B:\n%s", out)
	}
	if !st.Connected || st.Applied != 1 || st.Bans["collector"]["fleet"] != 1 {
		t.Errorf("fleet status on host B: %+v", st)
	}

	// Unban from host B: lifted everywhere, and still lifted after every
	// node restarted.
	f.unbanEverywhere(f.b, fleetAttacker, "sshd_v4", fleetAttacker)
}

// unbanEverywhere unbans addr on w and checks that set's element (addr,
// or the prefix covering it) leaves every host's kernel and stays out
// after every node restarted.
func (f *fleetNet) unbanEverywhere(w *world, addr, set, element string) {
	t := f.t
	t.Helper()
	if out, code := w.cli("unban", addr); code != 0 {
		t.Fatalf("unban on %s: %d %s", w.srv, code, out)
	}
	all := []*world{f.collector, f.a, f.b}
	for _, w := range all {
		w.waitFor("unban everywhere", eventually, func() bool { return !w.isBanned(set, element) })
	}
	for _, w := range all {
		w.stop(os.Interrupt)
	}
	for _, w := range all {
		w.start(filepath.Join(w.dir, "sysban.yaml"))
	}
	for _, w := range []*world{f.a, f.b} {
		w.waitFor("resync after restart", eventually, func() bool { return strings.Contains(w.logs.String(), "NATS connected") })
	}
	time.Sleep(500 * time.Millisecond) // a resync that wrongly restored it would have done so by now
	for _, w := range all {
		if w.isBanned(set, element) {
			t.Errorf("%s: %s, unbanned, came back after a restart", w.srv, element)
		}
	}
}

func TestFleetScopeOrigin(t *testing.T) {
	f := newFleetNet(t)
	f.start("sshd=origin")
	f.attackFromA(fleetAttacker)
	f.a.waitBanned("sshd_v4", fleetAttacker)
	time.Sleep(300 * time.Millisecond)
	if f.b.isBanned("sshd_v4", fleetAttacker) {
		t.Error("a ban of scope origin from host A's log landed on host B")
	}
	// Host B does not hold it, yet an unban there lifts it from the fleet
	// and says so.
	out, code := f.b.cli("unban", fleetAttacker)
	if code != 0 || !strings.Contains(out, "unbanned "+fleetAttacker+" from sshd") {
		t.Errorf("unban on host B, which does not hold the ban: %d %s", code, out)
	}
	f.a.waitFor("host A lifts it", eventually, func() bool { return !f.a.isBanned("sshd_v4", fleetAttacker) })
}

// Partition: host A, a decider, loses its link to the collector's NATS,
// bans 1,000 addresses from its own logs meanwhile, and when the link is
// back every one of them reaches host B's kernel.
func TestFleetPartitionOutbox(t *testing.T) {
	f := newFleetNet(t)
	f.startWith("", true)
	f.a.waitFor("host A connected", eventually, func() bool { return fleetStatusOf(t, f.a).Connected })
	link := fmt.Sprintf("sbfa%dh", f.seq)
	f.a.inSrv("ip", "link", "set", link, "down")

	const n = 1000
	var lines bytes.Buffer
	stamp := time.Now().Format(time.Stamp)
	for i := range n {
		addr := fmt.Sprintf("10.99.%d.%d", i/250, i%250+1)
		for p := range 3 {
			fmt.Fprintf(&lines, "<38>%s hosta sshd[1]: Failed password for root from %s port %d ssh2\n", stamp, addr, 40000+p)
		}
	}
	if err := sendTCP(f.a.srv, "127.0.0.1:5514", lines.Bytes()); err != nil {
		t.Fatal(err)
	}
	f.a.waitFor("1,000 bans queued in host A's outbox", 60*time.Second, func() bool { return fleetStatusOf(t, f.a).Outbox == n })
	if got := len(f.b.banned("sysban", "sshd_v4")); got != 0 {
		t.Fatalf("host B got %d bans through a cut link", got)
	}
	f.a.inSrv("ip", "link", "set", link, "up")
	f.b.waitFor("all 1,000 on host B", 60*time.Second, func() bool { return len(f.b.banned("sysban", "sshd_v4")) == n })
	f.a.waitFor("host A's outbox empty", 30*time.Second, func() bool { return fleetStatusOf(t, f.a).Outbox == 0 })
}

// A prefix banned by hand on host A (a decider) reaches host B's interval
// set; `sysban banned` there names who decided it. A reload on host B that
// changes its servers is refused, naming the key; one that adds the
// prefix's address to fleet.ignoreip lifts it there (a manual prefix ban
// names no address to narrow around), and taking it out again brings it
// back. An unban of one address inside it, on host B, lifts it on every
// host, and it stays lifted after every node restarted.
func TestFleetPrefixManualBanReloadUnban(t *testing.T) {
	const prefix, inside, outside = "10.77.0.68/30", "10.77.0.70", fleetAttacker
	f := newFleetNet(t)
	f.collector.sh("ip", "netns", "exec", f.attacker, "ip", "addr", "add", inside+"/24", "dev", fmt.Sprintf("sbfx%dh", f.seq))
	// Host B answers the prefix over the LAN (without the route its
	// answers had nowhere to go, and the address never connected at all).
	f.collector.sh("ip", "netns", "exec", f.b.srv, "ip", "route", "add", "10.77.0.0/24", "dev", fmt.Sprintf("sbfb%dh", f.seq))
	f.startWith("", true)
	for _, w := range []*world{f.a, f.b} {
		w.waitFor("connected", eventually, func() bool { return fleetStatusOf(t, w).Connected })
	}
	f.b.serve(22)
	if !f.b.canConnect(inside, fleetHostB, 22) {
		t.Fatal("before the ban, an address of the prefix must reach host B")
	}
	if out, code := f.a.cli("ban", "sshd", prefix); code != 0 {
		t.Fatalf("ban on host A: %d %s", code, out)
	}
	f.b.waitBanned("sshd_v4net", prefix)
	if !f.b.blocked(inside, fleetHostB, 22) {
		t.Error("host B let an address of the banned prefix through")
	}
	if !f.b.canConnect(outside, fleetHostB, 22) {
		t.Error("host B dropped a peer outside the prefix")
	}
	if out, _ := f.b.cli("banned", inside); !strings.Contains(out, "decided by node hosta, origin hosta") {
		t.Errorf("banned on host B:\n%s", out)
	}

	f.hostConfig(f.b, "hostb", false, "10.77.0.9", "")
	if out, code := f.b.cli("reload"); code == 0 || !strings.Contains(out, "fleet.servers") {
		t.Errorf("reload with new servers: %d %s; want a refusal naming fleet.servers", code, out)
	}
	f.hostConfig(f.b, "hostb", false, fleetCollector, "  ignoreip: ["+inside+"]\n")
	if out, code := f.b.cli("reload"); code != 0 {
		t.Fatalf("reload with fleet.ignoreip: %d %s", code, out)
	}
	f.b.waitFor("the prefix lifted on host B under its new ignoreip", eventually, func() bool { return !f.b.isBanned("sshd_v4net", prefix) })
	f.hostConfig(f.b, "hostb", false, fleetCollector, "")
	if out, code := f.b.cli("reload"); code != 0 {
		t.Fatalf("reload: %d %s", code, out)
	}
	f.b.waitBanned("sshd_v4net", prefix)
	// The kernel has it first, the store right after: wait for the store,
	// which `sysban unban` reads.
	f.b.waitFor("the prefix recorded on host B", eventually, func() bool {
		out, _ := f.b.cli("banned", inside)
		return strings.Contains(out, prefix)
	})

	f.unbanEverywhere(f.b, inside, "sshd_v4net", prefix)
}

// Per-origin counting under scope origin: host A's and host B's logs
// each show two failures of one attacker (four in all, maxretry 3):
// counted apart, nobody bans it. A third on host A bans it on host A
// only; a third on host B bans it on host B too, and host A keeps its ban
// through a restart (a resync): each origin's ban is its own.
func TestFleetCountByOrigin(t *testing.T) {
	f := newFleetNet(t)
	f.jails = `
jails:
  sshd: {enabled: true, maxretry: 3, findtime: 1m, bantime: 1h, ports: [ssh], countby: origin}
`
	f.start("sshd=origin")
	for _, w := range []*world{f.a, f.b} {
		w.waitFor("connected", eventually, func() bool { return fleetStatusOf(t, w).Connected })
	}
	f.failuresFrom(f.a, "hosta-log", fleetAttacker, 2)
	f.failuresFrom(f.b, "hostb-log", fleetAttacker, 2)
	f.collector.waitFor("four failures counted", eventually, func() bool {
		return strings.Count(f.collector.logs.String(), "msg=failure") >= 4
	})
	time.Sleep(300 * time.Millisecond)
	for _, w := range []*world{f.collector, f.a, f.b} {
		if w.isBanned("sshd_v4", fleetAttacker) {
			t.Fatalf("%s banned after two failures on each of two hosts, counted per origin", w.srv)
		}
	}
	f.failuresFrom(f.a, "hosta-log", fleetAttacker, 1)
	f.a.waitBanned("sshd_v4", fleetAttacker)
	time.Sleep(300 * time.Millisecond)
	if f.b.isBanned("sshd_v4", fleetAttacker) {
		t.Fatal("host A's ban of scope origin landed on host B")
	}
	f.failuresFrom(f.b, "hostb-log", fleetAttacker, 1)
	f.b.waitBanned("sshd_v4", fleetAttacker)
	f.a.stop(os.Interrupt)
	f.a.start(filepath.Join(f.a.dir, "sysban.yaml"))
	f.a.waitFor("host A resynced after its restart", eventually, func() bool { return strings.Contains(f.a.logs.String(), "NATS connected") })
	time.Sleep(500 * time.Millisecond)
	if !f.a.isBanned("sshd_v4", fleetAttacker) {
		t.Error("host B's ban of the same attacker took host A's away")
	}
}
