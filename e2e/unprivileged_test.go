package e2e

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// unprivilegedUID is nobody on Debian: a user with no files of its own,
// standing in for the package's sysban system user.
const unprivilegedUID = 65534

// asUser is the command prefix that runs the daemon as the systemd unit
// does: uid and gid, no supplementary groups, CAP_NET_ADMIN as its only
// capability (ambient, so it survives the exec as a non-root user).
func asUser(uid int) []string {
	return []string{"setpriv", fmt.Sprintf("--reuid=%d", uid), fmt.Sprintf("--regid=%d", uid), "--clear-groups",
		"--inh-caps=-all,+net_admin", "--ambient-caps=-all,+net_admin", "--bounding-set=-all,+net_admin"}
}

// userDir is a temp dir owned by uid and reachable by it (t.TempDir's
// parents are root's, mode 0700).
func userDir(t *testing.T, uid int) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "sysban-e2e-user")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(dir, uid, uid); err != nil {
		t.Fatal(err)
	}
	return dir
}

// systemdSide listens where NOTIFY_SOCKET points, as systemd does, and
// hands on each state the daemon sends.
func systemdSide(t *testing.T, path string) <-chan string {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The daemon runs as another user and must be able to write to it.
	if err := os.Chmod(path, 0o666); err != nil {
		t.Fatal(err)
	}
	states := make(chan string, 256)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			states <- string(buf[:n])
		}
	}()
	return states
}

func waitState(t *testing.T, w *world, states <-chan string, prefix string) string {
	t.Helper()
	deadline := time.After(eventually)
	for {
		select {
		case s := <-states:
			if strings.HasPrefix(s, prefix) {
				return s
			}
		case <-deadline:
			t.Fatalf("no %q from sysban within %v\nlogs:\n%s", prefix, eventually, w.logs.String())
		}
	}
}

// The daemon as the systemd unit runs it: a non-root user holding only
// CAP_NET_ADMIN, told where systemd's notify socket is. It reports ready
// once its sockets exist, pings the watchdog, brackets a SIGHUP reload
// with RELOADING/READY, owns its control socket (0600) and store, and gets
// a ban into the kernel.
func TestUnprivilegedUnderSystemd(t *testing.T) {
	if skipWhy == "" {
		if _, err := os.Stat("/usr/bin/setpriv"); err != nil {
			t.Skip("needs setpriv (util-linux) to drop to a non-root user with CAP_NET_ADMIN")
		}
	}
	// t.TempDir's parent is private; systemd's socket must be reachable.
	sockDir := userDir(t, 0)
	notifyPath := filepath.Join(sockDir, "notify")
	states := systemdSide(t, notifyPath)
	w := newWorld(t, worldOptions{
		runAs: unprivilegedUID,
		env:   []string{"NOTIFY_SOCKET=" + notifyPath, "WATCHDOG_USEC=400000"},
		extra: "metrics:\n  listen: \"off\"\nnflog:\n  enabled: true",
	})
	ready := waitState(t, w, states, "READY=1")
	if !strings.Contains(ready, "STATUS=serving") {
		t.Errorf("readiness %q carries no STATUS", ready)
	}
	// Ready means served: the sockets and the table are there already.
	for path, mode := range map[string]os.FileMode{w.control: 0o600, w.sock: 0o660, filepath.Join(w.dir, "state"): 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatalf("at READY=1: %v", err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != unprivilegedUID || fi.Mode().Perm() != mode {
			t.Errorf("%s: owner %d mode %v, want %d %v", path, st.Uid, fi.Mode().Perm(), unprivilegedUID, mode)
		}
	}
	if out := w.inSrv("nft", "list", "table", "inet", "sysban"); !strings.Contains(out, "sshd_v4") {
		t.Errorf("at READY=1 the table has no sshd set:\n%s", out)
	}
	waitState(t, w, states, "WATCHDOG=1")

	const attacker = "198.51.100.77"
	for range 3 {
		w.logger("-u", w.sock, "-t", "sshd", "-p", "auth.info", "Failed password for root from "+attacker+" port 4711 ssh2")
	}
	w.waitBanned("sshd_v4", attacker)
	if out := w.inSrv(binary, "banned", "--socket", w.control); !strings.Contains(out, attacker) {
		t.Errorf("sysban banned (as root over the daemon user's socket):\n%s", out)
	}

	if err := w.daemon.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if s := waitState(t, w, states, "RELOADING=1"); !strings.Contains(s, "MONOTONIC_USEC=") {
		t.Errorf("reload notice %q lacks MONOTONIC_USEC", s)
	}
	waitState(t, w, states, "READY=1")
	waitState(t, w, states, "WATCHDOG=1")
	w.alive()
}

// Without CAP_NET_ADMIN the daemon stops at once and says what it lacks.
func TestUnprivilegedWithoutNetAdmin(t *testing.T) {
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	dir := userDir(t, unprivilegedUID)
	cfg := filepath.Join(dir, "sysban.yaml")
	conf := fmt.Sprintf("listen:\n  udp: []\n  tcp: []\n  unix: [%q]\nstate:\n  dir: %s\ncontrol:\n  socket: %s\nmetrics:\n  listen: \"off\"\n",
		filepath.Join(dir, "syslog.sock"), filepath.Join(dir, "state"), filepath.Join(dir, "control.sock"))
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	argv := []string{"-n", "setpriv", fmt.Sprintf("--reuid=%d", unprivilegedUID), fmt.Sprintf("--regid=%d", unprivilegedUID),
		"--clear-groups", "--inh-caps=-all", "--bounding-set=-all", binary, "run", "--config", cfg}
	out, err := exec.Command("unshare", argv...).CombinedOutput()
	if err == nil {
		t.Fatalf("sysban ran without CAP_NET_ADMIN:\n%s", out)
	}
	if !strings.Contains(string(out), "needs CAP_NET_ADMIN") {
		t.Errorf("error does not say what is missing:\n%s", out)
	}
}
