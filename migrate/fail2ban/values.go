package fail2ban

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/sysban/sysban/config"
)

// durationUnits are fail2ban's time abbreviations and words, in seconds.
var durationUnits = map[string]float64{
	"y": 365 * 86400, "year": 365 * 86400, "years": 365 * 86400,
	"mo": 30 * 86400, "mon": 30 * 86400, "month": 30 * 86400, "months": 30 * 86400,
	"w": 7 * 86400, "week": 7 * 86400, "weeks": 7 * 86400,
	"d": 86400, "day": 86400, "days": 86400,
	"h": 3600, "hour": 3600, "hours": 3600,
	"m": 60, "mi": 60, "min": 60, "mins": 60, "minute": 60, "minutes": 60,
	"s": 1, "sec": 1, "secs": 1, "second": 1, "seconds": 1,
}

// parseSeconds reads a fail2ban time: bare seconds ("600"), abbreviations
// ("10m", "1h", "1d", "1w"), combinations ("1h30m", "1d 12h"), a product
// ("3600*24"), or -1 (permanent, returned as -1).
func parseSeconds(s string) (float64, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if s == "" {
		return 0, fmt.Errorf("empty time")
	}
	if s == "-1" {
		return -1, nil
	}
	if a, b, ok := strings.Cut(s, "*"); ok {
		x, err := parseSeconds(a)
		if err != nil {
			return 0, err
		}
		y, err := parseSeconds(b)
		if err != nil {
			return 0, err
		}
		return x * y, nil
	}
	total := 0.0
	rest := s
	for rest != "" {
		rest = strings.TrimLeft(rest, " \t+")
		i := 0
		for i < len(rest) && (rest[i] >= '0' && rest[i] <= '9' || rest[i] == '.') {
			i++
		}
		if i == 0 {
			return 0, fmt.Errorf("time %q: want e.g. 600, 10m, 1h, 1d, 1w or -1", s)
		}
		n, err := strconv.ParseFloat(rest[:i], 64)
		if err != nil {
			return 0, fmt.Errorf("time %q: %v", s, err)
		}
		rest = strings.TrimLeft(rest[i:], " \t")
		j := 0
		for j < len(rest) && rest[j] >= 'a' && rest[j] <= 'z' {
			j++
		}
		unit := 1.0
		if j > 0 {
			u, ok := durationUnits[rest[:j]]
			if !ok {
				return 0, fmt.Errorf("time %q: unknown unit %q", s, rest[:j])
			}
			unit = u
		}
		total += n * unit
		rest = rest[j:]
	}
	if math.IsInf(total, 0) || math.IsNaN(total) || total > 100*365*86400 {
		return 0, fmt.Errorf("time %q: out of range", s)
	}
	return total, nil
}

// sysbanDuration writes seconds in sysban's duration syntax ("1d", "1h30m",
// "-1"); fractions of a second are rounded up to a whole second.
func sysbanDuration(sec float64) string {
	if sec < 0 {
		return "-1"
	}
	n := int64(math.Ceil(sec))
	if n == 0 {
		return "0s"
	}
	var b strings.Builder
	for _, u := range []struct {
		s string
		n int64
	}{{"w", 7 * 86400}, {"d", 86400}, {"h", 3600}, {"m", 60}, {"s", 1}} {
		if n >= u.n {
			fmt.Fprintf(&b, "%d%s", n/u.n, u.s)
			n %= u.n
		}
	}
	return b.String()
}

// duration converts a fail2ban time to sysban's syntax.
func duration(s string) (string, error) {
	sec, err := parseSeconds(s)
	if err != nil {
		return "", err
	}
	if sec == 0 {
		return "", fmt.Errorf("time %q: zero", s)
	}
	d := sysbanDuration(sec)
	if d != "-1" {
		if _, err := config.ParseDuration(d); err != nil {
			return "", err
		}
	}
	return d, nil
}

