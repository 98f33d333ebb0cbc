package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
	"github.com/sysban/sysban/receiver"
	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// ingestConfig enables a jail for every built-in syslog filter with its default
// maxretry (5) and a findtime of an hour, so bans are allowed and happen:
// attackers of the generated traffic are banned as they reach 5 failures
// and their later failures count as "already banned". (A huge maxretry to
// avoid bans is not an option: a jail keeps a ring of maxretry failure times
// per address, allocated in full.) Plus the probe jail of the latency
// section, which bans at the first failure.
func ingestConfig(maxTracked int) string {
	var names []string
	for n := range pipeline.BuiltinFilters() {
		// portprobe reads NFLOG probes, not syslog; enabling it needs
		// nflog trap ports, which the bench's syslog traffic never uses.
		if n != "portprobe" {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	var b bytes.Buffer
	fmt.Fprintf(&b, "maxtracked: %d\n", maxTracked)
	b.WriteString(`filters:
  benchprobe:
    programs: [benchprobe]
    failregex: ['^bench probe failure from <HOST>$']
jails:
  benchprobe: {enabled: true, maxretry: 1, findtime: 1h, bantime: 1h}
`)
	for _, n := range names {
		fmt.Fprintf(&b, "  %s: {enabled: true, findtime: 1h}\n", n)
	}
	return b.String()
}

// traffic is a generated stream as wire messages, with the failures the
// daemon must count for it (one per matching filter, as its jails count).
type traffic struct {
	msgs     [][]byte
	failures int
	// again is what the daemon counts when the same lines come once more
	// within a minute (the TCP section replays its buffers): fewer than
	// failures, since OpenVPN's resent UDP packets (the same address and
	// port within a minute) are one attempt.
	again int
}

// expect is what the daemon's jails count for the traffic sent reps times
// in a row within a minute.
func (t traffic) expect(reps int) int { return t.failures + (reps-1)*t.again }

// makeTraffic generates n lines (plus held closes) from seed. It runs them
// through a Tester with every built-in filter to know how many failures
// the daemon's jails will count.
func makeTraffic(seed uint64, attackers, n int) (traffic, error) {
	now := time.Now()
	g := NewGenerator(seed, attackers)
	lines := make([]Line, 0, n+64)
	for range n {
		lines = append(lines, g.Next())
	}
	lines = append(lines, g.Flush()...)
	var specs []pipeline.FilterSpec
	resends := map[string]bool{} // filters whose resent lines are one attempt
	for name, f := range pipeline.BuiltinFilters() {
		specs = append(specs, f)
		resends[name] = f.Attempts != nil && len(f.Attempts.Resends) > 0
	}
	tst, err := pipeline.NewTester(specs, pipeline.TesterOptions{Now: func() time.Time { return now }})
	if err != nil {
		return traffic{}, fmt.Errorf("traffic: %w", err)
	}
	var t traffic
	msgs := make([]sysban.Message, len(lines))
	for i, l := range lines {
		w := AppendWire(nil, now, l)
		t.msgs = append(t.msgs, w)
		if err := receiver.ParseFileLine(w, now, &msgs[i]); err != nil {
			return traffic{}, fmt.Errorf("traffic: parse own line %q: %w", w, err)
		}
	}
	// The same Tester twice over the lines: the second pass counts what a
	// replay counts, with the first pass's attempts still open. Each
	// failure line counts one, as in the daemon's totals (a held line is
	// counted at its verdict, an end line counts what it closes), except,
	// in the replay, a resent line the first pass counted: the same
	// address and port within a minute is the same attempt
	// (filters.AttemptRules.Resends), which the replay makes of each.
	repeat := make([][]bool, len(msgs))
	for pass, n := range []*int{&t.failures, &t.again} {
		for i := range msgs {
			if lines[i].Same {
				continue // a further line of an attempt: counts nothing
			}
			m := msgs[i] // a copy: the Tester may refer to the message
			for j, x := range tst.Test(&m) {
				if pass == 0 {
					repeat[i] = append(repeat[i], x.Repeat)
				} else if x.Repeat && resends[x.Filter] && (j >= len(repeat[i]) || !repeat[i][j]) {
					continue
				}
				if !x.Pending && !x.Ignored && x.Addr.IsValid() {
					*n++
				}
			}
		}
	}
	return t, nil
}

// udpSender sends datagrams from msgs round-robin at rate msgs/s (0: as
// fast as it can) for dur, and returns how many it sent (sendPaced, not
// spinning).
func udpSender(ctx context.Context, c net.Conn, msgs [][]byte, rate int, dur time.Duration) int {
	return sendPaced(ctx, c, msgs, rate, dur, false).sent
}

// sendStats is what a paced sender did: how many it sent, how many it
// gave up sending because it had fallen behind (preempted), and how many
// it sent in each sendWindow of the run, to show how steady the rate was.
type sendStats struct {
	sent, skipped int
	windows       []int
	cpu           time.Duration // the sending thread's CPU time, if measured
}

// senderLoad describes the sender's own side of a step of dur: its rate,
// its CPU per datagram and how busy its thread was (a paced sender that
// spins is always busy; the unlimited one is busy when it is the limit).
func (st sendStats) senderLoad(dur time.Duration) string {
	if st.cpu <= 0 || st.sent == 0 {
		return fmt.Sprintf("sender %s/s", si(rate(float64(st.sent), dur)))
	}
	return fmt.Sprintf("sender %s/s, %s, thread busy %.0f%%", si(rate(float64(st.sent), dur)), usPerMsg(st.cpu, float64(st.sent)), 100*st.cpu.Seconds()/dur.Seconds())
}

const (
	sendWindow = 10 * time.Millisecond
	// maxBehind is how far behind its schedule a paced sender may catch
	// up: a sender preempted for longer skips the rest, so the stream
	// stays even (no burst of a whole time slice's messages) and the
	// shortfall shows in the rate it reached and in skipped.
	maxBehind = 2 * time.Millisecond
)

// sendBatch is the most datagrams a sender hands the kernel in one call.
const sendBatch = 16

// sendPaced sends datagrams from msgs round-robin at rate msgs/s (0: as
// fast as it can) for dur. Pacing is by budget: it sends what is due, at
// most sendBatch at a time, and waits when ahead: spinning on the clock
// when spin is set (a sender pinned to a CPU of its own, where a sleep's
// wake-up latency would turn the stream into bursts), else sleeping 200 µs
// (a sender sharing CPUs with the receiver must not burn them).
//
// Each batch goes out with one sendmmsg (x/net ipv4 WriteBatch) when c is
// a UDP socket: over loopback the sender's CPU also pays for the kernel's
// delivery of every datagram into the receiver's queue, and a system call
// per datagram on top of that made the sender, not the receiver under
// test, the limit of the UDP section.
func sendPaced(ctx context.Context, c net.Conn, msgs [][]byte, rate int, dur time.Duration, spin bool) sendStats {
	start := time.Now()
	var st sendStats
	if dur <= time.Minute { // a step, not the latency section's endless load
		st.windows = make([]int, int(dur/sendWindow)+1)
	}
	w := newBatchWriter(c)
	maxDue := int(float64(rate) * maxBehind.Seconds())
	for {
		el := time.Since(start)
		if el >= dur || ctx.Err() != nil {
			return st
		}
		batch := sendBatch
		if rate > 0 {
			due := int(float64(rate)*el.Seconds()) - st.sent - st.skipped
			if due > maxDue && maxDue > 0 {
				st.skipped += due - maxDue
				due = maxDue
			}
			batch = min(batch, due)
			if batch <= 0 {
				if !spin {
					time.Sleep(200 * time.Microsecond)
				}
				continue
			}
		}
		n := w.write(msgs, st.sent, batch)
		st.sent += n
		if i := int(el / sendWindow); i < len(st.windows) {
			st.windows[i] += n
		}
	}
}

// batchWriter sends datagrams on a connected socket, a batch per sendmmsg
// when it is a UDP socket, else one write each.
type batchWriter struct {
	c  net.Conn
	pc *ipv4.PacketConn // nil: not UDP
	ms []ipv4.Message
}

func newBatchWriter(c net.Conn) *batchWriter {
	w := &batchWriter{c: c}
	if u, ok := c.(*net.UDPConn); ok {
		w.pc = ipv4.NewPacketConn(u)
		w.ms = make([]ipv4.Message, sendBatch)
		for i := range w.ms {
			w.ms[i].Buffers = make([][]byte, 1)
		}
	}
	return w
}

// write sends n datagrams, msgs[from], msgs[from+1], ... (round-robin), and
// returns how many the kernel took. A full receive buffer drops silently on
// loopback; an error (ECONNREFUSED while nothing listens) is not a send.
func (w *batchWriter) write(msgs [][]byte, from, n int) int {
	if w.pc == nil {
		sent := 0
		for range n {
			if _, err := w.c.Write(msgs[(from+sent)%len(msgs)]); err == nil {
				sent++
			}
		}
		return sent
	}
	n = min(n, len(w.ms))
	for i := range n {
		w.ms[i].Buffers[0] = msgs[(from+i)%len(msgs)]
	}
	sent, _ := w.pc.WriteBatch(w.ms[:n], 0)
	return max(sent, 0)
}

// steadiness describes how evenly st's messages went out: the 1st and
// 99th percentiles and the largest of the counts per whole sendWindow,
// against their mean (1.00-1.00 is a perfectly even stream).
func (st sendStats) steadiness() string {
	if len(st.windows) < 2 || st.sent == 0 {
		return "-"
	}
	full := slices.Clone(st.windows[:len(st.windows)-1]) // the last one is partial
	slices.Sort(full)
	sum := 0
	for _, n := range full {
		sum += n
	}
	mean := float64(sum) / float64(len(full))
	at := func(q float64) float64 { return float64(full[int(q*float64(len(full)-1))]) / mean }
	out := fmt.Sprintf("%s windows p1 %.2f p99 %.2f max %.2f of mean", sendWindow, at(0.01), at(0.99), at(1))
	if st.skipped > 0 {
		out += fmt.Sprintf(", %s skipped behind schedule", si(float64(st.skipped)))
	}
	return out
}

// bareUDP is the baseline: a plain Go UDP receiver with an 8 MB receive
// buffer that only counts datagrams.
type bareUDP struct {
	conn  *net.UDPConn
	count atomic.Int64
}

func newBareUDP(ns *netns, addr string) (*bareUDP, error) {
	var c *net.UDPConn
	err := ns.do(func() error {
		ua, err := net.ResolveUDPAddr("udp", addr)
		if err != nil {
			return err
		}
		c, err = net.ListenUDP("udp", ua)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("bare udp: %w", err)
	}
	// SO_RCVBUFFORCE ignores net.core.rmem_max (we are root), as the daemon
	// does with listen.readbuffer.
	if raw, err := c.SyscallConn(); err == nil {
		_ = raw.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 8<<20)
		})
	}
	return &bareUDP{conn: c}, nil
}

