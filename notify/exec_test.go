package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

func TestExecArgvIntact(t *testing.T) {
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	out := filepath.Join(dir, "out.json")
	pwned := filepath.Join(dir, "pwned")
	hostile := `a b  "c" 'd' ; $(touch ` + pwned + `) ` + "`touch " + pwned + "`" + ` && echo {addr} | x > y`

	act, err := ActionSpec{Name: "hook", Exec: &ExecSpec{Argv: []string{
		self, "sysban-exec-helper", out,
		"{addr}", "--jail={jail}", hostile, "{failures}/{bantime}", "{event}", "{reason}",
		"{family}", "", "{start}..{expiry}", "{host}",
	}}}.Build(BuildOptions{Hostname: "mx1"})
	if err != nil {
		t.Fatal(err)
	}
	ban := sysban.Ban{
		// Values are substituted once: a jail named like a placeholder or
		// holding shell syntax arrives as written.
		Jail:     "we ird;$(touch " + pwned + ") {addr}",
		Addr:     netip.MustParseAddr("2001:db8::7"),
		Start:    time.Date(2026, 11, 21, 19, 0, 0, 0, time.UTC),
		Duration: 10 * time.Minute,
		Failures: 7,
	}
	ev := Event{Kind: KindUnban, Ban: ban, Reason: ReasonExpired,
		Lines: []string{"line one $(id)", "line\ntwo\x00"}}
	if err := act.Do(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("helper did not run: %v", err)
	}
	var got struct {
		Args []string
		Env  map[string]string
	}
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	wantArgs := []string{
		"2001:db8::7", "--jail=we ird;$(touch " + pwned + ") {addr}",
		strings.Replace(hostile, "{addr}", "2001:db8::7", 1), "7/600", "unban", "expired",
		"inet6", "", "2026-11-21T19:00:00Z..2026-11-21T19:10:00Z", "mx1",
	}
	if !slices.Equal(got.Args, wantArgs) {
		t.Errorf("argv\n got %q\nwant %q", got.Args, wantArgs)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Error("a shell ran: the pwned file exists")
	}
	wantEnv := map[string]string{
		"SYSBAN_EVENT": "unban", "SYSBAN_JAIL": ban.Jail, "SYSBAN_ADDR": "2001:db8::7",
		"SYSBAN_FAILURES": "7", "SYSBAN_BANTIME": "600", "SYSBAN_REASON": "expired",
		"SYSBAN_HOST": "mx1", "SYSBAN_FAMILY": "inet6",
		"SYSBAN_LINES": "line one $(id)\nline two",
	}
	for k, v := range wantEnv {
		if got.Env[k] != v {
			t.Errorf("env %s = %q, want %q", k, got.Env[k], v)
		}
	}
	for k := range got.Env {
		if !strings.HasPrefix(k, "SYSBAN_") && k != "PATH" && k != "LC_ALL" {
			t.Errorf("daemon environment leaked into the command: %s", k)
		}
	}
}

func TestExecOutputAndFailures(t *testing.T) {
	var logBuf bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logBuf, nil))

	act, err := ActionSpec{Name: "p", Exec: &ExecSpec{Argv: []string{"/usr/bin/printf", "banned %s in %s", "{addr}", "{jail}"}}}.Build(BuildOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := act.Do(context.Background(), Event{Kind: KindBan, Ban: testBan()}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logBuf.String(), `output="banned 198.51.100.7 in sshd"`) {
		t.Errorf("output not logged:\n%s", logBuf.String())
	}

	logBuf.Reset()
	act, err = ActionSpec{Name: "p", Exec: &ExecSpec{Argv: []string{"/usr/bin/printf", "%0100d"}, MaxOutput: 10}}.Build(BuildOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	if err := act.Do(context.Background(), Event{Kind: KindBan, Ban: testBan()}); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logBuf.String(), "output=0000000000 output_truncated=true") {
		t.Errorf("output not bounded to 10 bytes:\n%s", logBuf.String())
	}

	act, err = ActionSpec{Name: "f", Exec: &ExecSpec{Argv: []string{"/bin/false"}}}.Build(BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := act.Do(context.Background(), Event{Kind: KindBan, Ban: testBan()}); err == nil {
		t.Error("/bin/false: want an error")
	}

	// sleep outlasts the test: Do returning at all is the timeout at work.
	act, err = ActionSpec{Name: "s", Exec: &ExecSpec{Argv: []string{"/bin/sleep", "600"}, Timeout: 50 * time.Millisecond}}.Build(BuildOptions{})
	if err != nil {
		t.Fatal(err)
	}
	returns(t, "sleep 600 with a 50ms timeout", func() { err = act.Do(context.Background(), Event{Kind: KindBan, Ban: testBan()}) })
	if err == nil || !strings.Contains(err.Error(), "timed out") {
		t.Errorf("sleep 600 with a 50ms timeout: err = %v", err)
	}

	if _, err := (ActionSpec{Name: "x", Exec: &ExecSpec{Argv: []string{"/nonexistent/hook"}}}).Build(BuildOptions{}); err == nil {
		t.Error("missing program: want a build error")
	}
}
