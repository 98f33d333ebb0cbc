package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestNewSystemd(t *testing.T) {
	tests := []struct {
		name     string
		env      []string
		wantAddr string
		wantDog  time.Duration
		wantErr  string
	}{
		{"not under systemd", []string{"HOME=/"}, "", 0, ""},
		{"path", []string{"NOTIFY_SOCKET=/run/systemd/notify"}, "/run/systemd/notify", 0, ""},
		{"abstract", []string{"NOTIFY_SOCKET=@/org/freedesktop/systemd1/notify/42"}, "@/org/freedesktop/systemd1/notify/42", 0, ""},
		{"watchdog for us", []string{"NOTIFY_SOCKET=/n", "WATCHDOG_USEC=30000000", "WATCHDOG_PID=7"}, "/n", 30 * time.Second, ""},
		{"watchdog without pid", []string{"NOTIFY_SOCKET=/n", "WATCHDOG_USEC=500000"}, "/n", 500 * time.Millisecond, ""},
		{"watchdog for another process", []string{"NOTIFY_SOCKET=/n", "WATCHDOG_USEC=30000000", "WATCHDOG_PID=8"}, "/n", 0, ""},
		{"relative socket", []string{"NOTIFY_SOCKET=notify"}, "", 0, "neither a path nor an abstract"},
		{"bad watchdog", []string{"NOTIFY_SOCKET=/n", "WATCHDOG_USEC=soon"}, "", 0, "WATCHDOG_USEC"},
		{"zero watchdog", []string{"NOTIFY_SOCKET=/n", "WATCHDOG_USEC=0"}, "", 0, "WATCHDOG_USEC"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := newSystemd(tt.env, 7)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var addr string
			if s.addr != nil {
				addr = s.addr.Name
			}
			if addr != tt.wantAddr || s.watchdog != tt.wantDog {
				t.Errorf("addr %q watchdog %v, want %q %v", addr, s.watchdog, tt.wantAddr, tt.wantDog)
			}
		})
	}
}

// notifyListener is systemd's end of the protocol: a datagram socket the
// test reads states from.
func notifyListener(t *testing.T, name string) (*net.UnixConn, <-chan string) {
	t.Helper()
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	states := make(chan string, 64)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := c.Read(buf)
			if err != nil {
				close(states)
				return
			}
			states <- string(buf[:n])
		}
	}()
	return c, states
}

func next(t *testing.T, states <-chan string) string {
	t.Helper()
	select {
	case s := <-states:
		return s
	case <-time.After(30 * time.Second):
		t.Fatal("no notification within 30s")
		return ""
	}
}

func TestNotifySockets(t *testing.T) {
	for _, name := range []string{
		filepath.Join(t.TempDir(), "notify"),
		fmt.Sprintf("@sysban-test-notify-%d", os.Getpid()),
	} {
		t.Run(name, func(t *testing.T) {
			_, states := notifyListener(t, name)
			s, err := newSystemd([]string{"NOTIFY_SOCKET=" + name}, 1)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.notify("READY=1\nSTATUS=serving"); err != nil {
				t.Fatal(err)
			}
			if got := next(t, states); got != "READY=1\nSTATUS=serving" {
				t.Errorf("got %q", got)
			}
		})
	}
	// Nobody listening: an error naming the socket, not a hang.
	s, _ := newSystemd([]string{"NOTIFY_SOCKET=" + filepath.Join(t.TempDir(), "gone")}, 1)
	if err := s.notify("READY=1"); err == nil || !strings.Contains(err.Error(), "gone") {
		t.Errorf("notify to a missing socket: %v", err)
	}
	// Not under systemd: nothing to do, no error.
	if err := (&systemd{}).notify("READY=1"); err != nil {
		t.Errorf("zero systemd: %v", err)
	}
}

// The watchdog pings while healthy, withholds pings (saying why in
// STATUS) while unhealthy, and resumes after.
func TestRunWatchdog(t *testing.T) {
	name := filepath.Join(t.TempDir(), "notify")
	_, states := notifyListener(t, name)
	s, err := newSystemd([]string{"NOTIFY_SOCKET=" + name, "WATCHDOG_USEC=20000"}, 1)
	if err != nil {
		t.Fatal(err)
	}
	verdicts := make(chan error)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		s.runWatchdog(ctx, func() error { return <-verdicts }, slog.New(slog.NewTextHandler(io.Discard, nil)))
		close(done)
	}()
	steps := []struct {
		verdict error
		want    string
	}{
		{nil, "WATCHDOG=1"},
		{errors.New("ban worker: 3 bans queued"), "STATUS=unhealthy: ban worker: 3 bans queued"},
		{errors.New("ban worker: 3 bans queued"), "STATUS=unhealthy: ban worker: 3 bans queued"},
		{nil, "WATCHDOG=1\nSTATUS=serving"},
		{nil, "WATCHDOG=1"},
	}
	for i, st := range steps {
		verdicts <- st.verdict
		if got := next(t, states); got != st.want {
			t.Errorf("step %d: sent %q, want %q", i, got, st.want)
		}
	}
	cancel()
	select {
	case <-done:
	case verdicts <- nil: // the ticker fired before cancel was seen
		<-done
	}
}

type fakeProgress struct {
	queued  int
	batches uint64
}

func (f *fakeProgress) WorkerProgress() (int, uint64) { return f.queued, f.batches }

func TestWorkerHealth(t *testing.T) {
	p := &fakeProgress{}
	h := workerHealth(p)
	steps := []struct {
		queued    int
		batches   uint64
		wantStuck bool
	}{
		{0, 0, false}, // idle
		{0, 0, false}, // idle for long is fine
		{5, 0, false}, // work arrived: give the worker a period
		{5, 1, false}, // a batch finished: progress
		{3, 1, true},  // queued twice, no batch in between: stuck
		{3, 1, true},  // still stuck
		{0, 2, false}, // recovered
		{4, 2, false}, // new work after an idle look
		{0, 2, false}, // taken into a batch that is being applied
	}
	for i, st := range steps {
		p.queued, p.batches = st.queued, st.batches
		err := h()
		if (err != nil) != st.wantStuck {
			t.Errorf("step %d (queued %d batches %d): %v, want stuck=%v", i, st.queued, st.batches, err, st.wantStuck)
		}
	}
}
