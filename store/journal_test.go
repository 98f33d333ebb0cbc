package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

// fakeKernel is an Applier that remembers what it was given and can fail.
type fakeKernel struct {
	mu    sync.Mutex
	calls [][]sysban.Ban
	err   error
}

func (k *fakeKernel) Apply(_ context.Context, bans []sysban.Ban) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	k.calls = append(k.calls, slices.Clone(bans))
	return k.err
}

func (k *fakeKernel) applied() []string {
	k.mu.Lock()
	defer k.mu.Unlock()
	var out []string
	for _, c := range k.calls {
		for _, b := range c {
			out = append(out, b.Jail+" "+b.Addr.String())
		}
	}
	slices.Sort(out)
	return out
}

func ban(jail, addr string, start time.Time) sysban.Ban {
	return sysban.Ban{Jail: jail, Addr: netip.MustParseAddr(addr), Start: start, Duration: time.Hour, Failures: 3}
}

func TestJournal(t *testing.T) {
	kernelDown := errors.New("netlink: operation not permitted")
	cases := []struct {
		name        string
		bans        []sysban.Ban
		kernelErr   error
		closeStore  bool
		wantErr     []string // substrings; none means nil
		wantStored  []string
		wantApplied []string
	}{
		{
			name:        "both succeed",
			bans:        []sysban.Ban{ban("sshd", "192.0.2.1", t0), ban("sshd", "2001:db8::1", t0)},
			wantStored:  []string{"sshd 192.0.2.1", "sshd 2001:db8::1"},
			wantApplied: []string{"sshd 192.0.2.1", "sshd 2001:db8::1"},
		},
		{
			name:        "kernel fails: record stays for restore",
			bans:        []sysban.Ban{ban("sshd", "192.0.2.1", t0)},
			kernelErr:   kernelDown,
			wantErr:     []string{"store: journal: netlink: operation not permitted"},
			wantStored:  []string{"sshd 192.0.2.1"},
			wantApplied: []string{"sshd 192.0.2.1"},
		},
		{
			name:        "invalid bans skipped, the rest proceed",
			bans:        []sysban.Ban{{Jail: "sshd", Start: t0, Duration: time.Hour}, ban("sshd", "192.0.2.2", t0), ban("", "192.0.2.3", t0)},
			wantErr:     []string{"invalid address", "empty jail name"},
			wantStored:  []string{"sshd 192.0.2.2"},
			wantApplied: []string{"sshd 192.0.2.2"},
		},
		{
			name:        "store fails: the kernel still bans, error says not durable",
			bans:        []sysban.Ban{ban("sshd", "192.0.2.4", t0)},
			closeStore:  true,
			wantErr:     []string{"bans not durable"},
			wantApplied: []string{"sshd 192.0.2.4"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newClock()
			s, _ := openTest(t, c)
			k := &fakeKernel{err: tc.kernelErr}
			j := NewJournal(s, k, WithSource("test"))
			if tc.closeStore {
				s.Close()
			}
			err := j.Apply(context.Background(), tc.bans)
			if len(tc.wantErr) == 0 && err != nil {
				t.Errorf("Apply: %v", err)
			}
			for _, w := range tc.wantErr {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("Apply error %v, want it to contain %q", err, w)
				}
			}
			if got := k.applied(); !slices.Equal(got, tc.wantApplied) {
				t.Errorf("applied %v, want %v", got, tc.wantApplied)
			}
			if tc.closeStore {
				return
			}
			due, err := s.Due(t0)
			if err != nil {
				t.Fatal(err)
			}
			if got := keys(due); !slices.Equal(got, tc.wantStored) {
				t.Errorf("stored %v, want %v", got, tc.wantStored)
			}
			for _, r := range due {
				if r.Source != "test" || r.Failures != 3 {
					t.Errorf("stored %+v, want source test and 3 failures", r)
				}
			}
		})
	}
}

var t0 = time.Date(2026, 11, 21, 11, 30, 0, 0, time.UTC)

func TestJournalFillsZeroStart(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	k := &fakeKernel{}
	in := []sysban.Ban{{Jail: "sshd", Addr: netip.MustParseAddr("192.0.2.1"), Duration: time.Hour}}
	if err := NewJournal(s, k).Apply(context.Background(), in); err != nil {
		t.Fatal(err)
	}
	if !in[0].Start.IsZero() {
		t.Error("Apply wrote to the caller's slice")
	}
	if got := k.calls[0][0].Start; !got.Equal(c.Now()) {
		t.Errorf("kernel got start %v, want the store's now %v", got, c.Now())
	}
	due, _ := s.Due(c.Now())
	if len(due) != 1 || !due[0].Start.Equal(c.Now()) || due[0].Source != "pipeline" {
		t.Errorf("stored %+v", due)
	}
}

