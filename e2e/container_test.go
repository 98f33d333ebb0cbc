package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// containerUID is the image's user (Containerfile: USER 65532).
const containerUID = 65532

// podmanEnv returns the environment podman runs with here: runc and
// explicit ulimits (crun and the default ulimits fail on some machines).
// It skips the test when podman is missing or cannot run a container.
func podmanEnv(t *testing.T) []string {
	t.Helper()
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	for _, tool := range []string{"podman", "runc"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("container tests need %s (apt-get install podman runc)", tool)
		}
	}
	conf := filepath.Join(t.TempDir(), "containers.conf")
	if err := os.WriteFile(conf, []byte(`[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]
[engine]
runtime = "runc"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "CONTAINERS_CONF="+conf)
	cmd := exec.Command("podman", "info", "--format", "{{.Host.OCIRuntime.Name}}")
	cmd.Env = env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Skipf("podman cannot run here: %v: %s", err, out)
	}
	return env
}

// The image built offline from the Containerfile's prebuilt target runs as
// a sidecar: in a network namespace the test made (never podman's default
// bridge), as uid 65532 with CAP_NET_ADMIN only, reading syslog from a unix
// socket in a directory shared with the host, where another process
// (logger) writes. The ban lands in that namespace's ruleset, not the
// host's. Without NET_ADMIN the container stops with a clear error.
func TestContainerSidecar(t *testing.T) {
	env := podmanEnv(t)
	podman := func(args ...string) ([]byte, error) {
		cmd := exec.Command("podman", args...)
		cmd.Env = env
		return cmd.CombinedOutput()
	}
	tag := fmt.Sprintf("localhost/sysban:e2e-%d", os.Getpid())
	build := exec.Command("../scripts/container", tag)
	build.Env = env
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("scripts/container: %v\n%s", err, out)
	}
	t.Cleanup(func() { podman("rmi", "-f", tag) })

	ns := fmt.Sprintf("sbctr%d", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
		t.Fatalf("ip netns add: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	exec.Command("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up").Run()

	shared := userDir(t, containerUID)
	conf := `listen:
  udp: []
  tcp: []
  unix: ["/run/sysban/syslog.sock"]
state:
  dir: /var/lib/sysban
control:
  socket: /run/sysban/control.sock
metrics:
  listen: "off"
jails:
  sshd:
    maxretry: 3
`
	if err := os.WriteFile(filepath.Join(shared, "sysban.yaml"), []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	name := fmt.Sprintf("sysban-e2e-%d", os.Getpid())
	base := []string{"run", "--rm", "--network", "ns:/run/netns/" + ns, "--cap-drop", "ALL", "-v", shared + ":/run/sysban"}

	// Without NET_ADMIN: a clear error, at once.
	out, err := podman(append(base, tag, "run", "--config", "/run/sysban/sysban.yaml")...)
	if err == nil || !strings.Contains(string(out), "needs CAP_NET_ADMIN") {
		t.Errorf("without NET_ADMIN: err %v, output:\n%s", err, out)
	}

	logs := &syncBuffer{}
	daemon := exec.Command("podman", append(base, "--name", name, "--cap-add", "NET_ADMIN", tag, "run", "--config", "/run/sysban/sysban.yaml")...)
	daemon.Env = env
	daemon.Stdout, daemon.Stderr = logs, logs
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { daemon.Wait(); close(exited) }()
	t.Cleanup(func() {
		podman("stop", "-t", "10", name)
		<-exited
		if t.Failed() {
			t.Logf("container output:\n%s", logs.String())
		}
	})
	wait := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for !cond() {
			select {
			case <-exited:
				t.Fatalf("the container exited while waiting for %s:\n%s", what, logs.String())
			case <-time.After(100 * time.Millisecond):
			}
			if time.Now().After(deadline) {
				t.Fatalf("timed out waiting for %s:\n%s", what, logs.String())
			}
		}
	}
	sock := filepath.Join(shared, "syslog.sock")
	wait("the syslog socket", func() bool { _, err := os.Stat(sock); return err == nil })
	if !strings.Contains(logs.String(), "sysban started") {
		wait("sysban started", func() bool { return strings.Contains(logs.String(), "sysban started") })
	}
	fi, err := os.Stat(filepath.Join(shared, "control.sock"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("control socket: %v %v, want mode 0600", err, fi)
	}

	const attacker = "198.51.100.99"
	for i := range 3 {
		if out, err := exec.Command("logger", "-u", sock, "-t", "sshd", fmt.Sprintf("--id=%d", 900+i), "-p", "auth.info",
			"Failed password for root from "+attacker+" port 4711 ssh2").CombinedOutput(); err != nil {
			t.Fatalf("logger: %v: %s", err, out)
		}
	}
	inNSBanned := func() bool {
		out, err := exec.Command("ip", "netns", "exec", ns, "nft", "list", "set", "inet", "sysban", "sshd_v4").CombinedOutput()
		return err == nil && strings.Contains(string(out), attacker)
	}
	wait(attacker+" banned in the container's namespace", inNSBanned)
	if out, _ := exec.Command("nft", "list", "ruleset").CombinedOutput(); strings.Contains(string(out), attacker) {
		t.Errorf("%s is in the host's ruleset too: the ban left the container's namespace", attacker)
	}
}
