package main

import (
	"context"
	"fmt"
	"net/netip"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/nft"
)

// The packet path: what a lookup in the jail's sets costs every packet
// that reaches the rule, measured with a non-member source (the common
// case: most traffic is not banned), for empty sets, 100k single addresses
// in the hash set, and 100k prefixes in the interval set, each sent to the
// jail's port (a rule checks transport and port before it looks its sets
// up, so only such packets pay the lookups). Two more receivers show what
// the traffic sysban does not ban pays: one without any table, and one
// with the chain the UDP section's daemon has (a jail for every built-in
// filter, ingestConfig), reached on a port no jail covers, as syslog is.
// A UDP sender namespace is joined by a veth pair to each receiving
// namespace, each with its own table. The sender writes datagrams as fast
// as it can to one receiver at a time, in short rounds taking turns, so
// that a change in the machine's load hits all alike; the least disturbed
// (cheapest) round of each is the figure, the median beside it.
//
// The figure to read is the sender's CPU per datagram: veth hands the
// packet to the receiving stack in the sender's own softirq, so its thread
// time includes the input hook and the set lookups, while the machine's
// other load moves it far less than packets per second (printed beside
// it). The difference to the empty sets is the lookup's cost.

const (
	pathRound  = 500 * time.Millisecond
	pathRounds = 12
	pathPort   = 9
)

// pathKinds are the receivers: the path jail with empty sets, 100k
// addresses, 100k prefixes; no table; the UDP daemon's jails.
var pathKinds = []string{"empty", "hash", "interval", "none", "daemon"}

// pathAddrs are the sender's and receiver's addresses on the veth pair to
// receiver i.
func pathAddrs(i int) (sender, receiver netip.Addr) {
	a := [16]byte{0xfd, 0x00, 0x00, 0x5b, 0, byte(i + 1), 15: 1}
	sender = netip.AddrFrom16(a)
	a[15] = 2
	return sender, netip.AddrFrom16(a)
}

// pathFill returns n bans in jail of kind "hash" (single IPv6 addresses)
// or "interval" (IPv6 /64s, every other one, so that no two merge into
// one range), none covering a sender (fd00::/8).
func pathFill(jail, kind string, n int, start time.Time) []sysban.Ban {
	out := make([]sysban.Ban, 0, n)
	for i := range n {
		var a [16]byte
		a[0], a[1], a[2], a[3] = 0x20, 0x01, 0x0d, 0xb8
		j := uint32(i) * 2
		a[4], a[5], a[6], a[7] = byte(j>>24), byte(j>>16), byte(j>>8), byte(j)
		b := sysban.Ban{Jail: jail, Start: start, Duration: time.Hour, Failures: 1}
		if kind == "hash" {
			a[15] = 1
			b.Addr = netip.AddrFrom16(a)
			b.Prefix = netip.PrefixFrom(b.Addr, 128)
		} else {
			b.Prefix = netip.PrefixFrom(netip.AddrFrom16(a), 64)
			b.Addr = b.Prefix.Addr()
		}
		out = append(out, b)
	}
	return out
}