func TestRestore(t *testing.T) {
	c := newClock()
	s, _ := openTest(t, c)
	start := c.Now().Add(-30 * time.Minute)
	var recs []Record
	for i := range 25 {
		recs = append(recs, Record{Ban: sysban.Ban{Jail: "sshd", Addr: addrN(i), Start: start, Duration: time.Hour}})
	}
	recs = append(recs, Record{Ban: sysban.Ban{Jail: "sshd", Addr: addrN(99), Start: start, Duration: time.Minute}}) // over
	mustRecord(t, s, recs...)
	k := &fakeKernel{}
	n, err := s.Restore(context.Background(), k, c.Now(), 10)
	if err != nil || n != 25 {
		t.Fatalf("Restore = %d, %v; want 25", n, err)
	}
	if len(k.calls) != 3 || len(k.calls[0]) != 10 || len(k.calls[2]) != 5 {
		t.Errorf("Restore batches: %d calls", len(k.calls))
	}
	// Original start and duration: the kernel computes the remaining 30 minutes.
	if b := k.calls[0][0]; !b.Start.Equal(start) || b.Duration != time.Hour {
		t.Errorf("restored ban %+v lost its start or duration", b)
	}
	if n, _ := s.Offences("sshd", pfx(addrN(0).String())); n != 1 {
		t.Errorf("Restore counted as a new offence: %d", n)
	}
	k.err = errors.New("boom")
	if _, err := s.Restore(context.Background(), k, c.Now(), 0); err == nil || !strings.Contains(err.Error(), "store: restore: boom") {
		t.Errorf("Restore with a failing kernel: %v", err)
	}
}

const crashEnv = "SYSBAN_STORE_CRASH_DB"

// TestCrashChild is the child of TestKillNineLosesNoReportedBan: it
// journals bans in a loop and prints each one Apply returned nil for.
func TestCrashChild(t *testing.T) {
	path := os.Getenv(crashEnv)
	if path == "" {
		t.Skip("only runs as the child of TestKillNineLosesNoReportedBan")
	}
	s, err := Open(path, Options{Logger: quietLogger()})
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	j := NewJournal(s, &fakeKernel{}) // keeps every batch; the process dies long before it matters
	w := bufio.NewWriter(os.Stdout)
	fmt.Fprintln(w, "READY")
	w.Flush()
	base, err := strconv.Atoi(os.Getenv(crashEnv + "_BASE"))
	if err != nil {
		fmt.Println("ERR", err)
		os.Exit(1)
	}
	r := rand.New(rand.NewPCG(uint64(os.Getpid()), 1))
	deadline := time.Now().Add(time.Minute) // never outlive a parent that died
	for i := base; time.Now().Before(deadline); {
		n := 1 + r.IntN(40)
		bans := make([]sysban.Ban, n)
		for k := range bans {
			bans[k] = sysban.Ban{Jail: []string{"sshd", "postfix"}[i%2], Addr: addrN(i), Start: time.Now(), Duration: time.Hour}
			i++
		}
		if err := j.Apply(context.Background(), bans); err != nil {
			fmt.Println("ERR", err)
			os.Exit(1)
		}
		for _, b := range bans {
			fmt.Fprintln(w, "BAN", b.Jail, b.Addr)
		}
		w.Flush() // reported only now, after Apply returned nil
	}
	os.Exit(0)
}

// TestKillNineLosesNoReportedBan kills a journaling process with SIGKILL at
// random moments and checks that every ban it reported applied is in Due
// after reopening.
func TestKillNineLosesNoReportedBan(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test re-executes the test binary 20 times")
	}
	path := filepath.Join(t.TempDir(), FileName)
	total := 0
	for run := range 20 {
		cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.count=1")
		// Each run bans its own addresses, so its reports are checked on their own.
		cmd.Env = append(os.Environ(), crashEnv+"="+path, fmt.Sprintf("%s_BASE=%d", crashEnv, run*200_000))
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		var reported []string
		var killer *time.Timer
		for sc.Scan() {
			line := sc.Text()
			switch {
			case line == "READY":
				// Kill at a random moment of the Record/Apply loop.
				killer = time.AfterFunc(time.Duration(rand.IntN(150_000))*time.Microsecond, func() { cmd.Process.Kill() })
			case strings.HasPrefix(line, "BAN "):
				reported = append(reported, strings.TrimPrefix(line, "BAN "))
			case strings.HasPrefix(line, "ERR "):
				t.Fatalf("run %d: child: %s", run, line)
			}
		}
		if killer == nil {
			t.Fatalf("run %d: child never got ready", run)
		}
		err = cmd.Wait()
		if ee := (*exec.ExitError)(nil); !errors.As(err, &ee) || ee.ProcessState.String() != "signal: killed" {
			t.Fatalf("run %d: child did not die of SIGKILL: %v", run, err)
		}

		s, err := Open(path, Options{Logger: quietLogger()})
		if err != nil {
			t.Fatalf("run %d: reopen after kill -9: %v", run, err)
		}
		due, err := s.Due(time.Now())
		s.Close()
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		have := map[string]bool{}
		for _, r := range due {
			have[key(r)] = true
		}
		for _, b := range reported {
			if !have[b] {
				t.Fatalf("run %d: ban %s was reported applied but is not in Due after kill -9 (%d reported, %d due)", run, b, len(reported), len(due))
			}
		}
		total += len(reported)
		t.Logf("run %d: %d bans reported, %d due after kill -9", run, len(reported), len(due))
	}
	if total == 0 {
		t.Fatal("no child reported any ban: the test checked nothing")
	}
}
