package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"time"

	"github.com/sysban/sysban/procmem"
)

func (b *bench) sectionMemory(ctx context.Context) error {
	ns, err := b.newNS(ctx)
	if err != nil {
		return err
	}
	defer ns.Close()

	// Idle, default config: only the paths are moved into the work dir.
	dir := filepath.Join(b.dir, "mem-idle")
	d, err := startDaemon(ctx, b.bin, ns, dir, daemonConfig(dir, ""))
	if err != nil {
		return err
	}
	// Idle means after start-up has settled; a fixed pause is the
	// definition here, not a wait for an event.
	time.Sleep(2 * time.Second)
	cur, peak, err := rss(d.pid())
	if err != nil {
		d.stop()
		return err
	}
	parts, err := procmem.ReadBreakdown(d.pid())
	if err != nil {
		d.stop()
		return err
	}
	const idleTarget = 20 << 20
	b.add(result{section: "memory", name: "RSS idle, default config (VmRSS)", target: "≤ 20 MiB",
		value: mib(cur), ratio: fmt.Sprintf("%.2f× target; HWM %s", float64(cur)/idleTarget, mib(peak)), status: passIf(cur <= idleTarget)})
	b.add(partsRow("  idle, by part (smaps)", parts))
	// The daemon returns the binary's pages only start-up touched; what
	// the receive and match path maps back shows once it has run: 10,000
	// failing lines from 1,000 addresses (a ban each), then idle again.
	if err := sendFailing(filepath.Join(dir, "syslog.sock"), 10000, func(i int) netip.Addr { return DistinctAddr(i % 1000) }); err != nil {
		d.stop()
		return err
	}
	if _, err := d.settle(ctx, "sysban_failures_total", "sshd", 10000, time.Second, 60*time.Second); err != nil {
		d.stop()
		return fmt.Errorf("memory: %w", err)
	}
	time.Sleep(2 * time.Second)
	after, err := procmem.ReadBreakdown(d.pid())
	d.stop()
	if err != nil {
		return err
	}
	row := partsRow("  idle after 10k failing lines, by part", after)
	row.value = mib(int64(after.Total())) + ": " + row.value
	b.add(row)

	// Many distinct failing addresses: maxtracked = distinct, and 10%
	// more addresses than that, so the bound and its evictions show.
	dir = filepath.Join(b.dir, "mem-distinct")
	n := b.opts.distinct
	sendN := n + n/10
	d, err = startDaemon(ctx, b.bin, ns, dir, daemonConfig(dir, ingestConfig(n)))
	if err != nil {
		return err
	}
	defer d.stop()
	_, idlePeak, _ := rss(d.pid())
	t0 := time.Now()
	if err := sendFailing(filepath.Join(dir, "syslog.sock"), sendN, DistinctAddr); err != nil {
		return err
	}
	got, err := d.settle(ctx, "sysban_failures_total", "sshd", float64(sendN), time.Second, 120*time.Second)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	el := time.Since(t0)
	cur, peak, err = rss(d.pid())
	if err != nil {
		return err
	}
	busy, err := procmem.ReadBreakdown(d.pid())
	if err != nil {
		return err
	}
	s, err := d.scrape()
	if err != nil {
		return err
	}
	ev := s.sum("sysban_tracked_evicted_total", "")
	const busyTarget = 256 << 20
	b.add(result{section: "memory", name: fmt.Sprintf("RSS, %s distinct failing (VmHWM)", si(float64(sendN))), target: "≤ 256 MiB",
		value: mib(peak), ratio: fmt.Sprintf("%.2f× target; now %s", float64(peak)/busyTarget, mib(cur)), status: passIf(peak <= busyTarget)})
	b.add(result{section: "memory", name: fmt.Sprintf("  maxtracked %s: evictions, failures", si(float64(n))), target: fmt.Sprintf("%d", sendN-n),
		value: fmt.Sprintf("%.0f, %.0f", ev, got), ratio: fmt.Sprintf("in %s; start HWM %s", el.Round(time.Millisecond), mib(idlePeak)),
		status: passIf(int(ev) == sendN-n && int(got) == sendN)})
	b.add(partsRow("  now, by part", busy))
	return nil
}

// sendFailing writes n failed sshd logins to the daemon's unix datagram
// socket, the i-th from addr(i). A sender on that socket blocks while the
// daemon's queue is full instead of losing datagrams, so every line
// arrives.
func sendFailing(sock string, n int, addr func(int) netip.Addr) error {
	c, err := net.Dial("unixgram", sock)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	defer c.Close()
	now := time.Now()
	var buf []byte
	for i := 0; i < n; i++ {
		buf = AppendWire(buf[:0], now, Line{Prog: "sshd", PID: 1000 + i%30000,
			Text: fmt.Sprintf("Failed password for invalid user admin from %s port %d ssh2", addr(i), 1024+i%60000)})
		if _, err := c.Write(buf); err != nil {
			return fmt.Errorf("memory: send: %w", err)
		}
	}
	return nil
}

// partsRow is a row of where a resident set is: anonymous memory and the
// file pages, the binary's by section.
func partsRow(name string, p procmem.Breakdown) result {
	return result{section: "memory", name: name, target: "-",
		value: fmt.Sprintf("anon %s, file %s", mib(int64(p.Anon)), mib(int64(p.File()))),
		ratio: fmt.Sprintf("binary's code %s, read-only data %s, data %s; other files %s",
			mib(int64(p.ExeCode)), mib(int64(p.ExeReadOnly)), mib(int64(p.ExeData)), mib(int64(p.OtherFiles))),
		status: "-"}
}
