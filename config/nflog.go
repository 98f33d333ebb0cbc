package config

// nflogKeys are the keys of the nflog section and trapKeys those of
// nflog.trapports (a port list per protocol); decodeNFLOG reads them.
var (
	nflogKeys = []string{"enabled", "group", "rate", "snaplen", "banned", "trapports"}
	trapKeys  = []string{"tcp", "udp"}
)

// decodeNFLOG reads the nflog section. Its values are checked even when it
// is disabled, so turning it on later cannot reveal old mistakes.
func (d *decoder) decodeNFLOG(root map[string]any) NFLOG {
	m := d.section(root, "nflog")
	d.checkKeys("nflog", m, nflogKeys)
	n := NFLOG{
		Enabled: d.boolean(m, "nflog.enabled"),
		Group:   uint16(d.intRange(m, "nflog.group", 0, 65535)),
		Rate:    d.intRange(m, "nflog.rate", 1, 1000000),
		// 64 bytes hold an IPv6 header and the TCP flags; more than a
		// page is never needed for headers.
		Snaplen: d.intRange(m, "nflog.snaplen", 64, 4096),
		Banned:  d.boolean(m, "nflog.banned"),
	}
	tp := d.section(m, "nflog.trapports")
	d.checkKeys("nflog.trapports", tp, trapKeys)
	n.TrapTCP = d.ports(tp, "nflog.trapports.tcp")
	n.TrapUDP = d.ports(tp, "nflog.trapports.udp")
	if n.Enabled && !n.Banned && len(n.TrapTCP)+len(n.TrapUDP) == 0 {
		d.fail("nflog.enabled", "nflog is enabled but watches nothing: set nflog.banned: true or list nflog.trapports")
	}
	return n
}

// checkProbeJails refuses an enabled portprobe jail that could never ban:
// it reads the probes of nflog's trap ports, so nflog must watch some.
func (d *decoder) checkProbeJails(jails []Jail, n NFLOG) {
	for _, j := range jails {
		if j.Enabled && j.Filter == "portprobe" && (!n.Enabled || len(n.TrapTCP)+len(n.TrapUDP) == 0) {
			d.fail("jails."+j.Name+".enabled", "jail %s reads the probes of nflog.trapports, but nflog is not enabled with trap ports: it would never ban anyone", j.Name)
		}
	}
}
