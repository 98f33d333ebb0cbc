package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"testing"
	"time"
)

// udpPair is a loopback UDP socket and a socket connected to it, both
// closed when the test ends.
func udpPair(t *testing.T) (*net.UDPConn, net.Conn) {
	t.Helper()
	srv, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	c, err := net.Dial("udp", srv.LocalAddr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return srv, c
}

// TestBatchWriterSendsRoundRobin: the sendmmsg sender hands the kernel
// every datagram it counts, in round-robin order across calls, and the
// per-datagram fallback (a conn that is not UDP) does the same.
func TestBatchWriterSendsRoundRobin(t *testing.T) {
	srv, c := udpPair(t)
	msgs := make([][]byte, 5)
	for i := range msgs {
		msgs[i] = fmt.Appendf(nil, "message %d", i)
	}
	for _, tc := range []struct {
		name string
		w    *batchWriter
	}{
		{"sendmmsg", newBatchWriter(c)},
		{"one write each", &batchWriter{c: c}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sent := 0
			for _, n := range []int{3, sendBatch, 1, sendBatch + 4} {
				got := tc.w.write(msgs, sent, n)
				if want := min(n, sendBatch); tc.w.pc != nil && got != want || tc.w.pc == nil && got != n {
					t.Fatalf("write of %d sent %d", n, got)
				}
				sent += got
			}
			buf := make([]byte, 100)
			for i := range sent {
				_ = srv.SetReadDeadline(time.Now().Add(2 * time.Second))
				n, err := srv.Read(buf)
				if err != nil {
					t.Fatalf("datagram %d of %d: %v", i, sent, err)
				}
				if want := msgs[i%len(msgs)]; string(buf[:n]) != string(want) {
					t.Fatalf("datagram %d = %q, want %q", i, buf[:n], want)
				}
			}
		})
	}
}

// TestSendPacedCountsSent: a paced run sends about what its rate asks, and
// its windows add up to what it sent.
func TestSendPacedCountsSent(t *testing.T) {
	_, c := udpPair(t)
	st := sendPaced(context.Background(), c, [][]byte{[]byte("x")}, 2000, 200*time.Millisecond, false)
	sum := 0
	for _, n := range st.windows {
		sum += n
	}
	if sum != st.sent {
		t.Errorf("windows add up to %d, sent %d", sum, st.sent)
	}
	// 400 are due; a loaded machine may skip some behind schedule, but
	// sent and skipped never exceed what was due.
	if st.sent == 0 || st.sent+st.skipped > 400+sendBatch {
		t.Errorf("sent %d, skipped %d at 2000/s for 200 ms", st.sent, st.skipped)
	}
}

// TestTrafficReplayCountsResendsOnce: the TCP section replays its buffers
// within seconds, and a replayed OpenVPN UDP error line (same address and
// port) is a resend of an attempt already counted, so a replay counts
// fewer failures than the first pass, by at most the OpenVPN lines.
func TestTrafficReplayCountsResendsOnce(t *testing.T) {
	tr, err := makeTraffic(101, 50000, 20000)
	if err != nil {
		t.Fatal(err)
	}
	openvpn := 0
	for _, m := range tr.msgs {
		if bytes.Contains(m, []byte(" openvpn[")) && bytes.Contains(m, []byte("TLS Error")) {
			openvpn++
		}
	}
	if openvpn == 0 {
		t.Fatal("no OpenVPN failure lines in the traffic")
	}
	if d := tr.failures - tr.again; d <= 0 || d > openvpn {
		t.Errorf("first pass %d failures, replay %d: the replay should count 1 to %d (the OpenVPN lines) fewer", tr.failures, tr.again, openvpn)
	}
	if got, want := tr.expect(3), tr.failures+2*tr.again; got != want {
		t.Errorf("expect(3) = %d, want %d", got, want)
	}
}
