package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// stormRate is the ban storm of the fleet section: deciding messages for
// fresh addresses per second, sent to the collector.
const stormRate = 10_000

// fleetStorm measures propagation from coll (a deciding node listening on
// UDP 127.0.0.1:5514) to the enforcer enf whose nftables table is table,
// in ns: idle first when idle is set, then during a storm of stormRate
// bans/s (benchstorm) with the probes (benchtag, addresses from probe on)
// sampled while it runs. The enforcer's own histogram of every storm ban,
// from the decision to its kernel write (the collector's intake queue
// excluded), is printed beside.
func (b *bench) fleetStorm(ctx context.Context, ns *netns, coll, enf *daemon, table, label string, probe int, idle bool) error {
	pc, err := ns.dial("udp", "127.0.0.1:5514")
	if err != nil {
		return fmt.Errorf("fleet storm: %w", err)
	}
	defer pc.Close()
	if idle {
		used, err := b.fleetIdle(ns, coll, enf, table, "benchtag", pc, probe, label)
		if err != nil {
			return err
		}
		probe += used
	}

	// The storm: one deciding message per fresh address, from a range of
	// its own per label, enough for 12 s.
	base := netip.MustParseAddr("100.64.0.0").As4()
	if strings.Contains(label, "cluster") {
		base[1] = 96
	}
	msgs := make([][]byte, 12*stormRate)
	for i := range msgs {
		a := netip.AddrFrom4([4]byte{base[0], base[1] + byte(i>>16), byte(i >> 8), byte(i)})
		msgs[i] = AppendWire(nil, time.Now(), Line{Prog: "benchstorm", PID: 1, Text: "bench storm failure from " + a.String()})
	}
	sc, err := ns.dial("udp", "127.0.0.1:5514")
	if err != nil {
		return fmt.Errorf("fleet storm: %w", err)
	}
	defer sc.Close()
	before, err := coll.scrape()
	if err != nil {
		return err
	}
	enfBefore, err := enf.scrape()
	if err != nil {
		return err
	}
	collCPU, err1 := processCPU(coll.pid())
	enfCPU, err2 := processCPU(enf.pid())
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	stormCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	var sent int
	wg.Add(1)
	t0 := time.Now()
	go func() { defer wg.Done(); sent = udpSender(stormCtx, sc, msgs, stormRate, 12*time.Second) }()
	time.Sleep(time.Second) // into the storm's steady state
	r, err := b.probeFleet(ns, table, "benchtag_v4", pc, "benchtag", probe, b.opts.samples, 0)
	stop()
	wg.Wait()
	took := time.Since(t0)
	if err != nil {
		return fmt.Errorf("fleet propagation, storm, %s: %w", label, err)
	}
	b.addLatency("fleet", fmt.Sprintf("propagation p50 / p99, storm %s bans/s, %s", si(stormRate), label), 50*time.Millisecond, r)
	after, err := coll.scrape()
	if err != nil {
		return err
	}
	published := after.sum("sysban_fleet_published_total", "") - before.sum("sysban_fleet_published_total", "")
	b.add(result{section: "fleet", name: "  storm: sent, bans published by the decider", target: si(stormRate) + "/s",
		value: fmt.Sprintf("%s/s, %s/s", si(rate(float64(sent), took)), si(rate(published, took))), ratio: fmt.Sprintf("%.1f s", took.Seconds()), status: "INFO"})
	// Every storm ban, as the enforcer saw it: read once what it applied
	// has stopped growing. Polled every 100 ms, not 5: the CPU per ban
	// below is read after it, and each scrape walks the pipeline's
	// remembered bans (35,000 after a cluster storm), 200 a second of it
	// 5% of the enforcer's CPU in a profile.
	if _, err := enf.settleEvery(ctx, "sysban_fleet_applied_total", "", 0, time.Second, 60*time.Second, 100*time.Millisecond); err != nil {
		return err
	}
	enfAfter, err := enf.scrape()
	if err != nil {
		return err
	}
	p50, p99, n := histQuantiles(enfBefore, enfAfter, "sysban_fleet_propagation_seconds_bucket")
	b.add(result{section: "fleet", name: "  storm: every ban, decision -> enforcer's kernel (its histogram)", target: "-",
		value: fmt.Sprintf("p50 ≤ %s, p99 ≤ %s", p50, p99), ratio: fmt.Sprintf("%s bans", si(n)), status: "INFO"})
	collAfter, err := coll.scrape()
	if err != nil {
		return err
	}
	b.fleetStages("every storm ban", before, collAfter, enfBefore, enfAfter)
	// CPU per ban: what a loaded machine's figures scale with.
	collCPU2, err1 := processCPU(coll.pid())
	enfCPU2, err2 := processCPU(enf.pid())
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	b.add(result{section: "fleet", name: "  storm: CPU per ban, decider (with its server) / enforcer", target: "-",
		value: fmt.Sprintf("%s / %s CPU-µs", perBan(collCPU2-collCPU, published), perBan(enfCPU2-enfCPU, n)), ratio: "-", status: "INFO"})
	return nil
}

