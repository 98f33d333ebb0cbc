package receiver

import (
	"net"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sysban/sysban"
)

// The rules of provenance, one case each: whose word a message's Origin
// rests on, given the socket it came from and the SD it carries.
func TestOriginRules(t *testing.T) {
	sd := map[string]map[string]string{OriginSDID: {"uid": "65534", "gid": "65534", "pid": "42", "exe": "/usr/bin/logger", "comm": "logger", "unit": "x.service"}}
	noUID := map[string]map[string]string{OriginSDID: {"uid": "", "exe": "/usr/sbin/sshd"}}
	for _, tc := range []struct {
		name  string
		creds *peerCreds
		sd    map[string]map[string]string
		want  sysban.Origin
	}{
		{"udp: nobody vouches", nil, sd, sysban.Origin{UID: -1, GID: -1, PID: -1}},
		{"unknown socket: SD ignored", &noCreds, sd, sysban.Origin{UID: -1, GID: -1, PID: -1}},
		{"local user: kernel's word, SD ignored", &peerCreds{known: true, uid: 1000, gid: 100, pid: 7}, sd,
			sysban.Origin{Vouched: sysban.VouchSocket, UID: 1000, GID: 100, PID: 7}},
		{"forwarder with SD: the SD", &peerCreds{known: true, uid: 0, gid: 0, pid: 1, relay: true}, sd,
			sysban.Origin{Vouched: sysban.VouchForwarder, UID: 65534, GID: 65534, PID: 42, Exe: "/usr/bin/logger", Comm: "logger", Unit: "x.service"}},
		{"forwarder without SD: nobody", &peerCreds{known: true, uid: 0, relay: true}, nil, sysban.Origin{UID: -1, GID: -1, PID: -1}},
		{"forwarder, SD without uid: nobody", &peerCreds{known: true, uid: 0, relay: true}, noUID, sysban.Origin{UID: -1, GID: -1, PID: -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.creds.origin(tc.sd); got != tc.want {
				t.Errorf("origin = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestOriginFromSDNumbers(t *testing.T) {
	for _, tc := range []struct {
		uid, gid string
		vouched  bool
		wantGID  int64
	}{
		{"0", "0", true, 0},
		{"4294967294", "x", true, -1},
		{"4294967295", "", false, -1}, // the kernel's "no id"
		{"-1", "", false, -1},
		{"+5", "", false, -1},
		{"12a", "", false, -1},
		{"99999999999", "", false, -1},
	} {
		o := OriginFromSD(map[string]string{"uid": tc.uid, "gid": tc.gid})
		if o.Known() != tc.vouched || o.Known() && o.GID != tc.wantGID {
			t.Errorf("uid %q gid %q: %+v", tc.uid, tc.gid, o)
		}
	}
}

// Unix datagrams bring SCM_CREDENTIALS, unix streams SO_PEERCRED and
// loopback TCP the peer socket's owner: here our own uid, which is a
// forwarder's only when Options.Forwarders says so.
func TestOriginFromSockets(t *testing.T) {
	dir := t.TempDir()
	gram, stream := filepath.Join(dir, "g.sock"), filepath.Join(dir, "s.sock")
	me := uint32(os.Getuid())
	rr := start(t, []ListenerSpec{{UnixGram, gram}, {UnixStream, stream}, {TCP, "127.0.0.1:0"}},
		Options{Forwarders: []uint32{me + 1}})
	line := "<13>1 - h sshd 1 - [" + OriginSDID + ` uid="4242"] hello` + "\n"
	for _, c := range []net.Conn{dial(t, "unixgram", &net.UnixAddr{Name: gram, Net: "unixgram"}),
		dial(t, "unix", &net.UnixAddr{Name: stream, Net: "unix"}), dial(t, "tcp", rr.r.Addrs()[2])} {
		if _, err := c.Write([]byte(line)); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range rr.c.waitN(t, 3) {
		o := m.Origin
		if o.Vouched != sysban.VouchSocket || o.UID != int64(me) {
			t.Errorf("%s: origin %+v, want the socket's uid %d (SD ignored)", m.Listener, o, me)
		}
		if m.Listener != "tcp:127.0.0.1:0" && (o.PID != int64(os.Getpid()) || o.GID != int64(os.Getgid())) {
			t.Errorf("%s: origin %+v, want our pid and gid", m.Listener, o)
		}
	}
}

// From a forwarder's socket the SD is the origin.
func TestOriginForwarderSD(t *testing.T) {
	gram := filepath.Join(t.TempDir(), "g.sock")
	rr := start(t, []ListenerSpec{{UnixGram, gram}}, Options{Forwarders: []uint32{uint32(os.Getuid())}})
	c := dial(t, "unixgram", &net.UnixAddr{Name: gram, Net: "unixgram"})
	c.Write([]byte("<13>1 - h sshd 1 - [" + OriginSDID + ` uid="4242" exe="/a\]b" unit="ssh.service"] hello`))
	c.Write([]byte("<13>Dec  6 10:00:00 h sshd[1]: no SD"))
	msgs := rr.c.waitN(t, 2)
	if o := msgs[0].Origin; o.Vouched != sysban.VouchForwarder || o.UID != 4242 || o.Exe != "/a]b" || o.Unit != "ssh.service" {
		t.Errorf("origin with SD = %+v", o)
	}
	if o := msgs[1].Origin; o.Known() {
		t.Errorf("relayed without SD: origin %+v, want none", o)
	}
}

// BenchmarkOriginPerMessage is what provenance adds to each message in
// the receiver: the SCM_CREDENTIALS of a unix datagram, then the origin
// of a forwarder's message from its structured data (the costliest case;
// others skip the lookup).
func BenchmarkOriginPerMessage(b *testing.B) {
	oob := unix.UnixCredentials(&unix.Ucred{Pid: 812, Uid: 0, Gid: 0})
	sd := map[string]map[string]string{OriginSDID: {"uid": "0", "gid": "0", "pid": "812", "exe": "/usr/sbin/sshd", "comm": "sshd", "unit": "ssh.service"}}
	r := &Receiver{opts: Options{Forwarders: []uint32{0}}}
	for b.Loop() {
		c := r.relayed(parseCredsOOB(oob))
		if o := c.origin(sd); o.UID != 0 || !o.Known() {
			b.Fatal(o)
		}
	}
}
