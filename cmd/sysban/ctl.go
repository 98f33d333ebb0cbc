package main

// The control verbs: status, ban, unban, banned and reload talk to the
// running daemon through its control socket (package control) and print
// either aligned text for people or the API's JSON for scripts.

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/control"
)

// ctlTimeout bounds one CLI call: reload and unban --all of a large ban
// list are the slowest, and a hung daemon must not hang the terminal.
const ctlTimeout = 3 * time.Minute

// ctl runs the control verbs. now and loc are injected so tests can pin
// the remaining-time and date output.
type ctl struct {
	now func() time.Time
	loc *time.Location
}

func defaultCtl() ctl { return ctl{now: time.Now, loc: time.Local} }

func cmdStatus(args []string, stdout, stderr io.Writer) int {
	return defaultCtl().status(args, stdout, stderr)
}
func cmdBan(args []string, stdout, stderr io.Writer) int {
	return defaultCtl().ban(args, stdout, stderr)
}
func cmdUnban(args []string, stdout, stderr io.Writer) int {
	return defaultCtl().unban(args, stdout, stderr)
}
func cmdBanned(args []string, stdout, stderr io.Writer) int {
	return defaultCtl().banned(args, stdout, stderr)
}
func cmdReload(args []string, stdout, stderr io.Writer) int {
	return defaultCtl().reload(args, stdout, stderr)
}

// ctlFlags are the flags every control verb takes.
type ctlFlags struct {
	fs     *flag.FlagSet
	socket string
	json   bool
}

func newCtlFlags(verb, synopsis string, stderr io.Writer) *ctlFlags {
	f := &ctlFlags{fs: flag.NewFlagSet(verb, flag.ContinueOnError)}
	f.fs.SetOutput(stderr)
	f.fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: sysban %s\n", synopsis)
		f.fs.PrintDefaults()
	}
	f.fs.StringVar(&f.socket, "socket", control.DefaultSocket, "the daemon's control socket")
	f.fs.BoolVar(&f.json, "json", false, "print the API's JSON instead of text")
	return f
}

// parse parses flags wherever they stand among the arguments (sysban ban
// sshd 192.0.2.7 --for 1h), which package flag alone does not, and
// returns the positional arguments. "--" ends the flags.
func (f *ctlFlags) parse(args []string) ([]string, bool) {
	var pos []string
	for len(args) > 0 {
		if err := f.fs.Parse(args); err != nil {
			return nil, false
		}
		rest := f.fs.Args()
		// flag stops at "--" and consumes it: what follows is positional.
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), true
		}
		if len(rest) == 0 {
			break
		}
		pos = append(pos, rest[0])
		args = rest[1:]
	}
	return pos, true
}

// usageErr reports bad usage (exit 2).
func (f *ctlFlags) usageErr(stderr io.Writer, format string, args ...any) int {
	fmt.Fprintf(stderr, "sysban %s: %s\n", f.fs.Name(), fmt.Sprintf(format, args...))
	f.fs.Usage()
	return 2
}

// call dials the daemon and runs fn; it prints a daemon error (as text on
// stderr and, with --json, as JSON on stdout) and returns exit code 1.
func (f *ctlFlags) call(stdout, stderr io.Writer, fn func(ctx context.Context, c *control.Client) error) int {
	ctx, cancel := context.WithTimeout(context.Background(), ctlTimeout)
	defer cancel()
	c, err := control.Dial(f.socket)
	if err == nil {
		defer c.Close()
		err = fn(ctx, c)
	}
	if err == nil {
		return 0
	}
	if errors.Is(err, errAnswerNo) {
		return 1
	}
	fmt.Fprintf(stderr, "sysban: %v\n", err)
	if f.json {
		body := map[string]string{"error": err.Error()}
		var ae *control.APIError
		if errors.As(err, &ae) {
			body["code"] = ae.Code
		} else if errors.Is(err, control.ErrUnreachable) {
			body["code"] = "unreachable"
		}
		printJSON(stdout, body)
	}
	return 1
}

// errAnswerNo ends a verb whose answer, already printed, is "no" (sysban
// banned ADDR for an address not banned): exit 1 without an error.
var errAnswerNo = errors.New("no")

func printJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	_, err = fmt.Fprintf(w, "%s\n", b)
	return err
}

func (c ctl) status(args []string, stdout, stderr io.Writer) int {
	f := newCtlFlags("status", "status [JAIL] [--all] [--socket PATH] [--json]", stderr)
	all := f.fs.Bool("all", false, "list disabled jails too")
	pos, ok := f.parse(args)
	if !ok {
		return 2
	}
	switch len(pos) {
	case 0:
		return f.call(stdout, stderr, func(ctx context.Context, cl *control.Client) error {
			st, err := cl.Status(ctx)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(stdout, st)
			}
			c.printStatus(stdout, st, *all)
			return nil
		})
	case 1:
		return f.call(stdout, stderr, func(ctx context.Context, cl *control.Client) error {
			js, err := cl.JailStatus(ctx, pos[0])
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(stdout, js)
			}
			c.printJail(stdout, js)
			return nil
		})
	default:
		return f.usageErr(stderr, "unexpected argument %q", pos[1])
	}
}