// portList converts a fail2ban port list ("ssh,smtp", "1000:2000",
// `"pop3, imap"`) to sysban's entries. every reports "all ports"
// (0:65535 or 1:65535), for which sysban writes no list. A "53/udp" form
// gives its protocol in protos.
func portList(s string) (ports []string, every bool, protos []string, err error) {
	s = unquote(s)
	for _, p := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\t' || r == '\n' }) {
		p = unquote(p)
		if num, proto, ok := strings.Cut(p, "/"); ok {
			p = num
			protos = append(protos, strings.ToLower(proto))
		}
		if lo, hi, ok := strings.Cut(p, ":"); ok {
			if (lo == "0" || lo == "1") && hi == "65535" {
				every = true
				continue
			}
			p = lo + "-" + hi
		}
		if _, perr := config.ParsePort(p); perr != nil {
			return nil, false, nil, perr
		}
		ports = append(ports, strings.ToLower(p))
	}
	if every {
		ports = nil
	}
	return ports, every, protos, nil
}

func unquote(s string) string {
	s = strings.TrimSpace(s)
	for _, q := range []string{`"`, `'`, "\u201d", "\u201c"} {
		s = strings.TrimPrefix(strings.TrimSuffix(s, q), q)
	}
	// Word processors turn quotes into curly ones (a seed document did).
	s = strings.Trim(s, "\u201c\u201d\u2018\u2019")
	return strings.TrimSpace(s)
}

// boolValue reads fail2ban's booleans.
func boolValue(s string) (bool, bool) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "yes", "on", "1", "enabled":
		return true, true
	case "false", "no", "off", "0", "disabled", "":
		return false, true
	}
	return false, false
}

// callSpec is a reference with arguments: `iptables-multiport[port="ssh",
// protocol=tcp]` or `sshd[mode=aggressive]`.
type callSpec struct {
	Name string
	Args map[string]string
	Text string // as written
}

// splitCalls splits an action value into its entries: separated by white
// space or new lines outside brackets and quotes.
func splitCalls(s string) ([]callSpec, error) {
	var out []callSpec
	var cur strings.Builder
	depth := 0
	var quote rune
	flush := func() error {
		t := strings.TrimSpace(cur.String())
		cur.Reset()
		if t == "" {
			return nil
		}
		c, err := parseCall(t)
		if err != nil {
			return err
		}
		out = append(out, c)
		return nil
	}
	for _, r := range s {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'':
			if depth > 0 {
				quote = r
			}
		case r == '[':
			depth++
		case r == ']':
			depth--
		case (r == ' ' || r == '\t' || r == '\n') && depth == 0:
			if err := flush(); err != nil {
				return nil, err
			}
			continue
		}
		cur.WriteRune(r)
	}
	if depth != 0 || quote != 0 {
		return nil, fmt.Errorf("%q: unbalanced brackets or quotes", clip(s))
	}
	return out, flush()
}

// parseCall reads one `name[k=v, ...]`.
func parseCall(s string) (callSpec, error) {
	c := callSpec{Text: s, Args: map[string]string{}}
	name, args, ok := strings.Cut(s, "[")
	c.Name = strings.TrimSpace(name)
	if !ok {
		return c, nil
	}
	if !strings.HasSuffix(args, "]") {
		return c, fmt.Errorf("%q: want name[key=value, ...]", clip(s))
	}
	args = args[:len(args)-1]
	var parts []string
	var cur strings.Builder
	var quote rune
	for _, r := range args {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			}
		case r == '"' || r == '\'' || r == '\u201d' || r == '\u201c':
			quote = r
			if r == '\u201c' {
				quote = '\u201d'
			}
		case r == ',':
			parts = append(parts, cur.String())
			cur.Reset()
			continue
		}
		cur.WriteRune(r)
	}
	parts = append(parts, cur.String())
	for _, p := range parts {
		if strings.TrimSpace(p) == "" {
			continue
		}
		k, v, ok := strings.Cut(p, "=")
		if !ok {
			return c, fmt.Errorf("%q: argument %q is not key=value", clip(s), p)
		}
		c.Args[strings.ToLower(strings.TrimSpace(k))] = unquote(v)
	}
	return c, nil
}
