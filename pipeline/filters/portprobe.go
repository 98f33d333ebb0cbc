package filters

// portprobe counts new connections to trap ports: ports nothing on
// the host serves, so whoever knocks is scanning. The nflog package writes
// one message per logged probe, program "sysban-nflog":
//
//	probe from 203.0.113.9 to tcp port 23
//	probe from 2001:db8::9 to udp port 161
//
// Every byte is sysban's (a parsed address, "tcp" or "udp", a number), so
// the pattern binds the whole line. A syslog sender could still forge a
// message under this program name, as it could under any daemon's (the
// listen.allow list decides who may send at all); what sysban writes is
// always an address, so a line naming a host by name is forged, and the
// ignoreregex keeps it from sending sysban to resolve (and ban) whatever
// that name points to. A name cannot contain ':', and one without ':'
// that is not only digits and dots is no address.
func portprobe() Spec {
	return Spec{
		Name:     "portprobe",
		Trust:    Trust{Internal: true}, // written by sysban itself, never through a socket
		Summary:  "new connections to trap ports, seen through NFLOG (lines written by sysban)",
		Programs: []string{"sysban-nflog"},
		FailRegex: []string{
			`^probe from <HOST> to (?:tcp|udp) port \d{1,5}$`,
		},
		IgnoreRegex: []string{
			`^probe from [^ :]*[^0-9. :][^ :]* to `,
		},
	}
}
