package config

import (
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sysban/sysban"
	"github.com/sysban/sysban/pipeline"
)

func TestBuiltinDefault(t *testing.T) {
	cfg, err := Load("", nil)
	if err != nil {
		t.Fatalf("built-in config: %v", err)
	}
	var names []string
	for _, s := range cfg.Listen.Specs {
		names = append(names, s.Name())
	}
	// No UDP: it cannot say which local user sent a line.
	want := "tcp:127.0.0.1:5514 unixgram:/run/sysban/syslog.sock"
	if got := strings.Join(names, " "); got != want {
		t.Errorf("listeners = %q, want %q", got, want)
	}
	if !slices.Contains(cfg.Listen.Forwarders, 0) || cfg.Listen.FirstFrameTimeout != 10*time.Second || cfg.Listen.UnixGroup != -1 {
		t.Errorf("listen = %+v, want root a forwarder, first frame in 10s, no socket group", cfg.Listen)
	}
	jails := cfg.EnabledJails()
	if len(jails) != 1 || jails[0].Name != "sshd" {
		t.Fatalf("enabled jails = %+v, want sshd only", jails)
	}
	j := jails[0]
	if j.MaxRetry != 5 || j.FindTime != 10*time.Minute || j.BanTime != time.Hour ||
		j.Protocol != sysban.TCP || j.Verdict != sysban.Drop {
		t.Errorf("sshd jail = %+v, want defaults applied", j)
	}
	if len(j.Ports) != 1 || j.Ports[0] != (sysban.PortRange{First: 22, Last: 22}) {
		t.Errorf("sshd ports = %v, want [22]", j.Ports)
	}
	if cfg.NFT.Table != "sysban" || cfg.NFT.Priority != -10 {
		t.Errorf("nft = %+v", cfg.NFT)
	}
	if len(cfg.Listen.Allow) != 2 || cfg.Listen.Allow[0].String() != "127.0.0.0/8" {
		t.Errorf("allow = %v", cfg.Listen.Allow)
	}
}

func TestLayersAndEnvironment(t *testing.T) {
	dir := t.TempDir()
	main := filepath.Join(dir, "sysban.yaml")
	write(t, main, `
defaults:
  bantime: 2h
  ignoreip: 10.0.0.0/8 192.168.1.1
jails:
  sshd:
    maxretry: 3
  my_app:
    enabled: true
    filter: myapp
    ports: [8080, 9000-9010, imaps]
    protocol: all
    verdict: reject
filters:
  myapp:
    programs: [myapp]
    failregex: ['^bad login from <HOST>$']
`)
	write(t, filepath.Join(dir, "conf.d", "20-late.yaml"), "jails:\n  sshd:\n    bantime: -1\n")
	write(t, filepath.Join(dir, "conf.d", "10-early.yaml"), "jails:\n  sshd:\n    bantime: 5m\n    findtime: 1d\n")
	write(t, filepath.Join(dir, "conf.d", "ignored.yml.bak"), "garbage: [")

	env := []string{"PATH=/bin", "SYSBAN_JAILS_MY_APP_MAXRETRY=7", "SYSBAN_LISTEN_UDP=0.0.0.0:514,[::]:514"}
	cfg, err := Load(main, env)
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]Jail{}
	for _, j := range cfg.Jails {
		byName[j.Name] = j
	}
	sshd := byName["sshd"]
	if sshd.MaxRetry != 3 || sshd.BanTime != sysban.Permanent || sshd.FindTime != 24*time.Hour {
		t.Errorf("sshd = %+v: want maxretry 3 from file, findtime 1d from 10-early, bantime -1 from 20-late", sshd)
	}
	if got := prefixesString(sshd.IgnoreIP); got != "10.0.0.0/8 192.168.1.1/32" {
		t.Errorf("sshd ignoreip = %s: want the defaults' list", got)
	}
	app := byName["my_app"]
	if app.MaxRetry != 7 {
		t.Errorf("my_app maxretry = %d, want 7 from SYSBAN_JAILS_MY_APP_MAXRETRY", app.MaxRetry)
	}
	if app.Rule().String() != "my_app(all 8080,9000-9010,993 reject)" || app.BanTime != 2*time.Hour {
		t.Errorf("my_app = %v bantime %v", app.Rule(), app.BanTime)
	}
	var udp []string
	for _, s := range cfg.Listen.Specs {
		if s.Network == "udp" {
			udp = append(udp, s.Address)
		}
	}
	if strings.Join(udp, " ") != "0.0.0.0:514 [::]:514" {
		t.Errorf("udp listeners = %v, want the environment's", udp)
	}
	wantSources := BuiltinSource + " " + main + " " + filepath.Join(dir, "conf.d", "10-early.yaml") + " " +
		filepath.Join(dir, "conf.d", "20-late.yaml") + " environment"
	if got := strings.Join(cfg.Sources, " "); got != wantSources {
		t.Errorf("sources = %q\nwant      %q", got, wantSources)
	}
}

