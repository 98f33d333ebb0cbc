package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/nft"
	"github.com/sysban/sysban/store"
)

// bans returns n one-hour bans in jail, 80% IPv4, 20% IPv6, all distinct.
func benchBans(jail string, n int, start time.Time) []sysban.Ban {
	out := make([]sysban.Ban, n)
	for i := range out {
		a := DistinctAddr(i)
		if i%5 == 4 {
			a = DistinctAddr(1<<22 + i)
		}
		out[i] = sysban.Ban{Jail: jail, Addr: a, Start: start, Duration: time.Hour, Failures: 5}
	}
	return out
}

func (b *bench) sectionNFT(ctx context.Context) error {
	if err := b.nftApply(ctx); err != nil {
		return err
	}
	return b.nftRestore(ctx)
}

// nftApply times Backend.Apply of opts.bans bans on a fresh table, the
// way the daemon's ban writer calls it (one call, batched inside).
func (b *bench) nftApply(ctx context.Context) error {
	ns, err := b.newNS(ctx)
	if err != nil {
		return err
	}
	defer ns.Close()
	fd, err := ns.fd()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	be, err := nft.Open(nft.Options{NetNS: fd})
	if err != nil {
		return fmt.Errorf("nft: %w", err)
	}
	defer be.Close()
	rule := sysban.JailRule{Name: "bench", Ports: []sysban.PortRange{{First: 22, Last: 22}}, Protocol: sysban.TCP, Verdict: sysban.Drop}
	if err := be.Setup(ctx, []sysban.JailRule{rule}); err != nil {
		return fmt.Errorf("nft: %w", err)
	}
	bans := benchBans("bench", b.opts.bans, time.Now())
	t0 := time.Now()
	if err := be.Apply(ctx, bans); err != nil {
		return fmt.Errorf("nft: apply: %w", err)
	}
	el := time.Since(t0)
	els, err := be.Banned(ctx, "bench")
	if err != nil {
		return fmt.Errorf("nft: %w", err)
	}
	b.add(result{section: "nft", name: fmt.Sprintf("%s bans applied (Backend.Apply)", si(float64(len(bans)))), target: "≤ 1 s",
		value: el.Round(time.Millisecond).String(), ratio: fmt.Sprintf("%.2f× target; %s/s", el.Seconds(), si(rate(float64(len(bans)), el))),
		status: passIf(el <= time.Second)})
	// A dump of a large set right after insertion may list some elements
	// twice and others not at all (see the nft package doc), so this
	// count is a sanity check, not the verdict.
	b.add(result{section: "nft", name: "  elements listed afterwards (dump)", target: fmt.Sprintf("%d", len(bans)),
		value: fmt.Sprintf("%d", len(els)), ratio: "-", status: "INFO"})
	return nil
}

var restoredRE = regexp.MustCompile(`bans_restored=(\d+)`)

// nftRestore measures the daemon's start with opts.bans stored bans against
// its start with none: from exec to "sysban started", which is logged
// after the store's bans are in the kernel.
func (b *bench) nftRestore(ctx context.Context) error {
	start := func(name string, bans int) (time.Duration, string, error) {
		ns, err := b.newNS(ctx)
		if err != nil {
			return 0, "", err
		}
		defer ns.Close()
		dir := filepath.Join(b.dir, name)
		if err := os.MkdirAll(filepath.Join(dir, "state"), 0o700); err != nil {
			return 0, "", err
		}
		if bans > 0 {
			st, err := store.Open(filepath.Join(dir, "state", store.FileName), store.Options{})
			if err != nil {
				return 0, "", fmt.Errorf("nft restore: %w", err)
			}
			recs := make([]store.Record, 0, bans)
			for _, bn := range benchBans("sshd", bans, time.Now()) {
				recs = append(recs, store.Record{Ban: bn, Source: "bench"})
			}
			err = st.Record(recs)
			if cerr := st.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return 0, "", fmt.Errorf("nft restore: fill store: %w", err)
			}
		}
		d, err := startDaemon(ctx, b.bin, ns, dir, daemonConfig(dir, ""))
		if err != nil {
			return 0, "", err
		}
		defer d.stop()
		restored := "?"
		if m := restoredRE.FindStringSubmatch(d.logs.String()); m != nil {
			restored = m[1]
		}
		return d.started, restored, nil
	}
	empty, _, err := start("restore-empty", 0)
	if err != nil {
		return err
	}
	full, restored, err := start("restore-full", b.opts.bans)
	if err != nil {
		return err
	}
	b.add(result{section: "nft", name: fmt.Sprintf("start with %s stored bans", si(float64(b.opts.bans))), target: "≤ 2 s",
		value: full.Round(time.Millisecond).String(), ratio: fmt.Sprintf("%.2f× target; empty start %s", full.Seconds()/2, empty.Round(time.Millisecond)),
		status: passIf(full <= 2*time.Second && restored == fmt.Sprint(b.opts.bans))})
	b.add(result{section: "nft", name: "  bans_restored in the start line", target: fmt.Sprint(b.opts.bans),
		value: restored, ratio: "-", status: passIf(restored == fmt.Sprint(b.opts.bans))})
	return nil
}
