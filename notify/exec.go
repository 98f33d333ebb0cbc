package notify

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// Placeholders are what an exec action's arguments may contain; each is
// replaced inside its own argument, never split into words.
var Placeholders = []string{
	"{event}",    // ban or unban
	"{jail}",     // jail name
	"{addr}",     // banned address
	"{family}",   // inet or inet6
	"{failures}", // failures that led to the ban
	"{bantime}",  // ban length in seconds; -1 permanent
	"{start}",    // ban start, RFC 3339
	"{expiry}",   // ban end, RFC 3339; empty when permanent
	"{reason}",   // unban reason: expired, manual, reload; empty on ban
	"{host}",     // name of the host sysban runs on
}

var placeholderRE = regexp.MustCompile(`\{[a-z_]+\}`)

// execPath is the PATH a command gets. The daemon's own environment is not
// passed on: it may hold secrets (SYSBAN_* overrides, mail passwords).
const execPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

type execAction struct {
	spec     ExecSpec
	hostname string
	log      *slog.Logger
}

func newExec(s ExecSpec, opts BuildOptions) (*execAction, error) {
	if s.Timeout == 0 {
		s.Timeout = DefaultExecTimeout
	}
	if s.MaxOutput == 0 {
		s.MaxOutput = DefaultExecOutput
	}
	fi, err := os.Stat(s.Argv[0])
	if err != nil {
		return nil, fmt.Errorf("exec.argv[0]: %w", err)
	}
	if fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
		return nil, fmt.Errorf("exec.argv[0]: %s: not an executable file", s.Argv[0])
	}
	return &execAction{spec: s, hostname: opts.Hostname, log: opts.Logger}, nil
}

// fields are the event's values by placeholder name (without braces).
func fields(ev Event) map[string]string {
	f := map[string]string{
		"event":    ev.Kind,
		"jail":     ev.Ban.Jail,
		"addr":     ev.Ban.Target(), // a prefix in CIDR form, which firewall tools take
		"prefix":   ev.Ban.Network().String(),
		"seen":     addrOrEmpty(ev.Ban.Addr),
		"observed": strconv.FormatBool(ev.Ban.Observed),
		"family":   "inet",
		"failures": strconv.Itoa(ev.Ban.Failures),
		"bantime":  strconv.FormatInt(int64(ev.Ban.Duration/time.Second), 10),
		"start":    "",
		"expiry":   "",
		"reason":   ev.Reason,
		"host":     ev.Host,
	}
	if ev.Ban.Network().Addr().Is6() {
		f["family"] = "inet6"
	}
	if ev.Ban.Permanent() {
		f["bantime"] = "-1"
	}
	if !ev.Ban.Start.IsZero() {
		f["start"] = ev.Ban.Start.Format(time.RFC3339)
		if !ev.Ban.Permanent() {
			f["expiry"] = ev.Ban.Expiry().Format(time.RFC3339)
		}
	}
	for k, v := range f {
		// argv and environment strings are C strings: a NUL would cut them.
		f[k] = strings.ReplaceAll(v, "\x00", "")
	}
	return f
}

// expandArgv substitutes placeholders in each argument in one pass, so a
// value that itself looks like a placeholder is not expanded again.
func expandArgv(argv []string, f map[string]string) []string {
	pairs := make([]string, 0, 2*len(f))
	for k, v := range f {
		pairs = append(pairs, "{"+k+"}", v)
	}
	r := strings.NewReplacer(pairs...)
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = r.Replace(a)
	}
	return out
}

func environ(ev Event, f map[string]string) []string {
	env := []string{execPath, "LC_ALL=C"}
	for _, k := range []string{"event", "jail", "addr", "prefix", "seen", "observed", "family", "failures", "bantime", "start", "expiry", "reason", "host"} {
		env = append(env, "SYSBAN_"+strings.ToUpper(k)+"="+f[k])
	}
	lines := make([]string, len(ev.Lines))
	for i, l := range ev.Lines {
		lines[i] = strings.NewReplacer("\x00", "", "\n", " ", "\r", " ").Replace(l)
	}
	env = append(env, "SYSBAN_LINES="+truncate(strings.Join(lines, "\n"), 64<<10))
	return env
}

// Do runs the command for ev and waits for it, within the timeout.
func (e *execAction) Do(ctx context.Context, ev Event) error {
	if ev.Host == "" {
		ev.Host = e.hostname
	}
	f := fields(ev)
	argv := expandArgv(e.spec.Argv, f)

	ctx, cancel := context.WithTimeout(ctx, e.spec.Timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = environ(ev, f)
	cmd.Dir = "/"
	out := &capped{max: e.spec.MaxOutput}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group, so the timeout kills whatever it started too,
	// and WaitDelay stops a grandchild holding the output pipe from hanging
	// the worker.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 2 * time.Second

	start := time.Now()
	err := cmd.Run()
	attrs := []any{"jail", ev.Ban.Jail, "addr", ev.Ban.Target(), "event", ev.Kind,
		"took", time.Since(start).Round(time.Millisecond)}
	if out.Len() > 0 {
		attrs = append(attrs, "output", out.String(), "output_truncated", out.cut)
	}
	if err != nil {
		if ctx.Err() != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("timed out after %v: %w", e.spec.Timeout, err)
		}
		e.log.Warn("notify: exec failed", append(attrs, "err", err)...)
		return fmt.Errorf("notify: exec %s: %w", argv[0], err)
	}
	e.log.Info("notify: exec done", attrs...)
	return nil
}

// capped keeps the first max bytes written to it and counts the rest, so a
// chatty command cannot grow the daemon's memory.
type capped struct {
	buf bytes.Buffer
	max int
	cut bool
}

func (c *capped) Write(p []byte) (int, error) {
	n := len(p)
	if room := c.max - c.buf.Len(); len(p) > room {
		c.cut = true
		p = p[:max(room, 0)]
	}
	c.buf.Write(p)
	return n, nil
}

func (c *capped) Len() int { return c.buf.Len() }

func (c *capped) String() string { return cleanText(c.buf.String(), c.max+16) }

// addrOrEmpty is a as text, "" when it is not set (a manual prefix ban has
// no address seen).
func addrOrEmpty(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}