// TestPrefixKeys: ipv6prefix and ipv4prefix default to 64 and 32, are set
// in defaults and overridden per jail, with or without the slash, and
// reach the pipeline.
func TestPrefixKeys(t *testing.T) {
	def, err := Parse("test.yaml", []byte("jails:\n  sshd:\n    enabled: true\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if j := def.EnabledJails()[0]; j.IPv6Prefix != 64 || j.IPv4Prefix != 32 {
		t.Errorf("defaults: /%d /%d, want /64 /32", j.IPv6Prefix, j.IPv4Prefix)
	}
	cfg, err := Parse("test.yaml", []byte(`
defaults:
  ipv6prefix: /56
jails:
  sshd:
    enabled: true
    ipv4prefix: 24
  dovecot:
    enabled: true
    ipv6prefix: "128"
`), []string{"SYSBAN_JAILS_POSTFIX_ENABLED=true", "SYSBAN_JAILS_POSTFIX_IPV6PREFIX=48"})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string][2]int{}
	for _, js := range cfg.Pipeline().Jails {
		got[js.Name] = [2]int{js.IPv4Prefix, js.IPv6Prefix}
	}
	want := map[string][2]int{"sshd": {24, 56}, "dovecot": {32, 128}, "postfix": {32, 48}}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("jail %s: /%d /%d, want /%d /%d", name, got[name][0], got[name][1], w[0], w[1])
		}
	}
}