func (c ctl) ban(args []string, stdout, stderr io.Writer) int {
	f := newCtlFlags("ban", "ban JAIL ADDR|PREFIX [--for DURATION] [--socket PATH] [--json]", stderr)
	forFlag := f.fs.String("for", "", "ban length: 30s, 10m, 1h, 1d, 1w, seconds, or -1 for permanent (default: the jail's bantime)")
	pos, ok := f.parse(args)
	if !ok {
		return 2
	}
	if len(pos) != 2 {
		return f.usageErr(stderr, "want JAIL and ADDR, got %d arguments", len(pos))
	}
	prefix, err := parseCtlPrefix(pos[1])
	if err != nil {
		return f.usageErr(stderr, "%v", err)
	}
	var d time.Duration
	if *forFlag != "" {
		if d, err = config.ParseDuration(*forFlag); err != nil {
			return f.usageErr(stderr, "--for: %v", err)
		}
	}
	return f.call(stdout, stderr, func(ctx context.Context, cl *control.Client) error {
		bi, err := cl.Ban(ctx, pos[0], prefix, d)
		if err != nil {
			return err
		}
		if f.json {
			return printJSON(stdout, bi)
		}
		if bi.Permanent {
			fmt.Fprintf(stdout, "banned %s in %s permanently\n", banned(bi), bi.Jail)
		} else {
			fmt.Fprintf(stdout, "banned %s in %s until %s (%s)\n", banned(bi), bi.Jail, c.when(bi.Until), c.remaining(bi.Until))
		}
		return nil
	})
}

func (c ctl) unban(args []string, stdout, stderr io.Writer) int {
	f := newCtlFlags("unban", "unban ADDR|PREFIX [--jail JAIL] | unban --all   [--socket PATH] [--json]", stderr)
	jail := f.fs.String("jail", "", "lift the ban in this jail only (default: every jail)")
	all := f.fs.Bool("all", false, "lift every ban of every jail")
	pos, ok := f.parse(args)
	if !ok {
		return 2
	}
	if *all {
		if len(pos) > 0 || *jail != "" {
			return f.usageErr(stderr, "--all takes no address and no --jail")
		}
		return f.call(stdout, stderr, func(ctx context.Context, cl *control.Client) error {
			n, err := cl.UnbanAll(ctx)
			if err != nil {
				return err
			}
			if f.json {
				return printJSON(stdout, control.UnbanAllResult{Unbanned: n})
			}
			fmt.Fprintf(stdout, "unbanned %d %s\n", n, plural(n, "ban", "bans"))
			return nil
		})
	}
	if len(pos) != 1 {
		return f.usageErr(stderr, "want one ADDR (or --all), got %d arguments", len(pos))
	}
	prefix, err := parseCtlPrefix(pos[0])
	if err != nil {
		return f.usageErr(stderr, "%v", err)
	}
	return f.call(stdout, stderr, func(ctx context.Context, cl *control.Client) error {
		lifted, err := cl.Unban(ctx, prefix, *jail)
		if err != nil {
			return err
		}
		if f.json {
			return printJSON(stdout, nonNil(lifted))
		}
		for _, b := range lifted {
			if b.Prefix.IsValid() && !b.Prefix.IsSingleIP() {
				// Say which ban it was: the address asked for may only
				// have been inside it.
				fmt.Fprintf(stdout, "unbanned %s from %s (the ban covering %s)\n", b.Prefix, b.Jail, ctlPrefixString(prefix))
				continue
			}
			fmt.Fprintf(stdout, "unbanned %s from %s\n", banned(b), b.Jail)
		}
		return nil
	})
}

func (c ctl) banned(args []string, stdout, stderr io.Writer) int {
	f := newCtlFlags("banned", "banned [ADDR|PREFIX] [--socket PATH] [--json]", stderr)
	pos, ok := f.parse(args)
	if !ok {
		return 2
	}
	var addr netip.Prefix
	switch len(pos) {
	case 0:
	case 1:
		var err error
		if addr, err = parseCtlPrefix(pos[0]); err != nil {
			return f.usageErr(stderr, "%v", err)
		}
	default:
		return f.usageErr(stderr, "unexpected argument %q", pos[1])
	}
	return f.call(stdout, stderr, func(ctx context.Context, cl *control.Client) error {
		bans, err := cl.Banned(ctx, addr)
		if err != nil {
			return err
		}
		if f.json {
			err = printJSON(stdout, nonNil(bans))
		} else {
			c.printBans(stdout, addr, bans)
		}
		if err == nil && addr.IsValid() && len(bans) == 0 {
			return errAnswerNo
		}
		return err
	})
}

