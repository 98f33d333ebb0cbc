package fail2ban

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/config"
)

// imported imports a fixture directory and loads the result the way
// `sysban check` does, failing the test on any error.
func imported(t *testing.T, dir string) (*config.Config, *Report) {
	t.Helper()
	res, err := Import(os.DirFS(dir), dir)
	if err != nil {
		t.Fatalf("import %s: %v", dir, err)
	}
	cfg, err := config.Parse(dir, res.YAML, nil)
	if err != nil {
		t.Fatalf("%s: output does not pass check: %v\n%s", dir, err, res.YAML)
	}
	return cfg, res.Report
}

func jailOf(t *testing.T, cfg *config.Config, name string) config.Jail {
	t.Helper()
	for _, j := range cfg.Jails {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("no jail %s in the imported config", name)
	return config.Jail{}
}

func reportOf(t *testing.T, r *Report, name string) JailReport {
	t.Helper()
	for _, j := range r.Jails {
		if j.Name == name {
			return j
		}
	}
	t.Fatalf("no jail %s in the report", name)
	return JailReport{}
}

// want is what one imported jail must look like.
type want struct {
	jail, filter, mode string
	enabled            bool
	ports              []string // as ParsePort reads them; nil: every port
	protocol           sysban.Protocol
	verdict            sysban.Verdict
	maxretry           int
	findtime, bantime  time.Duration
	actions            []string
}

func checkJail(t *testing.T, cfg *config.Config, w want) {
	t.Helper()
	j := jailOf(t, cfg, w.jail)
	var ports []sysban.PortRange
	for _, p := range w.ports {
		r, err := config.ParsePort(p)
		if err != nil {
			t.Fatal(err)
		}
		ports = append(ports, r)
	}
	got := j.Ports
	slices.SortFunc(got, func(a, b sysban.PortRange) int { return int(a.First) - int(b.First) })
	slices.SortFunc(ports, func(a, b sysban.PortRange) int { return int(a.First) - int(b.First) })
	switch {
	case j.Filter != w.filter || j.Mode != w.mode:
		t.Errorf("%s: filter %s mode %q, want %s mode %q", w.jail, j.Filter, j.Mode, w.filter, w.mode)
	case j.Enabled != w.enabled:
		t.Errorf("%s: enabled %v, want %v", w.jail, j.Enabled, w.enabled)
	case !slices.Equal(got, ports):
		t.Errorf("%s: ports %v, want %v", w.jail, got, ports)
	case j.Protocol != w.protocol || j.Verdict != w.verdict:
		t.Errorf("%s: protocol %s verdict %s, want %s %s", w.jail, j.Protocol, j.Verdict, w.protocol, w.verdict)
	case j.MaxRetry != w.maxretry || j.FindTime != w.findtime || j.BanTime != w.bantime:
		t.Errorf("%s: maxretry %d findtime %v bantime %v, want %d %v %v", w.jail, j.MaxRetry, j.FindTime, j.BanTime, w.maxretry, w.findtime, w.bantime)
	case !slices.Equal(j.Actions, w.actions):
		t.Errorf("%s: actions %v, want %v", w.jail, j.Actions, w.actions)
	}
}

// TestSeedConfigurations imports every jail configuration of the seed
// documents (CentOS 5, FreeBSD, QmailToaster, layered 0.9, firewalld) and
// checks each resulting jail.
func TestSeedConfigurations(t *testing.T) {
	const m, h, d = time.Minute, time.Hour, 24 * time.Hour
	tests := []struct {
		dir   string
		jails []want
		// mails: action name -> recipient, sender, whois
		mails map[string][3]string
		// notCarried jails, with a word of their reason
		notCarried map[string]string
	}{
		{dir: "testdata/seed000-centos5", jails: []want{
			{"dovecot-pop3imap", "dovecot-pop3imap", "", true, []string{"pop3", "pop3s", "imap", "imaps"}, "tcp", "reject", 20, 20 * m, 20 * m, []string{"mail-root"}},
			{"named-refused-udp", "named", "", true, []string{"domain"}, "udp", "reject", 3, 10 * m, h, []string{"mail-tryweb"}},
			{"sendmail-smtp", "sendmail-smtp", "", true, []string{"smtp"}, "tcp", "reject", 5, 20 * m, 3*h + 20*m, []string{"mail-tryweb-2"}},
			{"openvpn", "openvpn", "", true, []string{"https"}, "tcp", "reject", 3, 20 * m, 3*h + 20*m, []string{"mail-tryweb-3"}},
			{"ssh-iptables", "sshd", "", true, []string{"ssh"}, "tcp", "reject", 5, 10 * m, 10 * m, []string{"mail-root-2"}},
			{"apache", "httpd", "", true, []string{"http", "https"}, "tcp", "reject", 3, 10 * m, 10 * m, []string{"mail-root"}},
		}, mails: map[string][3]string{
			"mail-root":     {"root@localhost", "tryweb@ichiayi.com", "whois"},
			"mail-tryweb":   {"tryweb@ichiayi.com", "root@localhost", "whois"},
			"mail-tryweb-2": {"tryweb@ichiayi.com", "jonathan@everplast.net", "whois"},
			"mail-root-2":   {"root@localhost", "root@localhost", "whois"},
		}},
		{dir: "testdata/seed001-freebsd", jails: []want{
			// bsd-ipfw with no port: fail2ban's port = 0:65535.
			{"dovecot-pop3imap", "dovecot-pop3imap", "", true, nil, "tcp", "reject", 2, 20 * m, 20 * m, nil},
			{"qpopperauth", "qpopperauth", "", true, nil, "tcp", "reject", 2, 20 * m, d, nil},
		}},
		{dir: "testdata/seed002-qmailtoaster", jails: []want{
			{"password-fail", "password-fail", "", true, []string{"smtp"}, "tcp", "reject", 3, h, d, nil},
			{"username-notfound", "username-notfound", "", true, []string{"smtp"}, "tcp", "reject", 3, h, d, nil},
			{"dos-hosts", "dos-hosts", "", true, []string{"smtp"}, "tcp", "reject", 5, h, d, nil},
			{"vpopmail", "vpopmail", "", true, []string{"pop3"}, "tcp", "reject", 3, 10 * m, sysban.Permanent, []string{"mail-postmaster"}},
			{"squirrelmail-iptables", "squirrelmail", "", true, []string{"http"}, "tcp", "reject", 5, 10 * m, 10 * m, []string{"mail-root"}},
		}, mails: map[string][3]string{
			"mail-postmaster": {"postmaster@email.domain", "fail2ban@email.domain", "whois"},
			"mail-root":       {"root@localhost", "fail2ban@example.it", "whois"},
		}},
		{dir: "testdata/seed003-layered", jails: []want{
			// bantime "1200 #..." is no time for fail2ban either: dropped,
			// so sysban's own bantime for the jail applies.
			{"sshd", "sshd", "", true, nil, "tcp", "reject", 5, 10 * m, h, nil},
			{"sshd-ddos", "sshd", "ddos", false, []string{"ssh"}, "tcp", "reject", 5, 10 * m, h, nil},
			{"dovecot", "dovecot", "", true, nil, "tcp", "reject", 5, 10 * m, h, nil},
			{"dovecot-auth", "dovecot", "", true, nil, "tcp", "reject", 5, 10 * m, h, nil},
			{"vsftpd", "vsftpd", "", true, nil, "tcp", "reject", 5, 10 * m, h, nil},
		}, notCarried: map[string]string{"sendmail": "not found", "sendmail-sasl": "no failregex"}},
		{dir: "testdata/seed004-firewalld", jails: []want{
			{"sshd", "sshd", "", true, []string{"ssh"}, "tcp", "drop", 3, d, d, []string{"mail-you"}},
			{"postfix-sasl", "postfix-sasl", "", true, []string{"smtp", "465", "submission", "imap", "imaps", "pop3", "pop3s"}, "tcp", "drop", 3, d, d, []string{"mail-you"}},
		}, mails: map[string][3]string{"mail-you": {"you@example.com", "fail2ban@example.com", "whois"}}},
	}
	for _, tc := range tests {
		t.Run(strings.TrimPrefix(tc.dir, "testdata/"), func(t *testing.T) {
			cfg, rep := imported(t, tc.dir)
			for _, w := range tc.jails {
				checkJail(t, cfg, w)
			}
			for name, mw := range tc.mails {
				a, ok := cfg.Actions[name]
				if !ok || a.Mail == nil {
					t.Errorf("no mail action %s (have %v)", name, cfg.Actions)
					continue
				}
				if !slices.Equal(a.Mail.To, []string{mw[0]}) || a.Mail.From != mw[1] || a.Mail.Whois != (mw[2] == "whois") {
					t.Errorf("action %s: to %v from %s whois %v, want %v", name, a.Mail.To, a.Mail.From, a.Mail.Whois, mw)
				}
			}
			for name, why := range tc.notCarried {
				jr := reportOf(t, rep, name)
				if !strings.Contains(jr.NotCarried, why) {
					t.Errorf("%s: not carried %q, want it to say %q", name, jr.NotCarried, why)
				}
				// The user is pointed at the built-in that does the job.
				if !strings.Contains(strings.Join(jr.Todo, "\n"), "sendmail-auth (correlates multi-line failures)") {
					t.Errorf("%s: todo %q does not point at sendmail-auth", name, jr.Todo)
				}
			}
			if got := rep.Counts.JailsNotCarried; got != len(tc.notCarried) {
				t.Errorf("%d jails not carried, want %d", got, len(tc.notCarried))
			}
		})
	}
}

// TestSeedFiltersMatchTheirLines runs translated seed filters over the
// lines the documents show, as sysban receives them (message text after
// the program tag).
func TestSeedFiltersMatchTheirLines(t *testing.T) {
	tests := []struct {
		dir, filter, text, host string
	}{
		{"testdata/seed000-centos5", "dovecot-pop3imap", "pop3-login: Aborted login: user=<>, method=PLAIN, rip=::ffff:198.24.142.139, lip=::ffff:220.130.139.9", "198.24.142.139"},
		{"testdata/seed000-centos5", "sendmail-smtp", "s538V2ge001857: [114.97.113.212] did not issue MAIL/EXPN/VRFY/ETRN during connection to MTA", "114.97.113.212"},
		{"testdata/seed001-freebsd", "qpopperauth", `foo@example.com at host.example (192.0.2.9): -ERR [AUTH] Password supplied for "foo@example.com" is incorrect.`, "192.0.2.9"},
		{"testdata/seed002-qmailtoaster", "dos-hosts", "CHKUSER rejected relaying: from <a@b.c:> remote <x:y:198.51.100.4> rcpt <d@e.f> : client not allowed to relay", "198.51.100.4"},
	}
	for _, tc := range tests {
		cfg, _ := imported(t, tc.dir)
		spec, ok := cfg.Filters[tc.filter]
		if !ok {
			t.Fatalf("%s: no filter %s", tc.dir, tc.filter)
		}
		matched := false
		for _, src := range spec.FailRegex {
			re := strings.Replace(src, "<HOST>", `(?P<host>\S+?)`, 1)
			m := regexpMust(t, re).FindStringSubmatch(tc.text)
			if m != nil {
				matched = true
				if h := m[regexpMust(t, re).SubexpIndex("host")]; h != tc.host {
					t.Errorf("%s: host %q, want %q", tc.filter, h, tc.host)
				}
			}
		}
		if !matched {
			t.Errorf("%s: %q matched none of %q", tc.filter, tc.text, spec.FailRegex)
		}
	}
}
