package receiver

import (
	"bytes"
	"encoding/binary"
	"net"
	"net/netip"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysban/sysban"
)

// TestUDPBatchReadsRealSocket reads queued datagrams with udpBatch from a
// real socket: more than one batch, every byte and sender as sent, an
// empty datagram as empty, and the oversized one (and the one that fills
// the buffer exactly) as truncated.
func TestUDPBatchReadsRealSocket(t *testing.T) {
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	c := dial(t, "udp", conn.LocalAddr())
	const bufSize = 101 // MaxMessageSize 100, plus the byte that tells truncation
	var want [][]byte
	for i := range 150 {
		var d []byte
		switch i {
		case 10:
			d = nil // empty datagram
		case 20:
			d = bytes.Repeat([]byte{'x'}, bufSize+50) // oversized
		case 30:
			d = bytes.Repeat([]byte{'y'}, bufSize) // fills the buffer exactly
		default:
			d = []byte(strings.Repeat("m", i%40) + string(rune('a'+i%26)))
		}
		if _, err := c.Write(d); err != nil {
			t.Fatal(err)
		}
		want = append(want, d)
	}
	from := c.LocalAddr().(*net.UDPAddr).AddrPort()
	b := newUDPBatch(batchSize, bufSize)
	rc, err := conn.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var got int
	var calls int
	for got < len(want) {
		var n int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			n, rerr = b.recv(fd)
			return rerr != unix.EAGAIN
		}); err != nil || rerr != nil {
			t.Fatalf("read: %v %v", err, rerr)
		}
		calls++
		if n > batchSize || n <= 0 {
			t.Fatalf("recv returned %d datagrams (batch of %d)", n, batchSize)
		}
		for i := range n {
			data, truncated := b.datagram(i)
			w := want[got]
			wantTrunc := len(w) >= bufSize
			if truncated != wantTrunc {
				t.Errorf("datagram %d: truncated = %v, want %v", got, truncated, wantTrunc)
			}
			if !wantTrunc && !bytes.Equal(data, w) {
				t.Errorf("datagram %d = %q, want %q", got, data, w)
			}
			if wantTrunc && !bytes.Equal(data, w[:len(data)]) {
				t.Errorf("datagram %d: truncated bytes are not its start", got)
			}
			if s := b.sender(i); s != from {
				t.Errorf("datagram %d: sender %v, want %v", got, s, from)
			}
			got++
		}
	}
	if calls < 3 {
		t.Errorf("150 datagrams read in %d calls, want at least 3 batches of %d", calls, batchSize)
	}
}

