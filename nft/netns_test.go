package nft

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Helpers for tests against the real kernel. Every such test works in
// network namespaces of its own, so it never touches the host's ruleset.

// needRoot skips t unless it can create network namespaces and nftables
// tables and the tools it inspects them with are installed.
func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (CAP_NET_ADMIN, CAP_SYS_ADMIN) to create network namespaces and nftables tables")
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("skipped: %s not installed (apt-get install iproute2 nftables)", tool)
		}
	}
}

// netNS is a named network namespace ("ip netns add") and an open fd of it.
type netNS struct {
	name string
	fd   int
}

// newNetNS creates a fresh namespace that is deleted when t ends.
func newNetNS(t testing.TB, suffix string) *netNS {
	t.Helper()
	needRoot(t)
	name := fmt.Sprintf("sysbant-%d-%s", os.Getpid(), sanitize(t.Name()))
	if len(name) > 40 {
		name = name[:40]
	}
	name += "-" + suffix
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("skipped: cannot create network namespace: %v: %s", err, out)
	}
	fd, err := unix.Open("/run/netns/"+name, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = exec.Command("ip", "netns", "del", name).Run()
		t.Fatalf("open netns %s: %v", name, err)
	}
	ns := &netNS{name: name, fd: fd}
	t.Cleanup(func() {
		_ = unix.Close(fd)
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			t.Logf("ip netns del %s: %v: %s", name, err, out)
		}
	})
	return ns
}

func sanitize(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			return r
		}
		return '_'
	}, s)
}

// exec runs a command inside the namespace and returns its stdout.
func (n *netNS) exec(t testing.TB, args ...string) string {
	t.Helper()
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.name}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s in %s: %v: %s", strings.Join(args, " "), n.name, err, stderr.String())
	}
	return string(out)
}

// openIn opens a Backend in ns; it is closed when t ends. The table is left
// in the namespace, which goes with it.
func openIn(t testing.TB, ns *netNS, opts Options) *Backend {
	t.Helper()
	opts.NetNS = ns.fd
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	b, err := Open(opts)
	if err != nil {
		if strings.Contains(err.Error(), "not available") {
			t.Skipf("skipped: %v", err)
		}
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return b
}

// testCtx is a context bounded well below the test timeout, so a hung
// netlink call fails the test instead of stalling it.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// nftRuleset is the parts of "nft -j list ruleset" the tests look at.
type nftRuleset struct {
	Tables []nftTable
	Chains []nftChain
	Sets   []nftSet
	Rules  []nftRule
}

type nftTable struct {
	Family, Name string
}

type nftChain struct {
	Family, Table, Name, Type, Hook, Policy string
	Prio                                    int
}

type nftSet struct {
	Family, Table, Name, Type string
	Flags                     []string
	Elem                      []json.RawMessage
}

type nftRule struct {
	Family, Table, Chain, Comment string
	Expr                          []json.RawMessage
}

// listRuleset parses "nft -j list ruleset" (or another "nft -j list ..."
// command given as args) in ns.
func listRuleset(t testing.TB, ns *netNS, args ...string) nftRuleset {
	t.Helper()
	if len(args) == 0 {
		args = []string{"list", "ruleset"}
	}
	out := ns.exec(t, append([]string{"nft", "-j"}, args...)...)
	var doc struct {
		Nftables []map[string]json.RawMessage `json:"nftables"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("parse nft -j output: %v", err)
	}
	var rs nftRuleset
	for _, obj := range doc.Nftables {
		for kind, raw := range obj {
			var err error
			switch kind {
			case "table":
				var v nftTable
				err = json.Unmarshal(raw, &v)
				rs.Tables = append(rs.Tables, v)
			case "chain":
				var v nftChain
				err = json.Unmarshal(raw, &v)
				rs.Chains = append(rs.Chains, v)
			case "set":
				var v nftSet
				err = json.Unmarshal(raw, &v)
				rs.Sets = append(rs.Sets, v)
			case "rule":
				var v nftRule
				err = json.Unmarshal(raw, &v)
				rs.Rules = append(rs.Rules, v)
			}
			if err != nil {
				t.Fatalf("parse nft %s: %v", kind, err)
			}
		}
	}
	return rs
}

// ruleLines returns the rule lines of the "input" chain as "nft list"
// prints them, without handles and comments, for exact comparison.
func ruleLines(t testing.TB, ns *netNS, table string) []string {
	t.Helper()
	out := ns.exec(t, "nft", "list", "chain", "inet", table, ChainName)
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.HasPrefix(l, "table ") || strings.HasPrefix(l, "chain ") ||
			strings.HasPrefix(l, "type ") || l == "}" {
			continue
		}
		if i := strings.Index(l, " comment "); i >= 0 {
			l = l[:i]
		}
		lines = append(lines, l)
	}
	return lines
}

// withNetRules returns the rules Setup makes for jails whose hash-set
// rules are lines (as nft prints them, jail by jail): after each jail's
// rules come the same rules over its prefix sets (@j_v4net, @j_v6net).
// Lines that name no jail set stay where they are: first when they come
// before every jail's (the port gates), last otherwise (probe rules).
func withNetRules(lines ...string) []string {
	setRE := regexp.MustCompile(`@(\S+)_v([46]) `)
	var out, jail, rest []string
	flush := func() {
		out = append(out, jail...)
		for _, l := range jail {
			out = append(out, setRE.ReplaceAllString(l, "@${1}_v${2}net "))
		}
		jail = nil
	}
	cur := ""
	for _, l := range lines {
		m := setRE.FindStringSubmatch(l)
		if m == nil && cur == "" {
			out = append(out, l)
			continue
		}
		if m == nil {
			rest = append(rest, l)
			continue
		}
		if m[1] != cur {
			flush()
			cur = m[1]
		}
		jail = append(jail, l)
	}
	flush()
	return append(out, rest...)
}

// withNetSets returns set names with each jail's prefix sets after its
// hash sets: ssh_v4 ssh_v6 -> ssh_v4 ssh_v6 ssh_v4net ssh_v6net.
func withNetSets(names ...string) []string {
	var out []string
	for i, n := range names {
		out = append(out, n)
		if strings.HasSuffix(n, "_v6") && i > 0 && names[i-1] == strings.TrimSuffix(n, "_v6")+"_v4" {
			out = append(out, strings.TrimSuffix(n, "_v6")+"_v4net", n+"net")
		}
	}
	return out
}
