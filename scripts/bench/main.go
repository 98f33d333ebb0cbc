package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

var allSections = []string{"gen", "match", "udp", "tcp", "latency", "memory", "nft", "fleet", "prefix"}

// extraSections run only when named: each is a part of a default section,
// for a quicker look (cluster: the fleet section's 3-node cluster alone).
var extraSections = []string{"cluster"}

// options are the flags.
type options struct {
	sections  []string
	repo      string
	workdir   string
	keep      bool
	bin       string
	seed      uint64
	lines     int
	attackers int
	stepDur   time.Duration
	pin       bool // UDP section: sender and receiver on separate CPUs (pin.go)
	rates     []int
	tcpConns  int
	tcpMsgs   int
	samples   int
	distinct  int
	bans      int
	profile   string
	fleetPoll bool // fleet probes timed by polling the set, not by notification
}

// result is one row of the final table.
type result struct {
	section, name, target, value, ratio, status string
}

// bench holds what sections share: the built binary, the generated log and
// the results so far.
type bench struct {
	opts    options
	log     *slog.Logger
	out     io.Writer
	dir     string
	bin     string
	logPath string
	counts  Counts
	results []result
	nsSeq   int
	bare    float64 // bare UDP receiver rate, msgs/s (0 until measured)
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	opts, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	logger := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{opts: opts, log: logger, out: stdout}
	if err := b.run(ctx); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		b.table()
		return 1
	}
	b.table()
	return 0
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sections := fs.String("sections", strings.Join(allSections, ","), "sections to run, comma-separated: "+strings.Join(allSections, ",")+"; also "+strings.Join(extraSections, ","))
	rates := fs.String("rates", "50000,100000,200000", "fixed UDP rates (msgs/s) besides the bare receiver's rate and unlimited")
	fs.StringVar(&o.repo, "repo", ".", "repository root (where ./cmd/sysban is)")
	fs.StringVar(&o.workdir, "workdir", "", "directory for the binary, log, configs and state (default: a new temporary one)")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory")
	fs.StringVar(&o.bin, "bin", "", "use this sysban binary instead of building one")
	fs.Uint64Var(&o.seed, "seed", 1, "generator seed")
	fs.IntVar(&o.lines, "lines", 1_000_000, "lines of the generated log (offline matching)")
	fs.IntVar(&o.attackers, "attackers", 50_000, "attacker addresses in the generated traffic")
	fs.DurationVar(&o.stepDur, "step", 3*time.Second, "duration of each UDP rate step")
	fs.BoolVar(&o.pin, "pin", runtime.NumCPU() >= 2, "UDP: sender on CPU 0, receiver on CPU 1 (the daemon with GOMAXPROCS=1)")
	fs.IntVar(&o.tcpConns, "tcp-conns", 4, "TCP sender connections")
	fs.IntVar(&o.tcpMsgs, "tcp-msgs", 2_000_000, "messages per TCP framing run (all connections)")
	fs.IntVar(&o.samples, "samples", 200, "ban latency samples per condition")
	fs.IntVar(&o.distinct, "distinct", 1_000_000, "distinct failing addresses for the memory section (maxtracked is set to this; 10% more are sent to show evictions)")
	fs.IntVar(&o.bans, "bans", 100_000, "bans for the nftables section")
	fs.BoolVar(&o.fleetPoll, "fleet-poll", false, "fleet: time the propagation probes by dumping the set in a loop (the method before 2026-12-07) instead of by the kernel's notification")
	fs.StringVar(&o.profile, "cpuprofile", "", "with section match: also run the matcher in-process under the CPU profiler and write the profile here")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	for _, s := range strings.Split(*sections, ",") {
		s = strings.TrimSpace(s)
		if !slices.Contains(allSections, s) && !slices.Contains(extraSections, s) {
			return o, fmt.Errorf("-sections: unknown section %q (want %s)", s, strings.Join(append(allSections, extraSections...), ","))
		}
		o.sections = append(o.sections, s)
	}
	for _, r := range strings.Split(*rates, ",") {
		var n int
		if _, err := fmt.Sscan(strings.TrimSpace(r), &n); err != nil || n <= 0 {
			return o, fmt.Errorf("-rates: bad rate %q", r)
		}
		o.rates = append(o.rates, n)
	}
	if o.lines < 1000 || o.attackers < 1 || o.tcpConns < 1 || o.tcpMsgs < o.tcpConns || o.samples < 1 || o.distinct < 1 || o.bans < 1 || o.stepDur <= 0 {
		return o, errors.New("sizes must be positive (-lines at least 1000)")
	}
	return o, nil
}

func (b *bench) want(s string) bool { return slices.Contains(b.opts.sections, s) }

func (b *bench) add(r result) {
	b.results = append(b.results, r)
	fmt.Fprintf(b.out, "%-8s %-44s target %-14s measured %-16s %-22s %s\n", r.section, r.name, r.target, r.value, r.ratio, r.status)
}

