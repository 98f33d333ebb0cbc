package receiver

import (
	"fmt"
	"net"
	"testing"
	"time"

	syslogv2 "gopkg.in/mcuadros/go-syslog.v2"
)

// TestFormatInGoSyslogV2Server plugs our Format into an unmodified
// go-syslog.v2 server and checks messages arrive parsed by our parser,
// including the 4-byte "<13>" datagram that panics the library's own
// RFC 3164 format, and with no hostname invented for a FreeBSD-style line.
func TestFormatInGoSyslogV2Server(t *testing.T) {
	ch := make(syslogv2.LogPartsChannel, 16)
	srv := syslogv2.NewServer()
	srv.SetFormat(&Format{Now: func() time.Time { return testNow }})
	srv.SetHandler(syslogv2.NewChannelHandler(ch))
	path := sockPath(t, "v2.sock")
	if err := prepareSocketPath(path); err != nil {
		t.Fatal(err)
	}
	if err := srv.ListenUnixgram(path); err != nil {
		t.Fatal(err)
	}
	if err := srv.ListenTCP("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Boot(); err != nil {
		t.Fatal(err)
	}
	// The library cannot be shut down safely (Kill may panic, see
	// listen_dgram.go), so the server is left to die with the test binary.

	c := dial(t, "unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	c.Write([]byte("<13>"))
	c.Write([]byte("<38>Nov 21 18:40:46 sshd[123]: Invalid user test from 192.0.2.44\n"))

	want := map[string]any{"app_name": "sshd", "tag": "sshd", "proc_id": "123", "hostname": "",
		"message": "Invalid user test from 192.0.2.44", "facility": 4, "severity": 6}
	deadline := time.After(30 * time.Second) // a wait for an event, for a loaded machine
	for {
		select {
		case parts := <-ch:
			if parts["message"] == "" {
				continue // the "<13>" datagram: delivered, empty, no panic
			}
			for k, v := range want {
				if parts[k] != v {
					t.Errorf("%s = %#v, want %#v", k, parts[k], v)
				}
			}
			if ts, _ := parts["timestamp"].(time.Time); !ts.Equal(bsd(11, 21, 18, 40, 46)) {
				t.Errorf("timestamp = %v", parts["timestamp"])
			}
			return
		case <-deadline:
			t.Fatal("no message from the go-syslog.v2 server")
		}
	}
}

// TestFormatSplitFuncInGoSyslogV2TCP checks our stateful split func over the
// library's TCP path: octet-counted and LF frames mixed on one connection.
func TestFormatSplitFuncInGoSyslogV2TCP(t *testing.T) {
	ch := make(syslogv2.LogPartsChannel, 16)
	srv := syslogv2.NewServer()
	srv.SetFormat(&Format{Now: func() time.Time { return testNow }})
	srv.SetHandler(syslogv2.NewChannelHandler(ch))
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // the library takes an address, not a listener
	if err := srv.ListenTCP(addr); err != nil {
		t.Fatal(err)
	}
	if err := srv.Boot(); err != nil {
		t.Fatal(err)
	}
	c := dial(t, "tcp", mustTCPAddr(t, addr))
	oct := "<13>1 2026-11-21T18:40:46Z h a - - - x"
	c.Write([]byte(fmt.Sprintf("%d %s<13>Nov 21 18:40:46 h b[1]: y\n", len(oct), oct)))
	var got []string
	deadline := time.After(30 * time.Second) // a wait for an event, for a loaded machine
	for len(got) < 2 {
		select {
		case parts := <-ch:
			got = append(got, parts["app_name"].(string)+":"+parts["message"].(string))
		case <-deadline:
			t.Fatalf("got %q, want 2 messages", got)
		}
	}
	if got[0] != "a:x" || got[1] != "b:y" {
		t.Errorf("got %q", got)
	}
}

func mustTCPAddr(t *testing.T, s string) net.Addr {
	a, err := net.ResolveTCPAddr("tcp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
