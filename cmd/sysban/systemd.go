package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// systemd speaks the service manager's notify protocol (sd_notify(3)) by
// hand: each state is one datagram of KEY=VALUE lines to the unix socket
// NOTIFY_SOCKET names (a path, or "@name" for the abstract namespace, which
// Go's net package maps to a leading NUL). It is a few lines, so no library.
//
// A zero systemd (not started by systemd, or started with Type=simple)
// does nothing: every method is safe to call.
type systemd struct {
	addr     *net.UnixAddr // nil: not under systemd's notify protocol
	watchdog time.Duration // WatchdogSec, 0 when off
}

// newSystemd reads NOTIFY_SOCKET, WATCHDOG_USEC and WATCHDOG_PID from
// environ. The watchdog is for pid only: WATCHDOG_PID names the process
// systemd watches, and a child that inherited the variables must not ping.
func newSystemd(environ []string, pid int) (*systemd, error) {
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	s := &systemd{}
	sock := env["NOTIFY_SOCKET"]
	if sock == "" {
		return s, nil
	}
	if sock[0] != '/' && sock[0] != '@' {
		return nil, fmt.Errorf("systemd: NOTIFY_SOCKET=%q is neither a path nor an abstract @name", sock)
	}
	s.addr = &net.UnixAddr{Name: sock, Net: "unixgram"}
	if usec := env["WATCHDOG_USEC"]; usec != "" {
		if p := env["WATCHDOG_PID"]; p != "" && p != strconv.Itoa(pid) {
			return s, nil
		}
		n, err := strconv.ParseUint(usec, 10, 63)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("systemd: WATCHDOG_USEC=%q is not a positive number of microseconds", usec)
		}
		s.watchdog = time.Duration(n) * time.Microsecond
	}
	return s, nil
}

// notify sends one state, e.g. "READY=1\nSTATUS=serving".
func (s *systemd) notify(state string) error {
	if s.addr == nil {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, s.addr)
	if err != nil {
		return fmt.Errorf("systemd: notify socket %s: %w", s.addr.Name, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(state)); err != nil {
		return fmt.Errorf("systemd: notify %q: %w", state, err)
	}
	return nil
}

// health says why the daemon should not be considered alive, or nil.
type health func() error

// runWatchdog pings systemd's watchdog at half its interval for as long as
// healthy says so, until ctx is done. An unhealthy look withholds the ping
// and says why in STATUS; systemd restarts the service once a whole
// interval passes without one. The pings come from this goroutine, so a
// daemon whose main loop has returned stops pinging too.
func (s *systemd) runWatchdog(ctx context.Context, healthy health, log *slog.Logger) {
	if s.addr == nil || s.watchdog <= 0 {
		return
	}
	t := time.NewTicker(s.watchdog / 2)
	defer t.Stop()
	var lastBad string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := healthy(); err != nil {
			if err.Error() != lastBad {
				log.Error("watchdog: unhealthy, withholding the ping; systemd restarts sysban if this lasts", "err", err)
				lastBad = err.Error()
			}
			_ = s.notify("STATUS=unhealthy: " + err.Error())
			continue
		}
		state := "WATCHDOG=1"
		if lastBad != "" {
			log.Info("watchdog: healthy again")
			lastBad = ""
			state += "\nSTATUS=serving"
		}
		if err := s.notify(state); err != nil {
			log.Warn("watchdog: ping failed", "err", err)
		}
	}
}

// progress is what workerHealth needs of the pipeline.
type progress interface {
	WorkerProgress() (queued int, batches uint64)
}

// workerHealth reports the ban worker stuck when bans were queued at two
// successive looks and no batch finished in between: the worker is inside
// an Apply that does not return (a wedged netlink socket, a store that
// does not commit). Listeners and the other stages stop the daemon when
// they fail, which stops the pings by itself.
func workerHealth(p progress) health {
	var lastBatches uint64
	var lastQueued bool
	return func() error {
		queued, batches := p.WorkerProgress()
		stuck := lastQueued && queued > 0 && batches == lastBatches
		lastBatches, lastQueued = batches, queued > 0
		if stuck {
			return errors.New("ban worker: " + strconv.Itoa(queued) + " bans queued and no batch applied since the last look")
		}
		return nil
	}
}

// sdReloading is the state sent when a reload starts; systemd wants the
// monotonic clock with it to tell this reload from an earlier one.
func sdReloading() string {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return "RELOADING=1"
	}
	return fmt.Sprintf("RELOADING=1\nMONOTONIC_USEC=%d", ts.Nano()/1000)
}
