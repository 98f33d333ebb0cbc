package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/nftables"
	"github.com/mdlayher/netlink"
	"golang.org/x/sys/unix"
)

// setWatch tells when elements are added to one nftables set of a
// namespace, from the kernel's change notifications (the group every
// nftables listener joins), instead of dumping the set in a loop.
//
// The fleet probes used to poll: a dump every 0.1 ms plus the dump's own
// time (0.25-1 ms on this machine), so the bench kept most of a core busy
// in netlink while three daemons and their servers shared the other, and
// the clock stopped up to a dump late. A notification is sent when the
// kernel commits the transaction that added the element: the moment the
// address is in the set. The bench sleeps in the meantime.
type setWatch struct {
	conn       *netlink.Conn
	table, set string
	added      chan setAdd
	done       chan struct{}
}

// setAdd is one element added to the watched set, and when the bench heard
// of it; overflow is a lost batch of notifications (nothing else set).
type setAdd struct {
	key      []byte
	at       time.Time
	overflow bool
}

// watchSet joins the nftables notification group in the namespace fd.
func watchSet(fd int, table, set string) (*setWatch, error) {
	c, err := netlink.Dial(unix.NETLINK_NETFILTER, &netlink.Config{NetNS: fd})
	if err != nil {
		return nil, fmt.Errorf("set watch: %w", err)
	}
	// A storm writes 10k elements a second to each enforcer's storm set;
	// every one of them comes here too.
	_ = c.SetReadBuffer(16 << 20)
	if err := c.JoinGroup(unix.NFNLGRP_NFTABLES); err != nil {
		c.Close()
		return nil, fmt.Errorf("set watch: %w", err)
	}
	w := &setWatch{conn: c, table: table, set: set, added: make(chan setAdd, 4096), done: make(chan struct{})}
	go w.run()
	return w, nil
}

func (w *setWatch) Close() error {
	close(w.done)
	return w.conn.Close()
}

func (w *setWatch) run() {
	defer close(w.added)
	send := func(a setAdd) bool {
		select {
		case w.added <- a:
			return true
		case <-w.done:
			return false
		}
	}
	for {
		msgs, err := w.conn.Receive()
		at := time.Now()
		if err != nil {
			if errors.Is(err, unix.ENOBUFS) && send(setAdd{at: at, overflow: true}) {
				continue
			}
			return // closed
		}
		for _, m := range msgs {
			if m.Header.Type != netlink.HeaderType(unix.NFNL_SUBSYS_NFTABLES<<8|unix.NFT_MSG_NEWSETELEM) || len(m.Data) < 4 {
				continue
			}
			for _, key := range w.keys(m.Data[4:]) {
				if !send(setAdd{key: key, at: at}) {
					return
				}
			}
		}
	}
}

// keys are the element keys of a NEWSETELEM message if it is for the
// watched table and set.
func (w *setWatch) keys(attrs []byte) [][]byte {
	ad, err := netlink.NewAttributeDecoder(attrs)
	if err != nil {
		return nil
	}
	var table, set string
	var elems []byte
	for ad.Next() {
		switch ad.Type() {
		case unix.NFTA_SET_ELEM_LIST_TABLE:
			table = ad.String()
		case unix.NFTA_SET_ELEM_LIST_SET:
			set = ad.String()
		case unix.NFTA_SET_ELEM_LIST_ELEMENTS:
			elems = ad.Bytes()
		}
	}
	if ad.Err() != nil || table != w.table || set != w.set {
		return nil
	}
	var keys [][]byte
	list, err := netlink.NewAttributeDecoder(elems)
	if err != nil {
		return nil
	}
	for list.Next() {
		el, err := netlink.NewAttributeDecoder(list.Bytes())
		if err != nil {
			continue
		}
		for el.Next() {
			if el.Type() != unix.NFTA_SET_ELEM_KEY {
				continue
			}
			val, err := netlink.NewAttributeDecoder(el.Bytes())
			if err != nil {
				continue
			}
			for val.Next() {
				if val.Type() == unix.NFTA_DATA_VALUE {
					keys = append(keys, val.Bytes())
				}
			}
		}
	}
	return keys
}