func (c ctl) reload(args []string, stdout, stderr io.Writer) int {
	f := newCtlFlags("reload", "reload [--socket PATH] [--json]", stderr)
	pos, ok := f.parse(args)
	if !ok {
		return 2
	}
	if len(pos) > 0 {
		return f.usageErr(stderr, "unexpected argument %q", pos[0])
	}
	return f.call(stdout, stderr, func(ctx context.Context, cl *control.Client) error {
		res, err := cl.Reload(ctx)
		if errors.Is(err, control.ErrConfigRefused) {
			return fmt.Errorf("reload refused, the running configuration is unchanged: %w", err)
		}
		if err != nil {
			return err
		}
		if f.json {
			return printJSON(stdout, res)
		}
		fmt.Fprintf(stdout, "configuration reloaded at %s\n", c.when(res.Time))
		tw := newTable(stdout)
		if len(res.Sources) > 0 {
			fmt.Fprintf(tw, "  sources:\t%s\n", strings.Join(res.Sources, " + "))
		}
		fmt.Fprintf(tw, "  jails:\t%s\n", listOrNone(res.Jails))
		if len(res.Removed) > 0 {
			fmt.Fprintf(tw, "  removed:\t%s (%d %s lifted)\n", strings.Join(res.Removed, ", "), res.Unbanned, plural(res.Unbanned, "ban", "bans"))
		}
		return tw.Flush()
	})
}

// printStatus writes the daemon overview.
// printStatus prints the daemon's state; the enabled jails only unless
// all, as fail2ban-client lists its active jails.
func (c ctl) printStatus(w io.Writer, st control.Status, all bool) {
	fmt.Fprintf(w, "sysban %s, up %s (since %s)\n", st.Version,
		humanDuration(time.Duration(st.UptimeSeconds)*time.Second), c.when(st.Started))
	tw := newTable(w)
	fmt.Fprintf(tw, "config:\t%s\n", strings.Join(st.ConfigSources, " + "))
	lr := st.LastReload
	switch {
	case lr.Time.IsZero():
	case lr.OK:
		fmt.Fprintf(tw, "last reload:\tok at %s\n", c.when(lr.Time))
	default:
		fmt.Fprintf(tw, "last reload:\tREFUSED at %s: %s\n", c.when(lr.Time), lr.Error)
	}
	fmt.Fprintf(tw, "messages:\t%d handled, %d %s waiting to be stored\n", st.Messages, st.QueuedBans, plural(st.QueuedBans, "ban", "bans"))
	tw.Flush()

	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "JAIL\tFILTER\tSTATE\tFAILED NOW\tFAILED TOTAL\tBANNED NOW\tBANNED TOTAL")
	hidden, shown := 0, 0
	for _, j := range st.Jails {
		state := "enabled"
		switch {
		case !j.Enabled:
			state = "disabled"
			if !all {
				hidden++
				continue
			}
		case j.Observe:
			state = "observe" // bans decided and recorded, not enforced
		}
		shown++
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\n", j.Name, j.Filter, state,
			j.CurrentlyFailed, j.TotalFailed, j.CurrentlyBanned, j.TotalBanned)
	}
	if shown == 0 {
		fmt.Fprintln(tw, "(no jails enabled)")
	}
	tw.Flush()
	if hidden > 0 {
		fmt.Fprintf(w, "(%d disabled %s not shown; --all lists every jail)\n", hidden, plural(hidden, "jail", "jails"))
	}

	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "LISTENER\tRECEIVED\tPARSE ERRORS\tCONNECTIONS\tDROPPED")
	for _, l := range st.Listeners {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\n", l.Name, l.Received, l.ParseErrors, l.Connections, droppedText(l.Dropped))
	}
	if len(st.Listeners) == 0 {
		fmt.Fprintln(tw, "(no listeners)")
	}
	tw.Flush()
}

// parseCtlPrefix reads an address or prefix as users type it (brackets
// around IPv6 allowed; "2001:db8::/64" with its host bits zero); an
// IPv4-mapped IPv6 address is the IPv4 host it stands for.
func parseCtlPrefix(s string) (netip.Prefix, error) {
	p, err := sysban.ParsePrefix(strings.TrimSuffix(strings.TrimPrefix(s, "["), "]"))
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("address %q: want an IPv4 or IPv6 address or prefix: %v", s, err)
	}
	return p, nil
}

// ctlPrefixString is p as users wrote it: an address without /32 or /128.
func ctlPrefixString(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}
