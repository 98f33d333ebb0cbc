package main

import (
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/nftables"
)

// lateJoiner starts an enforce-only node (fleet: its fleet section) in dir
// with table, against a bucket of total bans (signed: by a node the
// enforcer trusts the key of), and adds the row name: from exec until
// every ban is in the kernel set. The end is when the node's
// first resync had its last chunk in force (it logs that, after the
// kernel acknowledged the chunk), as long as a dump of the set, made once
// the line is logged, finds every ban: the bench reads the node's log
// rather than scraping its metrics every few ms, which cost the node CPU.
// Dumping 100,000 elements takes the bench itself a few hundred ms (the
// google/nftables client's parsing), which is not the node's: it is
// reported apart, with the phases of the join as the node logged them,
// and the CPU time the node (from exec) and the server's process spent
// until the line: on a busy machine these are the figures to compare. It
// returns the node, running.
func (b *bench) lateJoiner(ctx context.Context, ns *netns, nc *nftables.Conn, server *daemon, name, dir, table, fleet string, total float64, signed bool) (*daemon, error) {
	serverCPU0, err := processCPU(server.pid())
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	late, err := startFleetNode(ctx, b.bin, ns, dir, enforcerListen, table, 9643, "debug", fleet)
	if err != nil {
		return nil, err
	}
	set, err := nc.GetSetByName(&nftables.Table{Name: table, Family: nftables.TableFamilyINet}, "benchprobe_v4")
	if err != nil {
		late.stop()
		return nil, fmt.Errorf("fleet: %w", err)
	}
	var have, dumps int
	var took, dump, cpu, serverCPU time.Duration
	err = poll(ctx, 120*time.Second, 5*time.Millisecond, func() (bool, error) {
		// The node's log, not its metrics: a scrape every few ms costs
		// the node more CPU than one would think (the pipeline's stats),
		// and a dump of a growing 100k set far more.
		inForce, ok := joinedAt(late.logs.String())
		if !ok {
			return false, nil
		}
		cpu, _ = processCPU(late.pid())
		if c, err := processCPU(server.pid()); err == nil {
			serverCPU = c - serverCPU0
		}
		seen := time.Now()
		els, err := nc.GetSetElements(set)
		have = len(els)
		took, dump = inForce.Sub(t0), time.Since(seen)
		if dumps++; dumps > 1 {
			// The node's line came before every ban was in: the end
			// is this dump's, which found them.
			took = time.Since(t0)
		}
		return have >= int(total), err
	})
	if err != nil {
		late.stop()
		return nil, fmt.Errorf("fleet %s: %d of %.0f bans: %w", name, have, total, err)
	}
	row := result{section: "fleet", name: fmt.Sprintf("%s: %s bans in the kernel set", name, si(total)), target: "≤ 2 s",
		value: took.Round(time.Millisecond).String(), ratio: fmt.Sprintf("%.2f× target", took.Seconds()/2), status: passIf(took <= 2*time.Second)}
	if signed {
		// The target is the unsigned default's: a verification per ban
		// is some 6 s of CPU.
		row.target, row.ratio, row.status = "- (2 s: unsigned)", "ed25519 per ban", "INFO"
	}
	b.add(row)
	b.add(result{section: "fleet", name: "  phases from exec", target: "-",
		value: joinPhases(late.logs.String(), t0, late.started), ratio: fmt.Sprintf("CPU %.2f s, server's %.2f s; bench's dump %s", cpu.Seconds(), serverCPU.Seconds(), dump.Round(time.Millisecond)), status: "INFO"})
	return late, nil
}

// joinedAt is when a node's first resync had its last chunk in force, from
// its log; false until it logged it.
func joinedAt(logs string) (time.Time, bool) {
	for l := range strings.Lines(logs) {
		if !strings.Contains(l, `msg="fleet: resync"`) {
			continue
		}
		start, ok := logTime(l, "started")
		d, ok2 := logDuration(l, "inforce")
		return start.Add(d), ok && ok2
	}
	return time.Time{}, false
}

// logTime and logDuration read the field key of a log line.
func logTime(line, key string) (time.Time, bool) {
	t, err := time.Parse(time.RFC3339Nano, logField(line, key))
	return t, err == nil
}