func (b *bench) run(ctx context.Context) error {
	b.dir = b.opts.workdir
	if b.dir == "" {
		d, err := os.MkdirTemp("", "sysban-bench")
		if err != nil {
			return err
		}
		b.dir = d
		if !b.opts.keep {
			defer os.RemoveAll(d)
		}
	} else if err := freshDir(b.dir); err != nil {
		return err
	}
	b.machine()

	needBin := slices.ContainsFunc(b.opts.sections, func(s string) bool { return s != "gen" })
	if needBin {
		if err := b.build(ctx); err != nil {
			return err
		}
	}
	// The log is needed for matching; generating 1M lines takes ~1 s.
	if b.want("gen") || b.want("match") {
		if err := b.sectionGen(); err != nil {
			return err
		}
	}
	if b.want("match") {
		if err := b.sectionMatch(ctx); err != nil {
			return err
		}
		if err := b.sectionMatchPrefix(); err != nil {
			return err
		}
		if b.opts.profile != "" {
			if err := b.profileMatch(b.opts.profile); err != nil {
				return err
			}
		}
	}
	rootOnly := []struct {
		name string
		f    func(context.Context) error
	}{
		{"udp", b.sectionUDP}, {"tcp", b.sectionTCP}, {"latency", b.sectionLatency},
		{"memory", b.sectionMemory}, {"nft", b.sectionNFT}, {"fleet", b.sectionFleet}, {"prefix", b.sectionPrefix},
		{"cluster", func(ctx context.Context) error { return b.fleetCluster(ctx, 0) }},
	}
	for _, s := range rootOnly {
		if !b.want(s.name) {
			continue
		}
		if why := rootMissing(); why != "" {
			b.add(result{section: s.name, name: "(skipped)", target: "-", value: "-", ratio: "-", status: "SKIP: " + why})
			continue
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		b.log.Info("section", "name", s.name)
		if err := s.f(ctx); err != nil {
			// One broken section should not hide the others' figures.
			b.add(result{section: s.name, name: "(error)", target: "-", value: "-", ratio: "-", status: "ERROR: " + err.Error()})
		}
	}
	return nil
}

// rootMissing says why the namespace sections cannot run, or "".
func rootMissing() string {
	if os.Geteuid() != 0 {
		return "needs root (network namespaces, nftables): run with sudo"
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return "needs " + tool + " (apt-get install iproute2 nftables)"
		}
	}
	return ""
}

// newNS creates the next namespace of this run.
func (b *bench) newNS(ctx context.Context) (*netns, error) {
	b.nsSeq++
	return newNetns(ctx, fmt.Sprintf("sbbench%d-%d", os.Getpid(), b.nsSeq))
}

func (b *bench) build(ctx context.Context) error {
	if b.opts.bin != "" {
		b.bin = b.opts.bin
		return nil
	}
	b.bin = filepath.Join(b.dir, "sysban")
	// Built as the Containerfile ships it: static and stripped. A cgo
	// build maps libc too (about 1.3 MiB more RSS), which the shipped
	// binary does not carry.
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-ldflags", "-s -w", "-o", b.bin, "./cmd/sysban")
	cmd.Dir = b.opts.repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("build: go build ./cmd/sysban: %v: %s", err, out)
	}
	return nil
}

// machine prints what the figures depend on.
func (b *bench) machine() {
	cpu := "unknown"
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "model name") {
				cpu = strings.TrimSpace(l[strings.IndexByte(l, ':')+1:])
				break
			}
		}
	}
	kernel := "unknown"
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		kernel = strings.TrimSpace(string(data))
	}
	// Wall-clock figures depend on what else runs: the load average says
	// whether the machine was shared during the run.
	load := "unknown"
	if data, err := os.ReadFile("/proc/loadavg"); err == nil {
		load = strings.Join(strings.Fields(string(data))[:3], " ")
	}
	fmt.Fprintf(b.out, "machine: %d CPUs (%s), kernel %s, %s, GOMAXPROCS %d, load %s, seed %d\n\n",
		runtime.NumCPU(), cpu, kernel, runtime.Version(), runtime.GOMAXPROCS(0), load, b.opts.seed)
}

func (b *bench) table() {
	if len(b.results) == 0 {
		return
	}
	fmt.Fprintf(b.out, "\nSummary\n")
	w := tabwriter.NewWriter(b.out, 2, 8, 2, ' ', 0)
	fmt.Fprintln(w, "SECTION\tFIGURE\tTARGET\tMEASURED\tRATIO\tSTATUS")
	for _, r := range b.results {
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", r.section, r.name, r.target, r.value, r.ratio, r.status)
	}
	w.Flush()
}

// passIf renders a verdict.
func passIf(ok bool) string {
	if ok {
		return "PASS"
	}
	return "MISS"
}

func rate(n float64, d time.Duration) float64 { return n / d.Seconds() }

// si formats a count or rate compactly: 1.23M, 456k.
func si(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%.2fM", v/1e6)
	case v >= 1e4:
		return fmt.Sprintf("%.0fk", v/1e3)
	case v >= 1e3:
		return fmt.Sprintf("%.1fk", v/1e3)
	default:
		return fmt.Sprintf("%.0f", v)
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// freshDir makes dir, which must not exist or be empty: the daemons of an
// earlier run left their state there, and a daemon that finds its probe
// addresses banned already does not ban them again, so every probe would
// wait out its timeout.
func freshDir(dir string) error {
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return os.MkdirAll(dir, 0o755)
	case err != nil:
		return err
	case len(entries) > 0:
		return fmt.Errorf("-workdir %s holds an earlier run (%s, ...): its stored bans would change this run's figures; remove it or name another", dir, entries[0].Name())
	}
	return nil
}