func TestServiceSectionsAndFilterOverrides(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(`
state:
  dir: /tmp/sysban-state
  dbpurgeage: 7d
control:
  socket: /tmp/sysban.sock
metrics:
  listen: off
defaults:
  usedns: no
jails:
  sshd:
    mode: aggressive
    usedns: yes
filters:
  sshd:
    ignoreregex: ['^Failed password for git from ']
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.State.Dir != "/tmp/sysban-state" || cfg.State.PurgeAge != 7*24*time.Hour ||
		cfg.Control.Socket != "/tmp/sysban.sock" || cfg.Metrics.Listen != "" {
		t.Errorf("state %+v control %+v metrics %+v", cfg.State, cfg.Control, cfg.Metrics)
	}
	sshd := cfg.EnabledJails()[0]
	if sshd.Mode != "aggressive" || sshd.UseDNS != "yes" {
		t.Errorf("sshd mode %q usedns %q", sshd.Mode, sshd.UseDNS)
	}
	// Setting one key of a built-in filter keeps the rest of it.
	f := cfg.Filters["sshd"]
	if len(f.IgnoreRegex) != 1 || len(f.FailRegex) == 0 || len(f.Programs) == 0 {
		t.Errorf("sshd override = %+v: want the built-in patterns and programs kept", f)
	}
	def, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	if def.Metrics.Listen != "127.0.0.1:9642" || def.State.Dir != "/var/lib/sysban" || def.Defaults.UseDNS != "warn" {
		t.Errorf("defaults: metrics %q state %q usedns %q", def.Metrics.Listen, def.State.Dir, def.Defaults.UseDNS)
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name string
		yaml string
		env  []string
		want []string // every fragment must be in the error
	}{
		{"bad duration", "jails:\n  sshd:\n    bantime: 10x\n",
			nil, []string{"test.yaml: jails.sshd.bantime: duration \"10x\""}},
		{"permanent findtime", "defaults:\n  findtime: -1\n",
			nil, []string{"test.yaml: defaults.findtime: -1 (permanent) is only meaningful for bantime"}},
		{"zero maxretry", "defaults:\n  maxretry: 0\n",
			nil, []string{"test.yaml: defaults.maxretry: 0 is out of range [1, 1048576]"}},
		{"unknown key", "jails:\n  sshd:\n    maxretries: 3\n",
			nil, []string{"test.yaml: jails.sshd.maxretries: unknown key (did you mean \"maxretry\"?)"}},
		{"unknown section", "jail:\n  sshd:\n    enabled: true\n",
			nil, []string{"test.yaml: jail: unknown key (did you mean \"jails\"?)"}},
		{"bad cidr", "defaults:\n  ignoreip: [10.0.0.0/33]\n",
			nil, []string{"test.yaml: defaults.ignoreip: \"10.0.0.0/33\": not an address or CIDR"}},
		{"bad port", "jails:\n  sshd:\n    ports: [sshh]\n",
			nil, []string{"test.yaml: jails.sshd.ports: port \"sshh\": not a number and not a known service name"}},
		{"port range backwards", "jails:\n  sshd:\n    ports: [20-10]\n",
			nil, []string{"jails.sshd.ports: port range \"20-10\": 20 > 10"}},
		{"bad protocol", "jails:\n  sshd:\n    protocol: icmp\n",
			nil, []string{"test.yaml: jails.sshd.protocol: \"icmp\": want one of tcp, udp, all"}},
		{"bad verdict", "defaults:\n  verdict: accept\n",
			nil, []string{"test.yaml: defaults.verdict: \"accept\": want one of drop, reject"}},
		{"missing filter", "jails:\n  web:\n    enabled: true\n    filter: sshdd\n",
			nil, []string{"test.yaml: jails.web.filter: no filter named \"sshdd\" (did you mean \"sshd\"?)"}},
		{"bad regex", "filters:\n  x:\n    programs: [x]\n    failregex: ['^(from <HOST>$']\n",
			nil, []string{"test.yaml: filters.x: "}},
		{"regex without host", "filters:\n  x:\n    programs: [x]\n    failregex: ['^failed$']\n",
			nil, []string{"test.yaml: filters.x: ", "<HOST>"}},
		{"filter without programs", "filters:\n  x:\n    failregex: ['^f <HOST>$']\n",
			nil, []string{"filters.x.programs: a filter needs at least one program"}},
		{"jail name with dot in yaml", "jails:\n  \"host.example\":\n    enabled: true\n",
			nil, []string{"test.yaml: jails.host.example: unknown key", "test.yaml: jails.host.filter: no filter named \"host\""}},
		{"upper-case listen address", "listen:\n  udp: [localhost:514]\n",
			nil, []string{"test.yaml: listen.udp: \"localhost:514\": want IP:port"}},
		{"provenance", "jails:\n  sshd:\n    provenance: always\n", nil, []string{"jails.sshd.provenance: \"always\": want one of off, prefer, require"}},
		{"filter trust key", "filters:\n  sshd:\n    trust: {user: [root]}\n", nil, []string{"filters.sshd.trust.user: unknown key"}},
		{"no forwarders", "listen:\n  forwarders: []\n", nil, []string{"listen.forwarders: empty"}},
		{"no forwarder on this host", "listen:\n  forwarders: [no-such-user-here]\n", nil, []string{"listen.forwarders: [\"no-such-user-here\"]: none of these users exists"}},
		{"unknown socket group", "listen:\n  unixgroup: no-such-group-here\n", nil, []string{"listen.unixgroup: \"no-such-group-here\": no such group"}},
		{"tls forwarders without client certificates", "listen:\n  tls: [\"127.0.0.1:6514\"]\n  tlscert: /c\n  tlskey: /k\n  tlsforwarders: true\n",
			nil, []string{"listen.tlsforwarders: needs listen.tlsclientca"}},
		{"relative unix path", "listen:\n  unix: [sysban.sock]\n",
			nil, []string{"listen.unix: \"sysban.sock\": want an absolute path"}},
		{"bad env value", "", []string{"SYSBAN_DEFAULTS_BANTIME=forever"},
			[]string{"environment SYSBAN_DEFAULTS_BANTIME: defaults.bantime: duration \"forever\""}},
		{"unknown env", "", []string{"SYSBAN_DEFAULTS_BANTIM=1h"},
			[]string{"environment SYSBAN_DEFAULTS_BANTIM: no such setting (did you mean \"SYSBAN_DEFAULTS_BANTIME\"?)"}},
		{"yaml syntax", "jails: [\n", nil, []string{"config: test.yaml: "}},
		{"two errors at once", "defaults:\n  maxretry: x\n  bantime: y\n",
			nil, []string{"defaults.maxretry: want a whole number", "defaults.bantime: duration \"y\""}},
		{"log level", "log:\n  level: loud\n", nil, []string{"log.level: \"loud\": want one of debug"}},
		{"usedns", "jails:\n  sshd:\n    usedns: maybe\n", nil, []string{"jails.sshd.usedns: \"maybe\": want one of yes, warn, no"}},
		{"ipv6prefix too long", "jails:\n  sshd:\n    ipv6prefix: 129\n", nil, []string{"jails.sshd.ipv6prefix: 129 is out of range [16, 128]"}},
		{"ipv6prefix too wide", "defaults:\n  ipv6prefix: /8\n", nil, []string{"defaults.ipv6prefix: 8 is out of range [16, 128]"}},
		{"ipv4prefix too long", "defaults:\n  ipv4prefix: 33\n", nil, []string{"defaults.ipv4prefix: 33 is out of range [4, 32]"}},
		{"ipv4prefix not a number", "jails:\n  sshd:\n    ipv4prefix: 10.0.0.0/8\n", nil, []string{"jails.sshd.ipv4prefix: want a whole number, got \"10.0.0.0/8\""}},
		{"relative state dir", "state:\n  dir: state\n", nil, []string{"state.dir: \"state\": want an absolute path"}},
		{"metrics address", "metrics:\n  listen: everywhere\n", nil, []string{"metrics.listen: \"everywhere\": want IP:port"}},
		{"jail name starting with a digit", "jails:\n  3proxy:\n    enabled: true\n", nil, []string{"jails.3proxy: jail name \"3proxy\""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse("test.yaml", []byte(tt.yaml), tt.env)
			if err == nil {
				t.Fatalf("config accepted, want an error containing %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error:\n  %v\nwant it to contain:\n  %s", err, w)
				}
			}
		})
	}
}

func TestParseDuration(t *testing.T) {
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"600", 10 * time.Minute, true},
		{"10m", 10 * time.Minute, true},
		{"1h30m", 90 * time.Minute, true},
		{"1d", 24 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true},
		{"2w", 14 * 24 * time.Hour, true},
		{"-1", sysban.Permanent, true},
		{" 5s ", 5 * time.Second, true},
		{"0", 0, false},
		{"-5", 0, false},
		{"-5m", 0, false},
		{"", 0, false},
		{"1x", 0, false},
		{"d", 0, false},
		{"1h30d", 0, false},
	}
	for _, tt := range tests {
		got, err := ParseDuration(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseDuration(%q) = %v, %v; want %v ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestParsePortAndPrefix(t *testing.T) {
	ports := map[string]sysban.PortRange{
		"ssh": {First: 22, Last: 22}, "22": {First: 22, Last: 22}, "IMAPS": {First: 993, Last: 993}, "ftp-data": {First: 20, Last: 20},
		"1000-2000": {First: 1000, Last: 2000}, "1000:2000": {First: 1000, Last: 2000}, "domain": {First: 53, Last: 53},
	}
	for in, want := range ports {
		if got, err := ParsePort(in); err != nil || got != want {
			t.Errorf("ParsePort(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"0", "65536", "-1", "nosuchservice", "5-", "a-b"} {
		if _, err := ParsePort(bad); err == nil {
			t.Errorf("ParsePort(%q) accepted", bad)
		}
	}
	prefixes := map[string]string{
		"127.0.0.1/8": "127.0.0.0/8", "10.1.2.3": "10.1.2.3/32", "::1": "::1/128",
		"::ffff:10.0.0.1": "10.0.0.1/32", "2001:db8::/32": "2001:db8::/32", "::ffff:10.0.0.0/104": "10.0.0.0/8",
	}
	for in, want := range prefixes {
		if got, err := ParsePrefix(in); err != nil || got.String() != want {
			t.Errorf("ParsePrefix(%q) = %v, %v; want %s", in, got, err, want)
		}
	}
}

func write(t *testing.T, path, text string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

func prefixesString(ps []netip.Prefix) string {
	s := make([]string, len(ps))
	for i, p := range ps {
		s[i] = p.String()
	}
	return strings.Join(s, " ")
}

func TestListenHardeningKeys(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte(`
listen:
  tls: ["0.0.0.0:6514", "::1"]
  tlscert: /etc/sysban/tls.pem
  tlskey: /etc/sysban/tls.key
  tlsclientca: /etc/sysban/ca.pem
  tlsclientnames: [mx1.example.org, "*.example.net"]
  ratepersender: 200.5
  remotestreamonly: true
  frametimeout: 5s
  journalprograms: [journal]
`), nil)
	if err != nil {
		t.Fatal(err)
	}
	l := cfg.Listen
	var tls []string
	for _, s := range l.Specs {
		if s.Network == "tls" {
			tls = append(tls, s.Address)
		}
	}
	if strings.Join(tls, " ") != "0.0.0.0:6514 [::1]:6514" || l.RatePerSender != 200.5 || !l.RemoteStreamOnly ||
		l.FrameTimeout != 5*time.Second || l.MaxConnectionsPerSource != 16 || l.TLSFiles.ClientCAFile != "/etc/sysban/ca.pem" ||
		len(l.TLSFiles.ClientNames) != 2 || strings.Join(l.JournalPrograms, " ") != "journal" {
		t.Errorf("listen = %+v (tls %v)", l, tls)
	}
	for yaml, want := range map[string]string{
		"listen:\n  tls: [\"0.0.0.0:6514\"]\n":                            "listen.tlscert and listen.tlskey are required when listen.tls is set",
		"listen:\n  tlscert: /x.pem\n  tlskey: /x.key\n":                  "TLS files set but listen.tls is empty",
		"listen:\n  rateburst: 5\n":                                       "listen.rateburst: set without listen.ratepersender",
		"listen:\n  ratepersender: -1\n":                                  "listen.ratepersender: -1 is out of range",
		"listen:\n  tls: [mx.example.org]\n  tlscert: /a\n  tlskey: /b\n": `listen.tls: "mx.example.org": want IP:port`,
	} {
		if _, err := Parse("test.yaml", []byte(yaml), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", yaml, err, want)
		}
	}
}

// parseCase loads yaml with env as one table case: with wantErr, it checks
// the error and returns nil; without, it fails on an error.
func parseCase(t *testing.T, yaml string, env []string, wantErr string) *Config {
	t.Helper()
	cfg, err := Parse("test.yaml", []byte(yaml), env)
	if wantErr != "" {
		if err == nil || !strings.Contains(err.Error(), wantErr) {
			t.Fatalf("error %v, want one containing %q", err, wantErr)
		}
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// TestObserveKey: observe: true reaches the pipeline for that jail only.
func TestObserveKey(t *testing.T) {
	cfg, err := Parse("test.yaml", []byte("jails:\n  sshd:\n    enabled: true\n    observe: true\n  dovecot:\n    enabled: true\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, js := range cfg.Pipeline().Jails {
		if js.Observe != (js.Name == "sshd") {
			t.Errorf("jail %s: Observe %v", js.Name, js.Observe)
		}
	}
	if _, err := Parse("test.yaml", []byte("jails:\n  sshd:\n    observe: maybe\n"), nil); err == nil {
		t.Error("observe: maybe accepted")
	}
}

// TestEscalateKey: the shipped sshd jail escalates IPv6 /64s to the /48;
// jails set and override the rule; bad rules are refused.
func TestEscalateKey(t *testing.T) {
	def, err := Load("", nil)
	if err != nil {
		t.Fatal(err)
	}
	want := pipeline.Escalation{Count: 4, Within: time.Hour, IPv6Prefix: 48, IPv4Prefix: 32}
	for _, j := range def.Pipeline().Jails {
		if j.Name == "sshd" && j.Escalate != want {
			t.Errorf("shipped sshd escalate = %+v, want %+v", j.Escalate, want)
		}
	}
	cfg, err := Parse("test.yaml", []byte("defaults:\n  escalate:\n    count: 8\n    within: 30m\njails:\n  dovecot:\n    enabled: true\n    escalate:\n      ipv4prefix: /24\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, j := range cfg.Pipeline().Jails {
		if j.Name == "dovecot" && j.Escalate != (pipeline.Escalation{Count: 8, Within: 30 * time.Minute, IPv4Prefix: 24}) {
			t.Errorf("dovecot escalate = %+v", j.Escalate)
		}
	}
	for yaml, want := range map[string]string{
		"jails:\n  sshd:\n    escalate:\n      count: 1\n      within: 1h\n": "jails.sshd.escalate.count: 1: at least 2",
		"jails:\n  dovecot:\n    escalate:\n      count: 4\n":                "jails.dovecot.escalate.within: missing",
		"jails:\n  sshd:\n    escalate:\n      cuont: 4\n":                   `unknown key (did you mean "count"?)`,
	} {
		if _, err := Parse("test.yaml", []byte(yaml), nil); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", yaml, err, want)
		}
	}
}
