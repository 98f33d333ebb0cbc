package receiver

import (
	"bytes"
	"context"
	"net"
	"net/netip"
	"testing"
	"time"
)

// BenchmarkTCPReceive measures one connection's batched LF frames: read ->
// frame -> parse -> handler, through the frame clock's deadlines.
func BenchmarkTCPReceive(b *testing.B) {
	h := &countHandler{}
	r, err := New([]ListenerSpec{{TCP, "127.0.0.1:0"}}, h, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c, err := net.Dial("tcp", r.Addrs()[0].String())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const perWrite = 100
	batch := bytes.Repeat([]byte(benchShapes[0].in+"\n"), perWrite)
	b.SetBytes(int64(len(batch) / perWrite))
	b.ReportAllocs()
	start := time.Now()
	sent := int64(0)
	for b.Loop() {
		if sent%perWrite == 0 {
			if _, err := c.Write(batch); err != nil {
				b.Fatal(err)
			}
		}
		sent++
	}
	want := (sent + perWrite - 1) / perWrite * perWrite
	deadline := time.Now().Add(10 * time.Second)
	for h.n.Load() < want && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	b.ReportMetric(float64(h.n.Load())/time.Since(start).Seconds(), "msgs/s")
}

// BenchmarkSenderLimiter is the per-message cost of RatePerSender.
func BenchmarkSenderLimiter(b *testing.B) {
	l := newSenderLimiter(1e9, 1e9, 16384)
	addrs := make([]netip.Addr, 1024)
	for i := range addrs {
		addrs[i] = netip.AddrFrom4([4]byte{192, 0, byte(i >> 8), byte(i)})
	}
	now := time.Now().UnixNano()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.allow(addrs[i%len(addrs)], now+int64(i))
		i++
	}
}