// probeNotified is probeLatencyOf with the clock stopped by w's
// notification of the address's element instead of a dump that finds it.
// Each found element is then checked once in a dump (not timed), so that a
// notification can never stand in for an element the set does not hold; a
// lost batch of notifications (receive buffer overrun) falls back to
// dumping until it is found, timed to the dump that finds it.
func probeNotified(w *setWatch, nc *nftables.Conn, set *nftables.Set, pc net.Conn, prog string, first, n int, gap time.Duration) (latencies, error) {
	var r latencies
	// A dump that runs while the kernel resizes the set's hash table can
	// skip elements (nft/doc.go): it crossed 384 elements in one run and
	// missed the probe just notified. So three dumps 10 ms apart must all
	// miss an element before it counts as not there.
	in := func(key []byte) (bool, error) {
		for try := range 3 {
			if try > 0 {
				time.Sleep(10 * time.Millisecond)
			}
			els, err := nc.GetSetElements(set)
			if err != nil {
				return false, err
			}
			if slices.ContainsFunc(els, func(e nftables.SetElement) bool { return bytes.Equal(e.Key, key) }) {
				return true, nil
			}
		}
		return false, nil
	}
	for i := range n {
		if i > 0 && gap > 0 {
			time.Sleep(gap)
		}
		key, t0, err := sendProbe(pc, prog, first+i)
		if err != nil {
			return r, err
		}
		var took time.Duration
		timeout := time.NewTimer(2 * time.Second)
	wait:
		for {
			select {
			case ev, ok := <-w.added:
				if !ok {
					timeout.Stop()
					return r, errors.New("set watch: notifications ended")
				}
				if ev.overflow {
					r.overflows++
					found, err := in(key[:])
					if err != nil {
						timeout.Stop()
						return r, err
					}
					if found {
						took = time.Since(t0)
						break wait
					}
					continue
				}
				if bytes.Equal(ev.key, key[:]) {
					took = ev.at.Sub(t0)
					break wait
				}
			case <-timeout.C:
				break wait
			}
		}
		timeout.Stop()
		if took == 0 {
			r.lost++
			continue
		}
		found, err := in(key[:])
		if err != nil {
			return r, err
		}
		if !found {
			return r, fmt.Errorf("set watch: %s notified but not in the set", probeAddr(first+i))
		}
		r.lat = append(r.lat, took)
	}
	if len(r.lat) == 0 {
		return r, errors.New("no probe was banned within 2 s")
	}
	slices.Sort(r.lat)
	r.notified = true
	return r, nil
}

// probeFleet probes as the -fleet-poll flag says: notified (the default),
// each probe sent gap after the last was in, or polled (the method of the
// runs before, kept to compare: back to back whatever gap says).
func (b *bench) probeFleet(ns *netns, table, setName string, pc net.Conn, prog string, first, n int, gap time.Duration) (latencies, error) {
	nc, set, closeSet, err := openSet(ns, table, setName)
	if err != nil {
		return latencies{}, err
	}
	defer closeSet()
	if b.opts.fleetPoll {
		return probeLatencyOf(nc, set, pc, prog, first, n)
	}
	fd, err := ns.fd()
	if err != nil {
		return latencies{}, err
	}
	defer unix.Close(fd)
	w, err := watchSet(fd, table, setName)
	if err != nil {
		return latencies{}, err
	}
	defer w.Close()
	return probeNotified(w, nc, set, pc, prog, first, n, gap)
}

// fleetStages adds the stage row of what the decider dec and the enforcer
// enf counted between two scrapes each (before b0, after b1): from the
// decision, the publication stored by the fleet (the server's ack: an R3
// bucket's quorum), delivered by the enforcer's watch, and in its kernel
// (after the kernel write), p50 / p99 as the upper bounds of the
// daemons' histogram buckets. what names the bans counted.
func (b *bench) fleetStages(what string, dec0, dec1, enf0, enf1 scrape) {
	var parts []string
	for _, st := range []struct {
		before, after scrape
		metric, name  string
	}{
		{dec0, dec1, "sysban_fleet_stored_seconds_bucket", "stored"},
		{enf0, enf1, "sysban_fleet_delivered_seconds_bucket", "delivered"},
		{enf0, enf1, "sysban_fleet_propagation_seconds_bucket", "in kernel"},
	} {
		p50, p99, n := histQuantiles(st.before, st.after, st.metric)
		if n == 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s %s/%s", st.name, msBound(p50), msBound(p99)))
	}
	b.add(result{section: "fleet", name: "  stages from decision, p50/p99 ≤ (ms), " + what, target: "-",
		value: strings.Join(parts, "; "), ratio: "daemons' histograms", status: "INFO"})
}

// msBound turns a bucket bound "0.0015 s" into "1.5".
func msBound(s string) string {
	var v float64
	if _, err := fmt.Sscanf(s, "%g s", &v); err != nil {
		return s
	}
	return strconv.FormatFloat(v*1000, 'g', 3, 64)
}

// fleetPlacement adds which server leads the bucket's stream and which
// holds the enforcer's watch, as the deciding node and the enforcer tell
// (`sysban fleet status --json`): the hops a ban takes in a cluster.
func (b *bench) fleetPlacement(ctx context.Context, dec, enf *daemon) {
	status := func(d *daemon) (leader, watch string) {
		out, err := exec.CommandContext(ctx, b.bin, "fleet", "status", "--json", "--socket", filepath.Join(d.dir, "control.sock")).Output()
		if err != nil {
			return "?", "?"
		}
		var st struct {
			Leader string `json:"stream_leader"`
			Watch  string `json:"watch_server"`
		}
		if json.Unmarshal(out, &st) != nil {
			return "?", "?"
		}
		return st.Leader, st.Watch
	}
	leader, _ := status(dec)
	_, watch := status(enf)
	b.add(result{section: "fleet", name: "  cluster hops: stream leader, enforcer's watch on", target: "-",
		value: leader + ", " + watch, ratio: "decider on n1, enforcer on n3", status: "INFO"})
}
