package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// bareBatch is how many datagrams the pinned bare receiver takes per
// recvmmsg: the daemon's (batchSize in receiver/listen_dgram.go).
const bareBatch = 64

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

// receiveBatches counts datagrams like receive, but with blocking reads on
// the calling thread, which must be locked (onCPU): pinned, the bare
// receiver must not hand each wake-up from the runtime's poller thread (on
// any CPU) to its own, which would make the baseline pay a cost the
// daemon's single-P runtime does not. It reads as the daemon's intake does
// (receiver/dgram_batch.go), up to bareBatch datagrams a recvmmsg; until
// run J it read one datagram a recvfrom, at 1.40 CPU-µs a datagram
// against 0.77 now. It leaves the socket blocking.
//
// Its rate is the sender's: the loopback delivers each datagram in the
// sender's CPU (softirq), and an idle receiver that sleeps between
// datagrams costs that CPU a wake-up each (a spinning receiver, tried,
// was slower still: 227k/s, the socket's lock bouncing between the CPUs).
// A busy receiver needs no wake-ups, which is why the daemon, at 80-90%
// of its CPU, can be sent more than this receiver at 30%.
func (u *bareUDP) receiveBatches(done <-chan struct{}) error {
	f, err := u.conn.File() // a dup sharing the socket and its flags
	if err != nil {
		return err
	}
	defer f.Close()
	fd := int(f.Fd())
	if err := unix.SetNonblock(fd, false); err != nil {
		return err
	}
	const quiet = 200 * time.Millisecond
	tv := unix.NsecToTimeval(quiet.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		return err
	}
	const slot = 2048 // the bench's datagrams are a few hundred bytes
	buf := make([]byte, bareBatch*slot)
	iovs := make([]unix.Iovec, bareBatch)
	hdrs := make([]unix.Mmsghdr, bareBatch)
	for i := range hdrs {
		iovs[i].Base = &buf[i*slot]
		iovs[i].SetLen(slot)
		hdrs[i].Hdr.Iov = &iovs[i]
		hdrs[i].Hdr.Iovlen = 1
	}
	defer runtime.KeepAlive(buf)
	for {
		// MSG_WAITFORONE: block for the first datagram (up to
		// SO_RCVTIMEO), then take what is queued without waiting for more.
		n, _, errno := unix.Syscall6(unix.SYS_RECVMMSG, uintptr(fd), uintptr(unsafe.Pointer(&hdrs[0])), bareBatch, unix.MSG_WAITFORONE, 0, 0)
		switch errno {
		case 0:
			u.count.Add(int64(n))
		case unix.EAGAIN, unix.EINTR:
			select {
			case <-done:
				return nil
			default:
			}
		default:
			return errno
		}
	}
}

// pinThreads binds every thread process pid has now to the CPUs in set.
// Threads it starts later inherit the mask of the thread that starts them.
func pinThreads(pid int, set *unix.CPUSet) error {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return fmt.Errorf("pin: %w", err)
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		// A thread may have ended since the directory was read.
		if err := unix.SchedSetaffinity(tid, set); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pin thread %d of %d: %w", tid, pid, err)
		}
	}
	return nil
}

// placement checks that pid runs the binary bin (an absolute path), that
// every thread of it may run on cpu alone and that it was started with
// GOMAXPROCS=1, and describes what it found.
func placement(pid, cpu int, bin string) (string, error) {
	tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", pid))
	if err != nil {
		return "", fmt.Errorf("placement: %w", err)
	}
	want := strconv.Itoa(cpu)
	var stray []string
	for _, t := range tasks {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/task/%s/status", pid, t.Name()))
		if err != nil {
			continue // ended since
		}
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Cpus_allowed_list:"); ok && strings.TrimSpace(v) != want {
				stray = append(stray, t.Name()+" on "+strings.TrimSpace(v))
			}
		}
	}
	env, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return "", fmt.Errorf("placement: %w", err)
	}
	procs := "unset"
	for _, kv := range strings.Split(string(env), "\x00") {
		if v, ok := strings.CutPrefix(kv, "GOMAXPROCS="); ok {
			procs = v
		}
	}
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	if err != nil {
		return "", fmt.Errorf("placement: %w", err)
	}
	desc := fmt.Sprintf("%s: %d threads, GOMAXPROCS=%s", filepath.Base(exe), len(tasks), procs)
	// The pid must be the daemon's own (ip netns exec, env and taskset
	// all exec), not a wrapper's.
	if len(stray) > 0 || procs != "1" || exe != bin {
		return desc, fmt.Errorf("daemon not placed on CPU %d alone with GOMAXPROCS=1: %s; threads elsewhere: %v", cpu, desc, stray)
	}
	return desc + ", every thread on CPU " + want, nil
}

// udpInErrors is the namespace's count of UDP datagrams the kernel could
// not deliver (Udp InErrors in /proc/net/snmp: full receive buffers,
// RcvbufErrors, and checksum errors), read on a thread inside ns.
func udpInErrors(ns *netns) (uint64, error) {
	var n uint64
	err := ns.do(func() error {
		b, err := os.ReadFile("/proc/thread-self/net/snmp")
		if err != nil {
			return err
		}
		var head []string
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != "Udp:" {
				continue
			}
			if head == nil {
				head = f
				continue
			}
			for i, name := range head {
				if name == "InErrors" && i < len(f) {
					n, err = strconv.ParseUint(f[i], 10, 64)
					return err
				}
			}
		}
		return fmt.Errorf("no Udp InErrors in /proc/net/snmp")
	})
	if err != nil {
		return 0, fmt.Errorf("udp kernel drops: %w", err)
	}
	return n, nil
}
