package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestImportFail2ban runs the command on the seed fixtures and feeds its
// output to `sysban check`, as a user would.
func TestImportFail2ban(t *testing.T) {
	const fixtures = "../../migrate/fail2ban/testdata/"
	dir := t.TempDir()
	out := filepath.Join(dir, "imported.yaml")
	var stdout, stderr bytes.Buffer
	if code := run([]string{"import-fail2ban", "--out", out, fixtures + "seed000-centos5"}, &stdout, &stderr); code != 0 {
		t.Fatalf("import-fail2ban = %d\n%s%s", code, stdout.String(), stderr.String())
	}
	if !strings.Contains(stdout.String(), "jails: 6 (6 enabled), 6 carried, 0 not carried") {
		t.Errorf("report:\n%s", stdout.String())
	}
	stdout.Reset()
	if code := run([]string{"check", "--config", out}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "dovecot-pop3imap") {
		t.Fatalf("check of the imported config = %d\n%s%s", code, stdout.String(), stderr.String())
	}

	// --check fails when something was not carried; --json writes the
	// report as JSON (to stderr when the YAML goes to stdout).
	stdout.Reset()
	stderr.Reset()
	code := run([]string{"import-fail2ban", "--json", "--check", fixtures + "seed003-layered"}, &stdout, &stderr)
	if code != 1 {
		t.Errorf("--check with jails not carried = %d, want 1", code)
	}
	if !strings.HasPrefix(stdout.String(), "# Imported from") {
		t.Errorf("stdout is not the YAML:\n%s", stdout.String())
	}
	var rep struct {
		Counts struct {
			JailsNotCarried int `json:"jails_not_carried"`
		} `json:"counts"`
	}
	if err := json.Unmarshal(stderr.Bytes(), &rep); err != nil || rep.Counts.JailsNotCarried != 2 {
		t.Errorf("JSON report: %v, %+v\n%s", err, rep, stderr.String())
	}

	for _, tc := range []struct {
		args []string
		code int
		msg  string
	}{
		{[]string{"import-fail2ban", "a", "b"}, 2, "at most one directory"},
		{[]string{"import-fail2ban", filepath.Join(dir, "missing")}, 1, "jail.conf"},
		{[]string{"import-fail2ban", "--bogus"}, 2, "flag provided but not defined"},
	} {
		stderr.Reset()
		if code := run(tc.args, &stdout, &stderr); code != tc.code || !strings.Contains(stderr.String(), tc.msg) {
			t.Errorf("sysban %v = %d, stderr %q; want %d with %q", tc.args, code, stderr.String(), tc.code, tc.msg)
		}
	}
	_ = os.Remove(out)
}