// receive counts datagrams until done is closed and the socket has been
// quiet for 200 ms.
func (u *bareUDP) receive(done <-chan struct{}) {
	buf := make([]byte, 65536)
	for {
		_ = u.conn.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, err := u.conn.Read(buf)
		if err == nil {
			u.count.Add(1)
			continue
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			select {
			case <-done:
				return
			default:
				continue
			}
		}
		return
	}
}

func (b *bench) sectionUDP(ctx context.Context) error {
	ns, err := b.newNS(ctx)
	if err != nil {
		return err
	}
	defer ns.Close()
	tr, err := makeTraffic(b.opts.seed, b.opts.attackers, 65536)
	if err != nil {
		return err
	}

	// Baseline: the bare receiver, same sender, as fast as it sends.
	sendCPU, recvCPU, placed := -1, -1, "unpinned"
	var wrap []string
	if b.opts.pin {
		sendCPU, recvCPU = senderCPU, receiverCPU
		placed = fmt.Sprintf("sender CPU %d, receiver CPU %d", senderCPU, receiverCPU)
		// taskset binds itself before it execs the daemon, so every
		// thread the daemon ever starts inherits CPU receiverCPU alone.
		wrap = []string{"env", "GOMAXPROCS=1", "taskset", "-c", fmt.Sprint(receiverCPU)}
		// The bench's own threads (runtime, metrics scrapes) keep off the
		// receiver's CPU: all of them go to the sender's, and the threads
		// they start inherit that; the bare receiver's thread moves itself.
		var all, senderSet unix.CPUSet
		if err := unix.SchedGetaffinity(0, &all); err != nil {
			return fmt.Errorf("udp: %w", err)
		}
		senderSet.Set(senderCPU)
		if err := pinThreads(os.Getpid(), &senderSet); err != nil {
			return fmt.Errorf("udp: %w", err)
		}
		defer pinThreads(os.Getpid(), &all)
	}
	// send runs the sender, pinned when asked; pinned, it spins to pace.
	// Its thread's CPU time tells which side limits a step: a sender busy
	// all the step long without spinning (unlimited) could send no faster.
	send := func(c net.Conn, r int) (sendStats, error) {
		var st sendStats
		cpu, err := onCPU(sendCPU, func() { st = sendPaced(ctx, c, tr.msgs, r, b.opts.stepDur, b.opts.pin) })
		st.cpu = cpu
		return st, err
	}
	type recvOutcome struct {
		cpu time.Duration
		err error
	}
	// measureBare runs the sender unlimited against a fresh bare receiver
	// and adds its row; it returns the rate received and the receiver's
	// CPU per datagram.
	measureBare := func() (float64, float64, error) {
		bare, err := newBareUDP(ns, "127.0.0.1:5515")
		if err != nil {
			return 0, 0, err
		}
		defer bare.conn.Close()
		sc, err := ns.dial("udp", "127.0.0.1:5515")
		if err != nil {
			return 0, 0, fmt.Errorf("udp: %w", err)
		}
		defer sc.Close()
		done := make(chan struct{})
		recvDone := make(chan recvOutcome, 1)
		kern0, err := udpInErrors(ns)
		if err != nil {
			return 0, 0, err
		}
		go func() {
			var rerr error
			cpu, err := onCPU(recvCPU, func() {
				if b.opts.pin {
					rerr = bare.receiveBatches(done)
				} else {
					bare.receive(done)
				}
			})
			recvDone <- recvOutcome{cpu, errors.Join(err, rerr)}
		}()
		st, err := send(sc, 0)
		close(done)
		ro := <-recvDone
		if err != nil || ro.err != nil {
			return 0, 0, fmt.Errorf("udp: %w", errors.Join(err, ro.err))
		}
		kern1, err := udpInErrors(ns)
		if err != nil {
			return 0, 0, err
		}
		got := float64(bare.count.Load())
		r := rate(got, b.opts.stepDur)
		name := "bare Go receiver (8 MB buffer), unlimited, " + placed
		if b.opts.pin {
			name = "bare receiver (8 MB buffer, recvmmsg), unlimited, " + placed
		}
		b.add(result{section: "udp", name: name, target: "baseline",
			value: si(r) + "/s", ratio: fmt.Sprintf("%.4f of sent (%s), kernel drops %d, %s, receiver thread busy %.0f%%; %s", got/float64(st.sent), si(float64(st.sent)), kern1-kern0, usPerMsg(ro.cpu, got), 100*ro.cpu.Seconds()/b.opts.stepDur.Seconds(), st.senderLoad(b.opts.stepDur)), status: "INFO"})
		return r, float64(ro.cpu.Microseconds()) / got, nil
	}
	var bareCPU float64
	if b.bare, bareCPU, err = measureBare(); err != nil {
		return err
	}

	d, err := startDaemon(ctx, b.bin, ns, filepath.Join(b.dir, "udp"), daemonConfig(filepath.Join(b.dir, "udp"), ingestConfig(100000)), wrap...)
	if err != nil {
		return err
	}
	defer d.stop()
	dc, err := ns.dial("udp", "127.0.0.1:5514")
	if err != nil {
		return fmt.Errorf("udp: %w", err)
	}
	defer dc.Close()

	type step struct {
		rate int
		name string
	}
	var steps []step
	for _, r := range b.opts.rates {
		steps = append(steps, step{r, fmt.Sprintf("daemon at %s/s", si(float64(r)))})
	}
	target := int(0.8 * b.bare)
	steps = append(steps, step{target, fmt.Sprintf("daemon at 0.8 bare, %s/s", si(float64(target)))},
		step{int(b.bare), fmt.Sprintf("daemon at bare rate %s/s", si(b.bare))}, step{0, "daemon, unlimited"})
	var daemonCPU float64 // CPU-µs per message, unlimited
	for _, s := range steps {
		s0, err := d.scrape()
		if err != nil {
			return err
		}
		base := s0.sum("sysban_messages_received_total", "udp:")
		dropped0 := s0.sum("sysban_messages_dropped_total", "udp:")
		cpu0, err := processCPU(d.pid())
		if err != nil {
			return fmt.Errorf("udp: %w", err)
		}
		kern0, err := udpInErrors(ns)
		if err != nil {
			return err
		}
		st, err := send(dc, s.rate)
		if err != nil {
			return fmt.Errorf("udp: %w", err)
		}
		sent := st.sent
		// Polled every 50 ms: at 5 ms the scrapes while a lossy step's
		// count stood still for 300 ms were 4% of the daemon's CPU.
		after, err := d.settleEvery(ctx, "sysban_messages_received_total", "udp:", base+float64(sent), 300*time.Millisecond, 30*time.Second, 50*time.Millisecond)
		if err != nil {
			return fmt.Errorf("udp: %w", err)
		}
		cpu1, err := processCPU(d.pid())
		if err != nil {
			return fmt.Errorf("udp: %w", err)
		}
		s1, err := d.scrape()
		if err != nil {
			return err
		}
		kern1, err := udpInErrors(ns)
		if err != nil {
			return err
		}
		proc := after - base
		procRate := rate(proc, b.opts.stepDur)
		sentRate := rate(float64(sent), b.opts.stepDur)
		lost := float64(sent) - proc
		r := result{section: "udp", name: s.name, target: "zero loss",
			value: si(procRate) + "/s", ratio: fmt.Sprintf("sent %s/s (%s): %.4f of it, %.2f bare; lost %.0f (kernel %d, sysban %.0f); daemon %s, busy %.0f%%; %s",
				si(sentRate), st.steadiness(), proc/float64(sent), procRate/b.bare, lost, kern1-kern0, s1.sum("sysban_messages_dropped_total", "udp:")-dropped0,
				usPerMsg(cpu1-cpu0, proc), 100*(cpu1-cpu0).Seconds()/b.opts.stepDur.Seconds(), st.senderLoad(b.opts.stepDur))}
		noLoss := lost <= 0 && kern1 == kern0
		switch {
		case s.rate == 0:
			daemonCPU = float64((cpu1 - cpu0).Microseconds()) / proc
			// The most the daemon takes on its CPU, against the most the
			// bare receiver takes on the same footing.
			r.target = "≥ 0.8 bare"
			r.status = "INFO"
			if b.opts.pin {
				r.status = passIf(procRate >= 0.8*b.bare)
			}
		case s.rate == target:
			// The target: zero loss at 0.8 of the bare rate, which
			// the sender must have reached for the row to say so.
			r.target = "zero loss at 0.8 bare"
			r.status = passIf(noLoss && sentRate >= 0.99*float64(target))
		case s.rate == int(b.bare):
			r.status = "INFO"
		case float64(s.rate) <= b.bare:
			r.status = passIf(noLoss)
		default:
			r.target = "(above bare)"
			r.status = "INFO"
		}
		b.add(r)
	}
	// Which receiver is cheaper per datagram, from CPU time alone: the
	// rates above also depend on who waits for whom (a sender that cannot
	// keep up, a receiver woken per datagram), this does not.
	if bareCPU > 0 && daemonCPU > 0 {
		b.add(result{section: "udp", name: "  bare vs daemon, CPU per message (unlimited rows)", target: "-",
			value: fmt.Sprintf("%.2f", bareCPU/daemonCPU), ratio: fmt.Sprintf("%.2f vs %.2f CPU-µs/msg: on a CPU of its own the daemon could take %.2f of what the bare receiver takes (computed, not measured)", bareCPU, daemonCPU, bareCPU/daemonCPU),
			status: "INFO"})
	}
	if b.opts.pin {
		bin, err := filepath.Abs(b.bin)
		if err != nil {
			return fmt.Errorf("udp: %w", err)
		}
		desc, err := placement(d.pid(), receiverCPU, bin)
		value := "as asked"
		if err != nil {
			value = "elsewhere"
		}
		b.add(result{section: "udp", name: "daemon's placement after the steps", target: fmt.Sprintf("CPU %d alone", receiverCPU),
			value: value, ratio: desc, status: passIf(err == nil)})
		if err != nil {
			return fmt.Errorf("udp: %w", err)
		}
	}
	return nil
}

