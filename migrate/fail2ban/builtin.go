package fail2ban

import (
	"maps"
	"slices"

	"github.com/sysban/sysban/pipeline"
)

// builtinTarget is the sysban built-in filter (and mode) that replaces a
// fail2ban filter, and what the user should know about the swap.
type builtinTarget struct {
	filter, mode string
	note         string
}

// builtinFor maps fail2ban's filter name and mode (its "mode" argument,
// "" when none) to the closest sysban built-in filter. ok is false when
// sysban has none: the filter file is translated instead.
func builtinFor(name, mode string) (builtinTarget, bool) {
	switch name {
	case "sshd":
		switch mode {
		case "", "normal":
			return builtinTarget{filter: "sshd"}, true
		case "ddos", "aggressive":
			return builtinTarget{filter: "sshd", mode: mode}, true
		case "extra":
			return builtinTarget{filter: "sshd", note: "fail2ban's extra mode: sysban's normal mode already covers the extra authentication failures (maximum attempts, too many failures)"}, true
		}
	case "sshd-ddos":
		return builtinTarget{filter: "sshd", mode: "ddos", note: "fail2ban's old sshd-ddos filter is sysban's sshd in mode ddos"}, true
	case "sshd-aggressive":
		return builtinTarget{filter: "sshd", mode: "aggressive"}, true
	case "dovecot":
		return withMode("dovecot", mode)
	case "postfix":
		switch mode {
		case "auth":
			return builtinTarget{filter: "postfix-sasl", note: "fail2ban's postfix[mode=auth] is sysban's postfix-sasl filter"}, true
		case "", "normal", "more":
			t, _ := withMode("postfix", "")
			if mode == "more" {
				t.note = "fail2ban's mode more: sysban's postfix normal mode (rejections); use mode aggressive for more"
			}
			return t, true
		case "aggressive", "ddos", "errors":
			return builtinTarget{filter: "postfix", mode: "aggressive", note: "fail2ban's postfix mode " + mode + ": sysban's postfix mode aggressive"}, true
		}
	case "postfix-sasl":
		return builtinTarget{filter: "postfix-sasl"}, true
	case "sendmail-auth":
		return builtinTarget{filter: "sendmail-auth"}, true
	case "sendmail-reject":
		switch mode {
		case "", "normal":
			return builtinTarget{filter: "sendmail-reject"}, true
		default:
			return builtinTarget{filter: "sendmail-reject", mode: "aggressive", note: "fail2ban's sendmail-reject mode " + mode + ": sysban's mode aggressive"}, true
		}
	case "named-refused", "named-refused-udp", "named-refused-tcp":
		return builtinTarget{filter: "named", note: "fail2ban's " + name + " is sysban's named filter (refused and denied queries, and ANY floods of filters.named.vars.domains)"}, true
	case "openvpn":
		return builtinTarget{filter: "openvpn"}, true
	case "apache-auth":
		return builtinTarget{filter: "apache", note: "fail2ban's apache-auth is part of sysban's apache filter (authentication failures and probes of filters.apache.vars.paths)"}, true
	case "apache-noscript", "apache-botsearch":
		return builtinTarget{filter: "apache", note: "fail2ban's " + name + " is part of sysban's apache filter (probes of filters.apache.vars.paths)"}, true
	case "saslauthd":
		return builtinTarget{filter: "saslauthd"}, true
	case "vsftpd":
		return builtinTarget{filter: "vsftpd"}, true
	case "squirrelmail":
		return builtinTarget{filter: "squirrelmail"}, true
	case "qmail":
		return builtinTarget{filter: "qmail"}, true
	case "qpopper":
		return builtinTarget{filter: "qpopper"}, true
	case "recidive":
		return builtinTarget{filter: pipeline.RecidiveFilter, note: "sysban's recidive counts the bans of the other jails itself, it reads no fail2ban log"}, true
	}
	return builtinTarget{}, false
}

// withMode maps name to the built-in of the same name, keeping mode when
// the built-in has it.
func withMode(name, mode string) (builtinTarget, bool) {
	spec, ok := pipeline.BuiltinFilters()[name]
	if !ok {
		return builtinTarget{}, false
	}
	if mode == "" || mode == "normal" {
		return builtinTarget{filter: name}, true
	}
	if _, has := spec.Modes[mode]; has {
		return builtinTarget{filter: name, mode: mode}, true
	}
	return builtinTarget{filter: name, note: "fail2ban's mode " + mode + ": sysban's " + name + " has modes normal, " + joinSorted(slices.Collect(maps.Keys(spec.Modes))) + "; normal used"}, true
}

func joinSorted(s []string) string {
	slices.Sort(s)
	out := ""
	for i, x := range s {
		if i > 0 {
			out += ", "
		}
		out += x
	}
	return out
}
