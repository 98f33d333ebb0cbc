package pipeline

import (
	"context"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline/internal/sample"
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
// (filters/testdata/NAME.log) through a Tester, as `sysban test` and the daemon
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
			fx, err := sample.Read(filepath.Join(samplesDir, name+".log"))
			if err != nil {
				b.Skipf("no sample: %v", err)
			}
			tester, err := NewTester([]FilterSpec{builtins[name]}, TesterOptions{Mode: fx.Mode})
			if err != nil {
				b.Fatal(err)
			}
			benchTester(b, tester, fx.Lines)
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
	var lines []sample.Line
	for _, path := range samplePaths(b) {
		fx, err := sample.Read(path)
		if err != nil {
			b.Fatal(err)
		}
		lines = append(lines, fx.Lines...)
	}
	benchTester(b, tester, lines)
}

func benchTester(b *testing.B, tester *Tester, lines []sample.Line) {
	if len(lines) == 0 {
		b.Skip("no lines")
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		tester.Test(&lines[i%len(lines)].Msg)
		i++
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "lines/s")
}

func BenchmarkServiceFilters(b *testing.B) {
	lines := map[string][]string{
		"named": {
			"client @0x7f3a1c0d2168 192.0.2.7#41234 (example.com): query (cache) 'example.com/ANY/IN' denied",
			"28-Jun-2013 15:40:23.888 info: client 67.220.66.3#40117: view external: query: 1rip.com IN ANY +E (192.168.11.242)",
			"client @0x7f3a1c0d2168 192.0.2.7#40117 (example.com): query: example.com IN A +E(0)K (192.0.2.53)",
		},
		"openvpn": {
			"176.114.32.92:3509 WARNING: Bad encapsulated packet length from peer (36695), which must be > 0 and <= 1560 -- please ensure that --tun-mtu or --link-mtu is equal on both peers -- this condition could also indicate a possible active attack on the TCP link -- [Attempting restart...]",
			"192.0.2.7:51234 TLS Error: TLS handshake failed",
			"client1/192.0.2.7:51234 MULTI: Learn: 10.8.0.6 -> client1/192.0.2.7:51234",
		},
		"apache": {
			"[Sat Jun 30 04:09:24 2012] [error] [client 118.142.43.102] File does not exist: /data/www/html/phpMyAdmin-2.8.3",
			"[Thu Jun 09 10:11:12.123456 2011] [core:info] [pid 123:tid 456] [client 192.0.2.7:51234] AH00128: File does not exist: /var/www/html/favicon.ico",
			"[Thu Jun 09 10:11:12.123456 2011] [mpm_event:notice] [pid 123:tid 456] AH00489: Apache/2.4.57 (Debian) configured -- resuming normal operations",
		},
		"vsftpd": {
			"pam_unix(vsftpd:auth): authentication failure; logname= uid=0 euid=0 tty=ftp ruser=bob rhost=192.0.2.7  user=bob",
			"[pid 1234] [bob] FAIL LOGIN: Client \"192.0.2.7\"",
			"[pid 1234] [bob] OK LOGIN: Client \"192.0.2.7\"",
		},
	}
	for _, name := range []string{"named", "openvpn", "apache", "vsftpd"} {
		spec := BuiltinFilters()[name]
		tester, err := NewTester([]FilterSpec{spec}, TesterOptions{})
		if err != nil {
			b.Fatal(err)
		}
		msgs := make([]*sysban.Message, len(lines[name]))
		for i, l := range lines[name] {
			msgs[i] = &sysban.Message{AppName: spec.Programs[0], Text: l}
		}
		b.Run(name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				tester.Test(msgs[i%len(msgs)])
			}
		})
	}
}
