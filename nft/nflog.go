package nft

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/google/nftables/userdata"
	sysban "github.com/sysban/sysban"
	"golang.org/x/sys/unix"
)

// NFLOG rules. With Options.NFLOG set, Setup adds "log group" statements
// that copy the headers of two kinds of packets to a netfilter log group,
// where the nflog package reads them:
//
//   - banned traffic: before each verdict rule of a jail, a rule with the
//     same match, a rate limit and a log statement with the prefix
//     "sysban:ban:<jail>". It has no verdict, so the packet goes on to the
//     verdict rule right after it and is dropped or rejected exactly as
//     without logging. The limit has to sit in a rule of its own: a limit
//     is a match, and in the verdict rule it would stop the drop once the
//     rate is exceeded;
//   - probing traffic: at the end of the chain, new connections (TCP SYN
//     without ACK, any UDP datagram) to the configured trap ports arriving
//     on an interface other than loopback, rate-limited, logged with the
//     prefix "sysban:probe" and otherwise left alone: the host's own
//     firewall decides what happens to them. At the end, so a scanner
//     already banned is counted as banned traffic, not as a new probe.
//     The port gates at the head of the chain (gate.go) hold the trap
//     ports too, so probes get this far.
//
// A limit expression is per rule: the log rate reaching userspace is at
// most Rate times the number of log rules (two per jail part, one per trap
// protocol), which bounds a flood while never touching the verdicts.

// Log prefixes. The kernel's NFLOG prefix holds 64 bytes with the NUL.
const (
	BanPrefix    = "sysban:ban:"
	ProbePrefix  = "sysban:probe"
	maxPrefixLen = 63
	// defaultQThres: the kernel sends logged packets in batches of this
	// many (or when the reader's flush timeout passes), fewer messages
	// under load.
	defaultQThres = 32
	limitBurst    = 5
)

// NFLOG configures the log rules (Backend.SetupNFLOG, GuardOptions.NFLOG);
// nil means none.
type NFLOG struct {
	Group   uint16 // netfilter log group
	Rate    uint64 // packets per second each log rule passes on at most
	Snaplen uint32 // bytes of each packet copied to userspace (headers)
	Banned  bool   // log packets of banned addresses
	// Trap ports: new connections to them are logged as probes.
	TrapTCP, TrapUDP []sysban.PortRange
}

// validate checks n against the jail rules before anything is sent.
func (n *NFLOG) validate(rules []sysban.JailRule) error {
	if n == nil {
		return nil
	}
	var errs []string
	if n.Rate == 0 {
		errs = append(errs, "rate must be at least 1 packet per second")
	}
	if n.Snaplen == 0 {
		errs = append(errs, "snaplen must be at least 1 byte")
	}
	for _, p := range append(append([]sysban.PortRange{}, n.TrapTCP...), n.TrapUDP...) {
		if p.First > p.Last || p.First == 0 {
			errs = append(errs, fmt.Sprintf("trap port range %d-%d is invalid", p.First, p.Last))
		}
	}
	if n.Banned {
		for _, r := range rules {
			if len(BanPrefix)+len(r.Name) > maxPrefixLen {
				errs = append(errs, fmt.Sprintf("jail %q: name too long for the NFLOG prefix (%d bytes at most)", r.Name, maxPrefixLen-len(BanPrefix)))
			}
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("nft: setup: nflog: %s", strings.Join(errs, "; "))
	}
	return nil
}

// Rule comments of the log rules; Guard counts rules by comment. The words
// differ from "sysban jail", so no jail name can make one look like another.
func logComment(jail string) string { return "sysban log " + jail }

const probeComment = "sysban probe"

// logExprs are a log rule's limit and log statement.
func (n *NFLOG) logExprs(prefix string) []expr.Any {
	return []expr.Any{
		// Burst 5 is nft's default for "limit rate N/second": a short
		// burst passes, a flood is cut to the rate at once.
		&expr.Limit{Type: expr.LimitTypePkts, Rate: n.Rate, Unit: expr.LimitTimeSecond, Burst: limitBurst},
		&expr.Log{
			// Key says which attributes are sent. A level must not be:
			// the kernel refuses a log statement with both a level (the
			// kernel log) and a group (NFLOG).
			Key:        1<<unix.NFTA_LOG_GROUP | 1<<unix.NFTA_LOG_PREFIX | 1<<unix.NFTA_LOG_SNAPLEN | 1<<unix.NFTA_LOG_QTHRESHOLD,
			Group:      n.Group,
			Data:       []byte(prefix),
			Snaplen:    n.Snaplen,
			QThreshold: defaultQThres,
		},
	}
}

// logRulesPerPart is how many log rules a jail's rule part gets: one (the
// banned-traffic rule) or none.
func (n *NFLOG) logRulesPerPart() int {
	if n != nil && n.Banned {
		return 1
	}
	return 0
}

// probeRules is how many probe rules Setup adds: one per protocol with
// trap ports.
func (n *NFLOG) probeRules() int {
	if n == nil {
		return 0
	}
	c := 0
	if len(n.TrapTCP) > 0 {
		c++
	}
	if len(n.TrapUDP) > 0 {
		c++
	}
	return c
}

// tcpNewFlags matches "tcp flags & (syn|ack) == syn": the first packet of a
// connection attempt (a SYN scan's too), not answers or established flows.
func tcpNewFlags() []expr.Any {
	return []expr.Any{
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 13, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0x12}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x02}},
	}
}

