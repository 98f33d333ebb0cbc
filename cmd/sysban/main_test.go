package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCommands(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("defaults:\n  verdict: accept\n"), 0o644)
	good := filepath.Join(dir, "good.yaml")
	os.WriteFile(good, []byte("jails:\n  sshd:\n    maxretry: 3\n    ports: [ssh, 2222]\n"), 0o644)

	checkRuns(t, []runCase{
		{nil, 2, "", "usage: sysban"},
		{[]string{"version"}, 0, "sysban ", ""},
		{[]string{"help"}, 0, "run [--config FILE]", ""},
		{[]string{"bogus"}, 2, "", `unknown command "bogus"`},
		{[]string{"check"}, 0, "jail    sshd             enabled  filter=sshd maxretry=5", ""},
		{[]string{"check", "--config", good}, 0, "rule=sshd(tcp 22,2222 drop)", ""},
		// What each listener can tell about a sender, and whom a jail trusts.
		{[]string{"check"}, 0, "tcp:127.0.0.1:5514                       provenance: uid per connection from this host (sock_diag)", ""},
		{[]string{"check"}, 0, "provenance=prefer trust=root,sshd,_sshd\n", ""},
		{[]string{"check", "--config", bad}, 2, "", bad + `: defaults.verdict: "accept": want one of drop, reject`},
		{[]string{"check", "--config", filepath.Join(dir, "missing.yaml")}, 2, "", "no such file"},
		{[]string{"run", "--config", bad}, 2, "", "defaults.verdict"},
		{[]string{"run", "extra"}, 2, "", `unexpected argument "extra"`},
	})
}

// runCase is one command line and what it must give: the exit code and
// text its stdout and stderr contain.
type runCase struct {
	args   []string
	code   int
	stdout string
	stderr string
}

func checkRuns(t *testing.T, tests []runCase) {
	t.Helper()
	for _, tt := range tests {
		var stdout, stderr bytes.Buffer
		code := run(tt.args, &stdout, &stderr)
		if code != tt.code || !strings.Contains(stdout.String(), tt.stdout) || !strings.Contains(stderr.String(), tt.stderr) {
			t.Errorf("sysban %v = %d\nstdout: %s\nstderr: %s\nwant %d, stdout with %q, stderr with %q",
				tt.args, code, stdout.String(), stderr.String(), tt.code, tt.stdout, tt.stderr)
		}
	}
}