func logDuration(line, key string) (time.Duration, bool) {
	d, err := time.ParseDuration(logField(line, key))
	return d, err == nil
}

func logField(line, key string) string {
	for f := range strings.FieldsSeq(line) {
		if v, ok := strings.CutPrefix(f, key+"="); ok {
			return v
		}
	}
	return ""
}

// joinPhases reads the phases of a node's first resync from its log: the
// daemon started, NATS connected, the resync began, the unbans were read,
// the first ban taken, the snapshot read, the last chunk in the kernel,
// each from t0; and how long the reading waited for the applier (kernel
// and store).
func joinPhases(logs string, t0 time.Time, started time.Duration) string {
	ms := func(d time.Duration) string { return fmt.Sprint(d.Milliseconds()) }
	out := []string{"started " + ms(started)}
	for l := range strings.Lines(logs) {
		switch {
		case strings.Contains(l, `msg="fleet: NATS connected"`):
			if t, ok := logTime(l, "time"); ok {
				out = append(out, "connected "+ms(t.Sub(t0)))
			}
		case strings.Contains(l, `msg="fleet: resync"`) && strings.Contains(l, " started="):
			start, ok := logTime(l, "started")
			if !ok {
				continue
			}
			out = append(out, "resync "+ms(start.Sub(t0)))
			for _, k := range []string{"tombs", "first", "read", "inforce"} {
				if d, ok := logDuration(l, k); ok {
					out = append(out, k+" "+ms(start.Add(d).Sub(t0)))
				}
			}
			if d, ok := logDuration(l, "waited"); ok {
				out = append(out, "reading waited for the kernel/store "+ms(d))
			}
			return strings.Join(out, ", ") + " ms"
		}
	}
	return strings.Join(out, ", ") + " ms (no resync logged)"
}

// fleetSignedJoin is the late joiner with signed bans: a collector with an
// nkey signs every ban it publishes, and the new enforcer, which trusts
// its key, verifies each (ed25519, about 65 µs a ban on this machine's
// cores). The ≤ 2 s target is the unsigned default's; this row tells what
// signing costs a join.
func (b *bench) fleetSignedJoin(ctx context.Context, ns *netns, nc *nftables.Conn) error {
	cdir := filepath.Join(b.dir, "fleet-signed-collector")
	seed := filepath.Join(cdir, "collector.seed")
	if err := exec.Command("mkdir", "-p", cdir).Run(); err != nil {
		return fmt.Errorf("fleet signed: %w", err)
	}
	out, err := exec.CommandContext(ctx, b.bin, "fleet", "keygen", seed).Output()
	if err != nil {
		return fmt.Errorf("fleet signed: keygen: %w", err)
	}
	pub := strings.TrimSpace(string(out))
	coll, err := startDaemon(ctx, b.bin, ns, cdir, daemonConfig(cdir, fleetProbeJail+fmt.Sprintf(`
fleet:
  name: collector
  roles: [decide]
  nkeyseed: %[2]s
  embedded:
    listen: 127.0.0.1:4222
    maxmemorymib: 64
    maxstoremib: 1024
    nodes: ["collector=%[3]s", "host=%[1]s"]
`, fleetBenchPassword, seed, pub)))
	if err != nil {
		return err
	}
	defer coll.stop()
	n := b.opts.bans
	if err := sendProbeBans(ctx, ns, filepath.Join(cdir, "syslog.sock"), b.opts.samples, n); err != nil {
		return err
	}
	if _, err := coll.settle(ctx, "sysban_fleet_published_total", "", float64(n), time.Second, 300*time.Second); err != nil {
		return fmt.Errorf("fleet signed: publishing %d bans: %w", n, err)
	}
	late, err := b.lateJoiner(ctx, ns, nc, coll, "late joiner, signed", filepath.Join(b.dir, "fleet-signed-late"), "sbsigned",
		fmt.Sprintf(`{name: host, roles: [enforce], servers: ["nats://127.0.0.1:4222"], password: %s, trustkeys: {collector: %s}}`, fleetBenchPassword, pub), float64(n), true)
	if err != nil {
		return err
	}
	late.stop()
	return nil
}