// frame frames one message for TCP: LF-terminated or octet-counted.
func frame(dst, msg []byte, octet bool) []byte {
	if octet {
		dst = strconv.AppendInt(dst, int64(len(msg)), 10)
		dst = append(dst, ' ')
		return append(dst, msg...)
	}
	dst = append(dst, msg...)
	return append(dst, '\n')
}

// sectionTCP measures each framing on a fresh daemon in two passes of the
// same -tcp-msgs messages. In the cold pass the traffic's attackers reach
// maxretry and are banned as it goes: a ban storm (tens of thousands of
// bans written to the store and the kernel, and logged, within seconds) on
// top of ingestion. The second pass is the steady state: the same
// attackers' failures still go through parsing, matching and counting (as
// "already banned") but their bans exist. The target is judged on the
// steady state; the cold pass's rate is printed beside it.
func (b *bench) sectionTCP(ctx context.Context) error {
	conns := b.opts.tcpConns
	perConn := b.opts.tcpMsgs / conns
	bufLines := min(perConn, 100_000)
	trs := make([]traffic, conns)
	for i := range trs {
		// Own seed per connection: the sendmail queue ids of two
		// connections never collide, so each close finds its open.
		var err error
		if trs[i], err = makeTraffic(b.opts.seed+100+uint64(i), b.opts.attackers, bufLines); err != nil {
			return err
		}
	}
	var on, off tcpRun
	for _, octet := range []bool{false, true} {
		name := "LF"
		if octet {
			name = "octet-counted"
		}
		r, err := b.tcpFraming(ctx, name, octet, trs, perConn, "")
		if err != nil {
			return err
		}
		if !octet {
			on = r
		}
	}
	// Prefix counting (IPv6 by /64, the default) against single addresses
	// (/128), LF framing: issue 17 wants them within 5%. The daemon's CPU
	// per message is the verdict; the rates are printed beside it. The
	// runs go /64, /128, /128, /64 (the first /64 is the LF run above):
	// the first daemon of the section ran 5-10% slower than later ones
	// in some quiet runs whatever it counted by, and in this order a
	// drift of the machine over the section weighs on both sides alike.
	off, err := b.tcpFraming(ctx, "LF /128", false, trs, perConn, "defaults:\n  ipv6prefix: 128\n")
	if err != nil {
		return err
	}
	off2, err := b.tcpFraming(ctx, "LF /128 again", false, trs, perConn, "defaults:\n  ipv6prefix: 128\n")
	if err != nil {
		return err
	}
	on2, err := b.tcpFraming(ctx, "LF /64 again", false, trs, perConn, "")
	if err != nil {
		return err
	}
	onCPU := (on.cpuPerMsg + on2.cpuPerMsg) / 2
	offCPU := (off.cpuPerMsg + off2.cpuPerMsg) / 2
	b.add(result{section: "tcp", name: "  LF steady state, IPv6 counted by /64 vs /128", target: "≤ 1.05× CPU",
		value: fmt.Sprintf("%.3f× CPU", onCPU/offCPU),
		ratio: fmt.Sprintf("%.2f vs %.2f CPU-µs/msg (means of /64 %.2f, %.2f and /128 %.2f, %.2f)",
			onCPU, offCPU, on.cpuPerMsg, on2.cpuPerMsg, off.cpuPerMsg, off2.cpuPerMsg),
		status: passIf(onCPU <= 1.05*offCPU)})
	return nil
}

