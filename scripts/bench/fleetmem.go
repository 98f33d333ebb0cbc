package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sysban/sysban/procmem"
)

// The fleet section's memory figures (issue 10): the enforce-only host's
// RSS, split into anonymous memory and file pages, right after the late
// joiner's resync and over the half minute after it (while anything
// changes, the nft Guard compares the kernel sets with the store about
// every 20 s), and the collector's RSS
// with and without the fleet's bans: the embedded server's cost. The
// enforcer's file pages are split into the binary's and the state file's
// (from /proc/PID/smaps): the store hands its pages back after whole-file
// reads, and the Guard does not read it while nothing changed.

// rssParts is a process's resident set in parts, from /proc/PID/status;
// where fleetEnforcerRSS reads /proc/PID/smaps too, by mapping (the
// enforce-only host's "other files" are its sysban.db).
type rssParts struct {
	rss, anon, file, hwm int64
	mapped               *procmem.Breakdown
}

// withMappings adds the resident set by mapping, from /proc/PID/smaps.
func (r rssParts) withMappings(pid int) rssParts {
	if b, err := procmem.ReadBreakdown(pid); err == nil {
		r.mapped = &b
	}
	return r
}

func rssOf(pid int) (rssParts, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rssParts{}, fmt.Errorf("rss: %w", err)
	}
	var r rssParts
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		kb, _ := strconv.ParseInt(f[1], 10, 64)
		switch f[0] {
		case "VmRSS:":
			r.rss = kb << 10
		case "RssAnon:":
			r.anon = kb << 10
		case "RssFile:":
			r.file = kb << 10
		case "VmHWM:":
			r.hwm = kb << 10
		}
	}
	return r, nil
}

func (r rssParts) String() string {
	if r.mapped != nil {
		return fmt.Sprintf("%s; HWM %s", r.mapped, mib(r.hwm))
	}
	return fmt.Sprintf("anon %s, file %s; HWM %s", mib(r.anon), mib(r.file), mib(r.hwm))
}

// fleetEnforcerRSS adds the enforce-only host's RSS with bans fleet bans:
// one second after its resync, and the most it reached in the next 30 s.
func (b *bench) fleetEnforcerRSS(ctx context.Context, pid int, bans float64) error {
	const target = 30 << 20
	time.Sleep(time.Second) // after the resync settled
	first, err := rssOf(pid)
	if err != nil {
		return err
	}
	first = first.withMappings(pid)
	b.add(result{section: "fleet", name: fmt.Sprintf("enforce-only RSS with %s fleet bans, 1 s after", si(bans)), target: "≤ 30 MiB",
		value: mib(first.rss), ratio: fmt.Sprintf("%.2f× target; %s", float64(first.rss)/target, first), status: passIf(first.rss <= target)})
	worst := first
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(500 * time.Millisecond)
		r, err := rssOf(pid)
		if err != nil {
			return err
		}
		if r.rss > worst.rss {
			worst = r.withMappings(pid)
		}
	}
	b.add(result{section: "fleet", name: "  the most in the next 30 s (Guard checks included)", target: "≤ 30 MiB",
		value: mib(worst.rss), ratio: fmt.Sprintf("%.2f× target; %s", float64(worst.rss)/target, worst), status: passIf(worst.rss <= target)})
	return nil
}

// fleetServerCost adds the collector's RSS (it runs the embedded server)
// before and after the fleet's bans.
func (b *bench) fleetServerCost(before rssParts, pid int, bans float64) {
	after, err := rssOf(pid)
	if err != nil {
		return
	}
	b.add(result{section: "fleet", name: fmt.Sprintf("collector RSS (embedded server): few bans -> %s", si(bans)), target: "-",
		value: mib(before.rss) + " -> " + mib(after.rss), ratio: fmt.Sprintf("+%s; %s", mib(after.rss-before.rss), after), status: "INFO"})
}
