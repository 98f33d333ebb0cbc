package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestSteadiness(t *testing.T) {
	tests := []struct {
		windows []int // the last one is partial and left out
		want    string
	}{
		{[]int{10, 10, 10, 10, 3}, "10ms windows p1 1.00 p99 1.00 max 1.00 of mean"},
		{[]int{0, 10, 20, 10, 0}, "10ms windows p1 0.00 p99 1.00 max 2.00 of mean"},
		{[]int{5}, "-"},
	}
	for _, tt := range tests {
		st := sendStats{windows: tt.windows}
		for _, n := range tt.windows {
			st.sent += n
		}
		if got := st.steadiness(); got != tt.want {
			t.Errorf("steadiness(%v) = %q, want %q", tt.windows, got, tt.want)
		}
	}
}

// placement tells a process bound to one CPU with GOMAXPROCS=1 from one
// that is not, looking at a real process started under env and taskset as
// the bench starts the daemon.
func TestPlacement(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("no taskset (util-linux)")
	}
	sleep, _ = filepath.EvalSymlinks(sleep)
	start := func(args ...string) int {
		cmd := exec.Command(args[0], args[1:]...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		// Until env and taskset have exec'd the program and it has its
		// environment (exec switches the executable before it sets that).
		proc := "/proc/" + strconv.Itoa(cmd.Process.Pid)
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
			exe, _ := filepath.EvalSymlinks(proc + "/exe")
			env, _ := os.ReadFile(proc + "/environ")
			if exe == sleep && len(env) > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%v: not running %s after 10s", args, sleep)
			}
		}
		return cmd.Process.Pid
	}
	pinned := start("env", "GOMAXPROCS=1", "taskset", "-c", "0", sleep, "30")
	if desc, err := placement(pinned, 0, sleep); err != nil || !strings.Contains(desc, "every thread on CPU 0") {
		t.Errorf("pinned: %q, %v", desc, err)
	}
	if _, err := placement(pinned, 0, "/not/the/daemon"); err == nil {
		t.Error("another binary passed as the daemon")
	}
	unset := start("env", "-u", "GOMAXPROCS", "taskset", "-c", "0", sleep, "30")
	if _, err := placement(unset, 0, sleep); err == nil || !strings.Contains(err.Error(), "GOMAXPROCS=unset") {
		t.Errorf("without GOMAXPROCS: %v", err)
	}
	if runtime.NumCPU() >= 2 {
		loose := start("env", "GOMAXPROCS=1", sleep, "30")
		if _, err := placement(loose, 0, sleep); err == nil || !strings.Contains(err.Error(), "threads elsewhere") {
			t.Errorf("unpinned: %v", err)
		}
	}
}
