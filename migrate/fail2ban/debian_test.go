package fail2ban

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sysban/sysban/pipeline"
)

// TestDebianStock imports the configuration of Debian's fail2ban package,
// unpacked (never installed) with apt-get download and dpkg-deb. Every
// stock jail must be carried with its enabled state or be reported; with
// every jail enabled in a jail.local overlay it prints how the stock
// filters fared.
func TestDebianStock(t *testing.T) {
	if testing.Short() {
		t.Skip("short: needs apt-get download")
	}
	for _, tool := range []string{"apt-get", "dpkg-deb"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found: this test unpacks Debian's fail2ban package", tool)
		}
	}
	dir := t.TempDir()
	dl := exec.Command("apt-get", "download", "fail2ban")
	dl.Dir = dir
	if out, err := dl.CombinedOutput(); err != nil {
		t.Skipf("apt-get download fail2ban failed (no package lists or no network? run apt-get update): %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(dir, "fail2ban_*.deb"))
	if len(debs) != 1 {
		t.Fatalf("downloaded %v", debs)
	}
	root := filepath.Join(dir, "root")
	if out, err := exec.Command("dpkg-deb", "-x", debs[0], root).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb -x: %v\n%s", err, out)
	}
	etc := filepath.Join(root, "etc", "fail2ban")
	cfg, rep := imported(t, etc)
	stock, err := readLayers(os.DirFS(etc), "jail")
	if err != nil {
		t.Fatal(err)
	}
	var sections []string
	for _, s := range stock.Sections() {
		if s != DefaultSection {
			sections = append(sections, s)
		}
	}
	for _, s := range sections {
		jr := reportOf(t, rep, s)
		if jr.NotCarried != "" {
			continue
		}
		j := jailOf(t, cfg, jr.Sysban)
		want, _ := stock.Get(s, "enabled", nil)
		if on, _ := boolValue(want); j.Enabled != on {
			t.Errorf("stock jail %s: enabled %v, fail2ban says %q", s, j.Enabled, want)
		}
	}
	if !jailOf(t, cfg, "sshd").Enabled {
		t.Error("Debian enables sshd (jail.d/defaults-debian.conf); the import does not")
	}
	// Enable everything in an overlay, as a user who wants every jail.
	overlay := "[DEFAULT]\nenabled = true\n"
	if err := os.WriteFile(filepath.Join(etc, "jail.local"), []byte(overlay), 0o644); err != nil {
		t.Fatal(err)
	}
	// defaults-debian.conf sets sshd's own enabled; DEFAULT does not override it.
	_, rep = imported(t, etc)
	c := rep.Counts
	t.Logf("Debian fail2ban stock, every jail enabled: %d jails (%d enabled): %d carried, %d not carried; filters: %d built-in, %d translated (%d of them on the backtracking engine), %d not carried",
		c.Jails, c.JailsEnabled, c.JailsCarried, c.JailsNotCarried, c.FiltersBuiltin, c.FiltersTranslated, c.FiltersBacktracking, c.FiltersNotCarried)
	if c.Jails != len(sections) || c.JailsEnabled != c.Jails {
		t.Errorf("report has %d jails (%d enabled), stock has %d", c.Jails, c.JailsEnabled, len(sections))
	}
	if c.JailsCarried < c.Jails/2 {
		t.Errorf("only %d of %d stock jails carried", c.JailsCarried, c.Jails)
	}
	// Look-around and back-references no longer cost a filter: on the
	// package of Debian 12 all 8 such filters are carried, on the bounded
	// engine (83 of 91 jails were carried before it, 88 with it).
	if c.FiltersBacktracking == 0 {
		t.Error("no stock filter needs the backtracking engine: the counts below check nothing")
	}
	for _, jr := range rep.Jails {
		f := jr.Filter
		if f == nil || !slices.ContainsFunc(f.Patterns, func(p PatternResult) bool { return p.Backtracking }) {
			continue
		}
		if f.Spec == nil || f.Spec.Engine != pipeline.EngineBacktrack {
			t.Errorf("stock filter %s needs the backtracking engine and was not carried on it: %s", f.Source, f.NotCarried)
		}
	}
	for _, jr := range rep.Jails {
		if jr.NotCarried == "" && jr.Sysban == "" {
			t.Errorf("jail %s neither carried nor reported", jr.Name)
		}
	}
	// The translated filters against fail2ban's own annotated samples.
	cfg, _ = imported(t, etc)
	logs := filepath.Join(root, "usr", "lib", "python3", "dist-packages", "fail2ban", "tests", "files", "logs")
	total := reportSamples(t, rep, cfg.Filters, logs)
	t.Logf("translated filters on fail2ban's samples: %d failures, %d found with the right host, %d wrong host, %d missed; %d false positives",
		total.failures, total.hits, total.wrongHost, total.missed, total.falsePositives)
	// A translation may miss (the report says what it could not carry),
	// but it must never count a line fail2ban does not.
	if total.falsePositives > 0 || total.hits == 0 {
		t.Errorf("%d false positives, %d hits on fail2ban's samples", total.falsePositives, total.hits)
	}
}
