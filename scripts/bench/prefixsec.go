package main

import (
	"bufio"
	"context"
	"fmt"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sysban/sysban"
)

// prefixBans returns n bans in jail of mixed lengths, a fifth each: IPv6
// /48s, /64s nested in those /48s and lasting longer (so each pair is
// three kernel segments), IPv4 /24s, and single /32 and /128 addresses.
func prefixBans(jail string, n int, start time.Time) []sysban.Ban {
	out := make([]sysban.Ban, n)
	for i := range out {
		j := uint32(i / 5)
		var a16 [16]byte
		a16[0], a16[1] = 0x2a, 0x01
		a16[2], a16[3], a16[4], a16[5] = byte(j>>24), byte(j>>16), byte(j>>8), byte(j)
		b := sysban.Ban{Jail: jail, Start: start, Duration: time.Hour, Failures: 5}
		switch i % 5 {
		case 0:
			b.Prefix = netip.PrefixFrom(netip.AddrFrom16(a16), 48)
		case 1:
			a16[7] = 1
			b.Prefix = netip.PrefixFrom(netip.AddrFrom16(a16), 64)
			b.Duration = 2 * time.Hour
		case 2:
			b.Prefix = netip.PrefixFrom(netip.AddrFrom4([4]byte{10 + byte(j>>16), byte(j >> 8), byte(j), 0}), 24)
		case 3:
			b.Addr = netip.AddrFrom4([4]byte{100, 64 + byte(j>>16), byte(j >> 8), byte(j)})
		case 4:
			a16[0], a16[1] = 0x2a, 0x02
			b.Addr = netip.AddrFrom16(a16)
		}
		if !b.Prefix.IsValid() {
			b.Prefix = netip.PrefixFrom(b.Addr, b.Addr.BitLen())
		}
		out[i] = b
	}
	return out
}

// sectionPrefix: opts.bans prefix bans of mixed lengths applied and
// restored, against the same count of single addresses, with the kernel
// memory each takes.
func (b *bench) sectionPrefix(ctx context.Context) error {
	single, err := b.nftApply(ctx, "prefix", "single-address bans (hash sets)", benchBans)
	if err != nil {
		return err
	}
	mixed, err := b.nftApply(ctx, "prefix", "prefix bans, mixed /48 /64 /24 /32 /128", prefixBans)
	if err != nil {
		return err
	}
	if single > 0 {
		b.add(result{section: "prefix", name: "  kernel memory, mixed prefixes vs single addresses", target: "-",
			value: fmt.Sprintf("%.2f×", float64(mixed)/float64(single)), ratio: "-", status: "INFO"})
	}
	if err := b.nftRestore(ctx, "prefix", "prefix bans (mixed)", prefixBans); err != nil {
		return err
	}
	return b.sectionPrefixPath(ctx)
}

// slabUnreclaimable is SUnreclaim of /proc/meminfo in bytes (0 when
// unreadable): set elements are unreclaimable kernel slab.
func slabUnreclaimable() int64 {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "SUnreclaim:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}
