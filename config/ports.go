package config

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sysban/sysban"
)

// services maps the service names fail2ban users write in `port =` lines to
// port numbers. It is built in because minimal hosts and containers often
// lack /etc/services; /etc/services is consulted for anything else.
var services = map[string]uint16{
	"ftp-data": 20, "ftp": 21, "ssh": 22, "telnet": 23, "smtp": 25, "domain": 53,
	"dns": 53, "http": 80, "www": 80, "kerberos": 88, "pop3": 110, "pop2": 109,
	"sunrpc": 111, "auth": 113, "ident": 113, "nntp": 119, "ntp": 123, "imap": 143,
	"imap2": 143, "snmp": 161, "ldap": 389, "https": 443, "smtps": 465,
	"submissions": 465, "urd": 465, "syslog": 514, "submission": 587,
	"ldaps": 636, "rsync": 873, "ftps-data": 989, "ftps": 990, "imaps": 993,
	"pop3s": 995, "openvpn": 1194, "mysql": 3306, "sieve": 4190,
	"managesieve": 4190, "postgresql": 5432, "sip": 5060, "sips": 5061,
	"asterisk": 5038, "http-alt": 8080, "webcache": 8080, "https-alt": 8443,
}

// ParsePort reads one port: a number, a service name, or a range "a-b" / "a:b".
func ParsePort(s string) (sysban.PortRange, error) {
	s = strings.TrimSpace(strings.ToLower(s))
	// A whole name first: service names such as ftp-data contain '-'.
	if p, err := portNumber(s); err == nil {
		return sysban.PortRange{First: p, Last: p}, nil
	}
	lo, hi, isRange := strings.Cut(s, "-")
	if !isRange || lo == "" {
		lo, hi, isRange = strings.Cut(s, ":")
	}
	if isRange && lo != "" && hi != "" {
		a, err := portNumber(lo)
		if err != nil {
			return sysban.PortRange{}, err
		}
		b, err := portNumber(hi)
		if err != nil {
			return sysban.PortRange{}, err
		}
		if a > b {
			return sysban.PortRange{}, fmt.Errorf("port range %q: %d > %d", s, a, b)
		}
		return sysban.PortRange{First: a, Last: b}, nil
	}
	p, err := portNumber(s)
	if err != nil {
		return sysban.PortRange{}, err
	}
	return sysban.PortRange{First: p, Last: p}, nil
}

func portNumber(s string) (uint16, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 1 || n > 65535 {
			return 0, fmt.Errorf("port %d: want 1-65535", n)
		}
		return uint16(n), nil
	}
	if p, ok := services[s]; ok {
		return p, nil
	}
	if p, ok := etcServices(s); ok {
		return p, nil
	}
	return 0, fmt.Errorf("port %q: not a number and not a known service name", s)
}

// etcServices looks name up in /etc/services (name or alias).
func etcServices(name string) (uint16, bool) {
	data, err := os.ReadFile("/etc/services")
	if err != nil {
		return 0, false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		f := strings.Fields(line)
		if len(f) < 2 {
			continue
		}
		num, _, _ := strings.Cut(f[1], "/")
		for _, n := range append([]string{f[0]}, f[2:]...) {
			if strings.EqualFold(n, name) {
				if p, err := strconv.Atoi(num); err == nil && p > 0 && p < 65536 {
					return uint16(p), true
				}
			}
		}
	}
	return 0, false
}
