package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
)

// countingBanner stands in for nftables: the benchmark measures ingestion,
// the nft package benchmarks its own writes.
type countingBanner struct {
	mu   sync.Mutex
	bans int
}

func (c *countingBanner) Apply(_ context.Context, bans []sysban.Ban) error {
	c.mu.Lock()
	c.bans += len(bans)
	c.mu.Unlock()
	return nil
}

// ingestLines is the traffic mix: one sshd failure in five, the rest benign
// sshd chatter and other programs' lines.
func ingestLines(n int) [][]byte {
	now := time.Now().Format(time.Stamp)
	lines := make([][]byte, n)
	for i := range lines {
		var msg string
		switch i % 5 {
		case 0:
			msg = fmt.Sprintf("<38>%s web1 sshd[%d]: Failed password for invalid user u%d from 198.51.%d.%d port %d ssh2",
				now, 1000+i%5000, i, (i/250)%256, i%250+1, 1024+i%60000)
		case 1:
			msg = fmt.Sprintf("<38>%s web1 sshd[%d]: Accepted publickey for deploy from 192.0.2.9 port %d ssh2: ED25519 SHA256:abc", now, 1000+i%5000, 1024+i%60000)
		case 2:
			msg = fmt.Sprintf("<86>%s web1 CRON[%d]: pam_unix(cron:session): session opened for user root(uid=0) by (uid=0)", now, i%30000)
		case 3:
			msg = fmt.Sprintf("<22>%s mail postfix/smtpd[%d]: connect from unknown[203.0.113.%d]", now, i%30000, i%250)
		default:
			msg = fmt.Sprintf("<30>%s web1 systemd[1]: Started session-%d.scope - Session %d of User deploy.", now, i, i)
		}
		lines[i] = []byte(msg)
	}
	return lines
}

// BenchmarkUDPIngest drives the built-in config's pipeline (sshd jail)
// through a real UDP listener on loopback from one unthrottled sender and
// reports messages processed per second and the share of sent datagrams
// that were processed.
func BenchmarkUDPIngest(b *testing.B) {
	cfg, err := config.Load("", nil)
	if err != nil {
		b.Fatal(err)
	}
	pc := cfg.Pipeline()
	pc.MaxTracked = 1 << 20
	banner := &countingBanner{}
	quiet := slog.New(slog.DiscardHandler)
	pl, err := pipeline.New(pc, banner, pipeline.Options{Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	rc, err := receiver.New([]receiver.ListenerSpec{{Network: receiver.UDP, Address: "127.0.0.1:0"}}, pl,
		receiver.Options{ReadBuffer: cfg.Listen.ReadBuffer, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go pl.Run(ctx)
	go rc.Run(ctx)

	lines := ingestLines(50000)
	conn, err := net.Dial("udp", rc.Addrs()[0].String())
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()

	base := pl.Stats().Messages
	b.ResetTimer()
	start := time.Now()
	for i := 0; i < b.N; i++ {
		if _, err := conn.Write(lines[i%len(lines)]); err != nil {
			b.Fatal(err)
		}
	}
	// Wait until everything sent is processed, or nothing moves for 200 ms
	// (the rest was dropped by the kernel).
	var got uint64
	for last, idle := uint64(0), time.Now(); ; {
		got = pl.Stats().Messages - base
		if got >= uint64(b.N) {
			break
		}
		if got != last {
			last, idle = got, time.Now()
		} else if time.Since(idle) > 200*time.Millisecond {
			break
		}
		time.Sleep(time.Millisecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(got)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(100*float64(got)/float64(b.N), "%processed")
}
