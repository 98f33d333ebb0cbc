package main

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// On a machine with few cores an unpinned UDP run measures the sender as
// much as the receiver: both want a core, and the scheduler decides who
// waits. With -pin the sender runs on CPU senderCPU and the receiver under
// test (the bare one, then the daemon with GOMAXPROCS=1) on receiverCPU,
// so each has a core of its own and the figures compare receivers only.
const (
	senderCPU   = 0
	receiverCPU = 1
)

// onCPU runs f on an OS thread of its own bound to cpu (cpu < 0: where the
// scheduler likes) and returns the CPU time that thread used. The thread is
// never unlocked, so it ends with f and no other goroutine inherits the
// binding.
func onCPU(cpu int, f func()) (time.Duration, error) {
	type outcome struct {
		cpu time.Duration
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		runtime.LockOSThread()
		if cpu >= 0 {
			var set unix.CPUSet
			set.Set(cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				done <- outcome{err: fmt.Errorf("pin to CPU %d: %w", cpu, err)}
				return
			}
		}
		before := threadCPU()
		f()
		done <- outcome{cpu: threadCPU() - before}
	}()
	o := <-done
	return o.cpu, o.err
}

// threadCPU is the calling thread's user+system time.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// processCPU is process pid's user+system time from /proc/PID/stat.
func processCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// Fields after the command name, which may hold spaces, in parentheses.
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: utime %q stime %q", pid, f[11], f[12])
	}
	const ticks = 100 // USER_HZ on Linux
	return time.Duration(utime+stime) * time.Second / ticks, nil
}

// usPerMsg is CPU microseconds per message.
func usPerMsg(cpu time.Duration, msgs float64) string {
	if msgs <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.2f CPU-µs/msg", float64(cpu.Microseconds())/msgs)
}

// receiveBlocking counts datagrams like receive, but with blocking reads on
// the calling thread: pinned, the bare receiver must not hand each wake-up
// from the runtime's poller thread (on any CPU) to its own, which would
// make the baseline pay a cost the daemon's single-P runtime does not.
// Call it on a locked thread (onCPU). It leaves the socket blocking.
func (u *bareUDP) receiveBlocking(done <-chan struct{}) error {
	f, err := u.conn.File() // a dup sharing the socket and its flags
	if err != nil {
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	if err := unix.SetNonblock(fd, false); err != nil {
		return err
	}
	tv := unix.NsecToTimeval((200 * time.Millisecond).Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	buf := make([]byte, 65536)
	for {
		_, _, err := unix.Recvfrom(fd, buf, 0)
		switch err {
		case nil:
			u.count.Add(1)
		case unix.EAGAIN, unix.EINTR:
			select {
			case <-done:
				return nil
			default:
			}
		default:
			return err
		}
	}
}
