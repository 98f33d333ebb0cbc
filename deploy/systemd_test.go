package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const unitPath = "systemd/sysban.service"

// maxExposure is the bar: systemd-analyze rates 2.0 and below "OK".
const maxExposure = 2.0

// installedUnit copies the unit into a temp dir with /usr/bin/sysban
// replaced by an executable that exists here (this test binary):
// systemd-analyze verify checks that ExecStart's command is executable,
// and the package is not installed on a test machine.
func installedUnit(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("systemd-analyze"); err != nil {
		t.Skip("systemd-analyze not installed (apt-get install systemd); the unit is not checked")
	}
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "sysban.service")
	if err := os.WriteFile(path, bytes.ReplaceAll(unit, []byte("/usr/bin/sysban"), []byte(self)), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUnitVerifies(t *testing.T) {
	path := installedUnit(t)
	// --man=no: the man page is installed by the package, not here.
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", path).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for sysban\.service: ([0-9.]+)`)

func TestUnitSecurityExposure(t *testing.T) {
	path := installedUnit(t)
	out, err := exec.Command("systemd-analyze", "security", "--offline=true", path).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure in:\n%s", out)
	}
	got, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("systemd-analyze security: exposure %.1f", got)
	if got > maxExposure {
		t.Errorf("exposure %.1f > %.1f; what counts against it:\n%s", got, maxExposure, failing(out))
	}
}

func failing(out []byte) string {
	var b strings.Builder
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "✗") {
			b.WriteString(line + "\n")
		}
	}
	return b.String()
}

// The unit asks for exactly what the daemon needs, and the default config's
// paths are the directories systemd makes for it.
func TestUnitLeastPrivilege(t *testing.T) {
	unit, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Type=notify",
		"WatchdogSec=",
		"ExecReload=/bin/kill -HUP $MAINPID",
		"User=sysban",
		"AmbientCapabilities=CAP_NET_ADMIN\n",
		"CapabilityBoundingSet=CAP_NET_ADMIN\n",
		"NoNewPrivileges=yes",
		"ProtectSystem=strict",
		"ProtectHome=yes",
		"PrivateTmp=yes",
		"RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK\n",
		"SystemCallFilter=@system-service",
		"MemoryDenyWriteExecute=yes",
		"StateDirectory=sysban\n",
		"RuntimeDirectory=sysban\n",
	}
	for _, w := range want {
		if !bytes.Contains(unit, []byte(w)) {
			t.Errorf("unit lacks %q", strings.TrimSpace(w))
		}
	}
	defaults, err := os.ReadFile("../configs/sysban.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"dir: /var/lib/sysban", "socket: /run/sysban/control.sock", `unix: ["/run/sysban/syslog.sock"]`} {
		if !bytes.Contains(defaults, []byte(w)) {
			t.Errorf("configs/sysban.yaml no longer has %q: the unit's StateDirectory/RuntimeDirectory assume it", w)
		}
	}
}
