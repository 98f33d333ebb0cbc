package pipeline

import (
	"context"
	"fmt"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/sysban/sysban"
)

type nopBanner struct{}

func (nopBanner) Apply(context.Context, []sysban.Ban) error { return nil }

// benchMessages builds a mix like a busy syslog stream: mostly other
// programs, some ordinary sshd noise, some sshd failures from many
// addresses (so tracking, eviction, bans and already-banned all happen).
func benchMessages(kind string) []*sysban.Message {
	var out []*sysban.Message
	add := func(app, text string) { out = append(out, &sysban.Message{AppName: app, Text: text}) }
	for i := range 4096 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}).String()
		fail := func() {
			switch i % 4 {
			case 0:
				add("sshd", "Failed password for invalid user admin"+fmt.Sprint(i)+" from "+a+" port 52144 ssh2")
			case 1:
				add("sshd", "Invalid user oracle from "+a+" port 40022")
			case 2:
				add("sshd-session", "pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 tty=ssh ruser= rhost="+a+"  user=root")
			case 3:
				add("sshd", "Connection closed by authenticating user root "+a+" port 4444 [preauth]")
			}
		}
		benign := func() {
			switch i % 3 {
			case 0:
				add("sshd", "Accepted publickey for alice from 192.0.2.10 port 50100 ssh2: ED25519 SHA256:q2k3Vb8zN0s9aHR0cHM6Ly9leGFtcGxl")
			case 1:
				add("sshd", "pam_unix(sshd:session): session opened for user alice(uid=1000) by alice(uid=0)")
			case 2:
				add("sshd", "Received disconnect from 192.0.2.10 port 50100:11: disconnected by user")
			}
		}
		unrouted := func() {
			switch i % 3 {
			case 0:
				add("CRON", "(root) CMD (command -v debian-sa1 > /dev/null && debian-sa1 1 1)")
			case 1:
				add("kernel", "[UFW BLOCK] IN=eth0 OUT= MAC=00:00 SRC=192.0.2.1 DST=192.0.2.2 LEN=40 PROTO=TCP SPT=1 DPT=2")
			case 2:
				add("postfix/smtpd", "connect from unknown[192.0.2.3]")
			}
		}
		switch kind {
		case "failures":
			fail()
		case "benign":
			benign()
		case "unrouted":
			unrouted()
		case "mix": // 10% failures, 30% sshd noise, 60% other programs
			switch i % 10 {
			case 0:
				fail()
			case 1, 2, 3:
				benign()
			default:
				unrouted()
			}
		}
	}
	return out
}

func benchPipeline(b *testing.B) *Pipeline {
	p, err := New(Config{Jails: []JailSpec{{Name: "sshd", Filter: "sshd", MaxRetry: 3, FindTime: 10 * time.Minute, BanTime: time.Hour}}}, nopBanner{}, Options{})
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	b.Cleanup(func() { cancel(); <-done })
	return p
}

func BenchmarkHandle(b *testing.B) {
	for _, kind := range []string{"mix", "failures", "benign", "unrouted"} {
		for _, prefilter := range []bool{true, false} {
			name := kind
			if !prefilter {
				name += "/noprefilter"
			}
			b.Run(name, func(b *testing.B) {
				msgs := benchMessages(kind)
				p := benchPipeline(b)
				p.prefilter = prefilter
				b.ReportAllocs()
				i := 0
				for b.Loop() {
					p.Handle(msgs[i%len(msgs)])
					i++
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
			})
		}
	}
}

func BenchmarkHandleParallel(b *testing.B) {
	msgs := benchMessages("mix")
	p := benchPipeline(b)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			p.Handle(msgs[i%len(msgs)])
			i++
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

// BenchmarkFilter times each built-in filter over its annotated sample
// (testdata/NAME.log) through a Tester, as `sysban test` and the daemon
// match: routing, prefilter, regexes, correlation state.
func BenchmarkFilter(b *testing.B) {
	builtins := BuiltinFilters()
	names := make([]string, 0, len(builtins))
	for name := range builtins {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		b.Run(name, func(b *testing.B) {
			fx, err := readFixture("testdata/" + name + ".log")
			if err != nil {
				b.Skipf("no sample: %v", err)
			}
			tester, err := NewTester([]FilterSpec{builtins[name]}, TesterOptions{Mode: fx.mode})
			if err != nil {
				b.Fatal(err)
			}
			benchTester(b, tester, fx.lines)
		})
	}
}

// BenchmarkTesterAll runs every built-in filter over every sample line, as
// `sysban test all` does: each line is routed to the filters of its program.
func BenchmarkTesterAll(b *testing.B) {
	var specs []FilterSpec
	for _, s := range BuiltinFilters() {
		specs = append(specs, s)
	}
	tester, err := NewTester(specs, TesterOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var lines []fixtureLine
	for _, path := range fixturePaths(b) {
		fx, err := readFixture(path)
		if err != nil {
			b.Fatal(err)
		}
		lines = append(lines, fx.lines...)
	}
	benchTester(b, tester, lines)
}

func benchTester(b *testing.B, tester *Tester, lines []fixtureLine) {
	if len(lines) == 0 {
		b.Skip("no lines")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tester.Test(&lines[i%len(lines)].msg)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}