// tcpRun is what a steady-state pass measured: messages per second and
// the daemon's CPU microseconds per message.
type tcpRun struct{ rate, cpuPerMsg float64 }

// tcpFraming runs a cold and a steady-state pass of trs with the daemon
// configured by ingestConfig after extra (more top-level keys).
func (b *bench) tcpFraming(ctx context.Context, name string, octet bool, trs []traffic, perConn int, extra string) (tcpRun, error) {
	ns, err := b.newNS(ctx)
	if err != nil {
		return tcpRun{}, err
	}
	defer ns.Close()
	dir := filepath.Join(b.dir, "tcp-"+strings.NewReplacer("-", "", " ", "", "/", "").Replace(name))
	d, err := startDaemon(ctx, b.bin, ns, dir, daemonConfig(dir, extra+ingestConfig(100000)))
	if err != nil {
		return tcpRun{}, err
	}
	defer d.stop()

	conns := len(trs)
	bufs := make([][]byte, conns)
	reps := make([]int, conns)
	var total, expFail int
	for i, tr := range trs {
		for _, m := range tr.msgs {
			bufs[i] = frame(bufs[i], m, octet)
		}
		reps[i] = max(1, perConn/len(tr.msgs))
		total += reps[i] * len(tr.msgs)
		expFail += tr.expect(2 * reps[i])
	}
	s0, err := d.scrape()
	if err != nil {
		return tcpRun{}, err
	}
	fail0 := s0.sum("sysban_failures_total", "")
	cold, err := b.tcpSend(ctx, d, ns, name+" cold", bufs, reps, total)
	if err != nil {
		return tcpRun{}, err
	}
	// The cold pass's bans are still being written (store, kernel, log)
	// after its messages are in; the steady state starts once they are.
	coldBans, err := d.settleBans(ctx, 60*time.Second)
	if err != nil {
		return tcpRun{}, fmt.Errorf("tcp %s: waiting for the cold pass's bans: %w", name, err)
	}
	cpu0, _ := processCPU(d.pid())
	warm, err := b.tcpSend(ctx, d, ns, name, bufs, reps, total)
	if err != nil {
		return tcpRun{}, err
	}
	cpu1, _ := processCPU(d.pid())
	r := rate(float64(total), warm)
	run := tcpRun{rate: r, cpuPerMsg: float64((cpu1 - cpu0).Microseconds()) / float64(total)}
	b.add(result{section: "tcp", name: fmt.Sprintf("%s, %d conns, %s msgs (steady state)", name, conns, si(float64(total))), target: "≥ 1.00M/s",
		value: si(r) + "/s", ratio: fmt.Sprintf("%.2f× target; %.2f CPU-µs/msg", r/1e6, run.cpuPerMsg), status: passIf(r >= 1e6)})
	b.add(result{section: "tcp", name: fmt.Sprintf("  %s cold pass, with its ban storm", name), target: "-",
		value: si(rate(float64(total), cold)) + "/s", ratio: fmt.Sprintf("%.0f bans", coldBans), status: "INFO"})
	fails, err := d.settle(ctx, "sysban_failures_total", "", fail0+float64(expFail), 300*time.Millisecond, 10*time.Second)
	if err != nil {
		return tcpRun{}, fmt.Errorf("tcp: %w", err)
	}
	b.add(result{section: "tcp", name: fmt.Sprintf("  %s: failures counted by the jails", name), target: strconv.Itoa(expFail),
		value: fmt.Sprintf("%.0f", fails-fail0), ratio: "same as sysban test", status: passIf(int(fails-fail0) == expFail)})
	return run, nil
}

