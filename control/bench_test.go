package control

import (
	"context"
	"net/netip"
	"testing"
)

// BenchmarkStatus is one `sysban status` round trip over the socket
// (connection reused), the floor of every CLI verb's latency.
func BenchmarkStatus(b *testing.B) {
	c, err := Dial(serveB(b))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for b.Loop() {
		if _, err := c.Status(ctx); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBannedLarge decodes a ban list of 100,000 addresses, the size
// of a jail at maxtracked.
func BenchmarkBannedLarge(b *testing.B) {
	f := &fakeDaemon{}
	for i := range 100000 {
		a := netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)})
		f.bans = append(f.bans, BanInfo{Jail: "sshd", Prefix: netip.PrefixFrom(a, a.BitLen()), Addr: a, Start: t0, Until: t0, Failures: 5})
	}
	c, err := Dial(serveBWith(b, f))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	for b.Loop() {
		bans, err := c.Banned(ctx, netip.Prefix{})
		if err != nil || len(bans) != 100000 {
			b.Fatal(len(bans), err)
		}
	}
}

func serveB(b *testing.B) string { return serveBWith(b, &fakeDaemon{}) }

func serveBWith(b *testing.B, d Daemon) string {
	path := b.TempDir() + "/control.sock"
	s, err := NewServer(path, d, nil)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx) }()
	b.Cleanup(func() { cancel(); <-done })
	return path
}
