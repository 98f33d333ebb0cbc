package fail2ban

import (
	"fmt"
	"net/mail"
	"path"
	"slices"
	"strings"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/config"
	"github.com/sysban/sysban/pipeline"
)

// jail translates one fail2ban jail section into the report and, when its
// filter can be carried, into jails.<name>.
func (im *importer) jail(sec string) {
	jr := JailReport{Name: sec, Sysban: sysbanName(sec)}
	for i := 2; im.names[jr.Sysban] != ""; i++ {
		jr.Sysban = sysbanName(fmt.Sprintf("%s-%d", sysbanName(sec), i))
	}
	im.names[jr.Sysban] = sec
	if jr.Sysban != sec {
		jr.Items = append(jr.Items, Item{Key: "name", From: sec, To: "jails." + jr.Sysban, Status: StatusChanged,
			Why: "sysban's jail names are lower case letters, digits, '-' and '_', at most 32, starting with a letter"})
	}
	if v, ok := im.get(sec, "enabled", &jr.Items); ok {
		on, valid := boolValue(v)
		jr.Enabled = on
		if !valid {
			jr.Items = append(jr.Items, Item{Key: "enabled", From: v, Status: StatusDropped, Why: "not a boolean; fail2ban would refuse it: left disabled"})
		} else {
			jr.Items = append(jr.Items, Item{Key: "enabled", From: v, To: fmt.Sprintf("enabled: %v", on), Status: StatusCarried})
		}
	}
	out := &outJail{Enabled: jr.Enabled}
	filter, mode := im.jailFilter(sec, &jr)
	if filter == "" {
		im.report.Jails = append(im.report.Jails, jr)
		return
	}
	out.Filter, out.Mode = filter, mode
	out.outSettings = *im.settings(sec, &jr.Items)
	im.banActions(sec, out, &jr)
	im.logpaths(sec, filter, &jr)
	im.otherKeys(sec, &jr.Items)
	im.out.Jails[jr.Sysban] = out
	im.report.Jails = append(im.report.Jails, jr)
}

