package config

import (
	"net/netip"
	"strings"

	"github.com/sysban/sysban/receiver"
)

// listenKeys are the keys of the listen section, which decodeListen reads.
var listenKeys = []string{"udp", "tcp", "tls", "unix", "allow", "readbuffer", "maxmessagesize", "maxconnections", "idletimeout",
	"maxconnectionspersource", "frametimeout", "handshaketimeout", "ratepersender", "rateburst", "ratemaxsenders",
	"remotestreamonly", "journalprograms", "tlscert", "tlskey", "tlsclientca", "tlsclientnames",
	"firstframetimeout", "forwarders", "tlsforwarders", "unixgroup"}

// decodeListen reads the receiver's section: the listeners, who may send,
// and the limits that keep a sender from exhausting the daemon.
func (d *decoder) decodeListen(root map[string]any) Listen {
	m := d.section(root, "listen")
	d.checkKeys("listen", m, listenKeys)
	var l Listen
	for _, a := range d.strings(m, "listen.udp") {
		l.Specs = append(l.Specs, receiver.ListenerSpec{Network: "udp", Address: d.hostPort("listen.udp", a)})
	}
	for _, a := range d.strings(m, "listen.tcp") {
		l.Specs = append(l.Specs, receiver.ListenerSpec{Network: "tcp", Address: d.hostPort("listen.tcp", a)})
	}
	for _, a := range d.strings(m, "listen.tls") {
		addr := a
		if ip, err := netip.ParseAddr(strings.Trim(a, "[]")); err == nil {
			addr = netip.AddrPortFrom(ip, receiver.TLSDefaultPort).String()
		}
		l.Specs = append(l.Specs, receiver.ListenerSpec{Network: receiver.TLS, Address: d.hostPort("listen.tls", addr)})
	}
	for _, a := range d.strings(m, "listen.unix") {
		network, path := receiver.Network("unixgram"), a
		if p, ok := strings.CutPrefix(a, "stream:"); ok {
			network, path = "unix", p
		} else if p, ok := strings.CutPrefix(a, "dgram:"); ok {
			path = p
		}
		if !strings.HasPrefix(path, "/") {
			d.fail("listen.unix", "%q: want an absolute path, optionally prefixed stream: or dgram:", a)
			continue
		}
		l.Specs = append(l.Specs, receiver.ListenerSpec{Network: network, Address: path})
	}
	l.Allow = d.prefixes(m, "listen.allow")
	l.ReadBuffer = d.intRange(m, "listen.readbuffer", 0, 1<<30)
	l.MaxMessageSize = d.intRange(m, "listen.maxmessagesize", 480, 1<<20)
	l.MaxConnections = d.intRange(m, "listen.maxconnections", 1, 1<<20)
	l.IdleTimeout = d.duration(m, "listen.idletimeout", false)
	l.MaxConnectionsPerSource = d.intRange(m, "listen.maxconnectionspersource", 1, 1<<20)
	l.FrameTimeout = d.duration(m, "listen.frametimeout", false)
	l.FirstFrameTimeout = d.duration(m, "listen.firstframetimeout", false)
	l.Forwarders = d.users(m, "listen.forwarders")
	l.TLSForwarders = d.boolean(m, "listen.tlsforwarders")
	l.UnixGroup = d.group(m, "listen.unixgroup")
	l.HandshakeTimeout = d.duration(m, "listen.handshaketimeout", false)
	l.RatePerSender = d.float(m, "listen.ratepersender", 0, 1e7)
	l.RateBurst = d.intRange(m, "listen.rateburst", 0, 1<<30)
	if l.RateBurst > 0 && l.RatePerSender == 0 {
		d.fail("listen.rateburst", "set without listen.ratepersender")
	}
	l.RateMaxSenders = d.intRange(m, "listen.ratemaxsenders", 1, 1<<24)
	l.RemoteStreamOnly = d.boolean(m, "listen.remotestreamonly")
	l.JournalPrograms = d.strings(m, "listen.journalprograms")
	l.TLSFiles = receiver.TLSFiles{
		CertFile:     d.str(m, "listen.tlscert"),
		KeyFile:      d.str(m, "listen.tlskey"),
		ClientCAFile: d.str(m, "listen.tlsclientca"),
		ClientNames:  d.strings(m, "listen.tlsclientnames"),
	}
	hasTLS := false
	for _, sp := range l.Specs {
		hasTLS = hasTLS || sp.Network == receiver.TLS
	}
	switch tf := l.TLSFiles; {
	case hasTLS && (tf.CertFile == "" || tf.KeyFile == ""):
		d.fail("listen.tlscert", "listen.tlscert and listen.tlskey are required when listen.tls is set")
	case !hasTLS && (tf.CertFile != "" || tf.KeyFile != "" || tf.ClientCAFile != ""):
		d.fail("listen.tlscert", "TLS files set but listen.tls is empty")
	case l.TLSForwarders && tf.ClientCAFile == "":
		d.fail("listen.tlsforwarders", "needs listen.tlsclientca (only a verified client certificate makes a forwarder)")
	case len(tf.ClientNames) > 0 && tf.ClientCAFile == "":
		d.fail("listen.tlsclientnames", "needs listen.tlsclientca (names are checked on verified client certificates)")
	}
	return l
}