// TestUDPHostileBatch queues good and hostile datagrams, from an allowed
// and a refused sender, before the listener reads, so that they arrive in
// one batch; each must meet its own fate and the good ones must arrive in
// order with their sender.
func TestUDPHostileBatch(t *testing.T) {
	c := &collector{}
	r, err := New([]ListenerSpec{{UDP, "127.0.0.1:0"}}, c, Options{
		MaxMessageSize: 200,
		Allow:          []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
		Now:            func() time.Time { return testNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	addr := r.Addrs()[0].(*net.UDPAddr)
	good, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)}, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	refused, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer refused.Close()
	sends := []struct {
		c *net.UDPConn
		d string
	}{
		{good, sshLine},
		{good, ""},
		{refused, sshLine},
		{good, strings.Repeat("A", 300)},
		{good, "<13>"},
		{good, "\x00\x00\n\n"},
		{refused, "<13>whatever"},
		{good, "<38>Nov 21 18:40:47 web1 sshd[1]: one\n<38>Nov 21 18:40:48 web1 sshd[1]: two"},
		{good, "\xff\xfe not syslog"},
		{good, sshLine},
	}
	for _, s := range sends {
		if _, err := s.c.Write([]byte(s.d)); err != nil {
			t.Fatal(err)
		}
	}
	rr := runReceiver(t, r, c)
	msgs := rr.c.waitN(t, 6)
	waitFor(t, "every datagram counted", func() bool {
		st := rr.stats(0)
		return st.Received+st.Dropped[ReasonEmpty]+st.Dropped[ReasonTooLarge]+st.Dropped[ReasonSenderNotAllowed] == 11 // 10 datagrams, one of them two messages
	})
	st := rr.stats(0)
	if st.Received != 6 || st.Dropped[ReasonEmpty] != 2 || st.Dropped[ReasonTooLarge] != 1 || st.Dropped[ReasonSenderNotAllowed] != 2 || st.ParseErrors != 2 {
		t.Errorf("stats = %+v, want 6 received (2 with parse errors), 2 empty, 1 too large, 2 refused", st)
	}
	wantText := []string{"Failed password for root from 203.0.113.7 port 52144 ssh2", "", "one", "two", "", "Failed password for root from 203.0.113.7 port 52144 ssh2"}
	from := good.LocalAddr().(*net.UDPAddr).AddrPort()
	for i, m := range msgs {
		if wantText[i] != "" && m.Text != wantText[i] {
			t.Errorf("message %d text %q, want %q", i, m.Text, wantText[i])
		}
		if m.Sender != from {
			t.Errorf("message %d sender %v, want %v", i, m.Sender, from)
		}
	}
}

// TestUDPDualStackSenderUnmapped: on a [::] socket an IPv4 sender arrives
// as ::ffff:a.b.c.d and must be reported (and allow-checked) as IPv4.
func TestUDPDualStackSenderUnmapped(t *testing.T) {
	rr := start(t, []ListenerSpec{{UDP, "[::]:0"}}, Options{})
	port := rr.r.Addrs()[0].(*net.UDPAddr).Port
	c, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1), Port: port})
	if err != nil {
		t.Skipf("no dual-stack socket here: %v", err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(sshLine)); err != nil {
		t.Fatal(err)
	}
	got := rr.c.waitN(t, 1)
	if a := got[0].Sender.Addr(); a != netip.MustParseAddr("127.0.0.1") {
		t.Errorf("sender %v, want 127.0.0.1 (unmapped)", got[0].Sender)
	}
	if rr.stats(0).Dropped[ReasonSenderNotAllowed] != 0 {
		t.Error("a mapped loopback sender was refused by the loopback allow list")
	}
}

// sockaddrOf writes a as the kernel would (sockaddr_in for IPv4,
// sockaddr_in6 otherwise).
func sockaddrOf(a netip.AddrPort) []byte {
	var raw sockaddrRoom
	port := binary.BigEndian.AppendUint16(nil, a.Port())
	if a.Addr().Is4() {
		binary.NativeEndian.PutUint16(raw[:], unix.AF_INET)
		copy(raw[2:], port)
		ip := a.Addr().As4()
		copy(raw[4:], ip[:])
		return raw[:unix.SizeofSockaddrInet4]
	}
	binary.NativeEndian.PutUint16(raw[:], unix.AF_INET6)
	copy(raw[2:], port)
	ip := a.Addr().As16()
	copy(raw[8:], ip[:])
	binary.NativeEndian.PutUint32(raw[24:], 7) // a scope id, dropped
	return raw[:]
}

func TestParseSockaddr(t *testing.T) {
	for _, tc := range []struct {
		raw  []byte
		want netip.AddrPort
	}{
		{sockaddrOf(netip.MustParseAddrPort("192.0.2.1:514")), netip.MustParseAddrPort("192.0.2.1:514")},
		{sockaddrOf(netip.MustParseAddrPort("[2001:db8::1]:65535")), netip.MustParseAddrPort("[2001:db8::1]:65535")},
		{sockaddrOf(netip.MustParseAddrPort("[::ffff:198.51.100.7]:1")), netip.MustParseAddrPort("198.51.100.7:1")},
		{sockaddrOf(netip.MustParseAddrPort("192.0.2.1:514"))[:7], netip.AddrPort{}},    // short
		{sockaddrOf(netip.MustParseAddrPort("[2001:db8::1]:5"))[:20], netip.AddrPort{}}, // short
		{append([]byte{0xff, 0xff}, make([]byte, 26)...), netip.AddrPort{}},             // unknown family
		{nil, netip.AddrPort{}},
	} {
		if got := parseSockaddr(tc.raw); got != tc.want {
			t.Errorf("parseSockaddr(% x) = %v, want %v", tc.raw, got, tc.want)
		}
	}
}

