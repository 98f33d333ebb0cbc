package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The README's three-host fleet, run from its files in deploy/fleet on the
// README's addresses (newFleetNet's namespaces: collector 10.0.0.1, hosta
// 10.0.0.2, hostb 10.0.0.3), each daemon as the systemd unit runs it: a
// user of its own holding only CAP_NET_ADMIN, after `sysban check`. What a
// test must change, and nothing else: /etc/sysban/ becomes each host's own
// directory (the hosts share this machine's file system), the user sysban
// is unprivilegedUID, the example public keys become the ones the README's
// keygen step printed, and a conf.d file beside each config puts the
// state, control socket and unix listener in that directory too.

// exampleKeys are the public nkeys written in deploy/fleet/*.yaml.
var exampleKeys = map[string]string{
	"collector": "UAQDIKJVKE5TLZCDHYZFDOQT3WSKKC32OFUFV3XNZOXPFEAP4YG4GCOJ",
	"hosta":     "UDG7HQVKCRK5IVYEY2P7E3Q7Q3GUR6PVTQX5RNON4KHZWDLSV7UZI7Y3",
	"hostb":     "UBP32WN4UBX2AVGBXTR6WIGB3GDZEUDU2QGJYCNNCFPGA2IV7IQBWJNF",
}

func TestFleetExample(t *testing.T) {
	if skipWhy == "" {
		for tool, pkg := range map[string]string{"openssl": "openssl", "setpriv": "util-linux"} {
			if _, err := exec.LookPath(tool); err != nil {
				t.Skipf("the README's fleet steps need %s here (apt-get install -y %s)", tool, pkg)
			}
		}
	}
	f := newFleetNet(t)
	hosts := map[string]*world{"collector": f.collector, "hosta": f.a, "hostb": f.b}
	for _, w := range hosts {
		w.dir, w.wrap = userDir(t, unprivilegedUID), asUser(unprivilegedUID)
		w.control = filepath.Join(w.dir, "control.sock")
		t.Cleanup(func() { w.stop(os.Interrupt) }) // before userDir's removal runs
	}

	// On every host, as root: sysban fleet keygen /etc/sysban/fleet.seed,
	// then chown sysban: /etc/sysban/fleet.seed.
	keys := map[string]string{}
	for name, w := range hosts {
		seed := filepath.Join(w.dir, "fleet.seed")
		out, err := exec.Command(binary, "fleet", "keygen", seed).Output()
		if err != nil {
			t.Fatalf("%s: fleet keygen: %v", name, err)
		}
		keys[name] = strings.TrimSpace(string(out))
		chownUnprivileged(t, seed)
	}
	// On the collector, in a directory of the operator's: the CA and the
	// NATS certificate, chown sysban: /etc/sysban/nats.key; fleet-ca.pem is
	// then copied to hosta and hostb.
	script, err := filepath.Abs("../deploy/fleet/fleet-ca.sh")
	if err != nil {
		t.Fatal(err)
	}
	ca := exec.Command("sh", script, "IP:"+fleetCollector, f.collector.dir)
	ca.Dir = t.TempDir()
	if out, err := ca.CombinedOutput(); err != nil {
		t.Fatalf("fleet-ca.sh: %v\n%s", err, out)
	}
	chownUnprivileged(t, filepath.Join(f.collector.dir, "nats.key"))
	pem, err := os.ReadFile(filepath.Join(f.collector.dir, "fleet-ca.pem"))
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []*world{f.a, f.b} {
		if err := os.WriteFile(filepath.Join(w.dir, "fleet-ca.pem"), pem, 0o644); err != nil {
			t.Fatal(err)
		}
	}

	// Each host's file as /etc/sysban/sysban.yaml, started in an order
	// that shows the README's "the order does not matter": the enforcers
	// before the collector whose NATS server they need.
	for _, name := range []string{"hosta", "hostb", "collector"} {
		w := hosts[name]
		pairs := []string{"/etc/sysban/", w.dir + "/"}
		for node, example := range exampleKeys {
			if name == "collector" || node == "collector" {
				pairs = append(pairs, example, keys[node])
			}
		}
		path := exampleConfig(t, w, deployFile(t, "fleet/"+name+".yaml", pairs...))
		check := exec.Command(w.wrap[0], append(w.wrap[1:], binary, "check", "--config", path)...)
		if out, err := check.CombinedOutput(); err != nil {
			t.Fatalf("%s: sysban check: %v\n%s", name, err, out)
		}
		w.start(path)
	}
	// The README's check: sysban fleet status on each host says connected.
	for _, w := range []*world{f.a, f.b} {
		w.waitFor("fleet status: connected", eventually, func() bool { return fleetStatusOf(t, w).Connected })
	}

	// hosta's rsyslog with the shipped TCP forwarder, its target set to
	// the collector as the README says. Its hostname is the one
	// fleet.origins names (namespaces share this machine's hostname).
	sock := f.a.rsyslogWith(`global(localHostname="hosta.example.org")` + "\n" +
		forwarderFile(t, "rsyslog/60-sysban-tcp.conf", `target="127.0.0.1"`, `target="`+fleetCollector+`"`))

	f.b.serve(22)
	if !f.b.canConnect(fleetAttacker, fleetHostB, 22) {
		t.Fatal("the attacker cannot reach hostb before any ban")
	}
	sshdFailures(f.a, sock, fleetAttacker, 5) // the built-in maxretry
	f.b.waitBanned("sshd_v4", fleetAttacker)
	if !f.b.blocked(fleetAttacker, fleetHostB, 22) {
		t.Error("hostb's kernel let the attacker through")
	}
	if !f.b.canConnect(fleetAttacker2, fleetHostB, 22) {
		t.Error("hostb dropped a clean peer")
	}
	for _, w := range []*world{f.collector, f.a} {
		w.waitBanned("sshd_v4", fleetAttacker)
	}
	if out, _ := f.b.cli("banned", fleetAttacker); !strings.Contains(out, "decided by node collector, origin hosta") {
		t.Errorf("banned on hostb:\n%s", out)
	}

	// sysban unban on hostb lifts it everywhere.
	if out, code := f.b.cli("unban", fleetAttacker); code != 0 {
		t.Fatalf("unban on hostb: %d %s", code, out)
	}
	for _, w := range []*world{f.collector, f.a, f.b} {
		w.waitFor("the unban on "+w.srv, eventually, func() bool { return !w.isBanned("sshd_v4", fleetAttacker) })
	}
	if !f.b.canConnect(fleetAttacker, fleetHostB, 22) {
		t.Error("the attacker is still dropped by hostb after the unban")
	}
}

// exampleConfig writes text as w's sysban.yaml, and beside it the conf.d
// file that keeps w's state, control socket and unix listener in w.dir
// rather than where the built-in config puts them (which the three hosts
// would share here). It returns the config's path.
func exampleConfig(t *testing.T, w *world, text string) string {
	t.Helper()
	path := filepath.Join(w.dir, "sysban.yaml")
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(w.dir, "conf.d"), 0o755); err != nil {
		t.Fatal(err)
	}
	local := fmt.Sprintf(`
log: {level: debug}
state: {dir: %s}
control: {socket: %s}
listen: {unix: ["%s"]}
`, filepath.Join(w.dir, "state"), w.control, filepath.Join(w.dir, "syslog.sock"))
	if err := os.WriteFile(filepath.Join(w.dir, "conf.d", "90-test.yaml"), []byte(local), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func chownUnprivileged(t *testing.T, path string) {
	t.Helper()
	if err := os.Chown(path, unprivilegedUID, unprivilegedUID); err != nil {
		t.Fatal(err)
	}
}
