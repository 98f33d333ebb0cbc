package config

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/sysban/sysban"
)

// ParseDuration reads 30s, 10m, 1h30m, 1d, 2w, a plain number of seconds
// (fail2ban's habit), or -1 (sysban.Permanent).
func ParseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if s == "-1" || s == "-1s" {
		return sysban.Permanent, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n <= 0 || n > int64(100*365*24*3600) {
			return 0, fmt.Errorf("duration %q: want a positive number of seconds or -1", s)
		}
		return time.Duration(n) * time.Second, nil
	}
	// Expand d and w, which time.ParseDuration lacks.
	var total time.Duration
	rest := s
	for _, unit := range []struct {
		suffix byte
		d      time.Duration
	}{{'w', 7 * 24 * time.Hour}, {'d', 24 * time.Hour}} {
		if i := strings.IndexByte(rest, unit.suffix); i > 0 {
			n, err := strconv.Atoi(rest[:i])
			if err != nil || n < 0 {
				return 0, fmt.Errorf("duration %q: bad count before %q", s, unit.suffix)
			}
			total += time.Duration(n) * unit.d
			rest = rest[i+1:]
		}
	}
	if rest != "" {
		d, err := time.ParseDuration(rest)
		if err != nil {
			return 0, fmt.Errorf("duration %q: want e.g. 30s, 10m, 1h, 1d, 1w, seconds, or -1", s)
		}
		total += d
	}
	if total <= 0 {
		return 0, fmt.Errorf("duration %q: must be positive (or -1 for permanent)", s)
	}
	return total, nil
}

// ParsePrefix reads an address (a host prefix) or a CIDR. fail2ban's
// "127.0.0.1/8" (host bits set) is accepted and masked.
func ParsePrefix(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%q: not an address or CIDR", s)
		}
		if p.Addr().Is4In6() {
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		return p.Masked(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("%q: not an address or CIDR", s)
	}
	a = sysban.CanonicalAddr(a)
	return netip.PrefixFrom(a, a.BitLen()), nil
}
