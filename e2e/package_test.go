package e2e

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// The Debian package as an administrator meets it: scripts/package builds
// it, dpkg installs it (creating the sysban user), the installed binary
// checks the shipped config and tells its version and commit, the installed
// unit passes systemd-analyze verify, and remove then purge take away
// everything but the user (Debian's policy keeps system users).
func TestDebianPackage(t *testing.T) {
	if skipWhy != "" {
		t.Skip(skipWhy)
	}
	if _, err := exec.LookPath("dpkg"); err != nil {
		t.Skip("needs dpkg (a Debian machine)")
	}
	if exec.Command("dpkg-query", "-W", "sysban").Run() == nil {
		t.Skip("a sysban package is installed on this machine already; not replacing it")
	}
	run := func(name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, args...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	userBefore := exec.Command("getent", "passwd", "sysban").Run() == nil
	t.Cleanup(func() {
		exec.Command("dpkg", "--purge", "sysban").Run()
		if !userBefore {
			exec.Command("deluser", "--system", "--quiet", "sysban").Run()
		}
	})

	dist := t.TempDir()
	run("../scripts/package", dist)
	debs, _ := filepath.Glob(filepath.Join(dist, "sysban_*_amd64.deb"))
	if len(debs) != 1 {
		t.Fatalf("scripts/package made %v", debs)
	}
	run("dpkg", "-i", debs[0])

	if out := run("getent", "passwd", "sysban"); !strings.Contains(out, ":/var/lib/sysban:") {
		t.Errorf("sysban user: %s", out)
	}
	if out := run("/usr/bin/sysban", "check", "--config", "/etc/sysban/sysban.yaml"); !strings.Contains(out, "jail    sshd             enabled") {
		t.Errorf("sysban check on the shipped config:\n%s", out)
	}
	head := strings.TrimSpace(run("git", "rev-parse", "HEAD"))
	if out := run("/usr/bin/sysban", "version"); !strings.Contains(out, "commit "+head) || strings.Contains(out, "unknown") {
		t.Errorf("sysban version does not name commit %s and a build date:\n%s", head, out)
	}
	if out := run("dpkg-query", "-W", "-f=${Conffiles}", "sysban"); !strings.Contains(out, "/etc/sysban/sysban.yaml") {
		t.Errorf("conffiles: %q", out)
	}
	// The README's fleet steps run these from the installed package.
	for _, doc := range []string{"fleet/fleet-ca.sh", "fleet/collector.yaml", "fleet/hosta.yaml", "forwarders/rsyslog/60-sysban-tcp.conf"} {
		if _, err := os.Stat(filepath.Join("/usr/share/doc/sysban", doc)); err != nil {
			t.Errorf("the package lacks what the README's fleet steps use: %v", err)
		}
	}
	if _, err := exec.LookPath("systemd-analyze"); err == nil {
		if out, err := exec.Command("systemd-analyze", "verify", "/lib/systemd/system/sysban.service").CombinedOutput(); err != nil {
			t.Errorf("installed unit: systemd-analyze verify: %v\n%s", err, out)
		}
	}

	// fish finds the installed completion by itself; the script asks the
	// installed binary (cmd/sysban/completion_test.go drives every shell).
	if _, err := exec.LookPath("fish"); err == nil {
		if out := run("fish", "-c", "complete -C 'sysban sta'"); !strings.HasPrefix(out, "status\t") {
			t.Errorf("the installed fish completion offers for 'sysban sta': %q", out)
		}
	}

	run("dpkg", "-r", "sysban")
	for _, gone := range []string{"/usr/bin/sysban", "/lib/systemd/system/sysban.service", "/usr/share/man/man8/sysban.8.gz",
		"/usr/share/bash-completion/completions/sysban", "/usr/share/zsh/vendor-completions/_sysban", "/usr/share/fish/vendor_completions.d/sysban.fish"} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("%s left after dpkg -r", gone)
		}
	}
	if _, err := os.Stat("/etc/sysban/sysban.yaml"); err != nil {
		t.Errorf("dpkg -r removed the conffile (only purge should): %v", err)
	}
	run("dpkg", "--purge", "sysban")
	for _, gone := range []string{"/etc/sysban", "/var/lib/sysban"} {
		if _, err := os.Stat(gone); err == nil {
			t.Errorf("%s left after purge", gone)
		}
	}
}