// jailFilter settles the jail's filter: a built-in, or its filter.d file
// translated. An empty name means the jail cannot be carried.
func (im *importer) jailFilter(sec string, jr *JailReport) (string, string) {
	text, ok := im.get(sec, "filter", &jr.Items)
	if !ok || strings.TrimSpace(text) == "" {
		text = sec // fail2ban 0.8's default: the filter named like the jail
	}
	calls, err := splitCalls(text)
	if err != nil || len(calls) != 1 {
		jr.NotCarried = fmt.Sprintf("filter %q: want one name[key=value, ...]", text)
		return "", ""
	}
	call := calls[0]
	mode := call.Args["mode"]
	if tgt, ok := builtinFor(call.Name, mode); ok && !exists(im.fsys, "filter.d/"+call.Name+".local") {
		it := Item{Key: "filter", From: text, To: "filter: " + tgt.filter, Status: StatusCarried}
		if tgt.mode != "" {
			it.To += ", mode: " + tgt.mode
		}
		if tgt.filter != call.Name || tgt.mode != mode && !(mode == "normal" && tgt.mode == "") || tgt.note != "" {
			it.Status, it.Why = StatusChanged, tgt.note
			if it.Why == "" {
				it.Why = "sysban's built-in filter with the same purpose"
			}
		}
		if exists(im.fsys, "filter.d/"+call.Name+".conf") {
			it.Why = strings.TrimPrefix(it.Why+"; ", "; ") + "sysban's built-in " + tgt.filter + " replaces filter.d/" + call.Name + ".conf (write filter.d/" + call.Name + ".local to have yours translated instead)"
			if it.Status == StatusCarried {
				it.Status = StatusChanged
			}
		}
		jr.Items = append(jr.Items, it)
		if progs := pipeline.BuiltinFilters()[tgt.filter].Programs; len(progs) > 0 {
			jr.Todo = append(jr.Todo, routeTodo(progs))
		}
		return tgt.filter, tgt.mode
	}
	key := call.Text
	fr, done := im.filters[key]
	if !done {
		name := sysbanName(call.Name)
		if mode != "" && mode != "normal" {
			name = sysbanName(call.Name + "-" + mode) // postfix[mode=rbl]: postfix-rbl
		}
		if _, clash := pipeline.BuiltinFilters()[name]; clash || name == pipeline.RecidiveFilter {
			name = sysbanName(name + "-local")
		}
		if len(call.Args) > 0 {
			name = im.uniqueFilterName(name)
		}
		fr = translateFilter(im.fsys, call.Name, name, call.Args)
		im.filters[key] = fr
		if fr.Spec != nil {
			im.out.Filters[fr.Name] = outFilter{Programs: fr.Spec.Programs, Engine: fr.Spec.Engine, FailRegex: fr.Spec.FailRegex, IgnoreRegex: fr.Spec.IgnoreRegex}
		}
	}
	jr.Filter = &fr
	if fr.Spec == nil {
		jr.NotCarried = "filter " + call.Name + ": " + fr.NotCarried
		jr.Items = append(jr.Items, Item{Key: "filter", From: text, Status: StatusDropped, Why: fr.NotCarried})
		if near := nearBuiltins(call.Name); len(near) > 0 {
			jr.Todo = append(jr.Todo, "sysban's built-in filters for the same daemon: "+strings.Join(near, ", ")+
				" (see docs/filters.md); set filter: to one of them to carry this jail")
		}
		return "", ""
	}
	it := Item{Key: "filter", From: text, To: "filter: " + fr.Name + " (translated from filter.d)", Status: StatusChanged,
		Why: "translated; check it with `sysban test " + fr.Name + " LOGFILE`"}
	jr.Items = append(jr.Items, it)
	jr.Todo = append(jr.Todo, routeTodo(fr.Spec.Programs))
	return fr.Name, ""
}