// sectionPrefixPath measures the receivers and says what the figures
// decide.
func (b *bench) sectionPrefixPath(ctx context.Context) error {
	send, err := b.newNS(ctx)
	if err != nil {
		return err
	}
	defer send.Close()
	recvs := make([]*netns, len(pathKinds))
	for i, kind := range pathKinds {
		recv, err := b.newNS(ctx)
		if err != nil {
			return err
		}
		defer recv.Close()
		recvs[i] = recv
		if err := vethPair(ctx, send, recv, i); err != nil {
			return err
		}
		if err := b.pathTable(ctx, recv, kind, b.opts.bans); err != nil {
			return err
		}
	}
	bl, err := newBlaster(send, recvs)
	if err != nil {
		return err
	}
	defer bl.close()
	bl.blast(0, 300*time.Millisecond) // warm-up
	nsPerPkt := make([][]float64, len(pathKinds))
	pps := make([][]float64, len(pathKinds))
	for range pathRounds {
		for i := range pathKinds {
			sent, cpu, err := bl.measure(i)
			if err != nil {
				return err
			}
			nsPerPkt[i] = append(nsPerPkt[i], float64(cpu.Nanoseconds())/float64(max(sent, 1)))
			pps[i] = append(pps[i], rate(float64(sent), pathRound))
		}
	}
	best := make([]float64, len(pathKinds))
	for i, kind := range pathKinds {
		best[i] = slices.Min(nsPerPkt[i])
		what := map[string]string{"empty": "empty sets", "hash": si(float64(b.opts.bans)) + " addresses (hash set)", "interval": si(float64(b.opts.bans)) + " prefixes (interval set)",
			"none": "no sysban table", "daemon": "UDP daemon's jails, port no jail covers"}[kind]
		b.add(result{section: "prefix", name: "packet path, non-member source, " + what, target: "-",
			value: fmt.Sprintf("%.0f ns/pkt", best[i]), ratio: fmt.Sprintf("sender CPU, best round; median %.0f; %s pkt/s sent", median(nsPerPkt[i]), si(median(pps[i]))), status: passIf(bl.received(i) > 0)})
	}
	hash, interval := best[1]-best[0], best[2]-best[0]
	// The decision these figures support (nft/prefixes.go): every packet
	// to a jail's port pays both lookups, so 100k single addresses belong
	// in the hash set, and only prefixes (which need intervals) in the
	// interval set beside it.
	decision := fmt.Sprintf("interval costs %+.0f ns/pkt more than hash: single addresses stay in hash sets, prefixes alone in the interval set", interval-hash)
	b.add(result{section: "prefix", name: "  lookup cost over empty sets: hash / interval", target: "-",
		value: fmt.Sprintf("%+.0f / %+.0f ns", hash, interval), ratio: decision, status: "INFO"})
	jails, err := b.benchJails()
	if err != nil {
		return err
	}
	b.add(result{section: "prefix", name: "  sysban's chain for traffic it does not ban", target: "-",
		value: fmt.Sprintf("%+.0f ns/pkt", best[4]-best[3]),
		ratio: fmt.Sprintf("the UDP daemon's %d jails over no table: what each syslog datagram costs the UDP section's sender", len(jails)), status: "INFO"})
	return nil
}

// median of xs (xs reordered).
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// benchJails are the jail rules of the UDP section's daemon, checked to
// leave pathPort alone (the "daemon" receiver's datagrams must match no
// jail, as syslog does not).
func (b *bench) benchJails() ([]sysban.JailRule, error) {
	cfg, err := config.Parse("bench.yaml", []byte(daemonConfig(b.dir, ingestConfig(100000))), nil)
	if err != nil {
		return nil, fmt.Errorf("path: the UDP daemon's config: %w", err)
	}
	rules := cfg.Rules()
	for _, r := range rules {
		covers := len(r.Ports) == 0 || slices.ContainsFunc(r.Ports, func(p sysban.PortRange) bool { return p.First <= pathPort && pathPort <= p.Last })
		if r.Protocol != sysban.TCP && covers {
			return nil, fmt.Errorf("path: jail %s covers UDP port %d", r.Name, pathPort)
		}
	}
	return rules, nil
}