// FuzzParseSockaddr: any bytes give an address without a panic, and an
// address written as the kernel writes it reads back canonical.
func FuzzParseSockaddr(f *testing.F) {
	f.Add(sockaddrOf(netip.MustParseAddrPort("192.0.2.1:514")))
	f.Add(sockaddrOf(netip.MustParseAddrPort("[::ffff:192.0.2.1]:514")))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		got := parseSockaddr(raw)
		if got.IsValid() && got.Addr() != sysban.CanonicalAddr(got.Addr()) {
			t.Fatalf("parseSockaddr(% x) = %v, not canonical", raw, got)
		}
		if got.IsValid() {
			if back := parseSockaddr(sockaddrOf(got)); back != got {
				t.Fatalf("round trip of %v gave %v", got, back)
			}
		}
	})
}

// BenchmarkUDPIntake is the receiver's own CPU per datagram: a queue of
// datagrams is filled with the timer stopped, then drained the way
// serveUDP drains it (recvmmsg batches, handleDatagram, parse, a counting
// Handler). No wake-ups and no sender are in the figure: it is the intake
// path's cost when the daemon is busy. The machine may be shared, so the
// figure to read is cpu-ns/msg, the draining thread's CPU time (wall time,
// ns/op, counts the time others had the CPU).
func BenchmarkUDPIntake(b *testing.B) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	h := &countHandler{}
	r, err := New([]ListenerSpec{{UDP, "127.0.0.1:0"}}, h, Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer r.Close()
	l := r.listeners[0].(*dgramListener)
	c, err := net.Dial("udp", l.addr().String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	rc, err := l.conn.(*net.UDPConn).SyscallConn()
	if err != nil {
		b.Fatal(err)
	}
	// As many as the receive buffer surely holds (a short datagram takes
	// about 1 KiB of it with the kernel's overhead): without
	// CAP_NET_ADMIN it is rmem_max, often 208 KiB.
	var rcvbuf int
	_ = rc.Control(func(fd uintptr) { rcvbuf, _ = unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF) })
	round := min(4096, max(16, rcvbuf/2048))
	msgs := make([][]byte, 0, len(benchShapes))
	for _, s := range benchShapes {
		msgs = append(msgs, []byte(s.in))
	}
	p := r.format.newParser()
	var m sysban.Message
	batch := newUDPBatch(batchSize, r.opts.MaxMessageSize+1)
	var cpu time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		k := min(round, b.N-done)
		b.StopTimer()
		for j := range k {
			if _, err := c.Write(msgs[j%len(msgs)]); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
		cpu0 := threadCPU()
		got := 0
		var rerr error
		_ = rc.Control(func(fd uintptr) {
			for got < k {
				n, err := batch.recv(fd)
				if err != nil {
					rerr = err
					return
				}
				now := r.format.now()
				for i := range n {
					data, truncated := batch.datagram(i)
					l.handleDatagram(p, &m, data, truncated, now, batch.sender(i), nil)
				}
				got += n
			}
		})
		cpu += threadCPU() - cpu0
		if rerr != nil {
			b.Fatalf("drained %d of %d: %v", got, k, rerr)
		}
		done += k
	}
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/msg")
}

// threadCPU is the calling thread's user and system CPU time.
func threadCPU() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