// tcpSend writes bufs[i] reps[i] times on connection i (whole-buffer
// writes: the batched sender) and returns the time until the daemon's tcp
// received counter has grown by total.
func (b *bench) tcpSend(ctx context.Context, d *daemon, ns *netns, name string, bufs [][]byte, reps []int, total int) (time.Duration, error) {
	s0, err := d.scrape()
	if err != nil {
		return 0, err
	}
	base := s0.sum("sysban_messages_received_total", "tcp:")
	cs := make([]net.Conn, len(bufs))
	for i := range cs {
		if cs[i], err = ns.dial("tcp", "127.0.0.1:5514"); err != nil {
			return 0, fmt.Errorf("tcp: %w", err)
		}
	}
	defer func() {
		for _, c := range cs {
			c.Close()
		}
	}()
	t0 := time.Now()
	var wg sync.WaitGroup
	errs := make([]error, len(cs))
	for i, c := range cs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range reps[i] {
				if _, err := c.Write(bufs[i]); err != nil {
					errs[i] = err
					return
				}
			}
		}()
	}
	want := base + float64(total)
	var got float64
	// A 20 ms poll: each scrape costs the daemon CPU, and 20 ms is 1% of
	// a two-second run.
	err = poll(ctx, 120*time.Second, 20*time.Millisecond, func() (bool, error) {
		s, err := d.scrape()
		if err != nil {
			return false, err
		}
		got = s.sum("sysban_messages_received_total", "tcp:")
		return got >= want, nil
	})
	el := time.Since(t0)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return 0, fmt.Errorf("tcp %s: send: %w", name, err)
	}
	if err != nil {
		return 0, fmt.Errorf("tcp %s: received %.0f of %d: %w", name, got-base, total, err)
	}
	return el, nil
}
