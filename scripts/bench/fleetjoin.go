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
// with table, against a bucket of total bans, and adds the row name: from
// exec until every ban is in the kernel set. The time taken is that of
// the first scrape that saw the node's applied count reach total, as long
// as a dump of the set, made right after, finds them all: the count rises
// after the kernel acknowledged each chunk, so the kernel held them at
// that scrape already. Dumping 100,000 elements takes the bench itself a
// few hundred ms (the google/nftables client's parsing), which is not the
// enforcer's: it is reported apart, with the phases of the join as the
// node logged them, and the CPU time the node (from exec) and the server's
// process spent until then: on a busy machine these are the figures to
// compare. It returns the node, running.
func (b *bench) lateJoiner(ctx context.Context, ns *netns, nc *nftables.Conn, server *daemon, name, dir, table, fleet string, total float64) (*daemon, error) {
	serverCPU0, err := processCPU(server.pid())
	if err != nil {
		return nil, err
	}
	t0 := time.Now()
	late, err := startFleetNode(ctx, b.bin, ns, dir, enforcerListen, table, 9643, fleet)
	if err != nil {
		return nil, err
	}
	set, err := nc.GetSetByName(&nftables.Table{Name: table, Family: nftables.TableFamilyINet}, "benchprobe_v4")
	if err != nil {
		late.stop()
		return nil, fmt.Errorf("fleet: %w", err)
	}
	var have int
	var took, dump, cpu, serverCPU time.Duration
	err = poll(ctx, 120*time.Second, 10*time.Millisecond, func() (bool, error) {
		// The node's count first: dumping a growing 100k set every few
		// ms would compete with the node filling it.
		if s, err := late.scrape(); err != nil || s.sum("sysban_fleet_applied_total", "") < total {
			return false, nil
		}
		seen := time.Since(t0)
		cpu, _ = processCPU(late.pid())
		if c, err := processCPU(server.pid()); err == nil {
			serverCPU = c - serverCPU0
		}
		els, err := nc.GetSetElements(set)
		have = len(els)
		took, dump = seen, time.Since(t0)-seen
		return have >= int(total), err
	})
	if err != nil {
		late.stop()
		return nil, fmt.Errorf("fleet %s: %d of %.0f bans: %w", name, have, total, err)
	}
	b.add(result{section: "fleet", name: fmt.Sprintf("%s: %s bans in the kernel set", name, si(total)), target: "≤ 2 s",
		value: took.Round(time.Millisecond).String(), ratio: fmt.Sprintf("%.2f× target", took.Seconds()/2), status: passIf(took <= 2*time.Second)})
	b.add(result{section: "fleet", name: "  phases from exec", target: "-",
		value: joinPhases(late.logs.String(), t0, late.started), ratio: fmt.Sprintf("CPU %.2f s, server's %.2f s; bench's dump %s", cpu.Seconds(), serverCPU.Seconds(), dump.Round(time.Millisecond)), status: "INFO"})
	return late, nil
}

// joinPhases reads the phases of a node's first resync from its log: the
// daemon started, NATS connected, the resync began, the unbans were read,
// the first ban taken, the snapshot read, the last chunk in the kernel,
// each from t0.
func joinPhases(logs string, t0 time.Time, started time.Duration) string {
	at := func(line, key string) (time.Time, bool) {
		for f := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(f, key+"="); ok {
				t, err := time.Parse(time.RFC3339Nano, v)
				return t, err == nil
			}
		}
		return time.Time{}, false
	}
	dur := func(line, key string) (time.Duration, bool) {
		for f := range strings.FieldsSeq(line) {
			if v, ok := strings.CutPrefix(f, key+"="); ok {
				d, err := time.ParseDuration(v)
				return d, err == nil
			}
		}
		return 0, false
	}
	ms := func(d time.Duration) string { return fmt.Sprint(d.Milliseconds()) }
	out := []string{"started " + ms(started)}
	for l := range strings.Lines(logs) {
		switch {
		case strings.Contains(l, `msg="fleet: NATS connected"`):
			if t, ok := at(l, "time"); ok {
				out = append(out, "connected "+ms(t.Sub(t0)))
			}
		case strings.Contains(l, `msg="fleet: resync"`) && strings.Contains(l, " started="):
			start, ok := at(l, "started")
			if !ok {
				continue
			}
			out = append(out, "resync "+ms(start.Sub(t0)))
			for _, k := range []string{"tombs", "first", "read", "inforce"} {
				if d, ok := dur(l, k); ok {
					out = append(out, k+" "+ms(start.Add(d).Sub(t0)))
				}
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
		fmt.Sprintf(`{name: host, roles: [enforce], servers: ["nats://127.0.0.1:4222"], password: %s, trustkeys: {collector: %s}}`, fleetBenchPassword, pub), float64(n))
	if err != nil {
		return err
	}
	late.stop()
	return nil
}