// fleetIdleGap spaces the idle propagation probes: 50 bans a second, far
// more than an idle fleet decides, and time enough for a ban's aftermath
// to end before the next. Back to back (the method before 2026-12-07), a
// probe every 1-3 ms was a load of 300-1000 bans a second: the journal's
// fsync on the decider, the other enforcers' kernel writes and the
// servers' replication of one probe still ran when the next was sent, on
// a machine where three daemons and three servers share two cores. In
// the 3-node cluster, 600 probes each way gave p99 3.1-3.5 ms spaced and
// 5.2 ms back to back; the back-to-back row is still printed, as INFO.
const fleetIdleGap = 20 * time.Millisecond

// fleetIdleSamples is how many times -samples the spaced idle probes are.
// The p99 of 200 is the second-worst sample, one scheduling hiccup of the
// six parties on two cores: on the same code the cluster's 200-probe p99
// moved between 3.2 and 8.5 ms from run to run (15 runs, p50 1.4-1.9 ms),
// the 600-probe one between 2.9 and 5.3 (10 runs). Spaced, 600 take 12 s.
const fleetIdleSamples = 3

// fleetIdle measures propagation from the deciding node dec (UDP to pc)
// to enf's set <prog>_v4 of table, with nothing else going on:
// fleetIdleSamples×samples probes fleetIdleGap apart (the target's row,
// and the daemons' stage row), then samples back to back (INFO), from
// probe address first on. It returns how many probe addresses it used.
func (b *bench) fleetIdle(ns *netns, dec, enf *daemon, table, prog string, pc net.Conn, first int, label string) (int, error) {
	n := fleetIdleSamples * b.opts.samples
	dec0, enf0, err := scrapeBoth(dec, enf)
	if err != nil {
		return 0, err
	}
	r, err := b.probeFleet(ns, table, prog+"_v4", pc, prog, first, n, fleetIdleGap)
	if err != nil {
		return 0, fmt.Errorf("fleet propagation, idle, %s: %w", label, err)
	}
	b.addLatency("fleet", fmt.Sprintf("propagation p50 / p99, idle, %s (probes %s apart)", label, fleetIdleGap), 5*time.Millisecond, r)
	dec1, enf1, err := scrapeBoth(dec, enf)
	if err != nil {
		return 0, err
	}
	b.fleetStages("idle probes", dec0, dec1, enf0, enf1)
	r, err = b.probeFleet(ns, table, prog+"_v4", pc, prog, first+n, b.opts.samples, 0)
	if err != nil {
		return 0, fmt.Errorf("fleet propagation, back to back, %s: %w", label, err)
	}
	p50, p99 := r.lat[len(r.lat)/2], r.lat[min(len(r.lat)-1, len(r.lat)*99/100)]
	b.add(result{section: "fleet", name: "  probes back to back (each sent once the last is in)", target: "-",
		value: fmt.Sprintf("%s / %s", p50.Round(10*time.Microsecond), p99.Round(10*time.Microsecond)),
		ratio: fmt.Sprintf("%d samples, %d lost", len(r.lat), r.lost), status: "INFO"})
	return n + b.opts.samples, nil
}

// scrapeBoth scrapes the deciding node and the enforcer.
func scrapeBoth(dec, enf *daemon) (scrape, scrape, error) {
	d, err1 := dec.scrape()
	e, err2 := enf.scrape()
	return d, e, errors.Join(err1, err2)
}

