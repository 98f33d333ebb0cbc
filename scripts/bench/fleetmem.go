package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"
)

// The fleet section's memory figures (issue 10): the enforce-only host's
// RSS, split into anonymous memory and file pages, right after the late
// joiner's resync and over the half minute after it (the nft Guard compares
// the kernel sets with the store about every 20 s), and the collector's RSS
// with and without the fleet's bans: the embedded server's cost. The
// enforcer's file pages are split into the binary's and the state file's
// (from /proc/PID/smaps): the store hands its pages back after whole-file
// reads, and the Guard does not read it while nothing changed.

// rssParts is a process's resident set in parts, from /proc/PID/status;
// where fleetEnforcerRSS reads /proc/PID/smaps too, the file pages split
// into the binary's and the state file's (sysban.db).
type rssParts struct {
	rss, anon, file, hwm int64
	bin, db              int64
	mapped               bool // bin and db were read
}

// withMappings adds the split of the file pages from /proc/PID/smaps: the
// resident pages of the mappings of the executable and of the state file.
func (r rssParts) withMappings(pid int) rssParts {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps", pid))
	if err != nil {
		return r
	}
	exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	var cur *int64
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 5 && strings.Contains(f[0], "-") && !strings.HasSuffix(f[0], ":"):
			cur = nil
			if len(f) >= 6 && exe != "" && f[5] == exe {
				cur = &r.bin
			} else if len(f) >= 6 && strings.HasSuffix(f[5], "/sysban.db") {
				cur = &r.db
			}
		case cur != nil && len(f) >= 2 && f[0] == "Rss:":
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			*cur += kb << 10
		}
	}
	r.mapped = true
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
	if r.mapped {
		return fmt.Sprintf("anon %s, file %s (binary %s, sysban.db %s); HWM %s", mib(r.anon), mib(r.file), mib(r.bin), mib(r.db), mib(r.hwm))
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
