package control

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// lockedBuffer is a bytes.Buffer safe for the server's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestAuditCaller checks that a ban is logged with the caller's uid and
// pid, taken from the kernel (SO_PEERCRED).
func TestAuditCaller(t *testing.T) {
	var logs lockedBuffer
	path := filepath.Join(t.TempDir(), "control.sock")
	s, err := NewServer(path, &fakeDaemon{}, slog.New(slog.NewJSONHandler(&logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()

	c, err := Dial(path)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := c.Ban(context.Background(), "sshd", netip.MustParsePrefix("192.0.2.1/32"), 0); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf(`"caller":{"uid":%d,"pid":%d}`, os.Getuid(), os.Getpid())
	if !strings.Contains(logs.String(), want) {
		t.Errorf("ban log lacks %s:\n%s", want, logs.String())
	}
}

// TestForbiddenPeer connects as an unprivileged user to a socket whose
// mode someone loosened: the server must still refuse.
func TestForbiddenPeer(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to run a client as another user")
	}
	socat, err := exec.LookPath("socat")
	if err != nil {
		t.Skip("needs socat to connect as another user")
	}
	// t.TempDir's parents are private; nobody must reach the socket's
	// directory for the server's own check to be what refuses it.
	dir, err := os.MkdirTemp("", "sysban-control-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755)
	path := filepath.Join(dir, "control.sock")
	f := &fakeDaemon{}
	s, err := NewServer(path, f, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	defer func() { cancel(); <-done }()
	os.Chmod(path, 0o666) // the mistake the check guards against

	cmd := exec.Command(socat, "-", "UNIX-CONNECT:"+path)
	cmd.Stdin = strings.NewReader("GET /v1/status HTTP/1.0\r\n\r\n")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("socat as nobody: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "403 Forbidden") || !strings.Contains(string(out), `"code":"forbidden"`) {
		t.Errorf("unprivileged caller got:\n%s", out)
	}
	if len(f.calls) != 0 {
		t.Errorf("daemon was called for an unprivileged caller: %v", f.calls)
	}
}
