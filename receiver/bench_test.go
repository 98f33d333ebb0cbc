package receiver

import (
	"context"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

var benchShapes = []struct{ name, in string }{
	{"rsyslog_traditional", "<38>Nov 21 18:40:46 web1 sshd[1234]: Failed password for root from 203.0.113.7 port 52144 ssh2"},
	{"rsyslog_forward_format", "<38>2026-11-21T18:40:46.123456+00:00 web1 sshd-session[77]: Invalid user admin from 198.51.100.2 port 4022"},
	{"rfc5424", "<38>1 2026-11-21T18:40:46.123456+00:00 web1 sshd 1234 - - Failed password for root from 203.0.113.7 port 52144 ssh2"},
	{"rfc5424_sd", `<13>1 2026-11-21T18:44:39.823690+00:00 vm sshd - AUTH [timeQuality tzKnown="1" isSynced="0"] Failed x`},
	{"freebsd_no_host", "<38>Nov 21 18:40:46 sshd[123]: Invalid user test from 192.0.2.44 port 5555"},
	{"glibc_local_nul", "<83>Nov 21 18:40:46 sshd-session[77]: error: PAM: Authentication failure for root from 192.0.2.9\x00"},
	{"garbage", "\xff\xfe not syslog at all"},
}

func BenchmarkParse(b *testing.B) {
	for _, s := range benchShapes {
		b.Run(s.name, func(b *testing.B) {
			p := newParser()
			in := []byte(s.in)
			var m sysban.Message
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				m = sysban.Message{}
				p.parse(in, testNow, &m)
			}
		})
	}
}

type countHandler struct{ n atomic.Int64 }

func (h *countHandler) Handle(*sysban.Message) { h.n.Add(1) }

// BenchmarkUDPReceive measures loopback send -> recvmmsg -> parse -> handler.
// UDP may drop under overload; the figure reported is messages handled per
// second, and the loss is reported too.
func BenchmarkUDPReceive(b *testing.B) {
	h := &countHandler{}
	r, err := New([]ListenerSpec{{UDP, "127.0.0.1:0"}}, h, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c, err := net.Dial("udp", r.Addrs()[0].String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	msg := []byte(benchShapes[0].in)
	b.ReportAllocs()
	start := time.Now()
	for b.Loop() {
		c.Write(msg)
	}
	sent := int64(b.N)
	// Let the receiver drain what the kernel queued.
	deadline := time.Now().Add(2 * time.Second)
	for h.n.Load() < sent && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	got := h.n.Load()
	b.ReportMetric(float64(got)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(100*float64(sent-got)/float64(sent), "%lost")
}