// histQuantiles reads the p50 and p99 of what a Prometheus histogram
// counted between two scrapes, as the upper bounds of their buckets.
func histQuantiles(before, after scrape, bucket string) (p50, p99 string, n float64) {
	type le struct {
		bound string
		count float64
	}
	var les []le
	for _, x := range after {
		if x.name != bucket {
			continue
		}
		_, bound, _ := strings.Cut(x.labels, `le="`)
		bound, _, _ = strings.Cut(bound, `"`)
		les = append(les, le{bound, x.value - before.sum(bucket, `le="`+bound+`"`)})
	}
	if len(les) == 0 {
		return "-", "-", 0
	}
	n = les[len(les)-1].count // +Inf, exposed last
	at := func(q float64) string {
		for _, l := range les {
			if l.count >= q*n {
				return l.bound + " s"
			}
		}
		return "+Inf"
	}
	return at(0.5), at(0.99), n
}

// fleetCluster runs three daemons whose embedded servers form one
// JetStream cluster (R3 bucket) in a namespace of their own: n1 decides
// (UDP 5514), n2 and n3 enforce; each node's client is its own server
// (in-process), so a ban crosses the cluster from n1's server to n3's.
// Propagation n1 -> n3's kernel, idle and during a storm; probes from
// probe on.
func (b *bench) fleetCluster(ctx context.Context, probe int) error {
	ns, err := b.newNS(ctx)
	if err != nil {
		return err
	}
	defer ns.Close()
	names := []string{"n1", "n2", "n3"}
	var nodes []string
	for _, n := range names {
		nodes = append(nodes, n+"="+fleetBenchPassword)
	}
	daemons := make([]*daemon, len(names))
	errs := make([]error, len(names))
	var wg sync.WaitGroup
	t0 := time.Now()
	for i, name := range names {
		var routes []string
		for j := range names {
			if j != i {
				routes = append(routes, fmt.Sprintf("nats://127.0.0.1:%d", 6231+j))
			}
		}
		listen, roles := "{udp: [], tcp: []}", "[enforce]"
		if i == 0 {
			listen, roles = `{udp: ["127.0.0.1:5514"], tcp: []}`, "[decide]"
		}
		fleet := fmt.Sprintf(`
  name: %s
  roles: %s
  password: %s
  replicas: 3
  embedded:
    listen: 127.0.0.1:%d
    maxmemorymib: 64
    maxstoremib: 1024
    nodes: [%s]
    cluster: {name: sbbench, listen: "127.0.0.1:%d", routes: [%s]}`,
			name, roles, fleetBenchPassword, 4231+i, strings.Join(nodes, ", "), 6231+i, strings.Join(routes, ", "))
		wg.Add(1)
		go func() {
			defer wg.Done()
			daemons[i], errs[i] = startFleetNode(ctx, b.bin, ns, filepath.Join(b.dir, "fleet-cluster-"+name), listen, "sbc"+name, 9651+i, "info", fleet)
		}()
	}
	wg.Wait()
	for i, d := range daemons {
		if d != nil {
			defer d.stop()
		}
		if errs[i] != nil {
			return fmt.Errorf("fleet cluster %s: %w", names[i], errs[i])
		}
	}
	b.add(result{section: "fleet", name: "3-node cluster: three daemons started", target: "-",
		value: time.Since(t0).Round(time.Millisecond).String(), ratio: "-", status: "INFO"})
	// n3 must have its sets and its first resync: it counts the resync.
	err = poll(ctx, 30*time.Second, 20*time.Millisecond, func() (bool, error) {
		s, err := daemons[2].scrape()
		return err == nil && s.sum("sysban_fleet_resyncs_total", "") > 0, nil
	})
	if err != nil {
		return fmt.Errorf("fleet cluster: n3 never resynced: %w", err)
	}
	time.Sleep(300 * time.Millisecond)
	b.fleetPlacement(ctx, daemons[0], daemons[2])
	return b.fleetStorm(ctx, ns, daemons[0], daemons[2], "sbcn3", "3-node cluster", probe, true)
}

// perBan is CPU microseconds per ban, "-" without bans.
func perBan(cpu time.Duration, bans float64) string {
	if bans <= 0 {
		return "-"
	}
	return fmt.Sprintf("%.0f", float64(cpu.Microseconds())/bans)
}