// addProbeRules queues the probe rules and returns how many it queued.
func (b *Backend) addProbeRules(c *nftables.Conn, chain *nftables.Chain, n *NFLOG) (int, error) {
	if n == nil {
		return 0, nil
	}
	count := 0
	for _, p := range []struct {
		proto byte
		ports []sysban.PortRange
	}{{protoTCP, n.TrapTCP}, {protoUDP, n.TrapUDP}} {
		if len(p.ports) == 0 {
			continue
		}
		ex := []expr.Any{
			// Not from loopback: the host probing itself is no scanner.
			&expr.Meta{Key: expr.MetaKeyIIFTYPE, Register: 1},
			&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: binaryNative16(unix.ARPHRD_LOOPBACK)},
			&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
			&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{p.proto}},
		}
		pe, err := b.portExprs(c, mergePorts(p.ports), false)
		if err != nil {
			return count, err
		}
		ex = append(ex, pe...)
		if p.proto == protoTCP {
			ex = append(ex, tcpNewFlags()...)
		}
		ex = append(ex, n.logExprs(ProbePrefix)...)
		c.AddRule(&nftables.Rule{
			Table:    b.table,
			Chain:    chain,
			Exprs:    ex,
			UserData: userdata.AppendString(nil, userdata.TypeComment, probeComment),
		})
		count++
	}
	return count, nil
}

// binaryNative16 encodes v as the kernel stores a 16-bit meta value (host
// byte order, e.g. iiftype).
func binaryNative16(v uint16) []byte { return binary.NativeEndian.AppendUint16(nil, v) }

// nflogDiffer compares the log rules of the chain, by comment, with those
// Setup creates, the way rulesDiffer does for verdict rules; it returns the
// differences and the comments that are not log rules, for rulesDiffer.
func nflogDiffer(n *NFLOG, rules []sysban.JailRule, comments []string) (reasons, rest []string) {
	have := map[string]int{}
	for _, c := range comments {
		if c == probeComment || strings.HasPrefix(c, "sysban log ") {
			have[c]++
			continue
		}
		rest = append(rest, c)
	}
	if per := n.logRulesPerPart(); per > 0 {
		for _, r := range rules {
			c := logComment(r.Name)
			if want := setsPerJail * per * len(ruleParts(r)); have[c] != want {
				reasons = append(reasons, fmt.Sprintf("jail %s has %d of its %d log rules", r.Name, have[c], want))
			}
			delete(have, c)
		}
	}
	if want := n.probeRules(); have[probeComment] != want {
		reasons = append(reasons, fmt.Sprintf("%d of %d probe log rules", have[probeComment], want))
	}
	delete(have, probeComment)
	// Log rules of jails no longer configured, or left over after NFLOG was
	// turned off, are foreign: rulesDiffer counts them.
	for c, k := range have {
		for range k {
			rest = append(rest, c)
		}
	}
	return reasons, rest
}

// explainNFLOG adds the likely cause to a setup error with NFLOG rules: the
// kernel loads the NFLOG backend of "log group" on demand, and refuses the
// rule when it cannot (ENOENT, EOPNOTSUPP).
func explainNFLOG(err error) error {
	if errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.EOPNOTSUPP) {
		return fmt.Errorf("%w (the kernel refused the NFLOG rules: is nfnetlink_log available? modprobe nfnetlink_log, or set nflog.enabled: false)", err)
	}
	return err
}

// ParseLogPrefix reads a prefix the log rules write: BanPrefix and a jail
// name (one that could be a jail here: the characters validName allows,
// short enough for the prefix), or ProbePrefix. ok is false for anything
// else, such as another program's rule logging to the same group, so a
// foreign rule cannot feed arbitrary text into metric labels.
func ParseLogPrefix(s string) (jail string, probe, ok bool) {
	if s == ProbePrefix {
		return "", true, true
	}
	jail, found := strings.CutPrefix(s, BanPrefix)
	if !found || len(s) > maxPrefixLen || !validName(jail) {
		return "", false, false
	}
	return jail, false, true
}