// nearBuiltins lists sysban's built-in filters for the daemon a fail2ban
// filter name starts with ("sendmail-sasl": sendmail-auth,
// sendmail-reject), with the multi-line ones first noted.
func nearBuiltins(name string) []string {
	daemon, _, _ := strings.Cut(name, "-")
	var out []string
	for n, spec := range pipeline.BuiltinFilters() {
		if n == daemon || strings.HasPrefix(n, daemon+"-") || slices.Contains(spec.Programs, daemon) {
			if len(spec.Correlate) > 0 {
				n += " (correlates multi-line failures)"
			}
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

func (im *importer) uniqueFilterName(name string) string {
	taken := func(n string) bool {
		for _, fr := range im.filters {
			if fr.Name == n {
				return true
			}
		}
		return false
	}
	for i := 2; taken(name); i++ {
		name = sysbanName(fmt.Sprintf("%s-%d", strings.TrimSuffix(name, fmt.Sprintf("-%d", i-1)), i))
	}
	return name
}

func routeTodo(programs []string) string {
	return "sysban routes messages by program: forward the syslog messages of " + strings.Join(programs, ", ") + " to sysban (their tags must match)"
}

// banKind classifies fail2ban action names.
func banKind(name string) (ban, allports bool) {
	for _, w := range []string{"iptables", "ip6tables", "nftables", "firewallcmd", "ipfw", "pf", "shorewall", "ufw", "route", "ipset", "npf", "hostsdeny", "xt_recent", "iptables-ipset", "apf", "csf", "netscaler", "symbiosis"} {
		if strings.HasPrefix(name, w) || strings.HasPrefix(name, "bsd-"+w) {
			return true, strings.Contains(name, "allports")
		}
	}
	return false, false
}

func mailKind(name string) (mail, whois bool) {
	switch {
	case strings.HasPrefix(name, "sendmail"), strings.HasPrefix(name, "mail"), strings.HasPrefix(name, "complain"):
		return !strings.HasPrefix(name, "complain"), strings.Contains(name, "whois")
	}
	return false, false
}

// banActions translates action (with banaction, port, protocol) into the
// jail's ports, protocol, verdict and mail actions.
func (im *importer) banActions(sec string, out *outJail, jr *JailReport) {
	port, _ := im.get(sec, "port", &jr.Items)
	proto, _ := im.get(sec, "protocol", &jr.Items)
	text, ok := im.get(sec, "action", &jr.Items)
	if !ok {
		text, _ = im.get(sec, "banaction", &jr.Items)
	}
	calls, err := splitCalls(text)
	if err != nil {
		jr.Items = append(jr.Items, Item{Key: "action", From: text, Status: StatusDropped, Why: err.Error()})
	}
	var ports []string
	every, banned := false, false
	protos := map[string]bool{}
	verdicts := map[string]bool{}
	for _, c := range calls {
		if isBan, all := banKind(c.Name); isBan {
			banned = true
			p := port
			if v, ok := c.Args["port"]; ok {
				p = v
			}
			pr := proto
			if v, ok := c.Args["protocol"]; ok {
				pr = v
			}
			list, allp, extra, perr := portList(p)
			it := Item{Key: "action " + c.Name, From: c.Text, Status: StatusCarried}
			if perr != nil {
				it.Status, it.Why = StatusDropped, "port: "+perr.Error()+"; banned on every port instead"
				all = true
			}
			every = every || all || allp || strings.TrimSpace(p) == ""
			ports = append(ports, list...)
			pr = strings.ToLower(unquote(pr))
			if pr == "" {
				pr = "tcp"
			}
			protos[pr] = true
			for _, e := range extra {
				protos[e] = true
			}
			v := im.verdict(c)
			verdicts[v] = true
			it.To = fmt.Sprintf("ports, protocol %s, verdict %s", pr, v)
			jr.Items = append(jr.Items, it)
			continue
		}
		if isMail, whois := mailKind(c.Name); isMail {
			name := im.mailAction(sec, c, whois, jr)
			if name != "" {
				out.Actions = append(out.Actions, name)
			}
			continue
		}
		jr.Items = append(jr.Items, Item{Key: "action " + c.Name, From: c.Text, Status: StatusDropped,
			Why: "no sysban equivalent; an exec action (argv, no shell) can run your own command on each ban"})
	}
	if !banned {
		every = true
		protos["all"] = true
		jr.Items = append(jr.Items, Item{Key: "action", From: text, To: "ports: [], protocol: all", Status: StatusChanged,
			Why: "no firewall action: sysban always bans, here from every port"})
	}
	// In the order written; "domain,53" is one port twice.
	seen := map[sysban.PortRange]bool{}
	ports = slices.DeleteFunc(ports, func(p string) bool {
		r, _ := config.ParsePort(p)
		dup := seen[r]
		seen[r] = true
		return dup
	})
	if every {
		ports = []string{}
	}
	out.Ports = &ports
	out.Protocol = "tcp"
	switch {
	case len(protos) > 1 || protos["all"]:
		out.Protocol = "all"
	case protos["udp"]:
		out.Protocol = "udp"
	}
	if out.Protocol != "tcp" && out.Protocol != "udp" && out.Protocol != "all" {
		out.Protocol = "all"
	}
	out.Verdict = "drop"
	if verdicts["reject"] && !verdicts["drop"] {
		out.Verdict = "reject"
	}
	desc := "every port"
	if len(ports) > 0 {
		desc = strings.Join(ports, ", ")
	}
	jr.Items = append(jr.Items, Item{Key: "port", From: port, To: fmt.Sprintf("ports: [%s], protocol: %s, verdict: %s", desc, out.Protocol, out.Verdict), Status: StatusCarried})
}

// verdict is drop or reject from an action's blocktype: its argument, its
// action.d file, or fail2ban's default for that family.
func (im *importer) verdict(c callSpec) string {
	bt, ok := c.Args["blocktype"]
	if !ok {
		if l, err := readLayers(im.fsys, "action.d/"+c.Name); err == nil {
			for _, sec := range []string{"Init", "Definition"} {
				if v, err := l.Get(sec, "blocktype", c.Args); err == nil {
					bt, ok = v, true
					break
				}
			}
		}
	}
	if !ok {
		// fail2ban's stock firewall actions reject (icmp-port-unreachable,
		// ipfw's "unreach port"); pf, route and hostsdeny drop.
		if strings.HasPrefix(c.Name, "pf") || strings.HasPrefix(c.Name, "route") || strings.HasPrefix(c.Name, "hostsdeny") {
			return "drop"
		}
		return "reject"
	}
	low := strings.ToLower(bt)
	if strings.Contains(low, "drop") || strings.Contains(low, "deny") || strings.Contains(low, "blackhole") {
		return "drop"
	}
	return "reject"
}

// mailAction turns sendmail-whois[dest=..., sender=...] and its kin into a
// sysban mail action, shared by jails with the same recipients.
func (im *importer) mailAction(sec string, c callSpec, whois bool, jr *JailReport) string {
	dest := c.Args["dest"]
	if dest == "" {
		dest, _ = im.get(sec, "destemail", &jr.Items)
	}
	sender := c.Args["sender"]
	if sender == "" {
		sender, _ = im.get(sec, "sender", &jr.Items)
	}
	var notes []string
	var to []string
	for _, d := range strings.FieldsFunc(dest, func(r rune) bool { return r == ',' || r == ' ' }) {
		if !strings.Contains(d, "@") {
			d += "@localhost"
			notes = append(notes, "a bare user is user@localhost")
		}
		to = append(to, d)
	}
	if len(to) == 0 {
		to = []string{"root@localhost"}
		notes = append(notes, "no dest: root@localhost")
	}
	if sender == "" || strings.Contains(sender, "<") {
		sender = "root@localhost"
		notes = append(notes, "sender: root@localhost (fail2ban filled in the host name at run time)")
	}
	for _, a := range append([]string{sender}, to...) {
		if _, err := mail.ParseAddress(a); err != nil {
			jr.Items = append(jr.Items, Item{Key: "action " + c.Name, From: c.Text, Status: StatusDropped,
				Why: fmt.Sprintf("mail address %q: %v", a, err)})
			return ""
		}
	}
	m := &outMail{Server: "127.0.0.1:25", TLS: "opportunistic", From: sender, To: to, Whois: whois}
	name := sysbanName("mail-" + strings.Split(to[0], "@")[0])
	for i := 2; ; i++ {
		existing, ok := im.out.Actions[name]
		if !ok || slices.Equal(existing.Mail.To, m.To) && existing.Mail.From == m.From && existing.Mail.Whois == m.Whois {
			break
		}
		name = sysbanName(fmt.Sprintf("mail-%s-%d", strings.Split(to[0], "@")[0], i))
	}
	im.out.Actions[name] = outAction{On: []string{"ban"}, Mail: m}
	why := "fail2ban ran the local " + strings.SplitN(c.Name, "-", 2)[0] + " program; sysban speaks SMTP to 127.0.0.1:25 (your MTA); start/stop mails are not sent; the matched log lines are always included"
	if len(notes) > 0 {
		why += "; " + strings.Join(notes, "; ")
	}
	jr.Items = append(jr.Items, Item{Key: "action " + c.Name, From: c.Text, To: "actions: [" + name + "]", Status: StatusChanged, Why: why})
	return name
}

// syslogFiles are logs the host's syslog daemon writes: forwarding syslog
// covers them.
var syslogFiles = []string{"auth.log", "secure", "messages", "maillog", "mail.log", "mail.warn", "syslog", "all.log", "daemon.log", "user.log", "authlog", "mail.err"}

// logpaths reports what replaces logpath and backend.
func (im *importer) logpaths(sec, filter string, jr *JailReport) {
	backend, _ := im.get(sec, "backend", &jr.Items)
	if strings.HasPrefix(strings.TrimSpace(backend), "systemd") {
		jr.Items = append(jr.Items, Item{Key: "backend", From: backend, Status: StatusChanged,
			Why: "sysban reads no journal itself: rsyslog's imjournal (or journald's ForwardToSyslog) forwards it"})
	} else if backend != "" {
		jr.Items = append(jr.Items, Item{Key: "backend", From: backend, Status: StatusChanged, Why: "sysban receives syslog; it polls no files"})
	}
	lp, ok := im.get(sec, "logpath", &jr.Items)
	if !ok || strings.TrimSpace(lp) == "" {
		return
	}
	progs := im.programsOf(filter)
	tag := filter
	if len(progs) > 0 && !strings.ContainsAny(progs[0], "*?[") {
		tag = progs[0]
	}
	for _, p := range strings.Fields(lp) {
		if p == "" {
			continue
		}
		it := Item{Key: "logpath", From: p, Status: StatusChanged}
		if slices.Contains(syslogFiles, path.Base(p)) {
			it.Why = "written by your syslog daemon: forward syslog to sysban (README: Point your syslog at it)"
		} else {
			line := fmt.Sprintf(`input(type="imfile" File=%q Tag="%s:" Facility="daemon")`, p, tag)
			it.To = line
			it.Why = "a daemon's own file: have rsyslog forward it with imfile"
			if !slices.Contains(im.report.Forward, line) {
				im.report.Forward = append(im.report.Forward, line)
			}
			jr.Todo = append(jr.Todo, "forward "+p+" with: "+line)
		}
		jr.Items = append(jr.Items, it)
	}
}

// handledKeys are the jail keys translated elsewhere or consumed by
// interpolation (actions read them).
var handledKeys = []string{"enabled", "filter", "maxretry", "findtime", "bantime", "bantime.increment", "bantime.multipliers",
	"bantime.factor", "bantime.formula", "bantime.maxtime", "bantime.rndtime", "bantime.overalljails", "ignoreip", "usedns",
	"port", "protocol", "action", "banaction", "banaction_allports", "backend", "logpath", "destemail", "sender", "mta", "chain",
	"mode", "__name__"}

// otherKeys reports what the section (a jail or [DEFAULT]) sets itself and
// sysban has no key for.
func (im *importer) otherKeys(sec string, items *[]Item) {
	for _, k := range im.jails.OwnKeys(sec) {
		if slices.Contains(handledKeys, k) || strings.HasPrefix(k, "action_") || strings.HasPrefix(k, "banaction") ||
			sec == DefaultSection && (strings.HasSuffix(k, "_log") || strings.HasSuffix(k, "_backend") || strings.HasPrefix(k, "syslog_")) {
			continue // consumed by the jails that use them
		}
		v, _ := im.jails.Get(sec, k, nil)
		it := Item{Key: k, From: v, Status: StatusDropped}
		switch k {
		case "ignoreself":
			it.Status, it.Why = StatusCarried, "sysban never bans the host's own addresses"
		case "ignorecommand":
			if strings.TrimSpace(v) == "" {
				continue
			}
			it.Why = "sysban runs no command to decide on a ban; list the addresses in ignoreip"
		case "maxmatches", "maxlines":
			it.Status, it.Why = StatusChanged, "sysban keeps each ban's matched lines itself (a mail action's maxlines)"
		case "datepattern", "logencoding", "logtimezone", "journalmatch":
			it.Status, it.Why = StatusChanged, "sysban reads syslog: the forwarder delivers time, encoding and source"
		case "fail2ban_agent", "blocklist_de_apikey", "cfemail", "cfapikey", "default_backend", "logencoding_default":
			continue // only used by actions reported with their jails
		default:
			it.Why = "no sysban equivalent"
		}
		*items = append(*items, it)
	}
}