// pathTable sets up sysban's table in recv for kind: one UDP jail on
// pathPort, its sets holding n bans of kind; nothing ("none"); or the UDP
// daemon's jails ("daemon"), empty.
func (b *bench) pathTable(ctx context.Context, recv *netns, kind string, n int) error {
	if kind == "none" {
		return nil
	}
	fd, err := recv.fd()
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	be, err := nft.Open(nft.Options{NetNS: fd})
	if err != nil {
		return fmt.Errorf("path: nft: %w", err)
	}
	defer be.Close()
	rules := []sysban.JailRule{{Name: "path", Ports: []sysban.PortRange{{First: pathPort, Last: pathPort}}, Protocol: sysban.UDP, Verdict: sysban.Drop}}
	if kind == "daemon" {
		if rules, err = b.benchJails(); err != nil {
			return err
		}
	}
	if err := be.Setup(ctx, rules); err != nil {
		return fmt.Errorf("path: nft: %w", err)
	}
	if kind == "empty" || kind == "daemon" {
		return nil
	}
	if err := be.Apply(ctx, pathFill("path", kind, n, time.Now())); err != nil {
		return fmt.Errorf("path: apply: %w", err)
	}
	return nil
}

// vethPair joins send and recv by veth pair i with the addresses of
// pathAddrs(i) (no duplicate address detection: usable at once).
func vethPair(ctx context.Context, send, recv *netns, i int) error {
	ip := func(args ...string) error {
		if out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("path: ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	sender, receiver := pathAddrs(i)
	a, b := fmt.Sprintf("sbpA%d", i), fmt.Sprintf("sbpB%d", i)
	steps := [][]string{
		{"link", "add", a, "netns", send.name, "type", "veth", "peer", "name", b, "netns", recv.name},
		{"-n", send.name, "addr", "add", sender.String() + "/64", "dev", a, "nodad"},
		{"-n", recv.name, "addr", "add", receiver.String() + "/64", "dev", b, "nodad"},
		{"-n", send.name, "link", "set", a, "up"},
		{"-n", recv.name, "link", "set", b, "up"},
	}
	for _, s := range steps {
		if err := ip(s...); err != nil {
			return err
		}
	}
	return nil
}

// blaster sends datagrams from the sender namespace to the receivers,
// each counting what arrives.
type blaster struct {
	fds  []int // connected sockets, one per receiver
	rcv  []*bareUDP
	done chan struct{}
	wg   sync.WaitGroup
}

func newBlaster(send *netns, recvs []*netns) (*blaster, error) {
	bl := &blaster{done: make(chan struct{})}
	for i, recv := range recvs {
		_, receiver := pathAddrs(i)
		r, err := newBareUDP(recv, netip.AddrPortFrom(receiver, pathPort).String())
		if err != nil {
			bl.close()
			return nil, err
		}
		bl.rcv = append(bl.rcv, r)
		bl.wg.Add(1)
		go func() { defer bl.wg.Done(); r.receive(bl.done) }()
		err = send.do(func() error {
			fd, err := unix.Socket(unix.AF_INET6, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
			if err != nil {
				return err
			}
			bl.fds = append(bl.fds, fd)
			return unix.Connect(fd, &unix.SockaddrInet6{Port: pathPort, Addr: receiver.As16()})
		})
		if err != nil {
			bl.close()
			return nil, fmt.Errorf("path: sender: %w", err)
		}
	}
	return bl, nil
}

// blast writes to receiver i for d and returns how many datagrams went out.
func (bl *blaster) blast(i int, d time.Duration) int64 {
	payload := make([]byte, 64)
	var n int64
	end := time.Now().Add(d)
	for {
		for range 256 {
			if _, err := unix.Write(bl.fds[i], payload); err == nil {
				n++
			}
		}
		if time.Now().After(end) {
			return n
		}
	}
}

// measure blasts receiver i for a round on a thread of its own and returns
// what was sent and the thread's CPU time.
func (bl *blaster) measure(i int) (sent int64, cpu time.Duration, err error) {
	cpu, err = onCPU(-1, func() { sent = bl.blast(i, pathRound) })
	return sent, cpu, err
}

// received is what receiver i counted so far.
func (bl *blaster) received(i int) int64 { return bl.rcv[i].count.Load() }

func (bl *blaster) close() {
	for _, fd := range bl.fds {
		unix.Close(fd)
	}
	close(bl.done)
	for _, r := range bl.rcv {
		r.conn.Close()
	}
	bl.wg.Wait()
}
