package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/google/nftables"
	"golang.org/x/sys/unix"

	"github.com/sysban/sysban/nft"
)

// probeAddr is the i-th probe address, in the benchmarking range
// 198.18.0.0/15 (RFC 2544): never an attacker of the generated traffic.
func probeAddr(i int) netip.Addr {
	return netip.AddrFrom4([4]byte{198, 18 + byte(i>>16&1), byte(i >> 8), byte(i)})
}

// sectionLatency measures from sending the deciding message to the address
// being in the kernel set. The probe jail bans at the first failure, so
// every probe message is a deciding one. The kernel set is read through
// netlink (a second, read-only connection) in a loop; the
// figure includes the UDP hop and the poll period, which is reported.
func (b *bench) sectionLatency(ctx context.Context) error {
	ns, err := b.newNS(ctx)
	if err != nil {
		return err
	}
	defer ns.Close()
	dir := filepath.Join(b.dir, "latency")
	d, err := startDaemon(ctx, b.bin, ns, dir, daemonConfig(dir, ingestConfig(100000)))
	if err != nil {
		return err
	}
	defer d.stop()
	nc, set, closeSet, err := openSet(ns, nft.DefaultTable, "benchprobe_v4")
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	defer closeSet()
	pc, err := ns.dial("udp", "127.0.0.1:5514")
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	defer pc.Close()

	next := 0
	measure := func(cond string, target time.Duration) error {
		r, err := probeLatency(nc, set, pc, next, b.opts.samples)
		next += b.opts.samples
		if err != nil {
			return fmt.Errorf("latency %s: %w", cond, err)
		}
		b.addLatency("latency", "ban p50 / p99, "+cond, target, r)
		return nil
	}
	if err := measure("idle", 5*time.Millisecond); err != nil {
		return err
	}

	// Background load: 100k msgs/s of generated traffic on another socket.
	tr, err := makeTraffic(b.opts.seed+7, b.opts.attackers, 65536)
	if err != nil {
		return err
	}
	lc, err := ns.dial("udp", "127.0.0.1:5514")
	if err != nil {
		return fmt.Errorf("latency: %w", err)
	}
	defer lc.Close()
	loadCtx, stopLoad := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var loadSent int
	wg.Add(1)
	go func() {
		defer wg.Done()
		loadSent = udpSender(loadCtx, lc, tr.msgs, 100_000, time.Hour)
	}()
	t0 := time.Now()
	// Let the load reach its steady state before the first probe.
	time.Sleep(500 * time.Millisecond)
	err = measure("ingesting 100k/s", 50*time.Millisecond)
	stopLoad()
	wg.Wait()
	if err != nil {
		return err
	}
	b.add(result{section: "latency", name: "  background load actually sent", target: "100k/s",
		value: si(rate(float64(loadSent), time.Since(t0))) + "/s", ratio: "-", status: "INFO"})
	return nil
}

// openSet opens a netlink connection in ns and finds set in the inet
// table. A plain connection reads the set: nft.Backend only knows the jails
// of its own Setup, and a Setup here would rewrite the table.
func openSet(ns *netns, table, set string) (*nftables.Conn, *nftables.Set, func(), error) {
	fd, err := ns.fd()
	if err != nil {
		return nil, nil, nil, err
	}
	nc, err := nftables.New(nftables.WithNetNSFd(fd))
	if err != nil {
		unix.Close(fd)
		return nil, nil, nil, err
	}
	closeAll := func() { nc.CloseLasting(); unix.Close(fd) }
	s, err := nc.GetSetByName(&nftables.Table{Name: table, Family: nftables.TableFamilyINet}, set)
	if err != nil {
		closeAll()
		return nil, nil, nil, err
	}
	return nc, s, closeAll, nil
}

// latencies are the probe latencies of one condition, sorted.
type latencies struct {
	lat      []time.Duration
	lost     int
	meanPoll time.Duration
	// notified: timed by the kernel's change notification (fleetwatch.go),
	// not by polling; overflows are lost notification batches.
	notified  bool
	overflows int
}

// probeLatency sends n probe messages (probe addresses from first on) to
// pc, one at a time, and times each until its address is in set, read by
// polling nc. A probe not in the set within 2 s is lost.
func probeLatency(nc *nftables.Conn, set *nftables.Set, pc net.Conn, first, n int) (latencies, error) {
	return probeLatencyOf(nc, set, pc, "benchprobe", first, n)
}

// probeLatencyOf is probeLatency with the probes logged by program prog.
func probeLatencyOf(nc *nftables.Conn, set *nftables.Set, pc net.Conn, prog string, first, n int) (latencies, error) {
	var r latencies
	var polls int
	var pollTime time.Duration
	for i := range n {
		key, t0, err := sendProbe(pc, prog, first+i)
		if err != nil {
			return r, err
		}
		found := false
		for time.Since(t0) < 2*time.Second {
			p0 := time.Now()
			els, err := nc.GetSetElements(set)
			pollTime += time.Since(p0)
			polls++
			if err != nil {
				return r, err
			}
			if slices.ContainsFunc(els, func(e nftables.SetElement) bool { return bytes.Equal(e.Key, key[:]) }) {
				found = true
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		if !found {
			r.lost++
			continue
		}
		r.lat = append(r.lat, time.Since(t0))
	}
	if len(r.lat) == 0 {
		return r, errors.New("no probe was banned within 2 s")
	}
	slices.Sort(r.lat)
	r.meanPoll = pollTime / time.Duration(max(polls, 1))
	return r, nil
}

// sendProbe sends the deciding message of the i-th probe address, logged
// by program prog: its set key, and when it was sent.
func sendProbe(pc net.Conn, prog string, i int) (key [4]byte, sent time.Time, err error) {
	a := probeAddr(i)
	msg := AppendWire(nil, time.Now(), Line{Prog: prog, PID: 1, Text: "bench probe failure from " + a.String()})
	sent = time.Now()
	if _, err := pc.Write(msg); err != nil {
		return key, sent, fmt.Errorf("send: %w", err)
	}
	return a.As4(), sent, nil
}

// addLatency adds the p50/p99 row of r against target and its detail row.
func (b *bench) addLatency(section, name string, target time.Duration, r latencies) {
	p50, p99 := r.lat[len(r.lat)/2], r.lat[min(len(r.lat)-1, len(r.lat)*99/100)]
	b.add(result{section: section, name: name, target: fmt.Sprintf("p99 ≤ %s", target),
		value: fmt.Sprintf("%s / %s", p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond)),
		ratio: fmt.Sprintf("%.2f× target", float64(p99)/float64(target)), status: passIf(p99 <= target && r.lost == 0)})
	if r.notified {
		b.add(result{section: section, name: "  samples, lost; timed by", target: "-",
			value: fmt.Sprintf("%d, %d", len(r.lat), r.lost), ratio: fmt.Sprintf("nft notification (%d overruns)", r.overflows), status: "INFO"})
		return
	}
	b.add(result{section: section, name: "  samples, lost, poll read time", target: "-",
		value: fmt.Sprintf("%d, %d", len(r.lat), r.lost), ratio: fmt.Sprintf("poll %s+0.1ms", r.meanPoll.Round(time.Microsecond)), status: "INFO"})
}
