package config

import (
	"os/user"
	"strconv"
)

// users reads a list of local users, by name or uid. A name this host
// does not know is skipped, so that one config serves hosts whose syslog
// daemon runs as root (Debian) and as syslog (Ubuntu); a number is taken
// as it is. An empty list is an error: it would make every local
// forwarder's own uid look like the author of what it relays.
func (d *decoder) users(m map[string]any, key string) []uint32 {
	names := d.strings(m, key)
	if len(names) == 0 {
		if _, set := m[leaf(key)]; set {
			d.fail(key, "empty: name at least the user your syslog daemon runs as (root)")
		}
		return nil
	}
	var uids []uint32
	for _, n := range names {
		if v, err := strconv.ParseUint(n, 10, 32); err == nil {
			uids = append(uids, uint32(v))
			continue
		}
		if n == "root" {
			// uid 0 on every Linux, also in an image without /etc/passwd.
			uids = append(uids, 0)
			continue
		}
		u, err := user.Lookup(n)
		if err != nil {
			continue
		}
		if v, err := strconv.ParseUint(u.Uid, 10, 32); err == nil {
			uids = append(uids, uint32(v))
		}
	}
	if len(uids) == 0 {
		d.fail(key, "%q: none of these users exists on this host", names)
	}
	return uids
}

// group reads a group by name or gid; -1 when unset.
func (d *decoder) group(m map[string]any, key string) int {
	g := d.str(m, key)
	if g == "" {
		return -1
	}
	if v, err := strconv.ParseUint(g, 10, 31); err == nil {
		return int(v)
	}
	gr, err := user.LookupGroup(g)
	if err != nil {
		d.fail(key, "%q: no such group", g)
		return -1
	}
	v, err := strconv.Atoi(gr.Gid)
	if err != nil {
		d.fail(key, "%q: gid %q", g, gr.Gid)
		return -1
	}
	return v
}

func leaf(key string) string {
	for i := len(key) - 1; i >= 0; i-- {
		if key[i] == '.' {
			return key[i+1:]
		}
	}
	return key
}
