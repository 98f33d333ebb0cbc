package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"time"
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
	d.stop()
	if err != nil {
		return err
	}
	const idleTarget = 20 << 20
	b.add(result{section: "memory", name: "RSS idle, default config (VmRSS)", target: "≤ 20 MiB",
		value: mib(cur), ratio: fmt.Sprintf("%.2f× target; HWM %s", float64(cur)/idleTarget, mib(peak)), status: passIf(cur <= idleTarget)})

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
	// The unix datagram socket: a sender blocks while the daemon's queue is
	// full instead of losing datagrams, so every address arrives.
	c, err := net.Dial("unixgram", filepath.Join(dir, "syslog.sock"))
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	now := time.Now()
	var buf []byte
	t0 := time.Now()
	for i := 0; i < sendN; i++ {
		a := DistinctAddr(i)
		buf = AppendWire(buf[:0], now, Line{Prog: "sshd", PID: 1000 + i%30000,
			Text: fmt.Sprintf("Failed password for invalid user admin from %s port %d ssh2", a, 1024+i%60000)})
		if _, err := c.Write(buf); err != nil {
			c.Close()
			return fmt.Errorf("memory: send: %w", err)
		}
	}
	c.Close()
	got, err := d.settle(ctx, "sysban_failures_total", "sshd", float64(sendN), time.Second, 120*time.Second)
	if err != nil {
		return fmt.Errorf("memory: %w", err)
	}
	el := time.Since(t0)
	cur, peak, err = rss(d.pid())
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
	return nil
}
